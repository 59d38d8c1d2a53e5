// Sidecar subtitles (issue 10, item 2): found by the scanner, kept in the data directory, served
// by the video's ID with their MIME type, announced per client profile: an extra res
// (generic, LG, Kodi, BubbleUPnP), sec:CaptionInfoEx and the CaptionInfo.sec header (Samsung).
import test from 'ava';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findSidecars, isSubtitlePath, storeSubtitles, subtitleStore } from '../src/media/subtitles.js';
import { subtitleResolver } from '../src/http/subtitles.js';
import { scan, scanPaths } from '../src/scanner/scanner.js';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { fakeProbe, makeLab } from './fixtures/archive/setup.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import { REPO_ROOT } from '../src/util/paths.js';
import { browse, CDS, soap } from './helpers/upnp-client.js';
import { serveMedia } from './helpers/serve.js';
import { withLinkSwappedAfterLstat } from './helpers/swap-link.js';

const SRT = '1\n00:00:00,500 --> 00:00:02,000\nHello\n';
const SAMSUNG = 'DLNADOC/1.50 SEC_HHP_[TV]UE40D7000/1.0';

async function media(t: import('ava').ExecutionContext) {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-subs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const m = join(dir, 'media');
  await mkdir(m);
  await copyFile(join(REPO_ROOT, 'test/fixtures/media/clip.mkv'), join(m, 'Film.mkv'));
  await writeFile(join(m, 'Film.srt'), SRT);
  await writeFile(join(m, 'film.de.SRT'), SRT.replace('Hello', 'Hallo'));
  await writeFile(join(m, 'Film.fr.ass'), '[Script Info]\n');
  await writeFile(join(m, 'Film.vtt'), 'WEBVTT\n');
  await writeFile(join(m, 'Film.not a language.srt'), SRT);
  await writeFile(join(m, 'Other.srt'), SRT);
  await copyFile(join(REPO_ROOT, 'test/fixtures/media/clip.mkv'), join(m, 'Bare.mkv'));
  return m;
}

test('sidecars: <name>.ext and <name>.LANG.ext, any case, plain name and srt first; other files ignored', async (t) => {
  const m = await media(t);
  const found = await findSidecars(join(m, 'Film.mkv'));
  t.deepEqual(
    found.map((f) => [f.path.slice(m.length + 1), f.ext, f.lang]),
    [
      ['Film.srt', 'srt', undefined],
      ['Film.vtt', 'vtt', undefined],
      ['film.de.SRT', 'srt', 'de'],
      ['Film.fr.ass', 'ass', 'fr'],
    ],
  );
  t.deepEqual(await findSidecars(join(m, 'Bare.mkv')), []);
});

