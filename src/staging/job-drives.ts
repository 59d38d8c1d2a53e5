// Server side of the remote TapeLibrary (remote-library.ts) that archive, recall
// and import jobs use through the worker: the drive leases a connection's jobs
// hold (at job priority, given back after an idle time, when the job asks, or
// when the connection goes; playback may ask for them back: 'preempt' event) and
// the dispatch of library operations onto the real library.

import { TapeError, type TapeDrive, type TapeLibrary } from '../tape/types.js';
import type { DriveLease, DriveScheduler } from './scheduler.js';
import { StagerError, type ClientMessage, type WorkerMessage } from './protocol.js';

/** What the job drives need from the worker. */
export interface JobDrivesHost {
  readonly lib: TapeLibrary;
  readonly scheduler: DriveScheduler;
  /** A job's drive lease is given back after this long without an operation (ms). */
  readonly jobIdleReleaseMs: number;
  /** Admission timeout of job drive requests (ms). */
  jobAdmissionTimeoutMs(): number;
}

interface JobLease {
  lease: DriveLease;
  busy: number;
  timer: NodeJS.Timeout | undefined;
}

/** The drives the jobs of one connection hold, and their library operations. */
export class JobDrives {
  private readonly jobLeases = new Map<number, JobLease>();
  private readonly jobWaits = new Set<AbortController>();

  constructor(
    private readonly host: JobDrivesHost,
    private readonly send: (m: WorkerMessage) => void,
    private readonly isOpen: () => boolean,
  ) {}

  /** Connection gone: stop waiting for drives, give back the ones held. */
  closed(): void {
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
        if (jl.busy === 0) {
          if (jl.timer) clearTimeout(jl.timer);
          jl.lease.release();
          this.jobLeases.delete(i);
        }
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
      if (jl.timer) clearTimeout(jl.timer);
      jl.lease.release();
      this.jobLeases.delete(i);
    }
  }

  private async withDrive<T>(drive: number, fn: (d: TapeDrive) => Promise<T>): Promise<T> {
    const lease = await this.jobLease(drive);
    const jl = this.jobLeases.get(lease.index)!;
    jl.busy++;
    if (jl.timer) clearTimeout(jl.timer);
    try {
      return await fn(lease.drive);
    } finally {
      jl.busy--;
      if (jl.busy === 0 && this.jobLeases.get(lease.index) === jl) {
        jl.timer = setTimeout(() => {
          if (jl.busy === 0 && this.jobLeases.get(lease.index) === jl) {
            this.jobLeases.delete(lease.index);
            jl.lease.release();
          }
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
          await this.withDrive(lease.index, async () => {
            await lib.mount(label, { drive: lease.index });
          });
        }
        // start the idle clock
        await this.withDrive(lease.index, async () => undefined);
        return { value: { drive: lease.index } };
      }
      case 'release':
        this.releaseJob(m.drive);
        return {};
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
        return { value: await this.withDrive(d, () => lib.changer.load(src, d)) };
      }
      case 'changer.unload': {
        const d = num(a[0], 'drive');
        const slot = a[1] === undefined || a[1] === null ? undefined : num(a[1], 'slot');
        return { value: await this.withDrive(d, () => lib.changer.unload(d, slot)) };
      }
      case 'drive.status':
        return { value: await lib.drives[driveIdx()]!.status() };
      case 'drive.tell':
        return { value: await lib.drives[driveIdx()]!.tell() };
      case 'drive.rewind':
        return { value: await this.withDrive(driveIdx(), (d) => d.rewind()) };
      case 'drive.locate': {
        const b = num(a[0], 'block');
        return { value: await this.withDrive(driveIdx(), (d) => d.locate(b)) };
      }
      case 'drive.spaceFilemarks': {
        const c = num(a[0], 'count');
        return { value: await this.withDrive(driveIdx(), (d) => d.spaceFilemarks(c)) };
      }
      case 'drive.seekToEod':
        return { value: await this.withDrive(driveIdx(), (d) => d.seekToEod()) };
      case 'drive.readBlocks': {
        const n = num(a[0], 'block count');
        const r = await this.withDrive(driveIdx(), (d) => d.readBlocks(n));
        return { value: r.mark ? { mark: r.mark } : {}, data: r.data };
      }
      case 'drive.readBlock': {
        const r = await this.withDrive(driveIdx(), (d) => d.readBlock());
        return typeof r === 'string' ? { value: { mark: r } } : { value: {}, data: r };
      }
      case 'drive.writeBlocks': {
        const buf = data ?? Buffer.alloc(0);
        return { value: await this.withDrive(driveIdx(), (d) => d.writeBlocks(buf)) };
      }
      case 'drive.writeFilemarks': {
        const c = a[0] === undefined ? 1 : num(a[0], 'count');
        return { value: await this.withDrive(driveIdx(), (d) => d.writeFilemarks(c)) };
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
