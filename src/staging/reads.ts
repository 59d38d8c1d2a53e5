// The staging worker's read path: read requests of the server, per cache
// segment, and the fills (segments being written) that passes over the tape
// (tape-pass.ts) write.
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
// Nothing waits forever: a request whose passes leave its segment unchanged
// MAX_IDLE_PASSES times in a row fails with STALLED. When the cache cannot be
// written (CACHE_IO) a request continues uncached (tape-pass.ts, runUncached).

import { constants as FS } from 'node:fs';
import { open, statfs, type FileHandle } from 'node:fs/promises';
import { SegmentCache, segmentExtent, segmentFile } from './cache.js';
import type { DriveScheduler } from './scheduler.js';
import type { WorkerLog } from './log.js';
import { PRIORITY_RANK, StagerError, toWireError, type ClientMessage, type ItemRef, type WireError, type WorkerMessage } from './protocol.js';
import { Fill, ReadReq, type FillState, type FlaggedItem, type ItemState, type Pass, type ReplySink, type WorkerCounters, type WorkerTuning } from './read-state.js';
import { runPass, runUncached, type PassHost } from './tape-pass.js';

/** Passes in a row that may leave a segment unchanged before its read request fails with STALLED. */
const MAX_IDLE_PASSES = 3;
/** The longest playback a read request's holdMs may keep its cartridge loaded for (6 h). */
const MAX_HOLD_MS = 6 * 3600_000;

/**
 * A failed cache file operation (ENOSPC, EDQUOT, EIO, EROFS, ...: whatever the file system
 * refuses; the tape is fine) as the CACHE_IO error that switches its reads to uncached delivery.
 */
function cacheIoError(err: unknown, what: string): StagerError {
  const errno = (err as NodeJS.ErrnoException)?.code ?? 'EIO';
  return new StagerError({ code: 'CACHE_IO', message: `cannot ${what}: ${(err as Error)?.message ?? String(err)}`, errno });
}

export interface ReadServiceOptions {
  cache: SegmentCache;
  scheduler: DriveScheduler;
  tuning: WorkerTuning;
  /** Shared with the worker (its stats and status). */
  counters: WorkerCounters;
  log: WorkerLog;
  /** How long a request waits for cache room before CACHE_FULL (ms; the playback admission timeout). */
  admissionTimeoutMs: number;
  /** Items flagged unreadable (shared with the worker's status). */
  flagged: Map<string, FlaggedItem>;
  touchStats(): void;
  broadcast(m: WorkerMessage): void;
  /** Clock of playback holds (ms; default Date.now). */
  now?: () => number;
}

/** Read requests and fills of the staging worker. */
export class ReadService implements PassHost {
  readonly cache: SegmentCache;
  readonly scheduler: DriveScheduler;
  readonly tuning: WorkerTuning;
  readonly counters: WorkerCounters;
  readonly log: WorkerLog;
  readonly admissionTimeoutMs: number;
  readonly flagged: Map<string, FlaggedItem>;
  closed = false;
  private readonly items = new Map<string, ItemState>();
  /** Cartridges whose clients took every byte they asked for and play them until the given time (ms). */
  private readonly holds = new Map<string, number>();
  private readonly now: () => number;
  private syncChain: Promise<void> = Promise.resolve();
  /** A cache write failed and was logged; cleared when a segment is committed again (log once per episode). */
  private cacheTrouble = false;
  /** Test hook: cache writes fail with this errno after `left` more bytes. */
  private cacheFault: { errno: string; left: number } | undefined;
  /** Test hook: the next `left` segment syncs fail with `errno`. */
  private syncFault: { errno: string; left: number } | undefined;

  constructor(private readonly o: ReadServiceOptions) {
    this.cache = o.cache;
    this.scheduler = o.scheduler;
    this.tuning = o.tuning;
    this.counters = o.counters;
    this.log = o.log;
    this.admissionTimeoutMs = o.admissionTimeoutMs;
    this.flagged = o.flagged;
    this.now = o.now ?? Date.now;
  }

