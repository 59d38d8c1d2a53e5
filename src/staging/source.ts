// MediaSource of an archived item (server side): bytes come from the head stub
// on disk when it covers them, otherwise from staging cache segments that the
// worker fills from tape and announces as they land. One HTTP response can
// switch between the two any number of times (stub → tape → tail stub).
//
// Stub first: the response starts at once from disk, and the tape part that
// follows is requested right away so the drive mounts and positions in the
// background. A range that lies wholly in the stub triggers a prefetch of the
// first byte the stub does not have.
// Tape first: open() waits until the first byte is in the cache, so admission
// failures still become a proper HTTP status (503 + Retry-After, 502 ...).
// After the first byte, a failure ends the response early (the delivery layer's
// length guard then cuts the connection: never a wrong byte).

import { constants as FS } from 'node:fs';
import { access, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CatalogObject, ByteRange, StubLocation, TapeLocation } from '../catalog/types.js';
import type { MediaSource } from '../http/delivery.js';
import { contentFeatures, transferModeFor } from '../media/dlna.js';
import { segmentFile } from './cache.js';
import type { Connection } from './connection.js';
import { StagerError, type ItemRef, type Priority, type SegMessage } from './protocol.js';

/** Read chunk size towards the client (as disk delivery). */
const CHUNK = 512 * 1024;

/** What source.ts needs from the client (kept narrow for testing). */
export interface SourceHost {
  /** The current connection, waiting up to `ms` for one (or until `signal` fires: rejects with its reason). */
  connection(ms: number, signal?: AbortSignal): Promise<Connection>;
  readonly cacheDir: string;
  /** Time to wait for a worker connection before answering 503. */
  readonly connectWaitMs: number;
  /**
   * Watchdog (last line of defence; the worker fails reads that cannot progress itself): a
   * tape read that delivers no new byte for this long while the response waits for one is
   * failed with STALLED (→ 503 before the first byte, a clean abort after it).
   */
  readonly stallMs: number;
  /** Fire-and-forget prefetch of the segment holding `offset`. */
  prefetch(item: ItemRef, offset: number): void;
  /**
   * Whether bytes [start, end) of the item are all in the staging cache now (complete segment
   * files; the worker serves them without the cartridge). Asked only for a cartridge known to be
   * offline, where no fill is under way; without it (tests' hosts) nothing counts as cached.
   */
  cached?(item: ItemRef, start: number, end: number): Promise<boolean>;
  /** Known unusable cartridge (recently answered OFFLINE, or INCOMPATIBLE: no drive can read it), with the error to repeat. */
  offline(label: string): StagerError | undefined;
  /**
   * Where the library says the cartridge is, from a short-lived cache: inside it, outside it
   * (exported), or not known to it at all; undefined when that cannot be told now (e.g. no worker
   * connected), so the head stub is still served at once.
   */
  cartridgeWhere(label: string): Promise<'library' | 'offline' | 'missing' | undefined>;
  noteError(err: StagerError, item: ItemRef): void;
  count(name: string, n?: number): void;
  /** Real ms per ms of playback (1 but in a time-compressed benchmark): scales a read's holdMs. */
  readonly playbackTimeScale?: number;
}

export interface Piece {
  kind: 'stub' | 'tape';
  start: number;
  end: number; // exclusive
  /** Stub pieces: offset in the stub file. */
  fileOffset?: number;
}

/** Splits [start, end) into stub and tape pieces. Stub ranges must be sorted and disjoint. */
export function splitRange(start: number, end: number, stub: readonly ByteRange[] | undefined): Piece[] {
  const out: Piece[] = [];
  let pos = start;
  let fileAt = 0;
  for (const r of stub ?? []) {
    const len = r.end - r.start;
    if (r.end <= pos) {
      fileAt += len;
      continue;
    }
    if (r.start >= end) break;
    if (r.start > pos) {
      out.push({ kind: 'tape', start: pos, end: r.start });
      pos = r.start;
    }
    const e = Math.min(end, r.end);
    out.push({ kind: 'stub', start: pos, end: e, fileOffset: fileAt + (pos - r.start) });
    pos = e;
    fileAt += len;
    if (pos >= end) break;
  }
  if (pos < end) out.push({ kind: 'tape', start: pos, end });
  return out;
}

