// Real tape hardware: drives on Linux st non-rewinding devices (/dev/nstN),
// positioned with mt-st, read and written through a file descriptor in fixed
// block mode; the changer driven with mtx on its SCSI generic device (/dev/sgN).
//
// Requirements on the host (stinit.conf or `mt stsetoptions` as root):
//   - scsi2logical: `mt tell` / `mt seek` use SCSI logical object addresses
//     (filemarks count), the addressing of types.ts.
//   - BSD close semantics (the default, sysv off): closing a device opened for
//     reading does not move the tape.
//   - no fast-eod: after `mt eod` the driver still knows the file number.
// The Linux st driver lets only one process open a drive at a time, so the
// file descriptor is closed before every mt command. Closing after writing
// makes the driver write a filemark: that is the documented "ends an open tape
// file with one filemark" rule of types.ts, and writeFilemarks(n) is done as
// close (1 filemark) + `mt weof n-1`.
//
// Every command goes through an injectable CommandRunner and every device open
// through an injectable DeviceIO, so the exact command sequences can be tested
// without hardware.

import { execFile } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import { open as fsOpen, readFile, writeFile, rename } from 'node:fs/promises';
import { Mutex } from './lock.js';
import { parseMtStatus, parseMtTell, parseMtxStatus, type MtStatus, type MtxStatus } from './scsi-parse.js';
import {
  TapeError,
  emptyCounters,
  readOneBlock,
  type CartridgeWhere,
  type DriveStatus,
  type Inventory,
  type ReadResult,
  type TapeChanger,
  type TapeCounters,
  type TapeDrive,
  type TapeErrorCode,
  type TapeLibrary,
  type TapeStats,
} from './types.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** Exit code (non-zero: failure). */
  code: number;
}

/** Runs one program with arguments (no shell). */
export type CommandRunner = (file: string, args: string[]) => Promise<CommandResult>;

/** An open tape device. `read` returns 0 at a filemark or end of data. */
export interface TapeHandle {
  read(buf: Buffer): Promise<number>;
  write(buf: Buffer): Promise<number>;
  close(): Promise<void>;
}

export interface DeviceIO {
  open(path: string, mode: 'read' | 'write'): Promise<TapeHandle>;
}

export const defaultRunner: CommandRunner = (file, args) =>
  new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        // the program could not be started (ENOENT...)
        resolve({ stdout: '', stderr: `${file}: ${err.message}`, code: 127 });
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
  });

export const defaultDeviceIO: DeviceIO = {
  async open(path, mode) {
    const fh = await fsOpen(path, mode === 'read' ? fsc.O_RDONLY : fsc.O_WRONLY);
    return {
      async read(buf) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        return bytesRead;
      },
      async write(buf) {
        const { bytesWritten } = await fh.write(buf, 0, buf.length, null);
        return bytesWritten;
      },
      close: () => fh.close(),
    };
  },
};

export interface ScsiDriveConfig {
  /** Non-rewinding st device, e.g. /dev/nst0. */
  device: string;
  /** mtx Data Transfer Element number of this drive (default: its index in the list). */
  element?: number;
}

export interface ScsiLibraryOptions {
  /** Changer's SCSI generic device for mtx, e.g. /dev/sg3. */
  changer: string;
  drives: ScsiDriveConfig[];
  /** Fixed block size set with `mt setblk` after every load (default 256 KiB). */
  blockSize?: number;
  /** Program names (default 'mt' — mt-st — and 'mtx'). */
  mt?: string;
  mtx?: string;
  run?: CommandRunner;
  io?: DeviceIO;
  sleep?: (ms: number) => Promise<void>;
  /** How long a loaded cartridge may take to become ready (default 10 min), and the poll interval (default 2 s). */
  readyTimeoutMs?: number;
  pollMs?: number;
  /** Run `mt offline` before `mtx unload` (default true; most libraries require it). */
  offlineBeforeUnload?: boolean;
  /** Value for mtx's eepos prefix on transfers to/from import/export slots (some libraries need 1 or 2). */
  eepos?: number;
  /** JSON file remembering exported labels, so they answer OFFLINE instead of NOT_FOUND. */
  statePath?: string;
}