  touchStats(): void {
    this.o.touchStats();
  }

  private broadcast(m: WorkerMessage): void {
    this.o.broadcast(m);
  }

  /**
   * True while a client streams an item of cartridge `label` that still has bytes to take, or
   * plays bytes it took until the time its request announced (holdMs: a client with a large
   * buffer, or one that read the item ahead, is still playing from this cartridge): keeps the
   * cartridge loaded, so the next item of an album or season on it needs no mount.
   */
  streaming(label: string): boolean {
    const now = this.now();
    for (const it of this.items.values()) {
      if (it.ref.tape.label !== label) continue;
      for (const r of it.requests) if (r.notify && !r.finished && (r.consumed < r.end || r.holdUntil > now)) return true;
    }
    const held = this.holds.get(label);
    if (held !== undefined && held <= now) this.holds.delete(label);
    return held !== undefined && held > now;
  }

  /**
   * What unloading cartridge `label` now would cost the clients playing from it (the scheduler
   * swaps out the cartridge whose clients lose least): 0 nobody plays from it; between 1 and 2
   * its clients only play bytes they already have (holds): the more playback they have left,
   * the later they need the cartridge back (for their next item), the less they lose; 3 a
   * client still has bytes of its range to come from it, i.e. would stall mid-item for a mount.
   */
  swapLoss(label: string): number {
    const now = this.now();
    const S = this.tuning.segmentSize;
    let left = -1;
    for (const it of this.items.values()) {
      if (it.ref.tape.label !== label) continue;
      for (const r of it.requests) {
        if (!r.notify || r.finished) continue;
        for (let seg = Math.max(r.s0, Math.floor(r.consumed / S)); seg <= r.s1 && r.consumed < r.end; seg++) if (!r.sent.get(seg)?.complete) return 3;
        if (r.consumed < r.end || r.holdUntil > now) left = Math.max(left, r.holdUntil - now, 0);
      }
    }
    const held = this.holds.get(label);
    if (held !== undefined && held > now) left = Math.max(left, held - now);
    return left < 0 ? 0 : 1 + 1 / (1 + left / 1000);
  }

  activeRequests(): number {
    return [...this.items.values()].reduce((n, it) => n + it.requests.size, 0);
  }

