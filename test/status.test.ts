import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { Router } from '@koa/router';
import { allowSubnets } from '../src/http/acl.js';
import { staticRoutes } from '../src/http/static.js';
import { collectStatus, statusRoutes, type StatusOptions } from '../src/http/status.js';
import {
  libraryStatus,
  serverStatusProvider,
  StreamTracker,
  tierOf,
  type JobStatus,
  type ServerLike,
  type StatusProvider,
  type StatusSnapshot,
} from '../src/server-state.js';
import { Metrics, metricsRoute } from '../src/metrics.js';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import type { CatalogObject, MediaKind } from '../src/catalog/types.js';
import type { StreamStart } from '../src/http/delivery.js';
import { createLab, jsonLines, labAvailable } from './helpers/lab.js';

const DEVICES_DIR = new URL('../devices', import.meta.url).pathname;

// ---- helpers --------------------------------------------------------------------------------

async function serve(setup: (router: Router) => void, allow = ['127.0.0.0/8']): Promise<{ port: number; close: () => Promise<void> }> {
  const app = new Koa();
  app.silent = true;
  app.use(allowSubnets(allow));
  const router = new Router();
  setup(router);
  app.use(router.routes());
  app.use(router.allowedMethods());
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function request(port: number, path: string, init: { method?: string; headers?: Record<string, string> } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function item(rel: string, kind: MediaKind, location: CatalogObject['location'], size = 1000): CatalogObject {
  const path = `/media/lib/${rel}`;
  return {
    id: itemIdForPath(path),
    parentId: '',
    container: false,
    upnpClass: { audio: 'object.item.audioItem.musicTrack', video: 'object.item.videoItem.movie', image: 'object.item.imageItem.photo' }[kind],
    title: rel.replace(/\.\w+$/, ''),
    kind,
    meta: {},
    res: { mime: 'application/octet-stream', size },
    location,
    origPath: path,
    mediaRoot: '/media/lib',
    relPath: rel,
  };
}
const tape = (size: number) => ({ label: 'TD0001L9', tapeFile: 1, block: 10, offset: 0, size, sha256: 'x', blockSize: 262144 });
const disk = (size: number) => ({ path: '/media/lib/x', size, mtime: 1 });

const fullProvider = (over: Partial<StatusProvider> = {}): StatusProvider => ({
  server: () => ({ name: 'NAS <&> "one"', version: '0.1.0', uuid: 'u-1', urls: ['http://127.0.0.1:1/'], startedAt: Date.now() - 1000, scanning: false }),
  library: async () => ({ items: 2, bytes: 3000, byClass: { audio: 2 }, byTier: { disk: 1, tape: 1 }, cells: [{ class: 'audio', tier: 'disk', items: 1, bytes: 1000 }, { class: 'audio', tier: 'tape', items: 1, bytes: 2000 }] }),
  tape: () => ({ drives: [{ index: 0, state: 'ready', label: 'TD0001L9' }, { index: 1, state: 'empty' }], slots: [{ slot: 1, label: 'TD0002L9' }], offlineNeeded: [{ label: 'TD0009L9', items: 1 }] }),
  stager: () => ({ state: 'running', restarts: 0 }),
  jobs: () => [{ id: '1', kind: 'recall', state: 'running', progress: { done: 1, total: 2, unit: 'items' } }],
  streams: () => [{ id: 'i1', tier: 'tape', bytes: 10, startedAt: Date.now() }],
  cache: () => ({ usedBytes: 1, capacityBytes: 10, hits: 3, misses: 1 }),
  ...over,
});

// ---- library totals and tiers -----------------------------------------------------------------

test('tierOf: disk, tape (with or without stub), both, none', (t) => {
  t.is(tierOf({ disk: disk(1) }), 'disk');
  t.is(tierOf({ tape: tape(1) }), 'tape');
  t.is(tierOf({ tape: tape(1), stub: { path: '/s', ranges: [{ start: 0, end: 10 }] } }), 'tape');
  t.is(tierOf({ disk: disk(1), tape: tape(1) }), 'both');
  t.is(tierOf({}), 'none');
  t.is(tierOf(undefined), 'none');
});

test('libraryStatus counts items and bytes by class and tier from the catalog', async (t) => {
  const c = new Catalog(new MemoryStore());
  await c.open();
  await c.apply({
    upserts: [
      item('a.mp3', 'audio', { disk: disk(100) }, 100),
      item('b.mp3', 'audio', { disk: disk(200) }, 200),
      item('c.mp3', 'audio', { tape: tape(300), stub: { path: '/stub', ranges: [{ start: 0, end: 50 }] } }, 300),
      item('d.mkv', 'video', { disk: disk(5000), tape: tape(5000) }, 5000),
      item('e.jpg', 'image', { tape: tape(7) }, 7),
    ],
  });
  const lib = await libraryStatus(c);
  t.is(lib.items, 5);
  t.is(lib.bytes, 5607);
  t.deepEqual(lib.byClass, { audio: 3, video: 1, image: 1 });
  t.deepEqual(lib.byTier, { disk: 2, tape: 2, both: 1 });
  t.deepEqual(lib.cells, [
    { class: 'audio', tier: 'disk', items: 2, bytes: 300 },
    { class: 'audio', tier: 'tape', items: 1, bytes: 300 },
    { class: 'image', tier: 'tape', items: 1, bytes: 7 },
    { class: 'video', tier: 'both', items: 1, bytes: 5000 },
  ]);
  t.is(lib.systemUpdateId, c.systemUpdateId);
  t.deepEqual(await libraryStatus(c), lib, 'unchanged catalog, same totals');
  // a tier move (the disk copy of a.mp3 dropped after archiving) shows at once
  const a = item('a.mp3', 'audio', {}, 100);
  await c.setLocation(a.id, { tape: tape(100) });
  const moved = await libraryStatus(c);
  t.deepEqual(moved.byTier, { disk: 1, tape: 3, both: 1 });
  t.deepEqual(moved.cells.slice(0, 2), [
    { class: 'audio', tier: 'disk', items: 1, bytes: 200 },
    { class: 'audio', tier: 'tape', items: 2, bytes: 400 },
  ]);
  await c.close();
});

// ---- snapshot -----------------------------------------------------------------------------------

test('collectStatus: every section, optional ones null when not configured', async (t) => {
  const full = await collectStatus(fullProvider());
  t.is(full.server.name, 'NAS <&> "one"');
  t.is(full.library!.items, 2);
  t.is(full.tape!.drives.length, 2);
  t.is(full.stager!.state, 'running');
  t.is(full.jobs!.length, 1);
  t.is(full.streams.length, 1);
  t.is(full.cache!.hits, 3);
  t.deepEqual(full.actions, [], 'read-only by default');
  t.deepEqual(full.errors, {});
  t.true(Math.abs(full.generatedAt - Date.now()) < 5000);

  const bare = await collectStatus({ server: fullProvider().server, library: fullProvider().library });
  t.is(bare.tape, null);
  t.is(bare.stager, null);
  t.is(bare.jobs, null);
  t.is(bare.cache, null);
  t.deepEqual(bare.streams, []);
  t.deepEqual(bare.errors, {});

  // a provider that says "no tape library" is not an error either
  const none = await collectStatus(fullProvider({ tape: () => undefined, cache: () => undefined }));
  t.is(none.tape, null);
  t.is(none.cache, null);
  t.deepEqual(none.errors, {});
});

test('collectStatus: a failing or hanging section is reported, the rest still comes', async (t) => {
  const snap = await collectStatus(
    fullProvider({
      tape: () => {
        throw new Error('stager socket closed');
      },
      cache: () => new Promise(() => {}),
      jobs: async () => Promise.reject(new Error('job store locked')),
    }),
    { sectionTimeoutMs: 100 },
  );
  t.is(snap.tape, null);
  t.is(snap.errors.tape, 'stager socket closed');
  t.is(snap.cache, null);
  t.regex(snap.errors.cache, /no answer within 100 ms/);
  t.deepEqual(snap.jobs, [], 'a job queue exists but could not be read');
  t.is(snap.errors.jobs, 'job store locked');
  t.is(snap.library!.items, 2);
  t.is(snap.stager!.state, 'running');
});

test('collectStatus: jobs are ordered running, queued, then latest finished, and capped', async (t) => {
  const jobs: JobStatus[] = [
    { id: 'old', kind: 'archive', state: 'done', finishedAt: 100 },
    { id: 'q', kind: 'recall', state: 'queued' },
    { id: 'new', kind: 'archive', state: 'failed', finishedAt: 200, error: 'EOM' },
    { id: 'r', kind: 'recall', state: 'running', startedAt: 50 },
  ];
  for (let i = 0; i < 100; i++) jobs.push({ id: `h${i}`, kind: 'archive', state: 'done', finishedAt: 10 });
  const snap = await collectStatus(fullProvider({ jobs: () => jobs }));
  t.deepEqual(snap.jobs!.slice(0, 4).map((j) => j.id), ['r', 'q', 'new', 'old']);
  t.is(snap.jobs!.length, 50);
});

// ---- routes ---------------------------------------------------------------------------------------

test('GET /status.json answers the snapshot as JSON, never cached', async (t) => {
  const srv = await serve((r) => statusRoutes(r, fullProvider()));
  try {
    const res = await request(srv.port, '/status.json');
    t.is(res.status, 200);
    t.is(res.headers['content-type'], 'application/json; charset=utf-8');
    t.is(res.headers['cache-control'], 'no-store');
    const snap = JSON.parse(res.body) as StatusSnapshot;
    t.deepEqual(Object.keys(snap).sort(), ['actions', 'cache', 'errors', 'events', 'generatedAt', 'jobs', 'library', 'policy', 'server', 'stager', 'streams', 'tape'].sort());
    t.is(typeof snap.generatedAt, 'number');
    t.deepEqual(snap.library!.byTier, { disk: 1, tape: 1 });
    t.is(snap.tape!.offlineNeeded![0].label, 'TD0009L9');
    t.is(snap.jobs![0].progress!.total, 2);
    t.is(snap.streams[0].tier, 'tape');
  } finally {
    await srv.close();
  }
});

test('GET / serves one self-contained page with the first snapshot inlined', async (t) => {
  const hostile = '</script><script>alert(1)</script><!--';
  const srv = await serve((r) => statusRoutes(r, fullProvider({ streams: () => [{ id: 'i1', title: hostile, tier: 'disk', bytes: 1, startedAt: 1 }] }), { pollMs: 1500 }));
  try {
    const res = await request(srv.port, '/');
    t.is(res.status, 200);
    t.is(res.headers['content-type'], 'text/html; charset=utf-8');
    t.is(res.headers['cache-control'], 'no-store');
    const html = res.body;
    t.true(html.startsWith('<!doctype html>'));
    t.true(html.includes('<title>NAS &lt;&amp;&gt; "one"</title>'), 'the name is escaped');
    // exactly the two scripts we put there: the hostile title cannot open or close one
    t.is(html.match(/<script/g)?.length, 2);
    t.is(html.match(/<\/script>/g)?.length, 2);
    t.false(html.includes(hostile));
    // the CSP allows only our nonce'd script and style, and nothing from elsewhere
    const csp = String(res.headers['content-security-policy']);
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    t.truthy(nonce);
    t.regex(csp, /default-src 'none'/);
    t.regex(csp, /connect-src 'self'/);
    t.true(html.includes(`<script nonce="${nonce}">`));
    t.true(html.includes(`<style nonce="${nonce}">`));
    t.not(nonce, /script-src 'nonce-([^']+)'/.exec(String((await request(srv.port, '/')).headers['content-security-policy']))?.[1], 'a new nonce per response');
    t.false(/(src|href)="(https?:)?\/\//.test(html), 'no external resources');
    t.true(html.includes('data-poll="1500"'));
    // the inlined snapshot parses back to what /status.json says
    const inline = /<script type="application\/json" id="initial">([^<]*)<\/script>/.exec(html)?.[1];
    const snap = JSON.parse(inline!) as StatusSnapshot;
    t.is(snap.streams[0].title, hostile);
    t.is(snap.library!.items, 2);
    for (const id of ['library', 'tape', 'jobs', 'streams', 'cache']) t.true(html.includes(`<section id="${id}"`), id);
  } finally {
    await srv.close();
  }
});

test('read-only by default; with a rescan action, POST needs the action header', async (t) => {
  let rescans = 0;
  const opts: StatusOptions = { actions: { rescan: async () => void rescans++ } };
  const ro = await serve((r) => statusRoutes(r, fullProvider()));
  const rw = await serve((r) => statusRoutes(r, fullProvider(), opts));
  try {
    t.is((await request(ro.port, '/status/rescan', { method: 'POST', headers: { 'X-Tapedeck-Action': 'rescan' } })).status, 404);
    t.deepEqual(JSON.parse((await request(ro.port, '/status.json')).body).actions, []);
    t.deepEqual(JSON.parse((await request(rw.port, '/status.json')).body).actions, ['rescan']);
    t.is((await request(rw.port, '/status/rescan', { method: 'POST' })).status, 403, 'a cross-site form cannot trigger it');
    t.is(rescans, 0);
    t.is((await request(rw.port, '/status/rescan', { method: 'POST', headers: { 'X-Tapedeck-Action': 'rescan' } })).status, 202);
    await new Promise((r) => setTimeout(r, 20));
    t.is(rescans, 1);
  } finally {
    await ro.close();
    await rw.close();
  }
});

test('rescan: an Origin must name one of the server\'s own addresses, not just agree with Host (DNS rebinding)', async (t) => {
  let rescans = 0;
  const rw = await serve((r) => statusRoutes(r, fullProvider(), { actions: { rescan: async () => void rescans++ }, ownAddresses: () => ['192.0.2.7'] }));
  try {
    const post = (host: string, origin: string) => request(rw.port, '/status/rescan', { method: 'POST', headers: { 'X-Tapedeck-Action': 'rescan', Host: host, Origin: origin } });
    const p = rw.port;
    // attacker.example resolves to the NAS: Host and Origin agree, and still it is not us
    t.is((await post(`attacker.example:${p}`, `http://attacker.example:${p}`)).status, 403, 'rebinding page');
    t.is((await post(`127.0.0.1:${p}`, `http://attacker.example:${p}`)).status, 403, 'foreign origin');
    t.is((await post(`127.0.0.1:${p}`, `http://127.0.0.1:${p + 1 > 65535 ? 1 : p + 1}`)).status, 403, 'another port');
    t.is((await post(`127.0.0.1:${p}`, `https://127.0.0.1:${p}`)).status, 403, 'another scheme');
    t.is(rescans, 0);
    t.is((await post(`127.0.0.1:${p}`, `http://127.0.0.1:${p}`)).status, 202, 'the address it came in on');
    t.is((await post(`localhost:${p}`, `http://localhost:${p}`)).status, 202, 'localhost');
    t.is((await post(`192.0.2.7:${p}`, `http://192.0.2.7:${p}`)).status, 202, 'an address the server listens on');
    t.is((await post(`attacker.example:${p}`, `http://127.0.0.1:${p}`)).status, 202, 'Host does not matter, Origin does');
    await new Promise((r) => setTimeout(r, 20));
    t.is(rescans, 4);
  } finally {
    await rw.close();
  }
});

test('/, /status.json and /metrics answer 403 outside the allowed subnets', async (t) => {
  const metrics = new Metrics();
  let reads = 0;
  const provider = fullProvider({ library: async () => (reads++, fullProvider().library()) });
  const setup = (r: Router) => {
    statusRoutes(r, provider);
    metricsRoute(r, metrics);
  };
  const denied = await serve(setup, ['10.0.0.0/8', '192.168.0.0/16']);
  const allowed = await serve(setup, ['127.0.0.1/32']);
  try {
    for (const path of ['/', '/status.json', '/metrics']) {
      const res = await request(denied.port, path);
      t.is(res.status, 403, path);
      t.false(res.body.includes('TD0001L9'), `${path} leaks nothing`);
      t.is((await request(allowed.port, path)).status, 200, path);
    }
    t.is(reads, 2, 'refused requests never read the status');
  } finally {
    await denied.close();
    await allowed.close();
  }
});

// ---- streams and the server provider ----------------------------------------------------------------

function fakeStart(id: string, tier: 'disk' | 'tape', sent: { n: number }): StreamStart {
  return { id, tier, start: 0, end: 999, size: 1000, remote: '127.0.0.1', userAgent: 'UA', startedAt: Date.now() - 2000, openMs: 5, bytes: () => sent.n };
}

test('StreamTracker keeps running streams and bytes per tier', (t) => {
  const tr = new StreamTracker();
  const starts: string[] = [];
  tr.on('start', (s: StreamStart) => starts.push(s.id));
  const a = { n: 100 };
  const b = { n: 0 };
  const sa = fakeStart('ia', 'disk', a);
  const sb = fakeStart('ib', 'tape', b);
  tr.hooks.onStreamStart(sa);
  tr.hooks.onStreamStart(sb);
  t.deepEqual(starts, ['ia', 'ib']);
  t.is(tr.size, 2);
  b.n = 400;
  const list = tr.list();
  t.deepEqual(list.map((s) => [s.id, s.tier, s.bytes]), [['ia', 'disk', 100], ['ib', 'tape', 400]]);
  t.true(list[1].rate! > 150 && list[1].rate! < 250, `rate ${list[1].rate}`);
  t.deepEqual(tr.totals().bytes, { disk: 100, tape: 400 });
  a.n = 1000;
  tr.hooks.onStream({ id: 'ia', tier: 'disk', bytes: 1000, aborted: false, stream: sa });
  tr.hooks.onStream({ id: 'ib', tier: 'tape', bytes: 500, aborted: true, stream: sb });
  t.is(tr.size, 0);
  t.deepEqual(tr.totals(), { bytes: { disk: 1000, tape: 500 }, finished: { disk: { complete: 1, aborted: 0 }, tape: { complete: 0, aborted: 1 } } });
});

test('serverStatusProvider: server facts, library from the catalog, stream titles, optional tape parts', async (t) => {
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const song = item('Song.mp3', 'audio', { disk: disk(10) }, 10);
  await catalog.apply({ upserts: [song] });
  const server: ServerLike = {
    config: { friendlyName: 'Den' },
    uuid: 'uuid-1',
    catalog,
    status: { scanning: true, lastScan: { seen: 1, probed: 1, unchanged: 0, removed: 0, failed: 0, elapsedMs: 5, rate: 1, done: false } },
    mediaDirs: ['/media/lib'],
    urls: () => ['http://10.0.0.1:8210/'],
    watcher: { watched: 12, unwatched: new Set(['/media/lib/x']), limited: true },
  };
  const tracker = new StreamTracker();
  tracker.hooks.onStreamStart(fakeStart(song.id, 'disk', { n: 5 }));
  const p = serverStatusProvider(server, { tracker, cache: () => ({ usedBytes: 0, capacityBytes: 1, hits: 0, misses: 0 }) });
  const snap = await collectStatus(p);
  t.is(snap.server.name, 'Den');
  t.is(snap.server.version, '0.1.0');
  t.is(snap.server.uuid, 'uuid-1');
  t.true(snap.server.scanning);
  t.is(snap.server.lastScan!.seen, 1);
  t.deepEqual(snap.server.urls, ['http://10.0.0.1:8210/']);
  t.deepEqual(snap.server.watch, { dirs: 12, unwatched: 1, limited: true });
  t.is(snap.library!.items, 1);
  t.is(snap.streams[0].title, 'Song');
  t.is(snap.cache!.capacityBytes, 1);
  t.is(snap.tape, null);
  t.is(snap.jobs, null);
  await catalog.close();
});

test('staticRoutes still serves icons, and the status page when given the server', async (t) => {
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const server: ServerLike = { config: { friendlyName: 'Attic' }, uuid: 'u', catalog, status: { scanning: false }, mediaDirs: [], urls: () => [] };
  const srv = await serve((r) => staticRoutes(r, { devicesDir: DEVICES_DIR, server }));
  try {
    const icon = await request(srv.port, '/icons/icon-48.png');
    t.is(icon.status, 200);
    t.is(icon.headers['content-type'], 'image/png');
    const page = await request(srv.port, '/');
    t.is(page.status, 200);
    t.true(page.body.includes('<title>Attic</title>'));
    t.is(JSON.parse((await request(srv.port, '/status.json')).body).server.name, 'Attic');
  } finally {
    await srv.close();
    await catalog.close();
  }
});

// ---- the real server in the netns lab: page, ACL and logs ---------------------------------------------

const why = labAvailable();
const lab = why ? undefined : createLab('tdstat', '10.94.0');
const labDir = mkdtempSync(join(tmpdir(), 'tapedeck-status-'));
test.before(async () => {
  await lab?.up();
});
test.after.always(async () => {
  await lab?.down();
  rmSync(labDir, { recursive: true, force: true });
});

if (why) {
  test('real server status page and logs in the lab', (t) => {
    t.log(`SKIPPED the netns-lab test of the real server's status page and logs: ${why}`);
    t.pass();
  });
}

type Line = Record<string, any>;

(lab ? test.serial : test.skip)('real server: status page from its own Koa app, 403 from other subnets, logs are JSON lines only', async (t) => {
  t.timeout(90_000);
  const conf = join(labDir, 'empty.conf');
  writeFileSync(conf, '');
  const curl = async (side: 'srv' | 'cli', url: string) => {
    const r = await lab!.exec(side, 'curl', ['-s', '-m', '10', '-w', '\n%{http_code}', url], { timeoutMs: 15_000 });
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  };
  const start = (level?: string) => {
    const args = ['serve', '--config', conf, '--data', join(labDir, 'data'), '--interface', lab!.srvIf, '--port', '0', '--no-ssdp', '--name', 'Lab Status', '--allow', '127.0.0.0/8'];
    if (level) args.push('--log-level', level);
    return jsonLines<Line>(lab!.spawnNode('srv', 'src/cli.ts', args));
  };

  // default level (info)
  let srv = start();
  try {
    const ready = await srv.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('library:'), 60_000, 'library line');
    t.true(ready.library.items > 0, 'the demo library was scanned');
    const url = srv.lines.find((l) => Array.isArray(l.urls))!.urls[0] as string;
    const port = new URL(url).port;

    // allowed (loopback on the server host): the page and its data
    const page = await curl('srv', `http://127.0.0.1:${port}/`);
    t.is(page.status, 200);
    t.true(page.body.includes('<title>Lab Status</title>'));
    const json = await curl('srv', `http://127.0.0.1:${port}/status.json`);
    t.is(json.status, 200);
    const snap = JSON.parse(json.body) as StatusSnapshot;
    t.is(snap.server.name, 'Lab Status');
    t.is(snap.library!.items, ready.library.items);
    t.is(snap.library!.byTier.disk, ready.library.items, 'the demo library lives on disk');

    // the client host is outside the allowed subnets
    for (const path of ['/', '/status.json', '/metrics']) t.is((await curl('cli', `http://${lab!.srvIp}:${port}${path}`)).status, 403, path);

    srv.child.kill('SIGTERM');
    t.is(await srv.exited(15_000), 0);
    t.deepEqual(srv.other, [], 'nothing but JSON on stdout');
    t.is(srv.stderr(), '', 'nothing on stderr');
    for (const l of srv.lines) {
      t.true(typeof l.level === 'number' && l.level >= 30, `level ${l.level} at the default level: ${l.msg}`);
      t.is(typeof l.time, 'string');
      t.is(typeof l.msg, 'string');
    }
    t.false(srv.lines.some((l) => l.msg === 'request'), 'no request log at info');
    t.true(srv.lines.some((l) => l.msg === 'stopped'));
  } finally {
    srv.child.kill('SIGKILL');
  }

  // debug: the request log appears, still as JSON lines
  srv = start('debug');
  try {
    const ready = await srv.waitFor((l) => Array.isArray(l.urls), 60_000, 'serving line');
    const port = new URL(ready.urls[0]).port;
    t.is((await curl('srv', `http://127.0.0.1:${port}/status.json`)).status, 200);
    t.is((await curl('cli', `http://${lab!.srvIp}:${port}/`)).status, 403);
    const ok = await srv.waitFor((l) => l.msg === 'request' && l.url === '/status.json', 10_000, 'request log line');
    t.is(ok.level, 20);
    t.is(ok.method, 'GET');
    t.is(ok.status, 200);
    t.is(typeof ok.ms, 'number');
    const denied = await srv.waitFor((l) => l.msg === 'request' && l.status === 403, 10_000, 'request log line for the refused request');
    t.is(denied.remote, lab!.cliIp);
    srv.child.kill('SIGTERM');
    t.is(await srv.exited(15_000), 0);
    t.deepEqual(srv.other, []);
    t.is(srv.stderr(), '');
  } finally {
    srv.child.kill('SIGKILL');
  }
});
