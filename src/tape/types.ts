// Tape library layer: the contract between the tape hardware (virtual or real)
// and everything above it (tape format, archive/recall jobs, the stager).
//
// Model
// -----
// A *library* has a robot (the changer), storage slots, import/export ("mail")
// slots and one or more drives. A *cartridge* carries a barcode label such as
// `TD0001L9` (six characters, then the LTO media id: L9 = LTO-9, L8 = LTO-8).
// A drive reads and writes the medium sequentially in fixed-size blocks.
//
// Addressing (same as SCSI READ POSITION / LOCATE and `mt tell` / `mt seek`
// with the st driver's scsi2logical option): every object on the tape, data
// block *or filemark*, has one logical address, counting from 0 at the
// beginning of tape (BOT). A tape file is the run of data blocks between two
// filemarks; tape file n starts right after the n-th filemark. A recorded block
// address is therefore valid on any drive and any backend.
//
// Writing
// -------
// `writeBlocks` writes at the current position; whatever was recorded after
// that position becomes unreadable (end of data moves there), exactly as on a
// real drive. A tape file being written is ended with `writeFilemarks`. If any
// other operation except `status`/`tell` is issued first (locate, rewind,
// space, read, unload...), the drive ends the tape file with ONE filemark
// itself: that is what the Linux st driver does when a tape device written to
// is closed, and every backend here behaves the same way so that callers see
// one behaviour.
//
// Concurrency
// -----------
// Operations on one drive are serialized in call order (each drive is one
// queue). The robot is one shared resource: moves are serialized library-wide.
// A load holds its drive for the whole robot move + load time. Operations on
// different drives run in parallel.

/** Error codes of the tape layer. */
export type TapeErrorCode =
  /** The drive holds no cartridge. */
  | 'NO_MEDIUM'
  /** The cartridge is known but not inside the library (exported / vaulted). `label` names it. */
  | 'OFFLINE'
  /** End of medium: the cartridge is full. `details.blocksWritten` tells how much of the last write landed. */
  | 'EOM'
  /** No such cartridge, slot, drive, tape file or index. */
  | 'NOT_FOUND'
  /** The resource is in use (cartridge loaded elsewhere, drive full, ...). */
  | 'BUSY'
  /** Unrecoverable read error (or a record that fails its self-check). `block` tells where. */
  | 'MEDIUM_ERROR'
  /** Positioning outside the recorded data, or a position that does not fit the request. */
  | 'BAD_POSITION'
  /** No free slot / import-export slot for a move. */
  | 'FULL'
  /** Tape contents do not have the expected format (tar, index). */
  | 'FORMAT'
  /** Cartridge generation cannot be used in this drive. */
  | 'INCOMPATIBLE'
  /** Invalid argument (bad label, unaligned buffer, negative count...). */
  | 'INVALID'
  /** Any other device or command failure. */
  | 'IO'
  /** The library was closed. */
  | 'CLOSED';

