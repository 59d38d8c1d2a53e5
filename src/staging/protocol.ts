// Server ↔ staging worker protocol (DESIGN.md §2).
//
// Transport: any local stream socket (an inherited socketpair for the spawned
// worker, a unix socket for the external stager). Framing: every frame is
//
//   u32 BE  frame length (bytes after this field)
//   u32 BE  JSON length
//   JSON    one message (UTF-8)
//   bytes   optional binary payload (the rest of the frame)
//
// The binary part carries tape blocks for the remote TapeLibrary (archive and
// recall jobs). Media bytes for playback normally do NOT travel over the socket:
// the worker writes them into cache segment files and announces "segment S of
// item I holds V valid bytes" (a `seg` message); the server reads those files
// itself. Only when the cache cannot be written (ENOSPC, EIO, EROFS ...) does a
// read request continue uncached: `data` messages carry its bytes, in order, from
// the start of the first segment not announced complete to the end of the range,
// paced by the server's acks.
// That keeps the worker's socket free of bulk data, lets any number of clients
// read one segment that was read from tape once (coalescing), and makes every
// byte read from tape land in the cache (write-through) by construction.
//
// Versioning: both sides open with `hello` carrying PROTOCOL_VERSION; a worker
// that receives another version answers with an `error` (code PROTOCOL) and
// closes. Messages with an unknown `t` are answered with an error, never a crash.

import type { TapeLocation } from '../catalog/types.js';

export const PROTOCOL_VERSION = 2;

/** Largest frame either side accepts (a 64 MiB block write plus its header). */
export const MAX_FRAME = 80 * 1024 * 1024;

/** Interactive playback before prefetch before archive/recall jobs. */
export type Priority = 'interactive' | 'prefetch' | 'job';

/**
 * Upper bounds (s) of the worker's histogram of how long tape reads waited for admission
 * (status `queueWait`, the server's tapedeck_stager_queue_wait_seconds): from an idle drive
 * (ms) to a cold mount behind others (many minutes).
 */
export const QUEUE_WAIT_BUCKETS: readonly number[] = [0.01, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800];
export const PRIORITY_RANK: Record<Priority, number> = { interactive: 0, prefetch: 1, job: 2 };

/** An archived item as the worker needs it: identity plus where its bytes are. */
export interface ItemRef {
  id: string;
  tape: TapeLocation;
}

/** Error codes on the wire: the tape layer's codes plus the stager's own. */
export type WireErrorCode =
  | 'ADMISSION_TIMEOUT'
  | 'OFFLINE'
  | 'CACHE_FULL'
  /** A read made no progress (a guard against bugs: failed rather than left waiting). */
  | 'STALLED'
  /** The cache file system refused a write (errno: ENOSPC, EIO, EROFS ...); the read continues uncached. */
  | 'CACHE_IO'
  | 'CANCELLED'
  | 'PROTOCOL'
  | 'WORKER_DOWN'
  | 'INTERNAL'
  | 'DENIED'
  | 'NOT_FOUND'
  | 'MEDIUM_ERROR'
  | 'FORMAT'
  | 'BUSY'
  | 'INVALID'
  /** A read that may not mount (a pre-stage) found its cartridge unloaded. */
  | 'NOT_LOADED'
  | string;

export interface WireError {
  code: WireErrorCode;
  message: string;
  /** Tape error details, passed through. */
  label?: string;
  drive?: number;
  block?: number;
  details?: Record<string, unknown>;
  /** Seconds a client should wait before retrying (503 answers). */
  retryAfter?: number;
  /** Node error code of the underlying failure, e.g. ERR_ACCESS_DENIED, ENOENT. */
  errno?: string;
}

