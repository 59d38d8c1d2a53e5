// Gives the C heap's free pages back to the system (issue 11 item 2). glibc returns memory that
// malloc'd blocks freed only from the top of its heaps; what a scan, a LevelDB reopen or a burst
// of Search requests freed below a block still in use stays resident, fragmented: on a
// 20,000-item server 12-14 MB of the main `[heap]` after the first scan and after a Browse and
// Search load, against 5-6 MB that are in use (bench/README.md). `malloc_trim(0)` hands every
// free page of every arena back (madvise), which only a native call can ask for: Node.js has
// none, so it goes through koffi (an optional dependency with its prebuilt binaries in the npm
// package). Loading koffi costs ~5 MB of the process itself (its library's pages and its call
// stacks): it is loaded on the first trim only, never where nothing asks for one, and its
// stacks are made small (one call with one integer argument). Anywhere koffi or glibc's
// malloc_trim is missing (musl, macOS, an install without optional dependencies), nothing
// happens. Synchronous and short (ms on a heap of tens of MB; it holds the arenas' locks while
// it walks their free lists): for quiet moments, never in a request's path.

import { createRequire } from 'node:module';

interface Koffi {
  config(c: Record<string, number>): unknown;
  load(path: string): { func(signature: string): (...args: unknown[]) => unknown };
}

let trim: ((pad: number) => unknown) | null | undefined;

function load(): ((pad: number) => unknown) | null {
  if (process.platform !== 'linux') return null;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    // its defaults (1 MiB stack + 2 MiB heap for synchronous calls, 4 pools for async ones)
    // are for calls that pass large structures; malloc_trim takes one integer
    koffi.config({ sync_stack_size: 65536, sync_heap_size: 65536, async_stack_size: 65536, async_heap_size: 65536, resident_async_pools: 0 });
    return koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => unknown;
  } catch {
    return null; // no koffi, no glibc: nothing to trim with
  }
}

/** malloc_trim(0) of glibc: false when it cannot be called here (then nothing happened). */
export function mallocTrim(): boolean {
  if (trim === undefined) trim = load();
  if (!trim) return false;
  trim(0);
  return true;
}
