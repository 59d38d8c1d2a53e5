// Virtual tape library: the default backend. A directory holds the whole library:
//
//   <dir>/library.json              configuration, slot contents, drive contents, exported cartridges
//   <dir>/cartridges/<LABEL>.tape   one file per cartridge (format: cartridge.ts)
//   <dir>/lock                      pid of the process that has the library open
//
// The configuration (slots, drives, block size, capacity, generation) is fixed
// when the directory is created; reopening uses the stored one. Time is spent
// according to the timing model (timing.ts) through an injectable clock, scaled
// by one `timeScale` factor. Export moves a cartridge out through the
// import/export slot and the (virtual) operator takes it away at once: it is
// then offline, and using it answers OFFLINE until it is imported again.

import { mkdir, open, readFile, rename, rm, writeFile, readdir, realpath } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { VirtualCartridge } from './cartridge.js';
import { Mutex } from './lock.js';
import {
  PRESETS,
  ScaledClock,
  locateSeconds,
  longitudinalPosition,
  streamSeconds,
  type TapeClock,
  type TimingPreset,
} from './timing.js';
import {
  LABEL_RE,
  TapeError,
  emptyCounters,
  labelGeneration,
  type CartridgeWhere,
  type DriveStatus,
  type Inventory,
  type LtoGeneration,
  type ReadResult,
  type TapeChanger,
  type TapeCounters,
  type TapeDrive,
  type TapeLibrary,
  type TapeStats,
} from './types.js';

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

interface LibraryConfig {
  slots: number;
  ieSlots: number;
  drives: number;
  generation: LtoGeneration;
  blockSize: number;
  capacityBytes: number;
}

interface DriveState {
  label: string | null;
  sourceSlot: number | null;
  position: number;
}

interface LibraryFile {
  format: 'tapedeck-virtual-library';
  version: 1;
  config: LibraryConfig;
  /** Index i = slot i+1; null when empty. */
  slots: (string | null)[];
  drives: DriveState[];
  offline: string[];
}

const DEFAULTS: LibraryConfig = {
  slots: 16,
  ieSlots: 1,
  drives: 2,
  generation: 'LTO-9',
  blockSize: 256 * 1024,
  capacityBytes: 1024 ** 3,
};

/** Process-wide registry so one directory is not opened twice by this process. */
const openDirs = new Set<string>();

export class VirtualTapeLibrary implements TapeLibrary {
  readonly kind = 'virtual' as const;
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
    await mkdir(join(dir, 'cartridges'), { recursive: true });
    const real = await realpath(dir);
    if (openDirs.has(real)) throw new TapeError('BUSY', `virtual library ${dir} is already open in this process`);
    openDirs.add(real);
    try {
      await acquireLock(join(real, 'lock'));
      let file: LibraryFile;
      let fresh = false;
      try {
        file = parseLibraryFile(await readFile(join(real, 'library.json'), 'utf8'), dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        file = newLibraryFile(opts);
        fresh = true;
      }
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
    return join(this.realDir, 'cartridges', `${label}.tape`);
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
      const tmp = join(this.realDir, 'library.json.tmp');
      await writeFile(tmp, JSON.stringify(file, null, 2) + '\n');
      await rename(tmp, join(this.realDir, 'library.json'));
    });
  }
}

class VirtualChanger implements TapeChanger {
  constructor(private readonly lib: VirtualTapeLibrary) {}

  async inventory(): Promise<Inventory> {
    this.lib.assertOpen();
    return this.lib.inventorySnapshot();
  }

  async find(label: string): Promise<CartridgeWhere> {
    this.lib.assertOpen();
    const w = this.lib.where(label);
    if (!w) throw new TapeError('NOT_FOUND', `unknown cartridge ${label}`, { label });
    return w;
  }

