// What a running job works with: the catalog, the tape library (interface only),
// its own durable record and progress reporting.

import type { Catalog } from '../catalog/catalog.js';
import type { BatchOp } from '../catalog/store.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { TapeLibrary } from '../tape/types.js';
import type { JobBatch, JobItem, JobRecord, JobStore } from './jobs.js';
import type { PoolStore } from './pool.js';
import type { DriveManager, MemberReaderOptions } from './tapeio.js';
import type { StubOptions } from './stubs.js';
import { fsSpace, type FsSpaceProbe } from '../util/free-space.js';

export class Interrupted extends Error {
  constructor() {
    super('job interrupted (service stopping); it resumes on the next start');
    this.name = 'Interrupted';
  }
}

/**
 * The job must stop for now (e.g. an automatic policy pass whose policy_window closed): thrown
 * at a safe point; the job goes back to the queue with its durable phases and runs on later.
 */
export class Paused extends Error {
  constructor(readonly why: string) {
    super(`job paused: ${why}`);
    this.name = 'Paused';
  }
}

/** A library that playback may ask drives back from (the staging worker's RemoteTapeLibrary). */
interface Preemptible {
  preemptRequested(): boolean;
  release(drive?: number): Promise<void>;
}

export interface JobTuning {
  /** Largest tar written in one go (default 8 GiB): disk space is freed batch by batch. */
  maxBatchBytes: number;
  maxBatchItems: number;
  reader: MemberReaderOptions;
  /** Bytes per drive write (default 1 MiB). */
  writeChunkBytes: number;
  /** Wait before a job resumes after its staging worker went away, times the attempt (capped at 5 s). */
  workerRetryMs: number;
  /** Free space of the file system holding a path (recall checks it before mounting). */
  fsSpace: FsSpaceProbe;
}

export const DEFAULT_TUNING: JobTuning = {
  maxBatchBytes: 8 * 1024 ** 3,
  maxBatchItems: 2000,
  reader: {},
  writeChunkBytes: 1 << 20,
  workerRetryMs: 1000,
  fsSpace,
};

export class JobContext {
  private lastEmit = 0;
  private lastSave = 0;
  /** Job writes are chained so a late progress write never overwrites a newer record. */
  private writes: Promise<void> = Promise.resolve();
  /** Items that ended failed, with the code of the first failure. */
  failures: { id: string; note: string; code: string }[] = [];

  constructor(
    readonly job: JobRecord,
    readonly catalog: Catalog,
    readonly library: TapeLibrary,
    readonly config: Config,
    readonly log: Logger,
    readonly jobs: JobStore,
    readonly pool: PoolStore,
    readonly drives: DriveManager,
    readonly stubOpts: StubOptions,
    readonly tuning: JobTuning,
    readonly signal: AbortSignal,
    private readonly emit: (job: JobRecord) => void,
    readonly noteNeeded: (label: string) => void,
    /** Why the job must stop now (undefined: it may go on); asked at every safe point. */
    private readonly holdReason: (job: JobRecord) => string | undefined = () => undefined,
  ) {}

  /** Wait for pending progress writes. */
  async flush(): Promise<void> {
    await this.writes;
  }

  /** Throws Interrupted when the service is stopping, Paused when the job must stop for now (at safe points). */
  checkpoint(): void {
    if (this.signal.aborted) throw new Interrupted();
    const why = this.holdReason(this.job);
    if (why !== undefined) throw new Paused(why);
  }

  /** True when the job must stop at its next safe point (end of the tar member being written). */
  pauseRequested(): boolean {
    return this.holdReason(this.job) !== undefined;
  }

  /** True when playback asked for a drive this job holds (see yieldToPlayback). */
  preemptRequested(): boolean {
    const lib = this.library as Partial<Preemptible>;
    return typeof lib.preemptRequested === 'function' && typeof lib.release === 'function' && lib.preemptRequested();
  }

  /**
   * At a safe point (the end of a tar member): when playback asked for the job's drive, give
   * every drive back and return true; the caller mounts again before its next tape operation
   * and so queues behind playback (the job's durable phases are untouched: it simply waits).
   */
  async yieldToPlayback(): Promise<boolean> {
    if (!this.preemptRequested()) return false;
    this.job.preempted = (this.job.preempted ?? 0) + 1;
    this.log.info({ job: this.job.id, kind: this.job.kind }, `${this.job.kind}: giving the drive to playback; the job resumes when a drive is free`);
    this.activity('paused: playback needs the drive');
    await (this.library as unknown as Preemptible).release();
    return true;
  }

  /** Persist the job record together with other ops (one batch), and tell listeners. */
  async save(ops: BatchOp[] = []): Promise<void> {
    this.job.updated = new Date().toISOString();
    const batch = [...ops, this.jobs.jobOp(this.job)];
    const w = this.writes.then(() => this.jobs.write(batch));
    this.writes = w.catch(() => undefined);
    await w;
    this.lastSave = Date.now();
    this.lastEmit = this.lastSave;
    this.emit(this.job);
  }

  async saveItem(item: JobItem, ops: BatchOp[] = []): Promise<void> {
    await this.save([this.jobs.itemOp(this.job.id, item), ...ops]);
  }

  async saveBatch(batch: JobBatch, ops: BatchOp[] = []): Promise<void> {
    await this.save([this.jobs.batchOp(this.job.id, batch), ...ops]);
  }

  itemOp(item: JobItem): BatchOp {
    return this.jobs.itemOp(this.job.id, item);
  }

  activity(text: string): void {
    this.job.activity = text;
    this.tell(true);
  }

  /** Count item bytes done; listeners hear about it at most 5 times a second. */
  addBytes(n: number): void {
    this.job.progress.bytesDone += n;
    this.tell();
  }

  /** Archive: count item bytes written to tape (the write pass; addBytes counts the verify pass). */
  addWritten(n: number): void {
    this.job.progress.bytesWritten = (this.job.progress.bytesWritten ?? 0) + n;
    this.tell();
  }

  itemDone(): void {
    this.job.progress.itemsDone++;
    this.tell();
  }

  private tell(force = false): void {
    const now = Date.now();
    if (!force && now - this.lastEmit < 200) return;
    this.lastEmit = now;
    this.emit(this.job);
    // Progress is persisted now and then; phases are persisted when they change.
    if (now - this.lastSave > 2000) {
      this.lastSave = now;
      const batch = [this.jobs.jobOp(this.job)];
      this.writes = this.writes
        .then(() => this.jobs.write(batch))
        .catch((err: Error) => this.log.warn({ job: this.job.id, err: err.message }, 'cannot save job progress'));
    }
  }

  fail(item: JobItem, note: string, code = 'FAILED'): void {
    item.phase = 'failed';
    item.note = note;
    this.failures.push({ id: item.id, note, code });
    this.log.warn({ job: this.job.id, item: item.id, note }, `${this.job.kind}: item failed`);
  }
}
