// Server side of the remote TapeLibrary (remote-library.ts) that archive, recall
// and import jobs use through the worker: the drive leases a connection's jobs
// hold (at job priority, given back after an idle time, when the job asks, or
// when the connection goes; playback may ask for them back: 'preempt' event) and
// the dispatch of library operations onto the real library. Also the connection's recall holds
// (recall-holds.ts): cartridges kept loaded for its queued loadedOnly recall jobs, ended by the job,
// by their bounded time, or when the connection goes.

import { TapeError, type TapeDrive, type TapeLibrary } from '../tape/types.js';
import type { DriveLease, DriveScheduler } from './scheduler.js';
import { StagerError, type ClientMessage, type WorkerMessage } from './protocol.js';
import { MAX_HOLD_ID_LENGTH, MAX_HOLD_LABELS, type RecallHolds } from './recall-holds.js';

/** What the job drives need from the worker. */
export interface JobDrivesHost {
  readonly lib: TapeLibrary;
  readonly scheduler: DriveScheduler;
  /** A job's drive lease is given back after this long without an operation (ms). */
  readonly jobIdleReleaseMs: number;
  /** Admission timeout of job drive requests (ms). */
  jobAdmissionTimeoutMs(): number;
  /** Cartridges kept loaded for queued loadedOnly recalls (absent: 'hold' keeps nothing). */
  readonly recallHolds?: RecallHolds;
}

interface JobLease {
  lease: DriveLease;
  busy: number;
  timer: NodeJS.Timeout | undefined;
}

/** Operations that continue from the drive's current position. */
type Motion = 'relative' | 'absolute' | 'other';

/** What the connection knew about a drive when it let it go. */
interface LetGo {
  label: string | null;
  uses: number;
}

/** The drives the jobs of one connection hold, and their library operations. */
export class JobDrives {
  private readonly jobLeases = new Map<number, JobLease>();
  private readonly jobWaits = new Set<AbortController>();
  /** Drives this connection's jobs held and let go (idle time, release, pre-emption). */
  private readonly letGo = new Map<number, LetGo>();
  /**
   * Drives whose tape position the jobs no longer know, with the cartridge they had: someone
   * else used the drive while they had let it go (playback swapped or moved the tape, an idle
   * unload). Reads and writes that continue from "where the tape is" are refused until the job
   * positions again (locate, rewind, seek to end of data, or asks where it is) on its own cartridge.
   */
  private readonly lost = new Map<number, string | null>();

  constructor(
    private readonly host: JobDrivesHost,
    private readonly send: (m: WorkerMessage) => void,
    private readonly isOpen: () => boolean,
  ) {}

  /** Connection gone: stop waiting for drives, give back the ones held. */
  closed(): void {
    this.host.recallHolds?.removeOwner(this);
    for (const ac of this.jobWaits) ac.abort();
    for (const [, jl] of this.jobLeases) {
      if (jl.timer) clearTimeout(jl.timer);
      jl.lease.release();
    }
    this.jobLeases.clear();
  }