  async load(source: number | string, driveIndex: number): Promise<void> {
    const lib = this.lib;
    lib.assertOpen();
    const drive = lib.driveAt(driveIndex);
    await drive.queue.run(async () => {
      lib.assertOpen();
      if (drive.cartridgeLabel !== null) {
        if (drive.cartridgeLabel === source) return; // already there
        throw new TapeError('BUSY', `drive ${driveIndex} is full (${drive.cartridgeLabel})`, {
          drive: driveIndex,
          label: drive.cartridgeLabel,
        });
      }
      let label = '';
      let slot = 0;
      await lib.robot.run(async () => {
        ({ label, slot } = this.resolveSource(source));
        const gen = labelGeneration(label);
        const driveGen = Number(lib.config.generation.slice(4));
        if (gen !== undefined && (gen > driveGen || gen < driveGen - 1)) {
          throw new TapeError('INCOMPATIBLE', `${label} (LTO-${gen} media) cannot be used in an ${lib.config.generation} drive`, {
            label,
            drive: driveIndex,
          });
        }
        await lib.spendRobot();
        lib.setSlot(slot, null);
        drive.cartridgeLabel = label;
        drive.sourceSlot = slot;
        drive.ready = false;
        await lib.persist();
      });
      try {
        await lib.spend(lib.timing.load, 'load', drive.name);
        await drive.attach(label);
        lib.counters.mounts++;
      } catch (err) {
        drive.ready = false;
        throw err;
      }
      await lib.persist();
    });
  }

  async unload(driveIndex: number, slot?: number): Promise<number> {
    const lib = this.lib;
    lib.assertOpen();
    const drive = lib.driveAt(driveIndex);
    if (slot !== undefined) lib.assertStorageSlot(slot);
    return drive.queue.run(async () => {
      lib.assertOpen();
      const label = drive.cartridgeLabel;
      if (label === null) throw new TapeError('NO_MEDIUM', `drive ${driveIndex} is empty`, { drive: driveIndex });
      if (slot !== undefined && lib.slotContent(slot) !== null) {
        throw new TapeError('FULL', `slot ${slot} is full (${lib.slotContent(slot)})`, { drive: driveIndex, label });
      }
      if (slot === undefined && lib.firstFreeSlot() === undefined) {
        throw new TapeError('FULL', `no free slot to unload ${label} into`, { drive: driveIndex, label });
      }
      await drive.endWrite();
      drive.ready = false;
      await lib.spend(lib.timing.unload, 'unload', drive.name);
      await drive.closeCartridge();
      drive.position = 0;
      let dest = 0;
      await lib.robot.run(async () => {
        if (slot !== undefined) {
          if (lib.slotContent(slot) !== null) throw new TapeError('FULL', `slot ${slot} is full`, { drive: driveIndex, label });
          dest = slot;
        } else if (drive.sourceSlot !== null && lib.slotContent(drive.sourceSlot) === null) {
          dest = drive.sourceSlot;
        } else {
          const free = lib.firstFreeSlot();
          if (free === undefined) throw new TapeError('FULL', `no free slot to unload ${label} into`, { drive: driveIndex, label });
          dest = free;
        }
        await lib.spendRobot();
        lib.setSlot(dest, label);
        drive.cartridgeLabel = null;
        drive.sourceSlot = null;
        lib.counters.unloads++;
        await lib.persist();
      });
      return dest;
    });
  }

  async exportCartridge(label: string): Promise<void> {
    const lib = this.lib;
    lib.assertOpen();
    await lib.robot.run(async () => {
      const w = lib.where(label);
      if (!w) throw new TapeError('NOT_FOUND', `unknown cartridge ${label}`, { label });
      if (w.where === 'offline') throw new TapeError('OFFLINE', `${label} is already exported`, { label });
      if (w.where === 'drive') {
        throw new TapeError('BUSY', `${label} is in drive ${w.drive}; unload it first`, { label, drive: w.drive });
      }
      if (w.where !== 'slot') throw new TapeError('IO', `unexpected location of ${label}`, { label });
      if (lib.config.ieSlots < 1) throw new TapeError('FULL', 'library has no import/export slot', { label });
      await lib.spendRobot();
      lib.setSlot(w.slot, null);
      lib.setOffline(label, true);
      await lib.persist();
    });
  }

