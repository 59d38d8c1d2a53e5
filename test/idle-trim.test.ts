// Memory given back once requests stopped (issue 11 item 2): a full collection when the V8 heap
// grew, and a catalog reopen in every trim (whether the heap or the file-backed pages, LevelDB's
// mapped tables, grew: what LevelDB's reads left in the C heap leaves with it), only after
// `idleMs` without a request, never during a scan, and not again until the process grew again.
// The clock is injected: nothing here depends on timing.
import test from 'ava';
import { IdleTrim, rssFileBytes } from '../src/util/idle-trim.js';
import { loadConfig } from '../src/config.js';

const MB = 1024 ** 2;

function fake() {
  const state = { now: 1_000_000, heap: 40 * MB, file: 50 * MB, busy: false, collections: 0, reopens: 0 };
  const trim = new IdleTrim({
    idleMs: 5000,
    growthBytes: 4 * MB,
    heapBytes: () => state.heap,
    fileBytes: () => state.file,
    collect: () => {
      state.collections++;
      state.heap = 25 * MB; // what a full collection leaves
    },
    reopen: async () => {
      state.reopens++;
      state.file = 42 * MB; // the tables' pages left with the reopen
    },
    busy: () => state.busy,
    now: () => state.now,
  });
  return { trim, state };
}

test('collects once the requests stopped for idleMs, not before, and not again until the heap grew again', async (t) => {
  const { trim, state } = fake();
  trim.touch();
  state.now += 4999;
  t.false(await trim.check());
  t.is(state.collections, 0);
  state.now += 1;
  t.true(await trim.check()); // the first quiet moment collects (start-up leaves the heap grown)
  t.is(state.collections, 1);
  t.is(state.reopens, 1); // every trim reopens the catalog, grown file-backed pages or not
  // quiet on: nothing grew, nothing to do (a request now and then costs no collection)
  state.now += 60_000;
  t.false(await trim.check());
  trim.touch();
  state.heap += 3 * MB;
  state.now += 6000;
  t.false(await trim.check());
  // a burst: the heap grew past the threshold; a request 1 s ago holds the trim back
  state.heap += 2 * MB;
  state.now += 1000;
  trim.touch();
  state.now += 1000;
  t.false(await trim.check());
  state.now += 4000;
  t.true(await trim.check());
  t.is(state.collections, 2);
  t.deepEqual(trim.counts, { collections: 2, reopens: 2, mapped: 0, drops: 0 });
});

test('empties the caches first in every quiet trim (the collection after it gives their memory back), never under load', async (t) => {
  const calls: string[] = [];
  let now = 1_000_000;
  let heap = 40 * MB;
  const trim = new IdleTrim({
    idleMs: 5000,
    growthBytes: 4 * MB,
    heapBytes: () => heap,
    fileBytes: () => 50 * MB,
    release: () => calls.push('release'),
    collect: () => {
      calls.push('collect');
      heap = 25 * MB;
    },
    reopen: async () => void calls.push('reopen'),
    now: () => now,
  });
  trim.touch();
  heap += 10 * MB;
  now += 1000;
  t.false(await trim.check()); // requests still coming
  t.deepEqual(calls, []);
  now += 5000;
  t.true(await trim.check());
  t.deepEqual(calls, ['release', 'collect', 'reopen']);
  now += 60_000;
  t.false(await trim.check()); // nothing grew since: the caches are left alone
  t.is(calls.length, 3);
});

test('requests between a trim and its young-generation retries get a whole trim once quiet again, not a lone collection', async (t) => {
  const calls: string[] = [];
  let now = 1_000_000;
  let heap = 40 * MB;
  let young = 8 * MB;
  const trim = new IdleTrim({
    idleMs: 5000,
    growthBytes: 4 * MB,
    heapBytes: () => heap + young,
    fileBytes: () => 50 * MB,
    release: () => calls.push('release'),
    collect: () => {
      calls.push('collect');
      heap = 25 * MB; // the young generation stays grown (V8 saw a high allocation rate)
    },
    youngGrown: () => young > 2 * MB,
    reopen: async () => void calls.push('reopen'),
    now: () => now,
  });
  now += 6000;
  t.true(await trim.check());
  t.deepEqual(calls, ['release', 'collect', 'reopen']); // retries pending: the young generation is grown
  // a burst of requests (a policy pass, then a TV) before the next quiet look
  trim.touch();
  heap += 15 * MB;
  now += 6000;
  t.true(await trim.check());
  t.deepEqual(calls, ['release', 'collect', 'reopen', 'release', 'collect', 'reopen'], 'the caches the burst filled emptied, the catalog reopened');
  young = 1 * MB;
});

test('reopens the catalog when requests mapped its tables; never while a scan runs', async (t) => {
  const { trim, state } = fake();
  state.now += 6000;
  t.true(await trim.check());
  t.is(state.reopens, 1);
  trim.touch();
  state.file += 8 * MB; // table pages a Browse load touched
  state.busy = true;
  state.now += 10_000;
  t.false(await trim.check());
  state.busy = false;
  t.true(await trim.check());
  t.is(state.reopens, 2);
  t.is(state.collections, 1); // the heap did not grow: no second collection
  t.is(state.file, 42 * MB);
});