/** First offset ≥ from that the stub does not cover (or undefined). */
export function firstUncovered(from: number, size: number, stub: readonly ByteRange[] | undefined): number | undefined {
  let pos = from;
  for (const r of stub ?? []) {
    if (r.end <= pos) continue;
    if (r.start > pos) return pos;
    pos = r.end;
  }
  return pos < size ? pos : undefined;
}

function validStub(stub: StubLocation | undefined, size: number): boolean {
  if (!stub || typeof stub.path !== 'string' || !Array.isArray(stub.ranges)) return false;
  let prev = 0;
  for (const r of stub.ranges) {
    if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.end) || r.start < prev || r.end <= r.start || r.end > size) return false;
    prev = r.end;
  }
  return true;
}

/** HTTP-facing error for a stager failure (status, Retry-After, a message that may be shown). */
export function httpError(err: unknown): Error & { status: number; expose: boolean; headers?: Record<string, string> } {
  const e = err as StagerError;
  const code = e?.code;
  let status = 500;
  let retry: number | undefined;
  switch (code) {
    case 'ADMISSION_TIMEOUT':
    case 'CACHE_FULL':
    case 'STALLED':
    case 'WORKER_DOWN':
    case 'CLOSED':
    case 'BUSY':
      status = 503;
      retry = e.retryAfter ?? 30;
      break;
    case 'OFFLINE':
    case 'INCOMPATIBLE':
      // the operator has to act (import the cartridge; put it where a drive of its generation is)
      status = 503;
      retry = e.retryAfter ?? 3600;
      break;
    case 'MEDIUM_ERROR':
    case 'FORMAT':
    case 'NOT_FOUND':
    case 'IO':
    case 'BAD_POSITION':
      status = 502;
      break;
  }
  const out = new Error(e?.message ?? String(err)) as Error & { status: number; expose: boolean; headers?: Record<string, string>; code?: string };
  out.status = status;
  out.expose = status !== 500;
  if (code) out.code = code;
  if (retry !== undefined) out.headers = { 'Retry-After': String(Math.max(1, Math.round(retry))) };
  return out;
}

