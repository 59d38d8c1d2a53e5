// Album art and thumbnails (issue 10, item 1): every source (embedded cover, folder art, a
// video frame, the image itself), scaled to JPEG_TN/JPEG_SM, stored once per content, served
// by object ID over HTTP, announced in DIDL-Lite; art of an archived item with no tape read.
import test from 'ava';
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { Router } from '@koa/router';
import sharp from 'sharp';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { ArtMaker } from '../src/art/maker.js';
import { scaleArt } from '../src/art/scale.js';
import { artStore } from '../src/art/dlna.js';
import { findFfmpeg } from '../src/art/sources.js';
import { artRoutes } from '../src/http/art.js';
import { encodeFlac } from '../src/demo/flac.js';
import { scan, scanDeferredArt } from '../src/scanner/scanner.js';
import { ContentDirectory } from '../src/upnp/cds.js';
import { defaultClientRegistry } from '../src/upnp/clients.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import { REPO_ROOT } from '../src/util/paths.js';
import { didlText } from './helpers/didl-result.js';
import { fakeProbe, makeLab } from './fixtures/archive/setup.js';
import { withLinkSwappedAfterLstat } from './helpers/swap-link.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'media');

const picture = (w: number, h: number, rgb: [number, number, number], format: 'jpeg' | 'png' = 'jpeg') =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })[format]().toBuffer();

function flac(title: string, album: string, pic?: { mime: string; data: Uint8Array }, artist = 'Art Tester'): Buffer {
  const samples = new Int16Array(800).map((_, i) => Math.round(3000 * Math.sin(i / 5)));
  return encodeFlac({ sampleRate: 8000, channels: 1, samples: [samples], tags: { TITLE: title, ARTIST: artist, ALBUM: album, TRACKNUMBER: 1 }, ...(pic ? { picture: pic } : {}) });
}

function warnings() {
  const lines: { obj: Record<string, unknown>; msg?: string }[] = [];
  return { lines, log: { warn: (obj: object, msg?: string) => void lines.push({ obj: obj as Record<string, unknown>, msg }) } };
}

