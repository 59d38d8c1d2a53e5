// Catalog.totals() reads every item: kept until the next change, so a periodic rescan that
// changed nothing (its "library: N items" line) does not read the whole catalog again.
import test from 'ava';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore, type KeyRange } from '../src/catalog/store.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import type { CatalogObject } from '../src/catalog/types.js';

function track(n: number): CatalogObject {
  const path = `/media/lib/a/${n}.flac`;
  return { id: itemIdForPath(path), parentId: '', container: false, upnpClass: 'object.item.audioItem.musicTrack', title: `T${n}`, kind: 'audio', meta: { album: 'A' }, res: { mime: 'audio/flac', size: 10 }, location: { disk: { path, size: 10, mtime: 1 } }, origPath: path, mediaRoot: '/media/lib', relPath: `a/${n}.flac` };
}

class CountingStore extends MemoryStore {
  itemReads = 0;
  override async *entries(r: KeyRange): AsyncIterable<[string, string]> {
    for await (const e of super.entries(r)) {
      if (e[0].startsWith('o/i')) this.itemReads++;
      yield e;
    }
  }
}

test('totals are read once per catalog change, and are right after each change', async (t) => {
  const store = new CountingStore();
  const c = new Catalog(store);
  await c.open();
  await c.apply({ upserts: [track(1), track(2), track(3)] });
  const first = await c.totals();
  t.is(first.items, 3);
  t.is(store.itemReads, 3);
  first.items = 99; // a caller's copy: changing it changes nothing kept
  t.is((await c.totals()).items, 3);
  t.is(store.itemReads, 3, 'no second read without a change');
  await c.apply({ removes: [track(2).id] });
  t.is((await c.totals()).items, 2);
  await c.setLocation(track(1).id, { tape: { label: 'T00001L9', tapeFile: 1, block: 0, offset: 0, size: 10, sha256: 'x', blockSize: 262144 } });
  const t3 = await c.totals();
  t.is(t3.onTapeOnly, 1);
  t.is(t3.items, 2);
  const reads = store.itemReads;
  // only scanner path entries (no object changed): the kept totals stay
  await c.apply({ extraOps: [c.pathOp('/media/lib/a/9.flac', { id: 'i9', size: 1, mtime: 1, gen: 1 })] });
  await c.totals();
  t.is(store.itemReads, reads);
});

test('a whole pass over the items (art collection, an unindexed Search) leaves the counts: totals() reads nothing more', async (t) => {
  const store = new CountingStore();
  const c = new Catalog(store);
  await c.open();
  await c.apply({ upserts: [track(1), track(2), track(3)] });
  await c.setLocation(track(3).id, { disk: track(3).location!.disk, tape: { label: 'T00001L9', tapeFile: 1, block: 0, offset: 0, size: 10, sha256: 'x', blockSize: 262144 } });
  for await (const o of c.eachItem()) void o;
  t.is(store.itemReads, 3);
  t.deepEqual(await c.totals(), { items: 3, audio: 3, video: 0, image: 0, containers: (await c.totals()).containers, onTapeOnly: 0, onDiskAndTape: 1 });
  t.true((await c.totals()).containers > 0);
  t.is(store.itemReads, 3, 'the pass counted them');
  // a pass left early counts nothing
  await c.apply({ removes: [track(2).id] });
  for await (const o of c.eachItem()) {
    void o;
    break;
  }
  t.is((await c.totals()).items, 2);
  t.is(store.itemReads, 3 + 1 + 2);
});

test('a pass during which the catalog changed leaves no counts: totals() reads again', async (t) => {
  const store = new CountingStore();
  const c = new Catalog(store);
  await c.open();
  await c.apply({ upserts: [track(1), track(2)] });
  let n = 0;
  for await (const o of c.eachItem()) {
    void o;
    if (n++ === 0) await c.apply({ upserts: [track(3)] });
  }
  const reads = store.itemReads;
  t.is((await c.totals()).items, 3);
  t.is(store.itemReads, reads + 3);
});
