import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Koa from 'koa';
import { Router } from '@koa/router';
import {
  Metrics,
  ServerMetrics,
  metricsRoute,
  escapeLabelValue,
  formatValue,
  shortServiceName,
  PROMETHEUS_CONTENT_TYPE,
} from '../src/metrics.js';
import { allowSubnets } from '../src/http/acl.js';
import { pageStagerStatus } from '../src/tier.js';
import { diskSource, mediaRoutes, type MediaSource } from '../src/http/delivery.js';
import { libraryStatus, StreamTracker, type StatusProvider } from '../src/server-state.js';
import { soapRoutes } from '../src/upnp/soap.js';
import { ContentDirectory, CDS_TYPE } from '../src/upnp/cds.js';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import type { CatalogObject, MediaKind } from '../src/catalog/types.js';

// ---- a small exposition-format parser (independent of the code under test) ----------------

interface Parsed {
  samples: Map<string, number>;
  types: Map<string, string>;
  helps: Map<string, string>;
}

/** Parses Prometheus text format 0.0.4 strictly enough to catch malformed output. */
function parseExposition(text: string): Parsed {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      const m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) throw new Error(`bad HELP line: ${line}`);
      helps.set(m[1], m[2].replace(/\\n/g, '\n').replace(/\\\\/g, '\\'));
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (!m) throw new Error(`bad TYPE line: ${line}`);
      if (types.has(m[1])) throw new Error(`second TYPE line for ${m[1]}`);
      types.set(m[1], m[2]);
      continue;
    }
    if (line.startsWith('#') || line === '') throw new Error(`unexpected line: ${JSON.stringify(line)}`);
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) throw new Error(`bad sample line: ${line}`);
    const name = nm[0];
    let i = name.length;
    const labels: [string, string][] = [];
    if (line[i] === '{') {
      i++;
      while (line[i] !== '}') {
        const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
        if (!ln || line[i + ln[0].length] !== '=' || line[i + ln[0].length + 1] !== '"') throw new Error(`bad label in ${line}`);
        i += ln[0].length + 2;
        let v = '';
        for (;;) {
          const c = line[i++];
          if (c === undefined) throw new Error(`unterminated label value in ${line}`);
          if (c === '"') break;
          if (c === '\\') {
            const e = line[i++];
            if (e === 'n') v += '\n';
            else if (e === '\\' || e === '"') v += e;
            else throw new Error(`bad escape \\${e} in ${line}`);
          } else v += c;
        }
        labels.push([ln[0], v]);
        if (line[i] === ',') i++;
        else if (line[i] !== '}') throw new Error(`expected , or } in ${line}`);
      }
      i++;
    }
    if (line[i] !== ' ') throw new Error(`expected a space before the value in ${line}`);
    const raw = line.slice(i + 1);
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
    if (raw === '' || (Number.isNaN(value) && raw !== 'NaN')) throw new Error(`bad value in ${line}`);
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(family)) throw new Error(`sample ${name} before its TYPE line`);
    const key = seriesKey(name, Object.fromEntries(labels));
    if (samples.has(key)) throw new Error(`duplicate series ${key}`);
    samples.set(key, value);
  }
  return { samples, types, helps };
}

