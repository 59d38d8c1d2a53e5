// LevelStore.reopen (issue 11, memory that does not grow with the library): LevelDB 1.20 maps
// every table file it reads and keeps the touched pages resident while the file is open, so a
// pass over the whole catalog left tens of MB of it in the server's RSS. Closing and opening the
// database again unmaps them; calls that arrive meanwhile wait and then run, and a reopen waits
// until nothing is in flight (an open iterator included).
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStore } from '../src/catalog/store.js';

/** Resident kB of this process's mappings of the table files under `dir`. */
function mappedKb(dir: string): number {
  let kb = 0;
  let on = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) on = line.includes(dir) && /\.ldb( \(deleted\))?$/.test(line);
    else if (on && line.startsWith('Rss:')) kb += Number(/(\d+)/.exec(line)?.[1] ?? 0);
  }
  return kb;
}

async function filled(t: { teardown(fn: () => unknown): void }): Promise<{ store: LevelStore; dir: string }> {
  const root = await mkdtemp(join(tmpdir(), 'tapedeck-reopen-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dir = join(root, 'db');
  const store = new LevelStore(dir);
  await store.open();
  t.teardown(() => store.close());
  // ~4 MB of values with little to compress: several table files once compacted
  let seed = 1;
  const noise = () => Array.from({ length: 200 }, () => ((seed = (seed * 48271) % 2147483647) % 36).toString(36)).join('');
  for (let i = 0; i < 20_000; i += 1000) {
    await store.batch(Array.from({ length: 1000 }, (_, j) => ({ type: 'put' as const, key: `k/${String(i + j).padStart(6, '0')}`, value: noise() })));
  }
  await store.compact();
  return { store, dir };
}

test('reopen unmaps the table pages a full read left resident and keeps every entry', async (t) => {
  const { store, dir } = await filled(t);
  let n = 0;
  for await (const [, v] of store.entries({ gte: 'k/', lt: 'k/\uffff' })) n += v.length > 0 ? 1 : 0;
  t.is(n, 20_000);
  if (!existsSync('/proc/self/smaps')) return t.pass('no /proc/self/smaps here: mappings not checked');
  const before = mappedKb(dir);
  t.true(before > 1024, `table pages resident after the read: ${before} kB`);
  t.true(await store.reopen());
  t.true(mappedKb(dir) < 64, `after the reopen: ${mappedKb(dir)} kB (before ${before} kB)`);
  t.is((await store.keyList({ gte: 'k/', lt: 'k/\uffff' })).length, 20_000);
  t.is((await store.get('k/019999'))?.length, 200);
});

test('calls made while the database reopens wait for it, then run; writes are kept', async (t) => {
  const { store } = await filled(t);
  const reopened = store.reopen();
  // these start while it closes and opens: none may fail
  const [got, many, , list] = await Promise.all([
    store.get('k/000001'),
    store.getMany(['k/000002', 'k/nope']),
    store.batch([{ type: 'put', key: 'k/new', value: 'v' }]),
    store.keyList({ gte: 'k/0199', lt: 'k/0199\uffff' }),
  ]);
  t.true(await reopened);
  t.is(got?.length, 200);
  t.is(many[0]?.length, 200);
  t.is(many[1], undefined);
  t.is(list.length, 100);
  t.is(await store.get('k/new'), 'v');
  // and a second reopen finds the write in the reopened database
  t.true(await store.reopen());
  t.is(await store.get('k/new'), 'v');
});

test('reopen waits until an open iterator ends, and gives up (false, nothing closed) when it never does', async (t) => {
  const { store } = await filled(t);
  const it = store.entries({ gte: 'k/' })[Symbol.asyncIterator]();
  t.is((await it.next()).value?.[0], 'k/000000');
  // never quiet within 100 ms: nothing happens, the iterator reads on
  t.false(await store.reopen(100));
  t.is((await it.next()).value?.[0], 'k/000001');
  let state = 'waiting';
  const reopened = store.reopen(10_000).then((ok) => (state = ok ? 'reopened' : 'gave up'));
  // the iterator still reads while the reopen waits for it
  t.is((await it.next()).value?.[0], 'k/000002');
  await new Promise((r) => setTimeout(r, 50));
  t.is(state, 'waiting');
  await it.return?.();
  await reopened;
  t.is(state, 'reopened');
  t.is(await store.get('k/000003').then((v) => v?.length), 200);
});
