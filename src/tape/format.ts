// Self-describing tape format (DESIGN.md §5).
//
// Each archive appends two tape files at end of data:
//
//   tape file N     a POSIX tar stream (ustar headers, pax extended headers for
//                   long / non-ASCII names and sizes ≥ 8 GiB) written in the
//                   cartridge's block size: the blocking factor is blockSize/512,
//                   so `tar -b <blockSize/512> -xf` reads it (-b 512 for 256 KiB);
//                   it ends with the two zero blocks of end-of-archive, zero-padded
//                   to a whole block, then a filemark.
//   tape file N+1   the index: UTF-8 JSON (TapeIndex below) zero-padded to whole
//                   blocks, then a filemark.
//
// Each index entry tells where a member's DATA starts: `firstBlock` is the
// logical address of the block holding its first byte, `offset` the byte offset
// in that block. Byte x of a member therefore lives in block
// firstBlock + floor((offset + x) / blockSize), at (offset + x) % blockSize.
// Tape files are contiguous runs of data blocks, so that arithmetic holds across
// the whole member.
//
// A lost catalog is rebuilt from the index files (`scanTape`); a tar tape
// written elsewhere is docked by reading its headers once (`dockForeignTar`).

import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  TAR_BLOCK,
  decodeHeader,
  encodeFileHeader,
  endOfArchive,
  fileHeaderLength,
  isZeroBlock,
  paddedSize,
  parsePax,
} from './tar.js';
import { TapeError, isTapeError, type TapeDrive } from './types.js';
import type { TapeLocation } from '../catalog/types.js';

export const INDEX_FORMAT = 'tapedeck-index';
export const INDEX_VERSION = 1;

/** One file to archive. */
export interface ArchiveMember {
  objectId: string;
  /** Original path relative to its media root ('/'-separated, no '..'). Stored as the tar member name. */
  path: string;
  size: number;
  /** Modification time, ms since epoch (default: now). */
  mtime?: number;
  /** The file's bytes; must deliver exactly `size` bytes. Called once, when the member's turn comes. */
  open(): Readable | AsyncIterable<Uint8Array> | Promise<Readable | AsyncIterable<Uint8Array>>;
}

/** Where one member's data lives on tape (one entry of an index file). */
export interface IndexEntry {
  /** Catalog object ID; null for members of docked foreign tars. */
  objectId: string | null;
  path: string;
  size: number;
  sha256: string;
  /** Cartridge label when known. */
  label: string | null;
  /** Tape file holding the tar stream. */
  tapeFile: number;
  /** Logical address of the block holding the first data byte. */
  firstBlock: number;
  /** Byte offset of the first data byte within that block. */
  offset: number;
  blockSize: number;
  /** Seconds since epoch, from the tar header. */
  mtime: number;
}

/** Contents of one index tape file. */
export interface TapeIndex {
  format: typeof INDEX_FORMAT;
  version: number;
  label: string | null;
  /** Tape file of the tar stream this index describes. */
  tapeFile: number;
  /** Tape file of the index itself. */
  indexFile: number;
  /** First block of the tar stream and first block after it (its filemark). */
  tarFirstBlock: number;
  tarEndBlock: number;
  blockSize: number;
  created: string;
  entries: IndexEntry[];
}

export interface WriteArchiveOptions {
  /** Label recorded in the index (default: the drive's status label). */
  label?: string;
  /** Bytes buffered per drive write (rounded to whole blocks; default 4 MiB). */
  chunkBytes?: number;
  /** Called after each drive write with the tar bytes written so far. */
  onProgress?: (bytes: number) => void;
  /** Creation time recorded in the index (default: now). */
  now?: Date;
  /**
   * Asked after each member but the last: true ends the archive there (a shorter tar with
   * its own index, listing only the members written), e.g. to give the drive to playback.
   */
  stopAfter?: () => boolean;
}

/** Bytes on tape of the tar stream for `members` (excluding its filemark), block-padded. */
export function tarStreamSize(members: readonly { path: string; size: number }[], blockSize: number): number {
  let n = 0;
  for (const m of members) n += fileHeaderLength(m) + paddedSize(m.size);
  n += 2 * TAR_BLOCK;
  return Math.ceil(n / blockSize) * blockSize;
}

