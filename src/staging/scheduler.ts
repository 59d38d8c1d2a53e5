// Drive scheduling and admission inside the staging worker (DESIGN.md §7).
//
// Drives are reserved resources: whoever uses a drive holds a lease on it, and
// nobody else touches it meanwhile. A request asks for a lease on a drive that
// holds cartridge `label` (the scheduler mounts it when needed) or on one
// particular drive as it is (archive/recall jobs).
//
// Queue order: priority first (interactive, then prefetch, then jobs); within a
// priority, requests for the same cartridge are served in block order and
// cartridges in order of their oldest request. When a drive frees up, a waiting
// request that needs the cartridge it holds is served before any request that
// would swap it (within the same priority; a higher priority may swap out a
// cartridge only lower priorities want). A request whose cartridge is in a busy
// drive waits for that drive. A request that finds no drive within its
// admission timeout is rejected with ADMISSION_TIMEOUT (→ 503 + Retry-After);
// one for an exported cartridge is rejected at once with OFFLINE, and the
// cartridge is remembered as "needed" for the operator.
//
// An idle drive (no lease for `idleUnloadMs`) is unloaded unless a waiting
// request wants its cartridge or a client still streams from it (opts.inUse).
//
// A drive without a lease is free, whoever played from it last: a read of another
// cartridge swaps it at once rather than waiting for a client's playback hold (or
// the idle timer) to end. With several free drives loaded, it unloads the one
// whose clients lose least (opts.swapLoss): one nobody plays from, then one whose
// clients only play bytes they already have (the most playback left first), and
// only last one a client still reads from. A lease (a pass reading) is never taken.
//
// Pre-emption: an interactive request that cannot be served because every drive
// (or the drive holding its cartridge) is leased to a job asks one job lease per
// blocked request to give its drive back ('preempt' event, lease.onPreempt): the
// job does so at its next safe point (end of the current tar member) and queues
// again at job priority, so the interactive request gets the drive long before
// its admission timeout. A lease is asked at most once; prefetch never pre-empts.

import { EventEmitter } from 'node:events';
import { isTapeError, type TapeDrive, type TapeLibrary } from '../tape/types.js';
import { PRIORITY_RANK, StagerError, type Priority } from './protocol.js';
import type { WorkerLog } from './log.js';

export interface AcquireRequest {
  /** Cartridge the lease must come with (mounted when needed). */
  label?: string;
  /** One particular drive (jobs operating a drive directly). */
  drive?: number;
  /** Block the request will start reading at (orders requests for one cartridge). */
  block?: number;
  priority: Priority;
  signal?: AbortSignal;
  /** Who asks (status display), e.g. "item 42" or "job". */
  owner?: string;
  /** Admission timeout for this request (ms); default: the scheduler's. */
  timeoutMs?: number;
  /** Only a drive that holds (or is loading) the cartridge: never a mount for this request. */
  noMount?: boolean;
}

export interface DriveLease {
  readonly index: number;
  readonly drive: TapeDrive;
  readonly priority: Priority;
  readonly owner: string;
  /** Label loaded when the lease was granted (undefined: empty drive). */
  readonly label: string | undefined;
  readonly released: boolean;
  /** Playback asked for this (job) drive: give it back at the next safe point. */
  readonly preemptAsked: boolean;
  /** Called once when playback asks for this lease's drive (job leases). */
  onPreempt(cb: () => void): void;
  release(): void;
}

export interface SchedulerOptions {
  /** Default admission timeout (ms). */
  admissionTimeoutMs: number;
  /** Unload a cartridge whose drive has been idle this long (ms); 0 = never. */
  idleUnloadMs: number;
  /** Retry-After (s) announced with admission timeouts. */
  retryAfter?: number;
  /** Retry-After (s) announced for offline cartridges. */
  offlineRetryAfter?: number;
  log?: WorkerLog;
  now?: () => number;
  /** True while clients stream from cartridge `label`: its drive is not unloaded for idleness meanwhile. */
  inUse?: (label: string) => boolean;
  /**
   * What unloading cartridge `label` would cost the clients playing from it (0 = nothing; larger
   * = more): a swap unloads the free drive whose cartridge costs least. Default: 1 while inUse.
   */
  swapLoss?: (label: string) => number;
}

