// Live updates: the server watches the media directories. A file copied in (slowly, as a copy in
// progress) shows up in Browse and Search and in a GENA NOTIFY within 5 s, read once; a rename and
// a deletion too. When the watch limit is reached the log says so once and the periodic rescan
// covers the rest. Tapedeck's own archive/recall changes are not reported. Loopback, SSDP off.
import test from 'ava';
import { spawn } from 'node:child_process';
import { watch as fsWatch } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDemoLibrary } from '../src/demo/library.js';
import { LibraryWatcher } from '../src/scanner/watcher.js';
import { OwnPaths } from '../src/util/own-paths.js';
import { jsonLines, REPO_ROOT } from './helpers/lab.js';
import { browse, CDS, soap } from './helpers/upnp-client.js';

type Line = Record<string, any>;

async function setup(prefix: string) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, 'empty.conf'), '');
  const { files } = await createDemoLibrary(join(dir, 'demo'));
  const media = join(dir, 'media');
  await mkdir(join(media, 'sub'), { recursive: true });
  return { dir, media, tracks: files.filter((f) => f.endsWith('.flac')) };
}

function serve(dir: string, media: string, extra: string[]) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', join(dir, 'empty.conf'), '--data', join(dir, 'data'), '--media', media, '--interface', 'lo', '--port', '0', '--no-ssdp', '--tape-backend', 'none', ...extra],
    { cwd: REPO_ROOT, stdio: 'pipe' },
  );
  return { child, srv: jsonLines<Line>(child) };
}

/** Polls until fn returns a value (not undefined) or the deadline passes. */
async function within<T>(ms: number, fn: () => Promise<T | undefined>): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined || Date.now() > end) return v;
    await sleep(100);
  }
}

/** A GENA subscriber on loopback: collects NOTIFY bodies. */
async function subscriber(eventUrl: string) {
  const notifies: { at: number; body: string }[] = [];
  const cb = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      notifies.push({ at: Date.now(), body });
      res.end();
    });
  });
  await new Promise<void>((r) => cb.listen(0, '127.0.0.1', r));
  const port = (cb.address() as AddressInfo).port;
  const res = await fetch(eventUrl, { method: 'SUBSCRIBE', headers: { callback: `<http://127.0.0.1:${port}/>`, nt: 'upnp:event', timeout: 'Second-300' } });
  if (res.status !== 200) throw new Error(`SUBSCRIBE: ${res.status}`);
  return { notifies, close: () => cb.close() };
}

const sysUpdateOf = (body: string) => Number(/<SystemUpdateID>(\d+)<\/SystemUpdateID>/.exec(body)?.[1] ?? NaN);

test('a file copied in, renamed and deleted shows in Browse, Search and GENA within 5 s', async (t) => {
  t.timeout(90_000);
  const { dir, media, tracks } = await setup('tapedeck-watch-');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await copyFile(tracks[0]!, join(media, 'one.flac'));
  const { child, srv } = serve(dir, media, ['--rescan-interval', '0']); // no periodic rescan: only the watch can see changes
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = (await srv.waitFor((l) => Array.isArray(l.urls), 30_000, 'serving line')).urls[0] as string;
  await srv.waitFor((l) => l.scan?.done === true, 30_000, 'first scan');
  await srv.waitFor((l) => typeof l.watch?.dirs === 'number', 10_000, 'watch started');
  const cds = new URL('/upnp/control/cds', url).href;
  const gena = await subscriber(new URL('/upnp/event/cds', url).href);
  t.teardown(() => gena.close());
  await within(5000, async () => (gena.notifies.length ? true : undefined)); // the initial event
  const sys0 = Number((await soap(cds, CDS, 'GetSystemUpdateID')).out.Id);
  const titles = async () => (await browse(cds, 'music/all')).entries.map((e) => e.title);

  // a copy in progress: four pieces a third of a second apart; read once it is whole
  const body = await readFile(tracks[1]!);
  const fh = await open(join(media, 'sub', 'two.flac'), 'w');
  for (let i = 0; i < 4; i++) {
    await fh.write(body.subarray((i * body.length) / 4, ((i + 1) * body.length) / 4));
    await sleep(330);
  }
  await fh.close();
  const copied = Date.now();
  const n0 = gena.notifies.length;
  const seen = await within(5000, async () => ((await titles()).length === 2 ? true : undefined));
  t.true(seen, `the copied file is in Browse within 5 s (${await titles()})`);
  const all = await browse(cds, 'music/all');
  t.true(all.entries.every((e) => Number(e.res[0]!.attrs.size) > 0));
  t.true(all.entries.some((e) => Number(e.res[0]!.attrs.size) === body.length), 'read whole, after the copy settled');
  const live = srv.lines.filter((l) => l.live);
  t.is(live.reduce((n, l) => n + l.live.probed, 0), 1, 'read once, not once per piece');
  const note = await within(5000, async () => gena.notifies.slice(n0).find((x) => sysUpdateOf(x.body) > sys0));
  t.truthy(note, 'a GENA NOTIFY with a new SystemUpdateID');
  t.true(note!.at - copied < 5000, `NOTIFY ${note!.at - copied} ms after the copy`);
  t.regex(note!.body, /<ContainerUpdateIDs>[^<]*music\/all,\d+/);
  const found = await soap(cds, CDS, 'Search', { ContainerID: '0', SearchCriteria: 'upnp:class derivedfrom "object.item.audioItem"', Filter: '*', StartingIndex: 0, RequestedCount: 0, SortCriteria: '' });
  t.is(Number(found.out.TotalMatches), 2, 'Search sees it too');

  // a rename: the old name goes, the new one comes
  const idsBefore = (await browse(cds, 'music/all')).entries.map((e) => e.refID);
  await rename(join(media, 'sub', 'two.flac'), join(media, 'renamed.flac'));
  const renamed = await within(5000, async () => {
    const ids = (await browse(cds, 'music/all')).entries.map((e) => e.refID);
    return ids.length === 2 && ids.some((id) => !idsBefore.includes(id)) ? ids : undefined;
  });
  t.truthy(renamed, 'the renamed file is there under its new path, the old one gone');
  const folders = await browse(cds, 'folders');
  const root = await browse(cds, folders.entries[0]!.id);
  t.false(root.entries.some((e) => e.kind === 'container' && e.title === 'sub'), 'the emptied folder is gone');

  // a deletion, and a folder moved in with a file
  await rm(join(media, 'one.flac'));
  await mkdir(join(dir, 'album'));
  await copyFile(tracks[2]!, join(dir, 'album', 'three.flac'));
  await rename(join(dir, 'album'), join(media, 'album'));
  const after = await within(5000, async () => {
    const ids = (await browse(cds, 'music/all')).entries.map((e) => e.refID);
    return ids.length === 2 && !ids.includes(idsBefore.find((id) => renamed!.includes(id))) ? ids : undefined;
  });
  t.truthy(after, 'deleted file gone, moved-in folder catalogued');
  child.kill('SIGTERM');
  t.is(await srv.exited(15_000), 0);
});

