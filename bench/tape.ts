// Tape tier benchmark (`npm run bench:tape`): the staging worker, the server's
// StagerClient and the HTTP media route, all in this one process, against the
// virtual tape library's timing model (DESIGN.md §6). Every figure is a ratio
// against a reference measured or computed in the same run:
//
//   coldTtfb        time to first byte of a request for an archived item whose
//                   cartridge is in a slot and whose drive is empty, divided by
//                   the model's physical minimum for that byte: robot move + load
//                   + locate from the load point to its block + one block at the
//                   native rate (goal ≤ 1.05)
//   stubTtfb        time to first byte of an archived item whose start is in its
//                   head stub (the tape part is requested in the background),
//                   divided by that of the same bytes from a disk item (goal ≤ 1.5)
//   throughput      sequential throughput from tape through the whole chain
//                   (drive → cache segments → HTTP), divided by the drive's native
//                   rate (goal ≥ 0.95); positioning is excluded (it has its own
//                   figure), the simulated drive's own overhead is reported too
//   trace           tape bytes read per byte served for a playback trace with
//                   seeks (read-ahead and segment rounding are the overhead)
//
// Time: a clock that applies the model's seconds scaled by a factor per phase
// (and, for the throughput phase, only to streaming). Output: JSON on stdout.
//
// One process plays three: the server, the staging worker and the tape hardware
// (the virtual drive's file I/O). Deployed, the server and the worker each have
// their own libuv I/O thread pool (4 threads each), so this process gets 8
// unless UV_THREADPOOL_SIZE is set. Cold TTFB samples are few and the machine
// may be shared: the headline ratio is their median, the worst one is reported.

process.env.UV_THREADPOOL_SIZE ??= '8'; // before the first thread-pool operation

import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import Koa from 'koa';
import { Router } from '@koa/router';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { diskSource, mediaRoutes, type MediaSource } from '../src/http/delivery.js';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { toTapeLocation, writeArchive } from '../src/tape/format.js';
import { LTO9, locateSeconds, longitudinalPosition, streamSeconds, type TapeClock } from '../src/tape/timing.js';
import { StagingWorker } from '../src/staging/worker.js';
import { StagerClient } from '../src/staging/client.js';
import { median, round } from './stats.js';

const MB = 1024 * 1024;
const BLOCK = 256 * 1024;
// Cartridge capacity: positions on tape are fractions of it (serpentine model, 280 wraps on
// LTO-9). A small "shrunk" cartridge makes a wrap only a few blocks long, so a 4 MiB cache
// segment (the worker starts a read at its segment's first block) would jump whole wraps; on a
// real LTO-9 a wrap holds ~64 GB and that difference is nil. 1 TiB keeps a wrap at ~3.7 GiB.
const CAPACITY = 1024 * 1024 * MB;
const TTFB_SCALE = Number(process.env.BENCH_TAPE_SCALE ?? 0.05); // real seconds per modelled second
const STREAM_SCALE = Number(process.env.BENCH_TAPE_STREAM_SCALE ?? 20); // throughput phase: 400 MB/s → 20 MB/s
const STUB_SAMPLES = 25;

/** Spends modelled time scaled by a factor per operation kind (0 = instant). */
class PhaseClock implements TapeClock {
  scales: Record<string, number> = {};
  fallback = 0;
  async spend(seconds: number, op: string): Promise<void> {
    const ms = seconds * (this.scales[op] ?? this.fallback) * 1000;
    if (ms >= 1) await new Promise<void>((r) => setTimeout(r, ms));
    else await new Promise<void>((r) => setImmediate(r));
  }
  set(scale: number, perOp: Record<string, number> = {}): void {
    this.fallback = scale;
    this.scales = perOp;
  }
}