async function listen(app: Koa): Promise<{ base: string; server: Server }> {
  const server = createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function artApp(catalog: Catalog, dataDir: string): Koa {
  const app = new Koa();
  const router = new Router();
  artRoutes(router, catalog, artStore(dataDir));
  app.use(router.routes());
  return app;
}

/** GETs an art URL and checks it is a JPEG within the profile's limits. */
async function fetchArt(t: import('ava').ExecutionContext, url: string, max: [number, number]) {
  const r = await fetch(url, { headers: { 'getcontentFeatures.dlna.org': '1' } });
  t.is(r.status, 200, url);
  t.is(r.headers.get('content-type'), 'image/jpeg');
  const body = Buffer.from(await r.arrayBuffer());
  const meta = await sharp(body).metadata();
  t.is(meta.format, 'jpeg');
  t.true(meta.width! <= max[0] && meta.height! <= max[1], `${meta.width}x${meta.height} within ${max.join('x')}`);
  t.false(meta.isProgressive, 'baseline JPEG');
  return { meta, features: r.headers.get('contentfeatures.dlna.org') ?? '' };
}

const ffmpeg = await findFfmpeg();

test('art from every source is a JPEG within JPEG_TN and JPEG_SM, one file per shared cover, served by object ID and announced in DIDL-Lite', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-art-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const media = join(dir, 'media');
  const data = join(dir, 'data');
  const cover = await picture(800, 800, [200, 40, 40]);
  await mkdir(join(media, 'Embedded'), { recursive: true });
  await writeFile(join(media, 'Embedded', '01 One.flac'), flac('One', 'Embedded', { mime: 'image/jpeg', data: cover }));
  await writeFile(join(media, 'Embedded', '02 Two.flac'), flac('Two', 'Embedded', { mime: 'image/jpeg', data: cover }));
  await mkdir(join(media, 'Folder'));
  await writeFile(join(media, 'Folder', '01 Three.flac'), flac('Three', 'Folder'));
  await writeFile(join(media, 'Folder', 'Cover.PNG'), await picture(300, 200, [20, 200, 20], 'png'));
  await mkdir(join(media, 'Pictures'));
  await writeFile(join(media, 'Pictures', 'photo.jpg'), await picture(1200, 900, [20, 20, 200]));
  await mkdir(join(media, 'Video'));
  await copyFile(join(FIXTURES, 'clip.mkv'), join(media, 'Video', 'clip.mkv'));
  await mkdir(join(media, 'Broken'));
  const junk = Buffer.alloc(5000, 0x5a);
  await writeFile(join(media, 'Broken', '01 Bad.flac'), flac('Bad', 'Broken', { mime: 'image/jpeg', data: junk }));
  await writeFile(join(media, 'Broken', '02 Bad too.flac'), flac('Bad too', 'Broken', { mime: 'image/jpeg', data: junk }));
  await writeFile(join(media, 'Broken', '03 Huge.flac'), flac('Huge', 'Broken', { mime: 'image/jpeg', data: Buffer.alloc(9 * 1024 * 1024, 1) }));

  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const w = warnings();
  const art = new ArtMaker({ dataDir: data, log: w.log });
  const res = await scan(catalog, { roots: [media], art, log: w.log });
  t.is(res.failed, 0, 'broken and huge pictures do not fail the scan');
  const item = async (rel: string) => (await catalog.get(itemIdForPath(join(media, rel))))!;

  const one = await item('Embedded/01 One.flac');
  const two = await item('Embedded/02 Two.flac');
  t.truthy(one.art, 'embedded cover');
  t.is(one.art!.key, two.art!.key, 'one key for a shared cover');
  t.deepEqual([one.art!.tn, one.art!.sm], [[160, 160], [480, 480]]);
  const folder = await item('Folder/01 Three.flac');
  t.deepEqual(folder.art?.tn, [160, 107], 'folder art (Cover.PNG, case-insensitive)');
  const photo = await item('Pictures/photo.jpg');
  t.deepEqual([photo.art?.tn, photo.art?.sm], [[160, 120], [640, 480]], 'the image itself');
  const cv = await item('Folder/Cover.PNG');
  t.truthy(cv.art, 'a folder-art picture is also an image item with its own thumbnail');
  const video = await item('Video/clip.mkv');
  if (ffmpeg) t.truthy(video.art, 'a video frame through ffmpeg');
  else t.log('ffmpeg is not on PATH: the video frame source is not checked');
  // broken and huge pictures: scanned with their tags, no art, each logged once
  const bad = await item('Broken/01 Bad.flac');
  const huge = await item('Broken/03 Huge.flac');
  t.is(bad.title, 'Bad');
  t.is(huge.title, 'Huge');
  t.is(bad.art, undefined);
  t.is(huge.art, undefined);
  t.is(w.lines.filter((l) => /cannot be decoded/.test(l.msg ?? '')).length, 1, 'the broken cover shared by two tracks is logged once');
  t.is(w.lines.filter((l) => l.obj.path === join(media, 'Broken', '03 Huge.flac')).length, 1);

  // the store holds one TN and one SM per distinct picture
  const files: string[] = [];
  for (const d of await readdir(join(data, 'art'))) files.push(...(await readdir(join(data, 'art', d))).filter((n) => n.startsWith(one.art!.key)));
  t.deepEqual(files.sort(), [`${one.art!.key}.sm.jpg`, `${one.art!.key}.tn.jpg`]);

  // album and artist containers carry the album's art
  const albums = await catalog.allChildren('music/albums');
  const embeddedAlbum = albums.find((a) => a.title === 'Embedded')!;
  t.is(embeddedAlbum.art?.key, one.art!.key);
  const artists = await catalog.allChildren('music/artists');
  t.truthy(artists[0].art, 'artist container shows an album of theirs');
  t.is(albums.find((a) => a.title === 'Broken')!.art, undefined);

  // served by object ID, items and containers, TN and SM
  const { base, server } = await listen(artApp(catalog, data));
  t.teardown(() => server.close());
  const tn = await fetchArt(t, `${base}/art/tn/${one.id}.jpg`, [160, 160]);
  t.regex(tn.features, /^DLNA\.ORG_PN=JPEG_TN;.*DLNA\.ORG_CI=1/);
  const sm = await fetchArt(t, `${base}/art/sm/${photo.id}.jpg`, [640, 480]);
  t.deepEqual([sm.meta.width, sm.meta.height], [640, 480]);
  t.regex(sm.features, /^DLNA\.ORG_PN=JPEG_SM;/);
  await fetchArt(t, `${base}/art/tn/${encodeURIComponent(embeddedAlbum.id)}.jpg`, [160, 160]);
  await fetchArt(t, `${base}/art/tn/${encodeURIComponent(`music/all$${one.id}`)}.jpg`, [160, 160]);
  if (video.art) await fetchArt(t, `${base}/art/sm/${video.id}.jpg`, [640, 480]);
  const head = await fetch(`${base}/art/tn/${one.id}.jpg`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.headers.get('content-type'), 'image/jpeg');
  t.is((await fetch(`${base}/art/tn/${bad.id}.jpg`)).status, 404, 'no art: 404');
  t.is((await fetch(`${base}/art/tn/inosuch.jpg`)).status, 404);
  // Art is JPEG: another extension is 404, never JPEG bytes under a .png name; .jpeg and none still serve.
  for (const ext of ['png', 'gif', 'mp4']) t.is((await fetch(`${base}/art/tn/${one.id}.${ext}`)).status, 404, `.${ext}: 404`);
  t.is((await fetch(`${base}/art/sm/${encodeURIComponent(embeddedAlbum.id)}.png`)).status, 404);
  t.is((await fetch(`${base}/art/tn/${one.id}.JPEG`)).status, 200);
  t.is((await fetch(`${base}/art/tn/${one.id}`)).status, 200);
  t.is((await fetch(`${base}/art/tn/${encodeURIComponent('../../etc/passwd')}`)).status, 404);
  t.is((await fetch(`${base}/art/xl/${one.id}.jpg`)).status, 404);

  // DIDL-Lite: albumArtURI (JPEG_TN) on tracks, albums, artists, images, videos; an extra res on images and videos
  const cds = new ContentDirectory(catalog);
  const ctx = { baseUrl: 'http://srv:1', remoteAddress: '127.0.0.1', headers: {}, client: defaultClientRegistry().fallback };
  // Result is the DIDL-Lite already escaped for the SOAP body (EscapedText): read it as the client does
  const browse = async (id: string, flag = 'BrowseMetadata') => didlText((await cds.browse({ ObjectID: id, BrowseFlag: flag, Filter: '*' }, ctx))[0][1]);
  const artUri = (id: string) => `<upnp:albumArtURI dlna:profileID="JPEG_TN">http://srv:1/art/tn/${encodeURIComponent(id)}.jpg</upnp:albumArtURI>`;
  t.true((await browse(one.id)).includes(artUri(one.id)));
  t.true((await browse(`music/all$${one.id}`)).includes(artUri(one.id)), 'a reference points at its item');
  t.true((await browse(embeddedAlbum.id)).includes(artUri(embeddedAlbum.id)));
  t.true((await browse(artists[0].id)).includes(artUri(artists[0].id)));
  const photoDidl = await browse(photo.id);
  t.true(photoDidl.includes(artUri(photo.id)));
  t.regex(photoDidl, /<res protocolInfo="http-get:\*:image\/jpeg:DLNA\.ORG_PN=JPEG_TN;[^"]*" resolution="160x120">http:\/\/srv:1\/art\/tn\/i\w+\.jpg<\/res>/);
  if (video.art) t.regex(await browse(video.id), /<res protocolInfo="http-get:\*:image\/jpeg:DLNA\.ORG_PN=JPEG_TN;/);
  t.false((await browse(bad.id)).includes('albumArtURI'));
  // a Filter without albumArtURI and res leaves both out
  const bare = didlText((await cds.browse({ ObjectID: photo.id, BrowseFlag: 'BrowseMetadata', Filter: 'dc:date' }, ctx))[0][1]);
  t.false(bare.includes('albumArtURI') || bare.includes('<res'));
});

test('a rescan reads no unchanged file again; a catalog scanned without art gets it once art is on, keeping everything else', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-art-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const media = join(dir, 'media');
  await mkdir(media);
  await writeFile(join(media, 'a.flac'), flac('A', 'X', { mime: 'image/jpeg', data: await picture(100, 100, [1, 2, 3]) }));
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await scan(catalog, { roots: [media] });
  const id = itemIdForPath(join(media, 'a.flac'));
  t.is((await catalog.get(id))!.art, undefined, 'art off: none');
  // a tape copy recorded meanwhile must survive the art-only pass
  const before = (await catalog.get(id))!;
  const tape = { label: 'TD0001L9', tapeFile: 0, block: 1, offset: 0, size: 1, sha256: 'x', blockSize: 512 };
  await catalog.setLocation(id, { ...before.location, tape });
  const art = new ArtMaker({ dataDir: join(dir, 'data') });
  const r1 = await scan(catalog, { roots: [media], art });
  t.is(r1.unchanged, 1);
  const after = (await catalog.get(id))!;
  t.deepEqual(after.art?.tn, [100, 100], 'never enlarged');
  t.deepEqual(after.location?.tape, tape);
  let probes = 0;
  const r2 = await scan(catalog, { roots: [media], art, probe: async (p) => (probes++, fakeProbe(p)) });
  t.is(r2.unchanged, 1);
  t.is(probes, 0);
});

