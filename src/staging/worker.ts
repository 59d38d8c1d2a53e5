// The staging worker: owns the tape library and the staging cache, serves read
// requests of the server (one or more connections) and the remote TapeLibrary
// of archive/recall jobs. It never speaks HTTP or UPnP.
//
// Read path of one request for bytes [start, end) of an item (DESIGN.md §3):
//
//   for each segment of the range, in order:
//     complete in the cache          → announce it (cache hit, no tape)
//     being written by another pass  → follow its progress (coalescing: one tape read)
//     otherwise                      → a *pass*: reserve a drive (scheduler), mount if
//                                      needed, locate only when the drive is not already
//                                      at the block, read blocks and write them into the
//                                      segment files, announcing progress as it lands
//
// A pass starts with ONE block (the client's first byte comes after mount +
// locate + one block) and doubles its read size up to `maxChunk`. It keeps one
// drive read in flight while it writes the previous one, so the drive streams
// while the worker works. It reads ahead of the consumer by up to `readAhead`
// bytes (the server acks what it has taken), then releases the drive; the
// cartridge stays loaded and positioned, so resuming costs no locate. Every byte
// a pass reads lands in a segment (never discarded), so a pass always stops on a
// block boundary and a later pass resumes without moving the tape.

import { EventEmitter } from 'node:events';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { readFile, rename, statfs, writeFile, type FileHandle } from 'node:fs/promises';
import { constants as FS } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { isTapeError, TapeError, type ReadResult, type TapeDrive, type TapeLibrary } from '../tape/types.js';
import { SegmentCache, segmentExtent, segmentFile } from './cache.js';
import { DriveScheduler, type DriveLease } from './scheduler.js';
import { nullLog, type WorkerLog } from './log.js';
import {
  FrameDecoder,
  PROTOCOL_VERSION,
  QUEUE_WAIT_BUCKETS,
  StagerError,
  checkClientMessage,
  encodeFrame,
  toWireError,
  type ClientMessage,
  type ItemRef,
  type Priority,
  type SandboxInfo,
  type WireError,
  type WorkerMessage,
} from './protocol.js';

export interface WorkerTuning {
  /** Cache segment size in bytes (default 4 MiB). */
  segmentSize: number;
  /** How far a pass reads ahead of what the server has taken (default 32 MiB, at most a quarter of the cache). */
  readAhead: number;
  /** Largest single drive read in bytes (default 4 MiB). */
  maxChunk: number;
  /** Retries of a block that fails to read, each after re-positioning (default 2). */
  readRetries: number;
  /** A job's drive lease is given back after this long without an operation (default 10 s). */
  jobIdleReleaseMs: number;
  /** Admission timeout of job drive requests (default: 10 × the playback one). */
  jobAdmissionTimeoutMs?: number;
  /** Minimum interval of the periodic stats event (default 1 s). */
  statsIntervalMs: number;
}

export const DEFAULT_TUNING: WorkerTuning = {
  segmentSize: 4 * 1024 * 1024,
  readAhead: 32 * 1024 * 1024,
  maxChunk: 4 * 1024 * 1024,
  readRetries: 2,
  jobIdleReleaseMs: 10_000,
  statsIntervalMs: 1000,
};

export interface StagingWorkerOptions {
  library: TapeLibrary;
  cacheDir: string;
  cacheSize: number;
  /** Admission timeout of playback requests (ms). */
  admissionTimeoutMs: number;
  /** Idle drive unload (ms; 0 = never). */
  idleUnloadMs: number;
  tuning?: Partial<WorkerTuning>;
  log?: WorkerLog;
  /** Honour `debug` messages (tests only). */
  testHooks?: boolean;
  /** What the sandbox restricts (reported in hello and status). */
  sandbox?: SandboxInfo;
}

export interface FlaggedItem {
  itemId: string;
  label: string;
  block?: number;
  message: string;
  at: number;
}

interface WorkerCounters {
  requests: number;
  prefetches: number;
  cacheHits: number;
  cacheMisses: number;
  coalesced: number;
  passes: number;
  locates: number;
  tapeReads: number;
  tapeBytesRead: number;
  /** Pre-stage requests (the next items of a container, at prefetch priority) and the tape bytes they read. */
  prestages: number;
  prestagedBytes: number;
  segmentsWritten: number;
  readRetries: number;
  readErrors: number;
  flaggedItems: number;
  partialDrops: number;
  cacheFull: number;
  protocolErrors: number;
  /** Read requests failed because passes made no progress (a bug guard; should stay 0). */
  stalls: number;
  /** Cache writes that failed (ENOSPC, EIO, EROFS ...). */
  cacheWriteErrors: number;
  /** Read requests that continued uncached after a cache write error. */
  uncachedReads: number;
  /** Bytes sent uncached, straight from tape. */
  uncachedBytes: number;
}

// ---- fills: segments being written ------------------------------------------------------------

type FillState = 'writing' | 'paused' | 'complete' | 'failed';

class Fill {
  valid = 0;
  state: FillState = 'paused';
  fh: FileHandle | undefined;
  writer: Pass | undefined;
  error: WireError | undefined;
  /** Finalization (sync + commit) in progress. */
  finalizing: Promise<void> | undefined;
  constructor(
    readonly item: ItemState,
    readonly seg: number,
    readonly start: number,
    readonly len: number,
  ) {}
}

interface ItemState {
  ref: ItemRef;
  fills: Map<number, Fill>;
  requests: Set<ReadReq>;
  /** Passes waiting for a drive or reading: others follow them instead of queueing a second read. */
  passes: Set<{ from: number; owner: ReadReq }>;
}

class ReadReq {
  readonly ac = new AbortController();
  consumed: number;
  /** Progress announced per segment. */
  readonly sent = new Map<number, { valid: number; complete: boolean }>();
  readonly leased = new Set<number>();
  readonly missed = new Set<number>();
  readonly s0: number;
  readonly s1: number;
  private wakers: (() => void)[] = [];
  finished = false;
  /** A pre-stage of a container's next item (counted apart). */
  prestage = false;
  /** Delivering uncached (`data` messages): the cache could not be written. */
  uncached = false;

  constructor(
    readonly session: Session,
    readonly id: number,
    readonly item: ItemState,
    readonly start: number,
    readonly end: number,
    readonly priority: Priority,
    readonly notify: boolean,
    segmentSize: number,
  ) {
    this.consumed = start;
    this.s0 = Math.floor(start / segmentSize);
    this.s1 = Math.floor((end - 1) / segmentSize);
  }

  /** Resolves at the next wake() or when cancelled. */
  waitChange(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ac.signal.aborted) return resolve();
      this.wakers.push(resolve);
    });
  }

  wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }
}

interface Pass {
  owner: ReadReq;
  lease: DriveLease;
}

/** A drive read issued and not yet processed: `n` blocks from block `at`. */
interface Queued {
  at: number;
  n: number;
  p: Promise<ReadResult>;
}

/** Most uncached bytes a request may have in flight beyond what the server acknowledged. */
const UNCACHED_WINDOW = 8 * 1024 * 1024;
/** Largest `data` frame of an uncached request. */
const DATA_FRAME = 1024 * 1024;

/**
 * A failed cache file operation (ENOSPC, EDQUOT, EIO, EROFS, ...: whatever the file system
 * refuses; the tape is fine) as the CACHE_IO error that switches its reads to uncached delivery.
 */
