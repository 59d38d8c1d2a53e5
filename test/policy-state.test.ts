// The policy's view of the library (gatherState) and the one tier/size answer it shares with
// `tapedeck ls` and the status page: item size (location first), the tier of an item with no
// location, and the media directory of an item catalogued without one (the innermost root).
import test from 'ava';
import { MemoryStore } from '../src/catalog/store.js';
import type { Catalog } from '../src/catalog/catalog.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { loadConfig } from '../src/config.js';
import { gatherState, type FsProbe } from '../src/policy/state.js';
import { listItems } from '../src/policy/listing.js';
import { libraryStatus } from '../src/server-state.js';

const item = (id: string, o: Partial<CatalogObject>): CatalogObject => ({ id, parentId: 'c1', container: false, upnpClass: 'object.item.videoItem', title: id, kind: 'video', ...o });

async function fakeCatalog(items: CatalogObject[]): Promise<Catalog> {
  const store = new MemoryStore();
  await store.open();
  return {
    store,
    generation: 1,
    systemUpdateId: 1,
    items: async () => items,
    async *eachItem() {
      yield* items;
    },
  } as unknown as Catalog;
}

const noAccess = async () => new Map();

test('an item without mediaRoot is judged on the file system of its innermost media directory', async (t) => {
  const dirs = ['/srv', '/srv/media'];
  const catalog = await fakeCatalog([item('i1', { origPath: '/srv/media/film.mkv', location: { disk: { path: '/srv/media/film.mkv', size: 10, mtime: 1 } } })]);
  const fsProbe: FsProbe = async (d) => ({ key: d === '/srv/media' ? 'fs-media' : 'fs-root', sizeBytes: 1000, usedBytes: 10 });
  const config = loadConfig({ env: {}, flags: {} });
  const state = await gatherState({ catalog, config, readAccess: noAccess, now: () => 0, fsProbe, mediaDirs: dirs });
  t.is(state.items[0].fs, 'fs-media', 'not the first matching root (/srv)');
});

test('size and tier: one answer for ls, the policy and the status page', async (t) => {
  // a file that grew since its scan: the disk copy's size is what is served
  const grown = item('i1', { origPath: '/m/a.mkv', mediaRoot: '/m', res: { mime: 'video/x-matroska', size: 100 }, location: { disk: { path: '/m/a.mkv', size: 150, mtime: 1 } } });
  const nowhere = item('i2', { origPath: '/m/b.mkv', mediaRoot: '/m', res: { mime: 'video/x-matroska', size: 70 } });
  const catalog = await fakeCatalog([grown, nowhere]);
  const config = loadConfig({ env: {}, flags: {} });
  const fsProbe: FsProbe = async () => ({ key: 'fs', sizeBytes: 1000, usedBytes: 10 });
  const state = await gatherState({ catalog, config, readAccess: noAccess, now: () => 0, fsProbe, mediaDirs: ['/m'] });
  const listed = await listItems(catalog, noAccess);
  const lib = await libraryStatus(catalog);
  t.deepEqual(
    state.items.map((i) => [i.id, i.size, i.tier]),
    [
      ['i1', 150, 'disk'],
      ['i2', 70, 'none'],
    ],
  );
  t.deepEqual(
    listed.map((i) => [i.id, i.size, i.tier]),
    state.items.map((i) => [i.id, i.size, i.tier]),
  );
  t.is(lib.bytes, 220);
  t.deepEqual(lib.byTier, { disk: 1, none: 1 });
});

test('gatherState reads the library a chunk at a time: never every full item (or its access records) at once', async (t) => {
  const many = Array.from({ length: 2500 }, (_, i) => item(`i${i}`, { origPath: `/m/${i}.mkv`, mediaRoot: '/m', location: { disk: { path: `/m/${i}.mkv`, size: 10, mtime: 1 } } }));
  let held = 0;
  let mostHeld = 0;
  // the fake catalog yields items as the store would; each counts as held until its access is read
  const catalog = {
    store: await (async () => {
      const s = new MemoryStore();
      await s.open();
      return s;
    })(),
    items: async () => many,
    async *eachItem() {
      for (const i of many) {
        held++;
        mostHeld = Math.max(mostHeld, held);
        yield i;
      }
    },
  } as unknown as Catalog;
  const asked: number[] = [];
  const readAccess = async (ids: string[]) => {
    asked.push(ids.length);
    held -= ids.length;
    return new Map(ids.filter((id) => id === 'i2400').map((id) => [id, { plays: 3, bytesServed: 0, recent: [] as number[] }]));
  };
  const config = loadConfig({ env: {}, flags: {} });
  const state = await gatherState({ catalog, config, readAccess, now: () => 0, fsProbe: async () => ({ key: 'fs', sizeBytes: 1000, usedBytes: 10 }), mediaDirs: ['/m'] });
  t.is(state.items.length, 2500);
  t.deepEqual(
    state.items.filter((i) => i.plays).map((i) => i.id),
    ['i2400'],
  );
  // 100 at a time: a chunk of parsed objects dies young instead of filling V8's old generation
  // (a pass over 100,000 items, 1,000 at a time, took the server ~190 MB above its size)
  t.true(mostHeld <= 100, `${mostHeld} full items held at once`);
  t.true(asked.every((n) => n <= 100), `access read for ${asked.join(', ')} items at a time`);
  // the items never played share one empty list of recent plays (nothing per item)
  const unplayed = state.items.filter((i) => !i.plays);
  t.true(unplayed.every((i) => i.recent === unplayed[0].recent && i.recent.length === 0));
});

test('listItems (tapedeck ls) makes its rows a chunk at a time, tier filter included', async (t) => {
  const many = Array.from({ length: 2300 }, (_, i) =>
    item(`i${String(i).padStart(4, '0')}`, { origPath: `/m/${String(i).padStart(4, '0')}.mkv`, mediaRoot: '/m', location: i % 2 ? { disk: { path: `/m/${i}.mkv`, size: 10, mtime: 1 } } : { tape: { label: 'T1', tapeFile: 1, block: 0, offset: 0, size: 10, sha256: 'x', blockSize: 262144 } } }),
  );
  const catalog = await fakeCatalog(many);
  const asked: number[] = [];
  const readAccess = async (ids: string[]) => {
    asked.push(ids.length);
    return new Map();
  };
  const all = await listItems(catalog, readAccess);
  t.is(all.length, 2300);
  t.true(asked.every((n) => n <= 1000), `access read for ${asked.join(', ')} items at a time`);
  const onTape = await listItems(catalog, readAccess, { tier: 'tape' });
  t.is(onTape.length, 1150);
  t.true(onTape.every((r) => r.tier === 'tape'));
});
