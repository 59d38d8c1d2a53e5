// The DIDL-Lite cache (upnp/didl-cache.ts) behind Browse: answers byte for byte what the
// serializer writes for every client profile, Filter and base URL, on the first request and
// from the cache; never stale after a catalog change or a bookmark change; bounded in bytes.
import test from 'ava';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import type { CatalogObject, MediaKind } from '../src/catalog/types.js';
import { ContentDirectory } from '../src/upnp/cds.js';
import { didl } from '../src/upnp/didl.js';
import { DidlCache } from '../src/upnp/didl-cache.js';
import { defaultClientRegistry, type ClientProfile } from '../src/upnp/clients.js';
import type { SoapContext } from '../src/upnp/soap.js';
import { protocolInfo } from '../src/media/dlna.js';
import { didlArt } from '../src/art/dlna.js';
import { captionsOf } from '../src/media/subtitles.js';
import { escText, EscapedText } from '../src/util/xml.js';
import { testItem } from './helpers/items.js';

const ROOT = '/lib';
function item(rel: string, kind: MediaKind, title: string, extra: Partial<CatalogObject> = {}): CatalogObject {
  return testItem(rel, kind, title, {
    root: ROOT,
    mime: { audio: 'audio/mpeg', video: 'video/x-msvideo', image: 'image/jpeg' }[kind],
    meta: { artist: 'Björk & Co', album: 'Début', trackNumber: 3, genre: 'Pop', date: '1993-07' },
    res: { size: 1234, duration: 61.5, bitrate: 128000, sampleFrequency: 44100, nrAudioChannels: 2, width: 640, height: 480 },
    extra,
  });
}

const ITEMS = [
  item('a/01.mp3', 'audio', 'Plain', { art: { key: 'k1', tn: [160, 160], sm: [640, 640] } }),
  item('a/02.mp3', 'audio', 'Quotes "<&>" and \u0001 control, 東京'),
  item('a/film.avi', 'video', 'Film', { subtitles: [{ key: 's1', ext: 'srt' }], art: { key: 'k2', tn: [160, 90], sm: [640, 360] } }),
  item('a/pic.jpg', 'image', 'Picture'),
];

async function setup(cacheBytes?: number) {
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await catalog.apply({ upserts: ITEMS.map((o) => structuredClone(o)) });
  const cds = new ContentDirectory(catalog, cacheBytes === undefined ? {} : { didlCacheBytes: cacheBytes });
  return { catalog, cds };
}

const profiles = defaultClientRegistry().profiles;
const profile = (id: string) => profiles.find((p) => p.id === id)!;
const ctxOf = (client: ClientProfile | undefined, baseUrl = 'http://10.0.0.1:8210'): SoapContext => ({ baseUrl, remoteAddress: '10.0.0.2', headers: {}, client });

async function browse(cds: ContentDirectory, objectId: string, flag: string, filter: string, ctx: SoapContext, start = 0, count = 0, sort = '') {
  const out = (await cds.browse({ ObjectID: objectId, BrowseFlag: flag, Filter: filter, StartingIndex: String(start), RequestedCount: String(count), SortCriteria: sort }, ctx)) as [string, unknown][];
  const result = out[0][1];
  return { result: result instanceof EscapedText ? result.text : escText(result), rest: out.slice(1) };
}

/** What the serializer writes for these objects, escaped as the SOAP Result carries it. */
async function reference(catalog: Catalog, objects: CatalogObject[], filter: string, ctx: SoapContext): Promise<string> {
  const marks = ctx.client?.quirks.sendsBookmark ? await catalog.bookmarks.getMany(objects.filter((o) => !o.container).map((o) => o.refId ?? o.id)) : undefined;
  const xml = didl(objects, {
    baseUrl: ctx.baseUrl,
    filter,
    protocolInfo,
    client: ctx.client,
    ...didlArt(ctx.baseUrl),
    captions: (o) => captionsOf(ctx.baseUrl, o),
    bookmark: marks && ((o) => marks.get(o.refId ?? o.id)?.pos),
  });
  return escText(xml);
}