function cacheIoError(err: unknown, what: string): StagerError {
  const errno = (err as NodeJS.ErrnoException)?.code ?? 'EIO';
  return new StagerError({ code: 'CACHE_IO', message: `cannot ${what}: ${(err as Error)?.message ?? String(err)}`, errno });
}

/** Drive reads in a row that may return no data (and no mark) before a pass fails. */
const MAX_EMPTY_READS = 3;

/** Passes in a row that may leave a segment unchanged before its read request fails with STALLED. */
const MAX_IDLE_PASSES = 3;

/** Reads kept queued in the drive during a pass (2: the drive starts the next one the moment it finishes one). */
const READ_DEPTH = 2;

// ---- the worker ---------------------------------------------------------------------------------

export class StagingWorker extends EventEmitter {
  readonly lib: TapeLibrary;
  readonly cache: SegmentCache;
  readonly scheduler: DriveScheduler;
  readonly tuning: WorkerTuning;
  readonly log: WorkerLog;
  readonly counters: WorkerCounters = {
    requests: 0,
    prefetches: 0,
    cacheHits: 0,
    cacheMisses: 0,
    coalesced: 0,
    passes: 0,
    locates: 0,
    tapeReads: 0,
    tapeBytesRead: 0,
    prestages: 0,
    prestagedBytes: 0,
    segmentsWritten: 0,
    readRetries: 0,
    readErrors: 0,
    flaggedItems: 0,
    partialDrops: 0,
    cacheFull: 0,
    protocolErrors: 0,
    stalls: 0,
    cacheWriteErrors: 0,
    uncachedReads: 0,
    uncachedBytes: 0,
  };
  readonly flagged = new Map<string, FlaggedItem>();
  readonly sessions = new Set<Session>();
  private readonly items = new Map<string, ItemState>();
  private readonly started = Date.now();
  private closed = false;
  private servers: Server[] = [];
  private statsTimer: NodeJS.Timeout | undefined;
  private statsDirty = false;
  /** How long tape reads waited for admission (buckets: QUEUE_WAIT_BUCKETS, counts not cumulative). */
  private readonly queueWait = { buckets: QUEUE_WAIT_BUCKETS, counts: new Array<number>(QUEUE_WAIT_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
  private syncChain: Promise<void> = Promise.resolve();
  /** A cache write failed and was logged; cleared when a segment is committed again (log once per episode). */
  private cacheTrouble = false;
  /** Test hook: cache writes fail with this errno after `left` more bytes. */
  private cacheFault: { errno: string; left: number } | undefined;

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
    cache.dropPartials = (need) => this.dropPartials(need);
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
    const scheduler = await DriveScheduler.create(opts.library, {
      admissionTimeoutMs: opts.admissionTimeoutMs,
      idleUnloadMs: opts.idleUnloadMs,
      retryAfter: Math.max(5, Math.min(120, Math.round(opts.admissionTimeoutMs / 2000))),
      log,
    });
    const w = new StagingWorker(opts, opts.library, cache, scheduler, tuning, log);
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
    for (const it of this.items.values()) for (const r of it.requests) r.ac.abort();
    // wait for passes to give back their drives (bounded)
    const deadline = Date.now() + 10_000;
    while ([...this.items.values()].some((it) => [...it.fills.values()].some((f) => f.writer || f.finalizing)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.cache.close();
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = { ...this.counters, ...this.scheduler.counters, evictions: this.cache.evictions };
    const use = this.cache.use();
    out.cacheUsed = use.used;
    out.cacheReserved = use.reserved;
    out.cacheSegments = use.segments;
    out.activeRequests = [...this.items.values()].reduce((n, it) => n + it.requests.size, 0);
    out.queueLength = this.scheduler.queue().length;
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
      flagged: [...this.flagged.values()],
      counters: this.stats(),
      queueWait: { ...this.queueWait, counts: [...this.queueWait.counts] },
      sandbox: this.opts.sandbox,
    };
  }

  /** Warns when cache_size cannot fit in the cache file system (free space plus what is cached). */
  private async checkCacheSpace(): Promise<void> {
    const free = await this.cacheFree();
    if (free === undefined) return;
    const cached = this.cache.use().used;
    if (this.opts.cacheSize > free + cached) {
      this.log.warn(
        { dir: this.cache.dir, cacheSize: this.opts.cacheSize, freeBytes: free, cachedBytes: cached },
        `cache_size (${this.opts.cacheSize} bytes) does not fit in the file system of ${this.cache.dir}: ${free} bytes free and ${cached} cached; reads will continue uncached when it fills up`,
      );
    }
  }

  /** Free bytes of the cache file system (for an unprivileged user), or undefined. */
  private async cacheFree(): Promise<number | undefined> {
    try {
      const st = await statfs(this.cache.dir);
      return st.bavail * st.bsize;
    } catch {
      return undefined;
    }
  }

  /** A cache write failed: counted always, logged at warn once per episode (with errno and free space). */
  private async noteCacheError(w: WireError): Promise<void> {
    this.counters.cacheWriteErrors++;
    this.touchStats();
    if (this.cacheTrouble) {
      this.log.debug({ errno: w.errno, err: w.message }, 'cache write failed again');
      return;
    }
    this.cacheTrouble = true;
    const free = await this.cacheFree();
    this.log.warn(
      { dir: this.cache.dir, errno: w.errno, freeBytes: free, err: w.message },
      `cannot write the staging cache (${w.errno ?? 'error'}, ${free ?? 'unknown'} bytes free): reads continue straight from tape without caching`,
    );
  }

  /** @internal Test hook: cache writes fail with `errno` after `after` more bytes. */
  injectCacheError(errno: string, after: number): void {
    this.cacheFault = { errno, left: Math.max(0, after) };
  }

  hello(): WorkerMessage {
    const m: WorkerMessage = {
      t: 'hello',
      version: PROTOCOL_VERSION,
      pid: process.pid,
      cacheDir: this.cache.dir,
      segmentSize: this.tuning.segmentSize,
      library: { kind: this.lib.kind, drives: this.lib.drives.map((d) => ({ name: d.name, index: d.index })) },
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

  // ---- read requests --------------------------------------------------------------------------

  /** @internal Starts a read request; undefined when it was answered with an error at once. */
  startRead(session: Session, m: Extract<ClientMessage, { t: 'read' }>): ReadReq | undefined {
    let item = this.items.get(m.item.id);
    if (!item) {
      item = { ref: m.item, fills: new Map(), requests: new Set(), passes: new Set() };
      this.items.set(m.item.id, item);
    } else if (item.ref.tape.sha256 !== m.item.tape.sha256) {
      // other content under the same ID (re-archived after a change): the old segments must go,
      // but not while passes still write them
      if ([...item.fills.values()].some((f) => f.writer || f.finalizing) || item.passes.size > 0) {
        session.send({ t: 'error', id: m.id, error: { code: 'BUSY', message: `the archived copy of item ${m.item.id} changed while it was being read; retry`, retryAfter: 5 } });
        return undefined;
      }
      for (const f of [...item.fills.values()]) void this.dropFill(f);
      item.fills.clear();
      item.ref = m.item;
    } else {
      item.ref = m.item; // same content, maybe another copy: new passes read the location given now
    }
    this.cache.ensureItem(m.item.id, m.item.tape.sha256);
    const req = new ReadReq(session, m.id, item, m.start, m.end, m.priority, m.notify !== false, this.tuning.segmentSize);
    req.prestage = m.prestage === true;
    if (req.prestage) this.counters.prestages++;
    item.requests.add(req);
    if (m.priority === 'prefetch') this.counters.prefetches++;
    else this.counters.requests++;
    this.touchStats();
    void this.runRequest(req);
    return req;
  }

  /** @internal */
  ack(req: ReadReq, consumed: number): void {
    if (consumed <= req.consumed) return;
    req.consumed = Math.min(consumed, req.end);
    const S = this.tuning.segmentSize;
    for (const seg of [...req.leased]) {
      if ((seg + 1) * S <= req.consumed) {
        req.leased.delete(seg);
        this.cache.unlease(req.item.ref.id, seg);
      }
    }
    req.wake();
  }

  /** @internal End of a request: no more announcements, leases given back. */
  finish(req: ReadReq): void {
    if (req.finished) return;
    req.finished = true;
    req.ac.abort();
    req.wake();
    for (const seg of req.leased) this.cache.unlease(req.item.ref.id, seg);
    req.leased.clear();
    req.item.requests.delete(req);
    this.maybeForgetItem(req.item);
  }

  private maybeForgetItem(item: ItemState): void {
    if (item.requests.size === 0 && item.fills.size === 0 && item.passes.size === 0) this.items.delete(item.ref.id);
  }

  private async runRequest(req: ReadReq): Promise<void> {
    const item = req.item;
    const id = item.ref.id;
    const size = item.ref.tape.size;
    const S = this.tuning.segmentSize;
    try {
      for (let seg = req.s0; seg <= req.s1; seg++) {
        const { len } = segmentExtent(size, S, seg);
        let idlePasses = 0; // passes in a row after which the segment looked exactly as before
        for (;;) {
          if (req.ac.signal.aborted) return;
          const hit = this.cache.lookup(id, seg);
          if (hit) {
            if (!req.missed.has(seg)) this.counters.cacheHits++;
            this.announce(req, seg, hit.len, hit.len, true);
            break;
          }
          const fill = item.fills.get(seg);
          if (fill && fill.state === 'complete') {
            this.announce(req, seg, fill.valid, len, true);
            break;
          }
          if (fill && fill.valid > 0) this.announce(req, seg, fill.valid, len, false);
          if (fill && fill.state === 'writing' && fill.writer && fill.writer.owner !== req) {
            if (!req.missed.has(seg)) {
              req.missed.add(seg);
              this.counters.cacheMisses++;
              this.counters.coalesced++;
            }
            await req.waitChange();
            if ((fill.state as FillState) === 'failed') throw new StagerError(fill.error!);
            continue;
          }
          // a pass of another request that will write this segment (waiting for its drive or reading): follow it
          const leader = [...item.passes].find((p) => p.owner !== req && !p.owner.ac.signal.aborted && p.from <= seg && p.owner.s1 >= seg);
          if (leader) {
            if (!req.missed.has(seg)) {
              req.missed.add(seg);
              this.counters.cacheMisses++;
              this.counters.coalesced++;
            }
            await req.waitChange();
            continue;
          }
          if (!req.missed.has(seg)) {
            req.missed.add(seg);
            this.counters.cacheMisses++;
          }
          // tape: respect the read-ahead window (resume when half of it was consumed); after any
          // wait, look at the segment afresh
          if (req.notify && seg * S > req.consumed + this.tuning.readAhead / 2) {
            await req.waitChange();
            continue;
          }
          // announce the pass before the first await, so requests arriving meanwhile follow it
          const marker = { from: seg, owner: req };
          item.passes.add(marker);
          const before = this.segmentMark(item, seg);
          try {
            await this.waitForRoom(req, len);
            await this.runPass(req, seg);
          } finally {
            item.passes.delete(marker);
            for (const r of item.requests) r.wake();
          }
          // never a loop without progress: a pass that neither wrote a byte of this segment nor
          // saw anyone else do so is a bug; fail the request (→ 503) rather than spin on the drive
          if (this.segmentMark(item, seg) === before && !req.ac.signal.aborted) {
            if (++idlePasses >= MAX_IDLE_PASSES) {
              this.counters.stalls++;
              this.log.error({ item: id, seg, label: item.ref.tape.label, passes: idlePasses }, 'tape pass made no progress: failing the read request');
              throw new StagerError({ code: 'STALLED', message: `reading item ${id} from tape made no progress (segment ${seg}); retry`, retryAfter: 10 });
            }
          } else idlePasses = 0;
        }
      }
      if (!req.ac.signal.aborted) req.session.send({ t: 'done', id: req.id });
    } catch (err) {
      if (req.ac.signal.aborted) return; // cancelled by the server, or its connection is gone
      let w = toWireError(err);
      // the cache cannot take the bytes (a write error; or no room once bytes were announced):
      // never cut the response, continue straight from tape
      if (req.notify && (w.code === 'CACHE_IO' || (w.code === 'CACHE_FULL' && req.sent.size > 0))) {
        try {
          await this.runUncached(req);
          if (!req.ac.signal.aborted) req.session.send({ t: 'done', id: req.id });
          return;
        } catch (e) {
          if (req.ac.signal.aborted) return;
          w = toWireError(e);
        }
      }
      if (w.code === 'INTERNAL') this.log.error({ item: id, err: w.message }, 'read request failed');
      req.session.send({ t: 'error', id: req.id, error: w });
    } finally {
      if (!req.notify) this.finish(req); // prefetches end by themselves
    }
  }

  /** What is known about a segment's bytes (changes whenever any pass makes progress on it). */
  private segmentMark(item: ItemState, seg: number): string {
    if (this.cache.has(item.ref.id, seg)) return 'cached';
    const f = item.fills.get(seg);
    return f ? `${f.state}:${f.valid}:${f.writer ? 'w' : ''}${f.finalizing ? 'f' : ''}` : 'none';
  }

  /** Sends progress of a segment to one request (leasing it the first time). */
  private announce(req: ReadReq, seg: number, valid: number, len: number, complete: boolean): void {
    if (!req.notify || req.finished || req.uncached) return;
    const prev = req.sent.get(seg);
    if (prev && (prev.complete || (prev.valid >= valid && !complete))) return;
    if (!prev && valid === 0 && complete) return;
    req.sent.set(seg, { valid, complete });
    const id = req.item.ref.id;
    if (!req.leased.has(seg) && (seg + 1) * this.tuning.segmentSize > req.consumed) {
      req.leased.add(seg);
      this.cache.lease(id, seg);
    }
    req.session.send({ t: 'seg', id: req.id, seg, file: segmentFile(id, seg), valid, len, complete });
  }

  /** Tells every interested request about a fill's progress and wakes their drivers. */
  private fillChanged(f: Fill): void {
    for (const r of f.item.requests) {
      if (f.seg >= r.s0 && f.seg <= r.s1 && f.valid > 0 && f.state !== 'failed') this.announce(r, f.seg, f.valid, f.len, f.state === 'complete');
      r.wake();
    }
  }

  private async waitForRoom(req: ReadReq, len: number): Promise<void> {
    if (this.cache.couldFit(len)) return;
    const deadline = Date.now() + this.opts.admissionTimeoutMs;
    while (!this.cache.couldFit(len)) {
      req.ac.signal.throwIfAborted();
      const left = deadline - Date.now();
      if (left <= 0) {
        this.counters.cacheFull++;
        throw new StagerError({ code: 'CACHE_FULL', message: 'the staging cache is full (pinned items and segments in use fill it)', retryAfter: 30 });
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          req.ac.signal.removeEventListener('abort', done);
          this.cache.off('space', done);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 1000));
        req.ac.signal.addEventListener('abort', done, { once: true });
        this.cache.on('space', done);
      });
    }
  }

  // ---- a pass over the tape -------------------------------------------------------------------

  private async runPass(req: ReadReq, fromSeg: number): Promise<void> {
    const item = req.item;
    const loc = item.ref.tape;
    const S = this.tuning.segmentSize;
    const bs = loc.blockSize;
    const existing = item.fills.get(fromSeg);
    const startPos = fromSeg * S + (existing?.valid ?? 0);
    const abs0 = loc.offset + startPos;
    const block0 = loc.block + Math.floor(abs0 / bs);
    const lease = await this.scheduler.acquire({ label: loc.label, block: block0, priority: req.priority, signal: req.ac.signal, owner: `item ${item.ref.id}` });
    const pass: Pass = { owner: req, lease };
    // someone may have filled the segment while we waited for the drive
    const now = item.fills.get(fromSeg);
    if (this.cache.has(item.ref.id, fromSeg) || (now && (now.state === 'complete' || (now.state === 'writing' && now.writer))) || (now?.valid ?? 0) !== (existing?.valid ?? 0)) {
      lease.release();
      return;
    }
    this.counters.passes++;
    const drive = lease.drive;
    let current: Fill | undefined;
    let inflight: Queued[] | undefined;
    try {
      const st = await drive.status();
      if (st.blockSize && st.blockSize !== bs) {
        throw new StagerError({ code: 'FORMAT', message: `cartridge ${loc.label} has ${st.blockSize}-byte blocks, the catalog says ${bs}`, label: loc.label });
      }
      if (st.label && st.label !== loc.label) {
        throw new StagerError({ code: 'INTERNAL', message: `drive ${drive.index} holds ${st.label}, expected ${loc.label}`, label: loc.label });
      }
      // while the tape moves: create the first segment file and tell the readers, so the
      // server opens it now rather than after the first block arrived
      const firstSeg = Math.floor(startPos / S);
      const first = this.claimFill(item, firstSeg, pass, startPos).then((f) => {
        if (f) for (const r of item.requests) if (f.seg >= r.s0 && f.seg <= r.s1) this.announce(r, f.seg, f.valid, f.len, false);
        return f;
      });
      first.catch(() => undefined);
      try {
        if ((await drive.tell()) !== block0) {
          await drive.locate(block0);
          this.counters.locates++;
        }
      } finally {
        current = await first.catch(() => undefined);
      }
      current = await first;
      if (!current) {
        const f = item.fills.get(firstSeg);
        if (this.cache.has(item.ref.id, firstSeg) || f) return; // someone else has it: follow them
        throw new StagerError({ code: 'CACHE_FULL', message: 'the staging cache is full (pinned items and segments in use fill it)', retryAfter: 30 });
      }
      const endBlock = loc.block + Math.ceil((loc.offset + loc.size) / bs); // exclusive
      const id = item.ref.id;
      let nextBlock = block0; // where the drive is (the next read starts there)
      let pos = startPos; // item offset of the next byte to write
      let skip = abs0 % bs; // bytes of the next block that precede pos
      let chunk = 1;
      const maxBlocks = Math.max(1, Math.floor(this.tuning.maxChunk / bs));
      const offsetOf = (b: number) => (b - loc.block) * bs - loc.offset; // item offset of block b's first byte
      const blocksTo = (x: number) => Math.ceil((loc.offset + x) / bs) + loc.block - nextBlock; // blocks from nextBlock to cover offsets < x
      const limit = () => {
        const segEnd = (x: number) => Math.min(loc.size, Math.ceil(x / S) * S);
        const wantEnd = segEnd(req.end);
        return req.notify ? Math.min(wantEnd, segEnd(req.consumed + this.tuning.readAhead)) : wantEnd;
      };
      const blocked = (seg: number) => {
        if (current && current.seg === seg) return false;
        const f = item.fills.get(seg);
        return this.cache.has(id, seg) || f?.state === 'complete' || f?.finalizing !== undefined || (f?.writer !== undefined && f.writer !== pass);
      };
      /** The next drive read, or undefined when the pass should stop. */
      const issue = (): Queued | undefined => {
        if (req.ac.signal.aborted || this.closed || nextBlock >= endBlock) return undefined;
        const lim = limit();
        // the first byte of this read that the pass keeps: the first block of a pass may begin
        // before startPos (in the previous segment, which can be complete: those bytes are
        // skipped, not written), so only segments from startPos on can block the read
        const from = Math.max(startPos, offsetOf(nextBlock));
        if (from >= lim) return undefined;
        let n = Math.min(chunk, maxBlocks, endBlock - nextBlock, blocksTo(lim));
        // never read into a segment that is complete or that another pass writes
        const to = Math.min(loc.size, offsetOf(nextBlock + n));
        for (let sg = Math.floor(from / S); sg * S < to; sg++) {
          if (!blocked(sg)) continue;
          if (sg * S <= from) return undefined;
          n = Math.min(n, blocksTo(sg * S));
          break;
        }
        if (n <= 0) return undefined;
        chunk = Math.min(chunk * 2, maxBlocks);
        const q: Queued = { at: nextBlock, n, p: drive.readBlocks(n) };
        q.p.catch(() => undefined); // handled in order below
        nextBlock += n;
        return q;
      };
      /** Keeps READ_DEPTH reads queued in the drive, so it streams while this loop writes. */
      const topUp = () => {
        while (queue.length < READ_DEPTH) {
          const q = issue();
          if (!q) break;
          queue.push(q);
        }
      };
      /** Waits for the queued reads and forgets them (after a failure their positions are unknown). */
      const drain = async () => {
        const qs = queue.splice(0);
        for (const q of qs) await q.p.catch(() => undefined);
      };
      const queue: Queued[] = [];
      inflight = queue;
      // the first read alone: its bytes go out before the drive gets more work queued
      let firstRead = true;
      let emptyReads = 0;
      const q0 = issue();
      if (q0) queue.push(q0);
      while (queue.length) {
        const head = queue.shift()!;
        let r: ReadResult;
        try {
          r = await head.p;
        } catch (err) {
          if (!isTapeError(err, 'MEDIUM_ERROR')) throw err;
          await drain();
          r = await this.retryRead(drive, head, err, loc.label);
          nextBlock = head.at + head.n;
        }
        const got = r.data.length / bs + (r.mark === 'filemark' ? 1 : 0);
        if (got !== head.n) {
          // a short read: the reads queued behind it started that much earlier than planned
          for (const q of queue) q.at += got - head.n;
          nextBlock += got - head.n;
        }
        if (r.data.length === 0) {
          if (r.mark) throw new StagerError({ code: 'FORMAT', message: `${loc.label}: ${r.mark} inside item ${id} at block ${head.at}`, label: loc.label });
          // a read may deliver nothing without a reason: read again, but not forever
          if (++emptyReads > MAX_EMPTY_READS) {
            throw new StagerError({ code: 'IO', message: `${loc.label}: ${emptyReads} reads in a row returned no data at block ${head.at}`, label: loc.label, block: head.at });
          }
          topUp();
          continue;
        }
        emptyReads = 0;
        this.counters.tapeReads++;
        this.counters.tapeBytesRead += r.data.length;
        if (req.prestage) this.counters.prestagedBytes += r.data.length;
        // keep the drive busy: queue the next chunk before writing this one
        if (!r.mark && !firstRead) topUp();
        let off = skip;
        skip = 0;
        let stop = false;
        const data = r.data;
        while (off < data.length && pos < loc.size) {
          const seg = Math.floor(pos / S);
          if (!current || current.seg !== seg) {
            current = await this.claimFill(item, seg, pass, pos);
            if (!current) {
              stop = true;
              break;
            }
          }
          const within = pos - current.start;
          if (within < current.valid) {
            // already there (written by an earlier pass): skip it
            const k = Math.min(current.valid - within, data.length - off);
            off += k;
            pos += k;
            continue;
          }
          const n = Math.min(data.length - off, current.len - within);
          await this.writeFully(current, data, off, n, within);
          current.valid += n;
          off += n;
          pos += n;
          if (current.valid === current.len) {
            this.completeFill(current);
            current = undefined;
          } else this.fillChanged(current);
        }
        if (r.mark && pos < loc.size && !stop) {
          throw new StagerError({ code: 'FORMAT', message: `${loc.label}: ${r.mark} inside item ${id} (${loc.size - pos} bytes short)`, label: loc.label });
        }
        if (stop || r.mark) {
          // the next segment is someone else's: let queued reads finish, their bytes are not needed
          await drain();
          break;
        }
        if (firstRead) {
          firstRead = false;
          topUp();
        }
        this.touchStats();
      }
      if (current) await this.pauseFill(current);
      current = undefined;
    } catch (err) {
      for (const q of inflight?.splice(0) ?? []) await q.p.catch(() => undefined);
      const w = toWireError(err);
      if (current) {
        const f = current;
        current = undefined;
        await this.failFill(f, w);
      }
      if (w.code === 'MEDIUM_ERROR') this.flag(item.ref, w);
      if (w.code === 'CACHE_IO') await this.noteCacheError(w);
      throw err;
    } finally {
      lease.release();
      this.maybeForgetItem(item);
    }
  }

  /**
   * A queued read failed with a medium error: re-position at the read's first block and try
   * again, `readRetries` times; then fail with a clear error (the item gets flagged).
   */
  private async retryRead(drive: TapeDrive, q: Queued, first: TapeError, label: string): Promise<ReadResult> {
    let last = first;
    for (let attempt = 1; attempt <= this.tuning.readRetries; attempt++) {
      this.counters.readRetries++;
      this.log.warn({ label, block: last.block ?? q.at, attempt }, 'tape read error: retrying');
      try {
        await drive.locate(q.at);
        return await drive.readBlocks(q.n);
      } catch (err) {
        if (!isTapeError(err, 'MEDIUM_ERROR')) throw err;
        last = err;
      }
    }
    this.counters.readErrors++;
    const block = last.block ?? q.at;
    throw new TapeError('MEDIUM_ERROR', `read error on cartridge ${label} at block ${block} after ${this.tuning.readRetries} retries: ${last.message}`, {
      label,
      block,
      ...(last.drive !== undefined ? { drive: last.drive } : {}),
    });
  }

  /**
   * Writes `n` bytes of `data` from `off` at `at` in a fill's segment file, all of them (a short
   * write, as on a file system that fills up, is continued; a write of nothing fails), or throws
   * CACHE_IO.
   */
  private async writeFully(f: Fill, data: Buffer, off: number, n: number, at: number): Promise<void> {
    let done = 0;
    try {
      while (done < n) {
        const fault = this.cacheFault;
        if (fault && fault.left < n - done) throw Object.assign(new Error(`${fault.errno} (injected)`), { code: fault.errno });
        const { bytesWritten } = await f.fh!.write(data, off + done, n - done, at + done);
        if (fault) fault.left -= bytesWritten;
        if (bytesWritten <= 0) throw Object.assign(new Error('the file system wrote nothing'), { code: 'ENOSPC' });
        done += bytesWritten;
      }
    } catch (err) {
      throw cacheIoError(err, `write cache segment ${segmentFile(f.item.ref.id, f.seg)}`);
    }
  }

  /**
   * Serves the rest of a request straight from tape, without the cache (which could not be
   * written): from the start of the first segment not announced complete, `data` messages in
   * order, at most UNCACHED_WINDOW bytes beyond the server's acks, the drive leased per burst.
   */
  private async runUncached(req: ReadReq): Promise<void> {
    const item = req.item;
    const loc = item.ref.tape;
    const id = item.ref.id;
    const S = this.tuning.segmentSize;
    const bs = loc.blockSize;
    let pos = req.start;
    for (let seg = req.s0; seg <= req.s1 && req.sent.get(seg)?.complete; seg++) pos = Math.min(req.end, (seg + 1) * S);
    // leases stay until the server acks past them: it may still read the segments before `pos`
    // (and the valid bytes of the failed one, whose file is kept while leased)
    req.uncached = true;
    this.counters.uncachedReads++;
    const window = Math.max(bs, Math.min(this.tuning.readAhead, UNCACHED_WINDOW));
    const maxBlocks = Math.max(1, Math.floor(this.tuning.maxChunk / bs));
    const endBlock = loc.block + Math.ceil((loc.offset + req.end) / bs); // exclusive
    while (pos < req.end) {
      req.ac.signal.throwIfAborted();
      if (pos >= req.consumed + window) {
        await req.waitChange();
        continue;
      }
      const abs = loc.offset + pos;
      let next = loc.block + Math.floor(abs / bs);
      const lease = await this.scheduler.acquire({ label: loc.label, block: next, priority: req.priority, signal: req.ac.signal, owner: `item ${id} (uncached)` });
      try {
        const drive = lease.drive;
        if ((await drive.tell()) !== next) {
          await drive.locate(next);
          this.counters.locates++;
        }
        let skip = abs % bs;
        let chunk = 1;
        let empty = 0;
        while (pos < req.end && pos < req.consumed + window && !req.ac.signal.aborted) {
          const n = Math.min(chunk, maxBlocks, endBlock - next);
          let r: ReadResult;
          try {
            r = await drive.readBlocks(n);
          } catch (err) {
            if (!isTapeError(err, 'MEDIUM_ERROR')) throw err;
            r = await this.retryRead(drive, { at: next, n, p: Promise.resolve({ data: Buffer.alloc(0) }) }, err, loc.label);
          }
          if (r.data.length === 0) {
            if (r.mark) throw new StagerError({ code: 'FORMAT', message: `${loc.label}: ${r.mark} inside item ${id} at block ${next}`, label: loc.label });
            if (++empty > MAX_EMPTY_READS) throw new StagerError({ code: 'IO', message: `${loc.label}: ${empty} reads in a row returned no data at block ${next}`, label: loc.label, block: next });
            continue;
          }
          empty = 0;
          this.counters.tapeReads++;
          this.counters.tapeBytesRead += r.data.length;
          next += Math.ceil(r.data.length / bs);
          const data = r.data.subarray(Math.min(skip, r.data.length), Math.min(r.data.length, skip + req.end - pos));
          skip = 0;
          for (let o = 0; o < data.length; o += DATA_FRAME) {
            req.session.send({ t: 'data', id: req.id, offset: pos + o }, data.subarray(o, Math.min(data.length, o + DATA_FRAME)));
          }
          pos += data.length;
          this.counters.uncachedBytes += data.length;
          this.touchStats();
          if (r.mark && pos < req.end) throw new StagerError({ code: 'FORMAT', message: `${loc.label}: ${r.mark} inside item ${id} (${req.end - pos} bytes short)`, label: loc.label });
          chunk = Math.min(chunk * 2, maxBlocks);
        }
      } catch (err) {
        const w = toWireError(err);
        if (w.code === 'MEDIUM_ERROR') this.flag(item.ref, w);
        throw err;
      } finally {
        lease.release();
      }
    }
  }

  /**
   * The fill of segment `seg` ready for this pass to write at item offset `pos`, or undefined
   * when the pass must stop (complete, another writer, no cache room, or a gap).
   */
  private async claimFill(item: ItemState, seg: number, pass: Pass, pos: number): Promise<Fill | undefined> {
    const id = item.ref.id;
    if (this.cache.has(id, seg)) return undefined;
    let f = item.fills.get(seg);
    if (f) {
      if (f.state === 'complete' || (f.writer && f.writer !== pass) || f.finalizing) return undefined;
      if (pos - f.start > f.valid) return undefined; // would leave a hole
      if (!f.fh) {
        try {
          f.fh = await open(this.cache.pathOf(id, seg), FS.O_WRONLY | FS.O_NOFOLLOW);
        } catch (err) {
          throw cacheIoError(err, `open cache segment ${segmentFile(id, seg)}`);
        }
      }
      f.writer = pass;
      f.state = 'writing';
      return f;
    }
    const { start, len } = segmentExtent(item.ref.tape.size, this.tuning.segmentSize, seg);
    if (pos !== start) return undefined; // a fresh segment must start at its beginning
    if (this.cache.isDoomed(id, seg)) {
      // a reader still reads the valid bytes of a failed fill of this segment: never truncate it
      throw new StagerError({ code: 'CACHE_IO', message: `cache segment ${segmentFile(id, seg)} failed and is still being read`, errno: 'EBUSY' });
    }
    if (!this.cache.reserve(len)) {
      this.counters.cacheFull++;
      return undefined;
    }
    f = new Fill(item, seg, start, len);
    item.fills.set(seg, f);
    try {
      f.fh = await this.cache.openForWrite(id, seg);
    } catch (err) {
      item.fills.delete(seg);
      this.cache.unreserve(len);
      throw cacheIoError(err, `create cache segment ${segmentFile(id, seg)}`);
    }
    f.writer = pass;
    f.state = 'writing';
    return f;
  }

  private completeFill(f: Fill): void {
    f.state = 'complete';
    f.writer = undefined;
    this.counters.segmentsWritten++;
    this.fillChanged(f);
    const fh = f.fh;
    f.fh = undefined;
    f.finalizing = (async () => {
      try {
        // one sync at a time: syncs must not take every I/O thread from the drive's reads
        const sync = this.syncChain.then(() => fh?.datasync());
        this.syncChain = sync.catch(() => undefined);
        await sync;
        await fh?.close();
        this.cache.commit(f.item.ref.id, f.seg, f.len);
        this.cacheTrouble = false;
      } catch (err) {
        this.log.error({ item: f.item.ref.id, seg: f.seg, err: (err as Error).message }, 'cannot finalize a cache segment');
        await fh?.close().catch(() => undefined);
        this.cache.unreserve(f.len);
        await this.cache.discard(f.item.ref.id, f.seg);
      } finally {
        f.finalizing = undefined;
        if (f.item.fills.get(f.seg) === f) f.item.fills.delete(f.seg);
        this.fillChanged(f);
        this.maybeForgetItem(f.item);
      }
    })();
  }

  private async pauseFill(f: Fill): Promise<void> {
    f.writer = undefined;
    f.state = 'paused';
    const fh = f.fh;
    f.fh = undefined;
    await fh?.close().catch(() => undefined);
    this.fillChanged(f);
  }

  private async failFill(f: Fill, error: WireError): Promise<void> {
    f.writer = undefined;
    f.state = 'failed';
    f.error = error;
    const fh = f.fh;
    f.fh = undefined;
    await fh?.close().catch(() => undefined);
    this.fillChanged(f);
    if (f.item.fills.get(f.seg) === f) f.item.fills.delete(f.seg);
    this.cache.unreserve(f.len);
    await this.cache.discardWhenFree(f.item.ref.id, f.seg);
  }

  private async dropFill(f: Fill): Promise<void> {
    if (f.writer || f.finalizing || f.state === 'complete') return;
    if (f.item.fills.get(f.seg) === f) f.item.fills.delete(f.seg);
    const fh = f.fh;
    f.fh = undefined;
    await fh?.close().catch(() => undefined);
    this.cache.unreserve(f.len);
    await this.cache.discard(f.item.ref.id, f.seg);
  }

  /** Drops paused partial segments nobody reads, oldest first, until `need` bytes are free. */
  private dropPartials(need: number): number {
    let freed = 0;
    for (const it of this.items.values()) {
      for (const f of [...it.fills.values()]) {
        if (freed >= need) return freed;
        if (f.state !== 'paused' || f.writer || [...it.requests].some((r) => r.leased.has(f.seg))) continue;
        freed += f.len;
        this.counters.partialDrops++;
        // synchronous bookkeeping so the caller sees the space at once
        it.fills.delete(f.seg);
        this.cache.unreserve(f.len);
        void this.cache.discard(it.ref.id, f.seg);
      }
    }
    return freed;
  }

  private flag(ref: ItemRef, w: WireError): void {
    const f: FlaggedItem = { itemId: ref.id, label: ref.tape.label, message: w.message, at: Date.now() };
    if (w.block !== undefined) f.block = w.block;
    if (!this.flagged.has(ref.id)) this.counters.flaggedItems++;
    this.flagged.set(ref.id, f);
    this.log.error({ item: ref.id, label: ref.tape.label, block: w.block, err: w.message }, `item ${ref.id} flagged: unreadable on ${ref.tape.label}`);
    this.broadcast({ t: 'event', name: 'flagged', data: { ...f } });
  }

  // ---- "needed" offline cartridges, kept for the operator's `tape ls` ----------------------------

  private async persistNeeded(): Promise<void> {
    const path = join(this.cache.dir, NEEDED_FILE);
    const tmp = path + '.tmp';
    try {
      await writeFile(tmp, JSON.stringify({ cartridges: this.scheduler.neededCartridges() }, null, 2) + '\n', { mode: 0o640 });
      await rename(tmp, path);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot write needed.json');
    }
  }

  private async loadNeeded(): Promise<void> {
    // the list is rebuilt from requests; an old file is cleared so it never shows stale needs
    await this.persistNeeded();
  }

  // ---- remote library (jobs) ------------------------------------------------------------------

  /** @internal */
  jobAdmissionTimeoutMs(): number {
    return this.tuning.jobAdmissionTimeoutMs ?? this.opts.admissionTimeoutMs * 10;
  }
}

export const NEEDED_FILE = 'needed.json';

/** Offline cartridges the stager was asked for (for `tapedeck tape ls`); [] when none or unknown. */
export async function readNeededCartridges(cacheDir: string): Promise<{ label: string; since: number; requests: number; lastItem?: string }[]> {
  try {
    const o = JSON.parse(await readFile(join(cacheDir, NEEDED_FILE), 'utf8')) as { cartridges?: unknown };
    return Array.isArray(o.cartridges) ? (o.cartridges as { label: string; since: number; requests: number }[]).filter((c) => typeof c?.label === 'string') : [];
  } catch {
    return [];
  }
}

// ---- one connection ---------------------------------------------------------------------------

interface JobLease {
  lease: DriveLease;
  busy: number;
  timer: NodeJS.Timeout | undefined;
}

export class Session {
  open = true;
  private greeted = false;
  private readonly decoder = new FrameDecoder();
  private readonly reqs = new Map<number, ReadReq>();
  private readonly jobLeases = new Map<number, JobLease>();
  private readonly jobWaits = new Set<AbortController>();

