// Artist, album and genre containers: one per name whatever Unicode form the tags use (NFC,
// NFD, compatibility forms, case), IDs of ASCII names as they always were, and a catalog written
// with the old (lower-case) IDs moved on open to the same state a fresh catalog has.

import test from 'ava';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { LEGACY_NAME_KEY, shortHash } from '../src/catalog/layout.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { testItem } from './helpers/items.js';

const NFC = 'Beyonc\u00e9';
const NFD = 'Beyonce\u0301';
const tracks = (): CatalogObject[] => [
  testItem('a/1.flac', 'audio', 'One', { meta: { artist: NFC, album: 'D\u00e9j\u00e0 Vu', genre: 'R\u0026B', trackNumber: 1 } }),
  testItem('a/2.flac', 'audio', 'Two', { meta: { artist: NFD, album: 'De\u0301ja\u0300 Vu', genre: 'R\u0026B', trackNumber: 2 } }),
  // full-width letters and the "ﬁ" ligature are compatibility forms of the same names
  testItem('a/3.flac', 'audio', 'Three', { meta: { artist: 'BEYONC\u00c9', album: 'D\u00e9j\u00e0 Vu', genre: '\uff32\uff06\uff22', trackNumber: 3 } }),
  testItem('b/1.flac', 'audio', 'Four', { meta: { artist: 'Sigur R\u00f3s', album: '\ufb01ve', genre: 'Post-Rock' } }),
  testItem('b/2.flac', 'audio', 'Five', { meta: { artist: 'Sigur Ro\u0301s', album: 'five', genre: 'Post-Rock' } }),
  testItem('c/1.flac', 'audio', 'Six', { meta: { artist: 'ABBA', album: 'Gold', genre: 'Pop' } }),
];

async function open(store = new MemoryStore()): Promise<Catalog> {
  const c = new Catalog(store);
  await c.open();
  return c;
}

test('one artist, album and genre container per name in NFC, NFD, compatibility forms or another case', async (t) => {
  const c = await open();
  await c.apply({ upserts: tracks() });
  const artists = await c.allChildren('music/artists');
  t.deepEqual(artists.map((a) => a.childCount), [1, 1, 1]);
  t.is(artists.length, 3); // Beyoncé, Sigur Rós, ABBA
  const albums = await c.allChildren('music/albums');
  t.is(albums.length, 3);
  const byTitle = new Map(albums.map((a) => [a.title.normalize('NFKC').toLowerCase(), a]));
  t.is(byTitle.get('d\u00e9j\u00e0 vu')?.childCount, 3);
  t.is(byTitle.get('five')?.childCount, 2);
  const genres = await c.allChildren('music/genres');
  t.is(genres.length, 3);
  t.is(genres.find((g) => g.title.normalize('NFKC') === 'R&B')?.childCount, 3);
});

test('ASCII names keep the IDs catalogs already hold', async (t) => {
  const c = await open();
  await c.apply({ upserts: tracks() });
  const artist = 'music/artists/' + shortHash('artist\u0000abba', 10);
  t.truthy(await c.get(artist));
  t.truthy(await c.get(artist + '/' + shortHash('album\u0000gold', 10)));
  t.truthy(await c.get('music/albums/' + shortHash('album\u0000abba\u0000gold', 10)));
  t.truthy(await c.get('music/genres/' + shortHash('genre\u0000pop', 10)));
});

/**
 * The catalog's state Browse sees: every container's children (IDs; which spelling names a
 * shared container, and so its sort key, is the first member written) and every container's count.
 */
async function state(store: MemoryStore): Promise<{ children: string[]; counts: Record<string, number> }> {
  const children: string[] = [];
  const counts: Record<string, number> = {};
  for await (const k of store.keys({ gte: 'c/', lt: 'c/\uffff' })) {
    const parts = k.split('\u0000');
    children.push(parts[0] + ' ' + parts[parts.length - 1]);
  }
  children.sort();
  for await (const [k, v] of store.entries({ gte: 'o/', lt: 'o/\uffff' })) {
    const o = JSON.parse(v) as CatalogObject;
    if (o.container) counts[k] = o.childCount ?? 0;
  }
  return { children, counts };
}

test('a catalog with the old lower-case IDs is moved on open to what a fresh catalog holds (twice: a cut-short move is finished)', async (t) => {
  const fresh = new MemoryStore();
  await (await open(fresh)).apply({ upserts: tracks() });

  const old = new MemoryStore();
  const c1 = await open(old);
  // write it the way the old version did: names lower-cased, no meta/musicIds
  await (c1 as unknown as { applyNow(i: unknown, o?: unknown, n?: unknown): Promise<unknown> }).applyNow({ upserts: tracks() }, undefined, LEGACY_NAME_KEY);
  await old.batch([{ type: 'del', key: 'meta/musicIds' }]);
  t.is((await c1.allChildren('music/artists')).length, 5); // the defect: Beyoncé twice, Sigur Rós twice
  await c1.close();

  const c2 = await open(old);
  t.is(await old.get('meta/musicIds'), '2');
  t.deepEqual(await state(old), await state(fresh));
  t.is((await c2.allChildren('music/artists')).length, 3);
  // opened again as if the move had been cut short before the version was written: nothing moves twice
  await old.batch([{ type: 'del', key: 'meta/musicIds' }]);
  await c2.close();
  await open(old);
  t.deepEqual(await state(old), await state(fresh));
});