  async importCartridge(label: string, slot?: number): Promise<number> {
    const lib = this.lib;
    lib.assertOpen();
    if (slot !== undefined) lib.assertStorageSlot(slot);
    return lib.robot.run(async () => {
      const w = lib.where(label);
      if (!w) throw new TapeError('NOT_FOUND', `unknown cartridge ${label}`, { label });
      if (w.where !== 'offline') throw new TapeError('BUSY', `${label} is already in the library`, { label });
      if (lib.config.ieSlots < 1) throw new TapeError('FULL', 'library has no import/export slot', { label });
      const dest = slot ?? lib.firstFreeSlot();
      if (dest === undefined) throw new TapeError('FULL', `no free slot to import ${label} into`, { label });
      if (lib.slotContent(dest) !== null) throw new TapeError('FULL', `slot ${dest} is full`, { label });
      await lib.spendRobot();
      lib.setSlot(dest, label);
      lib.setOffline(label, false);
      await lib.persist();
      return dest;
    });
  }

  private resolveSource(source: number | string): { label: string; slot: number } {
    const lib = this.lib;
    if (typeof source === 'number') {
      const label = lib.slotContent(source);
      if (label === null) throw new TapeError('NOT_FOUND', `slot ${source} is empty`);
      return { label, slot: source };
    }
    const w = lib.where(source);
    if (!w) throw new TapeError('NOT_FOUND', `unknown cartridge ${source}`, { label: source });
    if (w.where === 'offline') throw new TapeError('OFFLINE', `cartridge ${source} is offline (exported)`, { label: source });
    if (w.where === 'drive') throw new TapeError('BUSY', `${source} is in drive ${w.drive}`, { label: source, drive: w.drive });
    if (w.where !== 'slot') throw new TapeError('IO', `unexpected location of ${source}`, { label: source });
    return { label: source, slot: w.slot };
  }
}

export class VirtualDrive implements TapeDrive {
  readonly name: string;
  readonly index: number;
  /** @internal */ readonly queue = new Mutex();
  /** @internal */ cartridgeLabel: string | null;
  /** @internal */ sourceSlot: number | null;
  /** @internal */ position: number;
  /** @internal */ ready = false;
  /** @internal */ reserved = false;
  /** @internal */ cartridge: VirtualCartridge | null = null;
  /** Data written since the last filemark (the tape file is still open). */
  private dirty = false;
  /** Why the cartridge in the drive could not be opened. */
  private attachError: string | undefined;

  constructor(
    private readonly lib: VirtualTapeLibrary,
    index: number,
    state: DriveState,
  ) {
    this.index = index;
    this.name = `drive${index}`;
    this.cartridgeLabel = state.label;
    this.sourceSlot = state.sourceSlot;
    this.position = state.position;
  }

  /**
   * @internal After reopening a library: cartridges that were in drives are ready
   * again. One that cannot be opened stays in the drive, not ready (it can be unloaded).
   */
  async reopen(): Promise<void> {
    if (this.cartridgeLabel === null) return;
    const saved = this.position;
    try {
      await this.attach(this.cartridgeLabel);
      this.position = Math.min(saved, this.cartridge!.eod);
    } catch (err) {
      this.cartridge = null;
      this.ready = false;
      this.attachError = err instanceof Error ? err.message : String(err);
    }
  }

  /** @internal */
  async attach(label: string): Promise<void> {
    this.attachError = undefined;
    this.cartridge = await this.lib.openCartridgeFile(label, true).catch((err: unknown) => {
      this.attachError = err instanceof Error ? err.message : String(err);
      throw err;
    });
    this.position = 0;
    this.dirty = false;
    this.ready = true;
  }

  /** @internal */
  async closeCartridge(): Promise<void> {
    const c = this.cartridge;
    this.cartridge = null;
    this.ready = false;
    if (c) {
      await c.sync().catch(() => undefined);
      await c.close();
    }
  }

