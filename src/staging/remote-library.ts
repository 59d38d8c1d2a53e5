// A TapeLibrary that lives in the staging worker, used by the server's archive
// and recall jobs (the server never touches tape itself). Every call is one
// request over the worker socket; block data travels as the binary part of a
// frame. In the worker, a job's drive use goes through the drive scheduler at
// the lowest priority: `mount` (or the first moving operation on a drive)
// reserves the drive for the job; the reservation ends with `release()`, when
// the job has not used the drive for a while (worker tuning jobIdleReleaseMs),
// or when the connection goes.
//
// Pre-emption: when playback needs a drive a job holds, the worker sends a
// 'preempt' event to this connection (notePreempt); the job sees
// preemptRequested() at its next safe point and calls release(), after which
// its next operation queues for a drive again.
//
// Errors come back as TapeError with the tape layer's codes, so code written
// against a local library behaves the same (admission timeouts arrive as BUSY,
// a lost worker as IO; `details.stagerCode` keeps the stager's own code).

import {
  TapeError,
  emptyCounters,
  type CartridgeWhere,
  type DriveStatus,
  type Inventory,
  type ReadResult,
  type TapeChanger,
  type TapeDrive,
  type TapeErrorCode,
  type TapeLibrary,
  type TapeStats,
} from '../tape/types.js';
import { StagerError, type LibOp } from './protocol.js';

const TAPE_CODES = new Set<TapeErrorCode>(['NO_MEDIUM', 'OFFLINE', 'EOM', 'NOT_FOUND', 'BUSY', 'MEDIUM_ERROR', 'BAD_POSITION', 'FULL', 'FORMAT', 'INCOMPATIBLE', 'INVALID', 'IO', 'CLOSED']);

export interface LibraryTransport {
  call(op: LibOp, drive: number | undefined, args: unknown[], data?: Buffer): Promise<{ value: unknown; data?: Buffer }>;
  /** Drives as the worker announced them (or as configured before the first connection). */
  driveList(): { name: string; index: number }[];
  kind(): 'virtual' | 'scsi';
}

function toTapeError(err: unknown): unknown {
  if (!(err instanceof StagerError)) return err;
  const code = err.code as TapeErrorCode;
  const mapped: TapeErrorCode = TAPE_CODES.has(code) ? code : err.code === 'ADMISSION_TIMEOUT' ? 'BUSY' : err.code === 'CANCELLED' ? 'IO' : 'IO';
  const info: ConstructorParameters<typeof TapeError>[2] = { details: { ...(err.details ?? {}), stagerCode: err.code } };
  if (err.label !== undefined) info.label = err.label;
  if (err.drive !== undefined) info.drive = err.drive;
  if (err.block !== undefined) info.block = err.block;
  return new TapeError(mapped, err.message, info);
}

/** The error of a call abandoned at stop: the one a lost worker gives (jobs know it as transient). */
function stopping(): StagerError {
  return new StagerError({ code: 'WORKER_DOWN', message: 'the server is stopping: tape calls of its jobs are abandoned', retryAfter: 5 });
}

class RemoteDrive implements TapeDrive {
  constructor(
    private readonly lib: RemoteTapeLibrary,
    readonly index: number,
    readonly name: string,
  ) {}
  private call<T>(op: LibOp, args: unknown[] = [], data?: Buffer) {
    return this.lib.invoke<T>(op, this.index, args, data);
  }
  async status(): Promise<DriveStatus> {
    return (await this.call<DriveStatus>('drive.status')).value;
  }
  async tell(): Promise<number> {
    return (await this.call<number>('drive.tell')).value;
  }
  async rewind(): Promise<void> {
    await this.call('drive.rewind');
  }
  async locate(block: number): Promise<void> {
    await this.call('drive.locate', [block]);
  }
  async spaceFilemarks(count: number): Promise<void> {
    await this.call('drive.spaceFilemarks', [count]);
  }
  async seekToEod(): Promise<void> {
    await this.call('drive.seekToEod');
  }
  async readBlocks(maxBlocks: number): Promise<ReadResult> {
    const r = await this.call<{ mark?: 'filemark' | 'eod' }>('drive.readBlocks', [maxBlocks]);
    const out: ReadResult = { data: r.data ?? Buffer.alloc(0) };
    if (r.value?.mark) out.mark = r.value.mark;
    return out;
  }
  async readBlock(): Promise<Buffer | 'filemark' | 'eod'> {
    const r = await this.call<{ mark?: 'filemark' | 'eod' }>('drive.readBlock');
    if (r.value?.mark) return r.value.mark;
    return r.data ?? Buffer.alloc(0);
  }
  async writeBlocks(data: Buffer): Promise<void> {
    if (!Buffer.isBuffer(data)) throw new TapeError('INVALID', 'writeBlocks needs a Buffer');
    await this.call('drive.writeBlocks', [], data);
  }
  async writeFilemarks(count = 1): Promise<void> {
    await this.call('drive.writeFilemarks', [count]);
  }
}

