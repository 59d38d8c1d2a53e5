import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog, type ChangeEvent } from '../src/catalog/catalog.js';
import { LevelStore, MemoryStore, type KVStore } from '../src/catalog/store.js';
import { itemIdForPath, parseRefId, shortHash } from '../src/catalog/layout.js';
import type { CatalogObject, MediaKind } from '../src/catalog/types.js';

const dirs: string[] = [];
test.after.always(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const ROOT = '/media/lib';
function item(rel: string, kind: MediaKind, meta: CatalogObject['meta'] = {}, title?: string): CatalogObject {
  const path = `${ROOT}/${rel}`;
  const cls = { audio: 'object.item.audioItem.musicTrack', video: 'object.item.videoItem.movie', image: 'object.item.imageItem.photo' }[kind];
  return {
    id: itemIdForPath(path),
    parentId: '',
    container: false,
    upnpClass: cls,
    title: title ?? rel.split('/').pop()!.replace(/\.\w+$/, ''),
    kind,
    meta,
    res: { mime: kind === 'audio' ? 'audio/mpeg' : kind === 'video' ? 'video/mp4' : 'image/jpeg', size: 1000 },
    location: { disk: { path, size: 1000, mtime: 1 } },
    origPath: path,
    mediaRoot: ROOT,
    relPath: rel,
  };
}

const stores: [string, () => KVStore][] = [
  ['memory', () => new MemoryStore()],
  [
    'level',
    () => {
      const d = mkdtempSync(join(tmpdir(), 'tapedeck-cat-'));
      dirs.push(d);
      return new LevelStore(join(d, 'db'));
    },
  ],
];

const titles = (objs: CatalogObject[]) => objs.map((o) => o.title);

for (const [name, make] of stores) {
  const open = async () => {
    const c = new Catalog(make());
    await c.open();
    return c;
  };

  test(`${name}: a new catalog has the fixed layout`, async (t) => {
    const c = await open();
    t.deepEqual(titles((await c.children('0', 0, 0)).objects), ['Music', 'Video', 'Pictures', 'Folders']);
    t.deepEqual(titles((await c.children('music', 0, 0)).objects), ['All Tracks', 'Artists', 'Albums', 'Genres']);
    t.deepEqual(titles((await c.children('pictures', 0, 0)).objects), ['All Pictures', 'By Date']);
    t.is((await c.get('0'))!.childCount, 4);
    t.is((await c.get('0'))!.parentId, '-1');
    await c.close();
  });

  test(`${name}: music lands in all tracks, artist → album in track order, albums and genres`, async (t) => {
    const c = await open();
    const tracks = [
      item('A/X/02 b.mp3', 'audio', { artist: 'Abba', album: 'Gold', trackNumber: 2, genre: 'Pop' }, 'Zebra'),
      item('A/X/01 a.mp3', 'audio', { artist: 'Abba', album: 'Gold', trackNumber: 1, genre: 'Pop' }, 'Yak'),
      item('A/X/10 c.mp3', 'audio', { artist: 'Abba', album: 'Gold', trackNumber: 10, genre: 'Pop' }, 'Ant'),
      item('B/y.mp3', 'audio', { artist: 'Beatles', album: 'Help', trackNumber: 1, genre: 'Rock' }, 'Help!'),
    ];
    const ev = await c.apply({ upserts: tracks });
    t.truthy(ev);
    t.is((await c.get('music/all'))!.childCount, 4);
    t.deepEqual(titles((await c.children('music/all', 0, 0)).objects), ['Ant', 'Help!', 'Yak', 'Zebra']);
    const artists = (await c.children('music/artists', 0, 0)).objects;
    t.deepEqual(titles(artists), ['Abba', 'Beatles']);
    t.is(artists[0].upnpClass, 'object.container.person.musicArtist');
    const albums = (await c.children(artists[0].id, 0, 0)).objects;
    t.deepEqual(titles(albums), ['Gold']);
    const inAlbum = (await c.children(albums[0].id, 0, 0)).objects;
    t.deepEqual(titles(inAlbum), ['Yak', 'Zebra', 'Ant'], 'track order, numerically');
    for (const o of inAlbum) {
      t.is(o.parentId, albums[0].id);
      t.truthy(o.refId);
      t.is(parseRefId(o.id)!.itemId, o.refId!);
      // a reference resolves on its own (BrowseMetadata)
      t.deepEqual(await c.get(o.id), o);
    }
    t.deepEqual(titles((await c.children('music/albums', 0, 0)).objects), ['Gold', 'Help']);
    t.deepEqual(titles((await c.children('music/genres', 0, 0)).objects), ['Pop', 'Rock']);
    // canonical items live in the folder tree
    const lib = (await c.children('folders', 0, 0)).objects;
    t.deepEqual(titles(lib), ['lib']);
    t.deepEqual(titles((await c.children(lib[0].id, 0, 0)).objects), ['A', 'B']);
    const canon = await c.get(tracks[0].id);
    t.is(canon!.refId, undefined);
    t.not(canon!.parentId, '');
    await c.close();
  });

  test(`${name}: a forged reference ID is not an object`, async (t) => {
    const c = await open();
    const a = item('v.mp4', 'video');
    await c.apply({ upserts: [a] });
    t.truthy(await c.get(`video/all$${a.id}`));
    t.is(await c.get(`music/all$${a.id}`), undefined);
    t.is(await c.get(`video/all$inope`), undefined);
    t.is(await c.get('no-such'), undefined);
    await c.close();
  });

  test(`${name}: pictures by date year → month, video folder tree`, async (t) => {
    const c = await open();
    await c.apply({
      upserts: [
        item('p/1.jpg', 'image', { date: '2021-05-03T10:00:00' }),
        item('p/2.jpg', 'image', { date: '2021-07-01' }),
        item('p/3.jpg', 'image', { date: '2023-01-09' }),
        item('films/old/m.mp4', 'video'),
      ],
    });
    const years = (await c.children('pictures/date', 0, 0)).objects;
    t.deepEqual(titles(years), ['2021', '2023']);
    t.deepEqual(titles((await c.children(years[0].id, 0, 0)).objects), ['2021-05', '2021-07']);
    const video = (await c.children('video', 0, 0)).objects;
    t.deepEqual(titles(video), ['All Video', 'lib']);
    const films = (await c.children(video[1].id, 0, 0)).objects;
    t.deepEqual(titles(films), ['films']);
    await c.close();
  });

  test(`${name}: removing items removes their references and empty containers; update IDs move`, async (t) => {
    const c = await open();
    const events: ChangeEvent[] = [];
    c.on('change', (e: ChangeEvent) => events.push(e));
    const a = item('A/a.mp3', 'audio', { artist: 'Solo', album: 'One', genre: 'Jazz' });
    const b = item('A/b.mp3', 'audio', { artist: 'Duo', album: 'Two' });
    await c.apply({ upserts: [a, b] });
    const before = c.systemUpdateId;
    await c.apply({ removes: [a.id] });
    t.is(c.systemUpdateId, before + 1);
    t.deepEqual(titles((await c.children('music/artists', 0, 0)).objects), ['Duo']);
    t.is((await c.get('music/genres'))!.childCount, 0);
    t.is((await c.get('music/all'))!.childCount, 1);
    const last = events.at(-1)!;
    t.is(last.systemUpdateId, c.systemUpdateId);
    const changed = new Map(last.containers);
    t.true(changed.has('music/all'));
    t.true(changed.has('music/artists'));
    t.is(await c.get(a.id), undefined);
    await c.apply({ removes: [b.id] });
    t.is((await c.children('folders', 0, 0)).total, 0, 'empty folders disappear');
    await c.close();
  });

  test(`${name}: re-applying an unchanged item changes nothing`, async (t) => {
    const c = await open();
    const a = item('x.mp3', 'audio', { artist: 'S' });
    await c.apply({ upserts: [a] });
    const id = c.systemUpdateId;
    t.is(await c.apply({ upserts: [structuredClone(a)] }), undefined);
    t.is(c.systemUpdateId, id);
    await c.close();
  });

  test(`${name}: metadata change moves the item between views in one batch`, async (t) => {
    const c = await open();
    const a = item('x.mp3', 'audio', { artist: 'Old', album: 'Al' });
    await c.apply({ upserts: [a] });
    await c.apply({ upserts: [{ ...a, meta: { artist: 'New', album: 'Al' } }] });
    t.deepEqual(titles((await c.children('music/artists', 0, 0)).objects), ['New']);
    t.is((await c.get('music/all'))!.childCount, 1);
    await c.close();
  });

  test(`${name}: paging a 20,000-child container returns exact slices`, async (t) => {
    const c = await open();
    const items: CatalogObject[] = [];
    for (let i = 0; i < 20000; i++) items.push(item(`big/f${i}.mp4`, 'video', {}, `Movie ${i}`));
    for (let i = 0; i < items.length; i += 2000) await c.apply({ upserts: items.slice(i, i + 2000) });
    const all = await c.children('video/all', 0, 0);
    t.is(all.total, 20000);
    t.is(all.objects.length, 20000);
    for (const start of [0, 1, 9999, 19950, 19999, 20000, 25000]) {
      const p = await c.children('video/all', start, 50);
      t.is(p.total, 20000);
      t.deepEqual(
        p.objects.map((o) => o.id),
        all.objects.slice(start, start + 50).map((o) => o.id),
      );
    }
    // natural order: Movie 2 before Movie 10
    const order = all.objects.map((o) => o.title);
    t.true(order.indexOf('Movie 2') < order.indexOf('Movie 10'));
    await c.close();
  });
}

test('level: catalog survives a reopen with the same IDs and update ID', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'tapedeck-cat-'));
  dirs.push(d);
  const c = new Catalog(new LevelStore(join(d, 'db')));
  await c.open();
  await c.apply({ upserts: [item('a.mp3', 'audio', { artist: 'Z' })] });
  const ids = (await c.children('music/all', 0, 0)).objects.map((o) => o.id);
  const sys = c.systemUpdateId;
  await c.close();
  const c2 = new Catalog(new LevelStore(join(d, 'db')));
  await c2.open();
  t.deepEqual(
    (await c2.children('music/all', 0, 0)).objects.map((o) => o.id),
    ids,
  );
  t.is(c2.systemUpdateId, sys);
  await c2.close();
});

