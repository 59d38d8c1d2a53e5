// The status page in a real browser: Debian's chromium (headless) driven by playwright-core,
// against a Koa app on 127.0.0.1 serving statusRoutes over a fake provider. Checks that the
// page renders the library, the tape library, jobs, streams and cache; that it updates in
// place when the data changes (no reload: a marker on window survives and the document is
// fetched once); that it loads nothing from other origins and logs no errors (a CSP
// violation would); and takes a screenshot whose pixels show the library and tape sections.
//
// A second test runs the real server (`tapedeck serve`, demo library) on the netns lab's
// server host and chromium on its client host, as a TV-side operator would open the page.
//
// Skips (with the reason in the log) when playwright-core or /usr/bin/chromium is missing,
// and the lab test also when the netns lab cannot run (not root, no iproute2).

import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { Router } from '@koa/router';
import jpeg from 'jpeg-js';
import { allowSubnets } from '../src/http/acl.js';
import { staticRoutes } from '../src/http/static.js';
import { statusRoutes } from '../src/http/status.js';
import type { ActiveStream, CacheStatus, JobStatus, LibraryStatus, StatusProvider, TapeStatus, StatusSnapshot } from '../src/server-state.js';
import { createLab, jsonLines, labAvailable } from './helpers/lab.js';

const CHROMIUM = '/usr/bin/chromium';
const DEVICES_DIR = new URL('../devices', import.meta.url).pathname;
const GiB = 1024 ** 3;

type PlaywrightCore = typeof import('playwright-core');
let pw: PlaywrightCore | undefined;
let why: string | undefined;
try {
  pw = await import('playwright-core');
} catch (err) {
  why = `playwright-core is not installed (${(err as Error).message.split('\n')[0]})`;
}
if (!why && !existsSync(CHROMIUM)) why = `${CHROMIUM} is missing (apt-get install chromium)`;

if (why) {
  test('status page in a browser', (t) => {
    t.log(`SKIPPED the browser test of the status page: ${why}`);
    t.pass();
  });
}

// ---- the fake library the page shows ----------------------------------------------------

const NOW = Date.now();

function library(): LibraryStatus {
  const cells = [
    { class: 'audio', tier: 'disk' as const, items: 120, bytes: 120 * 8e6 },
    { class: 'audio', tier: 'both' as const, items: 30, bytes: 30 * 8e6 },
    { class: 'audio', tier: 'tape' as const, items: 400, bytes: 400 * 8e6 },
    { class: 'video', tier: 'disk' as const, items: 12, bytes: 12 * 4 * GiB },
    { class: 'video', tier: 'both' as const, items: 3, bytes: 3 * 4 * GiB },
    { class: 'video', tier: 'tape' as const, items: 85, bytes: 85 * 4 * GiB },
    { class: 'image', tier: 'disk' as const, items: 900, bytes: 900 * 3e6 },
    { class: 'image', tier: 'tape' as const, items: 2000, bytes: 2000 * 3e6 },
  ];
  const lib: LibraryStatus = { items: 0, bytes: 0, byClass: {}, byTier: {}, cells };
  for (const c of cells) {
    lib.items += c.items;
    lib.bytes += c.bytes;
    lib.byClass[c.class] = (lib.byClass[c.class] ?? 0) + c.items;
    lib.byTier[c.tier] = (lib.byTier[c.tier] ?? 0) + c.items;
  }
  return lib;
}

const state = {
  tape: {
    kind: 'virtual',
    drives: [
      { index: 0, name: 'drive0', state: 'reading', label: 'TD0003L9', generation: 'LTO-9', activity: 'recall job 7', position: 123456 },
      { index: 1, name: 'drive1', state: 'empty', generation: 'LTO-9' },
    ],
    slots: [
      { slot: 1, label: 'TD0001L9', full: true },
      { slot: 2, label: 'TD0002L9', full: true },
      { slot: 3, full: false }, // TD0003L9 is in drive 0
      { slot: 4, label: 'TD0004L9', full: true },
      { slot: 5, full: false },
      { slot: 6, full: false },
      { slot: 7, importExport: true, full: false },
    ],
    offlineNeeded: [{ label: 'TD0042L9', items: 3, reason: 'recall job 8 waits for it', since: NOW - 10 * 60_000 }],
    offline: ['TD0042L9'],
    counters: { mounts: 14, unloads: 13, locates: 52, bytesRead: 512 * GiB, bytesWritten: 2048 * GiB, readErrors: 0 },
  } as TapeStatus,
  jobs: [
    { id: '7', kind: 'recall', state: 'running', label: 'TD0003L9', description: '12 items to disk', progress: { done: 3.2 * GiB, total: 8 * GiB, unit: 'bytes' }, startedAt: NOW - 5 * 60_000 },
    { id: '8', kind: 'recall', state: 'queued', label: 'TD0042L9', description: '3 items', progress: { done: 0, total: 3, unit: 'items' } },
    { id: '6', kind: 'archive', state: 'done', label: 'TD0004L9', progress: { done: 250, total: 250, unit: 'items' }, startedAt: NOW - 3600_000, finishedAt: NOW - 1800_000 },
  ] as JobStatus[],
  streams: [
    { id: 'i42', title: 'Big Buck Bunny (2008).mkv', tier: 'tape', remote: '192.168.1.23', client: 'VLC/3.0.18 LibVLC/3.0.18', start: 0, end: 4 * GiB - 1, size: 4 * GiB, bytes: 600e6, startedAt: NOW - 90_000, rate: 6_600_000 },
  ] as ActiveStream[],
  cache: { usedBytes: 37 * GiB, capacityBytes: 100 * GiB, hits: 900, misses: 100, evictions: 12, segments: 1480 } as CacheStatus,
  tapeFails: false,
};