  /** @internal */
  persistState(): DriveState {
    return { label: this.cartridgeLabel, sourceSlot: this.sourceSlot, position: this.position };
  }

  async status(): Promise<DriveStatus> {
    const c = this.cartridge;
    const s: DriveStatus = {
      name: this.name,
      index: this.index,
      loaded: this.cartridgeLabel !== null,
      ready: this.ready && c !== null,
      online: !this.lib.closed,
      blockSize: c?.blockSize ?? 0,
      generation: this.lib.config.generation,
    };
    if (this.cartridgeLabel !== null) s.label = this.cartridgeLabel;
    if (c && this.ready) {
      const pos = this.position;
      const fileNumber = c.marksBefore(pos);
      const start = c.fileStart(fileNumber) ?? 0;
      s.position = { block: pos, fileNumber, blockInFile: pos - start, bot: pos === 0, eod: pos === c.eod };
      const gen = labelGeneration(c.label);
      if (gen !== undefined) s.density = `LTO-${gen}`;
      s.writeProtected = false;
      s.capacityBytes = c.capacityBytes;
      s.remainingBytes = Math.max(0, c.capacityBytes - c.usedBytes());
    }
    return s;
  }

  tell(): Promise<number> {
    return this.op(async () => this.position, { endWrite: false });
  }

  rewind(): Promise<void> {
    return this.op(async (c) => {
      if (this.position === 0) return;
      this.lib.counters.rewinds++;
      await this.moveTo(c, 0, 'rewind');
    });
  }

  locate(block: number): Promise<void> {
    return this.op(async (c) => {
      if (!Number.isInteger(block) || block < 0) throw this.err('INVALID', `invalid block address ${block}`);
      if (block === this.position) return;
      this.lib.counters.locates++;
      if (block > c.eod) {
        await this.moveTo(c, c.eod, 'locate');
        throw this.err('BAD_POSITION', `block ${block} is beyond end of data (${c.eod})`, { block });
      }
      await this.moveTo(c, block, 'locate');
    });
  }

  spaceFilemarks(count: number): Promise<void> {
    return this.op(async (c) => {
      if (!Number.isInteger(count) || count < 0) throw this.err('INVALID', `invalid filemark count ${count}`);
      if (count === 0) return;
      const mark = c.markAfter(this.position, count);
      this.lib.counters.spaces++;
      if (mark === undefined) {
        await this.moveTo(c, c.eod, 'space');
        throw this.err('BAD_POSITION', `end of data reached before ${count} filemark(s)`, { block: c.eod });
      }
      await this.moveTo(c, mark + 1, 'space');
    });
  }

  seekToEod(): Promise<void> {
    return this.op(async (c) => {
      if (this.position === c.eod) return;
      this.lib.counters.spaces++;
      await this.moveTo(c, c.eod, 'space');
    });
  }

  readBlocks(maxBlocks: number): Promise<ReadResult> {
    return this.op(async (c) => {
      if (!Number.isInteger(maxBlocks) || maxBlocks < 1) throw this.err('INVALID', `invalid block count ${maxBlocks}`);
      const label = c.label;
      const pos = this.position;
      let max = maxBlocks;
      const bad = this.lib.firstInjected(label, pos, max);
      if (bad === pos && !c.isMark(pos) && pos < c.eod) {
        this.lib.takeReadError(label, pos);
        this.lib.counters.readErrors++;
        throw this.err('MEDIUM_ERROR', `${label}: unrecoverable read error at block ${pos}`, { block: pos });
      }
      if (bad !== undefined && bad > pos) max = bad - pos;
      const run = await c.readRun(pos, max);
      if (run.count === 0 && run.stop === 'bad') {
        this.lib.counters.readErrors++;
        throw this.err('MEDIUM_ERROR', `${label}: block ${pos} fails its self-check`, { block: pos });
      }
      this.position = pos + run.count;
      const bytes = run.count * c.blockSize;
      this.lib.counters.blocksRead += run.count;
      this.lib.counters.bytesRead += bytes;
      if (bytes > 0) await this.lib.spend(streamSeconds(this.lib.timing, bytes), 'read', this.name);
      const result: ReadResult = { data: run.data };
      if (run.stop === 'filemark' && run.count < maxBlocks) {
        this.position++; // the filemark is read
        result.mark = 'filemark';
      } else if (run.stop === 'eod' && run.count < maxBlocks) {
        result.mark = 'eod';
      }
      return result;
    });
  }

