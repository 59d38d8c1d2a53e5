// A LevelDB catalog with several table files, and what of them is resident in this process
// (the tests of LevelStore.reopen and LevelStore.dropMapped: issue 11, memory).
import { readFileSync } from 'node:fs';
import type { LevelStore } from '../../src/catalog/store.js';
import { tempLevelStore } from './temp.js';

/** Resident kB of this process's mappings of the table files under `dir` (deleted ones included). */
export function mappedKb(dir: string): number {
  let kb = 0;
  let on = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) on = line.includes(dir) && /\.ldb( \(deleted\))?$/.test(line);
    else if (on && line.startsWith('Rss:')) kb += Number(/(\d+)/.exec(line)?.[1] ?? 0);
  }
  return kb;
}

/** A LevelStore with 20,000 entries `k/000000`.. of 200 characters (~4 MB, little to compress), compacted: several table files. */
export async function filledLevelStore(t: { teardown(fn: () => unknown): void }, prefix: string): Promise<{ store: LevelStore; dir: string }> {
  const { store, dir } = await tempLevelStore(t, prefix);
  let seed = 1;
  const noise = () => Array.from({ length: 200 }, () => ((seed = (seed * 48271) % 2147483647) % 36).toString(36)).join('');
  for (let i = 0; i < 20_000; i += 1000) {
    await store.batch(Array.from({ length: 1000 }, (_, j) => ({ type: 'put' as const, key: `k/${String(i + j).padStart(6, '0')}`, value: noise() })));
  }
  await store.compact();
  return { store, dir };
}

/**
 * Fills a LevelStore (filledLevelStore), reads all of it and 2,000 random keys, writes one: how
 * many entries read whole, the kB of its tables resident after, and whether the write and gets read back.
 */
export async function readTables(t: { teardown(fn: () => unknown): void }): Promise<{ n: number; kb: number; whole: boolean }> {
  const { store, dir } = await filledLevelStore(t, 'tapedeck-tables-');
  let n = 0;
  for await (const [, v] of store.entries({ gte: 'k/', lt: 'k/\uffff' })) n += v.length === 200 ? 1 : 0;
  let got = 0;
  for (let i = 0; i < 2000; i++) got += (await store.get(`k/${String((i * 7919) % 20_000).padStart(6, '0')}`))?.length === 200 ? 1 : 0;
  await store.batch([{ type: 'put', key: 'k/new', value: 'v' }]);
  return { n, kb: mappedKb(dir), whole: got === 2000 && (await store.get('k/new')) === 'v' };
}
