// LevelDB reads its table files with pread instead of mapping them (issue 11 item 2).
// LevelDB 1.20 (classic-level's addon) maps up to 1,000 table files on a 64-bit system (none on
// a 32-bit one) and reads table blocks straight from the mapping: every page a Browse or Search
// touched then stays in the server's resident memory while the file is open, though the same
// page is in the OS page cache anyway (20,000 items: 6-9 MB after the bench's load; 100,000:
// ~32 MB, refaulted within 250 ms of a drop by an uncached Search load). With no mappings a block
// is read with one pread into a buffer LevelDB frees or keeps in its bounded block cache
// (`catalog_cache`): the bytes live in the page cache only, once. LevelDB has no option for it;
// its posix Env reads the limit from a setter it exports for its own tests
// (EnvPosixTestHelper::SetReadOnlyMMapLimit), which takes effect only before the Env exists,
// that is before the process opens its first database. Called through koffi
// (src/util/libc.ts); where it cannot be (no koffi, another platform, a build without the
// symbol), LevelDB maps as before and the idle trim's table-page drops bound what stays
// (src/util/idle-trim.ts).

import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { nativeFunction } from '../util/libc.js';

let done: boolean | undefined;

/** The path of the addon classic-level loads (node-gyp-build picks the prebuilt one for this system). */
function addonPath(): string {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('classic-level'));
  const gyp = createRequire(`${dir}/index.js`)('node-gyp-build') as { path(dir: string): string };
  return gyp.path(dir);
}

/**
 * Asks LevelDB never to map table files in this process. Must run before the first database
 * opens (later it changes nothing); true when the setting was made (then it holds for every
 * database this process opens), false when it could not be.
 */
export function readTablesWithoutMmap(): boolean {
  if (done !== undefined) return done;
  done = false;
  if (process.platform !== 'linux' || process.env.TAPEDECK_LEVELDB_MMAP === '1') return done;
  try {
    const set = nativeFunction(addonPath(), 'void _ZN7leveldb18EnvPosixTestHelper20SetReadOnlyMMapLimitEi(int)');
    if (set) {
      set(0);
      done = true;
    }
  } catch {
    // classic-level's addon not found where expected: LevelDB maps as before
  }
  return done;
}
