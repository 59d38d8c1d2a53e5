// Playlists: .m3u/.m3u8/.pls files become playlistContainers (under Playlists in the root and in
// their folder) whose children are references to the catalogued items they list.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { itemIdForPath, playlistIdForPath } from '../src/catalog/layout.js';
import { resolveTargets } from '../src/archive/targets.js';
import { listItems } from '../src/policy/listing.js';
import type { CatalogObject, ProbeResult } from '../src/catalog/types.js';
import { scan, scanPaths } from '../src/scanner/scanner.js';
import { decodePlaylist, entryPath, parseM3u, parsePls, resolvePlaylist } from '../src/scanner/playlist.js';
import { ContentDirectory } from '../src/upnp/cds.js';
import { didlText } from './helpers/didl-result.js';

const dirs: string[] = [];
test.after.always(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function lib(files: Record<string, string | Buffer>): string {
  const root = mkdtempSync(join(tmpdir(), 'tapedeck-playlist-'));
  dirs.push(root);
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), typeof body === 'string' ? body.replaceAll('$ROOT', root) : body);
  }
  return root;
}

const probe = async (p: string): Promise<ProbeResult> => ({
  kind: 'audio',
  upnpClass: 'object.item.audioItem.musicTrack',
  title: basename(p).replace(/\.\w+$/, ''),
  meta: { artist: readFileSync(p, 'utf8') },
  res: { mime: 'audio/mpeg', size: 0 },
});

function logger() {
  const warns: { obj: any; msg?: string }[] = [];
  return { warns, log: { warn: (obj: object, msg?: string) => warns.push({ obj, msg }), debug: () => {} } };
}

async function titles(c: Catalog, id: string): Promise<string[]> {
  return (await c.children(id, 0, 0)).objects.map((o) => o.title);
}

test('M3U: #EXTINF titles, comments, CRLF, BOM; Latin-1 .m3u; PLS in N order; entry paths', (t) => {
  const m3u = '\ufeff#EXTM3U\r\n#EXTINF:231,ABBA - Dancing Queen\r\n../a/1.mp3\r\n\r\n# a comment\r\n/abs/2.mp3\r\n#EXTINF:-1,\r\nhttp://radio/x\r\n';
  t.deepEqual(parseM3u(decodePlaylist(Buffer.from(m3u), '/p/x.m3u8')), [{ target: '../a/1.mp3', title: 'ABBA - Dancing Queen' }, { target: '/abs/2.mp3' }, { target: 'http://radio/x' }]);
  t.deepEqual(parseM3u(decodePlaylist(Buffer.from('caf\xe9.mp3\n', 'latin1'), '/p/x.m3u')), [{ target: 'café.mp3' }]);
  t.is(parseM3u('a\nb\nc\n', 2).length, 2, 'bounded');
  const pls = '[playlist]\nFile2=b.mp3\nTitle2=Bee\nFile1=a.mp3\nNumberOfEntries=2\nVersion=2\n';
  t.deepEqual(parsePls(pls), [{ target: 'a.mp3' }, { target: 'b.mp3', title: 'Bee' }]);
  t.is(entryPath('sub/x.mp3', '/lib/p/l.m3u'), '/lib/p/sub/x.mp3');
  t.is(entryPath('..\\a\\x.mp3', '/lib/p/l.m3u'), '/lib/a/x.mp3');
  t.is(entryPath('file:///lib/a/x%20y.mp3', '/lib/p/l.m3u'), '/lib/a/x y.mp3');
  t.is(entryPath('https://host/x.mp3', '/lib/p/l.m3u'), undefined);
});