/** The MediaSource of an archived item; undefined when the item is not on tape. */
export function tapeItemSource(host: SourceHost, item: CatalogObject): MediaSource | undefined {
  const res = item.res;
  const tape = item.location?.tape;
  if (!res || !tape) return undefined;
  // the tape copy is the truth about which bytes exist (res.size should equal it)
  const size = tape.size;
  const stub = item.location?.stub && validStub(item.location.stub, size) ? item.location.stub : undefined;
  const ref: ItemRef = { id: item.id, tape };
  /** The tape pieces are all in the staging cache (the worker serves them with the cartridge offline). */
  const tapeCached = async (pieces: Piece[]): Promise<boolean> => {
    if (!host.cached) return false;
    for (const p of pieces) if (p.kind === 'tape' && !(await host.cached(ref, p.start, p.end))) return false;
    return true;
  };
  /**
   * The stub and tape pieces of bytes [start, end] as open() serves them. Throws the HTTP error
   * open() would answer before any byte when the tape part cannot be had: the cartridge recently
   * answered OFFLINE, or the library says it is exported or does not know it (then the tape part
   * is asked for first, so that a response starting in the stub is not cut where the stub ends).
   */
  const plan = async (start: number, endInclusive: number): Promise<Piece[]> => {
    let pieces = splitRange(start, endInclusive + 1, stub?.ranges);
    if (pieces[0]!.kind === 'stub') {
      try {
        await access(stub!.path, FS.R_OK);
      } catch {
        // the stub file is gone (recalled, cleaned up): everything comes from tape
        host.count('stubMissing');
        pieces = [{ kind: 'tape', start, end: endInclusive + 1 }];
      }
    }
    if (!pieces.some((p) => p.kind === 'tape')) return pieces;
    // looked up once for both checks below (a stat per cached segment)
    let cached: Promise<boolean> | undefined;
    const allCached = (): Promise<boolean> => (cached ??= tapeCached(pieces));
    const off = host.offline(tape.label);
    // (bytes the cache holds need no drive: served with the cartridge offline or of a generation no drive reads)
    if (off && !((off.code === 'OFFLINE' || off.code === 'INCOMPATIBLE') && (await allCached()))) {
      host.count('rejected503');
      throw httpError(off);
    }
    // A response that starts in the stub would be cut off where the tape part begins: when the
    // cartridge is exported (or unknown to the library), ask the worker for the tape part first,
    // so the client gets its 503 (and the cartridge is noted as needed) before any header is sent.
    if (pieces[0]!.kind === 'stub') {
      const where = await host.cartridgeWhere(tape.label);
      if ((where === 'offline' && !(await allCached())) || where === 'missing') pieces = [{ kind: 'tape', start, end: endInclusive + 1 }];
    }
    return pieces;
  };
  return {
    size,
    mtime: item.mtime ?? item.location?.disk?.mtime ?? 0,
    mime: res.mime,
    contentFeatures: contentFeatures(res),
    transferMode: transferModeFor(res),
    tier: 'tape',
    async check(start, endInclusive, signal) {
      // what open() would answer before its first byte, without reading tape (HEAD)
      signal.throwIfAborted();
      if (endInclusive < start) return; // an empty body: nothing on tape to ask for
      const pieces = await plan(start, endInclusive);
      if (!pieces.some((p) => p.kind === 'tape')) return; // all in the stub: served from disk
      // the worker would refuse the tape part at once (open() answers before any header then)
      const where = await host.cartridgeWhere(tape.label);
      if (where === 'offline' && !(await tapeCached(pieces))) throw httpError(new StagerError({ code: 'OFFLINE', message: `cartridge ${tape.label} is offline (exported from the library); the operator has to import it`, label: tape.label }));
      if (where === 'missing') throw httpError(new StagerError({ code: 'NOT_FOUND', message: `cartridge ${tape.label} is not known to the tape library`, label: tape.label }));
      if (pieces[0]!.kind !== 'tape') return; // starts in the stub: open() answers at once
      try {
        // open() would wait as long for the worker, then 503; a client that leaves ends the wait
        await host.connection(host.connectWaitMs, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        throw httpError(err);
      }
    },
    async open(start, endInclusive, signal) {
      signal.throwIfAborted();
      const pieces = await plan(start, endInclusive);
      const needsTape = pieces.some((p) => p.kind === 'tape');
      // bytes per second of playback: how long the client plays what it asked for (holdMs)
      const rate = res.bitrate && res.bitrate > 0 ? res.bitrate : res.duration && res.duration > 0 ? size / res.duration : 0;
      const stream = new ItemStream(host, ref, tape, pieces, stub?.path, signal, rate);
      if (pieces[0]!.kind === 'stub') {
        await stream.openStub();
        if (!needsTape) {
          const next = firstUncovered(start, size, stub?.ranges) ?? firstUncovered(0, size, stub?.ranges);
          if (next !== undefined) host.prefetch(ref, next);
        } else stream.startTapeEarly();
        return stream;
      }
      try {
        await stream.firstTapeByte();
      } catch (err) {
        stream.destroy();
        if (signal.aborted) throw err;
        const h = httpError(err);
        if (h.status === 503) host.count('rejected503');
        throw h;
      }
      return stream;
    },
  };
}

// ---- one read request towards the worker -----------------------------------------------------------

class TapeRead {
  readonly segs = new Map<number, SegMessage>();
  error: StagerError | undefined;
  done = false;
  private waiters = new Set<() => void>();
  private id = 0;
  private conn: Connection | undefined;
  private closed = false;
  /** Aborted by close(): a wait for a worker connection ends with it. */
  private readonly ac = new AbortController();
  /** The first segment's file, opened as soon as the worker created it (off the first byte's path). */
  private pre: { seg: number; p: Promise<FileHandle | undefined> } | undefined;
  acked = 0;
  /** When the worker last announced new bytes (the watchdog's clock). */
  private progressAt = 0;
  /**
   * Uncached delivery (the worker could not write its cache): bytes from `uncachedFrom` on come
   * only as `data` messages, kept here in order until read (the worker sends at most its window
   * beyond what was acknowledged).
   */
  private uncachedFrom: number | undefined;
  private readonly chunks: { offset: number; data: Buffer }[] = [];

  constructor(
    private readonly host: SourceHost,
    readonly ref: ItemRef,
    readonly start: number,
    readonly end: number,
    readonly priority: Priority,
    /** How long the client plays these bytes from now (ms; 0 = unknown): the worker keeps the cartridge loaded meanwhile. */
    private readonly holdMs = 0,
  ) {}

  async begin(): Promise<void> {
    let conn: Connection;
    try {
      // close() (the response ended, e.g. its client left) ends the wait for a worker at once
      conn = await this.host.connection(this.host.connectWaitMs, this.ac.signal);
    } catch (err) {
      if (this.closed) return;
      this.fail(err as StagerError);
      return;
    }
    if (this.closed) return;
    this.conn = conn;
    this.acked = this.start;
    this.id = conn.read(this.ref, this.start, this.end, this.priority, {
      onSeg: (m) => {
        if (m.file !== segmentFile(this.ref.id, m.seg)) {
          this.fail(new StagerError({ code: 'PROTOCOL', message: `the worker named an unexpected segment file ${JSON.stringify(m.file)}` }));
          return;
        }
        const prev = this.segs.get(m.seg);
        if (!prev || m.valid > prev.valid || (m.complete && !prev.complete)) this.progressAt = Date.now();
        if (!prev || m.valid >= prev.valid) this.segs.set(m.seg, m);
        const S = this.segmentSize;
        if (!this.pre && S > 0 && m.seg === Math.floor(this.start / S)) {
          const p = open(join(this.host.cacheDir, m.file), FS.O_RDONLY | FS.O_NOFOLLOW).catch(() => undefined);
          this.pre = { seg: m.seg, p };
        }
        this.wake();
      },
      onData: (offset, data) => {
        if (this.uncachedFrom === undefined) this.uncachedFrom = offset;
        if (data.length === 0) return;
        this.chunks.push({ offset, data });
        this.progressAt = Date.now();
        this.wake();
      },
      onDone: () => {
        this.done = true;
        this.wake();
      },
      onError: (err) => this.fail(err),
    }, true, false, { holdMs: this.holdMs });
  }

  get segmentSize(): number {
    return this.conn?.hello?.segmentSize ?? 0;
  }

  /**
   * Waits until byte `pos` of the item is available: its segment message (the byte is in the
   * cache), or uncached bytes starting at `pos`.
   */
  async until(pos: number, signal: AbortSignal): Promise<SegMessage | Buffer> {
    const since = Date.now();
    for (;;) {
      if (this.error) throw this.error;
      signal.throwIfAborted();
      const S = this.segmentSize;
      if (this.uncachedFrom !== undefined && pos >= this.uncachedFrom) {
        while (this.chunks.length && this.chunks[0]!.offset + this.chunks[0]!.data.length <= pos) this.chunks.shift();
        const c = this.chunks[0];
        if (c && c.offset <= pos) return c.data.subarray(pos - c.offset);
        if (c) throw new StagerError({ code: 'INTERNAL', message: `the worker skipped bytes ${pos}..${c.offset} of item ${this.ref.id}` });
        if (this.done) throw new StagerError({ code: 'INTERNAL', message: `the worker finished without byte ${pos} of item ${this.ref.id}` });
      } else if (S > 0) {
        const seg = Math.floor(pos / S);
        const m = this.segs.get(seg);
        if (m && m.valid > pos - seg * S) return m;
        if (this.done && !m) throw new StagerError({ code: 'INTERNAL', message: `the worker finished without segment ${seg}` });
      }
      const quiet = Date.now() - Math.max(since, this.progressAt);
      if (quiet >= this.host.stallMs) {
        this.fail(
          new StagerError({
            code: 'STALLED',
            message: `no byte of item ${this.ref.id} arrived from the staging worker for ${Math.round(quiet / 1000)} s (waiting for offset ${pos})`,
            retryAfter: 10,
            details: { offset: pos, quietMs: quiet },
          }),
        );
        continue;
      }
      await new Promise<void>((resolve) => {
        const f = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', f);
          this.waiters.delete(f);
          resolve();
        };
        const timer = setTimeout(f, this.host.stallMs - quiet);
        this.waiters.add(f);
        signal.addEventListener('abort', f, { once: true });
      });
    }
  }

  ack(consumed: number): void {
    if (consumed <= this.acked || !this.conn) return;
    this.acked = consumed;
    this.conn.ack(this.id, consumed);
  }

  /** The pre-opened file of segment `seg`, once (the caller owns it then). */
  takePreopened(seg: number): Promise<FileHandle | undefined> | undefined {
    if (!this.pre || this.pre.seg !== seg) return undefined;
    const p = this.pre.p;
    this.pre = { seg: -1, p: Promise.resolve(undefined) };
    return p;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ac.abort();
    if (this.conn) this.conn.cancel(this.id);
    const left = this.takePreopened(this.pre?.seg ?? -1);
    void left?.then((fh) => fh?.close().catch(() => undefined));
    this.wake();
  }

  private fail(err: StagerError): void {
    if (this.error) return;
    this.error = err;
    this.host.noteError(err, this.ref);
    this.wake();
  }

  private wake(): void {
    const w = [...this.waiters];
    this.waiters.clear();
    for (const f of w) f();
  }
}