test('subtitles served by ID with their MIME type; a generic client gets text/srt res elements, Samsung sec:CaptionInfoEx and CaptionInfo.sec', async (t) => {
  t.timeout(90_000);
  const m = await media(t);
  const { base } = await serveMedia(t, m);
  const id = itemIdForPath(join(m, 'Film.mkv'));
  const bare = itemIdForPath(join(m, 'Bare.mkv'));
  const ctl = `${base}/upnp/control/cds`;

  // generic client: one res per subtitle, typed, after the video's own res
  const generic = await browse(ctl, id, 'BrowseMetadata');
  const xml = generic.out.Result;
  const subRes = [...xml.matchAll(/<res protocolInfo="http-get:\*:(text\/[\w-]+):\*">([^<]+)<\/res>/g)].map((r) => [r[1], r[2]]);
  t.deepEqual(subRes, [
    ['text/srt', `${base}/subtitles/${id}.0.srt`],
    ['text/vtt', `${base}/subtitles/${id}.1.vtt`],
    ['text/srt', `${base}/subtitles/${id}.2.srt`],
    ['text/x-ass', `${base}/subtitles/${id}.3.ass`],
  ]);
  t.false(xml.includes('CaptionInfoEx'));
  t.false((await browse(ctl, bare, 'BrowseMetadata')).out.Result.includes('text/srt'), 'no sidecar, no caption');
  const video = `${base}/media/${id}.mkv`;
  // (before any Samsung request: a profile is remembered per address)
  const g = await fetch(video, { method: 'HEAD', headers: { 'getCaptionInfo.sec': '1', 'user-agent': 'curl/8' } });
  t.is(g.status, 200);
  t.is(g.headers.get('captioninfo.sec'), null, 'no CaptionInfo.sec for a client whose profile does not ask for it');

  // Samsung: sec:CaptionInfoEx with the SRT, no extra res
  const sam = await soap(ctl, CDS, 'Browse', { ObjectID: id, BrowseFlag: 'BrowseMetadata', Filter: '*', StartingIndex: 0, RequestedCount: 0, SortCriteria: '' }, { 'user-agent': SAMSUNG });
  const sx = sam.out.Result;
  t.true(sx.includes(`<sec:CaptionInfoEx sec:type="srt">${base}/subtitles/${id}.0.srt</sec:CaptionInfoEx>`), sx);
  t.regex(sx, /xmlns:sec="http:\/\/www\.sec\.co\.kr\/"/);
  t.false(sx.includes('text/srt:*'));

  // the subtitle files: bytes and MIME type; GET and HEAD
  const s0 = await fetch(`${base}/subtitles/${id}.0.srt`);
  t.is(s0.status, 200);
  t.is(s0.headers.get('content-type'), 'text/srt');
  t.is(await s0.text(), SRT);
  const s2 = await fetch(`${base}/subtitles/${id}.2.srt`);
  t.true((await s2.text()).includes('Hallo'));
  const s3 = await fetch(`${base}/subtitles/${id}.3.ass`, { method: 'HEAD' });
  t.is(s3.headers.get('content-type'), 'text/x-ass');
  t.is((await fetch(`${base}/subtitles/${id}.9.srt`)).status, 404);

  // a .vtt URL of a stored SRT delivers WebVTT (converted), never the SRT's bytes
  const v0 = await fetch(`${base}/subtitles/${id}.0.vtt`);
  t.is(v0.status, 200);
  t.is(v0.headers.get('content-type'), 'text/vtt');
  const vtt = await v0.text();
  t.is(vtt, 'WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello\n');
  t.is(v0.headers.get('content-length'), String(Buffer.byteLength(vtt)));
  const vHead = await fetch(`${base}/subtitles/${id}.0.vtt`, { method: 'HEAD' });
  t.is(vHead.headers.get('content-length'), String(Buffer.byteLength(vtt)), 'HEAD: the same length as GET');
  t.is(vHead.headers.get('etag'), v0.headers.get('etag'));
  const vRange = await fetch(`${base}/subtitles/${id}.0.vtt`, { headers: { range: 'bytes=0-5' } });
  t.is(vRange.status, 206);
  t.is(await vRange.text(), 'WEBVTT');
  // an extension the subtitle cannot be served as: 404 (no SRT bytes under .ass, no WebVTT under .srt)
  t.is((await fetch(`${base}/subtitles/${id}.0.ass`)).status, 404);
  t.is((await fetch(`${base}/subtitles/${id}.1.srt`)).status, 404);
  t.is((await fetch(`${base}/subtitles/${id}.1.vtt`)).status, 200, 'a stored WebVTT under its own extension');
  // conditional requests as for media: a future If-Modified-Since is ignored
  const future = new Date(Date.now() + 86_400_000).toUTCString();
  t.is((await fetch(`${base}/subtitles/${id}.0.srt`, { method: 'HEAD', headers: { 'if-modified-since': future } })).status, 200);
  t.is((await fetch(`${base}/subtitles/${bare}.0.srt`)).status, 404);

  // getCaptionInfo.sec on the video: Samsung gets the header on GET and HEAD, a generic client does not
  for (const method of ['GET', 'HEAD']) {
    const r = await fetch(video, { method, headers: { 'getCaptionInfo.sec': '1', 'user-agent': SAMSUNG, range: 'bytes=0-0' } });
    t.is(r.headers.get('captioninfo.sec'), `${base}/subtitles/${id}.0.srt`, method);
    await r.arrayBuffer();
  }
  const noAsk = await fetch(video, { method: 'HEAD', headers: { 'user-agent': SAMSUNG } });
  t.is(noAsk.headers.get('captioninfo.sec'), null, 'only when asked');
});