export interface TapeErrorInfo {
  label?: string;
  drive?: number;
  block?: number;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class TapeError extends Error {
  readonly code: TapeErrorCode;
  readonly label?: string;
  readonly drive?: number;
  readonly block?: number;
  readonly details?: Record<string, unknown>;

  constructor(code: TapeErrorCode, message: string, info: TapeErrorInfo = {}) {
    super(message, info.cause !== undefined ? { cause: info.cause } : undefined);
    this.name = 'TapeError';
    this.code = code;
    if (info.label !== undefined) this.label = info.label;
    if (info.drive !== undefined) this.drive = info.drive;
    if (info.block !== undefined) this.block = info.block;
    if (info.details !== undefined) this.details = info.details;
  }
}

export function isTapeError(err: unknown, code?: TapeErrorCode): err is TapeError {
  return err instanceof TapeError && (code === undefined || err.code === code);
}

/** LTO generations the timing model and label parser know about. */
export type LtoGeneration = 'LTO-8' | 'LTO-9';

/** Barcode labels: six characters [A-Z0-9] then the media id L<digit>. */
export const LABEL_RE = /^[A-Z0-9]{6}L[0-9]$/;

/** Media generation number of a label (`TD0001L9` → 9), or undefined when the label has no LTO media id. */
export function labelGeneration(label: string): number | undefined {
  const m = /L([0-9])$/.exec(label);
  return m ? Number(m[1]) : undefined;
}

/**
 * Why a drive of `driveGeneration` (e.g. 'LTO-9') cannot use cartridge `label` (LTO drives read
 * their own and the previous generation's media), or undefined when it can or either generation
 * is unknown.
 */
export function incompatibleMedia(label: string, driveGeneration: string | undefined): string | undefined {
  const gen = labelGeneration(label);
  const m = driveGeneration ? /^LTO-([0-9]+)$/.exec(driveGeneration) : null;
  if (gen === undefined || !m) return undefined;
  const driveGen = Number(m[1]);
  return gen > driveGen || gen < driveGen - 1 ? `${label} (LTO-${gen} media) cannot be used in an ${driveGeneration} drive` : undefined;
}

export interface TapePosition {
  /** Logical address of the next object to be read or written (filemarks count as one object). */
  block: number;
  /** Number of the tape file the position is in (= filemarks before it); -1 when the drive lost track. */
  fileNumber: number;
  /** Data blocks between the start of the current tape file and the position; -1 when unknown. */
  blockInFile: number;
  /** At beginning of tape. */
  bot: boolean;
  /** At end of recorded data; undefined when the backend cannot tell without moving. */
  eod?: boolean;
}

export interface DriveStatus {
  /** Drive name (virtual: `drive0`, real: the device path). */
  name: string;
  /** Index of the drive in the library (= mtx Data Transfer Element number). */
  index: number;
  /** A cartridge is in the drive. */
  loaded: boolean;
  /** Its barcode, when known. */
  label?: string;
  /** Loaded and threaded: I/O can be issued. False while loading or unloading. */
  ready: boolean;
  /** The drive itself is usable (powered, not failed). */
  online: boolean;
  /** Fixed block size in bytes of the loaded cartridge (0 when no cartridge). */
  blockSize: number;
  position?: TapePosition;
  /** Drive generation, e.g. 'LTO-9'. */
  generation?: string;
  /** Density reported for the loaded medium, e.g. 'LTO-9'. */
  density?: string;
  writeProtected?: boolean;
  /** Capacity and free space of the loaded cartridge, when the backend knows them. */
  capacityBytes?: number;
  remainingBytes?: number;
}

/**
 * One block through `readBlocks(1)`, the way every backend implements TapeDrive.readBlock: its data, or the
 * mark met instead; a read that returns neither (allowed by ReadResult) is simply repeated.
 */
export async function readOneBlock(drive: Pick<TapeDrive, 'readBlocks'>): Promise<Buffer | 'filemark' | 'eod'> {
  for (;;) {
    const r = await drive.readBlocks(1);
    if (r.data.length > 0) return r.data;
    if (r.mark) return r.mark;
  }
}

/** Result of reading blocks. */
export interface ReadResult {
  /** Whole blocks, possibly fewer than asked for (even zero) without a mark: just read again. */
  data: Buffer;
  /**
   * Why reading stopped, when it stopped on the medium's structure:
   * 'filemark': a filemark was read; the position is now after it (start of the next tape file).
   * 'eod': end of recorded data; the position stays at EOD.
   */
  mark?: 'filemark' | 'eod';
}

/**
 * One tape drive. All methods except `status` throw TapeError('NO_MEDIUM') when
 * no cartridge is loaded. Loading and unloading are changer operations
 * (`changer.load`, `changer.unload`: an unloaded cartridge has to go to a slot).
 */
export interface TapeDrive {
  readonly name: string;
  readonly index: number;

