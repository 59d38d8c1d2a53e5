// Virtual tape library: the default backend. A directory holds the whole library (layout and
// library.json: virtual-persistence.ts); the changer is virtual-changer.ts, the drives
// virtual-drive.ts. This file is the library itself: open/close, cartridge administration
// (create, inject read errors, export a tape file), mount, and the state the changer and drives
// share (slots, offline cartridges, counters, time spent).
//
// The configuration (slots, drives, block size, capacity, generation) is fixed
// when the directory is created; reopening uses the stored one. Time is spent
// according to the timing model (timing.ts) through an injectable clock, scaled
// by one `timeScale` factor. Export moves a cartridge out through the
// import/export slot and the (virtual) operator takes it away at once: it is
// then offline, and using it answers OFFLINE until it is imported again.

import { mkdir, readdir, realpath, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { VirtualCartridge } from './cartridge.js';
import { Mutex } from './lock.js';
import { PRESETS, ScaledClock, type TapeClock, type TimingPreset } from './timing.js';
import {
  LABEL_RE,
  TapeError,
  emptyCounters,
  type CartridgeWhere,
  type Inventory,
  type LtoGeneration,
  type TapeChanger,
  type TapeCounters,
  type TapeDrive,
  type TapeLibrary,
  type TapeStats,
} from './types.js';
import { VirtualChanger } from './virtual-changer.js';
import { VirtualDrive } from './virtual-drive.js';
import {
  acquireLock,
  cartridgeFile,
  initialLabels,
  newLibraryFile,
  readLibraryFile,
  validateSizes,
  writeLibraryFile,
  type LibraryConfig,
  type LibraryFile,
} from './virtual-persistence.js';

export interface VirtualLibraryOptions {
  /** Storage slots (default 16). */
  slots?: number;
  /** Import/export slots (default 1). */
  ieSlots?: number;
  /** Drives (default 2). */
  drives?: number;
  /** Drive generation (default 'LTO-9'); selects the timing preset and the label suffix of new cartridges. */
  generation?: LtoGeneration;
  /** Block size of new cartridges in bytes (default 256 KiB). */
  blockSize?: number;
  /** Capacity of new cartridges in bytes (default 1 GiB; a real LTO-9 holds 18 TB). */
  capacityBytes?: number;
  /** Blank cartridges to create with a NEW library: a count (labels TD0001L9, ...) or explicit labels. */
  cartridges?: number | string[];
  /** Real seconds per modelled second (default 1 = real time; tests use 0 or 0.001). Ignored when `clock` is given. */
  timeScale?: number;
  /** Clock that spends modelled time (default: a ScaledClock with `timeScale`). */
  clock?: TapeClock;
  /** Override figures of the generation's timing preset. */
  timing?: Partial<TimingPreset>;
}

/** Process-wide registry so one directory is not opened twice by this process. */
const openDirs = new Set<string>();

export class VirtualTapeLibrary implements TapeLibrary {
  readonly kind = 'virtual' as const;
  /** Every drive's generation (from the library's configuration). */
  get generation(): LtoGeneration {
    return this.config.generation;
  }
  readonly dir: string;
  readonly config: Readonly<LibraryConfig>;
  readonly timing: TimingPreset;
  readonly clock: TapeClock;
  readonly changer: TapeChanger;
  readonly drives: readonly VirtualDrive[];

  /** @internal */ readonly robot = new Mutex();
  /** @internal */ readonly counters: TapeCounters = emptyCounters();
  /** @internal */ readonly seconds: Record<string, number> = {};
  /** @internal */ closed = false;

  private readonly slots: (string | null)[];
  private readonly offline: Set<string>;
  private readonly persistLock = new Mutex();
  private readonly readErrors = new Map<string, Map<number, number>>();
  private readonly pendingMounts = new Map<string, Promise<VirtualDrive>>();
  private readonly realDir: string;

  private constructor(dir: string, realDir: string, file: LibraryFile, opts: VirtualLibraryOptions) {
    this.dir = dir;
    this.realDir = realDir;
    this.config = Object.freeze({ ...file.config });
    this.timing = { ...PRESETS[file.config.generation], ...(opts.timing ?? {}) };
    this.clock = opts.clock ?? new ScaledClock({ timeScale: opts.timeScale ?? 1 });
    this.slots = file.slots.slice();
    this.offline = new Set(file.offline);
    this.drives = file.drives.map((d, i) => new VirtualDrive(this, i, d));
    this.changer = new VirtualChanger(this);
  }

  /** Open (creating when missing) the virtual library in `dir`. */
  static async open(dir: string, opts: VirtualLibraryOptions = {}): Promise<VirtualTapeLibrary> {
    // 0750 as the data directory (util/data-dir.ts): the cartridges hold copies of private media
    await mkdir(join(dir, 'cartridges'), { recursive: true, mode: 0o750 });
    const real = await realpath(dir);
    if (openDirs.has(real)) throw new TapeError('BUSY', `virtual library ${dir} is already open in this process`);
    openDirs.add(real);
    try {
      await acquireLock(join(real, 'lock'));
      let file = await readLibraryFile(real, dir);
      const fresh = !file;
      file ??= newLibraryFile(opts);
      const lib = new VirtualTapeLibrary(dir, real, file, opts);
      if (fresh) {
        await lib.persist();
        const labels = initialLabels(opts.cartridges, file.config);
        for (const label of labels) await lib.createCartridge(label, { timed: false });
      }
      await Promise.all(lib.drives.map((d) => d.reopen()));
      return lib;
    } catch (err) {
      openDirs.delete(real);
      await rm(join(real, 'lock'), { force: true }).catch(() => undefined);
      throw err;
    }
  }

  // --- administration (virtual only) ---------------------------------------

  /**
   * Create a blank cartridge. By default it is put into `slot` or the first free
   * storage slot (one robot move, as if it came in through the mail slot);
   * `offline: true` creates it outside the library.
   */
  async createCartridge(
    label: string,
    opts: { slot?: number; offline?: boolean; blockSize?: number; capacityBytes?: number; timed?: boolean } = {},
  ): Promise<void> {
    this.assertOpen();
    if (!LABEL_RE.test(label)) throw new TapeError('INVALID', `invalid barcode label "${label}" (expected e.g. TD0001L9)`);
    const blockSize = opts.blockSize ?? this.config.blockSize;
    const capacityBytes = opts.capacityBytes ?? this.config.capacityBytes;
    validateSizes(blockSize, capacityBytes);
    await this.robot.run(async () => {
      if (this.knows(label)) throw new TapeError('BUSY', `cartridge ${label} already exists`, { label });
      let slot: number | undefined;
      if (!opts.offline) {
        slot = opts.slot ?? this.firstFreeSlot();
        if (slot === undefined) throw new TapeError('FULL', `no free slot for new cartridge ${label}`, { label });
        this.assertStorageSlot(slot);
        if (this.slots[slot - 1] !== null) throw new TapeError('FULL', `slot ${slot} is full`, { label });
      }
      try {
        await VirtualCartridge.create(this.cartridgePath(label), { label, blockSize, capacityBytes });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new TapeError('BUSY', `cartridge file for ${label} already exists`, { label });
        }
        throw err;
      }
      if (slot === undefined) this.offline.add(label);
      else {
        if (opts.timed !== false) await this.spendRobot();
        this.slots[slot - 1] = label;
      }
      await this.persist();
    });
  }

  /** The next `count` reads of `block` on cartridge `label` fail with MEDIUM_ERROR (count Infinity: until cleared). */
  injectReadError(label: string, block: number, opts: { count?: number } = {}): void {
    const count = opts.count ?? 1;
    if (!(count > 0)) throw new TapeError('INVALID', 'count must be > 0');
    let m = this.readErrors.get(label);
    if (!m) this.readErrors.set(label, (m = new Map()));
    m.set(block, (m.get(block) ?? 0) + count);
  }

  clearReadErrors(label?: string): void {
    if (label === undefined) this.readErrors.clear();
    else this.readErrors.delete(label);
  }

  /**
   * Copy the data of tape file `tapeFile` of cartridge `label` into `outFile`
   * (straight from the cartridge file, wherever the cartridge is; a debugging
   * and test helper: e.g. to hand an archive to GNU tar).
   */
  async exportTapeFile(label: string, tapeFile: number, outFile: string): Promise<number> {
    const cart = await this.openCartridgeFile(label, false);
    try {
      let bytes = 0;
      const gen = cart.fileBlocks(tapeFile);
      const counted = (async function* () {
        for await (const chunk of gen) {
          bytes += chunk.length;
          yield chunk;
        }
      })();
      await pipeline(Readable.from(counted), createWriteStream(outFile));
      return bytes;
    } finally {
      await cart.close();
    }
  }

  /** Facts about a cartridge's recorded contents (read from its file). */
  async cartridgeInfo(label: string): Promise<{ label: string; blockSize: number; capacityBytes: number; eod: number; filemarks: number[]; usedBytes: number }> {
    const loaded = this.drives.find((d) => d.cartridgeLabel === label)?.cartridge;
    const cart = loaded ?? (await this.openCartridgeFile(label, false));
    try {
      return {
        label,
        blockSize: cart.blockSize,
        capacityBytes: cart.capacityBytes,
        eod: cart.eod,
        filemarks: cart.filemarks(),
        usedBytes: cart.usedBytes(),
      };
    } finally {
      if (!loaded) await cart.close();
    }
  }

  /** All cartridges known to the library (in slots, drives or offline). */
  async labels(): Promise<string[]> {
    const names = await readdir(join(this.realDir, 'cartridges'));
    return names.filter((n) => n.endsWith('.tape')).map((n) => n.slice(0, -5)).sort();
  }

  // --- TapeLibrary -----------------------------------------------------------

  async mount(label: string, opts: { drive?: number } = {}): Promise<TapeDrive> {
    this.assertOpen();
    const pending = this.pendingMounts.get(label);
    if (pending) {
      const d = await pending;
      if (opts.drive !== undefined && opts.drive !== d.index) {
        throw new TapeError('BUSY', `${label} is being loaded into drive ${d.index}`, { label, drive: d.index });
      }
      return d;
    }
    const inDrive = this.drives.find((d) => d.cartridgeLabel === label);
    if (inDrive) {
      if (opts.drive !== undefined && opts.drive !== inDrive.index) {
        throw new TapeError('BUSY', `${label} is loaded in drive ${inDrive.index}`, { label, drive: inDrive.index });
      }
      return inDrive;
    }
    let target: VirtualDrive | undefined;
    if (opts.drive !== undefined) {
      target = this.driveAt(opts.drive);
      if (target.reserved) throw new TapeError('BUSY', `drive ${opts.drive} is being loaded`, { label, drive: opts.drive });
    } else target = this.drives.find((d) => d.cartridgeLabel === null && !d.reserved);
    if (!target) throw new TapeError('BUSY', `no empty drive to mount ${label}`, { label });
    const drive = target;
    drive.reserved = true;
    const p = (async () => {
      try {
        if (drive.cartridgeLabel !== null) await this.changer.unload(drive.index);
        await this.changer.load(label, drive.index);
        return drive;
      } finally {
        drive.reserved = false;
        this.pendingMounts.delete(label);
      }
    })();
    this.pendingMounts.set(label, p);
    return p;
  }

  stats(): TapeStats {
    return { ...this.counters, seconds: { ...this.seconds } };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // let queued operations finish, then refuse new ones
    await Promise.all([...this.drives.map((d) => d.queue.run(async () => undefined)), this.robot.run(async () => undefined)]);
    this.closed = true;
    for (const d of this.drives) await d.closeCartridge();
    await this.persist();
    await rm(join(this.realDir, 'lock'), { force: true });
    openDirs.delete(this.realDir);
  }

  // --- internals used by the changer and drives ------------------------------

  /** @internal */
  async spend(seconds: number, op: string, resource: string): Promise<void> {
    this.seconds[op] = (this.seconds[op] ?? 0) + seconds;
    await this.clock.spend(seconds, op, resource);
  }

  /** @internal */
  async spendRobot(): Promise<void> {
    this.counters.robotMoves++;
    await this.spend(this.timing.robotMove, 'robot', 'robot');
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed) throw new TapeError('CLOSED', `virtual library ${this.dir} is closed`);
  }

  /** @internal */
  driveAt(i: number): VirtualDrive {
    const d = Number.isInteger(i) ? this.drives[i] : undefined;
    if (!d) throw new TapeError('NOT_FOUND', `no drive ${i} (library has ${this.drives.length})`, { drive: i });
    return d;
  }

  /** @internal */
  cartridgePath(label: string): string {
    return cartridgeFile(this.realDir, label);
  }

  /** @internal */
  async openCartridgeFile(label: string, writable: boolean): Promise<VirtualCartridge> {
    try {
      return await VirtualCartridge.open(this.cartridgePath(label), { writable });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new TapeError('NOT_FOUND', `no cartridge ${label}`, { label });
      }
      throw err;
    }
  }

  /** @internal Consume one injected read error at (label, block) if any. */
  takeReadError(label: string, block: number): boolean {
    const m = this.readErrors.get(label);
    const n = m?.get(block);
    if (!m || n === undefined) return false;
    if (n <= 1) m.delete(block);
    else m.set(block, n - 1);
    return true;
  }

  /** @internal First block in [from, from+count) with a pending injected error. */
  firstInjected(label: string, from: number, count: number): number | undefined {
    const m = this.readErrors.get(label);
    if (!m || m.size === 0) return undefined;
    let best: number | undefined;
    for (const b of m.keys()) if (b >= from && b < from + count && (best === undefined || b < best)) best = b;
    return best;
  }

  /** @internal */
  where(label: string): CartridgeWhere | undefined {
    const s = this.slots.indexOf(label);
    if (s >= 0) return { where: 'slot', slot: s + 1 };
    const d = this.drives.find((x) => x.cartridgeLabel === label);
    if (d) return d.sourceSlot === null ? { where: 'drive', drive: d.index } : { where: 'drive', drive: d.index, sourceSlot: d.sourceSlot };
    if (this.offline.has(label)) return { where: 'offline' };
    return undefined;
  }

  /** @internal */
  knows(label: string): boolean {
    return this.where(label) !== undefined;
  }

  /** @internal */
  slotContent(slot: number): string | null {
    this.assertStorageSlot(slot);
    return this.slots[slot - 1] ?? null;
  }

  /** @internal */
  setSlot(slot: number, label: string | null): void {
    this.slots[slot - 1] = label;
  }

  /** @internal */
  firstFreeSlot(): number | undefined {
    const i = this.slots.indexOf(null);
    return i < 0 ? undefined : i + 1;
  }

  /** @internal */
  assertStorageSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 1 || slot > this.config.slots) {
      throw new TapeError('NOT_FOUND', `no storage slot ${slot} (slots 1..${this.config.slots})`);
    }
  }

  /** @internal */
  setOffline(label: string, off: boolean): void {
    if (off) this.offline.add(label);
    else this.offline.delete(label);
  }

  /** @internal */
  inventorySnapshot(): Inventory {
    const slots = this.slots.map((label, i) => {
      const s = { slot: i + 1, full: label !== null, importExport: false } as Inventory['slots'][number];
      if (label !== null) s.label = label;
      return s;
    });
    const ie = Array.from({ length: this.config.ieSlots }, (_, i) => ({
      slot: this.config.slots + i + 1,
      full: false,
      importExport: true,
    }));
    const drives = this.drives.map((d) => {
      const x = { drive: d.index, full: d.cartridgeLabel !== null } as Inventory['drives'][number];
      if (d.cartridgeLabel !== null) x.label = d.cartridgeLabel;
      if (d.sourceSlot !== null) x.sourceSlot = d.sourceSlot;
      return x;
    });
    return { slots, ie, drives, offline: [...this.offline].sort() };
  }

  /** @internal Write library.json atomically. */
  async persist(): Promise<void> {
    await this.persistLock.run(async () => {
      const file: LibraryFile = {
        format: 'tapedeck-virtual-library',
        version: 1,
        config: { ...this.config },
        slots: this.slots.slice(),
        drives: this.drives.map((d) => d.persistState()),
        offline: [...this.offline].sort(),
      };
      await writeLibraryFile(this.realDir, file);
    });
  }
}