test('subtitles of an archived video are served from the data directory: no tape operation, even with the sidecar gone', async (t) => {
  const lab = await makeLab({ files: [['Video/Holiday.mkv', 50_000]] });
  t.teardown(() => lab.cleanup());
  const video = join(lab.media, 'Video/Holiday.mkv');
  await writeFile(join(lab.media, 'Video/Holiday.en.srt'), SRT);
  // scanned before the sidecar was there (or by an older Tapedeck): archiving keeps it first
  const id = itemIdForPath(video);
  t.is((await lab.catalog.get(id))!.subtitles, undefined);
  t.is((await lab.service.run((await lab.service.submit('archive', [id])).id)).state, 'done');
  t.deepEqual((await lab.catalog.get(id))!.subtitles?.map((s) => [s.ext, s.lang]), [['srt', 'en']]);
  await rm(join(lab.media, 'Video/Holiday.en.srt'));
  for (const d of (await lab.library.changer.inventory()).drives) if (d.full) await lab.library.changer.unload(d.drive);
  const stats = JSON.stringify(await lab.library.stats());
  const src = await subtitleResolver(lab.catalog, subtitleStore(lab.data))(`${id}.0`);
  t.truthy(src);
  t.is(src!.mime, 'text/srt');
  const chunks: Buffer[] = [];
  for await (const c of (await src!.open(0, src!.size - 1, new AbortController().signal)) as AsyncIterable<Buffer>) chunks.push(c);
  t.is(Buffer.concat(chunks).toString(), SRT);
  t.is((await lab.catalog.get(id))!.location?.disk, undefined);
  t.is(JSON.stringify(await lab.library.stats()), stats, 'no tape operation');
});

test('a sidecar added after its video was archived (on tape, head stub only) is picked up by the next scan and by the live watch, with no tape operation', async (t) => {
  const lab = await makeLab({ files: [['Video/Holiday.mkv', 50_000], ['Video/Trip.mkv', 50_000]] });
  t.teardown(() => lab.cleanup());
  const ids = ['Holiday', 'Trip'].map((n) => itemIdForPath(join(lab.media, `Video/${n}.mkv`)));
  t.is((await lab.service.run((await lab.service.submit('archive', ids)).id)).state, 'done');
  for (const id of ids) {
    t.is((await lab.catalog.get(id))!.location?.disk, undefined, 'disk copy gone');
    t.is((await lab.catalog.get(id))!.subtitles, undefined);
  }
  for (const d of (await lab.library.changer.inventory()).drives) if (d.full) await lab.library.changer.unload(d.drive);
  const stats = JSON.stringify(await lab.library.stats());
  const store = subtitleStore(lab.data);
  const text = async (id: string) => {
    const src = await subtitleResolver(lab.catalog, store)(`${id}.0`);
    const chunks: Buffer[] = [];
    for await (const c of (await src!.open(0, src!.size - 1, new AbortController().signal)) as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks).toString();
  };
  // full scan
  await writeFile(join(lab.media, 'Video/Holiday.en.srt'), SRT);
  await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe, subtitles: store });
  t.deepEqual((await lab.catalog.get(ids[0]))!.subtitles?.map((s) => [s.ext, s.lang]), [['srt', 'en']]);
  t.is(await text(ids[0]), SRT);
  t.is((await lab.catalog.get(ids[1]))!.subtitles, undefined);
  // changed: copied again
  await writeFile(join(lab.media, 'Video/Holiday.en.srt'), SRT.replace('Hello', 'Changed'));
  await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe, subtitles: store });
  t.is(await text(ids[0]), SRT.replace('Hello', 'Changed'));
  // removed: the stored copy stays with the tape item
  await rm(join(lab.media, 'Video/Holiday.en.srt'));
  await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe, subtitles: store });
  t.is(await text(ids[0]), SRT.replace('Hello', 'Changed'));
  // the live watch reports only the sidecar path
  await writeFile(join(lab.media, 'Video/Trip.srt'), SRT.replace('Hello', 'Trip'));
  await scanPaths(lab.catalog, { roots: [lab.media], probe: fakeProbe, subtitles: store, paths: [join(lab.media, 'Video/Trip.srt')] });
  t.is(await text(ids[1]), SRT.replace('Hello', 'Trip'));
  t.is((await lab.catalog.get(ids[1]))!.location?.disk, undefined, 'still archived');
  t.is(JSON.stringify(await lab.library.stats()), stats, 'no tape operation');
  t.false((await lab.library.changer.inventory()).drives.some((d) => d.full), 'no cartridge mounted');
});

