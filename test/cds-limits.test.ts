// Bounds of one ContentDirectory answer and of its input, over real SOAP on loopback: a page
// holds at most MAX_PAGE objects whatever RequestedCount says (0 = "all" included).
import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { Router } from '@koa/router';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { ContentDirectory, MAX_PAGE, SORT_CHUNK } from '../src/upnp/cds.js';
import { compileSort, parseSort } from '../src/upnp/sort.js';
import { MAX_SEARCH_LENGTH, MAX_SEARCH_TERMS } from '../src/upnp/search.js';
import { soapRoutes } from '../src/upnp/soap.js';
import { browse, CDS, parseDidl, soap } from './helpers/upnp-client.js';
import { testItem } from './helpers/items.js';

const TRACKS = MAX_PAGE + 234;

/** Records the most objects read in one getMany (how much of a container is in memory at once). */
class BatchStore extends MemoryStore {
  maxGetMany = 0;
  override async getMany(ks: string[]) {
    this.maxGetMany = Math.max(this.maxGetMany, ks.length);
    return super.getMany(ks);
  }
}
let store: BatchStore;
let server: Server;
let catalog: Catalog;
let cds = '';

test.before(async () => {
  store = new BatchStore();
  catalog = new Catalog(store);
  await catalog.open();
  const items: CatalogObject[] = [];
  for (let i = 0; i < TRACKS; i++) items.push(testItem(`many/${i}.mp3`, 'audio', `Track ${i}`, { root: '/lib', meta: { artist: 'Many', album: 'Lots', trackNumber: i + 1 } }));
  await catalog.apply({ upserts: items });
  const app = new Koa();
  const router = new Router();
  soapRoutes(router, '/upnp/control/cds', new ContentDirectory(catalog).service(), { logger: { error: () => {} } });
  app.use(router.routes());
  server = createServer(app.callback());
  // answers of 1,000 objects take a while to parse on a loaded machine: a pause longer than the
  // default keep-alive (5 s) lets the server close the socket fetch is about to reuse
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cds = `http://127.0.0.1:${(server.address() as AddressInfo).port}/upnp/control/cds`;
});
test.after.always(async () => {
  server?.close();
  server?.closeAllConnections();
  await catalog?.close();
});

test('Browse with RequestedCount 0 (or more than MAX_PAGE) answers MAX_PAGE objects; paging on gets the rest, each once', async (t) => {
  const first = await browse(cds, 'music/all', 'BrowseDirectChildren', { RequestedCount: 0 });
  t.is(first.status, 200);
  t.is(first.total, TRACKS);
  t.is(first.returned, MAX_PAGE);
  t.is(first.entries.length, MAX_PAGE);
  const huge = await browse(cds, 'music/all', 'BrowseDirectChildren', { RequestedCount: 4294967295 });
  t.is(huge.returned, MAX_PAGE);
  const rest = await browse(cds, 'music/all', 'BrowseDirectChildren', { StartingIndex: MAX_PAGE, RequestedCount: 0 });
  t.is(rest.returned, TRACKS - MAX_PAGE);
  const ids = [...first.entries, ...rest.entries].map((e) => e.id);
  t.is(new Set(ids).size, TRACKS);
  // a sorted Browse is capped the same way
  const sorted = await browse(cds, 'music/all', 'BrowseDirectChildren', { RequestedCount: 0, SortCriteria: '-dc:title' });
  t.is(sorted.returned, MAX_PAGE);
  t.is(sorted.total, TRACKS);
  // a small page is what it asks for
  t.is((await browse(cds, 'music/all', 'BrowseDirectChildren', { RequestedCount: 7 })).returned, 7);
});

test('Search with RequestedCount 0 answers MAX_PAGE objects and the true TotalMatches', async (t) => {
  for (const SearchCriteria of ['*', 'upnp:class derivedfrom "object.item.audioItem"', 'dc:title contains "track"']) {
    const r = await soap(cds, CDS, 'Search', { ContainerID: '0', SearchCriteria, Filter: '*', StartingIndex: 0, RequestedCount: 0, SortCriteria: '' });
    t.is(r.status, 200, SearchCriteria);
    t.is(Number(r.out.NumberReturned), MAX_PAGE, SearchCriteria);
    t.is((await parseDidl(r.out.Result)).length, MAX_PAGE, SearchCriteria);
    t.true(Number(r.out.TotalMatches) >= TRACKS, SearchCriteria);
  }
});

