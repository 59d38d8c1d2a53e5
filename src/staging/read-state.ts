// State of the staging worker's read path: its tuning and counters, the read
// requests of the server, the segments being filled from tape (fills) and the
// drive reads a pass keeps queued. reads.ts drives them; tape-pass.ts reads tape
// into them.

import type { FileHandle } from 'node:fs/promises';
import type { ReadResult } from '../tape/types.js';
import type { DriveLease } from './scheduler.js';
import type { ItemRef, Priority, WireError, WorkerMessage } from './protocol.js';

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

export interface FlaggedItem {
  itemId: string;
  label: string;
  block?: number;
  message: string;
  at: number;
}

export interface WorkerCounters {
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
  /** Time spent in segment syncs (fdatasync), and requests' time waiting for cache room (ms). */
  syncMs: number;
  roomWaitMs: number;
  /** Time from a segment's last byte to its commit (its sync and the syncs queued before it), summed (ms). */
  commitDelayMs: number;
  /** Prefetch passes that stopped early to give their drive to waiting playback. */
  prefetchYields: number;
}

export function newCounters(): WorkerCounters {
  return {
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
    syncMs: 0,
    roomWaitMs: 0,
    commitDelayMs: 0,
    prefetchYields: 0,
  };
}

/** Where a read request's answers go (its connection). */
export interface ReplySink {
  send(m: WorkerMessage, data?: Buffer): void;
  /** The request ended in the worker (an error answered it): forget its id. */
  forget?(id: number, req: ReadReq): void;
}

export type FillState = 'writing' | 'paused' | 'complete' | 'failed';

export class Fill {
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

export interface ItemState {
  ref: ItemRef;
  fills: Map<number, Fill>;
  requests: Set<ReadReq>;
  /** Passes waiting for a drive or reading: others follow them instead of queueing a second read. */
  passes: Set<{ from: number; owner: ReadReq }>;
  /** Segments whose finished fill could not be synced (until a new fill of the segment starts). */
  syncFailed?: Map<number, WireError>;
}

export class ReadReq {
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
  /** Tape passes this request ran: its first one is not held back by the read-ahead window. */
  tapePasses = 0;
  /** Delivering uncached (`data` messages): the cache could not be written. */
  uncached = false;
  /** Only while the cartridge is loaded for something else (a pre-stage after a play): never mounts it. */
  noMount = false;
  /** Until when (worker clock, ms) the client is expected to play these bytes: its cartridge stays loaded (0 = no hint). */
  holdUntil = 0;

  constructor(
    readonly session: ReplySink,
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

export interface Pass {
  owner: ReadReq;
  lease: DriveLease;
}

/** A drive read issued and not yet processed: `n` blocks from block `at`. */
export interface Queued {
  at: number;
  n: number;
  p: Promise<ReadResult>;
}