  async readBlock(): Promise<Buffer | 'filemark' | 'eod'> {
    for (;;) {
      const r = await this.readBlocks(1);
      if (r.data.length > 0) return r.data;
      if (r.mark) return r.mark;
    }
  }

  writeBlocks(data: Buffer): Promise<void> {
    return this.op(
      async (c) => {
        if (!Buffer.isBuffer(data) || data.length % c.blockSize !== 0) {
          throw this.err('INVALID', `write of ${data?.length} bytes is not a multiple of the block size ${c.blockSize}`);
        }
        const n = data.length / c.blockSize;
        if (n === 0) return;
        const free = c.capacityBytes - c.usedBytes(this.position);
        const fit = Math.max(0, Math.min(n, Math.floor(free / c.blockSize)));
        if (fit > 0) {
          await c.writeData(this.position, fit === n ? data : data.subarray(0, fit * c.blockSize));
          this.position += fit;
          this.dirty = true;
          this.lib.counters.blocksWritten += fit;
          this.lib.counters.bytesWritten += fit * c.blockSize;
          await this.lib.spend(streamSeconds(this.lib.timing, fit * c.blockSize), 'write', this.name);
        }
        if (fit < n) {
          throw this.err('EOM', `${c.label}: end of medium (${fit} of ${n} blocks written)`, {
            block: this.position,
            details: { blocksWritten: fit },
          });
        }
      },
      { endWrite: false },
    );
  }

  writeFilemarks(count = 1): Promise<void> {
    return this.op(
      async (c) => {
        if (!Number.isInteger(count) || count < 1) throw this.err('INVALID', `invalid filemark count ${count}`);
        await c.writeMarks(this.position, count);
        this.position += count;
        this.dirty = false;
        this.lib.counters.filemarksWritten += count;
      },
      { endWrite: false },
    );
  }

  /** @internal End an open tape file with one filemark (see types.ts, "Writing"). */
  async endWrite(): Promise<void> {
    const c = this.cartridge;
    if (!this.dirty || !c) return;
    await c.writeMarks(this.position, 1);
    this.position += 1;
    this.dirty = false;
    this.lib.counters.filemarksWritten++;
  }

  /** Run a drive operation in the drive's queue with a loaded, ready cartridge. */
  private op<T>(fn: (c: VirtualCartridge) => Promise<T>, opts: { endWrite?: boolean } = {}): Promise<T> {
    if (this.lib.closed) return Promise.reject(new TapeError('CLOSED', `virtual library ${this.lib.dir} is closed`, { drive: this.index }));
    return this.queue.run(async () => {
      this.lib.assertOpen();
      const c = this.cartridge;
      if (this.cartridgeLabel === null) throw this.err('NO_MEDIUM', `${this.name}: no cartridge loaded`);
      if (!c) {
        throw this.attachError !== undefined
          ? this.err('MEDIUM_ERROR', `${this.name}: cartridge ${this.cartridgeLabel} cannot be read: ${this.attachError}`)
          : this.err('BUSY', `${this.name}: cartridge not ready`);
      }
      if (!this.ready) throw this.err('BUSY', `${this.name}: cartridge not ready`);
      if (opts.endWrite !== false) await this.endWrite();
      return fn(c);
    });
  }

  private async moveTo(c: VirtualCartridge, addr: number, op: string): Promise<void> {
    const t = this.lib.timing;
    const from = longitudinalPosition(this.position, c.blockSize, c.capacityBytes, t.wraps);
    const to = longitudinalPosition(addr, c.blockSize, c.capacityBytes, t.wraps);
    const seconds = addr === this.position ? 0 : locateSeconds(t, from, to);
    this.position = addr;
    await this.lib.spend(seconds, op, this.name);
  }