test('Search takes at most MAX_SEARCH_LENGTH characters and MAX_SEARCH_TERMS terms of criteria: more is a 708 fault naming the limit', async (t) => {
  const search = (SearchCriteria: string) => soap(cds, CDS, 'Search', { ContainerID: '0', SearchCriteria, Filter: '*', StartingIndex: 0, RequestedCount: 5, SortCriteria: '' });
  const terms = (n: number) => Array.from({ length: n }, (_, i) => `dc:title contains "track ${i}"`).join(' or ');
  // at the limits: answered
  const ok = await search(terms(MAX_SEARCH_TERMS));
  t.is(ok.status, 200);
  t.true(Number(ok.out.TotalMatches) > 0);
  const long = `dc:title = "${'x'.repeat(MAX_SEARCH_LENGTH - 13)}"`;
  t.is(long.length, MAX_SEARCH_LENGTH);
  t.is((await search(long)).status, 200);
  // past them: UPnP error 708 with a clear description
  const many = await search(terms(MAX_SEARCH_TERMS + 1));
  t.is(many.fault?.code, 708);
  t.regex(many.fault!.description, /too many terms \(at most 64/);
  const longer = await search(`dc:title = "${'x'.repeat(MAX_SEARCH_LENGTH - 12)}"`);
  t.is(longer.fault?.code, 708);
  t.regex(longer.fault!.description, /too long \(4097 characters, at most 4096/);
  // criteria as QA sent them: over 40 KB of or-ed terms (~1.7 s of CPU on 20k tracks before)
  const huge = await search(terms(1300));
  t.true(terms(1300).length > 40_000);
  t.is(huge.fault?.code, 708);
});

test('X_SetBookmark takes CategoryType and RID as Samsung sends them (numbers or text), refuses absurd ones with 402 naming the argument', async (t) => {
  const item = (await browse(cds, 'music/all', 'BrowseDirectChildren', { RequestedCount: 1 })).entries[0];
  const itemId = item.refID ?? item.id;
  const set = (args: Record<string, string | number>) => soap(cds, CDS, 'X_SetBookmark', { ObjectID: item.id, PosSecond: 0, ...args });
  let pos = 10;
  for (const [CategoryType, RID] of [
    [1, 0],
    ['VIDEO', 'uuid:4d696e69-444c-164e-9d41-b827eb1eaf7a'],
    ['', ''],
    [' 2 ', '0$1$17'],
    ['x', 'RID_1234'],
  ]) {
    pos += 10;
    const r = await set({ CategoryType, RID, PosSecond: pos });
    t.is(r.status, 200, `${CategoryType} / ${RID}: ${r.fault?.description}`);
    t.is((await catalog.bookmarks.get(itemId))?.pos, pos);
  }
  const long = await set({ CategoryType: 'x'.repeat(257), PosSecond: 99 });
  t.is(long.fault?.code, 402);
  t.regex(long.fault!.description, /CategoryType must be printable text of at most 256 characters/);
  t.is((await set({ RID: 'r'.repeat(300), PosSecond: 99 })).fault?.code, 402);
  t.is((await catalog.bookmarks.get(itemId))?.pos, pos, 'refused calls change nothing');
  // PosSecond stays a ui4
  t.is((await set({ PosSecond: 'soon' })).fault?.code, 402);
});

test.serial('a sorted Browse of a container larger than SORT_CHUNK reads its children SORT_CHUNK at a time, and every page is the slice of the whole sorted list', async (t) => {
  t.true(TRACKS > SORT_CHUNK);
  const expected = (await catalog.allChildren('music/all')).sort(compileSort(parseSort('-upnp:originalTrackNumber,+dc:title'))).map((o) => o.id);
  store.maxGetMany = 0;
  const got: string[] = [];
  for (let start = 0; start < TRACKS; start += 500) {
    const r = await browse(cds, 'music/all', 'BrowseDirectChildren', { StartingIndex: start, RequestedCount: 500, SortCriteria: '-upnp:originalTrackNumber,+dc:title' });
    t.is(r.total, TRACKS);
    got.push(...r.entries.map((e) => e.id));
  }
  t.deepEqual(got, expected);
  t.true(store.maxGetMany <= SORT_CHUNK, `${store.maxGetMany} objects read at once`);
});
