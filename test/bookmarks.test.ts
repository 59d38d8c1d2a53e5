// Samsung resume bookmarks (X_SetBookmark → sec:dcmInfo BM=) are kept in the catalog: they
// survive a restart of the server, a rescan of a changed file and tier moves; bad arguments
// get UPnP errors. The server runs on loopback with SSDP off.
import test from 'ava';
import { spawn } from 'node:child_process';
import { appendFile, copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { createDemoLibrary } from '../src/demo/library.js';
import { scan, scanPaths } from '../src/scanner/scanner.js';
import { jsonLines, REPO_ROOT } from './helpers/lab.js';
import { browse, CDS, soap } from './helpers/upnp-client.js';

type Line = Record<string, any>;
const SAMSUNG = { 'user-agent': 'DLNADOC/1.50 SEC_HHP_[TV]UE40D7000/1.0' };

function track(path: string): CatalogObject {
  return {
    id: itemIdForPath(path),
    parentId: '',
    container: false,
    upnpClass: 'object.item.audioItem.musicTrack',
    title: 'T',
    kind: 'audio',
    meta: { artist: 'A', album: 'B' },
    res: { mime: 'audio/flac', size: 10 },
    location: { disk: { path, size: 10, mtime: 1 } },
    origPath: path,
    mediaRoot: '/lib',
    relPath: path.slice(5),
  };
}

test('a bookmark outlives a rewrite of its item and its tier moves, and leaves with the item', async (t) => {
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const item = track('/lib/a.flac');
  await catalog.apply({ upserts: [item] });
  await catalog.bookmarks.set(item.id, 95);
  await catalog.apply({ upserts: [{ ...track('/lib/a.flac'), title: 'changed', mtime: 2 }] });
  await catalog.setLocation(item.id, { tape: { label: 'TD0001L9', tapeFile: 1, block: 0, offset: 0, size: 10, sha256: 'x', blockSize: 512 } });
  await catalog.setLocation(item.id, { disk: { path: '/lib/a.flac', size: 10, mtime: 1 } });
  t.is((await catalog.bookmarks.get(item.id))?.pos, 95);
  await catalog.bookmarks.set(item.id, 0);
  t.is(await catalog.bookmarks.get(item.id), undefined, 'PosSecond 0 clears it');
  await catalog.bookmarks.set(item.id, 7);
  await catalog.apply({ removes: [item.id] });
  t.is(await catalog.bookmarks.get(item.id), undefined, 'a removed item takes its bookmark along');
  await t.throwsAsync(catalog.bookmarks.set(item.id, -1), { instanceOf: RangeError });
  await catalog.close();
});

function serve(dir: string, media: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', join(dir, 'empty.conf'), '--data', join(dir, 'data'), '--media', media, '--interface', 'lo', '--port', '0', '--no-ssdp', '--tape-backend', 'none', '--rescan-interval', '0'],
    { cwd: REPO_ROOT, stdio: 'pipe' },
  );
  return { child, srv: jsonLines<Line>(child) };
}