export class ScsiTapeLibrary implements TapeLibrary {
  readonly kind = 'scsi' as const;
  readonly changer: ScsiChanger;
  readonly drives: readonly ScsiDrive[];
  /** @internal */ readonly opts: Required<Omit<ScsiLibraryOptions, 'eepos' | 'statePath'>> & Pick<ScsiLibraryOptions, 'eepos' | 'statePath'>;
  /** @internal */ readonly counters: TapeCounters = emptyCounters();
  /** @internal */ readonly seconds: Record<string, number> = {};
  /** @internal */ readonly robot = new Mutex();
  /** @internal */ lastStatus: MtxStatus | undefined;
  /** @internal */ offline = new Set<string>();
  /** @internal */ closed = false;
  private readonly pendingMounts = new Map<string, Promise<TapeDrive>>();

  constructor(opts: ScsiLibraryOptions) {
    if (!opts.changer) throw new TapeError('INVALID', 'changer device is required');
    if (!Array.isArray(opts.drives) || opts.drives.length === 0) throw new TapeError('INVALID', 'at least one drive is required');
    const blockSize = opts.blockSize ?? 256 * 1024;
    if (!Number.isInteger(blockSize) || blockSize < 512 || blockSize % 512 !== 0) {
      throw new TapeError('INVALID', `block size must be a multiple of 512, got ${blockSize}`);
    }
    this.opts = {
      changer: opts.changer,
      drives: opts.drives,
      blockSize,
      mt: opts.mt ?? 'mt',
      mtx: opts.mtx ?? 'mtx',
      run: opts.run ?? defaultRunner,
      io: opts.io ?? defaultDeviceIO,
      sleep: opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      readyTimeoutMs: opts.readyTimeoutMs ?? 600_000,
      pollMs: opts.pollMs ?? 2000,
      offlineBeforeUnload: opts.offlineBeforeUnload ?? true,
      eepos: opts.eepos,
      statePath: opts.statePath,
    };
    this.drives = opts.drives.map((d, i) => new ScsiDrive(this, i, d.device, d.element ?? i));
    this.changer = new ScsiChanger(this);
  }