class RemoteChanger implements TapeChanger {
  constructor(private readonly lib: RemoteTapeLibrary) {}
  async inventory(): Promise<Inventory> {
    return (await this.lib.invoke<Inventory>('changer.inventory', undefined, [])).value;
  }
  async find(label: string): Promise<CartridgeWhere> {
    return (await this.lib.invoke<CartridgeWhere>('changer.find', undefined, [label])).value;
  }
  async load(source: number | string, drive: number): Promise<void> {
    await this.lib.invoke('changer.load', undefined, [source, drive]);
  }
  async unload(drive: number, slot?: number): Promise<number> {
    return (await this.lib.invoke<number>('changer.unload', undefined, [drive, slot ?? null])).value;
  }
  async exportCartridge(label: string): Promise<void> {
    await this.lib.invoke('changer.exportCartridge', undefined, [label]);
  }
  async importCartridge(label: string, slot?: number): Promise<number> {
    return (await this.lib.invoke<number>('changer.importCartridge', undefined, [label, slot ?? null])).value;
  }
}

/** A recall hold as this server asked for it (hold()): its worker id on connection `epoch` (undefined: none now). */
interface HeldCartridges {
  labels: string[];
  /** When it ends by itself (ms since the epoch). */
  until: number;
  id: string | undefined;
  epoch: number;
}

export class RemoteTapeLibrary implements TapeLibrary {
  readonly changer: TapeChanger;
  private driveObjs: RemoteDrive[] = [];
  private lastStats: TapeStats = { ...emptyCounters(), seconds: {} };
  /** Drives playback asked back (pre-emption) since the job last released them. */
  private readonly preempted = new Set<number>();
  /** Drive reservations given back because playback asked for them. */
  preemptionsHonoured = 0;

  constructor(private readonly transport: LibraryTransport) {
    this.changer = new RemoteChanger(this);
  }

  get kind(): 'virtual' | 'scsi' {
    return this.transport.kind();
  }

  get drives(): readonly TapeDrive[] {
    const list = this.transport.driveList();
    if (list.length !== this.driveObjs.length || list.some((d, i) => this.driveObjs[i]?.name !== d.name)) {
      this.driveObjs = list.map((d) => new RemoteDrive(this, d.index, d.name));
    }
    return this.driveObjs;
  }

  /** Rejects the calls waiting for an answer when abandonCalls() runs. */
  private readonly waiting = new Set<(err: Error) => void>();
  private abandoned = false;

  /**
   * The jobs using this library are stopping (the server's stop): every call waiting for the worker
   * (a mount queued behind playback for a drive, a drive operation whose lease lapsed) and every
   * call made from now on until resumeCalls() fails at once as if the worker were gone, so a job
   * stops as interrupted (and resumes on the next start) instead of holding the server's stop for
   * as long as its drive wait and mount take. The worker still finishes what it began.
   */
  abandonCalls(): void {
    this.abandoned = true;
    const w = [...this.waiting];
    this.waiting.clear();
    for (const reject of w) reject(stopping());
  }

  /** The jobs run again (the service started again after abandonCalls()). */
  resumeCalls(): void {
    this.abandoned = false;
  }

  /** @internal */
  async invoke<T>(op: LibOp, drive: number | undefined, args: unknown[], data?: Buffer): Promise<{ value: T; data?: Buffer }> {
    let r;
    try {
      if (this.abandoned) throw stopping();
      let reject!: (err: Error) => void;
      const abandoned = new Promise<never>((_, rej) => (reject = rej));
      this.waiting.add(reject);
      try {
        const call = this.transport.call(op, drive, args, data);
        call.catch(() => undefined); // an abandoned call's own answer is not waited for
        r = await Promise.race([call, abandoned]);
      } finally {
        this.waiting.delete(reject);
      }
    } catch (err) {
      const v = (err as { value?: { stats?: TapeStats } }).value;
      if (v?.stats) this.lastStats = v.stats;
      throw toTapeError(err);
    }
    const v = r.value as { v?: T; stats?: TapeStats } | undefined;
    if (v?.stats) this.lastStats = v.stats;
    const out: { value: T; data?: Buffer } = { value: v?.v as T };
    if (r.data) out.data = r.data;
    return out;
  }

