// The staging worker: owns the tape library and the staging cache, serves read
// requests of the server (one or more connections) and the remote TapeLibrary
// of archive/recall jobs. It never speaks HTTP or UPnP.
//
// This file assembles it and reports on it (stats, status, hello). The parts:
//   reads.ts       read requests and the fills of cache segments (scheduling, coalescing)
//   tape-pass.ts   a pass over the tape (and uncached reads when the cache fails)
//   read-state.ts  tuning, counters, requests, fills
//   scheduler.ts   drive leases and admission
//   session.ts     one connection: framing, hello, message dispatch
//   job-drives.ts  the server side of the remote TapeLibrary used by jobs
//   needed.ts      the needed-cartridges file for `tape ls`
//   test-hooks.ts  `debug` messages (tests only)

import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TapeLibrary } from '../tape/types.js';
import { SegmentCache } from './cache.js';
import { DriveScheduler } from './scheduler.js';
import { nullLog, type WorkerLog } from './log.js';
import { PROTOCOL_VERSION, QUEUE_WAIT_BUCKETS, type Priority, type SandboxInfo, type WorkerMessage } from './protocol.js';
import { DEFAULT_TUNING, newCounters, type FlaggedItem, type WorkerCounters, type WorkerTuning } from './read-state.js';
import { ReadService } from './reads.js';
import { Session, type SessionHost } from './session.js';
import { writeNeededCartridges } from './needed.js';
import { RECALL_HOLD_LOSS, RecallHolds } from './recall-holds.js';

export { DEFAULT_TUNING, type FlaggedItem, type WorkerTuning } from './read-state.js';
export { NEEDED_FILE, readNeededCartridges } from './needed.js';
export { Session } from './session.js';

export interface StagingWorkerOptions {
  library: TapeLibrary;
  cacheDir: string;
  cacheSize: number;
  /** Admission timeout of playback requests (ms). */
  admissionTimeoutMs: number;
  /** Idle drive unload (ms; 0 = never). */
  idleUnloadMs: number;
  tuning?: Partial<WorkerTuning>;
  /** Clock of playback holds (a read's holdMs keeps its cartridge loaded; default Date.now). */
  now?: () => number;
  log?: WorkerLog;
  /** Honour `debug` messages (tests only). */
  testHooks?: boolean;
  /** What the sandbox restricts (reported in hello and status). */
  sandbox?: SandboxInfo;
}

