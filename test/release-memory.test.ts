// releaseMemory() really runs a full garbage collection (the server calls it after a scan).
import test from 'ava';
import { releaseMemory } from '../src/util/release-memory.js';

test('releaseMemory collects garbage that nothing references any more', async (t) => {
  let big: number[] | undefined = Array.from({ length: 100_000 }, (_, i) => i);
  const ref = new WeakRef(big);
  big = undefined;
  // let the current task end so the WeakRef's target is no longer kept alive by it
  await new Promise((r) => setTimeout(r, 0));
  t.true(releaseMemory());
  t.is(ref.deref(), undefined);
});
