// Races a check-then-read: the first lstat() of `path` (through node:fs/promises, as src/ imports
// it) returns the regular file's stats, then puts a symbolic link to `target` at `path`, as
// someone who may write to a share could between a server's check and its read.

import { createRequire, syncBuiltinESMExports } from 'node:module';
import { rm, symlink } from 'node:fs/promises';

/** Runs `fn` with the swap armed; resolves to whether the swap happened. */
export async function withLinkSwappedAfterLstat(path: string, target: string, fn: () => Promise<unknown>): Promise<boolean> {
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const realLstat = fsp.lstat;
  let swapped = false;
  fsp.lstat = (async (p: Parameters<typeof realLstat>[0], o?: Parameters<typeof realLstat>[1]) => {
    const st = await realLstat(p, o as never);
    if (String(p) === path && !swapped) {
      swapped = true;
      await rm(path);
      await symlink(target, path);
    }
    return st;
  }) as typeof realLstat;
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    fsp.lstat = realLstat;
    syncBuiltinESMExports();
  }
  return swapped;
}
