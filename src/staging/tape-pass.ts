// A pass over the tape: the tape-side I/O of the staging worker's read path.
//
//
// A pass starts with ONE block (the client's first byte comes after mount +
// locate + one block) and doubles its read size up to `maxChunk`. It keeps one
// drive read in flight while it writes the previous one, so the drive streams
// while the worker works. It reads ahead of the consumer by up to `readAhead`
// bytes (the server acks what it has taken), then releases the drive; the
// cartridge stays loaded and positioned, so resuming costs no locate. Every byte
// a pass reads lands in a segment (never discarded), so a pass always stops on a
//
// When the cache cannot be written, a request continues uncached (runUncached):
// the same drive reads, but the bytes go to the server in `data` messages.

import { isTapeError, TapeError, type ReadResult, type TapeDrive } from '../tape/types.js';
import type { SegmentCache } from './cache.js';
import type { DriveScheduler } from './scheduler.js';
import type { WorkerLog } from './log.js';
import { StagerError, toWireError, type ItemRef, type WireError } from './protocol.js';
import type { Fill, ItemState, Pass, Queued, ReadReq, WorkerCounters, WorkerTuning } from './read-state.js';

/** What a pass needs from the read path (reads.ts): the cache, the drives and the fills. */
export interface PassHost {
  readonly cache: SegmentCache;
  readonly scheduler: DriveScheduler;
  readonly tuning: WorkerTuning;
  readonly counters: WorkerCounters;
  readonly log: WorkerLog;
  readonly closed: boolean;
  claimFill(item: ItemState, seg: number, pass: Pass, pos: number): Promise<Fill | undefined>;
  writeFully(f: Fill, data: Buffer, off: number, n: number, at: number): Promise<void>;
  completeFill(f: Fill): void;
  pauseFill(f: Fill): Promise<void>;
  failFill(f: Fill, error: WireError): Promise<void>;
  fillChanged(f: Fill): void;
  announce(req: ReadReq, seg: number, valid: number, len: number, complete: boolean): void;
  flag(ref: ItemRef, w: WireError): void;
  noteCacheError(w: WireError): Promise<void>;
  maybeForgetItem(item: ItemState): void;
  touchStats(): void;
}

/** Most uncached bytes a request may have in flight beyond what the server acknowledged. */
const UNCACHED_WINDOW = 8 * 1024 * 1024;
/** Largest `data` frame of an uncached request. */
const DATA_FRAME = 1024 * 1024;

/** Drive reads in a row that may return no data (and no mark) before a pass fails. */
const MAX_EMPTY_READS = 3;

/** Reads kept queued in the drive during a pass (2: the drive starts the next one the moment it finishes one). */
const READ_DEPTH = 2;

/**
 * One pass from segment `fromSeg`. Answers 'noRoom' when, once it had its drive, the cache had
 * no room left for its first segment (others took it while it waited for the drive): the
 * caller waits for room again.
 */
