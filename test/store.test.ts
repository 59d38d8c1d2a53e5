import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStore, MemoryStore } from '../src/catalog/store.js';
import { runStoreSuite } from './store-compliance.js';

const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

runStoreSuite(test, 'MemoryStore', async () => new MemoryStore());
runStoreSuite(test, 'LevelStore', async () => {
  const d = mkdtempSync(join(tmpdir(), 'tapedeck-store-'));
  dirs.push(d);
  return new LevelStore(join(d, 'db'));
});

test('LevelStore: data survives close and reopen', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'tapedeck-store-'));
  dirs.push(d);
  const a = new LevelStore(join(d, 'db'));
  await a.open();
  await a.batch([{ type: 'put', key: 'meta/uuid', value: 'u1' }]);
  await a.close();
  const b = new LevelStore(join(d, 'db'));
  await b.open();
  t.is(await b.get('meta/uuid'), 'u1');
  await b.close();
});

test('LevelStore: a database locked by another opener gives a clear error', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'tapedeck-store-'));
  dirs.push(d);
  const a = new LevelStore(join(d, 'db'));
  await a.open();
  const b = new LevelStore(join(d, 'db'));
  const err = await t.throwsAsync(() => b.open());
  t.regex(err!.message, /cannot open catalog database at .*db/);
  await a.close();
});