/** Operations of the remote TapeLibrary (see remote-library.ts). */
export type LibOp =
  | 'mount'
  | 'release'
  /** Keep cartridges loaded for a queued loadedOnly recall job: args [labels, ms]; value: the hold's id, a string unique across worker restarts (recall-holds.ts). */
  | 'hold'
  /** End a hold: args [id]. */
  | 'unhold'
  | 'stats'
  | 'changer.inventory'
  | 'changer.find'
  | 'changer.load'
  | 'changer.unload'
  | 'changer.exportCartridge'
  | 'changer.importCartridge'
  | 'drive.status'
  | 'drive.tell'
  | 'drive.rewind'
  | 'drive.locate'
  | 'drive.spaceFilemarks'
  | 'drive.seekToEod'
  | 'drive.readBlocks'
  | 'drive.readBlock'
  | 'drive.writeBlocks'
  | 'drive.writeFilemarks'
  | 'virtual.createCartridge'
  | 'virtual.labels';

export const LIB_OPS: ReadonlySet<string> = new Set<LibOp>([
  'mount',
  'release',
  'hold',
  'unhold',
  'stats',
  'changer.inventory',
  'changer.find',
  'changer.load',
  'changer.unload',
  'changer.exportCartridge',
  'changer.importCartridge',
  'drive.status',
  'drive.tell',
  'drive.rewind',
  'drive.locate',
  'drive.spaceFilemarks',
  'drive.seekToEod',
  'drive.readBlocks',
  'drive.readBlock',
  'drive.writeBlocks',
  'drive.writeFilemarks',
  'virtual.createCartridge',
  'virtual.labels',
]);

// ---- client (server process) → worker ---------------------------------------------------

export type ClientMessage =
  | { t: 'hello'; version: number; client: string }
  /**
   * Bytes [start, end) of an item. The worker answers with `seg` messages (unless
   * `notify` is false, as for prefetches), then `done` or `error`. The request stays
   * open (its announced segments are protected from eviction) until `cancel`.
   */
  | { t: 'read'; id: number; item: ItemRef; start: number; end: number; priority: Priority; notify?: boolean; prestage?: boolean; holdMs?: number; noMount?: boolean }
  /** The server has taken the item's bytes up to `consumed` (drives read-ahead and lease release). */
  | { t: 'ack'; id: number; consumed: number }
  /** End of a read request (finished or abandoned). */
  | { t: 'cancel'; id: number }
  | { t: 'pin'; id: number; itemId: string; pinned: boolean }
  | { t: 'status'; id: number }
  /** Remote TapeLibrary call; `writeBlocks` carries its data as the binary payload. */
  | { t: 'lib'; id: number; op: LibOp; drive?: number; args: unknown[] }
  /** Test hooks (only honoured by a worker started with testHooks). */
  | {
      t: 'debug';
      id: number;
      op: 'readFile' | 'connect' | 'injectReadError' | 'injectCacheError' | 'injectSyncError';
      path?: string;
      host?: string;
      port?: number;
      label?: string;
      block?: number;
      count?: number;
      /** injectCacheError: the errno cache writes fail with, after `after` more bytes; injectSyncError: the errno the next `count` segment syncs fail with. */
      errno?: string;
      after?: number;
    };

// ---- worker → client ---------------------------------------------------------------------

export interface SandboxInfo {
  /** Node permission model active (fs access limited). */
  permission: boolean;
  /** Paths the worker may read / write. */
  read: string[];
  write: string[];
  /** Has no network: its own network namespace (unshare), or started without one (systemd PrivateNetwork=yes). */
  netns: boolean;
  /** Why a restriction could not be applied, when one was not. */
  notes: string[];
}

export interface WorkerHello {
  t: 'hello';
  version: number;
  pid: number;
  cacheDir: string;
  segmentSize: number;
  /** generation: every drive's (e.g. 'LTO-9'), when the library knows it: the server refuses media no drive reads (HEAD too) without asking. */
  library: { kind: 'virtual' | 'scsi'; drives: { name: string; index: number }[]; generation?: string };
  sandbox?: SandboxInfo;
}

export interface SegMessage {
  t: 'seg';
  id: number;
  seg: number;
  /** Path of the segment file relative to the cache directory. */
  file: string;
  /** Bytes of the segment that are valid (from the segment's start). */
  valid: number;
  /** Full length of the segment. */
  len: number;
  complete: boolean;
}