test('a full scan removes art no item refers to any more: a removed track\'s own cover goes, a cover another track shares stays', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-art-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const media = join(dir, 'media');
  await mkdir(media);
  const shared = { mime: 'image/jpeg', data: await picture(120, 120, [200, 10, 10]) };
  // its own artist too: an artist container shows the art of one of its tracks (a reference to the key)
  await writeFile(join(media, 'own.flac'), flac('Own', 'Solo', { mime: 'image/jpeg', data: await picture(90, 90, [10, 200, 10]) }, 'Soloist'));
  await writeFile(join(media, 'a.flac'), flac('A', 'Shared', shared));
  await writeFile(join(media, 'b.flac'), flac('B', 'Shared', shared));
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const art = new ArtMaker({ dataDir: join(dir, 'data') });
  const store = artStore(join(dir, 'data'));
  await scan(catalog, { roots: [media], art });
  const key = async (name: string) => (await catalog.get(itemIdForPath(join(media, name))))!.art!.key;
  const own = await key('own.flac');
  const cover = await key('a.flac');
  t.is(await key('b.flac'), cover);
  const files = async () => {
    const out: string[] = [];
    for await (const e of store.entries()) out.push(`${e.key}.${e.suffix}`);
    return out.sort();
  };
  t.deepEqual(await files(), [`${cover}.sm.jpg`, `${cover}.tn.jpg`, `${own}.sm.jpg`, `${own}.tn.jpg`].sort());
  await rm(join(media, 'own.flac'));
  await rm(join(media, 'a.flac'));
  await new Promise((r) => setTimeout(r, 5)); // store files older than the scan's start
  const r = await scan(catalog, { roots: [media], art });
  t.is(r.removed, 2);
  t.deepEqual(r.collected, { art: 2, subtitles: 0, bytes: r.collected!.bytes });
  t.deepEqual(await files(), [`${cover}.sm.jpg`, `${cover}.tn.jpg`], 'the removed track\'s own cover is gone, the shared one stays');
  // the cover comes back with a new track: made again, not taken from a cache of removed files
  await writeFile(join(media, 'c.flac'), flac('C', 'Solo', { mime: 'image/jpeg', data: await picture(90, 90, [10, 200, 10]) }, 'Soloist'));
  await scan(catalog, { roots: [media], art });
  t.is(await key('c.flac'), own);
  t.true(await store.has(own, 'tn.jpg'));
  t.true(await store.has(own, 'sm.jpg'));
});

