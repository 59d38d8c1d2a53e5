import test from 'ava';
import { Catalog } from '../src/catalog/catalog.js';
import { IdList, IdListCache } from '../src/catalog/id-lists.js';
import { MemoryStore } from '../src/catalog/store.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import type { CatalogObject } from '../src/catalog/types.js';

test('an IdList gives back the IDs it was made from, references into its container included', (t) => {
  const ids = ['music/albums/x', 'music/all$iabc', 'i0123456789abc', 'music/all$i\u00e9t\u00e9', 'other$ixyz', 'm\u6f22\u5b57', ''];
  const l = IdList.from(ids, 'music/all$');
  t.is(l.length, ids.length);
  t.deepEqual(l.slice(0), ids);
  t.deepEqual(l.slice(1, 3), ids.slice(1, 3));
  t.deepEqual(l.slice(5, 100), ids.slice(5));
  t.deepEqual(l.slice(100, 200), []);
  t.is(l.at(3), ids[3]);
  t.is(IdList.from([]).length, 0);
  t.deepEqual(IdList.from([]).slice(0), []);
});

test('an IdList of item references costs about its characters, not a string per ID', (t) => {
  const ids = Array.from({ length: 10_000 }, (_, i) => `music/all$i${String(i).padStart(13, '0')}`);
  const l = IdList.from(ids, 'music/all$');
  // 14 characters + separator + marker per ID, one byte each, plus a 4-byte offset
  t.true(l.bytes < 10_000 * 21, `${l.bytes} bytes`);
  t.true(l.bytes > 10_000 * 16, `${l.bytes} bytes`);
});

test('the IdListCache keeps at most its bytes, drops the least recently used, and refuses a list larger than itself', (t) => {
  const list = (n: number, tag: string) => IdList.from(Array.from({ length: n }, (_, i) => `i${tag}${String(i).padStart(12, '0')}`));
  const one = list(1000, 'a');
  const c = new IdListCache(Math.floor(one.bytes * 2.5));
  c.set('a', 1, one);
  c.set('b', 1, list(1000, 'b'));
  t.truthy(c.get('a', 1)); // a is now the most recently used
  c.set('c', 1, list(1000, 'c'));
  t.truthy(c.get('a', 1));
  t.is(c.get('b', 1), undefined);
  t.truthy(c.get('c', 1));
  t.true(c.bytes <= c.maxBytes);
  c.set('big', 1, list(3000, 'd'));
  t.is(c.get('big', 1), undefined);
  t.true(c.bytes <= c.maxBytes);
  // a list kept for another tag (an older update ID) is not returned
  t.is(c.get('a', 2), undefined);
  const off = new IdListCache(0);
  off.set('a', 1, one);
  t.is(off.get('a', 1), undefined);
  t.is(off.bytes, 0);
});

function track(n: number, album: string): CatalogObject {
  const path = `/media/lib/${album}/${String(n).padStart(4, '0')}.flac`;
  return {
    id: itemIdForPath(path),
    parentId: '',
    container: false,
    upnpClass: 'object.item.audioItem.musicTrack',
    title: `Track ${n}`,
    kind: 'audio',
    meta: { album, artist: `Artist ${album}` },
    res: { mime: 'audio/flac', size: 1000 },
    location: { disk: { path, size: 1000, mtime: 1 } },
    origPath: path,
    mediaRoot: '/media/lib',
    relPath: `${album}/${String(n).padStart(4, '0')}.flac`,
  };
}

test('the child lists of every browsed container stay within list_cache, and pages stay right past it', async (t) => {
  const limit = 64 * 1024;
  const c = new Catalog(new MemoryStore(), { listCacheBytes: limit });
  await c.open();
  const upserts: CatalogObject[] = [];
  for (let a = 0; a < 40; a++) for (let n = 0; n < 100; n++) upserts.push(track(n, `Album ${String(a).padStart(2, '0')}`));
  await c.apply({ upserts });
  const albums = await c.childIds('music/albums');
  t.is(albums.length, 40);
  for (const id of albums) {
    const page = await c.children(id, 10, 5);
    t.is(page.total, 100);
    t.deepEqual(
      page.objects.map((o) => o.title),
      ['Track 10', 'Track 11', 'Track 12', 'Track 13', 'Track 14'],
    );
  }
  t.true(c.lists.bytes <= limit, `${c.lists.bytes} bytes kept`);
  t.true(c.lists.size >= 2);
  // All Tracks (4,000 references, larger than the whole cache) is not kept but still pages
  const all = await c.children('music/all', 3990, 50);
  t.is(all.total, 4000);
  t.is(all.objects.length, 10);
  t.true(c.lists.bytes <= limit);
  // a change invalidates the kept list of the container
  const first = albums[0];
  await c.children(first, 0, 1);
  await c.apply({ removes: [track(0, 'Album 00').id] });
  t.is((await c.children(first, 0, 1)).total, 99);
});