const provider: StatusProvider = {
  server: () => ({ name: 'Living-room NAS', version: '0.1.0', uuid: 'b3c1', urls: ['http://127.0.0.1:8200/'], startedAt: NOW - 3 * 3600_000, scanning: false, lastScan: { seen: 3550, probed: 3550, unchanged: 0, removed: 0, failed: 2, elapsedMs: 41_000, rate: 86, done: true } }),
  library: async () => library(),
  tape: async () => {
    if (state.tapeFails) throw new Error('stager socket closed');
    return state.tape;
  },
  stager: () => ({ state: 'running', pid: 4242, restarts: 1, queued: 2, cacheWriteErrors: 3, uncachedReads: 2, uncachedBytes: 3 * 1024 * 1024, stalls: 0, stalledReads: 1 }),
  jobs: () => state.jobs,
  streams: () => state.streams,
  cache: () => state.cache,
  policy: () => ({
    nextPass: NOW + 3 * 3600_000,
    window: '01:00-06:00',
    inWindow: false,
    interval: 3600,
    usage: [{ scope: '/srv/media', kind: 'percent', before: 83.5, after: 69.9, high: 80, low: 70, usedBytes: 7e12, totalBytes: 1e13 }],
    planned: { archive: 41, recall: 2 },
    candidates: 900,
    lastPass: { at: new Date(NOW - 2 * 3600_000).toISOString(), trigger: 'auto', archive: 12, recall: 1, archiveBytes: 1e11, recallBytes: 1e9, jobs: ['6'], result: 'done' },
    promotions: 7,
    containerPromotions: 5,
    passes: 3,
  }),
  events: () => [
    { service: 'ContentDirectory', subscriptions: 3, sent: 1234, failed: 2, removed: { expired: 5, unsubscribed: 4, failed: 1, gone: 0, replaced: 0, left: 0 } },
    { service: 'ConnectionManager', subscriptions: 1, sent: 1, failed: 0, removed: { expired: 0, unsubscribed: 0, failed: 0, gone: 0, replaced: 0, left: 0 } },
  ],
};

// ---- server -----------------------------------------------------------------------------

let base = '';
let server: http.Server | undefined;
let pageLoads = 0;
const shotDir = mkdtempSync(join(tmpdir(), 'tapedeck-browser-'));

test.before(async () => {
  if (why) return;
  const app = new Koa();
  app.use(async (ctx, next) => {
    if (ctx.path === '/') pageLoads++;
    await next();
  });
  app.use(allowSubnets(['127.0.0.0/8']));
  const router = new Router();
  staticRoutes(router, { devicesDir: DEVICES_DIR });
  statusRoutes(router, provider, { pollMs: 500 });
  app.use(router.routes());
  server = http.createServer(app.callback());
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after.always(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (process.env.TAPEDECK_KEEP_SCREENSHOTS) console.log(`screenshots kept in ${shotDir}`);
  else rmSync(shotDir, { recursive: true, force: true });
});

/** Mean and standard deviation of the luminance of a JPEG. */
function luminance(buf: Buffer): { width: number; height: number; mean: number; sd: number; dark: number } {
  const img = jpeg.decode(buf, { useTArray: true });
  let sum = 0;
  let sq = 0;
  let dark = 0;
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    const y = 0.2126 * img.data[i * 4] + 0.7152 * img.data[i * 4 + 1] + 0.0722 * img.data[i * 4 + 2];
    sum += y;
    sq += y * y;
    if (y < 128) dark++;
  }
  const mean = sum / n;
  return { width: img.width, height: img.height, mean, sd: Math.sqrt(Math.max(0, sq / n - mean * mean)), dark: dark / n };
}

