// The DIDL-Lite cache drops only what a catalog change touched (catalog/change-log.ts,
// upnp/didl-cache.ts): an object changed, its references in every view, the containers whose
// counts, art or update IDs changed, a playlist's entries when the playlist changes; the rest
// stays cached. Nothing stale is ever served: every answer is compared byte for byte with what
// the serializer writes from the catalog as it is.
import test from 'ava';
import { Catalog } from '../src/catalog/catalog.js';
import { ChangeLog } from '../src/catalog/change-log.js';
import { MemoryStore } from '../src/catalog/store.js';
import { playlistIdForPath } from '../src/catalog/layout.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { ContentDirectory } from '../src/upnp/cds.js';
import { didl } from '../src/upnp/didl.js';
import { defaultClientRegistry, type ClientProfile } from '../src/upnp/clients.js';
import type { SoapContext } from '../src/upnp/soap.js';
import { protocolInfo } from '../src/media/dlna.js';
import { didlArt } from '../src/art/dlna.js';
import { captionsOf } from '../src/media/subtitles.js';
import { escText, EscapedText } from '../src/util/xml.js';
import { prng } from '../src/util/prng.js';
import { testItem } from './helpers/items.js';

/** A store that counts the objects (o/ keys) read one by one or by key list (how Browse reads them). */
class CountingStore extends MemoryStore {
  objectReads = 0;
  override async get(k: string) {
    if (k.startsWith('o/')) this.objectReads++;
    return super.get(k);
  }
  override async getMany(ks: string[]) {
    this.objectReads += ks.filter((k) => k.startsWith('o/')).length;
    return super.getMany(ks);
  }
}

const ROOT = '/lib';
const track = (n: number, title: string, artist = `Artist ${n % 3}`, album = `Album ${n % 4}`) =>
  testItem(`m/${String(n).padStart(3, '0')}.mp3`, 'audio', title, { root: ROOT, mime: 'audio/mpeg', meta: { artist, album, trackNumber: n, genre: n % 2 ? 'Jazz' : 'Rock' }, res: { size: 1000 + n, duration: 60 + n } });

const profiles = defaultClientRegistry().profiles;
const ctxOf = (client: ClientProfile | undefined): SoapContext => ({ baseUrl: 'http://10.0.0.1:8210', remoteAddress: '10.0.0.2', headers: {}, client });

async function browse(cds: ContentDirectory, objectId: string, flag: string, filter: string, ctx: SoapContext) {
  const out = (await cds.browse({ ObjectID: objectId, BrowseFlag: flag, Filter: filter, StartingIndex: '0', RequestedCount: '0', SortCriteria: '' }, ctx)) as [string, unknown][];
  const result = out[0][1];
  return result instanceof EscapedText ? result.text : escText(result as string);
}

/** What the serializer writes for these objects, read from the catalog now. */
async function reference(catalog: Catalog, objects: CatalogObject[], filter: string, ctx: SoapContext): Promise<string> {
  const marks = ctx.client?.quirks.sendsBookmark ? await catalog.bookmarks.getMany(objects.filter((o) => !o.container).map((o) => o.refId ?? o.id)) : undefined;
  return escText(didl(objects, { baseUrl: ctx.baseUrl, filter, protocolInfo, client: ctx.client, ...didlArt(ctx.baseUrl), captions: (o) => captionsOf(ctx.baseUrl, o), bookmark: marks && ((o) => marks.get(o.refId ?? o.id)?.pos) }));
}

async function setup(n: number) {
  const store = new CountingStore();
  const catalog = new Catalog(store);
  await catalog.open();
  const items = Array.from({ length: n }, (_, i) => track(i, `Song ${i}`));
  await catalog.apply({ upserts: items.map((o) => structuredClone(o)) });
  return { store, catalog, items, cds: new ContentDirectory(catalog) };
}

test('ChangeLog: the union of what the generations after g changed, or undefined when forgotten or too big', (t) => {
  const log = new ChangeLog(6);
  const ids = (g: number, now: number) => {
    const s = log.since(g, now);
    return s && [...s].sort();
  };
  log.record(1, ['a']);
  log.record(2, ['b', 'c']);
  log.record(3, ['a', 'd']);
  t.deepEqual(ids(3, 3), []);
  t.deepEqual(ids(2, 3), ['a', 'd']);
  t.deepEqual(ids(0, 3), ['a', 'b', 'c', 'd']);
  t.is(ids(4, 3), undefined, 'a generation from the future');
  log.record(4, ['e', 'f']); // 7 IDs held: generation 1 is forgotten (6 left)
  t.is(ids(0, 4), undefined);
  t.deepEqual(ids(1, 4), ['a', 'b', 'c', 'd', 'e', 'f']);
  log.record(5, ['1', '2', '3', '4', '5', '6', '7']); // alone more than the bound: "anything"
  t.is(ids(4, 5), undefined);
  log.record(6, ['x']);
  t.deepEqual(ids(5, 6), ['x']);
  t.is(ids(3, 6), undefined);
  t.is(ids(5, 7), undefined, 'a generation never recorded');
  // many small generations: the oldest are forgotten, the log stays bounded and answers the recent ones
  const big = new ChangeLog(100);
  for (let g = 1; g <= 5000; g++) big.record(g, [`o${g}`]);
  t.deepEqual([...big.since(4990, 5000)!].length, 10);
  t.is(big.since(4000, 5000), undefined);
});

