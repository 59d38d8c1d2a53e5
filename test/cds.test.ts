// ContentDirectory and ConnectionManager over real SOAP on loopback, against a
// memory catalog filled with synthetic items.
import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { Router } from '@koa/router';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import type { CatalogObject, MediaKind } from '../src/catalog/types.js';
import { ContentDirectory } from '../src/upnp/cds.js';
import { ConnectionManager } from '../src/upnp/cms.js';
import { soapRoutes } from '../src/upnp/soap.js';
import { defaultClientRegistry } from '../src/upnp/clients.js';
import { browse, CDS, CMS, parseDidl, soap } from './helpers/upnp-client.js';
import { testItem } from './helpers/items.js';

const ROOT = '/lib';
function item(rel: string, kind: MediaKind, title: string, meta: CatalogObject['meta'] = {}, res: Partial<CatalogObject['res']> = {}): CatalogObject {
  return testItem(rel, kind, title, { root: ROOT, meta, res });
}

let server: Server;
let base = '';
let catalog: Catalog;
const cds = () => `${base}/upnp/control/cds`;
const cms = () => `${base}/upnp/control/cms`;

test.before(async () => {
  catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const items: CatalogObject[] = [
    item('m/abba/gold/01.mp3', 'audio', 'Dancing Queen', { artist: 'ABBA', album: 'Gold', trackNumber: 1, genre: 'Pop', date: '1992-09-21' }, { duration: 231.5, bitrate: 40000, sampleFrequency: 44100, nrAudioChannels: 2, dlnaProfile: 'MP3' }),
    item('m/abba/gold/02.mp3', 'audio', 'Knowing Me, Knowing You', { artist: 'ABBA', album: 'Gold', trackNumber: 2, genre: 'Pop', date: '1992-09-21' }, { duration: 242 }),
    item('m/beatles/help/01.mp3', 'audio', 'Help!', { artist: 'The Beatles', album: 'Help!', trackNumber: 1, genre: 'Rock', date: '1965-08-06' }, { duration: 138 }),
    item('v/film.mp4', 'video', 'A "quoted" <film> & more', {}, { duration: 5400, width: 1920, height: 1080, size: 5_000_000 }),
    item('p/2020/x.jpg', 'image', 'Beach', { date: '2020-07-04' }, { width: 640, height: 480 }),
  ];
  for (let i = 0; i < 120; i++) items.push(item(`bulk/${i}.mp3`, 'audio', `Bulk ${i}`, { artist: 'Bulk Band', album: 'Many', trackNumber: i + 1 }));
  await catalog.apply({ upserts: items });
  const app = new Koa();
  const router = new Router();
  const clients = defaultClientRegistry();
  soapRoutes(router, '/upnp/control/cds', new ContentDirectory(catalog).service(), { detectClient: (h, r) => clients.detect(h, r), logger: { error: () => {} } });
  soapRoutes(router, '/upnp/control/cms', new ConnectionManager(catalog).service(), { logger: { error: () => {} } });
  app.use(router.routes());
  server = createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after.always(async () => {
  server?.close();
  await catalog?.close();
});

test('root holds Music, Video, Pictures, Folders with childCount and searchable', async (t) => {
  const r = await browse(cds(), '0');
  t.is(r.status, 200);
  t.deepEqual(
    r.entries.map((e) => e.title),
    ['Music', 'Video', 'Pictures', 'Folders'],
  );
  t.is(r.total, 4);
  t.is(r.returned, 4);
  t.is(r.entries[0].childCount, 4);
  t.regex(r.out.Result, /<container [^>]*searchable="1"/);
  t.true(Number(r.out.UpdateID) >= 0);
});

test('BrowseMetadata of the root and of an item', async (t) => {
  const root = await browse(cds(), '0', 'BrowseMetadata');
  t.is(root.entries.length, 1);
  t.is(root.entries[0].parentID, '-1');
  t.is(root.entries[0].id, '0');
  const all = await browse(cds(), 'music/all', 'BrowseDirectChildren', { RequestedCount: 1 });
  const one = await browse(cds(), all.entries[0].id, 'BrowseMetadata');
  t.is(one.entries[0].id, all.entries[0].id);
  t.is(one.entries[0].refID, all.entries[0].refID);
  t.is(one.entries[0].parentID, 'music/all');
});

test('a music track carries its metadata and a DLNA res with the URL the client used', async (t) => {
  const artists = await browse(cds(), 'music/artists');
  const abba = artists.entries.find((e) => e.title === 'ABBA')!;
  const albums = await browse(cds(), abba.id);
  t.deepEqual(
    albums.entries.map((e) => e.title),
    ['Gold'],
  );
  t.is(albums.entries[0].cls, 'object.container.album.musicAlbum');
  const tracks = await browse(cds(), albums.entries[0].id);
  t.deepEqual(
    tracks.entries.map((e) => e.title),
    ['Dancing Queen', 'Knowing Me, Knowing You'],
  );
  const q = tracks.entries[0];
  t.is(q.cls, 'object.item.audioItem.musicTrack');
  t.is(q.props['upnp:artist'], 'ABBA');
  t.is(q.props['upnp:album'], 'Gold');
  t.is(q.props['upnp:genre'], 'Pop');
  t.is(q.props['upnp:originalTrackNumber'], '1');
  t.is(q.props['dc:date'], '1992-09-21');
  t.truthy(q.props['dc:creator']);
  t.is(q.res.length, 1);
  t.true(q.res[0].url.startsWith(base + '/media/'), q.res[0].url);
  t.regex(q.res[0].attrs.protocolInfo, /^http-get:\*:audio\/mpeg:DLNA\.ORG_PN=MP3;DLNA\.ORG_OP=01;DLNA\.ORG_CI=0;DLNA\.ORG_FLAGS=[0-9A-F]{32}$/);
  t.is(q.res[0].attrs.duration, '0:03:51.500');
  t.is(q.res[0].attrs.size, '1000');
  t.is(q.res[0].attrs.sampleFrequency, '44100');
  t.is(q.res[0].attrs.nrAudioChannels, '2');
  t.is(q.res[0].attrs.bitrate, '40000');
});

test('the video item: movie class, resolution, escaped title', async (t) => {
  const v = await browse(cds(), 'video/all');
  t.is(v.entries.length, 1);
  t.is(v.entries[0].title, 'A "quoted" <film> & more');
  t.is(v.entries[0].cls, 'object.item.videoItem.movie');
  t.is(v.entries[0].res[0].attrs.resolution, '1920x1080');
});

test('paging: StartingIndex, RequestedCount, 0 means all, past the end', async (t) => {
  const all = await browse(cds(), 'music/all');
  t.is(all.total, 123);
  t.is(all.returned, 123);
  const p = await browse(cds(), 'music/all', 'BrowseDirectChildren', { StartingIndex: 100, RequestedCount: 10 });
  t.is(p.returned, 10);
  t.is(p.total, 123);
  t.deepEqual(
    p.entries.map((e) => e.id),
    all.entries.slice(100, 110).map((e) => e.id),
  );
  const tail = await browse(cds(), 'music/all', 'BrowseDirectChildren', { StartingIndex: 120, RequestedCount: 10 });
  t.is(tail.returned, 3);
  const past = await browse(cds(), 'music/all', 'BrowseDirectChildren', { StartingIndex: 500, RequestedCount: 10 });
  t.is(past.returned, 0);
  t.is(past.total, 123);
});

test('SortCriteria: descending title, multi-key, deterministic', async (t) => {
  const r = await browse(cds(), 'music/all', 'BrowseDirectChildren', { SortCriteria: '-dc:title', RequestedCount: 3 });
  t.deepEqual(
    r.entries.map((e) => e.title),
    ['Knowing Me, Knowing You', 'Help!', 'Dancing Queen'],
  );
  const a = await browse(cds(), 'music/all', 'BrowseDirectChildren', { SortCriteria: '+upnp:artist,+upnp:originalTrackNumber' });
  const b = await browse(cds(), 'music/all', 'BrowseDirectChildren', { SortCriteria: '+upnp:artist,+upnp:originalTrackNumber' });
  t.deepEqual(a.entries.map((e) => e.id), b.entries.map((e) => e.id));
  t.is(a.entries[0].props['upnp:artist'], 'ABBA');
  const page = await browse(cds(), 'music/all', 'BrowseDirectChildren', { SortCriteria: '-dc:title', StartingIndex: 1, RequestedCount: 1 });
  t.is(page.entries[0].title, 'Help!');
});

test('Filter: only listed properties, required ones always present', async (t) => {
  const r = await browse(cds(), 'video/all', 'BrowseDirectChildren', { Filter: 'dc:title' });
  const e = r.entries[0];
  t.truthy(e.id);
  t.truthy(e.parentID);
  t.is(e.title, 'A "quoted" <film> & more');
  t.is(e.cls, 'object.item.videoItem.movie');
  t.is(e.res.length, 0);
  const withSize = await browse(cds(), 'video/all', 'BrowseDirectChildren', { Filter: 'res,res@size' });
  t.is(withSize.entries[0].res.length, 1);
  t.is(withSize.entries[0].res[0].attrs.size, '5000000');
  t.false("duration" in withSize.entries[0].res[0].attrs);
});

test('XML white space around ObjectID, ContainerID, BrowseFlag and the numbers is not part of them (as MiniDLNA and Gerbera take it)', async (t) => {
  const root = await browse(cds(), ' 0 ', 'BrowseDirectChildren', { BrowseFlag: '\n\tBrowseDirectChildren\r\n', StartingIndex: ' 1 ', RequestedCount: '\n2\n' });
  t.falsy(root.fault, JSON.stringify(root.fault));
  t.deepEqual(
    root.entries.map((e) => e.title),
    ['Video', 'Pictures'],
  );
  const meta = await browse(cds(), '\n music/all \t', 'BrowseMetadata', { BrowseFlag: ' BrowseMetadata ' });
  t.is(meta.entries[0]?.id, 'music/all');
  const search = (ContainerID: string) => soap(cds(), CDS, 'Search', { ContainerID, SearchCriteria: 'dc:title = "Help!"', Filter: '*', StartingIndex: 0, RequestedCount: 0, SortCriteria: '' });
  const padded = await search(' 0\n');
  t.falsy(padded.fault, JSON.stringify(padded.fault));
  t.is(padded.out.TotalMatches, (await search('0')).out.TotalMatches);
  // Only white space around the ID: inside it, or other characters, still name no object.
  t.is((await browse(cds(), 'music /all', 'BrowseMetadata')).fault?.code, 701);
  t.is((await browse(cds(), '\u00a00', 'BrowseMetadata')).fault?.code, 701);
});

test('Browse errors are UPnP faults with the right codes', async (t) => {
  const cases: [Record<string, string | number>, number][] = [
    [{ ObjectID: 'nope' }, 701],
    [{ BrowseFlag: 'BrowseSideways' }, 402],
    [{ StartingIndex: 'abc' }, 402],
    [{ RequestedCount: -1 }, 402],
    [{ SortCriteria: '+dc:nonsense' }, 709],
    [{ SortCriteria: 'garbage!!' }, 709],
  ];
  for (const [args, code] of cases) {
    const r = await browse(cds(), '0', 'BrowseDirectChildren', args);
    t.is(r.status, 500, JSON.stringify(args));
    t.is(r.fault?.code, code, JSON.stringify(args));
  }
  const v = await browse(cds(), 'video/all');
  const onItem = await browse(cds(), v.entries[0].id, 'BrowseDirectChildren');
  t.is(onItem.fault?.code, 710);
  const missing = await soap(cds(), CDS, 'Browse', { ObjectID: '0' });
  t.is(missing.fault?.code, 402);
  const unknown = await soap(cds(), CDS, 'Explode', {});
  t.is(unknown.fault?.code, 401);
});

test('Search over the whole library and over a subtree, with paging and sort', async (t) => {
  const s = async (ContainerID: string, SearchCriteria: string, extra: Record<string, string | number> = {}) => {
    const r = await soap(cds(), CDS, 'Search', { ContainerID, SearchCriteria, Filter: '*', StartingIndex: 0, RequestedCount: 0, SortCriteria: '', ...extra });
    return { ...r, entries: r.fault ? [] : await parseDidl(r.out.Result) };
  };
  const audio = await s('0', 'upnp:class derivedfrom "object.item.audioItem"');
  t.is(Number(audio.out.TotalMatches), 123);
  const help = await s('0', 'dc:title contains "help" and upnp:class derivedfrom "object.item"');
  t.deepEqual(
    help.entries.map((e) => e.title),
    ['Help!'],
  );
  const either = await s('0', '(upnp:artist = "ABBA" or upnp:genre = "Rock") and upnp:class = "object.item.audioItem.musicTrack"', { SortCriteria: '+dc:title' });
  t.deepEqual(
    either.entries.map((e) => e.title),
    ['Dancing Queen', 'Help!', 'Knowing Me, Knowing You'],
  );
  const albums = await s('0', 'upnp:class = "object.container.album.musicAlbum"');
  t.true(albums.entries.every((e) => e.kind === 'container'));
  t.true(albums.entries.some((e) => e.title === 'Gold'));
  // subtree: one artist's container
  const artists = await browse(cds(), 'music/artists');
  const abba = artists.entries.find((e) => e.title === 'ABBA')!;
  const sub = await s(abba.id, '*');
  t.is(sub.entries.filter((e) => e.kind === 'item').length, 2);
  for (const e of sub.entries.filter((x) => x.kind === 'item')) {
    t.true(e.parentID.startsWith(abba.id), 'results carry IDs inside the subtree');
    t.truthy(e.refID);
  }
  const paged = await s('0', 'upnp:artist = "Bulk Band"', { StartingIndex: 10, RequestedCount: 5, SortCriteria: '+upnp:originalTrackNumber' });
  t.is(Number(paged.out.TotalMatches), 120);
  t.deepEqual(
    paged.entries.map((e) => e.props['upnp:originalTrackNumber']),
    ['11', '12', '13', '14', '15'],
  );
  t.is((await s('0', 'dc:title = "unterminated')).fault?.code, 708);
  t.is((await s('0', 'dc:title foo "x"')).fault?.code, 708);
  t.is((await s('nope', '*')).fault?.code, 710);
  t.is((await s('0', '*', { SortCriteria: '+bogus:prop' })).fault?.code, 709);
});

test('capabilities and SystemUpdateID', async (t) => {
  const sc = await soap(cds(), CDS, 'GetSearchCapabilities');
  t.regex(sc.out.SearchCaps, /dc:title/);
  t.regex(sc.out.SearchCaps, /upnp:class/);
  const so = await soap(cds(), CDS, 'GetSortCapabilities');
  t.regex(so.out.SortCaps, /dc:title/);
  const id = await soap(cds(), CDS, 'GetSystemUpdateID');
  t.is(Number(id.out.Id), catalog.systemUpdateId);
});

/** Counts the walks over every item (Catalog.eachItem) made from now on. */
function countItemWalks(cat: Catalog): { n: number } {
  const count = { n: 0 };
  const eachItem = cat.eachItem.bind(cat);
  cat.eachItem = ((...args: Parameters<typeof cat.eachItem>) => {
    count.n++;
    return eachItem(...args);
  }) as typeof cat.eachItem;
  return count;
}

test('ConnectionManager: the source protocolInfo is kept in the catalog, so a restart on an unchanged library does not read every item', async (t) => {
  const store = new MemoryStore();
  const cat = new Catalog(store);
  await cat.open();
  await cat.apply({ upserts: [item('music/a.mp3', 'audio', 'A'), item('video/b.mp4', 'video', 'B')] });
  const first = await new ConnectionManager(cat).sourceProtocolInfo();
  t.regex(first, /audio\/mpeg/);
  // a new ConnectionManager (a restarted server) on the same catalog: no item is read
  const reads = countItemWalks(cat);
  t.is(await new ConnectionManager(cat).sourceProtocolInfo(), first);
  t.is(reads.n, 0);
  // the library changes: read again, and the new answer is the one kept
  await cat.apply({ upserts: [item('photo/c.jpg', 'image', 'C')] });
  const next = await new ConnectionManager(cat).sourceProtocolInfo();
  t.is(reads.n, 1);
  t.regex(next, /image\/jpeg/);
  t.is(await new ConnectionManager(cat).sourceProtocolInfo(), next);
  t.is(reads.n, 1);
});

test('ConnectionManager: a change of art or metadata only keeps the source protocolInfo without reading every item; a new or removed resource reads again', async (t) => {
  const cat = new Catalog(new MemoryStore());
  await cat.open();
  const a = item('music/a.mp3', 'audio', 'A');
  await cat.apply({ upserts: [a] });
  const cms = new ConnectionManager(cat);
  const reads = countItemWalks(cat);
  t.regex(await cms.sourceProtocolInfo(), /audio\/mpeg/);
  t.is(reads.n, 1);
  // metadata and art (what the scan's later passes and video frames change): no read
  await cat.apply({ upserts: [{ ...a, title: 'A, retitled', meta: { artist: 'Someone' }, art: { key: 'k', tn: [160, 160], sm: [640, 640] } }] });
  t.regex(await cms.sourceProtocolInfo(), /audio\/mpeg/);
  t.is(reads.n, 1, 'the answer was carried to the new SystemUpdateID');
  // a new resource: read again, and it is there
  const v = item('video/b.mp4', 'video', 'B');
  await cat.apply({ upserts: [v] });
  t.regex(await cms.sourceProtocolInfo(), /video\/mp4/);
  t.is(reads.n, 2);
  // a resource removed: read again, and it is gone
  await cat.apply({ removes: [v.id] });
  t.notRegex(await cms.sourceProtocolInfo(), /video\/mp4/);
  t.is(reads.n, 3);
});

test('Samsung X_GetFeatureList points at our containers', async (t) => {
  const r = await soap(cds(), CDS, 'X_GetFeatureList', {}, { 'user-agent': 'SEC_HHP_[TV] Samsung Q7 Series/1.0 UPnP/1.0' });
  t.regex(r.out.FeatureList, /samsung\.com_BASICVIEW/);
  t.regex(r.out.FeatureList, /object\.item\.audioItem/);
});

test('ConnectionManager: protocol info from the library, connection IDs', async (t) => {
  const p = await soap(cms(), CMS, 'GetProtocolInfo');
  const source = p.out.Source.split(',');
  t.true(source.some((s) => s.startsWith('http-get:*:audio/mpeg:')));
  t.true(source.some((s) => s.startsWith('http-get:*:video/mp4:')));
  t.true(source.some((s) => s.startsWith('http-get:*:image/jpeg:')));
  t.false(source.some((s) => s.includes('audio/flac')), 'only what the library holds');
  t.is(p.out.Sink, '');
  t.is((await soap(cms(), CMS, 'GetCurrentConnectionIDs')).out.ConnectionIDs, '0');
  const info = await soap(cms(), CMS, 'GetCurrentConnectionInfo', { ConnectionID: 0 });
  t.is(info.out.Direction, 'Output');
  t.is(info.out.Status, 'OK');
  t.is((await soap(cms(), CMS, 'GetCurrentConnectionInfo', { ConnectionID: 7 })).fault?.code, 706);
  t.is((await soap(cms(), CMS, 'GetCurrentConnectionInfo', { ConnectionID: 'abc' })).fault?.code, 402, 'not an i4');
  t.is((await soap(cms(), CMS, 'GetCurrentConnectionInfo', { ConnectionID: '99999999999' })).fault?.code, 402, 'out of i4 range');
  t.is((await soap(cms(), CMS, 'GetCurrentConnectionInfo', { ConnectionID: '-1' })).fault?.code, 706);
});

test.serial('a repeated search sees a library change at once (result cache follows SystemUpdateID)', async (t) => {
  const q = { ContainerID: '0', SearchCriteria: 'dc:title contains "zzfresh"', Filter: '*', StartingIndex: 0, RequestedCount: 10, SortCriteria: '' };
  t.is(Number((await soap(cds(), CDS, 'Search', q)).out.TotalMatches), 0);
  const fresh = item('new/zzfresh.mp3', 'audio', 'zzfresh one', { artist: 'New' });
  await catalog.apply({ upserts: [fresh] });
  t.is(Number((await soap(cds(), CDS, 'Search', q)).out.TotalMatches), 1);
  await catalog.apply({ removes: [fresh.id] });
  t.is(Number((await soap(cds(), CDS, 'Search', q)).out.TotalMatches), 0);
});
