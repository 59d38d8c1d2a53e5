// ArchiveService: archive, recall and import as durable jobs over the catalog
// and a TapeLibrary (local, or a proxy to the staging worker: only the
// interface is used), plus the operator's cartridge commands. Transport-agnostic:
// the CLI calls it directly, the server exposes it on the control socket.
//
// One job runs at a time (tape drives are few and jobs stream); cartridge
// commands (label, export) wait for the running job. Emits 'job' with a copy of
// the JobRecord on every state change and at most 5 times a second while a job
// makes progress.

import { formatBytes } from '../util/units.js';
import { EventEmitter } from 'node:events';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { readIndex, writeArchive } from '../tape/format.js';
import { LABEL_RE, isTapeError, type TapeLibrary } from '../tape/types.js';
import { cleanupArchive, runArchive } from './archive-job.js';
import { DEFAULT_TUNING, Interrupted, JobContext, Paused, type JobTuning } from './context.js';
import { ArchiveError, errorCode, messageOf, type ArchiveErrorCode } from './errors.js';
import { runImport } from './import-job.js';
import { isTerminal, JobStore, newJobId, type JobItem, type JobKind, type JobOptions, type JobRecord, type JobStubOptions } from './jobs.js';
import { prefixRange } from '../catalog/store.js';
import { LABEL_MEMBER, labelMember, PoolStore, type CartridgeRecord } from './pool.js';
import { cleanupRecall, loadedLabels, runRecall } from './recall-job.js';
import { stubPath, type StubOptions } from './stubs.js';
import { headStubSeconds } from './stub-seconds.js';
import { DriveManager } from './tapeio.js';
import { resolveTargets } from './targets.js';
import { MAX_HOLD_LABELS } from '../staging/recall-holds.js';

/** A job interrupted this many times (crash loop) is failed instead of resumed. */

/** Catalog-store keys of the cartridges noted as needed while offline. */
const NEEDED = 'tn/';
export const MAX_ATTEMPTS = 5;

/**
 * The staging worker's connection failed (WORKER_DOWN of src/staging, which its remote tape
 * library passes on as a TapeError with details.stagerCode): transient, the supervisor restarts it.
 */
function isWorkerDown(err: unknown): boolean {
  const e = err as { code?: unknown; details?: { stagerCode?: unknown } } | null;
  return e?.code === 'WORKER_DOWN' || e?.details?.stagerCode === 'WORKER_DOWN';
}

/**
 * The job's drive was used by someone else (playback) while the job had let it go between its
 * calls (src/staging/job-drives.ts: BAD_POSITION with details.driveLost): its position is gone,
 * nothing was written or read wrongly. Transient: the job resumes from its durable state, which
 * mounts and positions again.
 */