test('a baseline sRGB JPEG within 640x480 with no metadata is its own JPEG_SM (not re-encoded); any other source is', async (t) => {
  const plain = await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 30, g: 60, b: 90 } } })
    .jpeg({ quality: 85 })
    .toBuffer();
  const a = await scaleArt(plain);
  t.true(a.sm.data.equals(plain), 'kept as it is');
  t.deepEqual([a.sm.width, a.sm.height, a.tn.width, a.tn.height], [400, 300, 160, 120]);
  t.deepEqual([(await sharp(a.tn.data).metadata()).width, (await sharp(a.tn.data).metadata()).isProgressive], [160, false]);
  const progressive = await sharp(plain).jpeg({ progressive: true }).toBuffer();
  const rotated = await sharp(plain).withMetadata({ orientation: 6 }).jpeg().toBuffer();
  const large = await sharp(plain).resize(800, 600).jpeg().toBuffer();
  for (const [name, src, dims] of [['progressive', progressive, [400, 300]], ['EXIF orientation', rotated, [300, 400]], ['larger than 640x480', large, [640, 480]]] as const) {
    const r = await scaleArt(src);
    const m = await sharp(r.sm.data).metadata();
    t.false(r.sm.data.equals(src), `${name}: re-encoded`);
    t.false(m.isProgressive, `${name}: baseline`);
    t.is(m.exif, undefined, `${name}: no metadata`);
    t.deepEqual([m.width, m.height], [...dims], name);
  }
});