/** Convert an index entry into the catalog's TapeLocation. */
export function toTapeLocation(e: IndexEntry, label?: string): TapeLocation {
  const l = label ?? e.label;
  if (!l) throw new TapeError('INVALID', `index entry ${e.path} has no cartridge label`);
  return { label: l, tapeFile: e.tapeFile, block: e.firstBlock, offset: e.offset, size: e.size, sha256: e.sha256, blockSize: e.blockSize };
}

/** What readRange needs to know about a member: from an IndexEntry or a TapeLocation. */
export interface MemberExtent {
  firstBlock: number;
  offset: number;
  size: number;
  blockSize: number;
  label?: string | null;
}

export function extentOf(loc: TapeLocation | IndexEntry): MemberExtent {
  if ('firstBlock' in loc) return loc;
  return { firstBlock: loc.block, offset: loc.offset, size: loc.size, blockSize: loc.blockSize, label: loc.label };
}

/**
 * Append one archive (tar tape file + index tape file) at end of data.
 * Streams every member (never buffers one whole), computing SHA-256 as it goes.
 * On failure the tape file being written is ended with a filemark (best effort)
 * and the error is rethrown; that partial tar has no index, so scanTape lists it
 * as unindexed and no catalog entry ever points into it.
 */
export async function writeArchive(drive: TapeDrive, members: readonly ArchiveMember[], opts: WriteArchiveOptions = {}): Promise<TapeIndex> {
  for (const m of members) validateMember(m);
  await drive.seekToEod();
  const st = await drive.status();
  const bs = st.blockSize;
  if (!st.position || !(bs > 0) || bs % TAR_BLOCK !== 0) {
    throw new TapeError('INVALID', `${drive.name}: block size ${bs} is not a multiple of 512`, { drive: drive.index });
  }
  const tapeFile = st.position.fileNumber;
  if (tapeFile < 0) {
    throw new TapeError('BAD_POSITION', `${drive.name}: the drive does not know the tape file number at end of data`, {
      drive: drive.index,
    });
  }
  const label = opts.label ?? st.label ?? null;
  const startBlock = await drive.tell();
  const out = new BlockWriter(drive, bs, opts.chunkBytes ?? 4 << 20, opts.onProgress);
  const entries: IndexEntry[] = [];
  try {
    for (const m of members) {
      const mtime = Math.floor((m.mtime ?? Date.now()) / 1000);
      await out.write(encodeFileHeader({ path: m.path, size: m.size, mtime }));
      const dataAt = out.bytes;
      const hash = createHash('sha256');
      let got = 0;
      const src = await m.open();
      for await (const chunk of src as AsyncIterable<Uint8Array | string>) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        got += buf.length;
        if (got > m.size) break;
        hash.update(buf);
        await out.write(buf);
      }
      if (got !== m.size) {
        if (typeof (src as Readable).destroy === 'function') (src as Readable).destroy();
        throw new TapeError('INVALID', `member ${m.path}: source delivered ${got > m.size ? 'more than' : got + ' of'} ${m.size} bytes`);
      }
      await out.write(Buffer.alloc(paddedSize(m.size) - m.size));
      entries.push({
        objectId: m.objectId,
        path: m.path,
        size: m.size,
        sha256: hash.digest('hex'),
        label,
        tapeFile,
        firstBlock: startBlock + Math.floor(dataAt / bs),
        offset: dataAt % bs,
        blockSize: bs,
        mtime,
      });
      if (entries.length < members.length && opts.stopAfter?.()) break;
    }
    await out.write(endOfArchive());
    await out.finish();
    await drive.writeFilemarks(1);
  } catch (err) {
    await out.abandon().catch(() => undefined);
    throw err;
  }
  const tarEndBlock = startBlock + out.bytes / bs;
  const index: TapeIndex = {
    format: INDEX_FORMAT,
    version: INDEX_VERSION,
    label,
    tapeFile,
    indexFile: tapeFile + 1,
    tarFirstBlock: startBlock,
    tarEndBlock,
    blockSize: bs,
    created: (opts.now ?? new Date()).toISOString(),
    entries,
  };
  const json = Buffer.from(JSON.stringify(index) + '\n', 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / bs) * bs);
  json.copy(padded);
  await drive.writeBlocks(padded);
  await drive.writeFilemarks(1);
  return index;
}