(why ? test.skip : test.serial)('status page renders, updates in place and screenshots well in chromium', async (t) => {
  t.timeout(240_000); // chromium's start alone can take a minute on a loaded 2-core machine
  const userDataDir = mkdtempSync(join(tmpdir(), 'tapedeck-chromium-'));
  const context = await pw!.chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    colorScheme: 'light',
    timeout: 120_000,
  });
  try {
    context.setDefaultTimeout(60_000); // every wait of the page (30 s by default): the machine may be loaded
    const page = await context.newPage();
    const problems: string[] = [];
    const foreign: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => {
      if (!r.url().startsWith(base + '/') && !r.url().startsWith('data:')) foreign.push(r.url());
    });

    const resp = await page.goto(base + '/', { waitUntil: 'load' });
    t.is(resp?.status(), 200);
    await page.waitForSelector('#library table');
    t.is(await page.title(), 'Living-room NAS');

    // Library: totals by class and tier.
    const lib = await page.locator('#library').innerText();
    t.regex(lib, /3,550\s+items/);
    t.regex(lib, /Audio\s+120\s+30\s+400\s+550/);
    t.regex(lib, /Video\s+12\s+3\s+85\s+100/);
    t.regex(lib, /Image\s+900\s+0\s+2,000\s+2,900/);
    t.regex(lib, /All items\s+1,032\s+33\s+2,485\s+3,550/);

    // Tape library: drives, loaded cartridge, slots, the offline cartridge that is needed.
    const tape = await page.locator('#tape').innerText();
    t.regex(tape, /Drive 0\s+reading\s+TD0003L9/);
    t.regex(tape, /Drive 1\s+empty\s+no cartridge/);
    t.regex(tape, /1 cartridge needed but offline/);
    t.regex(tape, /TD0042L9 — needed by 3 items — recall job 8 waits for it/);
    t.regex(tape, /Slots · 3 of 6 full/);
    t.regex(tape, /I\/E 7/);
    t.regex(tape, /mounts 14 · locates 52 · read 512 GiB/);
    t.regex(tape, /Stager worker:\s+running pid 4242 · 1 restart · 2 queued · 3 cache write errors · 2 reads uncached \(3\.00 MiB\) · 1 stalled read \(worker 0, server 1\)/);
    t.is(await page.locator('#tape .drive').count(), 2);
    t.is(await page.locator('#tape .slot').count(), 7);

    // Jobs, streams, cache.
    const jobs = await page.locator('#jobs').innerText();
    t.regex(jobs, /recall\s+#7\s+running\s+40% · 3\.20 GiB of 8\.00 GiB/);
    t.regex(jobs, /recall\s+#8\s+queued/);
    t.regex(jobs, /archive\s+#6\s+done\s+100% · 250 of 250/);
    const streams = await page.locator('#streams').innerText();
    t.regex(streams, /Big Buck Bunny \(2008\)\.mkv\s+Tape\s+192\.168\.1\.23/);
    t.regex(streams, /1 min [3-5]\d s/); // started 90 s before the fake data was made
    const cache = await page.locator('#cache').innerText();
    t.regex(cache, /90\.0%\s+hit ratio/);
    t.regex(cache, /37\.0 GiB of 100 GiB used \(37%\)/);

    const policy = await page.locator('#policy').innerText();
    t.regex(policy, /in 2 h|in 3 h/);
    t.regex(policy, /41\s+to archive/);
    t.regex(policy, /7\s+promotions/);
    t.regex(policy, /5\s+of containers/);
    t.regex(policy, /Window: 01:00-06:00 \(closed now\)/);
    t.regex(policy, /\/srv\/media: disk 83\.5% \(high 80%, low 70%\), 69\.9% after the planned pass/);
    t.regex(policy, /Last pass .* ago \(auto\):\s+done 12 archived, 1 recalled/);

    const events = await page.locator('#events').innerText();
    t.regex(events, /Event subscriptions \(GENA\)/i); // h2 text is upper-cased by the CSS
    t.regex(events, /ContentDirectory\s+3\s+1,234\s+2\s+5 expired, 4 unsubscribed, 1 failed/);
    t.regex(events, /ConnectionManager\s+1\s+1\s+0\s+\u2013/);

    // The section boxes are laid out and visible.
    for (const id of ['#library', '#tape', '#jobs', '#streams', '#cache', '#events']) {
      const box = await page.locator(id).boundingBox();
      t.truthy(box, `${id} has a box`);
      t.true(box!.width > 300 && box!.height > 60, `${id} is ${box?.width}x${box?.height}`);
      t.true(await page.locator(id).isVisible());
    }

    writeFileSync(join(shotDir, 'status-initial.png'), await page.screenshot({ fullPage: true, type: 'png' }));

    // Change the data: the page follows without reloading.
    await page.evaluate(() => {
      (window as unknown as { __marker: string }).__marker = 'still here';
    });
    const loadsBefore = pageLoads;
    state.jobs[0] = { ...state.jobs[0], progress: { done: 6 * GiB, total: 8 * GiB, unit: 'bytes' } };
    state.tape = {
      ...state.tape,
      drives: [state.tape.drives[0], { index: 1, name: 'drive1', state: 'loading', label: 'TD0042L9', generation: 'LTO-9', activity: 'recall job 8' }],
      offlineNeeded: [],
      offline: [],
    };
    state.streams = [
      ...state.streams,
      { id: 'i7', title: 'Concert.mp4', tier: 'disk', remote: '192.168.1.40', client: 'Samsung TV', start: 1000, end: 1999, size: 5000, bytes: 1000, startedAt: NOW - 5000 },
    ];
    state.cache = { ...state.cache, hits: 1900 };
    await page.waitForFunction(() => document.querySelector('#jobs')?.textContent?.includes('75%'), undefined, { timeout: 60_000 });
    await page.waitForFunction(() => document.querySelector('#streams')?.textContent?.includes('Concert.mp4'), undefined, { timeout: 60_000 });
    t.regex(await page.locator('#tape').innerText(), /Drive 1\s+loading\s+TD0042L9/);
    t.false((await page.locator('#tape').innerText()).includes('needed but offline'));
    t.regex(await page.locator('#cache').innerText(), /95\.0%\s+hit ratio/);
    t.is(await page.locator('#streams tbody tr').count(), 2);
    t.is(await page.evaluate(() => (window as unknown as { __marker?: string }).__marker), 'still here');
    t.is(await page.evaluate(() => performance.getEntriesByType('navigation').length), 1);
    t.is(pageLoads, loadsBefore, 'the document was not fetched again');

    // A section whose source fails says so; the others keep rendering.
    state.tapeFails = true;
    await page.waitForFunction(() => document.querySelector('#tape .err')?.textContent?.includes('stager socket closed'), undefined, { timeout: 60_000 });
    t.regex(await page.locator('#tape').innerText(), /Tape status unavailable: stager socket closed/);
    t.false((await page.locator('#tape').innerText()).includes('No tape library is configured'), 'a failing tape library is not reported as absent');
    t.regex(await page.locator('#library').innerText(), /3,550\s+items/);
    state.tapeFails = false;
    await page.waitForSelector('#tape .drive', { timeout: 60_000 });

    // Screenshots: the full page (PNG, kept for people) and JPEGs whose pixels are checked.
    const png = await page.screenshot({ fullPage: true, type: 'png' });
    writeFileSync(join(shotDir, 'status.png'), png);
    t.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
    t.is(png.readUInt32BE(16), 1280, 'PNG width is the viewport width');
    t.true(png.readUInt32BE(20) >= 900, 'PNG height covers at least the viewport');
    t.true(png.length > 30_000, `a real rendering, not a blank page (${png.length} bytes)`);

    const whole = luminance(await page.screenshot({ fullPage: true, type: 'jpeg', quality: 90 }));
    t.true(whole.sd > 12, `the page is not uniform (luminance sd ${whole.sd.toFixed(1)})`);
    for (const id of ['#library', '#tape']) {
      const shot = await page.locator(id).screenshot({ type: 'jpeg', quality: 90 });
      writeFileSync(join(shotDir, `${id.slice(1)}.jpg`), shot);
      const l = luminance(shot);
      t.true(l.width > 300 && l.height > 100, `${id} screenshot is ${l.width}x${l.height}`);
      t.true(l.mean > 150, `${id}: light card background (mean ${l.mean.toFixed(0)})`);
      t.true(l.dark > 0.01 && l.dark < 0.5, `${id}: text drawn on it (${(l.dark * 100).toFixed(1)}% dark pixels)`);
    }

    t.deepEqual(foreign, [], 'no request leaves the server');
    t.deepEqual(problems, [], 'no console errors (CSP violations would show here)');
    t.log(`screenshots in ${shotDir} (set TAPEDECK_KEEP_SCREENSHOTS=1 to keep them)`);
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
});

// ---- the real server in the netns lab, chromium on the client host -------------------------------

const labWhy = why ?? labAvailable();
const lab = labWhy ? undefined : createLab('tdbrw', '10.95.0');
const labDir = mkdtempSync(join(tmpdir(), 'tapedeck-browser-lab-'));
test.before(async () => {
  await lab?.up();
});
test.after.always(async () => {
  await lab?.down();
  rmSync(labDir, { recursive: true, force: true });
});

if (labWhy && !why) {
  test('status page of the real server in the lab', (t) => {
    t.log(`SKIPPED the lab browser test: ${labWhy}`);
    t.pass();
  });
}

(lab ? test.serial : test.skip)('real server in the lab: chromium on the client host renders its status page', async (t) => {
  // bounded, but for a loaded 2-core machine (load 17-20: the server's start with the demo
  // library, chromium's start and the page took over 90 s together)
  t.timeout(300_000);
  const conf = join(labDir, 'empty.conf');
  writeFileSync(conf, '');
  // chromium runs on the lab's client host; playwright talks to it over inherited pipes
  const wrapper = join(labDir, 'chromium-in-lab');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${lab!.cliNs} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const srv = jsonLines<Record<string, any>>(
    lab!.spawnNode('srv', 'src/cli.ts', ['serve', '--config', conf, '--data', join(labDir, 'data'), '--interface', lab!.srvIf, '--port', '0', '--no-ssdp', '--name', 'Lab NAS']),
  );
  const userDataDir = mkdtempSync(join(labDir, 'profile-'));
  let context: Awaited<ReturnType<PlaywrightCore['chromium']['launchPersistentContext']>> | undefined;
  try {
    const ready = await srv.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('library:'), 120_000, 'library line');
    const url = (srv.lines.find((l) => Array.isArray(l.urls))!.urls as string[])[0];
    t.true(url.startsWith(`http://${lab!.srvIp}:`), url);

    context = await pw!.chromium.launchPersistentContext(userDataDir, {
      executablePath: wrapper,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
      timeout: 120_000,
    });
    context.setDefaultTimeout(60_000);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    const resp = await page.goto(url, { waitUntil: 'load' });
    t.is(resp?.status(), 200);
    await page.waitForSelector('#library table');
    t.is(await page.title(), 'Lab NAS');

    // what the page shows is what the server says
    const snap = (await page.evaluate(() => fetch('status.json').then((r) => r.json()))) as StatusSnapshot;
    t.is(snap.library!.items, ready.library.items);
    t.true(snap.library!.items > 0);
    const items = snap.library!.items.toLocaleString('en-US');
    // the demo moves part of the library to tape in the background, so the split between the tiers
    // depends on when the page loaded; the three tiers must add up to the total either way
    const libText = await page.locator('#library').innerText();
    const row = new RegExp(`${items}\\s+items[\\s\\S]*All items\\s+([\\d,]+)\\s+([\\d,]+)\\s+([\\d,]+)\\s+${items}`).exec(libText);
    t.truthy(row, libText);
    const n = (s: string) => Number(s.replace(/,/g, ''));
    t.is(n(row![1]) + n(row![2]) + n(row![3]), snap.library!.items, libText);
    t.true(await page.locator('#tape').isVisible());
    t.true((await page.locator('#tape .body').innerText()).trim().length > 0, 'the tape section says something (a library, or that there is none)');
    t.regex(await page.locator('#server').innerText(), /Tapedeck 0\.1\.0/);
    t.regex(await page.locator('#server').innerText(), /watching [1-9][\d,]* folders/, 'the live watch of the demo library');

    // it keeps polling the real server without reloading
    await page.evaluate(() => {
      (window as unknown as { __marker: number }).__marker = 42;
    });
    const first = await page.getAttribute('body', 'data-generated');
    await page.waitForFunction((f) => document.body.getAttribute('data-generated') !== f, first, { timeout: 60_000 });
    t.is(await page.evaluate(() => (window as unknown as { __marker?: number }).__marker), 42);
    t.regex(await page.locator('#live').innerText(), /^live$/);

    const png = await page.screenshot({ fullPage: true, type: 'png' });
    writeFileSync(join(shotDir, 'lab-status.png'), png);
    t.is(png.readUInt32BE(16), 1280);
    const lib = await page.locator('#library').boundingBox();
    t.true(!!lib && lib.width > 300 && lib.height > 100);
    t.deepEqual(problems, []);
  } finally {
    await context?.close().catch(() => undefined);
    srv.child.kill('SIGTERM');
    await srv.exited(15_000).catch(() => srv.child.kill('SIGKILL'));
  }
});