test('ChangeLog.forget: generations a consumer caught up with are dropped; it still answers from there, older ones are not known', (t) => {
  const log = new ChangeLog(100);
  for (let g = 1; g <= 10; g++) log.record(g, [`o${g}`, `c${g}`]);
  log.forget(7);
  t.deepEqual([...log.since(7, 10)!].sort(), ['c10', 'c8', 'c9', 'o10', 'o8', 'o9']);
  t.is(log.since(6, 10), undefined);
  log.forget(10);
  t.deepEqual([...log.since(10, 10)!], []);
  log.record(11, ['x']);
  t.deepEqual([...log.since(10, 11)!], ['x']);
  t.is((log as unknown as { held: number }).held, 1, 'the forgotten IDs are no longer held');
});

test('the catalog keeps no change history once the DIDL cache caught up (a scan left up to 50,000 IDs in it)', async (t) => {
  const { catalog, items, cds } = await setup(40);
  const ctx = ctxOf(undefined);
  const before = catalog.generation;
  await catalog.apply({ upserts: [{ ...structuredClone(items[3]), title: 'Renamed' }] });
  t.truthy(catalog.changedSince(before), 'known before any request');
  await browse(cds, 'music/all', 'BrowseDirectChildren', '*', ctx);
  t.is(catalog.changedSince(before), undefined, 'forgotten once the cache caught up');
  t.deepEqual([...catalog.changedSince(catalog.generation)!], []);
});

test('a changed title is served from no cached copy: the item, its references in every view, a Search inside a container; the other objects stay cached', async (t) => {
  const { store, catalog, items, cds } = await setup(40);
  const ctx = ctxOf(undefined);
  const target = items[5];
  const views = ['music/all', 'music/artists', 'music/albums', 'music/genres'];
  const containers = new Set<string>(views);
  let level = views.slice(1);
  for (let depth = 0; depth < 3; depth++) {
    const below: string[] = [];
    for (const v of level) for (const c of (await catalog.children(v, 0, 0)).objects) if (c.container) (containers.add(c.id), below.push(c.id));
    level = below;
  }
  containers.add((await catalog.get(target.id))!.parentId);
  const refs: string[] = [];
  for (const c of containers) for (const o of (await catalog.children(c, 0, 0)).objects) if (o.refId === target.id) refs.push(o.id);
  t.true(refs.length >= 4, `${refs.length} references`);
  const read = async () => {
    for (const c of containers) await browse(cds, c, 'BrowseDirectChildren', '*', ctx);
    for (const id of [target.id, ...refs]) await browse(cds, id, 'BrowseMetadata', '*', ctx);
  };
  await read();
  store.objectReads = 0;
  await read();
  const baseline = store.objectReads;
  t.is(baseline, 2 * containers.size, 'all from the cache (each container itself is read twice: the object and its child list)');

  await catalog.apply({ upserts: [{ ...structuredClone(target), title: 'Renamed Song' }] });
  store.objectReads = 0;
  const lists = new Map<string, string>();
  for (const c of containers) lists.set(c, await browse(cds, c, 'BrowseDirectChildren', '*', ctx));
  const metas = new Map<string, string>();
  for (const id of [target.id, ...refs]) metas.set(id, await browse(cds, id, 'BrowseMetadata', '*', ctx));
  // read again: the renamed item (its references among them) and the containers whose update IDs moved
  const again = store.objectReads - baseline;
  t.true(again <= refs.length + 1 + 12, `${again} objects read again after one rename (${refs.length} references, 40 tracks, ${containers.size} containers in view)`);
  for (const [c, got] of lists) t.is(got, await reference(catalog, (await catalog.children(c, 0, 0)).objects, '*', ctx), c);
  for (const [id, got] of metas) {
    t.true(got.includes('Renamed Song'), id);
    t.false(got.includes('Song 5<'), id);
  }
  // a Search inside an artist's container gives references of that container: renamed too
  const artist = [...containers].find((c) => c.startsWith('music/artists/') && refs.some((r) => r.startsWith(c + '$')))!;
  const out = new Map(await cds.search({ ContainerID: artist, SearchCriteria: 'dc:title contains "renamed"', Filter: '*', StartingIndex: '0', RequestedCount: '0', SortCriteria: '' }, ctx));
  t.is(Number(out.get('TotalMatches')), 1);
  t.true((out.get('Result') as EscapedText).text.includes('Renamed Song'));
});