export interface SchedulerCounters {
  admissions: number;
  queued: number;
  admissionTimeouts: number;
  rejectedOffline: number;
  cancelledWaits: number;
  mounts: number;
  unloads: number;
  idleUnloads: number;
  swaps: number;
  mountErrors: number;
  /** Job leases asked to give their drive back to playback. */
  preemptions: number;
  /** noMount requests refused because their cartridge was not loaded (nor being loaded, nor wanted). */
  notLoaded: number;
  /** Mounts by the priority of the lease that asked for them (playback, pre-stage, job). */
  mountsInteractive: number;
  mountsPrefetch: number;
  mountsJob: number;
  /** Time leases waited for a drive (admission to grant, ms, summed), by priority: playback and pre-stages. */
  driveWaitMsInteractive: number;
  driveWaitMsPrefetch: number;
}

const MOUNT_COUNTER: Record<Priority, 'mountsInteractive' | 'mountsPrefetch' | 'mountsJob'> = { interactive: 'mountsInteractive', prefetch: 'mountsPrefetch', job: 'mountsJob' };

interface DriveSlot {
  index: number;
  drive: TapeDrive;
  label: string | null;
  lease: Lease | null;
  /** Unload outside a lease (idle unload), or learning what the drive holds after a job's lease. */
  busyOp: 'unload' | 'refresh' | null;
  /** Cartridge being mounted into this drive (label is null until the mount completes). */
  mounting: string | null;
  /** Cartridge a swap into this drive takes out: still in the drive until the mount has unloaded it. */
  swappingOut: string | null;
  idleTimer: NodeJS.Timeout | undefined;
  idleSince: number;
  /** Counts every lease granted on this drive and every unload outside a lease (see usesOf). */
  uses: number;
}

interface Waiter {
  seq: number;
  req: AcquireRequest;
  rank: number;
  enqueuedAt: number;
  resolve(l: DriveLease): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

class Lease implements DriveLease {
  released = false;
  preemptAsked = false;
  private preemptCb: (() => void) | undefined;
  constructor(
    private readonly sched: DriveScheduler,
    private readonly slot: DriveSlot,
    readonly priority: Priority,
    readonly owner: string,
    readonly label: string | undefined,
  ) {}
  get index(): number {
    return this.slot.index;
  }
  get drive(): TapeDrive {
    return this.slot.drive;
  }
  onPreempt(cb: () => void): void {
    this.preemptCb = cb;
    if (this.preemptAsked && !this.released) cb();
  }
  /** @internal asks the holder (once) to give the drive back. */
  askPreempt(): boolean {
    if (this.preemptAsked || this.released) return false;
    this.preemptAsked = true;
    this.preemptCb?.();
    return true;
  }
  release(): void {
    if (this.released) return;
    this.released = true;
    this.sched.releaseSlot(this.slot, this);
  }
}

export interface QueueEntry {
  label?: string;
  drive?: number;
  block?: number;
  priority: Priority;
  owner: string;
  waitedMs: number;
}

export interface DriveInfo {
  index: number;
  name: string;
  label: string | null;
  busy: boolean;
  priority?: Priority;
  owner?: string;
  idleMs?: number;
}

export interface NeededCartridge {
  label: string;
  since: number;
  requests: number;
  lastItem?: string;
}

/**
 * Events: 'mount' {drive,label,swapped?}, 'unload' {drive,label,idle}, 'admit' {drive,label,priority,owner,block,waitedMs},
 * 'needed' (list changed), 'timeout' {label,priority}, 'preempt' {drive,label,owner,for}.
 */
export class DriveScheduler extends EventEmitter {
  readonly counters: SchedulerCounters = {
    admissions: 0,
    queued: 0,
    admissionTimeouts: 0,
    rejectedOffline: 0,
    cancelledWaits: 0,
    mounts: 0,
    unloads: 0,
    idleUnloads: 0,
    swaps: 0,
    mountErrors: 0,
    preemptions: 0,
    notLoaded: 0,
    mountsInteractive: 0,
    mountsPrefetch: 0,
    mountsJob: 0,
    driveWaitMsInteractive: 0,
    driveWaitMsPrefetch: 0,
  };
  private readonly slots: DriveSlot[];
  private waiters: Waiter[] = [];
  private seq = 0;
  private readonly needed = new Map<string, NeededCartridge>();
  private closed = false;
  private readonly log: WorkerLog | undefined;
  private readonly now: () => number;