interface Item {
  obj: CatalogObject;
  data: Buffer;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET with optional Range; stops after the first byte when `firstOnly`; throttles to `rate` B/s; stops after `limit` bytes. */
function get(
  port: number,
  id: string,
  o: { range?: string; firstOnly?: boolean; rate?: number; limit?: number } = {},
): Promise<{ status: number; ttfbMs: number; firstAt: number; lastAt: number; firstChunk: number; bytes: number; body?: Buffer }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const headers: Record<string, string> = o.range ? { Range: o.range } : {};
    const req = http.request({ host: '127.0.0.1', port, path: `/media/${id}`, headers, agent: false }, (res) => {
      let first = -1;
      let firstChunk = 0;
      let last = t0;
      let bytes = 0;
      const chunks: Buffer[] = [];
      const keep = !o.firstOnly && !o.rate && !o.limit;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        resolve({ status: res.statusCode ?? 0, ttfbMs: first < 0 ? NaN : first - t0, firstAt: first, lastAt: last, firstChunk, bytes, ...(keep ? { body: Buffer.concat(chunks) } : {}) });
      };
      res.on('data', (c: Buffer) => {
        const now = performance.now();
        if (first < 0) {
          first = now;
          firstChunk = c.length;
          if (o.firstOnly) {
            bytes += c.length;
            req.destroy();
            finish();
            return;
          }
        }
        last = now;
        bytes += c.length;
        if (keep) chunks.push(c);
        if (o.limit && bytes >= o.limit) {
          req.destroy();
          finish();
          return;
        }
        if (o.rate) {
          const due = t0 + (bytes / o.rate) * 1000;
          const ahead = due - performance.now();
          if (ahead > 1) {
            res.pause();
            setTimeout(() => res.resume(), ahead);
          }
        }
      });
      res.on('end', finish);
      res.on('close', finish);
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') return;
      reject(err);
    });
    req.end();
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-tape-'));
  const clock = new PhaseClock();
  const labels = ['TD0001L9', 'TD0002L9', 'TD0003L9', 'TD0004L9', 'TD0005L9', 'TD0006L9'];
  const lib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { drives: 1, slots: 8, blockSize: BLOCK, capacityBytes: CAPACITY, cartridges: labels, clock });
  const items = new Map<string, Item>();
  const stubDir = join(dir, 'stubs');
  await mkdir(stubDir, { recursive: true });

  /** Archives items on one cartridge (instant: clock scale 0). */
  const archive = async (label: string, specs: { id: string; size: number; stub?: number }[]) => {
    const drive = await lib.mount(label, { drive: 0 });
    const datas = specs.map((s) => randomBytes(s.size));
    const idx = await writeArchive(
      drive,
      specs.map((s, i) => ({ objectId: s.id, path: `bench/${s.id}.mkv`, size: s.size, open: () => Readable.from([datas[i]!]) })),
    );
    await lib.changer.unload(0);
    for (const [i, s] of specs.entries()) {
      const e = idx.entries.find((x) => x.objectId === s.id)!;
      const obj: CatalogObject = {
        id: s.id,
        parentId: '0',
        container: false,
        upnpClass: 'object.item.videoItem.movie',
        title: s.id,
        kind: 'video',
        res: { mime: 'video/x-matroska', size: s.size },
        location: { tape: toTapeLocation(e, label) },
        mtime: Date.UTC(2024, 0, 1),
      };
      if (s.stub) {
        const p = join(stubDir, `${s.id}.stub`);
        await writeFile(p, datas[i]!.subarray(0, s.stub));
        obj.location!.stub = { path: p, ranges: [{ start: 0, end: s.stub }] };
      }
      items.set(s.id, { obj, data: datas[i]! });
    }
  };

  clock.set(0);
  // cold TTFB: targets at different positions along three cartridges
  // (coldN is requested from its start, seekN from 60 % into it: a seek into an archived item)
  await archive('TD0001L9', [{ id: 'warm', size: 1 * MB }, { id: 'fill1', size: 20 * MB }, { id: 'cold1', size: 8 * MB }, { id: 'fill1b', size: 40 * MB }, { id: 'seek1', size: 8 * MB }]);
  await archive('TD0002L9', [{ id: 'fill2', size: 90 * MB }, { id: 'cold2', size: 8 * MB }, { id: 'fill2b', size: 20 * MB }, { id: 'seek2', size: 8 * MB }]);
  await archive('TD0003L9', [{ id: 'fill3', size: 150 * MB }, { id: 'cold3', size: 8 * MB }, { id: 'fill3b', size: 60 * MB }, { id: 'seek3', size: 8 * MB }]);
  // head stubs vs disk
  await archive('TD0004L9', Array.from({ length: STUB_SAMPLES }, (_, i) => ({ id: `stub${i}`, size: 2 * MB, stub: 512 * 1024 })));
  // sequential throughput
  await archive('TD0005L9', [{ id: 'stream', size: 64 * MB }]);
  // playback trace with seeks
  await archive('TD0006L9', [{ id: 'trace', size: 192 * MB, stub: 4 * MB }]);

  const diskSources = new Map<string, MediaSource>();
  for (let i = 0; i < STUB_SAMPLES; i++) {
    const it = items.get(`stub${i}`)!;
    const p = join(dir, `disk${i}.mkv`);
    await writeFile(p, it.data);
    diskSources.set(`disk${i}`, diskSource(p, it.data.length, it.obj.mtime!, 'video/x-matroska', 'DLNA.ORG_OP=01'));
  }

  // the worker, in this process, on a unix socket; the server side connects to it
  const cacheDir = join(dir, 'cache');
  const worker = await StagingWorker.create({ library: lib, cacheDir, cacheSize: 1024 * MB, admissionTimeoutMs: 600_000, idleUnloadMs: 0 });
  const sock = join(dir, 'stager.sock');
  await worker.listen(sock);
  const cfg = loadConfig({ env: {} as NodeJS.ProcessEnv, flags: { data: dir, cacheDir, cacheSize: '1G', stager: sock, logLevel: 'silent' } });
  const client = new StagerClient({ config: cfg, log: silentLogger });
  await client.start();
  const app = new Koa();
  app.silent = true;
  const router = new Router();
  mediaRoutes(router, async (id) => diskSources.get(id) ?? (items.has(id) ? client.source(items.get(id)!.obj) : undefined));
  app.use(router.routes());
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;

  const waitIdle = async () => {
    for (let i = 0; i < 2000 && worker.scheduler.drives().some((d) => d.busy); i++) await sleep(5);
  };
  const emptyDrive = async () => {
    clock.set(0);
    await waitIdle();
    await worker.scheduler.unloadIdle();
  };
  const tapeRead = () => lib.stats().bytesRead;

  // ---- 1. cold TTFB vs the physical minimum --------------------------------------------------
  // one untimed request first: a long-running server has its code paths warm
  await emptyDrive();
  await get(port, 'warm', { range: 'bytes=1000-', firstOnly: true });
  const cold: { item: string; offset: number; block: number; ttfbMs: number; minimumMs: number; ratio: number }[] = [];
  for (const id of ['cold1', 'cold2', 'cold3', 'seek1', 'seek2', 'seek3']) {
    const it = items.get(id)!;
    const loc = it.obj.location!.tape!;
    const offset = id.startsWith('cold') ? 0 : Math.floor(it.data.length * 0.6);
    await emptyDrive();
    clock.set(TTFB_SCALE);
    const block = loc.block + Math.floor((loc.offset + offset) / loc.blockSize);
    const x = longitudinalPosition(block, BLOCK, CAPACITY, LTO9.wraps);
    const locate = block === 0 ? 0 : locateSeconds(LTO9, 0, x);
    const minimumS = LTO9.robotMove + LTO9.load + locate + streamSeconds(LTO9, BLOCK);
    const r = await get(port, id, { range: `bytes=${offset}-`, firstOnly: true });
    if (r.status !== 206) throw new Error(`cold request answered ${r.status}`);
    const minimumMs = minimumS * TTFB_SCALE * 1000;
    cold.push({ item: id, offset, block, ttfbMs: round(r.ttfbMs, 1), minimumMs: round(minimumMs, 1), ratio: round(r.ttfbMs / minimumMs, 4) });
  }

  // ---- 2. head stub TTFB vs disk TTFB ---------------------------------------------------------
  await emptyDrive();
  clock.set(TTFB_SCALE);
  for (let i = 0; i < 5; i++) {
    await get(port, `disk${i}`, { firstOnly: true });
    await get(port, `disk${i}`, { range: 'bytes=0-1023' });
  }
  const stubMs: number[] = [];
  const diskMs: number[] = [];
  for (let i = 0; i < STUB_SAMPLES; i++) {
    const pair = [
      async () => diskMs.push((await get(port, `disk${i}`, { range: 'bytes=0-', firstOnly: true })).ttfbMs),
      async () => {
        const r = await get(port, `stub${i}`, { range: 'bytes=0-', firstOnly: true });
        if (r.status !== 206) throw new Error(`stub request answered ${r.status}`);
        stubMs.push(r.ttfbMs);
      },
    ];
    if (i % 2) pair.reverse();
    for (const f of pair) await f();
    await sleep(5);
  }

  // ---- 3. sequential throughput vs the native rate --------------------------------------------
  await emptyDrive();
  // positioning instant, streaming at STREAM_SCALE: the drive's native rate is LTO9.rate / STREAM_SCALE real bytes/s
  clock.set(0, { read: STREAM_SCALE });
  const native = LTO9.rate / STREAM_SCALE;
  const stream = items.get('stream')!;
  const before = tapeRead();
  const s = await get(port, 'stream');
  if (!s.body || sha(s.body) !== sha(stream.data)) throw new Error('throughput run: bytes differ');
  const served = (s.bytes - s.firstChunk) / ((s.lastAt - s.firstAt) / 1000);
  const tapeBytesStream = tapeRead() - before;
  // the simulated drive alone, read back to back (its file I/O is not part of the model)
  const drive = lib.drives[0]!;
  const loc = stream.obj.location!.tape!;
  clock.set(0);
  await drive.locate(loc.block);
  clock.set(0, { read: STREAM_SCALE });
  const blocks = Math.ceil((loc.offset + loc.size) / BLOCK);
  const t0 = performance.now();
  let got = 0;
  let firstAt = 0;
  let firstBytes = 0;
  while (got < blocks) {
    const r = await drive.readBlocks(Math.min(16, blocks - got));
    got += r.data.length / BLOCK;
    if (!firstAt) {
      firstAt = performance.now();
      firstBytes = r.data.length;
    }
  }
  const raw = ((got * BLOCK - firstBytes) / (performance.now() - firstAt)) * 1000;
  void t0;

  // ---- 4. playback trace with seeks: tape bytes per byte served --------------------------------
  await emptyDrive();
  clock.set(TTFB_SCALE);
  const trace = items.get('trace')!;
  const steps: [number, number][] = [
    [0, 16 * MB], // start of playback (the first 4 MiB are the head stub)
    [120 * MB, 16 * MB], // seek forward
    [40 * MB, 8 * MB], // seek back
    [176 * MB, 16 * MB], // to the end
  ];
  const play = 40 * MB; // bytes/s the player takes (a player reads at its bitrate, far below the drive's rate)
  const tb0 = tapeRead();
  let servedBytes = 0;
  const traceSteps: { from: number; bytes: number; ttfbMs: number }[] = [];
  for (const [from, len] of steps) {
    const r = await get(port, 'trace', { range: `bytes=${from}-`, rate: play, limit: len });
    servedBytes += r.bytes;
    traceSteps.push({ from, bytes: r.bytes, ttfbMs: round(r.ttfbMs, 1) });
    await sleep(50);
  }
  await waitIdle();
  const traceTape = tapeRead() - tb0;

  const ws = worker.stats();
  const coldRatio = median(cold.map((c) => c.ratio));
  const coldMax = Math.max(...cold.map((c) => c.ratio));
  const stubRatio = median(stubMs) / median(diskMs);
  const result = {
    benchmark: 'tape',
    model: { generation: LTO9.generation, rateBytesPerS: LTO9.rate, robotS: LTO9.robotMove, loadS: LTO9.load, averageLocateS: LTO9.averageLocate, blockSize: BLOCK, capacityBytes: CAPACITY },
    timeScale: { ttfb: TTFB_SCALE, stream: STREAM_SCALE },
    coldTtfb: { ratio: round(coldRatio, 4), goal: '<= 1.05', pass: coldRatio <= 1.05, maxRatio: round(coldMax, 4), samples: cold },
    stubTtfb: {
      ratio: round(stubRatio, 3),
      goal: '<= 1.5',
      pass: stubRatio <= 1.5,
      stubMedianMs: round(median(stubMs), 3),
      diskMedianMs: round(median(diskMs), 3),
      samples: stubMs.length,
    },
    throughput: {
      ratio: round(served / native, 4),
      goal: '>= 0.95',
      pass: served / native >= 0.95,
      servedBytesPerS: Math.round(served),
      nativeBytesPerS: Math.round(native),
      simulatedDriveAloneRatio: round(raw / native, 4),
      tapeBytesPerByteServed: round(tapeBytesStream / stream.data.length, 4),
    },
    trace: {
      tapeBytesPerByteServed: round(traceTape / servedBytes, 3),
      servedBytes,
      tapeBytes: traceTape,
      playerBytesPerS: play,
      readAheadBytes: worker.tuning.readAhead,
      segmentSize: worker.tuning.segmentSize,
      steps: traceSteps,
    },
    counters: {
      mounts: ws.libMounts,
      locates: ws.libLocates,
      admissions: ws.admissions,
      cacheHits: ws.cacheHits,
      cacheMisses: ws.cacheMisses,
      coalesced: ws.coalesced,
      evictions: ws.evictions,
      tapeBytesRead: ws.libBytesRead,
    },
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');

  server.closeAllConnections?.();
  server.close();
  await client.stop();
  await worker.close();
  clock.set(0);
  await lib.close();
  await rm(dir, { recursive: true, force: true });
}

main().catch((err: Error) => {
  process.stderr.write(`bench:tape failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