test('no ffmpeg: a video has no frame, but a picture named after it is its thumbnail', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-art-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const media = join(dir, 'media');
  await mkdir(media);
  await copyFile(join(FIXTURES, 'clip.mkv'), join(media, 'a.mkv'));
  await copyFile(join(FIXTURES, 'clip.mkv'), join(media, 'b.mkv'));
  await writeFile(join(media, 'b.jpg'), await picture(64, 48, [9, 9, 9]));
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await scan(catalog, { roots: [media], art: new ArtMaker({ dataDir: join(dir, 'data'), ffmpeg: false }) });
  t.is((await catalog.get(itemIdForPath(join(media, 'a.mkv'))))!.art, undefined);
  t.deepEqual((await catalog.get(itemIdForPath(join(media, 'b.mkv'))))!.art?.tn, [64, 48]);
});

test('deferFrames: a scan catalogues videos without their ffmpeg frame; scanDeferredArt makes it after, in slices, and a rescan leaves it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-artdefer-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const media = join(dir, 'media');
  await mkdir(join(media, 'Video'), { recursive: true });
  for (const n of ['a.mkv', 'b.mkv', 'c.mp4']) await copyFile(join(FIXTURES, n === 'c.mp4' ? 'clip-720p.mp4' : 'clip.mkv'), join(media, 'Video', n));
  // a picture named after the video is not a frame: it is made in the scan
  await copyFile(join(FIXTURES, 'clip.mkv'), join(media, 'Video', 'named.mkv'));
  await writeFile(join(media, 'Video', 'named.jpg'), await picture(320, 240, [10, 120, 10]));
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  // a stand-in ffmpeg: whether the frame comes is not the question here, only when it is asked for
  const calls: string[] = [];
  const fake = join(dir, 'ffmpeg');
  const frame = join(dir, 'frame.jpg');
  await writeFile(frame, await picture(64, 48, [200, 200, 0]));
  await writeFile(fake, `#!/bin/sh\necho "$@" >> '${join(dir, 'calls')}'\ncat '${frame}'\n`, { mode: 0o755 });
  const art = new ArtMaker({ dataDir: join(dir, 'data'), ffmpeg: fake });
  const readCalls = async () => (await import('node:fs/promises')).readFile(join(dir, 'calls'), 'utf8').then((s) => s.split('\n').filter(Boolean), () => []);
  const item = async (n: string) => (await catalog.get(itemIdForPath(join(media, 'Video', n))))!;

  const r = await scan(catalog, { roots: [media], art, deferFrames: true });
  t.is(r.framesDeferred, 3);
  t.deepEqual(await readCalls(), [], 'no ffmpeg run during the scan');
  t.is((await item('a.mkv')).art, undefined);
  t.truthy((await item('named.mkv')).art, 'named picture made in the scan');
  t.is((await item('a.mkv')).res?.width, 320, 'the item itself is complete');

  // two slices of at most 2 videos
  const first = await scanDeferredArt(catalog, { roots: [media], art, limit: 2 });
  t.is(first.made, 2);
  t.truthy(first.after);
  const second = await scanDeferredArt(catalog, { roots: [media], art, limit: 2, after: first.after });
  t.deepEqual(second, { made: 1 });
  t.is((await readCalls()).length, 3, 'one ffmpeg run per video');
  for (const n of ['a.mkv', 'b.mkv', 'c.mp4']) t.truthy((await item(n)).art, n);
  t.deepEqual((await scanDeferredArt(catalog, { roots: [media], art })).made, 0, 'nothing left');

  // a rescan neither defers nor makes anything again
  const again = await scan(catalog, { roots: [media], art, deferFrames: true });
  t.is(again.framesDeferred, undefined);
  t.is(again.probed, 0);
  t.is((await readCalls()).length, 3);
});