  private constructor(
    readonly lib: TapeLibrary,
    readonly opts: SchedulerOptions,
  ) {
    super();
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.slots = lib.drives.map((drive) => ({ index: drive.index, drive, label: null, lease: null, busyOp: null, mounting: null, swappingOut: null, idleTimer: undefined, idleSince: this.now(), uses: 0 }));
  }

  /** A scheduler over `lib`'s drives, knowing what each holds. */
  static async create(lib: TapeLibrary, opts: SchedulerOptions): Promise<DriveScheduler> {
    const s = new DriveScheduler(lib, opts);
    for (const slot of s.slots) {
      await s.refreshSlot(slot);
      s.armIdle(slot);
    }
    return s;
  }

  /**
   * A lease on a drive (holding `req.label` when given). Rejects with OFFLINE at once for an
   * exported cartridge, NOT_FOUND for an unknown one, ADMISSION_TIMEOUT when no drive was
   * free in time, CANCELLED when `req.signal` fires while waiting.
   */
  async acquire(req: AcquireRequest): Promise<DriveLease> {
    if (this.closed) throw new StagerError({ code: 'CLOSED', message: 'the stager is shutting down', retryAfter: 5 });
    req.signal?.throwIfAborted();
    if (req.drive !== undefined && !this.slots[req.drive]) {
      throw new StagerError({ code: 'NOT_FOUND', message: `no drive ${req.drive} (library has ${this.slots.length})`, drive: req.drive });
    }
    const seq = this.seq++; // arrival order, before any await
    const enqueuedAt = this.now();
    if (req.label !== undefined) await this.checkAvailable(req.label, req.owner);
    if (this.closed) throw new StagerError({ code: 'CLOSED', message: 'the stager is shutting down', retryAfter: 5 });
    req.signal?.throwIfAborted();
    const label = req.label;
    if (req.noMount && label !== undefined && !this.slots.some((s) => s.label === label || s.mounting === label) && !this.waiters.some((o) => o.req.label === label && !o.req.noMount)) {
      this.counters.notLoaded++;
      throw new StagerError({ code: 'NOT_LOADED', message: `cartridge ${label} is not loaded and this read never mounts one`, label });
    }
    return new Promise<DriveLease>((resolve, reject) => {
      const w: Waiter = {
        seq,
        req,
        rank: PRIORITY_RANK[req.priority],
        enqueuedAt,
        resolve,
        reject,
        timer: undefined,
        onAbort: undefined,
      };
      this.waiters.push(w);
      this.dispatch();
      if (!this.waiters.includes(w)) return; // admitted at once
      this.counters.queued++;
      const timeout = req.timeoutMs ?? this.opts.admissionTimeoutMs;
      if (Number.isFinite(timeout)) {
        w.timer = setTimeout(() => {
          if (!this.removeWaiter(w)) return;
          this.counters.admissionTimeouts++;
          this.emit('timeout', { label: req.label, priority: req.priority, owner: req.owner });
          this.log?.warn({ label: req.label, priority: req.priority, owner: req.owner, waitedMs: timeout }, 'no drive became free in time');
          reject(
            new StagerError({
              code: 'ADMISSION_TIMEOUT',
              message: `no tape drive became free within ${Math.round(timeout / 1000)} s${req.label ? ` for cartridge ${req.label}` : ''}`,
              retryAfter: this.opts.retryAfter ?? 30,
              ...(req.label ? { label: req.label } : {}),
            }),
          );
        }, timeout);
      }
      if (req.signal) {
        w.onAbort = () => {
          if (!this.removeWaiter(w)) return;
          this.counters.cancelledWaits++;
          reject(new StagerError({ code: 'CANCELLED', message: 'request cancelled while waiting for a drive' }));
        };
        req.signal.addEventListener('abort', w.onAbort, { once: true });
      }
    });
  }

