// The changer (robot) of the virtual tape library: inventory, find, load a cartridge from a slot
// into a drive, unload it back, export to and import from the import/export slot. Each move
// takes the robot (one at a time) and the time of the timing model, and is persisted at once.

import type { Mutex } from './lock.js';
import type { TimingPreset } from './timing.js';
import { TapeError, incompatibleMedia, type CartridgeWhere, type Inventory, type LtoGeneration, type TapeChanger, type TapeCounters } from './types.js';
import type { VirtualDrive } from './virtual-drive.js';

/** What the changer needs of its library (VirtualTapeLibrary). */
export interface ChangerLibrary {
  readonly config: { readonly generation: LtoGeneration; readonly ieSlots: number };
  readonly timing: TimingPreset;
  readonly counters: TapeCounters;
  readonly robot: Mutex;
  assertOpen(): void;
  driveAt(i: number): VirtualDrive;
  spend(seconds: number, op: string, resource: string): Promise<void>;
  spendRobot(): Promise<void>;
  persist(): Promise<void>;
  inventorySnapshot(): Inventory;
  where(label: string): CartridgeWhere | undefined;
  slotContent(slot: number): string | null;
  setSlot(slot: number, label: string | null): void;
  firstFreeSlot(): number | undefined;
  assertStorageSlot(slot: number): void;
  setOffline(label: string, off: boolean): void;
}

export class VirtualChanger implements TapeChanger {
  constructor(private readonly lib: ChangerLibrary) {}

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
        const incompatible = incompatibleMedia(label, lib.config.generation);
        if (incompatible) {
          throw new TapeError('INCOMPATIBLE', incompatible, {
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