test('watch limit reached: logged once, the periodic rescan covers the unwatched directories', async (t) => {
  t.timeout(90_000);
  const { dir, media, tracks } = await setup('tapedeck-watchlimit-');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(media, 'sub2'));
  const { child, srv } = serve(dir, media, ['--rescan-interval', '2', '--watch-limit', '1']);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = (await srv.waitFor((l) => Array.isArray(l.urls), 30_000, 'serving line')).urls[0] as string;
  const warn = await srv.waitFor((l) => /watch limit reached/.test(l.msg ?? ''), 10_000, 'the limit warning');
  t.regex(warn.msg, /watch_limit 1/);
  t.regex(warn.msg, /periodic rescan every 2 s/);
  await srv.waitFor((l) => l.scan?.done === true, 30_000, 'first scan');
  const cds = new URL('/upnp/control/cds', url).href;
  // the root is watched, sub/ is not: the rescan reads what is there (the watched part is the watcher test's)
  await copyFile(tracks[0]!, join(media, 'root.flac'));
  await copyFile(tracks[1]!, join(media, 'sub', 'deep.flac'));
  await mkdir(join(media, 'sub3'));
  const both = await within(10_000, async () => ((await browse(cds, 'music/all')).entries.length === 2 ? true : undefined));
  t.true(both);
  await srv.waitFor((l) => l.scan?.done === true && l.scan.probed >= 1, 10_000, 'a rescan read the file in the unwatched directory');
  t.is(srv.lines.filter((l) => /watch limit reached/.test(l.msg ?? '')).length, 1, 'said once');
  child.kill('SIGTERM');
  t.is(await srv.exited(15_000), 0);
});

test('watcher: ENOSPC from inotify is the limit; own changes (archive, recall) are not reported', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-watcher-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'a', 'b'), { recursive: true });
  await mkdir(join(dir, 'c'));
  const warns: string[] = [];
  const log = { warn: (_o: object, m?: string) => warns.push(m ?? ''), info: () => {}, debug: () => {} };
  let calls = 0;
  const failing = ((path: string, o: unknown, l: unknown) => {
    if (++calls > 2) throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
    return (fsWatch as unknown as (...a: unknown[]) => ReturnType<typeof fsWatch>)(path, o, l);
  }) as unknown as typeof fsWatch;
  const changes: string[][] = [];
  const own = new OwnPaths();
  const w = new LibraryWatcher({ roots: [dir], interesting: (p) => p.endsWith('.flac'), onChange: async (p) => void changes.push(p), settleMs: 100, log, ownPaths: own, watchFn: failing });
  t.teardown(() => w.close());
  await w.start();
  t.is(w.watched, 2);
  t.true(w.limited);
  t.is(w.unwatched.size, 2);
  await sleep(50);
  t.is(warns.length, 1);
  t.regex(warns[0]!, /fs\.inotify\.max_user_watches/);

  // own change: ignored; someone else's: reported once settled
  own.expect(join(dir, 'mine.flac'));
  await writeFile(join(dir, 'mine.flac'), 'x');
  await writeFile(join(dir, 'theirs.flac'), 'y');
  await writeFile(join(dir, 'notes.txt'), 'z');
  const got = await within(3000, async () => (changes.length ? changes.flat() : undefined));
  await sleep(300);
  t.deepEqual(got, [join(dir, 'theirs.flac')]);
  t.deepEqual(changes.flat(), [join(dir, 'theirs.flac')]);
  t.is(warns.length, 1, 'still said once');
});