export class StagingWorker extends EventEmitter implements SessionHost {
  readonly lib: TapeLibrary;
  readonly cache: SegmentCache;
  readonly scheduler: DriveScheduler;
  readonly tuning: WorkerTuning;
  readonly log: WorkerLog;
  readonly counters: WorkerCounters = newCounters();
  readonly flagged = new Map<string, FlaggedItem>();
  readonly sessions = new Set<Session>();
  readonly reads: ReadService;
  /** Cartridges kept loaded for queued loadedOnly recall jobs (recall-holds.ts). */
  readonly recallHolds: RecallHolds;
  private readonly started = Date.now();
  private closed = false;
  private servers: Server[] = [];
  private statsTimer: NodeJS.Timeout | undefined;
  private statsDirty = false;
  /** How long tape reads waited for admission (buckets: QUEUE_WAIT_BUCKETS, counts not cumulative). */
  private readonly queueWait = { buckets: QUEUE_WAIT_BUCKETS, counts: new Array<number>(QUEUE_WAIT_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };

  private constructor(
    readonly opts: StagingWorkerOptions,
    lib: TapeLibrary,
    cache: SegmentCache,
    scheduler: DriveScheduler,
    tuning: WorkerTuning,
    log: WorkerLog,
  ) {
    super();
    this.lib = lib;
    this.cache = cache;
    this.scheduler = scheduler;
    this.tuning = tuning;
    this.log = log;
    this.recallHolds = new RecallHolds(opts.now ?? Date.now);
    this.reads = new ReadService({
      cache,
      scheduler,
      tuning,
      counters: this.counters,
      log,
      admissionTimeoutMs: opts.admissionTimeoutMs,
      flagged: this.flagged,
      touchStats: () => this.touchStats(),
      broadcast: (m) => this.broadcast(m),
      ...(opts.now ? { now: opts.now } : {}),
    });
    cache.dropPartials = (need) => this.reads.dropPartials(need);
    cache.droppablePartials = () => this.reads.droppablePartialBytes();
    cache.on('evict', () => this.touchStats());
    scheduler.on('needed', (list) => {
      void this.persistNeeded();
      this.broadcast({ t: 'event', name: 'needed', data: { cartridges: list } });
    });
    scheduler.on('mount', (d) => {
      this.broadcast({ t: 'event', name: 'mount', data: d });
      this.touchStats();
    });
    scheduler.on('unload', (d) => {
      this.broadcast({ t: 'event', name: 'unload', data: d });
      this.touchStats();
    });
    scheduler.on('admit', (a: { priority: Priority; waitedMs: number }) => {
      if (a.priority === 'job') return; // tape reads only: jobs hold drives for whole batches
      const w = this.queueWait;
      const sec = a.waitedMs / 1000;
      let i = 0;
      while (i < w.buckets.length && sec > w.buckets[i]!) i++;
      w.counts[i]!++;
      w.sum += sec;
      w.count++;
    });
    this.statsTimer = setInterval(() => {
      if (!this.statsDirty) return;
      this.statsDirty = false;
      this.broadcast({ t: 'event', name: 'stats', data: this.stats() });
    }, tuning.statsIntervalMs);
    this.statsTimer.unref();
  }

  static async create(opts: StagingWorkerOptions): Promise<StagingWorker> {
    const tuning: WorkerTuning = { ...DEFAULT_TUNING, ...(opts.tuning ?? {}) };
    if (!Number.isSafeInteger(tuning.segmentSize) || tuning.segmentSize < 4096) throw new RangeError(`segment size ${tuning.segmentSize} must be an integer ≥ 4096`);
    tuning.readAhead = Math.max(tuning.segmentSize, Math.min(tuning.readAhead, Math.floor(opts.cacheSize / 4)));
    tuning.maxChunk = Math.max(1, tuning.maxChunk);
    const log = opts.log ?? nullLog;
    const cache = await SegmentCache.open({ dir: opts.cacheDir, capacity: opts.cacheSize, segmentSize: tuning.segmentSize, log });
    let worker: StagingWorker | undefined;
    const scheduler = await DriveScheduler.create(opts.library, {
      // a cartridge clients play from, or one a queued loadedOnly recall will read from, is in use
      // (no idle unload); a swap takes a recall's cartridge before any a client plays from
      inUse: (label) => (worker?.reads.streaming(label) ?? false) || (worker?.recallHolds.held(label) ?? false),
      swapLoss: (label) => Math.max(worker?.reads.swapLoss(label) ?? 0, worker?.recallHolds.held(label) ? RECALL_HOLD_LOSS : 0),
      admissionTimeoutMs: opts.admissionTimeoutMs,
      idleUnloadMs: opts.idleUnloadMs,
      retryAfter: Math.max(5, Math.min(120, Math.round(opts.admissionTimeoutMs / 2000))),
      log,
    });
    const w = new StagingWorker(opts, opts.library, cache, scheduler, tuning, log);
    worker = w;
    await w.loadNeeded();
    await w.checkCacheSpace();
    return w;
  }

  /** Serves one connection (socket, socketpair end or any duplex byte stream). */
  attach(stream: Duplex): Session {
    const s = new Session(this, stream);
    this.sessions.add(s);
    stream.once('close', () => {
      this.sessions.delete(s);
      s.closed();
    });
    return s;
  }

  /** Listens on a unix socket path (external stager). */
  async listen(path: string): Promise<Server> {
    const server = createServer((sock) => {
      this.attach(sock);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.push(server);
    return server;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.statsTimer) clearInterval(this.statsTimer);
    for (const srv of this.servers) srv.close();
    for (const s of [...this.sessions]) s.destroy();
    this.scheduler.close();
    // cancel the requests, wait for passes to give back their drives (bounded)
    await this.reads.close();
    await this.cache.close();
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = { ...this.counters, ...this.scheduler.counters, evictions: this.cache.evictions };
    const use = this.cache.use();
    out.cacheUsed = use.used;
    out.cacheReserved = use.reserved;
    out.cacheSegments = use.segments;
    out.activeRequests = this.reads.activeRequests();
    out.queueLength = this.scheduler.queue().length;
    out.recallHolds = this.recallHolds.labels().length;
    const t = this.lib.stats();
    for (const [k, v] of Object.entries(t)) if (typeof v === 'number') out['lib' + k[0]!.toUpperCase() + k.slice(1)] = v;
    return out;
  }

  async status(): Promise<Record<string, unknown>> {
    const drives = await Promise.all(
      this.scheduler.drives().map(async (d) => {
        const st = await this.lib.drives[d.index]!.status().catch(() => undefined);
        return { ...d, position: st?.position?.block, ready: st?.ready ?? false };
      }),
    );
    return {
      pid: process.pid,
      protocol: PROTOCOL_VERSION,
      uptimeMs: Date.now() - this.started,
      library: this.lib.kind,
      drives,
      queue: this.scheduler.queue(),
      cache: { ...this.cache.use(), dir: this.cache.dir, segmentSize: this.cache.segmentSize },
      needed: this.scheduler.neededCartridges(),
      recallHolds: this.recallHolds.labels(),
      flagged: [...this.flagged.values()],
      counters: this.stats(),
      queueWait: { ...this.queueWait, counts: [...this.queueWait.counts] },
      sandbox: this.opts.sandbox,
    };
  }

  /** Warns when cache_size cannot fit in the cache file system (free space plus what is cached). */
  private async checkCacheSpace(): Promise<void> {
    const free = await this.reads.cacheFree();
    if (free === undefined) return;
    const cached = this.cache.use().used;
    if (this.opts.cacheSize > free + cached) {
      this.log.warn(
        { dir: this.cache.dir, cacheSize: this.opts.cacheSize, freeBytes: free, cachedBytes: cached },
        `cache_size (${this.opts.cacheSize} bytes) does not fit in the file system of ${this.cache.dir}: ${free} bytes free and ${cached} cached; reads will continue uncached when it fills up`,
      );
    }
  }

  /** @internal Test hook: cache writes fail with `errno` after `after` more bytes. */
  injectCacheError(errno: string, after: number): void {
    this.reads.injectCacheError(errno, after);
  }

  /** @internal Test hook: the next `count` cache segment syncs fail with `errno`. */
  injectSyncError(errno: string, count: number): void {
    this.reads.injectSyncError(errno, count);
  }

  get testHooks(): boolean {
    return this.opts.testHooks === true;
  }

  get jobIdleReleaseMs(): number {
    return this.tuning.jobIdleReleaseMs;
  }

  /** @internal */
  jobAdmissionTimeoutMs(): number {
    return this.tuning.jobAdmissionTimeoutMs ?? this.opts.admissionTimeoutMs * 10;
  }

  hello(): WorkerMessage {
    const m: WorkerMessage = {
      t: 'hello',
      version: PROTOCOL_VERSION,
      pid: process.pid,
      cacheDir: this.cache.dir,
      segmentSize: this.tuning.segmentSize,
      library: { kind: this.lib.kind, drives: this.lib.drives.map((d) => ({ name: d.name, index: d.index })), ...(this.lib.generation ? { generation: this.lib.generation } : {}) },
    };
    if (this.opts.sandbox) m.sandbox = this.opts.sandbox;
    return m;
  }

  broadcast(m: WorkerMessage): void {
    for (const s of this.sessions) s.send(m);
  }

  touchStats(): void {
    this.statsDirty = true;
  }

  // ---- "needed" offline cartridges, kept for the operator's `tape ls` ----------------------------

  private async persistNeeded(): Promise<void> {
    await writeNeededCartridges(this.cache.dir, this.scheduler.neededCartridges(), this.log);
  }

  private async loadNeeded(): Promise<void> {
    // the list is rebuilt from requests; an old file is cleared so it never shows stale needs
    await this.persistNeeded();
  }
}