export function isDriveLost(err: unknown): boolean {
  const e = err as { details?: { driveLost?: unknown } } | null;
  return e?.details?.driveLost === true;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
/**
 * How long the staging worker keeps a queued loadedOnly recall's cartridges loaded at most (the
 * job ends the hold when it has run; src/staging/recall-holds.ts).
 */
export const RECALL_HOLD_MS = 30 * 60_000;

/** A library that can keep cartridges loaded for a queued recall (the staging worker's remote library). */
interface HoldingLibrary {
  hold(labels: string[], ms: number): Promise<string>;
  unhold(id: string): Promise<void>;
}

/** A library whose calls can be abandoned at stop (the staging worker's remote library: a job may wait there for a drive). */
interface AbandoningLibrary {
  abandonCalls(): void;
  resumeCalls(): void;
}

/** Finished jobs kept (the oldest beyond this are deleted when jobs are resumed). */
export const KEEP_FINISHED_JOBS = 500;

export interface ArchiveServiceOptions {
  catalog: Catalog;
  library: TapeLibrary;
  config: Config;
  log: Logger;
  tuning?: Partial<JobTuning>;
}

export interface DriveInfo {
  index: number;
  name: string;
  loaded: boolean;
  label?: string;
  ready: boolean;
  online: boolean;
  block?: number;
}

export interface CartridgeInfo {
  label: string;
  where: 'slot' | 'drive' | 'ie' | 'offline' | 'unknown';
  slot?: number;
  drive?: number;
  /** Labelled by Tapedeck: archives may be appended. */
  pool: boolean;
  blockSize?: number;
  capacityBytes?: number;
  usedBytes?: number;
  freeBytes?: number;
  full?: boolean;
  /** Catalog items with a copy on this cartridge, and their bytes. */
  items: number;
  bytes: number;
  /** Offline and wanted by a request. */
  needed: boolean;
}

export interface TapeStatus {
  backend: TapeLibrary['kind'];
  drives: DriveInfo[];
  slots: { slot: number; label?: string; importExport: boolean }[];
  cartridges: CartridgeInfo[];
  offline: string[];
  needed: string[];
  pool: { cartridges: number; freeBytes: number };
}

export interface LabelResult {
  label: string;
  /** A new (virtual) cartridge was created. */
  created: boolean;
  /** A label archive was written (the cartridge was blank). */
  written: boolean;
  pool: true;
  freeBytes?: number;
}

type Runner = (ctx: JobContext) => Promise<Record<string, unknown>>;
const RUNNERS: Record<JobKind, Runner> = { archive: runArchive, recall: runRecall, import: runImport };
const CLEANUPS: Partial<Record<JobKind, (ctx: JobContext) => Promise<void>>> = { archive: cleanupArchive, recall: cleanupRecall };

export class ArchiveService extends EventEmitter {
  readonly catalog: Catalog;
  readonly library: TapeLibrary;
  readonly config: Config;
  readonly log: Logger;
  readonly jobs: JobStore;
  readonly pool: PoolStore;
  readonly drives: DriveManager;
  readonly tuning: JobTuning;
  /** Offline cartridges a request or job wanted; also kept in the catalog store (NEEDED/<label>), so `tape ls` in another process sees them. */
  private readonly needed = new Set<string>();
  private neededWrites: Promise<unknown> = Promise.resolve();
  private exclusive: Promise<unknown> = Promise.resolve();
  private readonly running = new Map<string, Promise<JobRecord>>();
  private abort = new AbortController();
  private stopped = true;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Holds on the cartridges of queued loadedOnly recall jobs (job id → what ends the hold). */
  private readonly recallHolds = new Map<string, () => void>();
  /** Why a job must not run now (undefined: it may); see setHold. */
  private hold: (job: JobRecord) => string | undefined = () => undefined;

  constructor(opts: ArchiveServiceOptions) {
    super();
    this.catalog = opts.catalog;
    this.library = opts.library;
    this.config = opts.config;
    this.log = opts.log;
    this.jobs = new JobStore(opts.catalog.store);
    this.pool = new PoolStore(opts.catalog.store);
    this.drives = new DriveManager(opts.library);
    this.tuning = { ...DEFAULT_TUNING, ...(opts.tuning ?? {}) };
    this.setMaxListeners(100); // one per watching CLI on the control socket
  }

  get stubOptions(): StubOptions {
    return { headSeconds: headStubSeconds(this.config), headMin: this.config.headStubMin, tailBytes: this.config.headStubTail };
  }

  // --- jobs -------------------------------------------------------------------------

  /**
   * Who decides when a job must wait (the policy engine: jobs with `opts.window` outside
   * policy_window). A held job stops at its next safe point and goes back to the queue; the
   * runner skips it until poke() finds it runnable again.
   */
  setHold(hold: (job: JobRecord) => string | undefined): void {
    this.hold = hold;
  }

  /** Makes the background runner look at the queue again (e.g. the policy window opened). */
  poke(): void {
    this.wake?.();
  }

  /** Validate and queue a job. Unknown IDs, paths or labels: ArchiveError NOT_FOUND (nothing queued). */
  async submit(kind: JobKind, targets: string[], opts: JobOptions = {}): Promise<JobRecord> {
    if (!['archive', 'recall', 'import'].includes(kind)) throw new ArchiveError('INVALID', `unknown job kind ${String(kind)}`);
    const items: JobItem[] = [];
    const labels = new Set<string>();
    if (kind === 'import') {
      if (!Array.isArray(targets) || targets.length === 0) throw new ArchiveError('INVALID', 'name the cartridge(s) to import');
      for (const label of targets) await this.drives.where(String(label));
    } else {
      const ids = await resolveTargets(this.catalog, targets);
      for (const id of ids) {
        const obj = await this.catalog.get(id);
        const size = kind === 'archive' ? obj?.location?.disk?.size ?? obj?.res?.size : obj?.location?.tape?.size ?? obj?.res?.size;
        if (kind === 'recall' && obj?.location?.tape && !obj.location.disk) labels.add(obj.location.tape.label);
        items.push({ seq: items.length, id, phase: 'pending', ...(size !== undefined ? { size } : {}) });
      }
    }
    const now = new Date().toISOString();
    const job: JobRecord = {
      id: newJobId(),
      kind,
      state: 'queued',
      targets: targets.map(String),
      opts: {
        ...(opts.keepDisk ? { keepDisk: true } : {}),
        ...(opts.stub ? { stub: checkStub(opts.stub) } : {}),
        ...(opts.collocate ? { collocate: true } : {}),
        ...(opts.origin === 'policy' ? { origin: 'policy' as const } : {}),
        ...(opts.window ? { window: true as const } : {}),
        ...(opts.rule === 'container-plays' ? { rule: 'container-plays' as const } : {}),
        ...(opts.trigger === 'play' ? { trigger: 'play' as const } : {}),
        ...(opts.loadedOnly ? { loadedOnly: true as const } : {}),
      },
      created: now,
      updated: now,
      progress: { bytesDone: 0, bytesTotal: items.reduce((n, i) => n + (i.size ?? 0), 0), itemsDone: 0, itemsTotal: kind === 'import' ? targets.length : items.length },
      attempts: 0,
    };
    await this.jobs.write([this.jobs.jobOp(job), ...items.map((i) => this.jobs.itemOp(job.id, i))]);
    if (job.opts.loadedOnly) this.recallHolds.set(job.id, this.holdCartridges([...labels]));
    this.emit('job', clone(job));
    this.wake?.();
    return job;
  }

  /**
   * Keeps cartridges loaded for a loadedOnly recall, which reads only from cartridges in a drive:
   * the worker does not unload them for idleness (playback of another cartridge may still take the
   * drive) until the function returned is called, RECALL_HOLD_MS at most. submit() holds a queued
   * loadedOnly recall's cartridges until the job has run; the policy engine holds a hot
   * container's while it plans its promotion. Best effort: a library that cannot hold, or a worker
   * that is away, changes nothing but the chance that the recall finds its cartridge.
   */
  holdCartridges(labels: string[]): () => void {
    const lib = this.library as TapeLibrary & Partial<HoldingLibrary>;
    if (labels.length === 0 || typeof lib.hold !== 'function' || typeof lib.unhold !== 'function') return () => undefined;
    // the worker refuses a hold naming more than MAX_HOLD_LABELS cartridges (the whole hold, not
    // the excess): a job recalling from more keeps the first ones (only those in a drive matter)
    const want = [...new Set(labels)].slice(0, MAX_HOLD_LABELS);
    const held = lib.hold(want, RECALL_HOLD_MS).catch((err: unknown) => {
      this.log.debug({ labels, err: messageOf(err) }, 'cannot keep cartridges loaded for a recall');
      return undefined;
    });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // after the hold's answer, so it goes after every hold asked before it (no gap between them)
      void held.then((id) => (id ? lib.unhold!(id) : undefined)).catch(() => undefined); // the worker drops it anyway when the connection goes
    };
  }

  /** The job has run (done, failed, paused or interrupted): its cartridges may be unloaded again. */
  private releaseCartridges(jobId: string): void {
    const release = this.recallHolds.get(jobId);
    this.recallHolds.delete(jobId);
    release?.();
  }

  /** Run a job to its end (or until the service stops). Concurrent calls share one run. */
  run(id: string): Promise<JobRecord> {
    const existing = this.running.get(id);
    if (existing) return existing;
    const p = this.serial(() => this.execute(id)).finally(() => {
      this.running.delete(id);
      this.releaseCartridges(id);
    });
    this.running.set(id, p);
    return p;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return this.jobs.get(id);
  }

  async list(): Promise<JobRecord[]> {
    return this.jobs.list();
  }

  async items(id: string): Promise<JobItem[]> {
    return this.jobs.items(id);
  }

  /** Finish or fail every interrupted job; clean leftovers (temp stub files, orphan stubs) and old finished jobs. */
  async resume(): Promise<void> {
    await this.cleanLeftovers();
    const finished = (await this.list()).filter((j) => isTerminal(j.state));
    for (const j of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED_JOBS))) await this.jobs.remove(j.id);
    for (const job of await this.list()) {
      if (job.state !== 'running') continue;
      this.log.info({ job: job.id, kind: job.kind }, 'resuming interrupted job');
      await this.run(job.id);
    }
  }

  /** Background runner (server): resume, then run queued jobs one at a time until stop(). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.abort.signal.aborted) this.abort = new AbortController();
    (this.library as Partial<AbandoningLibrary>).resumeCalls?.();
    this.loop = this.runLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    // a job waiting in the staging worker (for a drive playback holds, then a mount of its own)
    // stops now as interrupted, not after that wait and mount (minutes of tape time)
    (this.library as Partial<AbandoningLibrary>).abandonCalls?.();
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.running.values()]);
    for (const id of [...this.recallHolds.keys()]) this.releaseCartridges(id);
    await this.neededWrites;
    this.loop = undefined;
  }

  private async runLoop(): Promise<void> {
    try {
      await this.resume();
    } catch (err) {
      this.log.error({ err: messageOf(err) }, 'cannot resume interrupted jobs');
    }
    while (!this.stopped) {
      const next = (await this.list().catch(() => [] as JobRecord[])).find((j) => j.state === 'queued' && this.hold(j) === undefined);
      if (next) {
        await this.run(next.id).catch((err: unknown) => this.log.error({ job: next.id, err: messageOf(err) }, 'job runner error'));
        continue;
      }
      await new Promise<void>((resolve) => {
        // stop() may have come while the jobs were listed: its wake found nobody waiting
        if (this.stopped) resolve();
        else this.wake = resolve;
      });
      this.wake = undefined;
    }
  }

  /**
   * One tape operation at a time; afterwards drive reservations are given back
   * when the library is a proxy that keeps them (the staging worker's release()).
   */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const lib = this.library as TapeLibrary & { release?: () => Promise<void> };
    const fn = async () => {
      try {
        return await op();
      } finally {
        if (typeof lib.release === 'function') await lib.release().catch(() => undefined);
      }
    };
    const p = this.exclusive.then(fn, fn);
    this.exclusive = p.catch(() => undefined);
    return p;
  }

  private async execute(id: string): Promise<JobRecord> {
    let job = await this.jobs.get(id);
    if (!job) throw new ArchiveError('NOT_FOUND', `no job ${id}`);
    if (isTerminal(job.state)) return job;
    job.state = 'running';
    job.started ??= new Date().toISOString();
    for (;;) {
      job.attempts = (job.attempts ?? 0) + 1;
      const outcome = await this.attempt(job);
      if (outcome !== 'again') return outcome;
      job = (await this.jobs.get(id)) ?? job; // resume from what is durable, as after a restart
    }
  }

  /**
   * One run of a job's runner. 'again' when the staging worker went away under it (killed,
   * crashed): the job resumes from its durable state, as after a restart, once the supervisor has
   * the worker back, instead of failing; MAX_ATTEMPTS still bounds a crash loop.
   */
  private async attempt(job: JobRecord): Promise<JobRecord | 'again'> {
    const ctx = new JobContext(
      job,
      this.catalog,
      this.library,
      this.config,
      this.log,
      this.jobs,
      this.pool,
      this.drives,
      { ...this.stubOptions, ...job.opts.stub },
      this.tuning,
      this.abort.signal,
      (j) => this.emit('job', clone(j)),
      (label) => this.noteNeeded(label),
      (j) => this.hold(j),
    );
    try {
      if (job.attempts > MAX_ATTEMPTS) throw new ArchiveError('FAILED', `interrupted ${job.attempts - 1} times; giving up`);
      await ctx.save();
      ctx.checkpoint();
      const result = await RUNNERS[job.kind](ctx);
      await ctx.flush();
      job.result = result;
      if (ctx.failures.length) {
        const first = ctx.failures[0];
        job.state = 'failed';
        job.code = first.code as ArchiveErrorCode;
        job.reason = `${ctx.failures.length} of ${job.progress.itemsTotal} item(s) failed: ${first.id}: ${first.note}`;
      } else {
        job.state = 'done';
        job.progress.bytesDone = job.progress.bytesTotal;
        if (job.kind === 'archive') job.progress.bytesWritten = job.progress.bytesTotal;
      }
    } catch (err) {
      await ctx.flush();
      if (err instanceof Paused) {
        // not a crash: back to the queue, to resume from its durable phases when it may run again
        this.log.info({ job: job.id, kind: job.kind, why: err.why }, `${job.kind} job ${job.id} paused at a safe point: ${err.why}`);
        job.state = 'queued';
        job.attempts = Math.max(0, job.attempts - 1);
        job.activity = `paused: ${err.why}`;
        await ctx.save();
        return clone(job);
      }
      if (err instanceof Interrupted || (this.abort.signal.aborted && !(err instanceof ArchiveError))) {
        job.activity = 'interrupted; resumes on the next start';
        await ctx.save();
        return clone(job);
      }
      if (isWorkerDown(err) && job.attempts < MAX_ATTEMPTS && !this.abort.signal.aborted) {
        this.log.warn({ job: job.id, kind: job.kind, attempt: job.attempts, err: messageOf(err) }, 'staging worker lost during the job; it resumes once the worker is back');
        job.activity = 'staging worker restarted; resuming';
        await ctx.save();
        await abortableDelay(Math.min(this.tuning.workerRetryMs * job.attempts, 5000), this.abort.signal);
        if (!this.abort.signal.aborted) return 'again';
        job.activity = 'interrupted; resumes on the next start';
        await ctx.save();
        return clone(job);
      }
      if (isDriveLost(err) && job.attempts < MAX_ATTEMPTS && !this.abort.signal.aborted) {
        this.log.warn({ job: job.id, kind: job.kind, attempt: job.attempts, err: messageOf(err) }, 'the job lost its drive to playback between two calls; it resumes from its durable state');
        job.activity = 'drive taken by playback; resuming';
        await ctx.save();
        return 'again';
      }
      this.log.warn({ job: job.id, kind: job.kind, err: messageOf(err) }, 'job failed');
      try {
        await CLEANUPS[job.kind]?.(ctx);
      } catch (e) {
        this.log.error({ job: job.id, err: messageOf(e) }, 'cleanup after a failed job failed');
      }
      job.state = 'failed';
      job.code = errorCode(err);
      job.reason = messageOf(err);
    }
    delete job.activity;
    job.finished = new Date().toISOString();
    await ctx.save();
    this.logOutcome(job);
    return clone(job);
  }

  /** One line per finished job: info when done, warn when items failed (an exception is logged where caught). */
  private logOutcome(job: JobRecord): void {
    const p = job.progress;
    const fields = {
      job: job.id,
      kind: job.kind,
      items: p.itemsDone,
      bytes: job.kind === 'import' ? undefined : p.bytesTotal,
      ms: job.started ? Date.parse(job.finished!) - Date.parse(job.started) : undefined,
      attempts: job.attempts,
      result: job.result,
    };
    const what = job.kind === 'import' ? `${p.itemsDone} cartridge(s)` : `${p.itemsDone} item(s), ${formatBytes(p.bytesTotal)}`;
    if (job.state === 'done') this.log.info(fields, `${job.kind} job ${job.id} done: ${what}`);
    else if (job.state === 'failed' && job.result) this.log.warn({ ...fields, code: job.code, reason: job.reason }, `${job.kind} job ${job.id} failed: ${job.reason}`);
  }

  private async cleanLeftovers(): Promise<void> {
    const dir = join(this.config.dataDir, 'stubs');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      if (name.endsWith('.tmp')) {
        await rm(path, { force: true });
        continue;
      }
      if (!name.endsWith('.stub')) continue;
      const id = name.slice(0, -5);
      const obj = await this.catalog.get(id);
      // A running archive job rewrites the stubs it has not committed yet.
      if (obj?.location?.stub?.path !== path && path === stubPath(this.config.dataDir, id)) await rm(path, { force: true });
    }
  }

  // --- cartridges ---------------------------------------------------------------------

  /** A request wanted this offline cartridge (shown by `tape ls`, also from another process). */
  noteNeeded(label: string): void {
    if (this.needed.has(label)) return;
    this.needed.add(label);
    this.neededWrites = this.neededWrites
      .then(() => this.catalog.store.batch([{ type: 'put', key: NEEDED + label, value: new Date().toISOString() }]))
      .catch((err: Error) => this.log.warn({ label, err: err.message }, 'could not record the needed cartridge'));
  }

  /**
   * Labels of the cartridges in a drive now, from the changer's inventory: what a loadedOnly recall
   * job checks before it reads (recall-job.ts), and what a policy plan counts as loaded.
   */
  async loadedCartridges(): Promise<string[]> {
    return loadedLabels(this.library);
  }

  /**
   * Labels of the cartridges outside the library, from the changer's inventory: what a policy
   * plan needs, without the pass over the catalog that tapeStatus makes for its item counts.
   */
  async offlineCartridges(): Promise<string[]> {
    return [...new Set((await this.library.changer.inventory()).offline ?? [])].sort();
  }

  /** The last cartridgeUsage() read and the catalog generation it was read at. */
  private usageRead?: { gen: number; usage: Promise<Map<string, { items: number; bytes: number }>> };

  /**
   * Items and bytes per cartridge: one pass over the catalog's items as they are read (never all
   * of them in memory: at 100,000 items an array of them took ~110 MB of the server's heap, on
   * every status page refresh and every policy plan), made again only once the catalog changed.
   */
  private cartridgeUsage(): Promise<Map<string, { items: number; bytes: number }>> {
    const gen = this.catalog.generation;
    if (this.usageRead?.gen === gen) return this.usageRead.usage;
    const usage = (async () => {
      const out = new Map<string, { items: number; bytes: number }>();
      for await (const item of this.catalog.eachItem()) {
        const t = item.location?.tape;
        if (!t) continue;
        const u = out.get(t.label) ?? { items: 0, bytes: 0 };
        u.items++;
        u.bytes += t.size;
        out.set(t.label, u);
      }
      return out;
    })();
    this.usageRead = { gen, usage };
    // a failed read is not kept; one made while the catalog changed is kept under the old generation
    usage.catch(() => {
      if (this.usageRead?.usage === usage) this.usageRead = undefined;
    });
    return usage;
  }

  async tapeStatus(): Promise<TapeStatus> {
    const inv = await this.library.changer.inventory();
    const recs = new Map((await this.pool.list()).map((r) => [r.label, r]));
    const driveStatus = await Promise.all(this.library.drives.map((d) => d.status()));
    const usage = await this.cartridgeUsage();
    const offline = new Set(inv.offline ?? []);
    await this.neededWrites;
    for await (const k of this.catalog.store.keys(prefixRange(NEEDED))) this.needed.add(k.slice(NEEDED.length));
    const back = [...this.needed].filter((l) => !offline.has(l)); // imported again (or gone): no longer needed
    for (const l of back) this.needed.delete(l);
    if (back.length) await this.catalog.store.batch(back.map((l) => ({ type: 'del' as const, key: NEEDED + l })));
    const carts = new Map<string, CartridgeInfo>();
    const add = (label: string, where: CartridgeInfo['where'], extra: Partial<CartridgeInfo> = {}) => {
      const rec = recs.get(label);
      const u = usage.get(label) ?? { items: 0, bytes: 0 };
      const info: CartridgeInfo = { label, where, pool: rec?.pool === true, items: u.items, bytes: u.bytes, needed: this.needed.has(label), ...extra };
      if (rec?.blockSize !== undefined) info.blockSize = rec.blockSize;
      if (rec?.capacityBytes !== undefined) info.capacityBytes = rec.capacityBytes;
      if (rec?.usedBytes !== undefined) info.usedBytes = rec.usedBytes;
      if (rec?.remainingBytes !== undefined) info.freeBytes = rec.remainingBytes;
      if (rec?.full) info.full = true;
      carts.set(label, info);
    };
    for (const s of inv.slots) if (s.full && s.label) add(s.label, 'slot', { slot: s.slot });
    for (const s of inv.ie) if (s.full && s.label) add(s.label, 'ie', { slot: s.slot });
    for (const d of inv.drives) {
      if (!d.full || !d.label) continue;
      add(d.label, 'drive', { drive: d.drive, ...(d.sourceSlot !== undefined ? { slot: d.sourceSlot } : {}) });
      const st = driveStatus[d.drive];
      const info = carts.get(d.label)!;
      if (st?.blockSize) info.blockSize = st.blockSize;
      if (st?.capacityBytes !== undefined) info.capacityBytes = st.capacityBytes;
      if (st?.remainingBytes !== undefined && st.capacityBytes !== undefined) {
        info.freeBytes = st.remainingBytes;
        info.usedBytes = st.capacityBytes - st.remainingBytes;
      }
    }
    for (const l of offline) add(l, 'offline');
    for (const l of recs.keys()) if (!carts.has(l)) add(l, 'unknown');
    const cartridges = [...carts.values()].sort((a, b) => a.label.localeCompare(b.label));
    const poolCarts = cartridges.filter((c) => c.pool && c.where !== 'offline' && c.where !== 'unknown' && !c.full);
    return {
      backend: this.library.kind,
      drives: driveStatus.map((s) => {
        const d: DriveInfo = { index: s.index, name: s.name, loaded: s.loaded, ready: s.ready, online: s.online };
        if (s.label) d.label = s.label;
        if (s.position) d.block = s.position.block;
        return d;
      }),
      slots: [...inv.slots, ...inv.ie].map((s) => ({ slot: s.slot, importExport: s.importExport, ...(s.label ? { label: s.label } : {}) })),
      cartridges,
      offline: [...offline].sort(),
      needed: [...this.needed].sort(),
      pool: { cartridges: poolCarts.length, freeBytes: poolCarts.reduce((n, c) => n + (c.freeBytes ?? 0), 0) },
    };
  }

  /**
   * Add cartridges to the archive pool. A blank cartridge gets a label archive;
   * one already labelled by Tapedeck is just registered; one holding other data
   * is refused unless `force`. The virtual library creates unknown labels (and,
   * with no label given, the next free TDnnnnLg).
   */
  label(labels: string[], opts: { force?: boolean } = {}): Promise<LabelResult[]> {
    return this.serial(async () => {
      const virt = this.library as TapeLibrary & { createCartridge?: (label: string) => Promise<void> };
      const canCreate = typeof virt.createCartridge === 'function';
      let list = labels;
      if (list.length === 0) {
        if (!canCreate) throw new ArchiveError('INVALID', 'name the cartridge(s) to label');
        list = [await this.nextLabel()];
      }
      const out: LabelResult[] = [];
      for (const label of list) {
        if (!LABEL_RE.test(label)) throw new ArchiveError('INVALID', `invalid cartridge label "${label}" (expected six letters/digits and the media id, e.g. TD0001L9)`);
        let created = false;
        try {
          await this.drives.where(label);
        } catch (err) {
          if (!(err instanceof ArchiveError && err.code === 'NOT_FOUND') || !canCreate) throw err;
          try {
            await virt.createCartridge!.call(this.library, label);
          } catch (e) {
            if (isTapeError(e, 'FULL')) throw new ArchiveError('NO_ROOM', `no free slot for a new cartridge ${label}`, { label });
            throw e;
          }
          created = true;
        }
        const drive = await this.drives.mount(label);
        await drive.seekToEod();
        let written = false;
        if ((await drive.tell()) === 0) {
          await writeArchive(drive, [labelMember(label)], { label });
          written = true;
        } else {
          let ours = false;
          try {
            ours = (await readIndex(drive, 1)).entries.some((e) => e.path === LABEL_MEMBER);
          } catch (err) {
            if (!isTapeError(err)) throw err;
          }
          if (!ours && !opts.force) {
            throw new ArchiveError('INVALID', `${label} holds data not written by Tapedeck: catalog it with \`tapedeck tape import ${label}\`, or add it to the archive pool anyway with --force (archives are then appended after that data)`, { label });
          }
        }
        const st = await drive.status();
        const prev = await this.pool.get(label);
        const rec: CartridgeRecord = { ...(prev ?? {}), label, pool: true, labelled: prev?.labelled ?? new Date().toISOString(), full: false, updated: '' };
        if (st.blockSize) rec.blockSize = st.blockSize;
        if (st.capacityBytes !== undefined) rec.capacityBytes = st.capacityBytes;
        if (st.remainingBytes !== undefined) {
          rec.remainingBytes = st.remainingBytes;
          if (st.capacityBytes !== undefined) rec.usedBytes = st.capacityBytes - st.remainingBytes;
        }
        if (rec.remainingBytes === 0) rec.full = true;
        await this.pool.put(rec);
        const r: LabelResult = { label, created, written, pool: true };
        if (rec.remainingBytes !== undefined) r.freeBytes = rec.remainingBytes;
        out.push(r);
      }
      return out;
    });
  }

  private async nextLabel(): Promise<string> {
    const inv = await this.library.changer.inventory();
    const known = new Set<string>([...(inv.offline ?? []), ...(await this.pool.list()).map((r) => r.label)]);
    for (const s of [...inv.slots, ...inv.ie, ...inv.drives]) if (s.label) known.add(s.label);
    const virt = this.library as TapeLibrary & { labels?: () => Promise<string[]> };
    if (typeof virt.labels === 'function') for (const l of await virt.labels.call(this.library)) known.add(l);
    const suffix = `L${this.config.tape.generation.slice(4)}`;
    for (let n = 1; n < 10000; n++) {
      const l = `TD${String(n).padStart(4, '0')}${suffix}`;
      if (!known.has(l)) return l;
    }
    throw new ArchiveError('INVALID', 'no free TDnnnn label left');
  }

  /** Move a cartridge out of the library (unloading it first). */
  exportCartridge(label: string): Promise<{ label: string; offline: true }> {
    return this.serial(async () => {
      const w = await this.drives.where(label);
      if (w.where === 'offline') throw new ArchiveError('INVALID', `${label} is already offline`, { label });
      if (w.where === 'drive') await this.library.changer.unload(w.drive);
      try {
        await this.library.changer.exportCartridge(label);
      } catch (err) {
        if (isTapeError(err, 'FULL')) throw new ArchiveError('BUSY', `cannot export ${label}: ${messageOf(err)}`, { label, cause: err });
        throw err;
      }
      return { label, offline: true as const };
    });
  }

  /** A pool cartridge that is online and not full, labelling a new one when there is none (virtual library). */
  async ensurePool(): Promise<string> {
    for (const rec of await this.pool.list()) {
      if (!rec.pool || rec.full) continue;
      try {
        const w = await this.drives.where(rec.label);
        if (w.where !== 'offline') return rec.label;
      } catch {
        // unknown to the library
      }
    }
    const [r] = await this.label([]);
    return r.label;
  }
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** A job's stub sizes: non-negative finite numbers only. */
function checkStub(stub: JobStubOptions): JobStubOptions {
  const out: JobStubOptions = {};
  for (const key of ['headSeconds', 'headMin', 'tailBytes', 'mergeGap'] as const) {
    const v = stub[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ArchiveError('INVALID', `stub ${key} must be a non-negative number, got ${JSON.stringify(v)}`);
    out[key] = v;
  }
  return out;
}