/** 'preempt' {drive} goes only to the connection whose job holds that drive: give it back at the next safe point. */
export type WorkerEventName = 'flagged' | 'needed' | 'mount' | 'unload' | 'evict' | 'stats' | 'preempt';

export type WorkerMessage =
  | WorkerHello
  | SegMessage
  /**
   * Uncached bytes of a read request (binary payload) at item offset `offset`. The first one
   * switches the request to uncached delivery: from its offset on, bytes come only as `data`.
   */
  | { t: 'data'; id: number; offset: number }
  | { t: 'done'; id: number }
  | { t: 'error'; id: number; error: WireError }
  | { t: 'result'; id: number; value?: unknown; error?: WireError }
  | { t: 'event'; name: WorkerEventName; data: Record<string, unknown> };

// ---- framing -------------------------------------------------------------------------------

export interface Frame<M> {
  msg: M;
  data?: Buffer;
}

export class ProtocolError extends Error {
  readonly code = 'PROTOCOL';
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** One frame as the buffers to write (no copy of the binary payload). */
export function encodeFrame(msg: unknown, data?: Buffer): Buffer[] {
  const json = Buffer.from(JSON.stringify(msg), 'utf8');
  const bin = data?.length ?? 0;
  const head = Buffer.allocUnsafe(8);
  const len = 4 + json.length + bin;
  if (len > MAX_FRAME) throw new ProtocolError(`frame of ${len} bytes exceeds ${MAX_FRAME}`);
  head.writeUInt32BE(len, 0);
  head.writeUInt32BE(json.length, 4);
  return data && bin ? [head, json, data] : [head, json];
}

/**
 * Incremental frame decoder. Feed it socket chunks; it returns whole frames.
 * Throws ProtocolError on malformed input (the caller closes the connection).
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private have = 0;

  push(chunk: Buffer): Frame<unknown>[] {
    this.chunks.push(chunk);
    this.have += chunk.length;
    const out: Frame<unknown>[] = [];
    for (;;) {
      if (this.have < 4) break;
      const len = this.peekU32();
      if (len < 4 || len > MAX_FRAME) throw new ProtocolError(`bad frame length ${len}`);
      if (this.have < 4 + len) break;
      const frame = this.take(4 + len);
      const jsonLen = frame.readUInt32BE(4);
      if (jsonLen > len - 4) throw new ProtocolError(`bad JSON length ${jsonLen} in a frame of ${len}`);
      let msg: unknown;
      try {
        msg = JSON.parse(frame.toString('utf8', 8, 8 + jsonLen));
      } catch {
        throw new ProtocolError('frame does not hold valid JSON');
      }
      if (!msg || typeof msg !== 'object' || typeof (msg as { t?: unknown }).t !== 'string') {
        throw new ProtocolError('message without a type');
      }
      const f: Frame<unknown> = { msg };
      if (8 + jsonLen < frame.length) f.data = frame.subarray(8 + jsonLen);
      out.push(f);
    }
    return out;
  }

  private peekU32(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks).readUInt32BE(0);
  }

  private take(n: number): Buffer {
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.have -= n;
    return out;
  }
}

// ---- validation of incoming messages -------------------------------------------------------

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isNat = (v: unknown): v is number => isInt(v) && v >= 0;

/** Validates a TapeLocation received from the other side. */
export function validTapeLocation(v: unknown): v is TapeLocation {
  const l = v as TapeLocation;
  return (
    !!l &&
    typeof l === 'object' &&
    typeof l.label === 'string' &&
    l.label.length > 0 &&
    l.label.length <= 32 &&
    isNat(l.tapeFile) &&
    isNat(l.block) &&
    isNat(l.offset) &&
    isNat(l.size) &&
    typeof l.sha256 === 'string' &&
    isInt(l.blockSize) &&
    l.blockSize >= 512 &&
    l.offset < l.blockSize
  );
}

/** Checks a client message's shape; returns an error text or undefined. */
export function checkClientMessage(m: ClientMessage): string | undefined {
  switch (m.t) {
    case 'hello':
      return isInt(m.version) ? undefined : 'hello without a version';
    case 'read': {
      if (!isNat(m.id)) return 'read without an id';
      if (!m.item || typeof m.item.id !== 'string' || m.item.id === '' || m.item.id.length > 512) return 'read without an item id';
      if (!validTapeLocation(m.item.tape)) return 'read with an invalid tape location';
      if (!isNat(m.start) || !isNat(m.end) || m.end <= m.start || m.end > m.item.tape.size) return `read of an invalid range [${m.start}, ${m.end})`;
      if (!(m.priority in PRIORITY_RANK)) return `read with an unknown priority ${String(m.priority)}`;
      if (m.prestage !== undefined && typeof m.prestage !== 'boolean') return 'read with a non-boolean prestage flag';
      if (m.holdMs !== undefined && !isNat(m.holdMs)) return 'read with an invalid holdMs';
      if (m.noMount !== undefined && typeof m.noMount !== 'boolean') return 'read with a non-boolean noMount flag';
      return undefined;
    }
    case 'ack':
      return isNat(m.id) && isNat(m.consumed) ? undefined : 'bad ack';
    case 'cancel':
    case 'status':
      return isNat(m.id) ? undefined : `${m.t} without an id`;
    case 'pin':
      return isNat(m.id) && typeof m.itemId === 'string' && m.itemId !== '' && typeof m.pinned === 'boolean' ? undefined : 'bad pin';
    case 'lib':
      if (!isNat(m.id)) return 'lib without an id';
      if (!LIB_OPS.has(m.op)) return `unknown library operation ${String(m.op)}`;
      if (m.drive !== undefined && !isNat(m.drive)) return 'bad drive index';
      return Array.isArray(m.args) ? undefined : 'lib without args';
    case 'debug':
      return isNat(m.id) ? undefined : 'debug without an id';
    default:
      return `unknown message type ${JSON.stringify((m as { t: unknown }).t)}`;
  }
}

// ---- errors ----------------------------------------------------------------------------------

/** An error that carries wire details (thrown inside the worker, rebuilt on the client). */
export class StagerError extends Error {
  readonly code: WireErrorCode;
  readonly label?: string;
  readonly drive?: number;
  readonly block?: number;
  readonly details?: Record<string, unknown>;
  readonly retryAfter?: number;
  readonly errno?: string;