// ---- the response body ----------------------------------------------------------------------------

class ItemStream extends Readable {
  private readonly ac = new AbortController();
  private readonly reads = new Map<Piece, TapeRead>();
  private stubFh: FileHandle | undefined;
  private segFh: { seg: number; fh: FileHandle } | undefined;
  private readonly gen: AsyncGenerator<Buffer>;
  private pumping = false;
  private readonly onClientAbort: () => void;

  constructor(
    private readonly host: SourceHost,
    private readonly ref: ItemRef,
    private readonly tape: TapeLocation,
    private readonly pieces: Piece[],
    private readonly stubPath: string | undefined,
    private readonly clientSignal: AbortSignal,
    /** Playback bytes per second (0 = unknown). */
    private readonly rate = 0,
  ) {
    super({ highWaterMark: CHUNK });
    this.gen = this.generate();
    this.onClientAbort = () => this.destroy();
    clientSignal.addEventListener('abort', this.onClientAbort, { once: true });
  }

  async openStub(): Promise<void> {
    if (!this.stubPath) throw new Error('no stub file');
    const fh = await open(this.stubPath, FS.O_RDONLY | FS.O_NOFOLLOW);
    if (this.destroyed) {
      await fh.close().catch(() => undefined);
      throw new Error('stream closed');
    }
    this.stubFh = fh;
  }

