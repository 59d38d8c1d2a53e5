// catalog_mapped (issue 11): the catalog is reopened when the process's file-backed resident
// memory (LevelDB's mapped table pages, mostly) grew past the budget since the last reopen.
import test from 'ava';
import { MappedTablesWatch, rssFileBytes } from '../src/catalog/mapped-watch.js';
import { loadConfig } from '../src/config.js';

const MB = 1024 ** 2;

function fake(budgetMB: number) {
  const state = { rssFile: 50 * MB, busy: false, reopens: 0, release: undefined as undefined | (() => void), hold: false };
  const watch = new MappedTablesWatch({
    budgetBytes: budgetMB * MB,
    readRssFile: () => state.rssFile,
    busy: () => state.busy,
    reopen: async () => {
      state.reopens++;
      if (state.hold) await new Promise<void>((r) => (state.release = r));
      state.rssFile = 50 * MB; // the tables' pages left with the reopen
    },
  });
  return { watch, state };
}

test('reopens once the file-backed pages grew past the budget since the last reopen, not before', async (t) => {
  const { watch, state } = fake(16);
  watch.rebase();
  state.rssFile += 15 * MB;
  t.false(await watch.check());
  t.is(state.reopens, 0);
  state.rssFile += 2 * MB; // 17 MB more than at the start
  t.true(await watch.check());
  t.is(state.reopens, 1);
  // the baseline is taken again after the reopen
  state.rssFile += 10 * MB;
  t.false(await watch.check());
  state.rssFile += 7 * MB;
  t.true(await watch.check());
  t.is(watch.reopens, 2);
});

test('never while a scan or the frame pass runs, and one reopen at a time', async (t) => {
  const { watch, state } = fake(16);
  watch.rebase();
  state.rssFile += 40 * MB;
  state.busy = true;
  t.false(await watch.check());
  t.is(state.reopens, 0);
  state.busy = false;
  state.hold = true;
  const first = watch.check();
  t.false(await watch.check(), 'a second look while the first reopen runs does nothing');
  state.release!();
  t.true(await first);
  t.is(state.reopens, 1);
});

test('a drop (someone else reopened) becomes the new baseline', async (t) => {
  const { watch, state } = fake(16);
  watch.rebase();
  state.rssFile = 40 * MB;
  t.false(await watch.check());
  state.rssFile = 40 * MB + 17 * MB;
  t.true(await watch.check());
});

test('catalog_mapped: off (0) by default, a size turns the watch on, bad sizes are refused', (t) => {
  t.is(loadConfig({ env: {}, flags: {} }).catalogMapped, 0);
  t.is(loadConfig({ env: {}, flags: { catalogMapped: '16M' } }).catalogMapped, 16 * MB);
  t.is(loadConfig({ env: {}, flags: { catalogMapped: '0' } }).catalogMapped, 0);
  t.is(loadConfig({ env: { TAPEDECK_CATALOG_MAPPED: '32M' }, flags: {} }).catalogMapped, 32 * MB);
  t.throws(() => loadConfig({ env: {}, flags: { catalogMapped: 'lots' } }));
  const off = new MappedTablesWatch({ budgetBytes: 0, reopen: async () => t.fail('no reopen with 0') });
  off.start(10);
  t.pass();
  return off.stop();
});

test('rssFileBytes reads this process (Linux)', (t) => {
  const v = rssFileBytes();
  if (v === undefined) return t.pass('no /proc/self/status here');
  t.true(v > 1 * MB, `${v} bytes`);
});