test('a reopen made elsewhere (after a scan) is the new base', async (t) => {
  const { trim, state } = fake();
  state.now += 6000;
  await trim.check(); // base taken while a scan's table pages were still mapped
  state.file = 30 * MB; // the scan's reopen unmapped them
  trim.rebase();
  state.file += 8 * MB; // a load maps 8 MB again: grown against the new base
  trim.touch();
  state.now += 6000;
  t.true(await trim.check()); // 38 MB: below the first trim's base (42), 8 MB over the new one
  t.is(state.reopens, 2);
});

test('collects again on the next quiet looks while the young generation stays grown (V8 shrinks it only once its allocation rate fell)', async (t) => {
  let young = 8 * MB;
  let collections = 0;
  let now = 1_000_000;
  const trim = new IdleTrim({
    idleMs: 5000,
    growthBytes: 4 * MB,
    heapBytes: () => 25 * MB + young,
    fileBytes: () => 50 * MB,
    collect: () => {
      collections++;
      if (collections === 3) young = 1 * MB; // the third collection saw a low allocation rate
    },
    reopen: async () => undefined,
    youngGrown: () => young > 2 * MB,
    now: () => now,
  });
  now += 6000;
  t.true(await trim.check());
  t.is(collections, 1);
  trim.touch(); // a request holds the retries back too
  now += 1000;
  t.false(await trim.check());
  now += 5000;
  t.true(await trim.check());
  t.true(await trim.check());
  t.is(collections, 3);
  t.is(young, 1 * MB);
  // shrunk: no more collections
  now += 60_000;
  t.false(await trim.check());
  t.false(await trim.check());
  t.is(collections, 3);
});

// catalog_mapped (issue 11): while requests keep coming, the catalog is reopened when the
// process's file-backed resident memory (LevelDB's mapped table pages, mostly) grew past the
// budget since the last reopen; the quiet-time trim above is untouched by it.
function loaded(budgetMB: number, drop?: { budgetMB: number; works: boolean }) {
  const state = { now: 1_000_000, rssFile: 50 * MB, busy: false, reopens: 0, drops: 0, why: [] as string[], release: undefined as undefined | (() => void), hold: false };
  const trim = new IdleTrim({
    idleMs: 5000,
    growthBytes: 4 * MB,
    mappedBudget: budgetMB * MB,
    ...(drop
      ? {
          dropBudget: drop.budgetMB * MB,
          dropMapped: () => {
            state.drops++;
            if (!drop.works) return false;
            state.rssFile = 51 * MB; // the tables' pages left; the node binary's stay
            return true;
          },
        }
      : {}),
    heapBytes: () => 30 * MB,
    fileBytes: () => state.rssFile,
    collect: () => undefined,
    busy: () => state.busy,
    reopen: async (why) => {
      state.reopens++;
      state.why.push(why);
      if (state.hold) await new Promise<void>((r) => (state.release = r));
      state.rssFile = 50 * MB; // the tables' pages left with the reopen
    },
    now: () => state.now,
  });
  // a request just came (and keeps coming): never quiet in these tests
  const request = () => {
    state.now += 100;
    trim.touch();
  };
  return { trim, state, request };
}

test('catalog_mapped: under load, reopens once the file-backed pages grew past the budget since the last reopen, not before', async (t) => {
  const { trim, state, request } = loaded(16);
  trim.rebase();
  request();
  state.rssFile += 15 * MB;
  t.false(await trim.check());
  t.is(state.reopens, 0);
  state.rssFile += 2 * MB; // 17 MB more than at the start
  request();
  t.true(await trim.check());
  t.is(state.reopens, 1);
  t.deepEqual(state.why, ['catalog_mapped']);
  // the base is taken again after the reopen
  state.rssFile += 10 * MB;
  request();
  t.false(await trim.check());
  state.rssFile += 7 * MB;
  request();
  t.true(await trim.check());
  t.deepEqual(trim.counts, { collections: 0, reopens: 2, mapped: 2, drops: 0 });
});

test('catalog_mapped: never while a scan or the frame pass runs, and one reopen at a time', async (t) => {
  const { trim, state, request } = loaded(16);
  trim.rebase();
  state.rssFile += 40 * MB;
  state.busy = true;
  request();
  t.false(await trim.check());
  t.is(state.reopens, 0);
  state.busy = false;
  state.hold = true;
  const first = trim.check();
  t.false(await trim.check(), 'a second look while the first reopen runs does nothing');
  state.release!();
  t.true(await first);
  t.is(state.reopens, 1);
});

test('catalog_mapped: a drop (someone else reopened) becomes the new base', async (t) => {
  const { trim, state, request } = loaded(16);
  trim.rebase();
  state.rssFile = 40 * MB;
  request();
  t.false(await trim.check());
  state.rssFile = 40 * MB + 17 * MB;
  t.true(await trim.check());
});

