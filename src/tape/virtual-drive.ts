// A drive of the virtual tape library: position, locate, read, write, filemarks and end of data
// on the loaded cartridge file (cartridge.ts), each operation spending the time the timing model
// gives it and counted in the library's counters; injected read errors answer MEDIUM_ERROR.
// Loading and unloading are the changer's (virtual-changer.ts); the drive attaches to the
// cartridge the changer put in.

import { VirtualCartridge } from './cartridge.js';
import { Mutex } from './lock.js';
import { locateSeconds, longitudinalPosition, streamSeconds, type TimingPreset } from './timing.js';
import { TapeError, labelGeneration, readOneBlock, type DriveStatus, type LtoGeneration, type ReadResult, type TapeCounters, type TapeDrive } from './types.js';
import type { DriveState } from './virtual-persistence.js';

/** What a drive needs of its library (VirtualTapeLibrary). */
export interface DriveLibrary {
  readonly dir: string;
  readonly closed: boolean;
  readonly config: { readonly generation: LtoGeneration };
  readonly timing: TimingPreset;
  readonly counters: TapeCounters;
  assertOpen(): void;
  spend(seconds: number, op: string, resource: string): Promise<void>;
  openCartridgeFile(label: string, writable: boolean): Promise<VirtualCartridge>;
  takeReadError(label: string, block: number): boolean;
  firstInjected(label: string, from: number, count: number): number | undefined;
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
    private readonly lib: DriveLibrary,
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

  readBlock(): Promise<Buffer | 'filemark' | 'eod'> {
    return readOneBlock(this);
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