test('X_SetBookmark is kept across a restart and a rescan, and comes back as sec:dcmInfo for Samsung only', async (t) => {
  t.timeout(90_000);
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bookmark-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'empty.conf'), '');
  const { files } = await createDemoLibrary(join(dir, 'demo'));
  const media = join(dir, 'media');
  await mkdir(media);
  const file = join(media, 'film.avi');
  await copyFile(files.find((f) => f.endsWith('.avi'))!, file);
  const id = itemIdForPath(file);

  const start = async () => {
    const s = serve(dir, media);
    t.teardown(() => {
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    });
    const url = (await s.srv.waitFor((l) => Array.isArray(l.urls), 30_000, 'serving line')).urls[0] as string;
    await s.srv.waitFor((l) => l.scan?.done === true, 30_000, 'first scan');
    return { ...s, cds: new URL('/upnp/control/cds', url).href };
  };
  const dcm = async (cds: string, objectId: string, headers = SAMSUNG) => {
    const r = await soap(cds, CDS, 'Browse', { ObjectID: objectId, BrowseFlag: 'BrowseMetadata', Filter: '*', StartingIndex: 0, RequestedCount: 0, SortCriteria: '' }, headers);
    return /<sec:dcmInfo>([^<]*)<\/sec:dcmInfo>/.exec(r.out.Result)?.[1];
  };

  let s = await start();
  t.is(await dcm(s.cds, id), undefined, 'no bookmark yet');
  // a TV browsing All Video sets it on the reference; it belongs to the item
  const ref = (await browse(s.cds, 'video/all')).entries[0]!.id;
  t.not(ref, id);
  const set = await soap(s.cds, CDS, 'X_SetBookmark', { CategoryType: 1, RID: 0, ObjectID: ref, PosSecond: 1234 }, SAMSUNG);
  t.is(set.status, 200, set.body);
  t.is(await dcm(s.cds, id), 'BM=1234');
  t.is(await dcm(s.cds, ref), 'BM=1234');
  t.is(await dcm(s.cds, id, { 'user-agent': 'VLC/3.0' }), undefined, 'a client without the quirk gets no sec:dcmInfo');

  // bad arguments
  const fault = async (args: Record<string, string | number>) => (await soap(s.cds, CDS, 'X_SetBookmark', args, SAMSUNG)).fault?.code;
  t.is(await fault({ ObjectID: id }), 402, 'PosSecond missing');
  t.is(await fault({ ObjectID: id, PosSecond: -5 }), 402, 'negative');
  t.is(await fault({ ObjectID: id, PosSecond: '12.5' }), 402, 'not a ui4');
  t.is(await fault({ ObjectID: id, PosSecond: '99999999999' }), 402, 'beyond ui4');
  t.is(await fault({ ObjectID: id, PosSecond: 5, CategoryType: 'x'.repeat(300) }), 402, 'CategoryType absurdly long');
  t.is(await fault({ PosSecond: 5 }), 402, 'ObjectID missing');
  t.is(await fault({ ObjectID: 'inope', PosSecond: 5 }), 701, 'unknown object');
  t.is(await fault({ ObjectID: 'video', PosSecond: 5 }), 402, 'a container');
  t.is(await dcm(s.cds, id), 'BM=1234', 'refused calls change nothing');

  s.child.kill('SIGTERM');
  t.is(await s.srv.exited(15_000), 0);

  // the file changes (a rescan reads it again) while the server is down
  await appendFile(file, Buffer.alloc(16));
  s = await start();
  t.is(s.srv.lines.find((l) => l.scan?.done)?.scan.probed, 1, 'the changed file was read again');
  t.is(await dcm(s.cds, id), 'BM=1234', 'after a restart and a rescan');
  await soap(s.cds, CDS, 'X_SetBookmark', { ObjectID: id, PosSecond: 0 }, SAMSUNG);
  t.is(await dcm(s.cds, id), undefined, 'PosSecond 0 clears it');
  s.child.kill('SIGTERM');
  t.is(await s.srv.exited(15_000), 0);
});

test('a file renamed while watched keeps its bookmark (the partial scan sees one path gone, one new with its size and mtime)', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'tapedeck-bm-rename-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'a'));
  await writeFile(join(root, 'a', 'film.mp3'), 'x');
  await writeFile(join(root, 'a', 'other.mp3'), 'yy');
  const probe = async () => ({ kind: 'audio' as const, upnpClass: 'object.item.audioItem.musicTrack', title: 't', meta: {}, res: { mime: 'audio/mpeg', size: 0 } });
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await scan(catalog, { roots: [root], probe });
  const oldId = itemIdForPath(join(root, 'a', 'film.mp3'));
  await catalog.bookmarks.set(oldId, 321);
  await rename(join(root, 'a', 'film.mp3'), join(root, 'renamed.mp3'));
  await scanPaths(catalog, { roots: [root], probe, paths: [join(root, 'a', 'film.mp3'), join(root, 'renamed.mp3')] });
  t.is((await catalog.bookmarks.get(itemIdForPath(join(root, 'renamed.mp3'))))?.pos, 321);
  t.is(await catalog.bookmarks.get(oldId), undefined);
  // a deleted file and an unrelated new one: nothing is carried over
  await catalog.bookmarks.set(itemIdForPath(join(root, 'a', 'other.mp3')), 5);
  await rm(join(root, 'a', 'other.mp3'));
  await writeFile(join(root, 'new.mp3'), 'zzz');
  await scanPaths(catalog, { roots: [root], probe, paths: [join(root, 'a', 'other.mp3'), join(root, 'new.mp3')] });
  t.is(await catalog.bookmarks.get(itemIdForPath(join(root, 'new.mp3'))), undefined);
  await catalog.close();
});