  private async jobLease(drive: number | undefined, label?: string): Promise<DriveLease> {
    if (drive !== undefined) {
      const jl = this.jobLeases.get(drive);
      if (jl && !jl.lease.released) return jl.lease;
    }
    if (label !== undefined) {
      for (const [, jl] of this.jobLeases) if (!jl.lease.released && this.host.scheduler.labelIn(jl.lease.index) === label) return jl.lease;
      // give back idle drives this job holds, so it cannot block itself
      for (const [i, jl] of [...this.jobLeases]) {
        if (jl.busy === 0) this.letDriveGo(i, jl);
      }
    }
    const ac = new AbortController();
    this.jobWaits.add(ac);
    try {
      const lease = await this.host.scheduler.acquire({
        ...(label !== undefined ? { label } : {}),
        ...(drive !== undefined ? { drive } : {}),
        priority: 'job',
        owner: 'job',
        signal: ac.signal,
        timeoutMs: this.host.jobAdmissionTimeoutMs(),
      });
      if (!this.isOpen()) {
        lease.release();
        throw new StagerError({ code: 'CANCELLED', message: 'connection closed' });
      }
      const before = this.letGo.get(lease.index);
      this.letGo.delete(lease.index);
      // our own grant counts one use: anything more, or another cartridge, and the position is gone
      if (before && !this.lost.has(lease.index)) {
        if (this.host.scheduler.usesOf(lease.index) !== before.uses + 1 || this.host.scheduler.labelIn(lease.index) !== before.label) {
          this.lost.set(lease.index, before.label);
        }
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
      this.letDriveGo(i, jl);
    }
  }

  /** Gives a job lease back, remembering the drive's state to tell later whether it was used meanwhile. */
  private letDriveGo(i: number, jl: JobLease): void {
    if (jl.timer) clearTimeout(jl.timer);
    this.jobLeases.delete(i);
    this.letGo.set(i, { label: this.host.scheduler.labelIn(i), uses: this.host.scheduler.usesOf(i) });
    jl.lease.release();
  }

  private async withDrive<T>(drive: number, fn: (d: TapeDrive) => Promise<T>, motion: Motion = 'other'): Promise<T> {
    const lease = await this.jobLease(drive);
    const jl = this.jobLeases.get(lease.index)!;
    if (this.lost.has(lease.index) && motion !== 'other') {
      const had = this.lost.get(lease.index) ?? null;
      const now = this.host.scheduler.labelIn(lease.index);
      if (motion === 'relative' || now !== had || now === null) {
        // nothing runs on this lease: give the drive back now (playback may want it), still lost
        if (jl.busy === 0) this.letDriveGo(lease.index, jl);
        throw new TapeError(
          'BAD_POSITION',
          `drive ${lease.index} was used by someone else while this job had let it go (it holds ${now ?? 'no cartridge'}, the job had ${had ?? 'none'}): mount and position again`,
          { drive: lease.index, details: { driveLost: true } },
        );
      }
      this.lost.delete(lease.index); // an absolute positioning on the job's own cartridge
    }
    jl.busy++;
    if (jl.timer) clearTimeout(jl.timer);
    try {
      return await fn(lease.drive);
    } finally {
      jl.busy--;
      if (jl.busy === 0 && this.jobLeases.get(lease.index) === jl) {
        jl.timer = setTimeout(() => {
          if (jl.busy === 0 && this.jobLeases.get(lease.index) === jl) this.letDriveGo(lease.index, jl);
        }, this.host.jobIdleReleaseMs);
        jl.timer.unref();
      }
    }
  }

  /** Runs one remote library operation of a job. */
  async call(m: Extract<ClientMessage, { t: 'lib' }>, data: Buffer | undefined): Promise<{ value?: unknown; data?: Buffer }> {
    const lib = this.host.lib;
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
        if (this.host.scheduler.labelIn(lease.index) !== label) {
          // a lease on a named drive that holds something else: mount through the lease
          try {
            await this.withDrive(lease.index, async () => {
              await lib.mount(label, { drive: lease.index });
            });
          } finally {
            await this.host.scheduler.refreshDrive(lease.index);
          }
        }
        // mounted for this job now; a tape another user moved still needs positioning (relative
        // reads and writes wait for a locate, rewind or seek to the end of data)
        if (this.lost.has(lease.index)) this.lost.set(lease.index, label);
        // start the idle clock
        await this.withDrive(lease.index, async () => undefined);
        return { value: { drive: lease.index } };
      }
      case 'release':
        this.releaseJob(m.drive);
        return {};
      case 'hold': {
        const labels = a[0];
        if (!Array.isArray(labels) || labels.length > MAX_HOLD_LABELS || !labels.every((l) => typeof l === 'string' && l.length > 0 && l.length <= 32)) {
          throw new TapeError('INVALID', `hold needs 0 to ${MAX_HOLD_LABELS} cartridge labels`);
        }
        const ms = num(a[1], 'hold time');
        if (ms < 0) throw new TapeError('INVALID', 'hold time must not be negative');
        return { value: this.host.recallHolds?.add(this, labels as string[], ms) ?? '' };
      }
      case 'unhold': {
        const id = a[0];
        if (typeof id !== 'string' || id.length === 0 || id.length > MAX_HOLD_ID_LENGTH) throw new TapeError('INVALID', 'unhold needs the id hold answered');
        return { value: this.host.recallHolds?.remove(this, id) ?? false };
      }
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
        try {
          return { value: await this.withDrive(d, () => lib.changer.load(src, d)) };
        } finally {
          await this.host.scheduler.refreshDrive(d);
        }
      }
      case 'changer.unload': {
        const d = num(a[0], 'drive');
        const slot = a[1] === undefined || a[1] === null ? undefined : num(a[1], 'slot');
        try {
          return { value: await this.withDrive(d, () => lib.changer.unload(d, slot)) };
        } finally {
          await this.host.scheduler.refreshDrive(d);
        }
      }
      case 'drive.status':
        return { value: await lib.drives[driveIdx()]!.status() };
      case 'drive.tell': {
        const d = driveIdx();
        const value = await lib.drives[d]!.tell();
        // the job asked where its own cartridge stands: what follows continues from a known place
        const had = this.lost.get(d);
        if (had != null && this.host.scheduler.labelIn(d) === had) this.lost.delete(d);
        return { value };
      }
      case 'drive.rewind':
        return { value: await this.withDrive(driveIdx(), (d) => d.rewind(), 'absolute') };
      case 'drive.locate': {
        const b = num(a[0], 'block');
        return { value: await this.withDrive(driveIdx(), (d) => d.locate(b), 'absolute') };
      }
      case 'drive.spaceFilemarks': {
        const c = num(a[0], 'count');
        return { value: await this.withDrive(driveIdx(), (d) => d.spaceFilemarks(c), 'relative') };
      }
      case 'drive.seekToEod':
        return { value: await this.withDrive(driveIdx(), (d) => d.seekToEod(), 'absolute') };
      case 'drive.readBlocks': {
        const n = num(a[0], 'block count');
        const r = await this.withDrive(driveIdx(), (d) => d.readBlocks(n), 'relative');
        return { value: r.mark ? { mark: r.mark } : {}, data: r.data };
      }
      case 'drive.readBlock': {
        const r = await this.withDrive(driveIdx(), (d) => d.readBlock(), 'relative');
        return typeof r === 'string' ? { value: { mark: r } } : { value: {}, data: r };
      }
      case 'drive.writeBlocks': {
        const buf = data ?? Buffer.alloc(0);
        return { value: await this.withDrive(driveIdx(), (d) => d.writeBlocks(buf), 'relative') };
      }
      case 'drive.writeFilemarks': {
        const c = a[0] === undefined ? 1 : num(a[0], 'count');
        return { value: await this.withDrive(driveIdx(), (d) => d.writeFilemarks(c), 'relative') };
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
}
