// The data directory (catalog, device UUID, stubs, art, the virtual library by default): made by
// the commands that write it (serve, scan, archive...), only checked by those that just read it
// (ls, policy plan, jobs). So a mistyped --data is bad configuration naming the directory (exit
// 2), not a new empty catalog listed as "no items", nor a bare "EEXIST: mkdir" (exit 1).
//
// A directory made here is DATA_DIR_MODE (0750, less the umask): the catalog names private media
// paths, bookmarks and play counts, which are nobody else's business on a shared NAS (the systemd
// units make /var/lib/tapedeck 0750 too). A directory that exists already keeps the mode its
// admin gave it: we never chmod it.

import { mkdir, stat } from 'node:fs/promises';
import { ConfigError } from '../config.js';

/** Bad configuration (ConfigError: exit 2 in `fail`); `code` gives exit 2 where errorCode is used. */
export class DataDirError extends ConfigError {
  readonly code = 'INVALID';
}

/** Mode of the data directory (and the parents) made by makeDataDir: owner rwx, group r-x, others nothing. */
export const DATA_DIR_MODE = 0o750;

const where = 'check --data, data_dir or TAPEDECK_DATA_DIR';

/**
 * Makes the data directory (and its parents) when missing, DATA_DIR_MODE; refuses a path that is not
 * a directory. An existing directory is left as it is.
 */
export async function makeDataDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: DATA_DIR_MODE });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new DataDirError(`data directory ${dir} is not a directory (${where})`);
    throw new DataDirError(`cannot create the data directory ${dir}: ${(err as Error).message} (${where})`);
  }
}

/** For commands that only read the catalog: the data directory must exist already. */
export async function existingDataDir(dir: string): Promise<void> {
  const st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new DataDirError(`no data directory ${dir}: nothing is catalogued there (${where}; \`tapedeck scan\` or \`tapedeck serve\` creates it)`);
    if (err.code === 'ENOTDIR') throw new DataDirError(`data directory ${dir} is not a directory (${where})`);
    throw err;
  });
  if (!st.isDirectory()) throw new DataDirError(`data directory ${dir} is not a directory (${where})`);
}
