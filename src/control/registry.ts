// Which Tapedeck servers run on this machine, and on which data directory, so a command
// that did not find something in the catalog it opened can say that a running server uses
// another one ("add --data DIR"). Each control server leaves one small file
//   $XDG_RUNTIME_DIR/tapedeck/<hash of the socket path>.json   (else $TMPDIR/tapedeck-<uid>/)
// holding { pid, dataDir, socket }, removed when it closes; entries of dead processes (kill -9)
// are ignored and removed by the next reader. The installed service's data directory
// (/var/lib/tapedeck, another user's runtime directory) is checked by its socket's existence.

import { createHash } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SOCKET_NAME } from './protocol.js';
import { isProcessAlive } from '../util/pid.js';

/** Data directory of the systemd units (StateDirectory=tapedeck). */
export const INSTALLED_DATA_DIR = '/var/lib/tapedeck';

export interface RunningServer {
  pid?: number;
  dataDir: string;
  socket: string;
}

export function registryDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'tapedeck') : join(tmpdir(), `tapedeck-${process.getuid?.() ?? 'user'}`);
}

const entryName = (socket: string) => createHash('sha256').update(socket).digest('hex').slice(0, 16) + '.json';

/**
 * Whether the registry directory is this user's own: a real directory (not a link) owned by
 * this user that no one else may write to. `$TMPDIR/tapedeck-<uid>` sits in a world-writable
 * directory where another local user can create it first and plant a link named after a
 * note (the names are predictable): a server writing there would write through the link
 * (as root: any file), and a command would read that user's notes. Such a directory is not used.
 */
async function ownDir(dir: string): Promise<boolean> {
  try {
    const st = await lstat(dir);
    const uid = process.getuid?.();
    return st.isDirectory() && (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** Opened for writing without following a link at the note's name (O_NOFOLLOW where the platform has it). */
const WRITE_NOFOLLOW = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0);

/** Note a control server; returns the function that removes the note. */
export async function registerServer(socket: string, env: NodeJS.ProcessEnv = process.env): Promise<() => Promise<void>> {
  const dir = registryDir(env);
  const file = join(dir, entryName(socket));
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await ownDir(dir))) return async () => undefined;
    const entry: RunningServer = { pid: process.pid, dataDir: dirname(socket), socket };
    await writeFile(file, JSON.stringify(entry) + '\n', { mode: 0o600, flag: WRITE_NOFOLLOW });
  } catch {
    // only a hint for messages: a server that cannot write it runs all the same
  }
  return () => rm(file, { force: true }).catch(() => undefined);
}

/** Servers running now (live process and socket present), the installed one included when its socket exists. */
export async function runningServers(env: NodeJS.ProcessEnv = process.env): Promise<RunningServer[]> {
  const dir = registryDir(env);
  const out = new Map<string, RunningServer>();
  const names = (await ownDir(dir)) ? await readdir(dir).catch(() => [] as string[]) : [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const file = join(dir, name);
    let e: RunningServer | undefined;
    try {
      e = JSON.parse(await readFile(file, 'utf8')) as RunningServer;
    } catch {
      continue;
    }
    if (typeof e?.pid !== 'number' || typeof e.socket !== 'string' || typeof e.dataDir !== 'string') continue;
    if (!isProcessAlive(e.pid) || !existsSync(e.socket)) {
      await rm(file, { force: true }).catch(() => undefined);
      continue;
    }
    out.set(e.dataDir, { pid: e.pid, dataDir: e.dataDir, socket: e.socket });
  }
  const installed = join(INSTALLED_DATA_DIR, SOCKET_NAME);
  if (!out.has(INSTALLED_DATA_DIR) && existsSync(installed)) out.set(INSTALLED_DATA_DIR, { dataDir: INSTALLED_DATA_DIR, socket: installed });
  return [...out.values()];
}

/**
 * Lines saying which catalog was searched and whether a running server uses another one,
 * for "unknown path / object ID" messages.
 */
export async function catalogHint(dataDir: string, viaServer: boolean, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const lines = [`searched the catalog in data directory ${dataDir}${viaServer ? ' (held by the running server)' : ''}`];
  const others = (await runningServers(env)).filter((s) => s.dataDir !== dataDir);
  for (const s of others) lines.push(`a running server${s.pid ? ` (pid ${s.pid})` : ''} uses another catalog, in ${s.dataDir}: add --data ${s.dataDir} to search it`);
  if (others.length === 0) lines.push(viaServer ? 'no other running server found' : 'no running server found: none uses another catalog');
  return lines.map((l) => `  ${l}`).join('\n');
}