/** Read and parse the index stored in tape file `tapeFile`. FORMAT when that file is not an index. */
export async function readIndex(drive: TapeDrive, tapeFile: number, opts: { maxBytes?: number } = {}): Promise<TapeIndex> {
  await seekToFile(drive, tapeFile);
  const first = await readSomeBlocks(drive);
  if (first.data.length === 0 || !looksLikeIndex(first.data)) {
    throw new TapeError('FORMAT', `${drive.name}: tape file ${tapeFile} is not a Tapedeck index`, { drive: drive.index });
  }
  return readIndexRest(drive, tapeFile, first, opts.maxBytes ?? 256 << 20);
}

export interface ScanResult {
  label: string | null;
  /** Number of tape files on the cartridge. */
  tapeFiles: number;
  indexes: TapeIndex[];
  /** All entries of all indexes, in tape order. */
  entries: IndexEntry[];
  /** Tape files that are neither an index nor described by one (e.g. foreign tars, aborted archives). */
  unindexed: number[];
}

/** Walk a whole cartridge from BOT and collect every index (catalog rebuild, `tape import`). */
export async function scanTape(drive: TapeDrive): Promise<ScanResult> {
  await drive.rewind();
  const st = await drive.status();
  const indexes: TapeIndex[] = [];
  const others: number[] = [];
  let n = 0;
  for (;;) {
    const first = await readSomeBlocks(drive);
    if (first.data.length === 0) {
      if (first.mark === 'eod') break;
      n++; // empty tape file
      continue;
    }
    if (looksLikeIndex(first.data)) {
      const raw = await readIndexBytes(drive, first, 256 << 20);
      try {
        if (raw.mark) {
          indexes.push(parseIndex(raw.buf, drive, n));
          n++;
          if (raw.mark === 'eod') break;
          continue;
        }
      } catch (err) {
        if (!isTapeError(err, 'FORMAT')) throw err;
      }
      others.push(n); // damaged or oversized index
      n++;
      if (raw.mark === 'eod' || (!raw.mark && (await skipRestOfFile(drive, {})))) break;
      continue;
    }
    others.push(n);
    n++;
    if (await skipRestOfFile(drive, first)) break;
  }
  const described = new Set(indexes.map((i) => i.tapeFile));
  return {
    label: st.label ?? indexes[0]?.label ?? null,
    tapeFiles: n,
    indexes,
    entries: indexes.flatMap((i) => i.entries),
    unindexed: others.filter((f) => !described.has(f)),
  };
}

export interface DockResult {
  tapeFile: number;
  entries: IndexEntry[];
  /** Entries that are not plain regular files (sparse files...) and cannot be served by byte range. */
  skipped: { path: string; reason: string }[];
}

/**
 * Read the tar headers of a tape file written by plain `tar` elsewhere (no
 * index) and describe its regular files like index entries (objectId null),
 * hashing their data on the way. The tar record size must equal the
 * cartridge block size (e.g. `tar -b 512` for 256 KiB blocks).
 */