  /** Requests the first tape piece now, so the drive gets ready while the stub is served. */
  startTapeEarly(): void {
    const p = this.pieces.find((x) => x.kind === 'tape');
    if (p) this.readFor(p);
  }

  /** Resolves once the first byte (a tape piece first) is in the cache. */
  async firstTapeByte(): Promise<void> {
    const p = this.pieces[0]!;
    const r = this.readFor(p);
    await r.until(p.start, this.signal());
  }

  private signal(): AbortSignal {
    return AbortSignal.any([this.ac.signal, this.clientSignal]);
  }

  private readFor(p: Piece): TapeRead {
    let r = this.reads.get(p);
    if (!r) {
      // the client plays this piece until (its end − the response's start) / rate from now
      const holdMs = this.rate > 0 ? ((p.end - this.pieces[0]!.start) / this.rate) * 1000 * (this.host.playbackTimeScale ?? 1) : 0;
      r = new TapeRead(this.host, this.ref, p.start, p.end, 'interactive', holdMs);
      this.reads.set(p, r);
      void r.begin();
    }
    return r;
  }

  override _read(): void {
    if (this.pumping) return;
    this.pumping = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const r = await this.gen.next();
        if (this.destroyed) return;
        if (r.done) {
          this.push(null);
          return;
        }
        this.host.count('bytesServed', r.value.length);
        if (!this.push(r.value)) break;
      }
    } catch (err) {
      if (!this.destroyed) {
        this.host.count('streamErrors');
        this.destroy(err as Error);
      }
    } finally {
      this.pumping = false;
    }
  }

  private async *generate(): AsyncGenerator<Buffer> {
    const signal = this.signal();
    for (let i = 0; i < this.pieces.length; i++) {
      const p = this.pieces[i]!;
      if (p.kind === 'stub') {
        // the tape piece after this stub piece: get the drive ready now
        const next = this.pieces.slice(i + 1).find((x) => x.kind === 'tape');
        if (next) this.readFor(next);
        if (!this.stubFh) await this.openStub();
        let at = p.fileOffset!;
        let left = p.end - p.start;
        while (left > 0) {
          signal.throwIfAborted();
          const n = Math.min(CHUNK, left);
          const buf = Buffer.allocUnsafe(n);
          const { bytesRead } = await this.stubFh!.read(buf, 0, n, at);
          if (bytesRead <= 0) throw new Error(`head stub ${this.stubPath} is shorter than its catalog entry`);
          at += bytesRead;
          left -= bytesRead;
          this.host.count('stubBytesServed', bytesRead);
          yield bytesRead === n ? buf : buf.subarray(0, bytesRead);
        }
        continue;
      }
      const r = this.readFor(p);
      let pos = p.start;
      while (pos < p.end) {
        const m = await r.until(pos, signal);
        if (Buffer.isBuffer(m)) {
          // uncached bytes, straight from tape
          await this.closeSegment();
          const n = Math.min(CHUNK, m.length, p.end - pos);
          pos += n;
          this.host.count('tapeBytesServed', n);
          this.host.count('uncachedBytesServed', n);
          r.ack(pos);
          yield m.subarray(0, n);
          continue;
        }
        const S = r.segmentSize;
        const segStart = m.seg * S;
        const within = pos - segStart;
        const n = Math.min(CHUNK, m.valid - within, p.end - pos);
        const fh = await this.segmentHandle(m.seg, r);
        const buf = Buffer.allocUnsafe(n);
        let got = 0;
        while (got < n) {
          const { bytesRead } = await fh.read(buf, got, n - got, within + got);
          if (bytesRead <= 0) throw new StagerError({ code: 'INTERNAL', message: `cache segment ${m.file} is shorter than announced` });
          got += bytesRead;
        }
        pos += n;
        this.host.count('tapeBytesServed', n);
        if (pos >= segStart + m.len || pos >= p.end) {
          await this.closeSegment();
          r.ack(pos);
        }
        yield buf;
      }
      r.close();
      this.reads.delete(p);
    }
  }

  private async segmentHandle(seg: number, r: TapeRead): Promise<FileHandle> {
    if (this.segFh?.seg === seg) return this.segFh.fh;
    await this.closeSegment();
    const fh = (await r.takePreopened(seg)) ?? (await open(join(this.host.cacheDir, segmentFile(this.ref.id, seg)), FS.O_RDONLY | FS.O_NOFOLLOW));
    if (this.destroyed) {
      await fh.close().catch(() => undefined);
      throw new Error('stream closed');
    }
    this.segFh = { seg, fh };
    return fh;
  }

  private async closeSegment(): Promise<void> {
    const s = this.segFh;
    this.segFh = undefined;
    await s?.fh.close().catch(() => undefined);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.ac.abort();
    this.clientSignal.removeEventListener('abort', this.onClientAbort);
    for (const r of this.reads.values()) r.close();
    this.reads.clear();
    const stub = this.stubFh;
    this.stubFh = undefined;
    void Promise.all([stub?.close().catch(() => undefined), this.closeSegment()]).finally(() => cb(err));
    void this.gen.return(undefined).catch(() => undefined);
  }

  /** For logs: the cartridge this stream reads. */
  get label(): string {
    return this.tape.label;
  }
}