test('Browse answers byte for byte what the serializer writes, first time and from the cache, for every profile and Filter', async (t) => {
  const { catalog, cds } = await setup();
  const folder = ITEMS[0] && (await catalog.get(ITEMS[0].id))!.parentId;
  await catalog.bookmarks.set(ITEMS[2].id, 95);
  const containers = ['0', 'music', 'music/all', folder, 'video/all'];
  let compared = 0;
  for (const client of [undefined, ...['samsung', 'xbox', 'lg', 'generic', 'kodi'].map(profile)]) {
    for (const filter of ['*', 'dc:title,res@size,upnp:albumArtURI', '', 'res@duration,sec:CaptionInfoEx,sec:dcmInfo,@childCount']) {
      const ctx = ctxOf(client);
      for (let pass = 0; pass < 2; pass++) {
        for (const id of containers) {
          const kids = (await catalog.children(id, 0, 0)).objects;
          const got = await browse(cds, id, 'BrowseDirectChildren', filter, ctx);
          t.is(got.result, await reference(catalog, kids, filter, ctx), `${client?.id} ${filter} ${id} pass ${pass}`);
          for (const k of kids) {
            const meta = await browse(cds, k.id, 'BrowseMetadata', filter, ctx);
            t.is(meta.result, await reference(catalog, [(await catalog.get(k.id))!], filter, ctx), `${client?.id} ${filter} ${k.id} metadata pass ${pass}`);
            compared++;
          }
        }
        // a page of a sorted Browse, and a page past the end
        const sorted = await browse(cds, 'music/all', 'BrowseDirectChildren', filter, ctx, 1, 2, '-dc:title');
        const all = (await catalog.children('music/all', 0, 0)).objects.sort((a, b) => (a.title < b.title ? 1 : -1));
        t.is(sorted.result, await reference(catalog, all.slice(1, 3), filter, ctx));
        t.is((await browse(cds, 'music/all', 'BrowseDirectChildren', filter, ctx, 50, 10)).result, await reference(catalog, [], filter, ctx));
      }
    }
  }
  t.true(compared > 100);
});

test('a catalog change is never answered from the cache', async (t) => {
  const { catalog, cds } = await setup();
  const ctx = ctxOf(undefined);
  const id = ITEMS[0].id;
  t.true((await browse(cds, id, 'BrowseMetadata', '*', ctx)).result.includes('Plain'));
  t.true((await browse(cds, 'music/all', 'BrowseDirectChildren', '*', ctx)).result.includes('Plain'));
  await catalog.apply({ upserts: [{ ...structuredClone(ITEMS[0]), title: 'Renamed' }] });
  t.true((await browse(cds, id, 'BrowseMetadata', '*', ctx)).result.includes('Renamed'));
  t.true((await browse(cds, 'music/all', 'BrowseDirectChildren', '*', ctx)).result.includes('Renamed'));
  // a container's childCount and update ID follow too
  const before = await browse(cds, 'music/all', 'BrowseMetadata', '*', ctx);
  t.true(before.result.includes('childCount="2"'));
  await catalog.apply({ upserts: [item('b/new.mp3', 'audio', 'New')] });
  t.true((await browse(cds, 'music/all', 'BrowseMetadata', '*', ctx)).result.includes('childCount="3"'));
  t.not((await browse(cds, 'music/all', 'BrowseMetadata', '*', ctx)).rest.at(-1)![1], before.rest.at(-1)![1], 'UpdateID');
});

test('bookmarks are read per request, not kept in the cache', async (t) => {
  const { catalog, cds } = await setup();
  const ctx = ctxOf(profile('samsung'));
  const id = ITEMS[0].id;
  t.false((await browse(cds, id, 'BrowseMetadata', '*', ctx)).result.includes('dcmInfo'));
  await catalog.bookmarks.set(id, 42);
  const r = await browse(cds, id, 'BrowseMetadata', '*', ctx);
  t.true(r.result.includes('&lt;sec:dcmInfo&gt;BM=42&lt;/sec:dcmInfo&gt;&lt;/item&gt;'));
  t.true(r.result.includes('xmlns:sec='));
});

