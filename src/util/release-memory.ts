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