export async function runPass(h: PassHost, req: ReadReq, fromSeg: number): Promise<'noRoom' | undefined> {
  const item = req.item;
  const loc = item.ref.tape;
  const S = h.tuning.segmentSize;
  const bs = loc.blockSize;
  const existing = item.fills.get(fromSeg);
  const startPos = fromSeg * S + (existing?.valid ?? 0);
  const abs0 = loc.offset + startPos;
  const block0 = loc.block + Math.floor(abs0 / bs);
  const lease = await h.scheduler.acquire({ label: loc.label, block: block0, priority: req.priority, signal: req.ac.signal, owner: `item ${item.ref.id}`, ...(req.noMount ? { noMount: true } : {}) });
  const pass: Pass = { owner: req, lease };
  // someone may have filled the segment while we waited for the drive
  const now = item.fills.get(fromSeg);
  if (h.cache.has(item.ref.id, fromSeg) || (now && (now.state === 'complete' || (now.state === 'writing' && now.writer))) || (now?.valid ?? 0) !== (existing?.valid ?? 0)) {
    lease.release();
    return undefined;
  }
  h.counters.passes++;
  req.tapePasses++;
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
    const first = h.claimFill(item, firstSeg, pass, startPos).then((f) => {
      if (f) for (const r of item.requests) if (f.seg >= r.s0 && f.seg <= r.s1) h.announce(r, f.seg, f.valid, f.len, false);
      return f;
    });
    first.catch(() => undefined);
    try {
      if ((await drive.tell()) !== block0) {
        await drive.locate(block0);
        h.counters.locates++;
      }
    } finally {
      current = await first.catch(() => undefined);
    }
    current = await first;
    if (!current) {
      const f = item.fills.get(firstSeg);
      if (h.cache.has(item.ref.id, firstSeg) || f) return undefined; // someone else has it: follow them
      return 'noRoom';
    }
    const endBlock = loc.block + Math.ceil((loc.offset + loc.size) / bs); // exclusive
    const id = item.ref.id;
    let nextBlock = block0; // where the drive is (the next read starts there)
    let pos = startPos; // item offset of the next byte to write
    let skip = abs0 % bs; // bytes of the next block that precede pos
    let chunk = 1;
    const maxBlocks = Math.max(1, Math.floor(h.tuning.maxChunk / bs));
    const offsetOf = (b: number) => (b - loc.block) * bs - loc.offset; // item offset of block b's first byte
    const blocksTo = (x: number) => Math.ceil((loc.offset + x) / bs) + loc.block - nextBlock; // blocks from nextBlock to cover offsets < x
    const limit = () => {
      const segEnd = (x: number) => Math.min(loc.size, Math.ceil(x / S) * S);
      const wantEnd = segEnd(req.end);
      // read-ahead from where the client is, or from where this pass starts when that is further
      return req.notify ? Math.min(wantEnd, segEnd(Math.max(req.consumed, startPos) + h.tuning.readAhead)) : wantEnd;
    };
    const blocked = (seg: number) => {
      if (current && current.seg === seg) return false;
      const f = item.fills.get(seg);
      return h.cache.has(id, seg) || f?.state === 'complete' || f?.finalizing !== undefined || (f?.writer !== undefined && f.writer !== pass);
    };
    /** The next drive read, or undefined when the pass should stop. */
    const issue = (): Queued | undefined => {
      if (req.ac.signal.aborted || h.closed || nextBlock >= endBlock) return undefined;
      // a prefetch (pre-stage) gives the drive to waiting playback once it made progress; it
      // queues again behind it (the request's next pass)
      if (req.priority === 'prefetch' && nextBlock > block0 && h.scheduler.playbackWaiting()) {
        h.counters.prefetchYields++;
        return undefined;
      }
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
        r = await retryRead(h, drive, head, err, loc.label);
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
      h.counters.tapeReads++;
      h.counters.tapeBytesRead += r.data.length;
      if (req.prestage) h.counters.prestagedBytes += r.data.length;
      // keep the drive busy: queue the next chunk before writing this one
      if (!r.mark && !firstRead) topUp();
      let off = skip;
      skip = 0;
      let stop = false;
      const data = r.data;
      while (off < data.length && pos < loc.size) {
        const seg = Math.floor(pos / S);
        if (!current || current.seg !== seg) {
          current = await h.claimFill(item, seg, pass, pos);
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
        await h.writeFully(current, data, off, n, within);
        current.valid += n;
        off += n;
        pos += n;
        if (current.valid === current.len) {
          h.completeFill(current);
          current = undefined;
        } else h.fillChanged(current);
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
      h.touchStats();
    }
    if (current) await h.pauseFill(current);
    current = undefined;
    return undefined;
  } catch (err) {
    for (const q of inflight?.splice(0) ?? []) await q.p.catch(() => undefined);
    const w = toWireError(err);
    if (current) {
      const f = current;
      current = undefined;
      await h.failFill(f, w);
    }
    if (w.code === 'MEDIUM_ERROR') h.flag(item.ref, w);
    if (w.code === 'CACHE_IO') await h.noteCacheError(w);
    throw err;
  } finally {
    lease.release();
    h.maybeForgetItem(item);
  }
}

/**
 * A queued read failed with a medium error: re-position at the read's first block and try
 * again, `readRetries` times; then fail with a clear error (the item gets flagged).
 */
async function retryRead(h: PassHost, drive: TapeDrive, q: Queued, first: TapeError, label: string): Promise<ReadResult> {
  let last = first;
  for (let attempt = 1; attempt <= h.tuning.readRetries; attempt++) {
    h.counters.readRetries++;
    h.log.warn({ label, block: last.block ?? q.at, attempt }, 'tape read error: retrying');
    try {
      await drive.locate(q.at);
      return await drive.readBlocks(q.n);
    } catch (err) {
      if (!isTapeError(err, 'MEDIUM_ERROR')) throw err;
      last = err;
    }
  }
  h.counters.readErrors++;
  const block = last.block ?? q.at;
  throw new TapeError('MEDIUM_ERROR', `read error on cartridge ${label} at block ${block} after ${h.tuning.readRetries} retries: ${last.message}`, {
    label,
    block,
    ...(last.drive !== undefined ? { drive: last.drive } : {}),
  });
}

/**
 * Serves the rest of a request straight from tape, without the cache (which could not be
 * written): from the start of the first segment not announced complete, `data` messages in
 * order, at most UNCACHED_WINDOW bytes beyond the server's acks, the drive leased per burst.
 */
export async function runUncached(h: PassHost, req: ReadReq): Promise<void> {
  const item = req.item;
  const loc = item.ref.tape;
  const id = item.ref.id;
  const S = h.tuning.segmentSize;
  const bs = loc.blockSize;
  let pos = req.start;
  for (let seg = req.s0; seg <= req.s1 && req.sent.get(seg)?.complete; seg++) pos = Math.min(req.end, (seg + 1) * S);
  // leases stay until the server acks past them: it may still read the segments before `pos`
  // (and the valid bytes of the failed one, whose file is kept while leased)
  req.uncached = true;
  h.counters.uncachedReads++;
  const window = Math.max(bs, Math.min(h.tuning.readAhead, UNCACHED_WINDOW));
  const maxBlocks = Math.max(1, Math.floor(h.tuning.maxChunk / bs));
  const endBlock = loc.block + Math.ceil((loc.offset + req.end) / bs); // exclusive
  while (pos < req.end) {
    req.ac.signal.throwIfAborted();
    if (pos >= req.consumed + window) {
      await req.waitChange();
      continue;
    }
    const abs = loc.offset + pos;
    let next = loc.block + Math.floor(abs / bs);
    const lease = await h.scheduler.acquire({ label: loc.label, block: next, priority: req.priority, signal: req.ac.signal, owner: `item ${id} (uncached)` });
    try {
      const drive = lease.drive;
      if ((await drive.tell()) !== next) {
        await drive.locate(next);
        h.counters.locates++;
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
          r = await retryRead(h, drive, { at: next, n, p: Promise.resolve({ data: Buffer.alloc(0) }) }, err, loc.label);
        }
        if (r.data.length === 0) {
          if (r.mark) throw new StagerError({ code: 'FORMAT', message: `${loc.label}: ${r.mark} inside item ${id} at block ${next}`, label: loc.label });
          if (++empty > MAX_EMPTY_READS) throw new StagerError({ code: 'IO', message: `${loc.label}: ${empty} reads in a row returned no data at block ${next}`, label: loc.label, block: next });
          continue;
        }
        empty = 0;
        h.counters.tapeReads++;
        h.counters.tapeBytesRead += r.data.length;
        next += Math.ceil(r.data.length / bs);
        const data = r.data.subarray(Math.min(skip, r.data.length), Math.min(r.data.length, skip + req.end - pos));
        skip = 0;
        for (let o = 0; o < data.length; o += DATA_FRAME) {
          req.session.send({ t: 'data', id: req.id, offset: pos + o }, data.subarray(o, Math.min(data.length, o + DATA_FRAME)));
        }
        pos += data.length;
        h.counters.uncachedBytes += data.length;
        h.touchStats();
        if (r.mark && pos < req.end) throw new StagerError({ code: 'FORMAT', message: `${loc.label}: ${r.mark} inside item ${id} (${req.end - pos} bytes short)`, label: loc.label });
        chunk = Math.min(chunk * 2, maxBlocks);
      }
    } catch (err) {
      const w = toWireError(err);
      if (w.code === 'MEDIUM_ERROR') h.flag(item.ref, w);
      throw err;
    } finally {
      lease.release();
    }
  }
}