test('a playlist entry follows its item and its playlist (the title the playlist gives it)', async (t) => {
  const { catalog, items, cds } = await setup(6);
  const ctx = ctxOf(undefined);
  const origPath = `${ROOT}/m/list.m3u`;
  const list = (titles: (string | undefined)[]): CatalogObject => ({
    id: playlistIdForPath(origPath),
    parentId: '',
    container: false,
    upnpClass: 'object.container.playlistContainer',
    title: 'List',
    origPath,
    mediaRoot: ROOT,
    relPath: 'm/list.m3u',
    playlist: { entries: items.slice(0, 3).map((o, i) => ({ id: o.id, ...(titles[i] ? { title: titles[i] } : {}) })) },
  });
  await catalog.apply({ upserts: [list(['First', undefined, 'Third'])] });
  const containers = ['playlists', ...(await catalog.children('playlists', 0, 0)).objects.map((o) => o.id)];
  t.is(containers.length, 2);
  const check = async (what: string) => {
    for (const c of containers) t.is(await browse(cds, c, 'BrowseDirectChildren', '*', ctx), await reference(catalog, (await catalog.children(c, 0, 0)).objects, '*', ctx), `${what}: ${c}`);
  };
  await check('first');
  await check('cached');
  await catalog.apply({ upserts: [{ ...structuredClone(items[1]), title: 'Second Renamed' }] });
  await check('item renamed');
  t.true((await browse(cds, containers[1], 'BrowseDirectChildren', '*', ctx)).includes('Second Renamed'));
  await catalog.apply({ upserts: [list(['First', 'Zweite', undefined])] });
  await check('playlist titles changed');
  const now = await browse(cds, containers[1], 'BrowseDirectChildren', '*', ctx);
  t.true(now.includes('Zweite') && now.includes('Song 2') && !now.includes('Third'));
});

test('random changes (renames, new, removed and moved tracks, locations) interleaved with Browses: every answer is what the serializer writes from the catalog now', async (t) => {
  const { catalog, items, cds } = await setup(30);
  const rnd = prng(11);
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
  const clients = [undefined, ...['samsung', 'lg', 'kodi'].map((id) => profiles.find((p) => p.id === id)!)];
  const filters = ['*', 'dc:title,@childCount,upnp:artist', 'res@duration,upnp:album'];
  const live = new Map(items.map((o) => [o.id, o]));
  let next = items.length;
  let compared = 0;
  for (let step = 0; step < 120; step++) {
    const r = rnd();
    if (r < 0.35) {
      const o = pick([...live.values()]);
      const changed = { ...structuredClone(o), title: `T${step} ${o.title.split(' ').pop()}` };
      if (rnd() < 0.4) changed.meta = { ...changed.meta, album: `Album ${Math.floor(rnd() * 6)}`, artist: `Artist ${Math.floor(rnd() * 5)}` };
      live.set(o.id, changed);
      await catalog.apply({ upserts: [structuredClone(changed)] });
    } else if (r < 0.45) {
      const o = track(next++, `New ${step}`, `Artist ${Math.floor(rnd() * 5)}`);
      live.set(o.id, o);
      await catalog.apply({ upserts: [structuredClone(o)] });
    } else if (r < 0.52 && live.size > 5) {
      const o = pick([...live.values()]);
      live.delete(o.id);
      await catalog.apply({ removes: [o.id] });
    } else if (r < 0.56) {
      const o = pick([...live.values()]);
      await catalog.setLocation(o.id, { disk: { path: `${ROOT}/moved/${step}.mp3`, size: 5, mtime: step } });
    }
    // browse a few containers and objects, in several variants
    const ctx = ctxOf(pick(clients));
    const filter = pick(filters);
    const views = ['0', 'music', 'music/all', 'music/artists', 'music/albums', 'music/genres'];
    const container = rnd() < 0.5 ? pick(views) : pick((await catalog.children(pick(views.slice(3)), 0, 0)).objects.map((o) => o.id).concat(['music/all']));
    const kids = (await catalog.children(container, 0, 0)).objects;
    t.is(await browse(cds, container, 'BrowseDirectChildren', filter, ctx), await reference(catalog, kids, filter, ctx), `step ${step} ${container}`);
    for (const k of kids.slice(0, 3)) {
      t.is(await browse(cds, k.id, 'BrowseMetadata', filter, ctx), await reference(catalog, [(await catalog.get(k.id))!], filter, ctx), `step ${step} ${k.id}`);
      compared++;
    }
  }
  t.true(compared > 200, `${compared} compared`);
});