function seriesKey(name: string, labels: Record<string, string | number> = {}): string {
  const l = Object.entries(labels)
    .map(([k, v]) => [k, String(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',');
  return `${name}{${l}}`;
}

function value(p: Parsed, name: string, labels: Record<string, string | number> = {}): number | undefined {
  return p.samples.get(seriesKey(name, labels));
}

// ---- registry ------------------------------------------------------------------------------

test('counters and gauges render in text format 0.0.4', (t) => {
  const m = new Metrics({ collectErrorsName: 'x_collect_errors_total' });
  const c = m.counter('x_requests_total', 'Requests.', ['code']);
  c.inc({ code: 200 });
  c.inc({ code: 200 }, 2);
  c.inc({ code: 404 });
  const g = m.gauge('x_temperature', 'Temperature.');
  g.set(21.5);
  g.dec(0.5);
  m.gauge('x_unused', 'No labels, never set.');
  m.counter('x_labelled_unused_total', 'Labels, never used.', ['a']);
  t.is(
    m.render(),
    [
      '# HELP x_collect_errors_total Collectors that failed or timed out while reading values at scrape time.',
      '# TYPE x_collect_errors_total counter',
      'x_collect_errors_total 0',
      '# HELP x_requests_total Requests.',
      '# TYPE x_requests_total counter',
      'x_requests_total{code="200"} 3',
      'x_requests_total{code="404"} 1',
      '# HELP x_temperature Temperature.',
      '# TYPE x_temperature gauge',
      'x_temperature 21',
      '# HELP x_unused No labels, never set.',
      '# TYPE x_unused gauge',
      'x_unused 0',
      '# HELP x_labelled_unused_total Labels, never used.',
      '# TYPE x_labelled_unused_total counter',
      '',
    ].join('\n'),
  );
  t.is(c.value({ code: 200 }), 3);
  t.is(g.value(), 21);
});

test('label values and help text are escaped', (t) => {
  const m = new Metrics();
  m.counter('x_total', 'Help with \\ backslash\nand newline "quotes stay".', ['path']).inc({ path: 'a\\b"c\nd' });
  const text = m.render();
  t.true(text.includes('# HELP x_total Help with \\\\ backslash\\nand newline "quotes stay".\n'));
  t.true(text.includes('x_total{path="a\\\\b\\"c\\nd"} 1\n'));
  const p = parseExposition(text);
  t.is(value(p, 'x_total', { path: 'a\\b"c\nd' }), 1, 'the value reads back unchanged');
  t.is(p.helps.get('x_total'), 'Help with \\ backslash\nand newline "quotes stay".');
  t.is(escapeLabelValue('"\\\n'), '\\"\\\\\\n');
});

test('special values use Go float syntax', (t) => {
  t.is(formatValue(Infinity), '+Inf');
  t.is(formatValue(-Infinity), '-Inf');
  t.is(formatValue(NaN), 'NaN');
  t.is(formatValue(0.25), '0.25');
  t.is(formatValue(1e21), '1e+21');
});

test('histogram buckets are cumulative with +Inf, sum and count', (t) => {
  const m = new Metrics();
  const h = m.histogram('x_seconds', 'Durations.', ['op'], [0.1, 1, 10]);
  for (const v of [0.05, 0.1, 0.5, 1, 2, 100]) h.observe({ op: 'read' }, v);
  h.observe({ op: 'read' }, NaN); // ignored
  const p = parseExposition(m.render());
  t.is(p.types.get('x_seconds'), 'histogram');
  const b = (le: string) => value(p, 'x_seconds_bucket', { op: 'read', le });
  t.is(b('0.1'), 2, 'a value equal to a bound falls in that bucket');
  t.is(b('1'), 4);
  t.is(b('10'), 5);
  t.is(b('+Inf'), 6);
  t.is(value(p, 'x_seconds_count', { op: 'read' }), 6);
  t.is(value(p, 'x_seconds_sum', { op: 'read' }), 103.65);
  t.deepEqual(h.stats({ op: 'read' }), { count: 6, sum: 103.65 });
  // the le label comes last and buckets are in increasing order
  const lines = m.render().split('\n').filter((l) => l.startsWith('x_seconds_bucket'));
  t.deepEqual(lines.map((l) => /le="([^"]+)"/.exec(l)![1]), ['0.1', '1', '10', '+Inf']);
  t.true(lines[0].startsWith('x_seconds_bucket{op="read",le="0.1"}'));
});

test('an unlabelled histogram renders its zero series', (t) => {
  const m = new Metrics();
  m.histogram('x_wait_seconds', 'Wait.', [], [1, 5]);
  const p = parseExposition(m.render());
  t.is(value(p, 'x_wait_seconds_bucket', { le: '1' }), 0);
  t.is(value(p, 'x_wait_seconds_bucket', { le: '+Inf' }), 0);
  t.is(value(p, 'x_wait_seconds_count'), 0);
  t.is(value(p, 'x_wait_seconds_sum'), 0);
});

test('histogram snapshots from elsewhere are re-binned to our bounds', (t) => {
  const m = new Metrics();
  const h = m.histogram('x_q_seconds', 'Queue.', [], [1, 10, 100]);
  h.setSnapshot(undefined, { buckets: [0.5, 1, 5, 50], counts: [3, 1, 2, 4, 1], sum: 250, count: 11 });
  const p = parseExposition(m.render());
  t.is(value(p, 'x_q_seconds_bucket', { le: '1' }), 4);
  t.is(value(p, 'x_q_seconds_bucket', { le: '10' }), 6);
  t.is(value(p, 'x_q_seconds_bucket', { le: '100' }), 10);
  t.is(value(p, 'x_q_seconds_bucket', { le: '+Inf' }), 11);
  t.is(value(p, 'x_q_seconds_count'), 11);
  t.throws(() => h.setSnapshot(undefined, { buckets: [1], counts: [1], sum: 0, count: 1 }), { message: /buckets.length \+ 1/ });
});

test('invalid definitions and uses are refused with clear errors', (t) => {
  const m = new Metrics();
  t.throws(() => m.counter('bad-name', 'x'), { message: /invalid metric name/ });
  t.throws(() => m.counter('x_total', 'x', ['bad-label']), { message: /invalid label name/ });
  t.throws(() => m.counter('x2_total', 'x', ['__reserved']), { message: /invalid label name/ });
  t.throws(() => m.histogram('x_h', 'x', ['le']), { message: /le/ });
  t.throws(() => m.histogram('x_h2', 'x', [], [1, 1]), { message: /increasing/ });
  t.throws(() => m.histogram('x_h3', 'x', [], []), { message: /at least one/ });
  const c = m.counter('x_ok_total', 'x', ['a']);
  t.throws(() => c.inc({ a: 1 }, -1), { message: /only go up/ });
  t.throws(() => c.inc({ b: 1 } as never), { message: /has no label "b"/ });
  t.is(m.counter('x_ok_total', 'again', ['a']), c, 'same name and shape: the same metric');
  t.throws(() => m.gauge('x_ok_total', 'x', ['a']), { message: /already registered as a counter/ });
  t.throws(() => m.counter('x_ok_total', 'x', ['a', 'b']), { message: /already registered/ });
});

test('label sets per metric are capped', (t) => {
  const m = new Metrics({ maxSeries: 3 });
  const c = m.counter('x_total', 'x', ['id']);
  for (let i = 0; i < 10; i++) c.inc({ id: i });
  t.is(c.dropped, 7);
  t.is(parseExposition(m.render()).samples.size, 4); // 3 + the collect-errors counter
});

test('collectors run at scrape time; failing and hanging ones are counted, not thrown', async (t) => {
  const m = new Metrics({ collectTimeoutMs: 50 });
  const g = m.gauge('x_items', 'Items.');
  let n = 0;
  m.collect(async () => {
    // settles on the next check phase, always before the 50 ms timeout can fire (a timer of its
    // own could lose that race on a loaded machine)
    await new Promise((r) => setImmediate(r));
    g.set(++n);
  });
  m.collect(() => {
    throw new Error('boom');
  });
  const remove = m.collect(() => new Promise(() => {})); // never settles
  t.is(value(parseExposition(m.render()), 'x_items'), 0, 'render() alone does not collect');
  let p = parseExposition(await m.scrape());
  t.is(value(p, 'x_items'), 1);
  t.is(value(p, 'tapedeck_metrics_collect_errors_total'), 2);
  remove();
  p = parseExposition(await m.scrape());
  t.is(value(p, 'x_items'), 2);
  t.is(value(p, 'tapedeck_metrics_collect_errors_total'), 3);
});

test('service types are shortened for labels', (t) => {
  t.is(shortServiceName('urn:schemas-upnp-org:service:ContentDirectory:1'), 'ContentDirectory');
  t.is(shortServiceName('urn:microsoft.com:service:X_MS_MediaReceiverRegistrar:1'), 'X_MS_MediaReceiverRegistrar');
  t.is(shortServiceName('odd'), 'odd');
});

// ---- over HTTP, with the real media and SOAP routes ------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'tapedeck-metrics-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const SIZE = 700_000;
const mediaFile = join(dir, 'song.mp3');
writeFileSync(mediaFile, randomBytes(SIZE));

function item(rel: string, kind: MediaKind, location: CatalogObject['location']): CatalogObject {
  const path = `/media/lib/${rel}`;
  return {
    id: itemIdForPath(path),
    parentId: '',
    container: false,
    upnpClass: { audio: 'object.item.audioItem.musicTrack', video: 'object.item.videoItem.movie', image: 'object.item.imageItem.photo' }[kind],
    title: rel,
    kind,
    meta: {},
    res: { mime: kind === 'audio' ? 'audio/mpeg' : 'video/mp4', size: 1000 },
    location,
    origPath: path,
    mediaRoot: '/media/lib',
    relPath: rel,
  };
}
const tapeLoc = { label: 'TD0001L9', tapeFile: 1, block: 10, offset: 0, size: 1000, sha256: 'x', blockSize: 262144 };

/** A 10,000-byte video source on the tape tier, opened by `open`. */
const tapeSource = (open: MediaSource['open']): MediaSource => ({
  size: 10_000,
  mtime: 1_700_000_000_000,
  mime: 'video/mp4',
  contentFeatures: '*',
  transferMode: 'Streaming',
  tier: 'tape',
  open,
});

/** A tape source whose bytes the test releases by hand. */
class HeldSource {
  stream = new PassThrough();
  source: MediaSource = tapeSource(() => this.stream);
}

async function request(port: number, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

const soap = (action: string, inner: string) => ({
  method: 'POST',
  headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPACTION: `"${CDS_TYPE}#${action}"` },
  body:
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${CDS_TYPE}">${inner}</u:${action}></s:Body></s:Envelope>`,
});

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

test('requests, bytes, streams and SOAP actions are counted and read back from /metrics', async (t) => {
  t.timeout(30_000);
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const disk = { path: mediaFile, size: SIZE, mtime: 1_700_000_000_000 };
  const onDisk = item('a.mp3', 'audio', { disk });
  const onTape = item('b.mp3', 'audio', { tape: tapeLoc });
  const onBoth = item('c.mp4', 'video', { disk, tape: tapeLoc });
  await catalog.apply({ upserts: [onDisk, onTape, onBoth] });

  const held = new HeldSource();
  const tracker = new StreamTracker();
  const provider: StatusProvider = {
    server: () => ({ name: 'test', version: '0', scanning: true, lastScan: { seen: 42, probed: 40, unchanged: 1, removed: 0, failed: 1, elapsedMs: 1500, rate: 28, done: false } }),
    library: () => libraryStatus(catalog),
    tape: () => ({
      drives: [
        { index: 0, state: 'reading', label: 'TD0001L9' },
        { index: 1, state: 'empty' },
      ],
      slots: [{ slot: 1, label: 'TD0002L9' }, { slot: 2 }, { slot: 3, importExport: true }],
      offlineNeeded: [{ label: 'TD0009L9', items: 2 }],
      counters: { mounts: 3, unloads: 2, locates: 7, bytesRead: 123456789, bytesWritten: 5, readErrors: 0 },
    }),
    stager: () => ({ state: 'running', restarts: 2, queued: 1, queueWait: { buckets: [1, 60], counts: [4, 1, 0], sum: 12.5, count: 5 }, prestages: 6, prestagedBytes: 7_000_000, preemptions: 2, stalls: 1, stalledReads: 3, cacheWriteErrors: 4, uncachedReads: 5, uncachedBytes: 6_000_000, mountsInteractive: 2, mountsPrefetch: 1, mountsJob: 0, syncMs: 1500, roomWaitMs: 250, commitDelayMs: 4000, driveWaitMsInteractive: 3000, driveWaitMsPrefetch: 9000 }),
    cache: () => ({ usedBytes: 1000, capacityBytes: 5000, hits: 30, misses: 10, evictions: 4 }),
    jobs: () => [
      { id: '1', kind: 'recall', state: 'running' },
      { id: '2', kind: 'recall', state: 'queued' },
      { id: '3', kind: 'archive', state: 'done' },
    ],
  };
  const sm = new ServerMetrics({ version: '9.9.9', status: provider, streams: tracker });

  const app = new Koa();
  app.silent = true;
  app.use(sm.http());
  app.use(allowSubnets(['127.0.0.0/8']));
  const router = new Router();
  const cds = new ContentDirectory(catalog);
  soapRoutes(router, '/upnp/control/cds', cds.service(), { onAction: sm.soapAction, logger: { error: () => {} } });
  mediaRoutes(
    router,
    async (id) => {
      if (id === 'iheld') return held.source;
      const o = await catalog.get(id);
      return o?.location?.disk ? diskSource(o.location.disk.path, o.location.disk.size, o.location.disk.mtime, 'audio/mpeg', '*') : undefined;
    },
    tracker.hooks,
  );
  metricsRoute(router, sm.registry);
  app.use(router.routes());
  app.use(router.allowedMethods());
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const scrape = async () => parseExposition((await request(port, '/metrics')).body.toString('utf8'));

  try {
    // media: a range, a whole body, a miss
    let r = await request(port, `/media/${onDisk.id}`, { headers: { Range: 'bytes=0-99' } });
    t.is(r.status, 206);
    t.is(r.body.length, 100);
    r = await request(port, `/media/${onDisk.id}.mp3`);
    t.is(r.status, 200);
    t.is(r.body.length, SIZE);
    r = await request(port, `/media/${onDisk.id}`, { headers: { Range: 'bytes=1000-' } });
    t.is(r.status, 206);
    t.is((await request(port, '/media/nosuchitem')).status, 404);
    // SOAP: an action, a fault from the action, an unknown action
    r = await request(port, '/upnp/control/cds', soap('Browse', '<ObjectID>0</ObjectID><BrowseFlag>BrowseMetadata</BrowseFlag><Filter>*</Filter><StartingIndex>0</StartingIndex><RequestedCount>0</RequestedCount><SortCriteria></SortCriteria>'));
    t.is(r.status, 200);
    r = await request(port, '/upnp/control/cds', soap('Browse', '<ObjectID>nope</ObjectID><BrowseFlag>BrowseMetadata</BrowseFlag><Filter>*</Filter><StartingIndex>0</StartingIndex><RequestedCount>0</RequestedCount><SortCriteria></SortCriteria>'));
    t.is(r.status, 500);
    t.regex(r.body.toString(), /<errorCode>701<\/errorCode>/);
    r = await request(port, '/upnp/control/cds', soap('X_Frobnicate', ''));
    t.is(r.status, 500);
    r = await request(port, '/upnp/control/cds', soap('GetSystemUpdateID', ''));
    t.is(r.status, 200);

    const fullBytes = 100 + SIZE + (SIZE - 1000);
    t.true(await waitFor(async () => value(await scrape(), 'tapedeck_http_response_bytes_total', { tier: 'disk' }) === fullBytes, 30_000), 'disk bytes add up');

    const res = await request(port, '/metrics');
    t.is(res.status, 200);
    t.is(res.headers['content-type'], PROMETHEUS_CONTENT_TYPE);
    const p = parseExposition(res.body.toString('utf8'));
    const req = (route: string, status: number, tier = 'none', method = 'GET') => value(p, 'tapedeck_http_requests_total', { route, method, status, tier });
    t.is(req('/media/:name', 206, 'disk'), 2);
    t.is(req('/media/:name', 200, 'disk'), 1);
    t.is(req('/media/:name', 404), 1, 'a miss has no tier');
    t.is(req('/upnp/control/cds', 200, 'none', 'POST'), 2);
    t.is(req('/upnp/control/cds', 500, 'none', 'POST'), 2);

    t.is(value(p, 'tapedeck_media_streams_total', { tier: 'disk', outcome: 'complete' }), 3);
    t.is(value(p, 'tapedeck_media_streams_total', { tier: 'disk', outcome: 'aborted' }), 0);
    t.is(value(p, 'tapedeck_active_streams', { tier: 'disk' }), 0);
    t.is(value(p, 'tapedeck_active_streams', { tier: 'tape' }), 0);
    t.is(value(p, 'tapedeck_media_open_seconds_count', { tier: 'disk' }), 3);

    t.is(value(p, 'tapedeck_soap_actions_total', { service: 'ContentDirectory', action: 'Browse' }), 2);
    t.is(value(p, 'tapedeck_soap_actions_total', { service: 'ContentDirectory', action: 'GetSystemUpdateID' }), 1);
    t.is(value(p, 'tapedeck_soap_actions_total', { service: 'ContentDirectory', action: 'unknown' }), 1, 'unknown action names do not become labels');
    t.is(value(p, 'tapedeck_soap_errors_total', { service: 'ContentDirectory', action: 'Browse', code: 701 }), 1);
    t.is(value(p, 'tapedeck_soap_errors_total', { service: 'ContentDirectory', action: 'unknown', code: 401 }), 1);
    t.is(value(p, 'tapedeck_soap_action_duration_seconds_count', { service: 'ContentDirectory' }), 4);
    t.false([...p.samples.keys()].some((k) => k.includes('X_Frobnicate')));

    // read at scrape time from the status provider
    t.is(value(p, 'tapedeck_library_items', { class: 'audio', tier: 'disk' }), 1);
    t.is(value(p, 'tapedeck_library_items', { class: 'audio', tier: 'tape' }), 1);
    t.is(value(p, 'tapedeck_library_items', { class: 'video', tier: 'both' }), 1);
    t.is(value(p, 'tapedeck_library_bytes', { tier: 'both' }), SIZE, 'the size delivery serves (the disk copy), as ls and the policy count it');
    t.is(value(p, 'tapedeck_scan_running'), 1);
    t.is(value(p, 'tapedeck_scan_files_seen'), 42);
    t.is(value(p, 'tapedeck_scan_files', { state: 'probed' }), 40);
    t.is(value(p, 'tapedeck_scan_elapsed_seconds'), 1.5);
    t.is(value(p, 'tapedeck_tape_mounts_total'), 3);
    t.is(value(p, 'tapedeck_tape_locates_total'), 7);
    t.is(value(p, 'tapedeck_tape_bytes_read_total'), 123456789);
    t.is(value(p, 'tapedeck_tape_drives', { state: 'reading' }), 1);
    t.is(value(p, 'tapedeck_tape_drives', { state: 'empty' }), 1);
    t.is(value(p, 'tapedeck_tape_slots', { full: 'true' }), 1);
    t.is(value(p, 'tapedeck_tape_slots', { full: 'false' }), 1);
    t.is(value(p, 'tapedeck_tape_cartridges_offline_needed'), 1);
    t.is(value(p, 'tapedeck_cache_hits_total'), 30);
    t.is(value(p, 'tapedeck_cache_misses_total'), 10);
    t.is(value(p, 'tapedeck_cache_evictions_total'), 4);
    t.is(value(p, 'tapedeck_cache_used_bytes'), 1000);
    t.is(value(p, 'tapedeck_stager_restarts_total'), 2);
    t.is(value(p, 'tapedeck_stager_up'), 1);
    t.is(value(p, 'tapedeck_stager_queued_requests'), 1);
    t.is(value(p, 'tapedeck_prestages_total'), 6);
    t.is(value(p, 'tapedeck_prestaged_bytes_total'), 7_000_000);
    t.is(value(p, 'tapedeck_preemptions_total'), 2);
    t.is(value(p, 'tapedeck_stager_stalls_total'), 1);
    t.is(value(p, 'tapedeck_stager_stalled_reads_total'), 3);
    t.is(value(p, 'tapedeck_stager_cache_write_errors_total'), 4);
    t.is(value(p, 'tapedeck_stager_uncached_reads_total'), 5);
    t.is(value(p, 'tapedeck_stager_uncached_bytes_total'), 6_000_000);
    t.is(value(p, 'tapedeck_stager_mounts_total', { priority: 'interactive' }), 2);
    t.is(value(p, 'tapedeck_stager_mounts_total', { priority: 'prefetch' }), 1);
    t.is(value(p, 'tapedeck_stager_sync_seconds_total'), 1.5);
    t.is(value(p, 'tapedeck_stager_cache_room_wait_seconds_total'), 0.25);
    t.is(value(p, 'tapedeck_stager_commit_delay_seconds_total'), 4);
    t.is(value(p, 'tapedeck_stager_drive_wait_seconds_total', { priority: 'interactive' }), 3);
    t.is(value(p, 'tapedeck_stager_drive_wait_seconds_total', { priority: 'prefetch' }), 9);
    t.is(value(p, 'tapedeck_stager_queue_wait_seconds_count'), 5);
    t.is(value(p, 'tapedeck_stager_queue_wait_seconds_bucket', { le: '1' }), 4);
    t.is(value(p, 'tapedeck_stager_queue_wait_seconds_bucket', { le: '60' }), 5);
    t.is(value(p, 'tapedeck_jobs', { kind: 'recall', state: 'running' }), 1);
    t.is(value(p, 'tapedeck_jobs', { kind: 'archive', state: 'done' }), 1);
    t.is(value(p, 'tapedeck_build_info', { version: '9.9.9' }), 1);
    t.is(value(p, 'tapedeck_metrics_collect_errors_total'), 0);

    // a tape stream in flight: active, and its bytes count before it ends
    const body: Buffer[] = [];
    let ended = false;
    const inflight = http.get({ host: '127.0.0.1', port, path: '/media/iheld', agent: false }, (res) => {
      res.on('data', (c: Buffer) => body.push(c));
      res.on('end', () => (ended = true));
    });
    inflight.on('error', () => {});
    held.stream.write(Buffer.alloc(4000));
    t.true(
      await waitFor(async () => {
        const q = await scrape();
        return value(q, 'tapedeck_active_streams', { tier: 'tape' }) === 1 && value(q, 'tapedeck_http_response_bytes_total', { tier: 'tape' }) === 4000;
      }, 5000),
      'a running tape stream is active and its bytes so far are counted',
    );
    t.is(tracker.list()[0]?.tier, 'tape');
    held.stream.end(Buffer.alloc(6000));
    t.true(await waitFor(async () => ended, 30_000));
    t.is(Buffer.concat(body).length, 10_000);
    t.true(
      await waitFor(async () => {
        const q = await scrape();
        return (
          value(q, 'tapedeck_active_streams', { tier: 'tape' }) === 0 &&
          value(q, 'tapedeck_http_response_bytes_total', { tier: 'tape' }) === 10_000 &&
          value(q, 'tapedeck_media_streams_total', { tier: 'tape', outcome: 'complete' }) === 1
        );
      }, 5000),
    );
    const q = await scrape();
    t.is(value(q, 'tapedeck_http_requests_total', { route: '/media/:name', method: 'GET', status: 200, tier: 'tape' }), 1);
    t.true((value(q, 'tapedeck_http_requests_total', { route: '/metrics', method: 'GET', status: 200, tier: 'none' }) ?? 0) >= 1, 'earlier scrapes are counted');
  } finally {
    held.stream.destroy(); // never leave a body hanging when an assertion failed midway
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await catalog.close();
  }
});

test('refused requests are counted under the route "denied"', async (t) => {
  const sm = new ServerMetrics();
  const app = new Koa();
  app.use(sm.http());
  app.use(allowSubnets(['10.0.0.0/8']));
  const router = new Router();
  metricsRoute(router, sm.registry);
  app.use(router.routes());
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  try {
    t.is((await request(port, '/metrics')).status, 403);
    t.is(sm.httpRequests.value({ route: 'denied', method: 'GET', status: 403, tier: 'none' }), 1);
    t.false((await sm.scrape()).includes('route="/metrics"'));
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('an error thrown past the metrics middleware is counted with its status', async (t) => {
  const sm = new ServerMetrics();
  const mw = sm.http();
  const ctx = { method: 'GET', status: 404, state: {} } as unknown as Koa.Context;
  await t.throwsAsync(() => Promise.resolve(mw(ctx, async () => Promise.reject(Object.assign(new Error('gone'), { status: 503 })))), { message: 'gone' });
  await t.throwsAsync(() => Promise.resolve(mw(ctx, async () => Promise.reject(new Error('bug')))), { message: 'bug' });
  t.is(sm.httpRequests.value({ route: 'unmatched', method: 'GET', status: 503, tier: 'none' }), 1);
  t.is(sm.httpRequests.value({ route: 'unmatched', method: 'GET', status: 500, tier: 'none' }), 1);
});

test('a client that leaves while its media source is still opening is counted as 499, not as the status it never got', async (t) => {
  const sm = new ServerMetrics();
  const app = new Koa();
  app.silent = true;
  app.use(sm.http());
  const router = new Router();
  let opening!: () => void;
  const opened = new Promise<void>((r) => (opening = r));
  // a cold tape read: nothing until the client gives up
  const slow = tapeSource(
    (_start, _end, signal) =>
      new Promise((_resolve, reject) => {
        opening();
        signal?.addEventListener('abort', () => reject(new Error('aborted')));
      }),
  );
  mediaRoutes(router, async () => slow);
  app.use(router.routes());
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  try {
    const req = http.request({ host: '127.0.0.1', port, path: '/media/islow', headers: { range: 'bytes=100-' }, agent: false });
    req.on('error', () => {});
    req.end();
    await opened;
    req.destroy();
    t.true(await waitFor(async () => sm.httpRequests.value({ route: '/media/:name', method: 'GET', status: 499, tier: 'tape' }) === 1, 30_000));
    t.is(sm.httpRequests.value({ route: '/media/:name', method: 'GET', status: 206, tier: 'tape' }), 0);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('the stager section carries the worker\'s and the client\'s fault counters (stalls, stalled reads, cache write errors, uncached reads and bytes)', (t) => {
  const s = pageStagerStatus({
    connected: true,
    mode: 'spawn',
    restarts: 0,
    counters: { stalls: 1, stalledReads: 2, cacheWriteErrors: 3, uncachedReads: 4, uncachedBytes: 5000, bytesServed: 9, connected: 1, mountsPrefetch: 7, syncMs: 'x' as unknown as number },
  });
  t.like(s, { state: 'running', stalls: 1, stalledReads: 2, cacheWriteErrors: 3, uncachedReads: 4, uncachedBytes: 5000, mountsPrefetch: 7 });
  t.is(s.syncMs, undefined, 'a malformed counter is left out');
  t.false('bytesServed' in s);
  const none = pageStagerStatus({ connected: false, mode: 'spawn', restarts: 1, counters: {} });
  t.is(none.state, 'restarting');
  t.is(none.cacheWriteErrors, undefined, 'absent, not 0, while the worker has not reported it');
});