  constructor(w: WireError) {
    super(w.message);
    this.name = 'StagerError';
    this.code = w.code;
    if (w.label !== undefined) this.label = w.label;
    if (w.drive !== undefined) this.drive = w.drive;
    if (w.block !== undefined) this.block = w.block;
    if (w.details !== undefined) this.details = w.details;
    if (w.retryAfter !== undefined) this.retryAfter = w.retryAfter;
    if (w.errno !== undefined) this.errno = w.errno;
  }
}

/** Any thrown value → WireError (keeps TapeError / StagerError details). */
export function toWireError(err: unknown): WireError {
  if (err && typeof err === 'object') {
    const e = err as Partial<WireError> & { message?: string; code?: unknown; name?: string };
    const own = e.name === 'TapeError' || e.name === 'StagerError';
    const w: WireError = {
      code: own && typeof e.code === 'string' ? e.code : 'INTERNAL',
      message: typeof e.message === 'string' ? e.message : String(err),
    };
    if (!own && typeof e.code === 'string') w.errno = e.code; // ENOENT, ERR_ACCESS_DENIED, ...
    if (typeof e.errno === 'string') w.errno = e.errno;
    if (typeof e.label === 'string') w.label = e.label;
    if (typeof e.drive === 'number') w.drive = e.drive;
    if (typeof e.block === 'number') w.block = e.block;
    if (e.details && typeof e.details === 'object') w.details = e.details;
    if (typeof e.retryAfter === 'number') w.retryAfter = e.retryAfter;
    return w;
  }
  return { code: 'INTERNAL', message: String(err) };
}