test('art of an archived item is made before its disk copy goes, and is served with no tape operation', async (t) => {
  const lab = await makeLab({ files: [['Music/Artist A/Album 1/01 One.flac', 1000], ['Pictures/p.jpg', 1000]] });
  t.teardown(() => lab.cleanup());
  // real media in place of the lab's random bytes, scanned without art (as an older catalog would be)
  const track = join(lab.media, 'Music/Artist A/Album 1/01 One.flac');
  const photo = join(lab.media, 'Pictures/p.jpg');
  await writeFile(track, flac('One', 'Album 1', { mime: 'image/png', data: await picture(500, 300, [10, 100, 200], 'png') }));
  await writeFile(photo, await picture(2000, 1000, [5, 5, 5]));
  await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe });
  const ids = [itemIdForPath(track), itemIdForPath(photo)];
  for (const id of ids) t.is((await lab.catalog.get(id))!.art, undefined);
  const job = await lab.service.submit('archive', ids);
  t.is((await lab.service.run(job.id)).state, 'done');
  t.false(existsSync(track) || existsSync(photo), 'disk copies removed');
  const items = (await Promise.all(ids.map((id) => lab.catalog.get(id)))) as CatalogObject[];
  for (const it of items) {
    t.truthy(it.location?.tape);
    t.is(it.location?.disk, undefined);
    t.truthy(it.art, `${it.title} has art made before archiving`);
  }
  // nothing is mounted: unload every drive, then serve
  const inv = await lab.library.changer.inventory();
  for (const d of inv.drives) if (d.full) await lab.library.changer.unload(d.drive);
  const stats = JSON.stringify(await lab.library.stats());
  const { base, server } = await listen(artApp(lab.catalog, lab.data));
  t.teardown(() => server.close());
  await fetchArt(t, `${base}/art/tn/${ids[0]}.jpg`, [160, 160]);
  const sm = await fetchArt(t, `${base}/art/sm/${ids[1]}.jpg`, [640, 480]);
  t.deepEqual([sm.meta.width, sm.meta.height], [640, 320]);
  t.is(JSON.stringify(await lab.library.stats()), stats, 'no tape operation');
  t.false((await lab.library.changer.inventory()).drives.some((d) => d.full), 'no cartridge mounted');
  // and a rescan keeps the art of items whose disk copy is gone
  await scan(lab.catalog, { roots: [lab.media], art: new ArtMaker({ dataDir: lab.data }) });
  t.truthy((await lab.catalog.get(ids[0]))!.art);
  // the store's clean-up after that scan keeps the art of items on tape
  for (const it of items) t.true(await artStore(lab.data).has(it.art!.key, 'tn.jpg'), `${it.title}: art kept`);
});