test('watcher: a directory renamed away and another renamed to its name are told apart (inotify follows inodes)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-watcher-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'a'));
  await mkdir(join(dir, 'c'));
  await writeFile(join(dir, 'a', 'x.flac'), 'x');
  await writeFile(join(dir, 'c', 'y.flac'), 'y');
  const changes = new Set<string>();
  const w = new LibraryWatcher({ roots: [dir], interesting: (p) => p.endsWith('.flac'), onChange: async (p) => p.forEach((x) => changes.add(x)), settleMs: 100 });
  t.teardown(() => w.close());
  await w.start();
  await rename(join(dir, 'a'), join(dir, 'b'));
  await rename(join(dir, 'c'), join(dir, 'a'));
  const want = [join(dir, 'a'), join(dir, 'c'), join(dir, 'b', 'x.flac'), join(dir, 'a', 'y.flac')];
  await within(4000, async () => (want.every((p) => changes.has(p)) ? true : undefined));
  t.true(want.every((p) => changes.has(p)), [...changes].join(' '));
  // (a watch also reports its own directory moving, under the directory's base name: a path that is not there, harmless)
  t.deepEqual([...changes].filter((p) => p.endsWith('.flac')).sort(), [join(dir, 'a', 'y.flac'), join(dir, 'b', 'x.flac')]);
  // new files are reported under the names their directories have now
  changes.clear();
  await writeFile(join(dir, 'b', 'w.flac'), 'w');
  await writeFile(join(dir, 'a', 'z.flac'), 'z');
  await within(4000, async () => (changes.size >= 2 ? true : undefined));
  await sleep(400);
  t.deepEqual([...changes].filter((p) => p.endsWith('.flac')).sort(), [join(dir, 'a', 'z.flac'), join(dir, 'b', 'w.flac')].sort());
});

test('watch = false: no watch, a new file waits for a rescan', async (t) => {
  t.timeout(60_000);
  const { dir, media, tracks } = await setup('tapedeck-nowatch-');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { child, srv } = serve(dir, media, ['--rescan-interval', '0', '--no-watch']);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = (await srv.waitFor((l) => Array.isArray(l.urls), 30_000, 'serving line')).urls[0] as string;
  await srv.waitFor((l) => l.scan?.done === true, 30_000, 'first scan');
  await copyFile(tracks[0]!, join(media, 'one.flac'));
  await sleep(3500); // longer than the watch needs (settling twice, then a partial scan)
  const cds = new URL('/upnp/control/cds', url).href;
  t.is((await browse(cds, 'music/all')).entries.length, 0);
  t.false(srv.lines.some((l) => l.watch), 'no watch started');
  child.kill('SIGTERM');
  t.is(await srv.exited(15_000), 0);
});

test('watcher: a file replaced by a symbolic link is reported (the scan drops the item; the link is never followed)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-watcher-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'song.flac'), 'x');
  await writeFile(join(dir, 'secret'), 'y');
  const changes: string[] = [];
  const w = new LibraryWatcher({ roots: [dir], interesting: (p) => p.endsWith('.flac'), onChange: async (p) => void changes.push(...p), settleMs: 100 });
  t.teardown(() => w.close());
  await w.start();
  await rm(join(dir, 'song.flac'));
  await symlink(join(dir, 'secret'), join(dir, 'song.flac'));
  const got = await within(3000, async () => (changes.length ? changes : undefined));
  t.deepEqual(got, [join(dir, 'song.flac')]);
});

test('a server stop during the watch start ends the walk and announces no watch (nothing logged after "shutting down")', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-watch-stop-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const d of ['a', 'b', 'c', 'a/x']) await mkdir(join(dir, d), { recursive: true });
  const infos: string[] = [];
  const log = { warn: () => {}, info: (_o: object, m?: string) => infos.push(m ?? ''), debug: () => {} };
  let stopping = false;
  let watched = 0;
  const counting = ((path: string, o: unknown, l: unknown) => {
    if (++watched === 2) stopping = true; // the stop begins while the walk is under way
    return (fsWatch as unknown as (...a: unknown[]) => ReturnType<typeof fsWatch>)(path, o, l);
  }) as unknown as typeof fsWatch;
  const w = new LibraryWatcher({ roots: [dir], interesting: () => true, onChange: async () => {}, settleMs: 100, log, watchFn: counting });
  t.teardown(() => w.close());
  await w.start(() => stopping);
  t.is(watched, 2, 'no directory watched after the stop began');
  t.deepEqual(infos, []);
  // without a stop: every directory, announced once
  const w2 = new LibraryWatcher({ roots: [dir], interesting: () => true, onChange: async () => {}, settleMs: 100, log });
  t.teardown(() => w2.close());
  await w2.start();
  t.is(w2.watched, 5);
  t.is(infos.length, 1);
  t.regex(infos[0]!, /^watching 5 directories/);
});