export async function dockForeignTar(drive: TapeDrive, opts: { tapeFile?: number; label?: string } = {}): Promise<DockResult> {
  const tapeFile = opts.tapeFile ?? 0;
  await seekToFile(drive, tapeFile);
  const st = await drive.status();
  const bs = st.blockSize;
  const label = opts.label ?? st.label ?? null;
  const start = await drive.tell();
  const rd = new TapeFileReader(drive, bs);
  const entries: IndexEntry[] = [];
  const skipped: DockResult['skipped'] = [];
  let pax = new Map<string, string>();
  const globalPax = new Map<string, string>();
  let longName: string | undefined;
  let sawHeader = false;
  for (;;) {
    const hb = await rd.read(TAR_BLOCK);
    if (hb.length < TAR_BLOCK) {
      if (!sawHeader) throw new TapeError('FORMAT', `${drive.name}: tape file ${tapeFile} is empty`, { drive: drive.index });
      break; // truncated archive without end marker: accept what we have
    }
    if (isZeroBlock(hb)) break;
    const h = decodeHeader(hb);
    if (!h) {
      throw new TapeError('FORMAT', `${drive.name}: tape file ${tapeFile} has no valid tar header at byte ${rd.offset - TAR_BLOCK}`, {
        drive: drive.index,
      });
    }
    sawHeader = true;
    if (h.type === 'x' || h.type === 'g') {
      const map = parsePax(await rd.readExact(h.size, 'pax header'));
      await rd.skip(paddedSize(h.size) - h.size);
      if (h.type === 'x') pax = map;
      else for (const [k, v] of map) globalPax.set(k, v);
      continue;
    }
    if (h.type === 'L') {
      const data = await rd.readExact(h.size, 'long name');
      await rd.skip(paddedSize(h.size) - h.size);
      longName = data.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    if (h.type === 'K') {
      await rd.skip(paddedSize(h.size));
      continue;
    }
    const ext = (k: string) => pax.get(k) ?? globalPax.get(k);
    const sizeStr = ext('size');
    const size = sizeStr !== undefined && /^\d+$/.test(sizeStr) ? Number(sizeStr) : h.size;
    const path = ext('path') ?? longName ?? h.name;
    pax = new Map();
    longName = undefined;
    const hasData = !['1', '2', '3', '4', '5', '6'].includes(h.type);
    const dataLen = hasData ? size : 0;
    if (h.type === '0' || h.type === '\0' || h.type === '7') {
      const dataAt = rd.offset;
      const hash = createHash('sha256');
      await rd.stream(dataLen, (b) => hash.update(b));
      entries.push({
        objectId: null,
        path,
        size: dataLen,
        sha256: hash.digest('hex'),
        label,
        tapeFile,
        firstBlock: start + Math.floor(dataAt / bs),
        offset: dataAt % bs,
        blockSize: bs,
        mtime: h.mtime,
      });
      await rd.skip(paddedSize(dataLen) - dataLen);
    } else {
      if (h.type === 'S') skipped.push({ path, reason: 'GNU sparse file' });
      await rd.skip(paddedSize(dataLen));
    }
  }
  return { tapeFile, entries, skipped };
}

export interface ReadRangeOptions {
  /** Blocks per drive read (default: about 4 MiB). */
  chunkBlocks?: number;
  /** Check the loaded cartridge's label and block size against the extent first (default true). */
  verify?: boolean;
}

/**
 * Bytes [start, end) (end exclusive, like the catalog's ByteRange) of a member,
 * as chunks. Locates only when the drive is not already at the block holding
 * `start` (sequential reads of one member never locate twice).
 */
export async function* readRange(
  drive: TapeDrive,
  member: MemberExtent | IndexEntry | TapeLocation,
  start: number,
  end: number,
  opts: ReadRangeOptions = {},
): AsyncGenerator<Buffer> {
  const ext = 'firstBlock' in member ? member : extentOf(member);
  const { firstBlock, offset, size, blockSize: bs } = ext;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > size) {
    throw new TapeError('INVALID', `range [${start}, ${end}) is outside member of ${size} bytes`);
  }
  if (start === end) return;
  if (opts.verify !== false) {
    const st = await drive.status();
    if (st.blockSize !== bs) {
      throw new TapeError('BAD_POSITION', `${drive.name}: cartridge block size ${st.blockSize} differs from the member's ${bs}`, {
        drive: drive.index,
      });
    }
    if (ext.label && st.label && ext.label !== st.label) {
      throw new TapeError('BAD_POSITION', `${drive.name}: holds ${st.label}, member is on ${ext.label}`, {
        drive: drive.index,
        label: st.label,
      });
    }
  }
  const abs = offset + start;
  const block = firstBlock + Math.floor(abs / bs);
  let skip = abs % bs;
  let remaining = end - start;
  if ((await drive.tell()) !== block) await drive.locate(block);
  const chunk = Math.max(1, opts.chunkBlocks ?? Math.floor((4 << 20) / bs));
  let blocksLeft = Math.ceil((skip + remaining) / bs);
  while (remaining > 0) {
    const r = await drive.readBlocks(Math.min(chunk, blocksLeft));
    const n = r.data.length / bs;
    blocksLeft -= n;
    if (r.data.length > skip) {
      const piece = r.data.subarray(skip, Math.min(r.data.length, skip + remaining));
      remaining -= piece.length;
      skip = 0;
      yield piece;
    } else skip -= r.data.length;
    if (remaining > 0 && r.mark) {
      throw new TapeError('FORMAT', `${drive.name}: ${r.mark} inside a member (${remaining} bytes short)`, { drive: drive.index });
    }
  }
}