  /** Snapshot of the drive; never waits for a running operation and never moves the tape. */
  status(): Promise<DriveStatus>;
  /** Logical address of the current position (see addressing above). */
  tell(): Promise<number>;
  /** Back to BOT (address 0). */
  rewind(): Promise<void>;
  /**
   * Position at logical address `block` (0 ≤ block ≤ EOD address). Locating to
   * the address the drive is already at does not move the tape.
   */
  locate(block: number): Promise<void>;
  /** Forward over `count` ≥ 0 filemarks: ends at the first block of the tape file `count` files ahead. Hitting EOD first: BAD_POSITION, position at EOD. */
  spaceFilemarks(count: number): Promise<void>;
  /** To end of recorded data (where the next tape file is appended). */
  seekToEod(): Promise<void>;
  /** Read up to `maxBlocks` whole blocks (see ReadResult). MEDIUM_ERROR on an unreadable block (position stays at it). */
  readBlocks(maxBlocks: number): Promise<ReadResult>;
  /** One block: its data, or the mark met instead. */
  readBlock(): Promise<Buffer | 'filemark' | 'eod'>;
  /** Write whole blocks (`data.length` a multiple of blockSize) at the current position. EOM when the cartridge is full. */
  writeBlocks(data: Buffer): Promise<void>;
  /** Write `count` ≥ 1 filemarks (ends the tape file being written). */
  writeFilemarks(count?: number): Promise<void>;
}

export interface SlotInfo {
  /** Slot number, 1-based as mtx numbers them; import/export slots follow the storage slots. */
  slot: number;
  full: boolean;
  label?: string;
  importExport: boolean;
}

export interface DriveSlotInfo {
  drive: number;
  full: boolean;
  label?: string;
  /** Slot the cartridge came from (where unload puts it back by default). */
  sourceSlot?: number;
}

export interface Inventory {
  slots: SlotInfo[];
  /** Import/export (mail) slots. */
  ie: SlotInfo[];
  drives: DriveSlotInfo[];
  /** Cartridges known to be outside the library (exported), when the backend tracks them. */
  offline?: string[];
}

/** Where a cartridge is. */
export type CartridgeWhere =
  | { where: 'slot'; slot: number }
  | { where: 'drive'; drive: number; sourceSlot?: number }
  | { where: 'ie'; slot: number }
  | { where: 'offline' };

/** The robot and its slots. */
export interface TapeChanger {
  inventory(): Promise<Inventory>;
  /** Where a label is; NOT_FOUND when the library does not know it. */
  find(label: string): Promise<CartridgeWhere>;
  /**
   * Move a cartridge (by slot number or label) into drive `drive` and wait until it is ready.
   * BUSY when the drive is full or the cartridge is in another drive; OFFLINE when exported.
   */
  load(source: number | string, drive: number): Promise<void>;
  /** Rewind, eject and move the cartridge of `drive` back to `slot` (default: where it came from, else the first free slot). Returns the slot. */
  unload(drive: number, slot?: number): Promise<number>;
  /** Move a cartridge out through an import/export slot; afterwards it is offline. BUSY if it is in a drive. */
  exportCartridge(label: string): Promise<void>;
  /** Bring an exported cartridge back into a storage slot (default: first free). Returns the slot. */
  importCartridge(label: string, slot?: number): Promise<number>;
}

/** Counters kept by every backend (monotonic since the library was opened). */
export interface TapeCounters {
  /** Cartridge loads into a drive. */
  mounts: number;
  /** Cartridge unloads from a drive. */
  unloads: number;
  /** `locate` calls that moved the tape. */
  locates: number;
  /** spaceFilemarks / seekToEod calls that moved the tape. */
  spaces: number;
  rewinds: number;
  /** Robot moves (slot↔drive, slot↔import/export). */
  robotMoves: number;
  blocksRead: number;
  blocksWritten: number;
  bytesRead: number;
  bytesWritten: number;
  filemarksWritten: number;
  readErrors: number;
}

export interface TapeStats extends TapeCounters {
  /** Time spent per operation kind, in seconds (virtual: modelled seconds; real hardware: measured). */
  seconds: Record<string, number>;
}

export interface TapeLibrary {
  readonly kind: 'virtual' | 'scsi';
  /** Generation of every drive (e.g. 'LTO-9') when the library knows it without asking a drive; see incompatibleMedia(). */
  readonly generation?: string;
  readonly changer: TapeChanger;
  readonly drives: readonly TapeDrive[];
  /**
   * Make sure `label` is in a drive and return that drive. Already loaded: no
   * robot move. Otherwise it goes into `opts.drive`, or the first empty drive
   * (BUSY when all are full and no drive was named); a named full drive is
   * unloaded first.
   */
  mount(label: string, opts?: { drive?: number }): Promise<TapeDrive>;
  stats(): TapeStats;
  close(): Promise<void>;
}

export function emptyCounters(): TapeCounters {
  return {
    mounts: 0,
    unloads: 0,
    locates: 0,
    spaces: 0,
    rewinds: 0,
    robotMoves: 0,
    blocksRead: 0,
    blocksWritten: 0,
    bytesRead: 0,
    bytesWritten: 0,
    filemarksWritten: 0,
    readErrors: 0,
  };
}