  constructor(
    private readonly w: StagingWorker,
    private readonly stream: Duplex,
  ) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err) => this.w.log.debug({ err: err.message }, 'connection error'));
  }

  send(m: WorkerMessage, data?: Buffer): void {
    if (!this.open || this.stream.destroyed) return;
    const parts = encodeFrame(m, data);
    if (parts.length === 1) this.stream.write(parts[0]);
    else {
      (this.stream as Partial<Socket>).cork?.();
      for (const p of parts) this.stream.write(p);
      const s = this.stream as Partial<Socket>;
      if (s.uncork) process.nextTick(() => s.uncork!());
    }
  }

  destroy(): void {
    this.stream.destroy();
  }

  /** Connection gone: cancel its requests, give back its drives. */
  closed(): void {
    this.open = false;
    for (const r of this.reqs.values()) this.w.finish(r);
    this.reqs.clear();
    for (const ac of this.jobWaits) ac.abort();
    for (const [, jl] of this.jobLeases) {
      if (jl.timer) clearTimeout(jl.timer);
      jl.lease.release();
    }
    this.jobLeases.clear();
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.w.counters.protocolErrors++;
      this.w.log.warn({ err: (err as Error).message }, 'protocol error: closing the connection');
      this.send({ t: 'error', id: 0, error: { code: 'PROTOCOL', message: (err as Error).message } });
      this.stream.end();
      return;
    }
    for (const f of frames) this.handle(f.msg as ClientMessage, f.data);
  }

  private handle(m: ClientMessage, data: Buffer | undefined): void {
    const bad = checkClientMessage(m);
    if (bad) {
      this.w.counters.protocolErrors++;
      const id = typeof (m as { id?: unknown }).id === 'number' ? (m as { id: number }).id : 0;
      this.send({ t: 'error', id, error: { code: 'PROTOCOL', message: bad } });
      if (m.t === 'hello' || !this.greeted) this.stream.end();
      return;
    }
    if (!this.greeted) {
      if (m.t !== 'hello') {
        this.send({ t: 'error', id: 0, error: { code: 'PROTOCOL', message: 'expected hello first' } });
        this.stream.end();
        return;
      }
      if (m.version !== PROTOCOL_VERSION) {
        this.send({ t: 'error', id: 0, error: { code: 'PROTOCOL', message: `protocol version ${m.version} is not supported (this stager speaks version ${PROTOCOL_VERSION})` } });
        this.stream.end();
        return;
      }
      this.greeted = true;
      this.send(this.w.hello());
      return;
    }
    switch (m.t) {
      case 'hello':
        this.send({ t: 'error', id: 0, error: { code: 'PROTOCOL', message: 'hello sent twice' } });
        return;
      case 'read': {
        if (this.reqs.has(m.id)) {
          this.send({ t: 'error', id: m.id, error: { code: 'PROTOCOL', message: `request id ${m.id} is in use` } });
          return;
        }
        const req = this.w.startRead(this, m);
        if (req?.notify) this.reqs.set(m.id, req);
        return;
      }
      case 'ack': {
        const r = this.reqs.get(m.id);
        if (r) this.w.ack(r, m.consumed);
        return;
      }
      case 'cancel': {
        const r = this.reqs.get(m.id);
        if (r) {
          this.reqs.delete(m.id);
          this.w.finish(r);
        }
        return;
      }
      case 'pin':
        this.w.cache.pin(m.itemId, m.pinned);
        this.send({ t: 'result', id: m.id, value: { pinned: m.pinned } });
        return;
      case 'status':
        void this.w.status().then(
          (value) => this.send({ t: 'result', id: m.id, value }),
          (err) => this.send({ t: 'result', id: m.id, error: toWireError(err) }),
        );
        return;
      case 'lib':
        void this.lib(m, data).then(
          ({ value, data: out }) => this.send({ t: 'result', id: m.id, value: { v: value, stats: this.w.lib.stats() } }, out),
          (err) => this.send({ t: 'result', id: m.id, error: toWireError(err), value: { stats: this.w.lib.stats() } }),
        );
        return;
      case 'debug':
        void this.debug(m).then(
          (value) => this.send({ t: 'result', id: m.id, value }),
          (err) => this.send({ t: 'result', id: m.id, error: toWireError(err) }),
        );
        return;
    }
  }

  // ---- remote TapeLibrary for jobs ----------------------------------------------------------------

  private async jobLease(drive: number | undefined, label?: string): Promise<DriveLease> {
    if (drive !== undefined) {
      const jl = this.jobLeases.get(drive);
      if (jl && !jl.lease.released) return jl.lease;
    }
    if (label !== undefined) {
      for (const [, jl] of this.jobLeases) if (!jl.lease.released && this.w.scheduler.labelIn(jl.lease.index) === label) return jl.lease;
      // give back idle drives this job holds, so it cannot block itself
      for (const [i, jl] of [...this.jobLeases]) {
        if (jl.busy === 0) {
          if (jl.timer) clearTimeout(jl.timer);
          jl.lease.release();
          this.jobLeases.delete(i);
        }
      }
    }
    const ac = new AbortController();
    this.jobWaits.add(ac);
    try {
      const lease = await this.w.scheduler.acquire({
        ...(label !== undefined ? { label } : {}),
        ...(drive !== undefined ? { drive } : {}),
        priority: 'job',
        owner: 'job',
        signal: ac.signal,
        timeoutMs: this.w.jobAdmissionTimeoutMs(),
      });
      if (!this.open) {
        lease.release();
        throw new StagerError({ code: 'CANCELLED', message: 'connection closed' });
      }
      this.jobLeases.set(lease.index, { lease, busy: 0, timer: undefined });
      // playback wants this drive: tell the job (it gives the drive back at its next safe point)
      lease.onPreempt(() => this.send({ t: 'event', name: 'preempt', data: { drive: lease.index } }));
      return lease;
    } finally {
      this.jobWaits.delete(ac);
    }
  }

  private releaseJob(drive?: number): void {
    for (const [i, jl] of [...this.jobLeases]) {
      if (drive !== undefined && i !== drive) continue;
      if (jl.timer) clearTimeout(jl.timer);
      jl.lease.release();
      this.jobLeases.delete(i);
    }
  }

  private async withDrive<T>(drive: number, fn: (d: TapeDrive) => Promise<T>): Promise<T> {
    const lease = await this.jobLease(drive);
    const jl = this.jobLeases.get(lease.index)!;
    jl.busy++;
    if (jl.timer) clearTimeout(jl.timer);
    try {
      return await fn(lease.drive);
    } finally {
      jl.busy--;
      if (jl.busy === 0 && this.jobLeases.get(lease.index) === jl) {
        jl.timer = setTimeout(() => {
          if (jl.busy === 0 && this.jobLeases.get(lease.index) === jl) {
            this.jobLeases.delete(lease.index);
            jl.lease.release();
          }
        }, this.w.tuning.jobIdleReleaseMs);
        jl.timer.unref();
      }
    }
  }

  private async lib(m: Extract<ClientMessage, { t: 'lib' }>, data: Buffer | undefined): Promise<{ value?: unknown; data?: Buffer }> {
    const lib = this.w.lib;
    const a = m.args;
    const num = (v: unknown, what: string) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new TapeError('INVALID', `${what} must be an integer`);
      return v;
    };
    const driveIdx = () => {
      const d = num(m.drive, 'drive');
      if (!lib.drives[d]) throw new TapeError('NOT_FOUND', `no drive ${d}`, { drive: d });
      return d;
    };
    switch (m.op) {
      case 'mount': {
        const label = a[0];
        if (typeof label !== 'string') throw new TapeError('INVALID', 'mount needs a label');
        const opts = (a[1] ?? {}) as { drive?: unknown };
        const lease = await this.jobLease(opts.drive === undefined ? undefined : num(opts.drive, 'drive'), label);
        if (this.w.scheduler.labelIn(lease.index) !== label) {
          // a lease on a named drive that holds something else: mount through the lease
          await this.withDrive(lease.index, async () => {
            await lib.mount(label, { drive: lease.index });
          });
        }
        // start the idle clock
        await this.withDrive(lease.index, async () => undefined);
        return { value: { drive: lease.index } };
      }
      case 'release':
        this.releaseJob(m.drive);
        return {};
      case 'stats':
        return { value: lib.stats() };
      case 'changer.inventory':
        return { value: await lib.changer.inventory() };
      case 'changer.find':
        return { value: await lib.changer.find(String(a[0])) };
      case 'changer.exportCartridge':
        return { value: await lib.changer.exportCartridge(String(a[0])) };
      case 'changer.importCartridge':
        return { value: await lib.changer.importCartridge(String(a[0]), a[1] === undefined || a[1] === null ? undefined : num(a[1], 'slot')) };
      case 'changer.load': {
        const d = num(a[1], 'drive');
        const src = typeof a[0] === 'number' ? a[0] : String(a[0]);
        return { value: await this.withDrive(d, () => lib.changer.load(src, d)) };
      }
      case 'changer.unload': {
        const d = num(a[0], 'drive');
        const slot = a[1] === undefined || a[1] === null ? undefined : num(a[1], 'slot');
        return { value: await this.withDrive(d, () => lib.changer.unload(d, slot)) };
      }
      case 'drive.status':
        return { value: await lib.drives[driveIdx()]!.status() };
      case 'drive.tell':
        return { value: await lib.drives[driveIdx()]!.tell() };
      case 'drive.rewind':
        return { value: await this.withDrive(driveIdx(), (d) => d.rewind()) };
      case 'drive.locate': {
        const b = num(a[0], 'block');
        return { value: await this.withDrive(driveIdx(), (d) => d.locate(b)) };
      }
      case 'drive.spaceFilemarks': {
        const c = num(a[0], 'count');
        return { value: await this.withDrive(driveIdx(), (d) => d.spaceFilemarks(c)) };
      }
      case 'drive.seekToEod':
        return { value: await this.withDrive(driveIdx(), (d) => d.seekToEod()) };
      case 'drive.readBlocks': {
        const n = num(a[0], 'block count');
        const r = await this.withDrive(driveIdx(), (d) => d.readBlocks(n));
        return { value: r.mark ? { mark: r.mark } : {}, data: r.data };
      }
      case 'drive.readBlock': {
        const r = await this.withDrive(driveIdx(), (d) => d.readBlock());
        return typeof r === 'string' ? { value: { mark: r } } : { value: {}, data: r };
      }
      case 'drive.writeBlocks': {
        const buf = data ?? Buffer.alloc(0);
        return { value: await this.withDrive(driveIdx(), (d) => d.writeBlocks(buf)) };
      }
      case 'drive.writeFilemarks': {
        const c = a[0] === undefined ? 1 : num(a[0], 'count');
        return { value: await this.withDrive(driveIdx(), (d) => d.writeFilemarks(c)) };
      }
      case 'virtual.createCartridge':
      case 'virtual.labels': {
        const v = lib as TapeLibrary & { createCartridge?: (label: string, o?: object) => Promise<void>; labels?: () => Promise<string[]> };
        if (m.op === 'virtual.labels') {
          if (typeof v.labels !== 'function') throw new TapeError('INVALID', 'the tape library cannot list its cartridges');
          return { value: await v.labels() };
        }
        if (typeof v.createCartridge !== 'function') throw new TapeError('INVALID', 'the tape library cannot create cartridges');
        const o = (a[1] ?? {}) as { slot?: unknown; offline?: unknown };
        const opts: { slot?: number; offline?: boolean } = {};
        if (o.slot !== undefined) opts.slot = num(o.slot, 'slot');
        if (o.offline !== undefined) opts.offline = o.offline === true;
        return { value: await v.createCartridge(String(a[0]), opts) };
      }
    }
  }

  // ---- test hooks ------------------------------------------------------------------------------------

  private async debug(m: Extract<ClientMessage, { t: 'debug' }>): Promise<unknown> {
    if (!this.w.opts.testHooks) throw new StagerError({ code: 'DENIED', message: 'debug operations are disabled' });
    switch (m.op) {
      case 'readFile': {
        const buf = await readFile(String(m.path));
        return { bytes: buf.length };
      }
      case 'connect':
        return new Promise((resolve, reject) => {
          const sock = netConnect({ host: m.host ?? '127.0.0.1', port: Number(m.port) });
          const t = setTimeout(() => {
            sock.destroy();
            reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
          }, 3000);
          sock.once('connect', () => {
            clearTimeout(t);
            sock.destroy();
            resolve({ connected: true });
          });
          sock.once('error', (err) => {
            clearTimeout(t);
            reject(err);
          });
        });
      case 'injectCacheError':
        this.w.injectCacheError(String(m.errno ?? 'ENOSPC'), Number(m.after ?? 0));
        return { ok: true };
      case 'injectReadError': {
        const lib = this.w.lib as TapeLibrary & { injectReadError?: (label: string, block: number, o?: { count?: number }) => void };
        if (typeof lib.injectReadError !== 'function') throw new StagerError({ code: 'INVALID', message: 'the library cannot inject read errors' });
        lib.injectReadError(String(m.label), Number(m.block), { count: m.count ?? 1 });
        return { ok: true };
      }
    }
  }
}