test('a playlist with relative, absolute, missing and outside entries', async (t) => {
  const root = lib({
    'a/1.mp3': 'A',
    'a/2.mp3': 'B',
    'b/3.mp3': 'C',
    'lists/mix.m3u': '#EXTM3U\n#EXTINF:100,First Song\n../a/1.mp3\n$ROOT/b/3.mp3\n../a/404.mp3\n/etc/passwd.mp3\nhttp://radio.example/stream\n../a/1.mp3\n',
    'lists/two.pls': '[playlist]\nFile1=../a/2.mp3\nTitle1=Second\nNumberOfEntries=1\n',
  });
  const c = new Catalog(new MemoryStore());
  await c.open();
  const { warns, log } = logger();
  const r = await scan(c, { roots: [root], probe, log });
  t.is(r.seen, 3, 'playlists are not media files');
  t.is(r.playlists, 2);

  // Playlists in the root, with both playlists
  t.true((await titles(c, '0')).includes('Playlists'));
  const lists = (await c.children('playlists', 0, 0)).objects;
  t.deepEqual(lists.map((o) => [o.title, o.upnpClass, o.childCount]), [
    ['mix', 'object.container.playlistContainer', 2],
    ['two', 'object.container.playlistContainer', 1],
  ]);
  const mix = lists[0]!;
  const kids = (await c.children(mix.id, 0, 0)).objects;
  t.deepEqual(kids.map((o) => o.title), ['First Song', '3'], 'file order; the #EXTINF title');
  t.deepEqual(
    kids.map((o) => o.refId),
    [itemIdForPath(join(root, 'a/1.mp3')), itemIdForPath(join(root, 'b/3.mp3'))],
  );
  t.true(kids.every((o) => o.parentId === mix.id && o.id.startsWith(mix.id + '$')));
  const one = await c.get(kids[0]!.id);
  t.is(one?.title, 'First Song', 'BrowseMetadata of an entry');
  t.is(one?.refId, itemIdForPath(join(root, 'a/1.mp3')));
  t.is(await c.get(mix.id + '$' + itemIdForPath(join(root, 'a/2.mp3'))), undefined, 'not in this playlist');

  // and in its folder
  const folderRoot = (await c.children('folders', 0, 0)).objects[0]!;
  const listsDir = (await c.children(folderRoot.id, 0, 0)).objects.find((o) => o.title === 'lists')!;
  const inFolder = (await c.children(listsDir.id, 0, 0)).objects;
  t.deepEqual(inFolder.map((o) => [o.title, o.upnpClass]), [
    ['mix', 'object.container.playlistContainer'],
    ['two', 'object.container.playlistContainer'],
  ]);
  t.deepEqual(await titles(c, inFolder[0]!.id), ['First Song', '3']);
  t.deepEqual(await titles(c, inFolder[1]!.id), ['Second']);

  // skipped entries are counted in the log
  const w = warns.find((x) => x.obj.playlist?.path.endsWith('mix.m3u'));
  t.like(w?.obj.playlist, { listed: 6, entries: 2, outside: 2, missing: 1, duplicates: 1 });
  t.regex(w!.msg!, /2 outside the library, 1 missing/);
  t.false(warns.some((x) => x.obj.playlist?.path.endsWith('two.pls')), 'nothing skipped, nothing said');
  t.true((await c.containers()).every((o) => o.container), 'playlist records are not containers');
  t.is((await c.items()).length, 3, 'nor items');

  // the missing file appears, a listed one goes: the playlist follows (partial scan, as the watch does)
  writeFileSync(join(root, 'a/404.mp3'), 'D');
  rmSync(join(root, 'b/3.mp3'));
  await scanPaths(c, { roots: [root], probe, log, paths: [join(root, 'a/404.mp3'), join(root, 'b/3.mp3')] });
  t.deepEqual(await titles(c, mix.id), ['First Song', '404']);

  // an item on tape only (its disk copy archived) still belongs to the playlist
  const id2 = itemIdForPath(join(root, 'a/2.mp3'));
  const entry = (await c.getPath(join(root, 'a/2.mp3')))!;
  await c.setLocation(id2, { tape: { label: 'TD0001L9', tapeFile: 1, block: 0, offset: 0, size: 1, sha256: 'x', blockSize: 512 } }, [c.pathOp(join(root, 'a/2.mp3'), { ...entry, archived: true })]);
  rmSync(join(root, 'a/2.mp3'));
  writeFileSync(join(root, 'lists/two.pls'), '[playlist]\nFile1=../a/2.mp3\nTitle1=Second on tape\n');
  await scan(c, { roots: [root], probe, log });
  t.deepEqual(await titles(c, inFolder[1]!.id), ['Second on tape']);

  // a playlist deleted: its containers go, and Playlists with the last one
  rmSync(join(root, 'lists/mix.m3u'));
  await scan(c, { roots: [root], probe, log });
  t.deepEqual((await c.children('playlists', 0, 0)).objects.map((o) => o.title), ['two']);
  rmSync(join(root, 'lists/two.pls'));
  await scan(c, { roots: [root], probe, log });
  t.false((await titles(c, '0')).includes('Playlists'));
  t.is(await c.get('playlists'), undefined);
  await c.close();
});

