// Gives the C heap's free pages back to the system (issue 11 item 2). glibc returns memory that
// malloc'd blocks freed only from the top of its heaps; what a scan, a LevelDB reopen or a burst
// of Search requests freed below a block still in use stays resident, fragmented: on a
// 20,000-item server 12-14 MB of the main `[heap]` after the first scan and after a Browse and
// Search load, against 5-6 MB that are in use (bench/README.md). `malloc_trim(0)` hands every
// free page of every arena back (madvise), which only a native call can ask for: through koffi
// (src/util/libc.ts). Anywhere it cannot be called, nothing happens. Synchronous and short (ms on
// a heap of tens of MB; it holds the arenas' locks while it walks their free lists): for quiet
// moments, never in a request's path.

import { libcFunction } from './libc.js';

let trim: ((pad: number) => number) | null | undefined;

/** malloc_trim(0) of glibc: false when it cannot be called here (then nothing happened). */
export function mallocTrim(): boolean {
  if (trim === undefined) trim = libcFunction('int malloc_trim(size_t pad)');
  if (!trim) return false;
  trim(0);
  return true;
}
