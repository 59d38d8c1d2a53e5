// LevelStore.reopen (issue 11, memory that does not grow with the library): LevelDB 1.20 maps
// every table file it reads and keeps the touched pages resident while the file is open, so a
// pass over the whole catalog left tens of MB of it in the server's RSS. Closing and opening the
// database again unmaps them; calls that arrive meanwhile wait and then run, and a reopen waits
// until nothing is in flight (an open iterator included).
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LevelStore } from '../src/catalog/store.js';
import { tempDir, tempLevelStore } from './helpers/temp.js';
import { filledLevelStore, mappedKb } from './helpers/level-tables.js';

// the unmapping these tests check happens where LevelDB maps its tables (the fallback of
// src/catalog/table-mmap.ts): this process lets it (read by the first LevelStore)
process.env.TAPEDECK_LEVELDB_MMAP = '1';

const filled = (t: { teardown(fn: () => unknown): void }) => filledLevelStore(t, 'tapedeck-reopen-');

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
  const reopened = store.reopen(120_000).then((ok) => (state = ok ? 'reopened' : 'gave up'));
  // the iterator still reads while the reopen waits for it
  t.is((await it.next()).value?.[0], 'k/000002');
  await new Promise((r) => setTimeout(r, 50));
  t.is(state, 'waiting');
  await it.return?.();
  await reopened;
  t.is(state, 'reopened');
  t.is(await store.get('k/000003').then((v) => v?.length), 200);
});

test('empty values are stored as one U+0000 (classic-level leaks the copy of an empty value) and read back as written', async (t) => {
  const { Level } = await import('level');
  const { store, dir } = await tempLevelStore(t, 'tapedeck-empty-');
  const values: [string, string][] = [
    ['a', ''],
    ['b', '\u0000'],
    ['c', '\u0000\u0000x'],
    ['d', 'x\u0000'],
    ['e', '{"id":"i1"}'],
  ];
  await store.batch(values.map(([key, value]) => ({ type: 'put', key, value })));
  for (const [k, v] of values) t.is(await store.get(k), v, `get ${JSON.stringify(k)}`);
  t.deepEqual(await store.getMany(values.map(([k]) => k)), values.map(([, v]) => v));
  t.deepEqual(await store.entryList({}), values);
  const iterated: [string, string][] = [];
  for await (const e of store.entries({})) iterated.push(e);
  t.deepEqual(iterated, values);
  await store.close();
  // what LevelDB holds: no empty value; a value written empty by an older version reads as ''
  const raw = new Level<string, string>(dir, { valueEncoding: 'utf8' });
  await raw.open();
  t.is(await raw.get('a'), '\u0000');
  t.is(await raw.get('b'), '\u0000\u0000');
  await raw.put('old', '');
  await raw.close();
  const again = new LevelStore(dir);
  await again.open();
  t.is(await again.get('old'), '');
  t.is(await again.get('a'), '');
  await again.close();
});

test('writing empty values does not grow the glibc heap (a child process writes 400,000)', async (t) => {
  if (!existsSync('/proc/self/smaps')) return t.pass('no /proc/self/smaps here');
  const { execFileSync } = await import('node:child_process');
  const root = await tempDir(t, 'tapedeck-empty-heap-');
  const script = `
    import { LevelStore } from ${JSON.stringify(new URL('../src/catalog/store.ts', import.meta.url).href)};
    import { readFileSync } from 'node:fs';
    const heapKb = () => { let n = 0, on = false; for (const l of readFileSync('/proc/self/smaps', 'utf8').split('\\n')) { if (/^[0-9a-f]+-/.test(l)) on = l.endsWith('[heap]'); else if (on && l.startsWith('Rss:')) n += Number(/(\\d+)/.exec(l)[1]); } return n; };
    const s = new LevelStore(${JSON.stringify(join(root, 'db'))});
    await s.open();
    await s.batch(Array.from({ length: 1000 }, (_, i) => ({ type: 'put', key: 'w/' + i, value: '' })));
    const before = heapKb();
    for (let b = 0; b < 400; b++) await s.batch(Array.from({ length: 1000 }, (_, i) => ({ type: 'put', key: 'c/' + String(b * 1000 + i).padStart(7, '0'), value: '' })));
    console.log(heapKb() - before);
    await s.close();`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '32768' }, timeout: 120_000 });
  const grewKb = Number(out.trim().split('\n').pop());
  // leaking 32 bytes a value would be 12,500 kB
  t.true(grewKb < 6000, `the heap grew by ${grewKb} kB over 400,000 empty values`);
});