test('a playlist larger than 1 MiB is skipped with a warning, and the scan goes on', async (t) => {
  const root = lib({ 'a/1.mp3': 'A', 'huge.m3u': Buffer.alloc(1024 * 1024 + 1, 0x61) });
  const c = new Catalog(new MemoryStore());
  await c.open();
  const { warns, log } = logger();
  const r = await scan(c, { roots: [root], probe, log });
  t.is(r.probed, 1);
  t.true(warns.some((w) => /larger than 1 MiB/.test(w.msg ?? '')));
  t.is(await c.get('playlists'), undefined);
  const unchanged = await scan(c, { roots: [root], probe, log });
  t.is(unchanged.playlists, undefined, 'not read again while unchanged');
  await c.close();
});

test('playlist records stay out of Search results and item counts', async (t) => {
  const root = lib({ 'a/1.mp3': 'A', 'l.m3u8': 'a/1.mp3\n' });
  const c = new Catalog(new MemoryStore());
  await c.open();
  await scan(c, { roots: [root], probe });
  const t0 = await c.totals();
  t.is(t0.items, 1);
  const all: CatalogObject[] = await c.containers();
  t.true(all.some((o) => o.upnpClass === 'object.container.playlistContainer'));
  t.false(all.some((o) => o.id.startsWith('l')));
  // Search by title finds the playlist containers (both copies), never the record
  const cds = new ContentDirectory(c);
  const out = Object.fromEntries(await cds.search({ ContainerID: '0', SearchCriteria: 'dc:title = "l"', Filter: '*', StartingIndex: '0', RequestedCount: '0', SortCriteria: '' }, { baseUrl: 'http://127.0.0.1:1' } as never));
  t.is(out.TotalMatches, 2, didlText(out.Result));
  t.notRegex(didlText(out.Result), / id="l/);
  t.regex(didlText(out.Result), /object\.container\.playlistContainer/);
  await c.close();
});

test('a playlist record (l…) is no object for clients: BrowseMetadata, BrowseDirectChildren, Search and X_SetBookmark answer 701/710 as for an unknown ID', async (t) => {
  const root = lib({ 'a/1.mp3': 'A', 'l.m3u8': 'a/1.mp3\n' });
  const c = new Catalog(new MemoryStore());
  await c.open();
  await scan(c, { roots: [root], probe });
  const record = 'l' + itemIdForPath(join(root, 'l.m3u8')).slice(1);
  t.truthy(await c.get(record), 'the catalog keeps the record');
  const cds = new ContentDirectory(c);
  const ctx = { baseUrl: 'http://127.0.0.1:1' } as never;
  const code = (p: Promise<unknown>) => p.then(() => 0, (e: { code?: number }) => e.code);
  const browse = (flag: string) => cds.browse({ ObjectID: record, BrowseFlag: flag, Filter: '*', StartingIndex: '0', RequestedCount: '0', SortCriteria: '' }, ctx);
  t.is(await code(browse('BrowseMetadata')), 701);
  t.is(await code(browse('BrowseDirectChildren')), 701);
  t.is(await code(cds.search({ ContainerID: record, SearchCriteria: '*', Filter: '*', StartingIndex: '0', RequestedCount: '0', SortCriteria: '' }, ctx)), 710);
  const svc = cds.service();
  t.is(await code(Promise.resolve().then(() => svc.actions.X_SetBookmark({ ObjectID: record, PosSecond: '5' }, ctx))), 701);
  t.is(await c.bookmarks.get(record), undefined, 'no bookmark on the record');
  // its containers are objects
  const meta = Object.fromEntries(await cds.browse({ ObjectID: 'P' + record.slice(1), BrowseFlag: 'BrowseMetadata', Filter: '*', StartingIndex: '0', RequestedCount: '0', SortCriteria: '' }, ctx));
  t.regex(didlText(meta.Result), /<container id="P/);
  await c.close();
});

test('Search inside a playlist container (or the Playlists view) finds its entries, as Browse lists them', async (t) => {
  const root = lib({
    'a/1.mp3': 'A',
    'a/2.mp3': 'B',
    'b/3.mp3': 'C',
    'l.m3u8': '#EXTM3U\n#EXTINF:4,First Entry\na/1.mp3\nb/3.mp3\n',
  });
  const c = new Catalog(new MemoryStore());
  await c.open();
  await scan(c, { roots: [root], probe });
  const cds = new ContentDirectory(c);
  const ctx = { baseUrl: 'http://127.0.0.1:1' } as never;
  const h = itemIdForPath(join(root, 'l.m3u8')).slice(1);
  const args = (id: string, crit: string) => ({ ContainerID: id, SearchCriteria: crit, Filter: '*', StartingIndex: '0', RequestedCount: '0', SortCriteria: '' });
  for (const cid of ['P' + h, 'playlists/' + h, 'playlists']) {
    const out = Object.fromEntries(await cds.search(args(cid, 'upnp:class derivedfrom "object.item"'), ctx));
    const didl = didlText(out.Result);
    t.is(out.TotalMatches, 2, `${cid}: ${didl}`);
    const browsed = cid === 'playlists' ? 'playlists/' + h : cid;
    // each hit is the playlist's own child (same ID, parent and title as Browse gives)
    const kids = (await c.children(browsed, 0, 0)).objects;
    for (const k of kids) t.true(didl.includes(`id="${k.id}" parentID="${browsed}"`), `${cid}: ${k.id} in ${didl}`);
    t.regex(didl, /<dc:title>First Entry<\/dc:title>/);
    t.notRegex(didl, /<dc:title>2<\/dc:title>/, 'a/2.mp3 is not in the playlist');
    // criteria still apply (matched on the item's own metadata)
    const one = Object.fromEntries(await cds.search(args(cid, 'upnp:artist = "C"'), ctx));
    t.is(one.TotalMatches, 1, `${cid}: ${didlText(one.Result)}`);
  }
  await c.close();
});

test('a playlist path that is no longer a regular file when it is read (a named pipe, a link to a device put there since the walk) is refused at once, not read', async (t) => {
  // QA review: resolvePlaylist stat()ed and readFile()d the path, both following links: a named
  // pipe put at a playlist's name after the walk held the scan forever in open(2), and a link to
  // /dev/zero (stat size 0) was read until memory ran out
  t.timeout(20_000);
  const root = lib({ 'a/1.mp3': 'A' });
  const c = new Catalog(new MemoryStore());
  await c.open();
  const fifo = join(root, 'pipe.m3u');
  if (spawnSync('mkfifo', [fifo]).status !== 0) return t.pass('mkfifo not available');
  await t.throwsAsync(resolvePlaylist(c, fifo, root, [root]), { message: /not a regular file/ });
  if (existsSync('/dev/zero')) {
    symlinkSync('/dev/zero', join(root, 'zero.m3u'));
    await t.throwsAsync(resolvePlaylist(c, join(root, 'zero.m3u'), root, [root]), { message: /not a regular file/ });
  }
  writeFileSync(join(root, 'ok.m3u'), 'a/1.mp3\n');
  t.truthy(await resolvePlaylist(c, join(root, 'ok.m3u'), root, [root]), 'a regular playlist is read');
  await c.close();
});

test('operator targets (ls, archive, recall): a folder with a playlist file gives its items, not the playlist record; a playlist file or its record ID gives its entries', async (t) => {
  // QA probe (lab, demo library): `tapedeck ls <media dir>` listed the playlist records (l…) as
  // rows of tier "none", 0 B, and `tapedeck archive <dir with an .m3u>` failed for each of them
  // ("no copy on disk"), as did recall ("no tape copy"), while `tapedeck ls` with no target had none
  const root = lib({ 'a/1.mp3': 'A', 'a/2.mp3': 'B', 'b/3.mp3': 'C', 'a/list.m3u': '../b/3.mp3\n1.mp3\n' });
  const c = new Catalog(new MemoryStore());
  await c.open();
  await scan(c, { roots: [root], probe });
  const id = (rel: string) => itemIdForPath(join(root, rel));
  t.deepEqual((await resolveTargets(c, [join(root, 'a')])).sort(), [id('a/1.mp3'), id('a/2.mp3')].sort(), 'the folder: its items only');
  t.deepEqual((await resolveTargets(c, [root])).sort(), [id('a/1.mp3'), id('a/2.mp3'), id('b/3.mp3')].sort(), 'the root');
  t.deepEqual((await resolveTargets(c, [join(root, 'a', 'list.m3u')])).sort(), [id('a/1.mp3'), id('b/3.mp3')].sort(), 'the playlist file: its entries');
  t.deepEqual((await resolveTargets(c, [playlistIdForPath(join(root, 'a', 'list.m3u'))])).sort(), [id('a/1.mp3'), id('b/3.mp3')].sort(), 'its record ID: the same');
  const rows = await listItems(c, async () => new Map(), { targets: [join(root, 'a')] });
  t.deepEqual(rows.map((r) => r.tier), ['disk', 'disk']);
  await c.close();
});