test('a sidecar added, changed or removed beside an unchanged video is picked up by the next scan, without reading the video', async (t) => {
  const m = await media(t);
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const store = subtitleStore(join(m, '..', 'data'));
  let probes = 0;
  const probe = async (p: string) => (probes++, fakeProbe(p));
  await scan(catalog, { roots: [m], probe, subtitles: store });
  const bare = itemIdForPath(join(m, 'Bare.mkv'));
  t.is((await catalog.get(bare))!.subtitles, undefined);
  t.is((await catalog.get(itemIdForPath(join(m, 'Film.mkv'))))!.subtitles?.length, 4);
  probes = 0;
  await writeFile(join(m, 'Bare.srt'), SRT.replace('Hello', 'Bare'));
  await scan(catalog, { roots: [m], probe, subtitles: store });
  t.deepEqual((await catalog.get(bare))!.subtitles?.map((s) => s.ext), ['srt']);
  t.is(probes, 0);
  const key = (await catalog.get(bare))!.subtitles![0].key;
  t.true(await store.has(key, 'srt'));
  await rm(join(m, 'Bare.srt'));
  await new Promise((r) => setTimeout(r, 5)); // the stored copy is older than the scan's start
  const r = await scan(catalog, { roots: [m], probe, subtitles: store });
  t.is((await catalog.get(bare))!.subtitles, undefined);
  t.false(await store.has(key, 'srt'), 'the stored copy no video refers to any more is removed');
  t.is(r.collected?.subtitles, 1);
  t.true(await store.has((await catalog.get(itemIdForPath(join(m, 'Film.mkv'))))!.subtitles![0].key, 'srt'), 'the other video keeps its copies');
});

test('the live watch: a sidecar path alone (added, changed, removed) updates its video through scanPaths, without reading the video', async (t) => {
  const m = await media(t);
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const store = subtitleStore(join(m, '..', 'data'));
  let probes = 0;
  const probe = async (p: string) => (probes++, fakeProbe(p));
  await scan(catalog, { roots: [m], probe, subtitles: store });
  const bare = itemIdForPath(join(m, 'Bare.mkv'));
  t.is((await catalog.get(bare))!.subtitles, undefined);
  probes = 0;
  // the watch reports only the subtitle's path (it is what changed)
  t.true(isSubtitlePath(join(m, 'Bare.en.SRT')), 'the watch finds a sidecar worth reporting');
  await writeFile(join(m, 'Bare.en.SRT'), SRT);
  await scanPaths(catalog, { roots: [m], probe, subtitles: store, paths: [join(m, 'Bare.en.SRT')] });
  t.deepEqual((await catalog.get(bare))!.subtitles?.map((s) => [s.ext, s.lang]), [['srt', 'en']]);
  await writeFile(join(m, 'Bare.en.SRT'), SRT.replace('Hello', 'Hello again'));
  const before = (await catalog.get(bare))!.subtitles![0].key;
  await scanPaths(catalog, { roots: [m], probe, subtitles: store, paths: [join(m, 'Bare.en.SRT')] });
  t.not((await catalog.get(bare))!.subtitles![0].key, before, 'changed sidecar copied again');
  await rm(join(m, 'Bare.en.SRT'));
  await scanPaths(catalog, { roots: [m], probe, subtitles: store, paths: [join(m, 'Bare.en.SRT')] });
  t.is((await catalog.get(bare))!.subtitles, undefined);
  t.is(probes, 0, 'the video was not read again');
  t.is((await catalog.get(itemIdForPath(join(m, 'Film.mkv'))))!.subtitles?.length, 4, 'other videos untouched');
});