test('album and artist art: taken again from the remaining tracks when the track it came from is removed, changes its cover or moves away', async (t) => {
  const c = new Catalog(new MemoryStore());
  await c.open();
  const art = (key: string) => ({ key, tn: [160, 160] as [number, number], sm: [640, 640] as [number, number] });
  const meta = (n: number) => ({ artist: 'Abba', album: 'Gold', trackNumber: n });
  const a = { ...item('G/01.mp3', 'audio', meta(1)), art: art('k1') };
  const b = { ...item('G/02.mp3', 'audio', meta(2)), art: art('k2') };
  const plain = item('G/03.mp3', 'audio', meta(3));
  await c.apply({ upserts: [a] });
  await c.apply({ upserts: [b, plain] });
  const containers = async () => {
    const artist = (await c.children('music/artists', 0, 0)).objects[0]!;
    const artistAlbum = (await c.children(artist.id, 0, 0)).objects[0]!;
    const album = (await c.children('music/albums', 0, 0)).objects[0]!;
    return [artist, artistAlbum, album];
  };
  const keys = async () => (await containers()).map((o) => o.art?.key);
  t.deepEqual(await keys(), ['k1', 'k1', 'k1'], 'the first track with art');

  // the cover's track gets another cover: the containers follow (not the old, now unreferenced one)
  const before = (await containers()).map((o) => o.updateId);
  const ev = await c.apply({ upserts: [{ ...a, art: art('k3') }] });
  t.deepEqual(await keys(), ['k3', 'k3', 'k3']);
  for (const [i, o] of (await containers()).entries()) {
    t.true(o.updateId! > before[i]!, 'update ID bumped');
    t.true(ev!.containers.some(([id]) => id === o.id), 'evented');
  }
  // it is removed: the next track with art gives its cover
  await c.apply({ removes: [a.id] });
  t.deepEqual(await keys(), ['k2', 'k2', 'k2']);
  // it loses its art: none left with art, no art (not a cover no track has)
  await c.apply({ upserts: [{ ...b, art: undefined }] });
  t.deepEqual(await keys(), [undefined, undefined, undefined]);
  // a track with art comes back: the containers take it
  await c.apply({ upserts: [{ ...plain, art: art('k4') }] });
  t.deepEqual(await keys(), ['k4', 'k4', 'k4']);
  // it moves to another album: Gold has no art left, its new album has its cover
  await c.apply({ upserts: [{ ...plain, meta: { artist: 'Abba', album: 'Silver' }, art: art('k4') }] });
  const albums = (await c.children('music/albums', 0, 0)).objects;
  t.deepEqual(albums.map((o) => [o.title, o.art?.key]), [['Gold', undefined], ['Silver', 'k4']]);
  const artist = (await c.children('music/artists', 0, 0)).objects[0]!;
  t.is(artist.art?.key, 'k4', 'the artist keeps the cover of a track it still has');
  // nothing in the catalog refers to a cover no item has
  const itemKeys = new Set((await c.items()).map((o) => o.art?.key).filter(Boolean));
  for (const o of await c.containers()) if (o.art) t.true(itemKeys.has(o.art.key), `${o.title}: ${o.art.key}`);
  await c.close();
});