  /** Drives, what they hold and who uses them. */
  drives(): DriveInfo[] {
    const t = this.now();
    return this.slots.map((s) => {
      const d: DriveInfo = { index: s.index, name: s.drive.name, label: s.label, busy: s.lease !== null || s.busyOp !== null };
      if (s.lease) {
        d.priority = s.lease.priority;
        d.owner = s.lease.owner;
      } else if (s.busyOp) d.owner = s.busyOp;
      else d.idleMs = t - s.idleSince;
      return d;
    });
  }

  queue(): QueueEntry[] {
    const t = this.now();
    return this.ordered().map((w) => {
      const q: QueueEntry = { priority: w.req.priority, owner: w.req.owner ?? '', waitedMs: t - w.enqueuedAt };
      if (w.req.label !== undefined) q.label = w.req.label;
      if (w.req.drive !== undefined) q.drive = w.req.drive;
      if (w.req.block !== undefined) q.block = w.req.block;
      return q;
    });
  }

  /** Offline cartridges that requests needed (the operator has to import them). */
  neededCartridges(): NeededCartridge[] {
    return [...this.needed.values()].sort((a, b) => a.since - b.since);
  }

  /** Label currently loaded in drive `i` as far as the scheduler knows. */
  /** Playback waits for a drive now (no free drive could take it): prefetch passes give theirs back. */
  playbackWaiting(): boolean {
    return this.waiters.some((w) => w.rank === 0);
  }

  labelIn(i: number): string | null {
    return this.slots[i]?.label ?? null;
  }

  /**
   * A counter of what happened to drive `i`: +1 for every lease granted on it and every idle
   * unload. A holder that let its lease go and got the drive back sees it grown by exactly one
   * (its own new lease) only if nobody used the drive in between (its tape position still holds).
   */
  usesOf(i: number): number {
    return this.slots[i]?.uses ?? 0;
  }

  /** Unloads every drive that is loaded and free now (maintenance, benchmarks). Returns how many. */
  async unloadIdle(): Promise<number> {
    let n = 0;
    for (const slot of this.slots) {
      if (!this.isFree(slot) || slot.label === null) continue;
      if (slot.idleTimer) clearTimeout(slot.idleTimer);
      slot.idleTimer = undefined;
      const label = slot.label;
      slot.busyOp = 'unload';
      try {
        await this.lib.changer.unload(slot.index);
        slot.label = null;
        this.counters.unloads++;
        this.emit('unload', { drive: slot.index, label, idle: false });
        n++;
      } catch (err) {
        this.log?.warn({ drive: slot.index, label, err: (err as Error).message }, 'unload failed');
        await this.refreshSlot(slot);
      } finally {
        slot.busyOp = null;
        slot.idleSince = this.now();
      }
    }
    this.dispatch();
    return n;
  }

