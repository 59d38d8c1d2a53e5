// LevelDB told not to map its table files (issue 11 item 2, src/catalog/table-mmap.ts): a full
// read of a catalog leaves none of its table pages in the process, and reads and writes work as
// before. The setting holds per process from its first database on, so the negative control (the
// same read with mapping left on) runs in a child process. Memory figures from /proc/self/smaps.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readTablesWithoutMmap } from '../src/catalog/table-mmap.js';
import { readTables } from './helpers/level-tables.js';

const CHILD = new URL('./helpers/table-mmap-child.ts', import.meta.url).pathname;

test('a full read and 2,000 gets leave no table page mapped; reads and writes whole', async (t) => {
  if (!existsSync('/proc/self/smaps')) return t.pass('no /proc/self/smaps here: nothing to measure');
  const r = await readTables(t);
  t.deepEqual({ n: r.n, whole: r.whole }, { n: 20_000, whole: true });
  if (!readTablesWithoutMmap()) return t.pass('the setting was not made here (TAPEDECK_LEVELDB_MMAP=1, or no koffi or no setter): LevelDB maps its tables (the drops bound them)');
  t.is(r.kb, 0, `table pages resident: ${r.kb} kB`);
});

test('negative control: with mapping left on (TAPEDECK_LEVELDB_MMAP=1) the same read leaves MBs of table pages resident', (t) => {
  if (!existsSync('/proc/self/smaps')) return t.pass('no /proc/self/smaps here: nothing to measure');
  const out = execFileSync(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, TAPEDECK_LEVELDB_MMAP: '1' }, encoding: 'utf8' });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { n: number; kb: number; whole: boolean };
  t.deepEqual({ n: r.n, whole: r.whole }, { n: 20_000, whole: true });
  t.true(r.kb > 1024, `table pages resident with mapping on: ${r.kb} kB`);
});
