// The "needed" cartridges file: offline (exported) cartridges that read requests
// asked for, kept in <cache_dir>/needed.json for the operator's `tapedeck tape ls`,
// which may run without the server. The staging worker rewrites it whenever the
// scheduler's list changes (and clears it at start: the list is rebuilt from
// requests, so it never shows stale needs).

import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkerLog } from './log.js';
import type { NeededCartridge } from './scheduler.js';

export const NEEDED_FILE = 'needed.json';

/** Writes the list atomically (temp file + rename); a failure is logged, never thrown. */
export async function writeNeededCartridges(cacheDir: string, cartridges: NeededCartridge[], log: WorkerLog): Promise<void> {
  const path = join(cacheDir, NEEDED_FILE);
  const tmp = path + '.tmp';
  try {
    await writeFile(tmp, JSON.stringify({ cartridges }, null, 2) + '\n', { mode: 0o640 });
    await rename(tmp, path);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot write needed.json');
  }
}

/** Offline cartridges the stager was asked for (for `tapedeck tape ls`); [] when none or unknown. */
export async function readNeededCartridges(cacheDir: string): Promise<{ label: string; since: number; requests: number; lastItem?: string }[]> {
  try {
    const o = JSON.parse(await readFile(join(cacheDir, NEEDED_FILE), 'utf8')) as { cartridges?: unknown };
    return Array.isArray(o.cartridges) ? (o.cartridges as { label: string; since: number; requests: number }[]).filter((c) => typeof c?.label === 'string') : [];
  } catch {
    return [];
  }
}