/** Position at the first block of tape file n, moving as little as the drive's position allows. */
export async function seekToFile(drive: TapeDrive, n: number): Promise<void> {
  if (!Number.isInteger(n) || n < 0) throw new TapeError('INVALID', `invalid tape file number ${n}`);
  const pos = (await drive.status()).position;
  if (pos && pos.fileNumber === n && pos.blockInFile === 0) return;
  if (pos && pos.fileNumber === n && pos.blockInFile > 0) {
    await drive.locate(pos.block - pos.blockInFile);
    return;
  }
  if (pos && pos.fileNumber >= 0 && pos.fileNumber < n) {
    await spaceTo(drive, n - pos.fileNumber, n);
    return;
  }
  await drive.rewind();
  if (n > 0) await spaceTo(drive, n, n);
}

async function spaceTo(drive: TapeDrive, count: number, n: number): Promise<void> {
  try {
    await drive.spaceFilemarks(count);
  } catch (err) {
    if (isTapeError(err, 'BAD_POSITION')) {
      throw new TapeError('NOT_FOUND', `${drive.name}: no tape file ${n}`, { drive: drive.index, cause: err });
    }
    throw err;
  }
}

// --- internals -------------------------------------------------------------------

function validateMember(m: ArchiveMember): void {
  const p = m.path;
  if (typeof p !== 'string' || p === '' || p.startsWith('/') || p.includes('\0') || p.includes('\\')) {
    throw new TapeError('INVALID', `member path ${JSON.stringify(p)} must be a relative '/'-separated path`);
  }
  const parts = p.split('/');
  if (parts.some((x) => x === '' || x === '.' || x === '..')) {
    throw new TapeError('INVALID', `member path ${JSON.stringify(p)} has empty, '.' or '..' components`);
  }
  if (!Number.isSafeInteger(m.size) || m.size < 0) throw new TapeError('INVALID', `member ${p}: invalid size ${m.size}`);
  if (typeof m.objectId !== 'string' || m.objectId === '') throw new TapeError('INVALID', `member ${p}: missing objectId`);
}

/** Buffers bytes and writes them to the drive in whole blocks. */
class BlockWriter {
  /** Bytes accepted so far (offset within the tape file). */
  bytes = 0;
  private readonly buf: Buffer;
  private fill = 0;
  private flushed = 0;

  constructor(
    private readonly drive: TapeDrive,
    private readonly bs: number,
    chunkBytes: number,
    private readonly onProgress?: (bytes: number) => void,
  ) {
    this.buf = Buffer.alloc(Math.max(bs, Math.floor(chunkBytes / bs) * bs));
  }

  async write(data: Buffer): Promise<void> {
    let at = 0;
    while (at < data.length) {
      const n = Math.min(data.length - at, this.buf.length - this.fill);
      data.copy(this.buf, this.fill, at, at + n);
      this.fill += n;
      at += n;
      this.bytes += n;
      if (this.fill === this.buf.length) await this.flush(this.fill);
    }
  }

  /** Pad to a whole block with zeros and write what is left. */
  async finish(): Promise<void> {
    const pad = (this.bs - (this.bytes % this.bs)) % this.bs;
    if (pad) await this.write(Buffer.alloc(pad));
    if (this.fill > 0) await this.flush(this.fill);
  }

  /** After a failure: write whole blocks that are buffered, then end the tape file (if anything reached the tape). */
  async abandon(): Promise<void> {
    const whole = Math.floor(this.fill / this.bs) * this.bs;
    if (whole > 0) await this.flush(whole).catch(() => undefined);
    if (this.flushed > 0) await this.drive.writeFilemarks(1);
  }

  private async flush(n: number): Promise<void> {
    // the buffer is not touched again until the drive has taken the data
    await this.drive.writeBlocks(this.buf.subarray(0, n));
    this.buf.copy(this.buf, 0, n, this.fill);
    this.fill -= n;
    this.flushed += n;
    this.onProgress?.(this.flushed);
  }
}

/** Sequential byte reader over one tape file. */
class TapeFileReader {
  /** Bytes consumed from the start of the tape file. */
  offset = 0;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(
    private readonly drive: TapeDrive,
    bs: number,
    private readonly chunkBlocks = Math.max(1, Math.floor((4 << 20) / bs)),
  ) {}

  /** Up to n bytes (fewer only at the end of the tape file). */
  async read(n: number): Promise<Buffer> {
    while (this.pending.length < n && !this.ended) await this.fillMore();
    const out = this.pending.subarray(0, Math.min(n, this.pending.length));
    this.pending = this.pending.subarray(out.length);
    this.offset += out.length;
    return out;
  }