  /** Cancels every request and waits (bounded) for passes to give back their drives. */
  async close(): Promise<void> {
    this.closed = true;
    for (const it of this.items.values()) for (const r of it.requests) r.ac.abort();
    const deadline = Date.now() + 10_000;
    while ([...this.items.values()].some((it) => [...it.fills.values()].some((f) => f.writer || f.finalizing)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Starts a read request; undefined when it was answered with an error at once. */
  startRead(session: ReplySink, m: Extract<ClientMessage, { t: 'read' }>): ReadReq | undefined {
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
    req.noMount = m.noMount === true;
    if (m.holdMs) req.holdUntil = this.now() + Math.min(m.holdMs, MAX_HOLD_MS);
    if (req.prestage) this.counters.prestages++;
    item.requests.add(req);
    if (m.priority === 'prefetch') this.counters.prefetches++;
    else this.counters.requests++;
    this.touchStats();
    void this.runRequest(req);
    return req;
  }

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
    // every byte was taken: the client plays them until holdUntil (a client that left early did not take them all)
    if (req.notify && req.consumed >= req.end && req.holdUntil > this.now()) {
      const label = req.item.ref.tape.label;
      this.holds.set(label, Math.max(this.holds.get(label) ?? 0, req.holdUntil));
    }
    req.ac.abort();
    req.wake();
    for (const seg of req.leased) this.cache.unlease(req.item.ref.id, seg);
    req.leased.clear();
    req.item.requests.delete(req);
    req.session.forget?.(req.id, req);
    this.maybeForgetItem(req.item);
  }

  maybeForgetItem(item: ItemState): void {
    if (item.requests.size === 0 && item.fills.size === 0 && item.passes.size === 0) this.items.delete(item.ref.id);
  }

  private async runRequest(req: ReadReq): Promise<void> {
    const item = req.item;
    const id = item.ref.id;
    const size = item.ref.tape.size;
    const S = this.tuning.segmentSize;
    let failed = false;
    try {
      for (let seg = req.s0; seg <= req.s1; seg++) {
        const { len } = segmentExtent(size, S, seg);
        let idlePasses = 0; // passes in a row after which the segment looked exactly as before
        let roomDeadline: number | undefined; // set when a pass found no room once it had its drive
        let noRoomPasses = 0;
        for (;;) {
          if (req.ac.signal.aborted) return;
          // announced complete: the server reads it from the file it leased, whatever becomes of it
          if (req.sent.get(seg)?.complete) break;
          // written but not kept (its sync failed): a cache write error like any other
          const syncErr = item.syncFailed?.get(seg);
          if (syncErr) throw new StagerError(syncErr);
          const hit = this.cache.lookup(id, seg);
          if (hit) {
            if (!req.missed.has(seg)) this.counters.cacheHits++;
            this.announce(req, seg, hit.len, hit.len, true);
            break;
          }
          const fill = item.fills.get(seg);
          if (fill && fill.state === 'complete') {
            // written and being synced: served from the cache file like a committed segment
            if (!req.missed.has(seg)) this.counters.cacheHits++;
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
          // a pass of another request that will write this segment (waiting for its drive or reading):
          // follow it, unless it asks at a lower priority (a pre-stage or prefetch: playback following
          // it would wait behind every other play, or for a cartridge the pre-stage never mounts, with
          // the drive idle; its own pass queues at playback priority, and a reading prefetch yields)
          const leader = [...item.passes].find(
            (p) => p.owner !== req && !p.owner.ac.signal.aborted && p.from <= seg && p.owner.s1 >= seg && PRIORITY_RANK[p.owner.priority] <= PRIORITY_RANK[req.priority],
          );
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
          // A request's first pass starts at once even when cached (e.g. pre-staged) bytes come
          // first: the mount and locate happen while the client plays those, not at their end.
          if (req.notify && req.tapePasses > 0 && seg * S > req.consumed + this.tuning.readAhead / 2) {
            await req.waitChange();
            continue;
          }
          // announce the pass before the first await, so requests arriving meanwhile follow it
          const marker = { from: seg, owner: req };
          item.passes.add(marker);
          const before = this.segmentMark(item, seg);
          let outcome: 'noRoom' | undefined;
          try {
            await this.waitForRoom(req, len, roomDeadline);
            outcome = await runPass(this, req, seg);
          } finally {
            item.passes.delete(marker);
            for (const r of item.requests) r.wake();
          }
          if (outcome === 'noRoom') {
            // others took the room while this pass waited for its drive: wait for room again,
            // bounded by the admission timeout from now (not a pass without progress)
            roomDeadline ??= Date.now() + this.admissionTimeoutMs;
            await this.waitForRoom(req, len, roomDeadline, ++noRoomPasses > 1);
            continue;
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
          await runUncached(this, req);
          if (!req.ac.signal.aborted) req.session.send({ t: 'done', id: req.id });
          return;
        } catch (e) {
          if (req.ac.signal.aborted) return;
          w = toWireError(e);
        }
      }
      if (w.code === 'INTERNAL') this.log.error({ item: id, err: w.message }, 'read request failed');
      req.session.send({ t: 'error', id: req.id, error: w });
      // an error ends the request: the server forgets it and never cancels it, so its leases,
      // its place among the item's requests (which keeps partial fills from being dropped and
      // leases every segment announced later) and its cartridge's "in use" go now
      failed = true;
    } finally {
      if (!req.notify || failed) this.finish(req); // prefetches end by themselves
    }
  }

  /** What is known about a segment's bytes (changes whenever any pass makes progress on it). */
  private segmentMark(item: ItemState, seg: number): string {
    if (this.cache.has(item.ref.id, seg)) return 'cached';
    const f = item.fills.get(seg);
    return f ? `${f.state}:${f.valid}:${f.writer ? 'w' : ''}${f.finalizing ? 'f' : ''}` : 'none';
  }

  /** Sends progress of a segment to one request (leasing it the first time). */
  announce(req: ReadReq, seg: number, valid: number, len: number, complete: boolean): void {
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
  fillChanged(f: Fill): void {
    for (const r of f.item.requests) {
      if (f.seg >= r.s0 && f.seg <= r.s1 && f.valid > 0 && f.state !== 'failed') this.announce(r, f.seg, f.valid, f.len, f.state === 'complete');
      r.wake();
    }
  }

  /**
   * Waits until `len` bytes could fit in the cache, until `deadline` (default: the admission
   * timeout from now), then fails with CACHE_FULL. `again`: room was seen more than once and
   * then not found by the pass, so wait for a change at least once (no spinning on the drive).
   */
  private async waitForRoom(req: ReadReq, len: number, deadline = Date.now() + this.admissionTimeoutMs, again = false): Promise<void> {
    if (!again && this.cache.couldFit(len)) return;
    const t0 = performance.now();
    try {
      for (let first = again; first || !this.cache.couldFit(len); first = false) {
        req.ac.signal.throwIfAborted();
        const left = deadline - Date.now();
        if (left <= 0) {
          this.counters.cacheFull++;
          throw new StagerError({ code: 'CACHE_FULL', message: 'the staging cache is full (pinned items and segments in use fill it)', retryAfter: 30 });
        }
        await this.cache.waitForSpace(Math.min(left, 1000), req.ac.signal);
      }
    } finally {
      this.counters.roomWaitMs += performance.now() - t0;
    }
  }

  /**
   * Writes `n` bytes of `data` from `off` at `at` in a fill's segment file, all of them (a short
   * write, as on a file system that fills up, is continued; a write of nothing fails), or throws
   * CACHE_IO.
   */
  async writeFully(f: Fill, data: Buffer, off: number, n: number, at: number): Promise<void> {
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
   * The fill of segment `seg` ready for this pass to write at item offset `pos`, or undefined
   * when the pass must stop (complete, another writer, no cache room, or a gap).
   */
  async claimFill(item: ItemState, seg: number, pass: Pass, pos: number): Promise<Fill | undefined> {
    const id = item.ref.id;
    if (this.cache.has(id, seg)) return undefined;
    let f = item.fills.get(seg);
    if (f) {
      if (f.state === 'complete' || (f.writer && f.writer !== pass) || f.finalizing) return undefined;
      if (pos - f.start > f.valid) return undefined; // would leave a hole
      // this pass owns the fill from now on: while its file opens, dropPartials (another pass
      // making room) must not take it as a paused fill nobody reads and delete its file
      f.writer = pass;
      f.state = 'writing';
      if (!f.fh) {
        try {
          f.fh = await open(this.cache.pathOf(id, seg), FS.O_WRONLY | FS.O_NOFOLLOW);
        } catch (err) {
          f.writer = undefined;
          f.state = 'paused';
          throw cacheIoError(err, `open cache segment ${segmentFile(id, seg)}`);
        }
      }
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
    // owned before its file exists (see above): a new Fill is 'paused' without a writer, which
    // dropPartials took for droppable while the file was created; it then released the
    // reservation and deleted the file under the pass (segments "missing" or "shorter than
    // announced", a second fill of the same segment truncating the first)
    f.writer = pass;
    f.state = 'writing';
    item.fills.set(seg, f);
    item.syncFailed?.delete(seg);
    try {
      f.fh = await this.cache.openForWrite(id, seg);
    } catch (err) {
      if (item.fills.get(seg) === f) item.fills.delete(seg);
      this.cache.unreserve(len);
      throw cacheIoError(err, `create cache segment ${segmentFile(id, seg)}`);
    }
    return f;
  }

  completeFill(f: Fill): void {
    f.state = 'complete';
    f.writer = undefined;
    this.counters.segmentsWritten++;
    this.fillChanged(f);
    const fh = f.fh;
    f.fh = undefined;
    const t0 = performance.now();
    f.finalizing = (async () => {
      try {
        // one sync at a time: syncs must not take every I/O thread from the drive's reads
        const sync = this.syncChain.then(() => this.syncSegment(fh));
        this.syncChain = sync.catch(() => undefined);
        await sync;
        this.counters.commitDelayMs += performance.now() - t0;
        await fh?.close();
        this.cache.commit(f.item.ref.id, f.seg, f.len);
        this.cacheTrouble = false;
      } catch (err) {
        // Like any other cache write error: readers were told this segment is complete and hold a
        // lease on it, so its file stays until the last of them is done with it (discardWhenFree);
        // it is never committed, so later requests read it from tape (uncached while it is doomed).
        const w = toWireError(cacheIoError(err, `sync cache segment ${segmentFile(f.item.ref.id, f.seg)}`));
        await fh?.close().catch(() => undefined);
        this.cache.unreserve(f.len);
        (f.item.syncFailed ??= new Map()).set(f.seg, w);
        await this.noteCacheError(w);
        await this.cache.discardWhenFree(f.item.ref.id, f.seg);
      } finally {
        f.finalizing = undefined;
        if (f.item.fills.get(f.seg) === f) f.item.fills.delete(f.seg);
        this.fillChanged(f);
        this.maybeForgetItem(f.item);
      }
    })();
  }

  async pauseFill(f: Fill): Promise<void> {
    f.writer = undefined;
    f.state = 'paused';
    const fh = f.fh;
    f.fh = undefined;
    await fh?.close().catch(() => undefined);
    this.fillChanged(f);
  }

  async failFill(f: Fill, error: WireError): Promise<void> {
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

  /** A paused partial segment nobody reads (dropPartials may drop it). */
  private droppable(it: ItemState, f: Fill): boolean {
    return f.state === 'paused' && !f.writer && ![...it.requests].some((r) => r.leased.has(f.seg));
  }

  /** Bytes dropPartials could free now. */
  droppablePartialBytes(): number {
    let n = 0;
    for (const it of this.items.values()) for (const f of it.fills.values()) if (this.droppable(it, f)) n += f.len;
    return n;
  }

  /** Drops paused partial segments nobody reads, oldest first, until `need` bytes are free. */
  dropPartials(need: number): number {
    let freed = 0;
    for (const it of this.items.values()) {
      for (const f of [...it.fills.values()]) {
        if (freed >= need) return freed;
        if (!this.droppable(it, f)) continue;
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

  flag(ref: ItemRef, w: WireError): void {
    const f: FlaggedItem = { itemId: ref.id, label: ref.tape.label, message: w.message, at: Date.now() };
    if (w.block !== undefined) f.block = w.block;
    if (!this.flagged.has(ref.id)) this.counters.flaggedItems++;
    this.flagged.set(ref.id, f);
    this.log.error({ item: ref.id, label: ref.tape.label, block: w.block, err: w.message }, `item ${ref.id} flagged: unreadable on ${ref.tape.label}`);
    this.broadcast({ t: 'event', name: 'flagged', data: { ...f } });
  }

  /** Free bytes of the cache file system (for an unprivileged user), or undefined. */
  async cacheFree(): Promise<number | undefined> {
    try {
      const st = await statfs(this.cache.dir);
      return st.bavail * st.bsize;
    } catch {
      return undefined;
    }
  }

  /** A cache write failed: counted always, logged at warn once per episode (with errno and free space). */
  async noteCacheError(w: WireError): Promise<void> {
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

  /** @internal Test hook: the next `count` segment syncs (fdatasync) fail with `errno`. */
  injectSyncError(errno: string, count: number): void {
    this.syncFault = { errno, left: Math.max(0, count) };
  }

  private async syncSegment(fh: FileHandle | undefined): Promise<void> {
    const fault = this.syncFault;
    if (fault && fault.left > 0) {
      fault.left--;
      throw Object.assign(new Error(`${fault.errno} (injected)`), { code: fault.errno });
    }
    const t0 = performance.now();
    try {
      await fh?.datasync();
    } finally {
      this.counters.syncMs += performance.now() - t0;
    }
  }
}
