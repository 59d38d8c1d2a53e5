// Gives memory back after a burst of work (a scan that read thousands of files): a full,
// synchronous garbage collection, after which V8 returns the pages it emptied instead of
// keeping the grown heap until its idle-time memory reducer gets to it. Node exposes gc()
// only behind --expose-gc; the flag is set at run time for a fresh context's gc().

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

/** Runs a full garbage collection; false when this Node.js does not allow it. */
export function releaseMemory(): boolean {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  if (!gc) return false;
  gc();
  return true;
}

/**
 * A full collection that moves every live object of the old generation (V8's flag
 * --compact-on-every-full-gc, set for this one collection): a plain one evacuates only the
 * pages V8 picks as most fragmented, and after a burst of requests the old space kept 4-5 MB
 * of committed pages more than it held (20,000-item server: 25.2 MB committed for 19.6 live,
 * 21.7 after this one). Costs one collection that copies the live heap (tens of ms); V8 gives
 * the emptied pages back a moment later. For quiet moments only. False without gc().
 */
export function compactHeap(): boolean {
  if (!releaseMemory()) return false;
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc!();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
  return true;
}