  async readExact(n: number, what: string): Promise<Buffer> {
    if (n > 64 << 20) throw new TapeError('FORMAT', `${what} of ${n} bytes is implausibly large`);
    const b = await this.read(n);
    if (b.length < n) throw new TapeError('FORMAT', `tape file ends inside a ${what}`);
    return Buffer.from(b);
  }

  async skip(n: number): Promise<void> {
    await this.stream(n, () => undefined);
  }

  async stream(n: number, sink: (b: Buffer) => void): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0) {
        if (this.ended) throw new TapeError('FORMAT', 'tape file ends inside a member');
        await this.fillMore();
        continue;
      }
      const piece = this.pending.subarray(0, Math.min(left, this.pending.length));
      sink(piece);
      this.pending = this.pending.subarray(piece.length);
      this.offset += piece.length;
      left -= piece.length;
    }
  }

  private async fillMore(): Promise<void> {
    const r = await this.drive.readBlocks(this.chunkBlocks);
    if (r.data.length > 0) this.pending = this.pending.length ? Buffer.concat([this.pending, r.data]) : r.data;
    if (r.mark) this.ended = true;
  }
}

/** Read until some data or a mark arrives. */
async function readSomeBlocks(drive: TapeDrive) {
  for (;;) {
    const r = await drive.readBlocks(1);
    if (r.data.length > 0 || r.mark) return r;
  }
}

function looksLikeIndex(block: Buffer): boolean {
  const head = block.toString('utf8', 0, Math.min(block.length, 64));
  return head.startsWith(`{"format":"${INDEX_FORMAT}"`);
}

async function readIndexRest(
  drive: TapeDrive,
  tapeFile: number,
  first: { data: Buffer; mark?: 'filemark' | 'eod' },
  maxBytes: number,
): Promise<TapeIndex> {
  const raw = await readIndexBytes(drive, first, maxBytes);
  if (!raw.mark) throw new TapeError('FORMAT', `${drive.name}: index in tape file ${tapeFile} exceeds ${maxBytes} bytes`);
  return parseIndex(raw.buf, drive, tapeFile);
}

/** Read the rest of an index tape file (through its filemark), or stop once more than maxBytes were read (mark undefined). */
async function readIndexBytes(
  drive: TapeDrive,
  first: { data: Buffer; mark?: 'filemark' | 'eod' },
  maxBytes: number,
): Promise<{ buf: Buffer; mark?: 'filemark' | 'eod' }> {
  const parts = [first.data];
  let total = first.data.length;
  let mark = first.mark;
  while (!mark && total <= maxBytes) {
    const r = await drive.readBlocks(16);
    if (r.data.length) {
      parts.push(r.data);
      total += r.data.length;
    }
    mark = r.mark;
  }
  const out: { buf: Buffer; mark?: 'filemark' | 'eod' } = { buf: Buffer.concat(parts) };
  if (mark) out.mark = mark;
  return out;
}

function parseIndex(buf: Buffer, drive: TapeDrive, tapeFile: number): TapeIndex {
  let end = buf.length;
  while (end > 0 && buf[end - 1] === 0) end--;
  let idx: TapeIndex;
  try {
    idx = JSON.parse(buf.toString('utf8', 0, end)) as TapeIndex;
  } catch (cause) {
    throw new TapeError('FORMAT', `${drive.name}: tape file ${tapeFile} holds a damaged index`, { drive: drive.index, cause });
  }
  if (idx?.format !== INDEX_FORMAT || !Array.isArray(idx.entries) || typeof idx.tapeFile !== 'number') {
    throw new TapeError('FORMAT', `${drive.name}: tape file ${tapeFile} is not a Tapedeck index`, { drive: drive.index });
  }
  if (typeof idx.version !== 'number' || idx.version > INDEX_VERSION) {
    throw new TapeError('FORMAT', `${drive.name}: index version ${idx.version} in tape file ${tapeFile} is not supported`);
  }
  return idx;
}

/** After reading the first block(s) of a tape file, move to the start of the next one. True when at EOD. */
async function skipRestOfFile(drive: TapeDrive, first: { mark?: 'filemark' | 'eod' }): Promise<boolean> {
  if (first.mark === 'filemark') return false;
  if (first.mark === 'eod') return true;
  try {
    await drive.spaceFilemarks(1);
    return false;
  } catch (err) {
    if (isTapeError(err, 'BAD_POSITION')) return true; // last tape file has no filemark
    throw err;
  }
}
