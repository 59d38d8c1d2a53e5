// Durable job records in the catalog's KV store (write-ahead log of the tape tier).
//
//   j/<jobId>                 JobRecord (summary, state, progress)
//   ji/<jobId>/<seq>          JobItem: one catalog item of the job and its phase
//   jb/<jobId>/<n>            JobBatch: one tar written by an archive job (cartridge, index)
//
// Job IDs sort by creation time. Every phase change of an item is written
// before the step that depends on it (and, where the catalog changes, in the
// same batch as the catalog change), so a restart knows exactly what to do.

import { randomBytes } from 'node:crypto';
import type { BatchOp, KVStore } from '../catalog/store.js';
import { prefixRange } from '../catalog/store.js';
import type { IndexEntry } from '../tape/format.js';
import type { ArchiveErrorCode } from './errors.js';

export type JobKind = 'archive' | 'recall' | 'import';
export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface JobProgress {
  /**
   * Item bytes done: archive: written, read back and verified; recall: restored. Each item
   * counts once (its size), whatever the passes over it.
   * Import jobs: NOT bytes but the number of tape index entries read (a count; the field keeps
   * its name because `tapedeck jobs --json` documents it; `tapedeck jobs` prints "index entries").
   */
  bytesDone: number;
  /**
   * Item bytes of the job (archive, recall: the sum of the items' sizes). Import jobs: the
   * number of index entries found on the cartridges read so far (grows as each is read).
   */
  bytesTotal: number;
  /** Archive: item bytes written to tape so far (the write pass; bytesDone is the verify pass). */
  bytesWritten?: number;
  itemsDone: number;
  itemsTotal: number;
}

export interface JobOptions {
  /** Archive: keep the disk copy (the item then lives on disk and tape). */
  keepDisk?: boolean;
  /**
   * Archive: head-stub sizes for this job instead of the configured ones (kept in the job
   * record, so a resumed job cuts the same stubs). Used by the demo, whose files are smaller
   * than the default stub.
   */
  stub?: JobStubOptions;
  /**
   * Archive: collocation. Items are written in the order given (not sorted by path), the
   * items of one container (catalog parent) stay in one tar when they fit, and a batch goes
   * to the cartridge the previous batch used while it has room (policy passes set this).
   */
  collocate?: boolean;
  /** Who submitted the job: 'policy' for policy passes (operator jobs have none). */
  origin?: 'policy';
  /**
   * Automatic policy passes: the job runs only while policy_window is open; when it closes the job
   * stops at its next safe point (end of a tar member, between items) and waits, queued, for the
   * window to open again (ArchiveService.setHold). Manual passes and operator jobs have none.
   */
  window?: true;
  /**
   * Policy recalls: the rule that chose the items ('container-plays': a container promotion;
   * none: promote_plays). Counted apart on the status page and /metrics.
   */
  rule?: 'container-plays';
  /**
   * Policy recalls started by a play (the immediate container promotion) rather than by a pass:
   * a pass does not wait for them (it leaves their items alone).
   */
  trigger?: 'play';
  /**
   * Recall: read only from cartridges that are in a drive when the job gets to them (the
   * container promotion right after a play: it rides on the play's mount and never mounts one
   * itself); the items of any other cartridge are skipped, left to a later load of it (the
   * policy engine's onLoaded) or a pass that mounts it anyway.
   */
  loadedOnly?: true;
}

/** The parts of the stub options a job may set (see archive/stubs.ts). */
export interface JobStubOptions {
  headSeconds?: number;
  headMin?: number;
  tailBytes?: number;
  mergeGap?: number;
}

export interface JobRecord {
  id: string;
  kind: JobKind;
  state: JobState;
  /** As submitted: object IDs, container IDs, paths (archive, recall) or labels (import). */
  targets: string[];
  opts: JobOptions;
  created: string;
  updated: string;
  started?: string;
  finished?: string;
  /** What the job is doing now, for people (e.g. "writing TD0001L9"). */
  activity?: string;
  progress: JobProgress;
  /** Runs started: 1 for a job that never crashed. */
  attempts: number;
  reason?: string;
  code?: ArchiveErrorCode;
  /** Summary of the outcome (counts, cartridges used...). */
  result?: Record<string, unknown>;
  /** Times the job gave its drive to playback at a safe point (pre-emption). */
  preempted?: number;
}