  private err(code: TapeError['code'], message: string, extra: { block?: number; details?: Record<string, unknown> } = {}): TapeError {
    const info: ConstructorParameters<typeof TapeError>[2] = { drive: this.index, ...extra };
    if (this.cartridgeLabel !== null) info.label = this.cartridgeLabel;
    return new TapeError(code, message, info);
  }
}

// --- helpers -----------------------------------------------------------------

function validateSizes(blockSize: number, capacityBytes: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 512 || blockSize % 512 !== 0 || blockSize > 16 * 1024 * 1024) {
    throw new TapeError('INVALID', `block size must be a multiple of 512 between 512 and 16 MiB, got ${blockSize}`);
  }
  if (!Number.isFinite(capacityBytes) || capacityBytes < blockSize) {
    throw new TapeError('INVALID', `capacity must be at least one block, got ${capacityBytes}`);
  }
}

function positiveInt(v: number | undefined, dflt: number, name: string, min = 1): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min) throw new TapeError('INVALID', `${name} must be an integer ≥ ${min}, got ${v}`);
  return x;
}

function newLibraryFile(opts: VirtualLibraryOptions): LibraryFile {
  const generation = opts.generation ?? DEFAULTS.generation;
  if (!(generation in PRESETS)) throw new TapeError('INVALID', `unknown generation ${generation}`);
  const config: LibraryConfig = {
    slots: positiveInt(opts.slots, DEFAULTS.slots, 'slots'),
    ieSlots: positiveInt(opts.ieSlots, DEFAULTS.ieSlots, 'ieSlots', 0),
    drives: positiveInt(opts.drives, DEFAULTS.drives, 'drives'),
    generation,
    blockSize: opts.blockSize ?? DEFAULTS.blockSize,
    capacityBytes: opts.capacityBytes ?? DEFAULTS.capacityBytes,
  };
  validateSizes(config.blockSize, config.capacityBytes);
  return {
    format: 'tapedeck-virtual-library',
    version: 1,
    config,
    slots: Array.from({ length: config.slots }, () => null),
    drives: Array.from({ length: config.drives }, () => ({ label: null, sourceSlot: null, position: 0 })),
    offline: [],
  };
}

function initialLabels(spec: number | string[] | undefined, config: LibraryConfig): string[] {
  if (spec === undefined) return [];
  if (Array.isArray(spec)) return spec;
  const n = positiveInt(spec, 0, 'cartridges', 0);
  if (n > config.slots) throw new TapeError('INVALID', `${n} cartridges do not fit in ${config.slots} slots`);
  const suffix = `L${config.generation.slice(4)}`;
  return Array.from({ length: n }, (_, i) => `TD${String(i + 1).padStart(4, '0')}${suffix}`);
}

function parseLibraryFile(text: string, dir: string): LibraryFile {
  let o: LibraryFile;
  try {
    o = JSON.parse(text) as LibraryFile;
  } catch (cause) {
    throw new TapeError('FORMAT', `${dir}/library.json is not valid JSON`, { cause });
  }
  const c = o?.config;
  if (
    o?.format !== 'tapedeck-virtual-library' ||
    !c ||
    !Array.isArray(o.slots) ||
    !Array.isArray(o.drives) ||
    !Array.isArray(o.offline) ||
    o.slots.length !== c.slots ||
    o.drives.length !== c.drives ||
    !(c.generation in PRESETS)
  ) {
    throw new TapeError('FORMAT', `${dir}/library.json is not a virtual tape library description`);
  }
  return o;
}

async function acquireLock(path: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new TapeError('BUSY', `virtual library is in use by process ${pid} (${path})`);
      }
      await rm(path, { force: true }); // stale lock
    }
  }
  throw new TapeError('BUSY', `cannot lock ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