test('catalog_mapped 0: no reopen under load however much was mapped; the quiet trim still reopens', async (t) => {
  const { trim, state, request } = loaded(0);
  trim.rebase();
  state.rssFile += 500 * MB;
  request();
  t.false(await trim.check());
  t.is(state.reopens, 0);
  state.now += 6000; // quiet
  t.true(await trim.check());
  t.deepEqual(state.why, ['idle']);
});

test('catalog_mapped below the idle growth: the quiet trim reopens past the smaller of the two', async (t) => {
  const { trim, state } = loaded(1);
  trim.rebase();
  state.rssFile += 2 * MB; // < growthBytes (4 MB), > catalog_mapped (1 MB)
  state.now += 6000;
  t.true(await trim.check());
  t.is(state.reopens, 1);
});

test('under load, the mapped table pages are dropped (no reopen) once the file-backed pages grew past the drop budget since the last drop', async (t) => {
  const { trim, state, request } = loaded(16, { budgetMB: 2, works: true });
  trim.rebase();
  request();
  state.rssFile += 2 * MB; // not past 2 MB yet
  t.false(await trim.check());
  t.is(state.drops, 0);
  state.rssFile += 1;
  request();
  t.true(await trim.check());
  t.is(state.drops, 1);
  t.is(state.rssFile, 51 * MB);
  // the base is what the drop left (51 MB): 2 MB more is not yet past it
  state.rssFile += 2 * MB;
  request();
  t.false(await trim.check());
  state.rssFile += 20 * MB; // past catalog_mapped too: the drop comes first, no reopen
  request();
  t.true(await trim.check());
  t.deepEqual(trim.counts, { collections: 0, reopens: 0, mapped: 0, drops: 2 });
  t.is(state.reopens, 0);
  // the faster look between the trims (checkDrop) keeps the same base
  state.rssFile += 1 * MB;
  t.false(trim.checkDrop());
  state.rssFile += 2 * MB;
  t.true(trim.checkDrop());
  t.is(state.drops, 3);
  t.is(state.rssFile, 51 * MB);
});

test('after drops under load, the quiet trim still reopens the catalog once (then not again until requests mapped more)', async (t) => {
  const { trim, state, request } = loaded(0, { budgetMB: 2, works: true });
  trim.rebase();
  state.rssFile += 5 * MB;
  request();
  t.true(await trim.check());
  t.is(state.drops, 1);
  t.is(state.rssFile, 51 * MB); // what the drop left is the base: no growth to see
  state.now += 6000; // quiet
  t.true(await trim.check());
  t.deepEqual(state.why, ['idle']);
  state.now += 6000;
  t.false(await trim.check());
  t.is(state.reopens, 1);
});

test('a drop that throws is a drop not done (it runs from a timer: the server must not go down)', async (t) => {
  const state = { now: 1_000_000, rssFile: 50 * MB };
  const trim = new IdleTrim({
    idleMs: 5000,
    growthBytes: 4 * MB,
    heapBytes: () => 30 * MB,
    fileBytes: () => state.rssFile,
    collect: () => undefined,
    reopen: async () => undefined,
    dropBudget: 2 * MB,
    dropMapped: () => {
      throw new Error('too many iterators');
    },
    now: () => state.now,
  });
  trim.rebase();
  state.rssFile += 10 * MB;
  trim.touch();
  t.false(trim.checkDrop());
  t.false(await trim.check());
  t.is(trim.counts.drops, 0);
});

test('a drop that cannot be done (no madvise, database reopening) falls back to catalog_mapped\'s reopen', async (t) => {
  const { trim, state, request } = loaded(16, { budgetMB: 2, works: false });
  trim.rebase();
  state.rssFile += 5 * MB;
  request();
  t.false(await trim.check());
  t.is(state.drops, 1);
  state.rssFile += 12 * MB;
  request();
  t.true(await trim.check());
  t.deepEqual(state.why, ['catalog_mapped']);
  // and without catalog_mapped, nothing
  const off = loaded(0, { budgetMB: 2, works: false });
  off.trim.rebase();
  off.state.rssFile += 40 * MB;
  off.request();
  t.false(await off.trim.check());
  t.is(off.state.reopens, 0);
});

test('catalog_mapped: off (0) by default, a size turns it on, bad sizes are refused', (t) => {
  t.is(loadConfig({ env: {}, flags: {} }).catalogMapped, 0);
  t.is(loadConfig({ env: {}, flags: { catalogMapped: '16M' } }).catalogMapped, 16 * MB);
  t.is(loadConfig({ env: {}, flags: { catalogMapped: '0' } }).catalogMapped, 0);
  t.is(loadConfig({ env: { TAPEDECK_CATALOG_MAPPED: '32M' }, flags: {} }).catalogMapped, 32 * MB);
  t.throws(() => loadConfig({ env: {}, flags: { catalogMapped: 'lots' } }));
});

test('rssFileBytes reads this process (Linux)', (t) => {
  const v = rssFileBytes();
  if (v === undefined) return t.pass('no /proc/self/status here');
  t.true(v > 1 * MB, `${v} bytes`);
});