test('store GC: an album/artist container whose art no item has (an older catalog) takes its art again from its tracks, and the stale cover file goes', async (t) => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { ContentStore } = await import('../src/util/content-store.js');
  const { collectStores } = await import('../src/catalog/store-gc.js');
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-gc-art-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new ContentStore(dir);
  const live = 'a'.repeat(32);
  const dead = 'd'.repeat(32);
  for (const k of [live, dead]) await store.put(k, 'tn.jpg', new Uint8Array([1, 2, 3]));
  const c = new Catalog(new MemoryStore());
  await c.open();
  const art = (key: string) => ({ key, tn: [160, 160] as [number, number], sm: [640, 640] as [number, number] });
  await c.apply({ upserts: [{ ...item('H/01.mp3', 'audio', { artist: 'Cher', album: 'Believe', trackNumber: 1 }), art: art(live) }, item('H/02.mp3', 'audio', { artist: 'Cher', album: 'Believe', trackNumber: 2 })] });
  // what an older Tapedeck left: the containers point at the cover of a track that was removed
  const artist = (await c.children('music/artists', 0, 0)).objects[0]!;
  const targets = [artist, (await c.children(artist.id, 0, 0)).objects[0]!, (await c.children('music/albums', 0, 0)).objects[0]!];
  await c.store.batch(targets.map((o) => ({ type: 'put' as const, key: 'o/' + o.id, value: JSON.stringify({ ...o, art: art(dead) }) })));
  const before = c.systemUpdateId;
  const r = await collectStores(c, { art: store }, Date.now() + 60_000);
  for (const o of targets) t.is((await c.get(o.id))!.art?.key, live, o.title);
  t.true(c.systemUpdateId > before, 'clients are told (SystemUpdateID)');
  t.is(r.art, 1);
  t.false(await store.has(dead, 'tn.jpg'), 'the stale cover is collected');
  t.true(await store.has(live, 'tn.jpg'));
  // a second collection changes nothing
  const again = c.systemUpdateId;
  t.is((await collectStores(c, { art: store }, Date.now() + 60_000)).art, 0);
  t.is(c.systemUpdateId, again);
  await c.close();
});

test('item IDs are the SHA-1 based IDs catalogs already hold (one-shot hash or Hash object alike)', (t) => {
  // pinned: a change would give every item of an existing catalog a new ID (clients' bookmarks, playlists)
  t.is(itemIdForPath('/music/a.flac'), 'ivjjtwigpumnfo');
  t.is(itemIdForPath('/srv/Ünïcödé/東京.flac'), 'ixbvz3lhodcrj7');
  t.is(shortHash('', 20), '3i42h3s6nnfq2msvx7xz');
});