test('releaseCaches (the idle trim) empties the cache; answers stay byte for byte the same and a later change is still seen', async (t) => {
  const { catalog, cds } = await setup();
  const ctx = ctxOf(profile('samsung'));
  const heads = () => (cds as unknown as { heads: DidlCache }).heads.stats.entries;
  const first = await browse(cds, 'music/all', 'BrowseDirectChildren', '*', ctx);
  t.true(heads() > 0);
  cds.releaseCaches();
  t.is(heads(), 0);
  const again = await browse(cds, 'music/all', 'BrowseDirectChildren', '*', ctx);
  t.is(again.result, first.result);
  t.true(heads() > 0, 'filled again');
  // the entries made after the release are dropped by a change like any other
  await catalog.apply({ upserts: [{ ...structuredClone(ITEMS[0]), title: 'Renamed' }] });
  t.true((await browse(cds, 'music/all', 'BrowseDirectChildren', '*', ctx)).result.includes('Renamed'));
});

test('each base URL gets its own URLs', async (t) => {
  const { cds } = await setup();
  const id = ITEMS[0].id;
  t.true((await browse(cds, id, 'BrowseMetadata', '*', ctxOf(undefined, 'http://10.0.0.1:8210'))).result.includes('http://10.0.0.1:8210/media/'));
  const other = (await browse(cds, id, 'BrowseMetadata', '*', ctxOf(undefined, 'http://192.168.1.5:8210'))).result;
  t.true(other.includes('http://192.168.1.5:8210/media/'));
  t.false(other.includes('10.0.0.1'));
});

test('the cache stays within its bytes; 0 turns it off', (t) => {
  const cache = new DidlCache(20_000);
  const v = cache.variant(1, undefined, 'http://h', '*')!;
  for (let i = 0; i < 100; i++) cache.set(v, 1, { id: `i${i}`, container: false, xml: 'x'.repeat(1000), usesSec: false });
  t.true(cache.stats.bytes <= 20_000, `${cache.stats.bytes} bytes`);
  t.true(cache.stats.entries >= 10 && cache.stats.entries < 20);
  t.truthy(cache.get(v, 'i99'));
  t.is(cache.get(v, 'i0'), undefined);
  // a new catalog generation drops everything; a head made under the old one is not kept
  const v2 = cache.variant(2, undefined, 'http://h', '*')!;
  t.is(cache.stats.entries, 0);
  cache.set(v2, 1, { id: 'old', container: false, xml: 'x', usesSec: false });
  t.is(cache.get(v2, 'old'), undefined);
  const off = new DidlCache(0);
  t.is(off.variant(1, undefined, 'http://h', '*'), undefined);
});

test('Browse through HTTP: a client\'s Host header is not in its URLs, and the cache holds one variant per local address, not per Host', async (t) => {
  const http = await import('node:http');
  const Koa = (await import('koa')).default;
  const { Router } = await import('@koa/router');
  const { soapRoutes } = await import('../src/upnp/soap.js');
  const { catalog, cds } = await setup();
  const app = new Koa();
  const router = new Router();
  soapRoutes(router, '/ctl', cds.service(), { logger: { error: () => undefined }, detectClient: () => profile('samsung') });
  app.use(router.routes());
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const folder = (await catalog.get(ITEMS[0].id))!.parentId;
  const body = `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:Browse xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1"><ObjectID>${folder}</ObjectID><BrowseFlag>BrowseDirectChildren</BrowseFlag><Filter>*</Filter><StartingIndex>0</StartingIndex><RequestedCount>0</RequestedCount><SortCriteria></SortCriteria></u:Browse></s:Body></s:Envelope>`;
  const post = (host: string) =>
    new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/ctl', method: 'POST', agent: false, headers: { Host: host, 'Content-Type': 'text/xml; charset="utf-8"', SOAPACTION: '"urn:schemas-upnp-org:service:ContentDirectory:1#Browse"' } }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (b += c));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end(body);
    });
  const first = await post(`127.0.0.1:${port}`);
  t.true(first.includes(`http://127.0.0.1:${port}/media/`), 'res URL');
  t.true(first.includes(`http://127.0.0.1:${port}/art/`), 'albumArtURI');
  t.true(first.includes(`http://127.0.0.1:${port}/subtitles/`), 'subtitles');
  const entries = cds['heads'].stats.entries;
  for (let n = 0; n < 20; n++) {
    const got = await post(`rebind-${n}.attacker.example:${port}`);
    t.false(got.includes('attacker.example'), `Host ${n} reflected`);
    t.is(got, first);
  }
  t.is(cds['heads'].stats.entries, entries, 'no cache variant per Host');
});