  /** Load the remembered exported labels (when statePath is set). */
  async init(): Promise<this> {
    const p = this.opts.statePath;
    if (p) {
      try {
        const o = JSON.parse(await readFile(p, 'utf8')) as { offline?: unknown };
        if (Array.isArray(o.offline)) this.offline = new Set(o.offline.filter((x): x is string => typeof x === 'string'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return this;
  }

  mount(label: string, opts: { drive?: number } = {}): Promise<TapeDrive> {
    if (this.closed) return Promise.reject(new TapeError('CLOSED', 'tape library is closed'));
    // registered before any await so concurrent mounts of one label share one load
    const pending = this.pendingMounts.get(label);
    if (pending) return pending;
    const p = this.doMount(label, opts).finally(() => this.pendingMounts.delete(label));
    this.pendingMounts.set(label, p);
    return p;
  }

  private async doMount(label: string, opts: { drive?: number }): Promise<ScsiDrive> {
    const inv = await this.changer.inventory();
    const loaded = inv.drives.find((d) => d.label === label);
    if (loaded) {
      const drive = this.drives.find((d) => d.element === loaded.drive);
      if (!drive) throw new TapeError('BUSY', `${label} is in changer drive ${loaded.drive}, which is not configured`, { label });
      if (opts.drive !== undefined && opts.drive !== drive.index) {
        throw new TapeError('BUSY', `${label} is loaded in drive ${drive.index}`, { label, drive: drive.index });
      }
      return drive;
    }
    let target: ScsiDrive | undefined;
    if (opts.drive !== undefined) {
      target = this.driveAt(opts.drive);
      if (target.reserved) throw new TapeError('BUSY', `drive ${opts.drive} is being loaded`, { label, drive: opts.drive });
    } else {
      target = this.drives.find((d) => !d.reserved && !inv.drives.find((x) => x.drive === d.element)?.full);
    }
    if (!target) throw new TapeError('BUSY', `no empty drive to mount ${label}`, { label });
    const drive = target;
    const full = inv.drives.find((x) => x.drive === drive.element)?.full ?? false;
    drive.reserved = true;
    try {
      if (full) await this.changer.unload(drive.index);
      await this.changer.load(label, drive.index);
      return drive;
    } finally {
      drive.reserved = false;
    }
  }

  stats(): TapeStats {
    return { ...this.counters, seconds: { ...this.seconds } };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all(this.drives.map((d) => d.queue.run(() => d.closeHandle())));
    this.closed = true;
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed) throw new TapeError('CLOSED', 'tape library is closed');
  }

  /** @internal */
  driveAt(i: number): ScsiDrive {
    const d = Number.isInteger(i) ? this.drives[i] : undefined;
    if (!d) throw new TapeError('NOT_FOUND', `no drive ${i} (library has ${this.drives.length})`, { drive: i });
    return d;
  }

  /** @internal Run a program; non-zero exit → TapeError mapped from its message. */
  async exec(file: string, args: string[], ctx: { op: string; code?: TapeErrorCode; drive?: number; label?: string }): Promise<string> {
    const t0 = performance.now();
    let res: CommandResult;
    try {
      res = await this.opts.run(file, args);
    } finally {
      this.seconds[ctx.op] = (this.seconds[ctx.op] ?? 0) + (performance.now() - t0) / 1000;
    }
    if (res.code !== 0) {
      const msg = (res.stderr || res.stdout).trim();
      const info: ConstructorParameters<typeof TapeError>[2] = { details: { command: [file, ...args].join(' '), exitCode: res.code, output: msg } };
      if (ctx.drive !== undefined) info.drive = ctx.drive;
      if (ctx.label !== undefined) info.label = ctx.label;
      throw new TapeError(classify(msg, ctx.code ?? 'IO'), `${file} ${args.join(' ')} failed: ${msg || `exit code ${res.code}`}`, info);
    }
    return res.stdout;
  }

  /** @internal */
  mtx(args: string[], ctx: { op: string; code?: TapeErrorCode; drive?: number; label?: string }): Promise<string> {
    return this.exec(this.opts.mtx, ['-f', this.opts.changer, ...args], ctx);
  }

  /** @internal */
  async saveState(): Promise<void> {
    const p = this.opts.statePath;
    if (!p) return;
    await writeFile(`${p}.tmp`, JSON.stringify({ offline: [...this.offline].sort() }, null, 2) + '\n');
    await rename(`${p}.tmp`, p);
  }
}

/** Map an error message of mt/mtx/the kernel to an error code. */
function classify(msg: string, fallback: TapeErrorCode): TapeErrorCode {
  if (/No medium found|device is offline|no tape/i.test(msg)) return 'NO_MEDIUM';
  if (/No space left on device/i.test(msg)) return 'EOM';
  if (/Device or resource busy|needs offline before move|Drive \d+ Full/i.test(msg)) return 'BUSY';
  if (/is Already Full/i.test(msg)) return 'FULL';
  if (/is Empty|Source Element Address .* is Empty|No Source for tape/i.test(msg)) return 'NOT_FOUND';
  if (/Invalid argument|illegal|Invalid/i.test(msg)) return 'INVALID';
  if (/No such file or directory|not found|ENOENT/i.test(msg)) return 'IO';
  return fallback;
}

export class ScsiChanger implements TapeChanger {
  constructor(private readonly lib: ScsiTapeLibrary) {}

  /** `mtx status`, parsed (also refreshes the labels the drives report). */
  async status(): Promise<MtxStatus> {
    const out = await this.lib.mtx(['status'], { op: 'inventory' });
    const st = parseMtxStatus(out);
    this.lib.lastStatus = st;
    return st;
  }

  async inventory(): Promise<Inventory> {
    this.lib.assertOpen();
    return this.lib.robot.run(async () => toInventory(await this.status(), this.lib.offline));
  }

  async find(label: string): Promise<CartridgeWhere> {
    const inv = await this.inventory();
    const d = inv.drives.find((x) => x.label === label);
    if (d) return d.sourceSlot === undefined ? { where: 'drive', drive: d.drive } : { where: 'drive', drive: d.drive, sourceSlot: d.sourceSlot };
    const s = inv.slots.find((x) => x.label === label);
    if (s) return { where: 'slot', slot: s.slot };
    const ie = inv.ie.find((x) => x.label === label);
    if (ie) return { where: 'ie', slot: ie.slot };
    if (this.lib.offline.has(label)) return { where: 'offline' };
    throw new TapeError('NOT_FOUND', `cartridge ${label} is not in the library`, { label });
  }

  async load(source: number | string, driveIndex: number): Promise<void> {
    const lib = this.lib;
    lib.assertOpen();
    const drive = lib.driveAt(driveIndex);
    await drive.queue.run(async () => {
      await drive.closeHandle();
      let label: string | undefined;
      let already = false;
      await lib.robot.run(async () => {
        const st = await this.status();
        const mine = st.drives.find((d) => d.drive === drive.element);
        if (!mine) throw new TapeError('NOT_FOUND', `changer has no drive element ${drive.element}`, { drive: driveIndex });
        let slot: number;
        if (typeof source === 'number') {
          const e = st.slots.find((s) => s.slot === source);
          if (!e) throw new TapeError('NOT_FOUND', `changer has no slot ${source}`);
          if (!e.full) throw new TapeError('NOT_FOUND', `slot ${source} is empty`);
          slot = source;
          label = e.volumeTag;
        } else {
          label = source;
          const inDrive = st.drives.find((d) => d.volumeTag === source);
          if (inDrive) {
            if (inDrive.drive === drive.element) {
              already = true;
              return;
            }
            throw new TapeError('BUSY', `${source} is in drive element ${inDrive.drive}`, { label: source });
          }
          const e = st.slots.find((s) => s.full && s.volumeTag === source);
          if (!e || (e.importExport && lib.offline.has(source))) {
            if (lib.offline.has(source)) throw new TapeError('OFFLINE', `cartridge ${source} is offline (exported)`, { label: source });
            throw new TapeError('NOT_FOUND', `cartridge ${source} is not in the library`, { label: source });
          }
          slot = e.slot;
        }
        if (mine.full) {
          throw new TapeError('BUSY', `drive ${driveIndex} is full (${mine.volumeTag ?? 'unlabelled'})`, { drive: driveIndex });
        }
        const ctx = { op: 'robot', drive: driveIndex, ...(label !== undefined ? { label } : {}) };
        await lib.mtx(['load', String(slot), String(drive.element)], ctx);
        lib.counters.robotMoves++;
        // keep the cached status in step without another mtx call
        const e = st.slots.find((s) => s.slot === slot)!;
        e.full = false;
        delete e.volumeTag;
        mine.full = true;
        mine.sourceSlot = slot;
        if (label !== undefined) mine.volumeTag = label;
      });
      if (already) return;
      await drive.waitReady();
      lib.counters.mounts++;
    });
  }

  async unload(driveIndex: number, slot?: number): Promise<number> {
    const lib = this.lib;
    lib.assertOpen();
    const drive = lib.driveAt(driveIndex);
    return drive.queue.run(async () => {
      await drive.closeHandle();
      let st = lib.lastStatus ?? (await lib.robot.run(() => this.status()));
      let mine = st.drives.find((d) => d.drive === drive.element);
      if (!mine?.full) {
        st = await lib.robot.run(() => this.status());
        mine = st.drives.find((d) => d.drive === drive.element);
        if (!mine?.full) throw new TapeError('NO_MEDIUM', `drive ${driveIndex} is empty`, { drive: driveIndex });
      }
      const label = mine.volumeTag;
      const ctx = { drive: driveIndex, ...(label !== undefined ? { label } : {}) };
      if (lib.opts.offlineBeforeUnload) await drive.mt(['offline'], { op: 'unload', ...ctx });
      return lib.robot.run(async () => {
        const cur = await this.status();
        const d = cur.drives.find((x) => x.drive === drive.element);
        if (!d?.full) throw new TapeError('NO_MEDIUM', `drive ${driveIndex} is empty`, { drive: driveIndex });
        let dest = slot;
        if (dest === undefined) {
          const src = d.sourceSlot !== undefined ? cur.slots.find((s) => s.slot === d.sourceSlot && !s.importExport) : undefined;
          dest = src && !src.full ? src.slot : cur.slots.find((s) => !s.full && !s.importExport)?.slot;
          if (dest === undefined) throw new TapeError('FULL', `no free slot to unload drive ${driveIndex} into`, ctx);
        } else {
          const e = cur.slots.find((s) => s.slot === dest);
          if (!e) throw new TapeError('NOT_FOUND', `changer has no slot ${dest}`, ctx);
          if (e.full) throw new TapeError('FULL', `slot ${dest} is full`, ctx);
        }
        await lib.mtx(['unload', String(dest), String(drive.element)], { op: 'robot', ...ctx });
        lib.counters.robotMoves++;
        lib.counters.unloads++;
        const e = cur.slots.find((s) => s.slot === dest);
        if (e) {
          e.full = true;
          if (label !== undefined) e.volumeTag = label;
        }
        d.full = false;
        delete d.volumeTag;
        delete d.sourceSlot;
        drive.forget();
        return dest;
      });
    });
  }

  async exportCartridge(label: string): Promise<void> {
    const lib = this.lib;
    lib.assertOpen();
    await lib.robot.run(async () => {
      const st = await this.status();
      const inDrive = st.drives.find((d) => d.volumeTag === label);
      if (inDrive) throw new TapeError('BUSY', `${label} is in drive element ${inDrive.drive}; unload it first`, { label });
      const at = st.slots.find((s) => s.full && s.volumeTag === label);
      if (!at) {
        if (lib.offline.has(label)) throw new TapeError('OFFLINE', `${label} is already exported`, { label });
        throw new TapeError('NOT_FOUND', `cartridge ${label} is not in the library`, { label });
      }
      if (!at.importExport) {
        const ie = st.slots.find((s) => s.importExport && !s.full);
        if (!ie) {
          const any = st.slots.some((s) => s.importExport);
          throw new TapeError('FULL', any ? 'all import/export slots are full' : 'library has no import/export slot', { label });
        }
        await lib.mtx([...this.eepos(), 'transfer', String(at.slot), String(ie.slot)], { op: 'robot', label });
        lib.counters.robotMoves++;
      }
      lib.offline.add(label);
      await lib.saveState();
    });
  }

  async importCartridge(label: string, slot?: number): Promise<number> {
    const lib = this.lib;
    lib.assertOpen();
    return lib.robot.run(async () => {
      const st = await this.status();
      const at = st.slots.find((s) => s.full && s.volumeTag === label);
      if (!at || st.drives.some((d) => d.volumeTag === label)) {
        if (at || st.drives.some((d) => d.volumeTag === label)) throw new TapeError('BUSY', `${label} is already in the library`, { label });
        throw new TapeError('NOT_FOUND', `cartridge ${label} is not in an import/export slot (put it in the mail slot first)`, { label });
      }
      if (!at.importExport) {
        lib.offline.delete(label);
        await lib.saveState();
        throw new TapeError('BUSY', `${label} is already in storage slot ${at.slot}`, { label });
      }
      let dest = slot;
      if (dest === undefined) {
        dest = st.slots.find((s) => !s.full && !s.importExport)?.slot;
        if (dest === undefined) throw new TapeError('FULL', `no free slot to import ${label} into`, { label });
      } else {
        const e = st.slots.find((s) => s.slot === dest && !s.importExport);
        if (!e) throw new TapeError('NOT_FOUND', `changer has no storage slot ${dest}`, { label });
        if (e.full) throw new TapeError('FULL', `slot ${dest} is full`, { label });
      }
      await lib.mtx([...this.eepos(), 'transfer', String(at.slot), String(dest)], { op: 'robot', label });
      lib.counters.robotMoves++;
      lib.offline.delete(label);
      await lib.saveState();
      return dest;
    });
  }

  private eepos(): string[] {
    return this.lib.opts.eepos === undefined ? [] : ['eepos', String(this.lib.opts.eepos)];
  }
}

function toInventory(st: MtxStatus, offline: Set<string>): Inventory {
  const slots: Inventory['slots'] = [];
  const ie: Inventory['ie'] = [];
  for (const e of st.slots) {
    const s: Inventory['slots'][number] = { slot: e.slot, full: e.full, importExport: e.importExport };
    if (e.volumeTag) s.label = e.volumeTag;
    (e.importExport ? ie : slots).push(s);
  }
  const drives = st.drives.map((d) => {
    const x: Inventory['drives'][number] = { drive: d.drive, full: d.full };
    if (d.volumeTag) x.label = d.volumeTag;
    if (d.sourceSlot !== undefined) x.sourceSlot = d.sourceSlot;
    return x;
  });
  // exported cartridges still sitting in a mail slot are listed as offline too
  return { slots, ie, drives, offline: [...offline].sort() };
}

type OpenHandle = { mode: 'read' | 'write'; h: TapeHandle; startBlock: number; blocks: number };

export class ScsiDrive implements TapeDrive {
  readonly name: string;
  readonly index: number;
  readonly device: string;
  readonly element: number;
  /** @internal */ readonly queue = new Mutex();
  /** @internal */ reserved = false;
  private handle: OpenHandle | null = null;
  private lastStatus: DriveStatus | undefined;

  constructor(
    private readonly lib: ScsiTapeLibrary,
    index: number,
    device: string,
    element: number,
  ) {
    this.index = index;
    this.device = device;
    this.name = device;
    this.element = element;
  }

  /** @internal Run `mt -f <device> ...` (closing the device first: st allows one open). */
  async mt(args: string[], ctx: { op: string; code?: TapeErrorCode; label?: string; drive?: number }): Promise<string> {
    await this.closeHandle();
    return this.lib.exec(this.lib.opts.mt, ['-f', this.device, ...args], { drive: this.index, ...ctx });
  }

  /** @internal Close the device; after writing this makes the driver write one filemark. */
  async closeHandle(): Promise<void> {
    const h = this.handle;
    if (!h) return;
    this.handle = null;
    await h.h.close();
    if (h.mode === 'write' && h.blocks > 0) this.lib.counters.filemarksWritten++;
  }

  /** @internal Forget cached state after the cartridge left the drive. */
  forget(): void {
    this.lastStatus = undefined;
  }

  /** @internal Poll `mt status` until the drive is online, then set the block size. */
  async waitReady(): Promise<void> {
    const { readyTimeoutMs, pollMs, sleep, blockSize } = this.lib.opts;
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      let st: MtStatus | undefined;
      try {
        st = parseMtStatus(await this.mt(['status'], { op: 'load' }));
      } catch (err) {
        if (!(err instanceof TapeError) || !['NO_MEDIUM', 'BUSY', 'IO'].includes(err.code)) throw err;
      }
      if (st?.flags.has('ONLINE')) break;
      if (Date.now() >= deadline) {
        throw new TapeError('IO', `${this.name}: cartridge not ready after ${readyTimeoutMs} ms`, { drive: this.index });
      }
      await sleep(pollMs);
    }
    await this.mt(['setblk', String(blockSize)], { op: 'load' });
  }

  private label(): string | undefined {
    return this.lib.lastStatus?.drives.find((d) => d.drive === this.element)?.volumeTag;
  }

  async status(): Promise<DriveStatus> {
    this.lib.assertOpen();
    // never wait behind a running operation: answer from what is known
    if (this.queue.busy || this.handle) return this.cachedStatus();
    return this.queue.run(async () => {
      const raw = parseMtStatus(await this.mt(['status'], { op: 'status' }));
      const ready = raw.flags.has('ONLINE');
      const label = this.label();
      const s: DriveStatus = {
        name: this.name,
        index: this.index,
        loaded: ready || label !== undefined,
        ready,
        online: true,
        blockSize: ready ? (raw.blockSize ?? 0) : 0,
      };
      if (label !== undefined) s.label = label;
      if (ready) {
        const block = parseMtTell(await this.mt(['tell'], { op: 'status' }));
        s.position = {
          block,
          fileNumber: raw.fileNumber,
          blockInFile: raw.blockNumber,
          bot: raw.flags.has('BOT'),
          eod: raw.flags.has('EOD'),
        };
        if (raw.densityName) s.density = raw.densityName;
        s.writeProtected = raw.flags.has('WR_PROT');
      }
      this.lastStatus = s;
      return s;
    });
  }

  private cachedStatus(): DriveStatus {
    const base: DriveStatus = this.lastStatus
      ? { ...this.lastStatus }
      : { name: this.name, index: this.index, loaded: this.label() !== undefined, ready: false, online: true, blockSize: 0 };
    const h = this.handle;
    if (h && base.position && h.mode === 'write') {
      base.position = { ...base.position, block: h.startBlock + h.blocks, bot: false, eod: true };
    }
    return base;
  }

  tell(): Promise<number> {
    return this.op(async () => {
      const h = this.handle;
      if (h && h.mode === 'write') return h.startBlock + h.blocks; // closing would end the tape file
      return parseMtTell(await this.mt(['tell'], { op: 'tell' }));
    });
  }

  rewind(): Promise<void> {
    return this.op(async () => {
      await this.mt(['rewind'], { op: 'rewind' });
      this.lib.counters.rewinds++;
    });
  }

  locate(block: number): Promise<void> {
    return this.op(async () => {
      if (!Number.isInteger(block) || block < 0) throw this.err('INVALID', `invalid block address ${block}`);
      await this.mt(['seek', String(block)], { op: 'locate', code: 'BAD_POSITION' });
      this.lib.counters.locates++;
    });
  }

  spaceFilemarks(count: number): Promise<void> {
    return this.op(async () => {
      if (!Number.isInteger(count) || count < 0) throw this.err('INVALID', `invalid filemark count ${count}`);
      if (count === 0) return;
      this.lib.counters.spaces++;
      await this.mt(['fsf', String(count)], { op: 'space', code: 'BAD_POSITION' });
    });
  }

  seekToEod(): Promise<void> {
    return this.op(async () => {
      await this.mt(['eod'], { op: 'space', code: 'BAD_POSITION' });
      this.lib.counters.spaces++;
    });
  }

  readBlocks(maxBlocks: number): Promise<ReadResult> {
    return this.op(async () => {
      if (!Number.isInteger(maxBlocks) || maxBlocks < 1) throw this.err('INVALID', `invalid block count ${maxBlocks}`);
      const bs = this.lib.opts.blockSize;
      if (this.handle?.mode === 'write') await this.closeHandle();
      if (!this.handle) this.handle = { mode: 'read', h: await this.openDevice('read'), startBlock: -1, blocks: 0 };
      const buf = Buffer.allocUnsafe(maxBlocks * bs);
      let n: number;
      const t0 = performance.now();
      try {
        n = await this.handle.h.read(buf);
      } catch (err) {
        await this.closeHandle();
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EIO' && (await this.atEod())) return { data: Buffer.alloc(0), mark: 'eod' };
        if (code === 'EIO') {
          this.lib.counters.readErrors++;
          throw this.err('MEDIUM_ERROR', `${this.name}: read error`, { cause: err });
        }
        if (code === 'ENOMEM' || code === 'EINVAL') {
          throw this.err('IO', `${this.name}: read failed (${code}): is the tape's block size ${bs}?`, { cause: err });
        }
        throw this.err(code === 'ENOMEDIUM' ? 'NO_MEDIUM' : 'IO', `${this.name}: read failed: ${(err as Error).message}`, { cause: err });
      } finally {
        this.seconds('read', t0);
      }
      if (n === 0) {
        await this.closeHandle();
        return { data: Buffer.alloc(0), mark: (await this.atEod()) ? 'eod' : 'filemark' };
      }
      if (n % bs !== 0) {
        throw this.err('IO', `${this.name}: read returned ${n} bytes, not a multiple of the block size ${bs}`);
      }
      this.lib.counters.blocksRead += n / bs;
      this.lib.counters.bytesRead += n;
      return { data: buf.subarray(0, n) };
    });
  }

  readBlock(): Promise<Buffer | 'filemark' | 'eod'> {
    return readOneBlock(this);
  }

  writeBlocks(data: Buffer): Promise<void> {
    return this.op(async () => {
      const bs = this.lib.opts.blockSize;
      if (!Buffer.isBuffer(data) || data.length % bs !== 0) {
        throw this.err('INVALID', `write of ${data?.length} bytes is not a multiple of the block size ${bs}`);
      }
      if (data.length === 0) return;
      if (this.handle?.mode === 'read') await this.closeHandle();
      if (!this.handle) {
        const start = parseMtTell(await this.mt(['tell'], { op: 'tell' }));
        this.handle = { mode: 'write', h: await this.openDevice('write'), startBlock: start, blocks: 0 };
      }
      const h = this.handle;
      let at = 0;
      const t0 = performance.now();
      try {
        while (at < data.length) {
          let n: number;
          try {
            n = await h.h.write(data.subarray(at));
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'ENOSPC') {
              throw this.err('EOM', `${this.name}: end of medium (${at / bs} of ${data.length / bs} blocks written)`, {
                details: { blocksWritten: at / bs },
                cause: err,
              });
            }
            throw this.err(code === 'EIO' ? 'MEDIUM_ERROR' : 'IO', `${this.name}: write failed: ${(err as Error).message}`, { cause: err });
          }
          if (n <= 0) {
            throw this.err('EOM', `${this.name}: end of medium (${at / bs} of ${data.length / bs} blocks written)`, {
              details: { blocksWritten: at / bs },
            });
          }
          if (n % bs !== 0) throw this.err('IO', `${this.name}: write returned ${n} bytes, not a multiple of the block size ${bs}`);
          at += n;
          h.blocks += n / bs;
          this.lib.counters.blocksWritten += n / bs;
          this.lib.counters.bytesWritten += n;
        }
      } finally {
        this.seconds('write', t0);
      }
    });
  }

  writeFilemarks(count = 1): Promise<void> {
    return this.op(async () => {
      if (!Number.isInteger(count) || count < 1) throw this.err('INVALID', `invalid filemark count ${count}`);
      let left = count;
      if (this.handle?.mode === 'write' && this.handle.blocks > 0) {
        await this.closeHandle(); // the driver writes the first filemark
        left--;
      }
      if (left > 0) {
        await this.mt(['weof', String(left)], { op: 'filemark' });
        this.lib.counters.filemarksWritten += left;
      }
    });
  }

  // --- internals ---------------------------------------------------------------

  private op<T>(fn: () => Promise<T>): Promise<T> {
    if (this.lib.closed) return Promise.reject(new TapeError('CLOSED', 'tape library is closed', { drive: this.index }));
    return this.queue.run(fn);
  }

  private async openDevice(mode: 'read' | 'write'): Promise<TapeHandle> {
    try {
      return await this.lib.opts.io.open(this.device, mode);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const c: TapeErrorCode = code === 'ENOMEDIUM' ? 'NO_MEDIUM' : code === 'EBUSY' ? 'BUSY' : 'IO';
      throw this.err(c, `${this.name}: cannot open for ${mode}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async atEod(): Promise<boolean> {
    const st = parseMtStatus(await this.mt(['status'], { op: 'status' }));
    return st.flags.has('EOD');
  }

  private seconds(op: string, t0: number): void {
    this.lib.seconds[op] = (this.lib.seconds[op] ?? 0) + (performance.now() - t0) / 1000;
  }

  private err(code: TapeErrorCode, message: string, extra: { details?: Record<string, unknown>; cause?: unknown } = {}): TapeError {
    const info: ConstructorParameters<typeof TapeError>[2] = { drive: this.index, ...extra };
    const label = this.label();
    if (label !== undefined) info.label = label;
    return new TapeError(code, message, info);
  }
}