  /** Rejects every waiter and stops idle timers; leases still held stay valid until released. */
  close(): void {
    this.closed = true;
    for (const s of this.slots) if (s.idleTimer) clearTimeout(s.idleTimer);
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) {
      this.cleanupWaiter(w);
      w.reject(new StagerError({ code: 'CLOSED', message: 'the stager is shutting down', retryAfter: 5 }));
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  /** @internal called by Lease.release */
  releaseSlot(slot: DriveSlot, lease: Lease): void {
    if (slot.lease !== lease) return;
    slot.lease = null;
    slot.idleSince = this.now();
    if (lease.priority !== 'job') {
      this.armIdle(slot);
      this.dispatch();
      return;
    }
    // a job may have loaded or unloaded cartridges through its lease: learn what the drive holds
    // before anyone is given the drive or told where a cartridge is (busy meanwhile)
    slot.busyOp = 'refresh';
    void this.refreshSlot(slot).then(() => {
      slot.busyOp = null;
      this.armIdle(slot);
      this.dispatch();
    });
  }

  /**
   * Learns again what drive `i` holds: a job changed it through its lease (a mount, load or
   * unload on a drive it already held), so requests for that cartridge wait for that drive
   * instead of mounting it into another one.
   */
  async refreshDrive(i: number): Promise<void> {
    const slot = this.slots[i];
    if (!slot) return;
    await this.refreshSlot(slot);
    this.dispatch();
  }

  private async checkAvailable(label: string, owner?: string): Promise<void> {
    if (this.slots.some((s) => s.label === label)) return;
    let where;
    try {
      where = await this.lib.changer.find(label);
    } catch (err) {
      if (isTapeError(err, 'NOT_FOUND')) {
        throw new StagerError({ code: 'NOT_FOUND', message: `cartridge ${label} is not known to the tape library`, label });
      }
      throw err;
    }
    if (where.where === 'offline') {
      this.counters.rejectedOffline++;
      const n = this.needed.get(label);
      if (n) {
        n.requests++;
        if (owner) n.lastItem = owner;
      } else {
        this.needed.set(label, { label, since: this.now(), requests: 1, ...(owner ? { lastItem: owner } : {}) });
        this.log?.warn({ label, owner }, `cartridge ${label} needed: it is offline (exported); import it to serve this item`);
        this.emit('needed', this.neededCartridges()); // only when the list changes
      }
      throw new StagerError({
        code: 'OFFLINE',
        message: `cartridge ${label} is offline (exported from the library); the operator has to import it`,
        label,
        retryAfter: this.opts.offlineRetryAfter ?? 3600,
      });
    }
    if (this.needed.delete(label)) this.emit('needed', this.neededCartridges());
  }

  private async refreshSlot(slot: DriveSlot): Promise<void> {
    try {
      const st = await slot.drive.status();
      slot.label = st.loaded ? (st.label ?? null) : null;
    } catch (err) {
      this.log?.warn({ drive: slot.index, err: (err as Error).message }, 'cannot read drive status');
    }
  }

  private removeWaiter(w: Waiter): boolean {
    const i = this.waiters.indexOf(w);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    this.cleanupWaiter(w);
    return true;
  }

  private cleanupWaiter(w: Waiter): void {
    if (w.timer) clearTimeout(w.timer);
    if (w.onAbort) w.req.signal?.removeEventListener('abort', w.onAbort);
  }

  /** Waiters in service order (see the header). */
  private ordered(): Waiter[] {
    const out: Waiter[] = [];
    for (let rank = 0; rank <= 2; rank++) {
      const group = this.waiters.filter((w) => w.rank === rank);
      const byLabel = new Map<string, Waiter[]>();
      for (const w of group) {
        const k = w.req.label ?? `\0${w.seq}`;
        const list = byLabel.get(k);
        if (list) list.push(w);
        else byLabel.set(k, [w]);
      }
      const lists = [...byLabel.values()];
      for (const l of lists) l.sort((a, b) => (a.req.block ?? 0) - (b.req.block ?? 0) || a.seq - b.seq);
      lists.sort((a, b) => Math.min(...a.map((w) => w.seq)) - Math.min(...b.map((w) => w.seq)));
      for (const l of lists) out.push(...l);
    }
    return out;
  }

  private isFree(s: DriveSlot): boolean {
    return s.lease === null && s.busyOp === null;
  }

  /**
   * Assigns free drives to waiters, as many as possible: priority class by class; within a
   * class, first requests whose cartridge is already in a free drive (no mount), then mounts.
   */
  private dispatch(): void {
    if (this.closed) return;
    this.dispatchFree();
    this.preemptForPlayback();
  }

  /**
   * Interactive requests blocked by job leases ask jobs to give drives back (see the header):
   * the job holding a blocked request's cartridge, else any job lease, one per blocked
   * request, counting those already asked and drives that are free.
   */
  private preemptForPlayback(): void {
    const blocked = this.waiters.filter((w) => w.rank === 0 && w.req.label !== undefined && w.req.drive === undefined);
    if (blocked.length === 0) return;
    const jobSlot = (s: DriveSlot) => s.lease !== null && s.lease.priority === 'job' && !s.lease.released;
    let need = 0;
    const labels = new Set<string>();
    for (const w of blocked) {
      const label = w.req.label!;
      if (labels.has(label)) continue;
      labels.add(label);
      const holder = this.slots.find((s) => (s.label === label || s.mounting === label) && !this.isFree(s));
      if (holder) {
        if (jobSlot(holder)) this.askPreempt(holder, w);
        continue;
      }
      need++;
    }
    need -= this.slots.filter((s) => this.isFree(s)).length;
    need -= this.slots.filter((s) => jobSlot(s) && s.lease!.preemptAsked && !labels.has(s.label ?? '')).length;
    for (const s of this.slots) {
      if (need <= 0) break;
      if (jobSlot(s) && !s.lease!.preemptAsked && this.askPreempt(s, blocked[0]!)) need--;
    }
  }

  private askPreempt(slot: DriveSlot, w: Waiter): boolean {
    const lease = slot.lease!;
    if (!lease.askPreempt()) return false;
    this.counters.preemptions++;
    this.emit('preempt', { drive: slot.index, label: slot.label, owner: lease.owner, for: w.req.owner ?? w.req.label });
    this.log?.info({ drive: slot.index, label: slot.label, for: w.req.owner, wants: w.req.label }, `playback asks the job on drive ${slot.index} to give it back at its next safe point`);
    return true;
  }

  private dispatchFree(): void {
    for (;;) {
      if (this.waiters.length === 0 || !this.slots.some((s) => this.isFree(s))) return;
      const order = this.ordered();
      let granted = false;
      for (let rank = 0; rank <= 2 && !granted; rank++) {
        const group = order.filter((w) => w.rank === rank);
        for (const pick of [(w: Waiter) => this.slotWithoutMount(w), (w: Waiter) => this.slotForMount(w)]) {
          for (const w of group) {
            const slot = pick(w);
            if (slot) {
              this.grant(w, slot);
              granted = true;
              break;
            }
          }
          if (granted) break;
        }
      }
      if (!granted) return;
    }
  }

  private slotWithoutMount(w: Waiter): DriveSlot | undefined {
    const { label, drive } = w.req;
    if (drive !== undefined) {
      const s = this.slots[drive]!;
      if (!this.isFree(s)) return undefined;
      return label === undefined || s.label === label ? s : undefined;
    }
    if (label === undefined) return this.slots.find((s) => this.isFree(s) && s.label === null) ?? this.slots.find((s) => this.isFree(s));
    return this.slots.find((s) => this.isFree(s) && s.label === label);
  }

  private slotForMount(w: Waiter): DriveSlot | undefined {
    const { label, drive } = w.req;
    if (label === undefined || w.req.noMount) return undefined;
    // what a drive a job just gave back holds is being learned: no mount until it is known
    if (this.slots.some((s) => s.busyOp === 'refresh')) return undefined;
    // the cartridge is in a busy drive, or on its way into one: wait for that drive; or on its way out
    // of one (a swap): wait until it is back in its slot (a mount into another drive now fails: BUSY)
    if (this.slots.some((s) => ((s.label === label || s.mounting === label) && !this.isFree(s)) || s.swappingOut === label)) return undefined;
    const wanted = (l: string | null) => l !== null && this.waiters.some((o) => o !== w && o.req.label === l && o.rank <= w.rank);
    const candidates = drive !== undefined ? [this.slots[drive]!] : this.slots;
    const free = candidates.filter((s) => this.isFree(s));
    return (
      free.find((s) => s.label === null) ??
      // among the swappable ones: the one whose clients lose least (nobody plays from it; else
      // clients that only play bytes they have, the most playback left first; never before one
      // a client still reads from), then least recently used
      free
        .filter((s) => !wanted(s.label))
        .map((s) => ({ s, loss: this.swapLoss(s) }))
        .sort((a, b) => a.loss - b.loss || a.s.idleSince - b.s.idleSince)[0]?.s
    );
  }

  private swapLoss(s: DriveSlot): number {
    if (s.label === null) return 0;
    if (this.opts.swapLoss) return this.opts.swapLoss(s.label);
    return this.opts.inUse?.(s.label) ? 1 : 0;
  }

  private grant(w: Waiter, slot: DriveSlot): void {
    this.removeWaiter(w);
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    const owner = w.req.owner ?? w.req.priority;
    const label = w.req.label;
    const lease = new Lease(this, slot, w.req.priority, owner, label ?? slot.label ?? undefined);
    slot.lease = lease;
    slot.uses++;
    this.counters.admissions++;
    const waitedMs = this.now() - w.enqueuedAt;
    if (w.req.priority === 'interactive') this.counters.driveWaitMsInteractive += waitedMs;
    else if (w.req.priority === 'prefetch') this.counters.driveWaitMsPrefetch += waitedMs;
    this.emit('admit', { drive: slot.index, label: label ?? slot.label, priority: w.req.priority, owner, block: w.req.block, waitedMs });
    if (label === undefined || slot.label === label) {
      w.resolve(lease);
      return;
    }
    const previous = slot.label;
    void (async () => {
      try {
        if (previous !== null) {
          this.counters.swaps++;
          this.counters.unloads++;
        }
        slot.label = null;
        slot.mounting = label;
        slot.swappingOut = previous;
        await this.lib.mount(label, { drive: slot.index });
        slot.mounting = null;
        slot.label = label;
        if (slot.swappingOut !== null) {
          // the cartridge swapped out is in its slot now: a request that waited for it may mount it
          slot.swappingOut = null;
          queueMicrotask(() => this.dispatch());
        }
        this.counters.mounts++;
        this.counters[MOUNT_COUNTER[w.req.priority]]++;
        this.emit('mount', { drive: slot.index, label, ...(previous ? { swapped: previous } : {}) });
        this.log?.info({ drive: slot.index, label, swapped: previous ?? undefined }, `mounted ${label} in drive ${slot.index}`);
        if (w.req.signal?.aborted) {
          lease.release();
          w.reject(new StagerError({ code: 'CANCELLED', message: 'request cancelled while its cartridge was being mounted' }));
          return;
        }
        w.resolve(lease);
      } catch (err) {
        slot.mounting = null;
        slot.swappingOut = null;
        this.counters.mountErrors++;
        // what the scheduler believed may be stale (e.g. the cartridge is in another drive): learn it
        for (const s of this.slots) if (s === slot || (s.lease === null && s.busyOp === null)) await this.refreshSlot(s);
        lease.release();
        if (isTapeError(err, 'OFFLINE')) {
          try {
            await this.checkAvailable(label, w.req.owner);
          } catch (e) {
            w.reject(e);
            return;
          }
        }
        this.log?.error({ drive: slot.index, label, err: (err as Error).message }, `cannot mount ${label}`);
        w.reject(err);
      }
    })();
  }

  private armIdle(slot: DriveSlot): void {
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    const ms = this.opts.idleUnloadMs;
    if (!(ms > 0) || this.closed || slot.label === null || !this.isFree(slot)) return;
    slot.idleTimer = setTimeout(() => void this.idleUnload(slot), ms);
    slot.idleTimer.unref();
  }

  private async idleUnload(slot: DriveSlot): Promise<void> {
    slot.idleTimer = undefined;
    if (this.closed || !this.isFree(slot) || slot.label === null) return;
    if (this.waiters.some((w) => w.req.label === slot.label)) return;
    if (this.opts.inUse?.(slot.label)) {
      // a client still plays from it (between reads): look again after another idle period
      this.armIdle(slot);
      return;
    }
    const label = slot.label;
    slot.busyOp = 'unload';
    slot.uses++;
    try {
      await this.lib.changer.unload(slot.index);
      slot.label = null;
      this.counters.unloads++;
      this.counters.idleUnloads++;
      this.emit('unload', { drive: slot.index, label, idle: true });
      this.log?.info({ drive: slot.index, label }, `unloaded ${label} from idle drive ${slot.index}`);
    } catch (err) {
      this.log?.warn({ drive: slot.index, label, err: (err as Error).message }, 'idle unload failed');
      await this.refreshSlot(slot);
    } finally {
      slot.busyOp = null;
      slot.idleSince = this.now();
      this.dispatch();
    }
  }
}