test('reopen also happens under requests that overlap all the time (new calls wait while those in flight end)', async (t) => {
  const { store } = await filled(t);
  let stop = false;
  let calls = 0;
  // two chains of reads, each starting the next at once: the store is never idle by itself
  const chain = async (from: number) => {
    for (let i = from; !stop; i = (i + 7) % 20_000) {
      const [v] = await store.getMany([`k/${String(i).padStart(6, '0')}`]);
      if (v?.length !== 200) throw new Error(`read ${i}: ${v}`);
      calls++;
    }
  };
  const chains = [chain(0), chain(3)];
  await new Promise((r) => setTimeout(r, 20));
  t.true(await store.reopen(4000)); // 2 s for quiet, then up to 2 s for the reads in flight (a loaded machine)
  const after = calls;
  await new Promise((r) => setTimeout(r, 20));
  stop = true;
  await Promise.all(chains);
  t.true(calls > after, 'the reads went on after the reopen');
});

test('another opener that takes the lock while reopen has the database closed only delays it: the reopen waits for the lock, calls meanwhile wait, nothing fails', async (t) => {
  // A CLI command opening the catalog at the moment the server's reopen had it closed got
  // LevelDB's lock; the server's open then failed ("catalog could not be opened again") and the
  // CLI, holding the catalog, found the tape library busy (exit 3; staging-faults under load).
  const { store, dir } = await tempLevelStore(t, 'tapedeck-reopen-lock-');
  await store.batch([{ type: 'put', key: 'a', value: '1' }]);
  // the other opener (LevelDB locks per process and file: a second handle here is refused as
  // another process is) opens in the gap between the reopen's close and its open, for 300 ms
  const db = (store as unknown as { db: { close(): Promise<void> } }).db;
  const close = db.close.bind(db);
  let other: LevelStore | undefined;
  let released!: Promise<void>;
  db.close = async () => {
    await close();
    other = new LevelStore(dir);
    await other.open();
    released = new Promise((r) => setTimeout(r, 300)).then(() => other!.close());
  };
  const reopened = store.reopen();
  await new Promise((r) => setTimeout(r, 50));
  const during = store.get('a'); // waits for the reopen, then reads
  t.true(await reopened);
  await released;
  t.truthy(other, 'the other opener had the lock');
  t.is(await during, '1');
  await store.batch([{ type: 'put', key: 'b', value: '2' }]);
  t.is(await store.get('b'), '2');
});

test('a reopen asked after close() (a policy plan that ended after the server stopped) leaves the database closed: its lock is free', async (t) => {
  const { store, dir } = await tempLevelStore(t, 'tapedeck-reopen-closed-');
  await store.batch([{ type: 'put', key: 'a', value: '1' }]);
  // a reopen under way when close() comes: close waits for it, and it does not open again after
  const it = store.entries({})[Symbol.asyncIterator]();
  await it.next(); // in flight: the reopen waits for quiet
  const during = store.reopen(60_000);
  const closing = store.close(); // waits for the reopen, which waits for the iterator
  await it.return?.();
  await closing;
  t.false(await during, 'no reopen once closed');
  t.false(await store.reopen(), 'nor one asked afterwards');
  // nothing holds LevelDB's lock: another opener gets the catalog
  const other = new LevelStore(dir);
  await other.open();
  t.is(await other.get('a'), '1');
  await other.close();
});