test('a sidecar that is a symbolic link is not copied or served (a Film.srt linked to /etc/passwd would reach every client)', async (t) => {
  const m = await media(t);
  const secret = join(m, '..', 'secret.txt');
  await writeFile(secret, 'root:x:0:0:root:/root:/bin/bash\n');
  await symlink(secret, join(m, 'Bare.srt'));
  await symlink(secret, join(m, 'Film.it.srt'));
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const store = subtitleStore(join(m, '..', 'data'));
  await scan(catalog, { roots: [m], probe: fakeProbe, subtitles: store });
  t.is((await catalog.get(itemIdForPath(join(m, 'Bare.mkv'))))!.subtitles, undefined);
  const film = (await catalog.get(itemIdForPath(join(m, 'Film.mkv'))))!;
  t.is(film.subtitles?.length, 4, 'the four real sidecars, not the link');
  t.false(film.subtitles!.some((s) => s.lang === 'it'));
});

test('the server keeps one subtitle store for every scan (full and partial) and for /subtitles, not one per scan', async (t) => {
  const { TapedeckServer } = await import('../src/server.js');
  const { loadConfig } = await import('../src/config.js');
  const { createLogger } = await import('../src/log.js');
  const data = await mkdtemp(join(tmpdir(), 'tapedeck-subs-server-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const srv = new TapedeckServer(loadConfig({ flags: { data }, env: {}, checkMediaDirs: false }), createLogger('silent'));
  const opts = (srv as unknown as { scanOptions(): { subtitles?: unknown } }).scanOptions.bind(srv);
  const first = opts().subtitles;
  t.truthy(first);
  t.is(opts().subtitles, first, 'a second (partial) scan gets the same store');
  t.is((srv as unknown as { subtitles?(): unknown }).subtitles?.(), first, '/subtitles reads the same store');
});

test.serial('a sidecar swapped for a symbolic link between its check and its read is not copied (the read does not follow links)', async (t) => {
  // QA review: storeSubtitles lstat'ed a sidecar, then readFile'd its path, which follows a link:
  // whoever may write to a share could put a link there in between (the live watch scans again on
  // every change, so the race can be tried at will) and have any file the server may read copied
  // into the data directory and served byte for byte at /subtitles/ to every client.
  const m = await media(t);
  const secret = join(m, '..', 'secret.txt');
  await writeFile(secret, 'root:x:0:0:root:/root:/bin/bash\n');
  const sidecar = join(m, 'Film.srt');
  const store = subtitleStore(join(m, '..', 'data'));
  let refs: Awaited<ReturnType<typeof storeSubtitles>>;
  const swapped = await withLinkSwappedAfterLstat(sidecar, secret, async () => (refs = await storeSubtitles(store, join(m, 'Film.mkv'))));
  t.true(swapped, 'the sidecar was swapped after its check');
  for (const r of refs ?? []) {
    const f = await store.file(r.key, r.ext);
    t.false((await readFile(f!.path, 'utf8')).includes('root:x:0:0'), `stored ${r.ext} ${r.lang ?? ''} is not the linked file`);
  }
  t.true((refs ?? []).length >= 1, 'the other sidecars are still copied');
});
