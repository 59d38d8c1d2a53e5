// Dropping the catalog's mapped table pages (issue 11 item 2): LevelDB maps its table files and
// the pages a read touched stay in the server's resident memory; LevelStore.dropMapped unmaps
// those pages from the process (madvise through koffi) and leaves the database open and whole.
// Memory figures from /proc/self/smaps, no timing. The fallback for where LevelDB cannot be told
// not to map its tables (src/catalog/table-mmap.ts): this process lets it map them.
import test from 'ava';
import { existsSync } from 'node:fs';
import { readOnlyFileMappings, dropFilePages } from '../src/util/drop-pages.js';
import { tempLevelStore } from './helpers/temp.js';
import { filledLevelStore, mappedKb } from './helpers/level-tables.js';
import { liveTables } from '../src/catalog/store.js';

process.env.TAPEDECK_LEVELDB_MMAP = '1'; // read by the first LevelStore (before LevelDB's Env exists)

test('readOnlyFileMappings keeps the read-only shared file mappings, without deleted files', (t) => {
  const maps = [
    '7f1c2a000000-7f1c2a200000 r--s 00000000 08:01 1234                       /data/catalog/000005.ldb',
    '7f1c2a200000-7f1c2a300000 r--s 00000000 08:01 1235                       /data/catalog/000004.ldb (deleted)',
    '7f1c2a300000-7f1c2a400000 r--p 00000000 08:01 99                         /usr/bin/node',
    '7f1c2a400000-7f1c2a500000 rw-p 00000000 00:00 0 ',
    '7f1c2a500000-7f1c2a600000 rw-s 00000000 08:01 77                         /data/x.ldb',
    '7f1c2a600000-7f1c2a700000 r--s 00001000 08:01 1236                       /data/with space/000006.ldb',
    '',
  ].join('\n');
  t.deepEqual(readOnlyFileMappings(maps), [
    { start: 0x7f1c2a000000, end: 0x7f1c2a200000, path: '/data/catalog/000005.ldb' },
    { start: 0x7f1c2a600000, end: 0x7f1c2a700000, path: '/data/with space/000006.ldb' },
  ]);
});

test('liveTables reads the file names of leveldb.sstables', (t) => {
  const prop = "--- level 0 ---\n 7:1200['a' @ 9 : 1 .. 'b' @ 8 : 1]\n--- level 1 ---\n--- level 2 ---\n 5:109728['k0' @ 1 : 1 .. 'k999' @ 1000 : 1]\n 1234567:5['x' @ 2 : 1 .. 'y' @ 3 : 1]\n--- level 3 ---\n";
  t.deepEqual([...liveTables(prop)], ['000007.ldb', '000005.ldb', '1234567.ldb']);
  t.is(liveTables('--- level 0 ---\n').size, 0);
});

test('dropMapped unmaps the table pages a full read left resident; the database stays open and whole', async (t) => {
  const { store, dir } = await filledLevelStore(t, 'tapedeck-drop-');
  const readAll = async () => {
    let n = 0;
    for await (const [, v] of store.entries({ gte: 'k/', lt: 'k/\uffff' })) n += v.length === 200 ? 1 : 0;
    return n;
  };
  t.is(await readAll(), 20_000);
  if (!existsSync('/proc/self/smaps')) return t.pass('no /proc/self/smaps here: nothing to measure');
  const before = mappedKb(dir);
  t.true(before > 1024, `table pages resident after the read: ${before} kB`);
  if (dropFilePages(() => false) === false) return t.pass('no koffi or no madvise here: dropMapped cannot work');
  t.true(store.dropMapped());
  t.true(mappedKb(dir) < 64, `after the drop: ${mappedKb(dir)} kB (before ${before} kB)`);
  // nothing closed: reads go on (and fault the pages back in), writes too
  t.is(await readAll(), 20_000);
  t.true(mappedKb(dir) > 1024);
  await store.batch([{ type: 'put', key: 'k/new', value: 'v' }]);
  t.is(await store.get('k/new'), 'v');
  t.is((await store.get('k/019999'))?.length, 200);
});

test('dropMapped does nothing while the database reopens or after it closed', async (t) => {
  const { store } = await tempLevelStore(t, 'tapedeck-drop-');
  await store.batch([{ type: 'put', key: 'a', value: 'b' }]);
  const reopening = store.reopen();
  t.false(store.dropMapped());
  t.true(await reopening);
  await store.close();
  t.false(store.dropMapped());
});

test('dropMapped advises nothing when the table files changed around its pin (a compaction installed a version in between)', async (t) => {
  const { store, dir } = await filledLevelStore(t, 'tapedeck-drop-');
  for await (const _ of store.entries({ gte: 'k/', lt: 'k/\uffff' })) void _;
  if (!existsSync('/proc/self/smaps')) return t.pass('no /proc/self/smaps here: nothing to measure');
  if (dropFilePages(() => false) === false) return t.pass('no koffi or no madvise here: dropMapped cannot work');
  const before = mappedKb(dir);
  t.true(before > 1024, `table pages resident after the read: ${before} kB`);
  // the second read of leveldb.sstables names one more file, as after a memtable flush between the reads
  const db = (store as unknown as { db: { getProperty(p: string): string } }).db;
  const real = db.getProperty.bind(db);
  let calls = 0;
  db.getProperty = (p: string) => (p === 'leveldb.sstables' && ++calls === 2 ? real(p) + ' 999999:5[\'x\' @ 2 : 1 .. \'y\' @ 3 : 1]\n' : real(p));
  t.false(store.dropMapped());
  t.is(calls, 2);
  t.true(mappedKb(dir) > 1024, `left resident: ${mappedKb(dir)} kB`);
  // the files agree again: the drop goes ahead
  t.true(store.dropMapped());
  t.true(mappedKb(dir) < 64, `after the drop: ${mappedKb(dir)} kB`);
});