  async mount(label: string, opts: { drive?: number } = {}): Promise<TapeDrive> {
    const r = await this.invoke<{ drive: number }>('mount', undefined, [label, opts.drive === undefined ? {} : { drive: opts.drive }]);
    const d = this.drives[r.value.drive];
    if (!d) throw new TapeError('IO', `the stager mounted ${label} in unknown drive ${r.value.drive}`);
    return d;
  }

  /** Virtual library only (undefined otherwise): create a blank cartridge in the worker's library. */
  get createCartridge(): ((label: string, opts?: { slot?: number; offline?: boolean }) => Promise<void>) | undefined {
    if (this.kind !== 'virtual') return undefined;
    return async (label, opts = {}) => {
      await this.invoke('virtual.createCartridge', undefined, [label, opts]);
    };
  }

  /** Virtual library only (undefined otherwise): every cartridge the library knows. */
  get labels(): (() => Promise<string[]>) | undefined {
    if (this.kind !== 'virtual') return undefined;
    return async () => (await this.invoke<string[]>('virtual.labels', undefined, [])).value;
  }

  /** Gives back the job's reservation of one drive (or all of them). */
  async release(drive?: number): Promise<void> {
    const asked = drive === undefined ? this.preempted.size > 0 : this.preempted.has(drive);
    if (drive === undefined) this.preempted.clear();
    else this.preempted.delete(drive);
    await this.invoke('release', drive, []);
    if (asked) this.preemptionsHonoured++;
  }

  /**
   * Keeps `labels` loaded (no idle unload; still swapped out for a read of another cartridge) for
   * at most `ms`, for a queued loadedOnly recall job; the id to end it with unhold(). Ends by itself
   * when this connection goes (recall-holds.ts).
   */
  async hold(labels: string[], ms: number): Promise<string> {
    const until = Date.now() + Math.max(0, ms);
    const id = (await this.invoke<string>('hold', undefined, [labels, Math.max(0, Math.round(ms))])).value;
    const now = Date.now();
    for (const [k, h] of this.holds) if (h.until <= now) this.holds.delete(k);
    this.holds.set(id, { labels: [...labels], until, id, epoch: this.epoch });
    return id;
  }

  /** Ends a hold of hold() (`handle`: the id hold() answered; the worker's id now may be another, see reconnected()). */
  async unhold(handle: string): Promise<void> {
    const h = this.holds.get(handle);
    this.holds.delete(handle);
    const id = h ? h.id : handle;
    // undefined: no hold on the current worker (a re-hold in flight unholds its own answer)
    if (id !== undefined) await this.invoke('unhold', undefined, [id]);
  }

  /**
   * @internal A new worker connection is up (the worker restarted, or the server reconnected to
   * the stager): the holds of the previous one ended with it, so every hold not ended yet is asked
   * for again, for the rest of its time; its handle then names the new worker's id. A hold the new
   * worker refuses (or that cannot be asked for) is gone, as a refused hold is: best effort.
   */
  reconnected(): void {
    this.epoch++;
    for (const [handle, h] of this.holds) if (h.epoch < this.epoch) void this.rehold(handle, h);
  }

  private async rehold(handle: string, h: HeldCartridges): Promise<void> {
    const epoch = (h.epoch = this.epoch);
    h.id = undefined;
    const ms = h.until - Date.now();
    if (ms <= 0) {
      this.holds.delete(handle);
      return;
    }
    let id: string;
    try {
      id = (await this.invoke<string>('hold', undefined, [h.labels, Math.round(ms)])).value;
    } catch {
      return; // as refused; a later connection asks again
    }
    if (this.holds.get(handle) === h && h.epoch === epoch) h.id = id;
    else void this.invoke('unhold', undefined, [id]).catch(() => undefined); // released (or re-held again) meanwhile
  }

  /** The holds of hold() not ended by unhold() yet (handle → what the current worker holds). */
  private readonly holds = new Map<string, HeldCartridges>();
  /** Counts the worker connections (reconnected()): a hold of an older one is gone. */
  private epoch = 0;

  /** @internal the worker asks for drive `drive` back (playback pre-empts the job). */
  notePreempt(drive: number): void {
    this.preempted.add(drive);
  }

  /** True when playback asked for a drive this client's job holds: give it back at the next safe point. */
  preemptRequested(): boolean {
    return this.preempted.size > 0;
  }

  /** Last known counters of the worker's library (refreshed by every call). */
  stats(): TapeStats {
    return { ...this.lastStats, seconds: { ...this.lastStats.seconds } };
  }

  async refreshStats(): Promise<TapeStats> {
    const r = await this.invoke<TapeStats>('stats', undefined, []);
    if (r.value) this.lastStats = r.value;
    return this.stats();
  }

  /** Releases this client's drive reservations; the library itself stays open in the worker. */
  async close(): Promise<void> {
    await this.release().catch(() => undefined);
  }
}