export type ArchivePhase = 'pending' | 'batched' | 'committed' | 'done' | 'skipped' | 'failed';
export type RecallPhase = 'pending' | 'restoring' | 'verified' | 'renamed' | 'committed' | 'done' | 'skipped' | 'failed';
export type ItemPhase = ArchivePhase | RecallPhase;

export interface JobItem {
  seq: number;
  /** Canonical catalog item ID. */
  id: string;
  phase: ItemPhase;
  size?: number;
  /** Archive: batch the item was written in; recall: cartridge it is read from. */
  batch?: number;
  label?: string;
  /** Archive: source file and its size/mtime when the job took it. */
  src?: string;
  srcSize?: number;
  srcMtime?: number;
  /** Recall: temp file being written and final path. */
  tmp?: string;
  dest?: string;
  /** Recall: the file at dest was already there with the right bytes (not ours to delete). */
  adopted?: boolean;
  /** Why the item was skipped or failed. */
  note?: string;
}

export type BatchPhase = 'planned' | 'writing' | 'written' | 'verified' | 'done';

export interface JobBatch {
  n: number;
  label: string;
  phase: BatchPhase;
  /** Item seqs in member order. */
  items: number[];
  /** Tape file number at end of data when writing started (the tar's tape file). */
  tapeFile?: number;
  /** Index entries once written (the archive's meta member first). */
  entries?: IndexEntry[];
}

const J = 'j/';
const JI = 'ji/';
const JB = 'jb/';
const pad = (n: number) => String(n).padStart(8, '0');

let lastMs = 0;
/** Sortable by creation time: 9 base-36 digits of milliseconds, then random. */
export function newJobId(now = Date.now()): string {
  const ms = Math.max(now, lastMs + 1);
  lastMs = ms;
  return ms.toString(36).padStart(9, '0') + randomBytes(3).toString('hex');
}

export const isTerminal = (s: JobState) => s === 'done' || s === 'failed';

export class JobStore {
  constructor(private readonly store: KVStore) {}

  jobOp(job: JobRecord): BatchOp {
    return { type: 'put', key: J + job.id, value: JSON.stringify(job) };
  }
  itemOp(jobId: string, item: JobItem): BatchOp {
    return { type: 'put', key: `${JI}${jobId}/${pad(item.seq)}`, value: JSON.stringify(item) };
  }
  batchOp(jobId: string, batch: JobBatch): BatchOp {
    return { type: 'put', key: `${JB}${jobId}/${pad(batch.n)}`, value: JSON.stringify(batch) };
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const v = await this.store.get(J + id);
    return v === undefined ? undefined : (JSON.parse(v) as JobRecord);
  }

  async list(): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for await (const [, v] of this.store.entries(prefixRange(J))) out.push(JSON.parse(v) as JobRecord);
    return out;
  }

  async items(jobId: string): Promise<JobItem[]> {
    const out: JobItem[] = [];
    for await (const [, v] of this.store.entries(prefixRange(`${JI}${jobId}/`))) out.push(JSON.parse(v) as JobItem);
    return out;
  }

  async batches(jobId: string): Promise<JobBatch[]> {
    const out: JobBatch[] = [];
    for await (const [, v] of this.store.entries(prefixRange(`${JB}${jobId}/`))) out.push(JSON.parse(v) as JobBatch);
    return out;
  }

  /** Delete a job with its items and batches. */
  async remove(jobId: string): Promise<void> {
    const ops: BatchOp[] = [{ type: 'del', key: J + jobId }];
    for (const prefix of [`${JI}${jobId}/`, `${JB}${jobId}/`]) for await (const k of this.store.keys(prefixRange(prefix))) ops.push({ type: 'del', key: k });
    await this.store.batch(ops);
  }

  async write(ops: BatchOp[]): Promise<void> {
    await this.store.batch(ops);
  }
}
