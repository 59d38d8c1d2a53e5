// The catalog's child lists (list_cache) survive a change that leaves a container's children as
// they were (metadata, location or art of a member: what a scan or a policy pass mostly writes),
// and are read again when its children change. Checked against the child index itself.
import test from 'ava';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore, prefixRange, type KeyRange } from '../src/catalog/store.js';
import { testItem } from './helpers/items.js';
import { prng } from '../src/util/prng.js';

/** Counts the child-index reads (c/ key lists) per container. */
class ListCountingStore extends MemoryStore {
  listReads = new Map<string, number>();
  override async keyList(r: KeyRange) {
    const from = String(r.gte ?? r.gt ?? '');
    if (from.startsWith('c/')) this.listReads.set(from.slice(2, -1), (this.listReads.get(from.slice(2, -1)) ?? 0) + 1);
    return super.keyList(r);
  }
}

const track = (n: number, title: string, genre = n % 2 ? 'Jazz' : 'Rock') =>
  testItem(`m/${String(n).padStart(3, '0')}.mp3`, 'audio', title, { root: '/lib', mime: 'audio/mpeg', meta: { artist: `Artist ${n % 3}`, album: `Album ${n % 4}`, trackNumber: n, genre }, res: { size: 1000 + n, duration: 60 } });

/** A container's child IDs straight from the child index (not counted). */
async function fromIndex(store: MemoryStore, cid: string): Promise<string[]> {
  return (await MemoryStore.prototype.keyList.call(store, prefixRange(`c/${cid}\u0000`))).map((k) => k.slice(k.lastIndexOf('\u0000') + 1));
}

test('a change that leaves a container\'s children as they were keeps its child list; one that changes them reads it again', async (t) => {
  const store = new ListCountingStore();
  const catalog = new Catalog(store);
  await catalog.open();
  const items = Array.from({ length: 30 }, (_, i) => track(i, `Song ${i}`));
  await catalog.apply({ upserts: items.map((o) => structuredClone(o)) });
  const reads = () => store.listReads.get('music/all') ?? 0;
  await catalog.childIds('music/all');
  const first = reads();
  // new content of a file (size, mtime) and a new genre: music/all lists the same children
  await catalog.apply({ upserts: [{ ...structuredClone(items[3]), mtime: 99, res: { ...items[3].res!, size: 5 }, meta: { ...items[3].meta, genre: 'Blues' } }] });
  await catalog.setLocation(items[4].id, { disk: { path: '/lib/elsewhere.mp3', size: 5, mtime: 1 } });
  t.deepEqual(await catalog.childIds('music/all'), await fromIndex(store, 'music/all'));
  t.is(reads(), first, 'not read again');
  // a new title moves the track in the order: read again
  await catalog.apply({ upserts: [{ ...structuredClone(items[5]), title: 'AAA First Now' }] });
  const ids = await catalog.childIds('music/all');
  t.is(reads(), first + 1);
  t.deepEqual(ids, await fromIndex(store, 'music/all'));
  t.is(ids[0], 'music/all$' + items[5].id);
});

test('random changes: every child list is the child index', async (t) => {
  const store = new ListCountingStore();
  const catalog = new Catalog(store);
  await catalog.open();
  const live = new Map(Array.from({ length: 25 }, (_, i) => track(i, `Song ${i}`)).map((o) => [o.id, o]));
  await catalog.apply({ upserts: [...live.values()].map((o) => structuredClone(o)) });
  const rnd = prng(5);
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
  let next = 100;
  let compared = 0;
  for (let step = 0; step < 150; step++) {
    const r = rnd();
    const o = pick([...live.values()]);
    if (r < 0.25) live.set(o.id, { ...structuredClone(o), mtime: step });
    else if (r < 0.45) live.set(o.id, { ...structuredClone(o), title: `T${step}` });
    else if (r < 0.6) live.set(o.id, { ...structuredClone(o), meta: { ...o.meta, genre: pick(['Jazz', 'Rock', 'Pop']), album: pick(['Album 1', 'Album 9']) } });
    else if (r < 0.7) {
      const n = track(next++, `New ${step}`);
      live.set(n.id, n);
    } else if (r < 0.8 && live.size > 5) {
      live.delete(o.id);
      await catalog.apply({ removes: [o.id] });
    } else if (r < 0.85) await catalog.setLocation(o.id, { disk: { path: `/lib/x${step}.mp3`, size: 1, mtime: step } });
    if (r < 0.7) await catalog.apply({ upserts: [structuredClone(live.get(o.id) ?? [...live.values()].at(-1)!)] });
    const containers = ['0', 'music', 'music/all', 'music/artists', 'music/albums', 'music/genres'];
    for (const v of containers.slice(3)) for (const c of await catalog.childIds(v)) containers.push(c);
    for (const c of containers) {
      t.deepEqual(await catalog.childIds(c), await fromIndex(store, c), `step ${step} ${c}`);
      compared++;
    }
  }
  t.true(compared > 1000);
});