test('a folder-art or named picture that is a symbolic link is not used (it could point anywhere the server may read)', async (t) => {
  const { dir, media, outside } = await linkedCoverLayout(t, 'Linked');
  await symlink(join(outside, 'secret.jpg'), join(media, 'Album', 'cover.jpg'));
  await copyFile(join(FIXTURES, 'clip.mkv'), join(media, 'b.mkv'));
  await symlink(join(outside, 'secret.jpg'), join(media, 'b.jpg'));
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await scan(catalog, { roots: [media], art: new ArtMaker({ dataDir: join(dir, 'data'), ffmpeg: false }) });
  t.is((await catalog.get(itemIdForPath(join(media, 'Album', '01 One.flac'))))!.art, undefined, 'linked cover.jpg not used');
  t.is((await catalog.get(itemIdForPath(join(media, 'b.mkv'))))!.art, undefined, 'linked b.jpg not used');
  // the same picture as a real file is used (the test can fail)
  await rm(join(media, 'b.jpg'));
  await copyFile(join(outside, 'secret.jpg'), join(media, 'b.jpg'));
  const fresh = new Catalog(new MemoryStore());
  await fresh.open();
  await scan(fresh, { roots: [media], art: new ArtMaker({ dataDir: join(dir, 'data2'), ffmpeg: false }) });
  t.deepEqual((await fresh.get(itemIdForPath(join(media, 'b.mkv'))))!.art?.tn, [64, 48]);
});

test.serial('a folder picture swapped for a symbolic link between its check and its read is not used (the read does not follow links)', async (t) => {
  // QA review: fromPictureFile lstat'ed cover.jpg, then readFile'd its path, which follows a link
  // put there in between (see the sidecar subtitle test in subtitles.test.ts)
  const { media, outside } = await linkedCoverLayout(t, 'Swapped');
  const cover = join(media, 'Album', 'cover.jpg');
  await writeFile(cover, await picture(40, 40, [0, 0, 200]));
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const swapped = await withLinkSwappedAfterLstat(cover, join(outside, 'secret.jpg'), () =>
    scan(catalog, { roots: [media], art: new ArtMaker({ dataDir: join(media, '..', 'data'), ffmpeg: false }) }),
  );
  t.true(swapped, 'the cover was swapped after its check');
  t.not((await catalog.get(itemIdForPath(join(media, 'Album', '01 One.flac'))))!.art?.tn?.[0], 64, 'the linked 64x48 picture is not the art');
});

/** media/Album/01 One.flac (album `album`) and private/secret.jpg (64x48) outside the media directory. */
async function linkedCoverLayout(t: import('ava').ExecutionContext, album: string) {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-art-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const media = join(dir, 'media');
  const outside = join(dir, 'private');
  await mkdir(join(media, 'Album'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(outside, 'secret.jpg'), await picture(64, 48, [200, 0, 0]));
  await writeFile(join(media, 'Album', '01 One.flac'), flac('One', album));
  return { dir, media, outside };
}
