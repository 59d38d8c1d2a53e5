// On-disk format of one virtual cartridge (`<dir>/cartridges/<LABEL>.tape`).
//
//   offset 0        header region, HEADER_SIZE bytes:
//                   "TAPEDECK-VTAPE 1\n" + JSON {label, blockSize, capacityBytes,
//                   filemarks: [addresses], marksOverflow} + NUL padding
//   HEADER_SIZE     record 0, record 1, ... each SLOT = RECORD_HEADER + blockSize bytes,
//                   record i at HEADER_SIZE + i·SLOT (so a locate is one pread)
//
// Record header (RECORD_HEADER = 32 bytes, little endian):
//   0  'VTRB'            magic
//   4  u8 type           1 = data block, 2 = filemark
//   8  u64 address       the record's own logical address (self-check)
//   16 u32 length        payload bytes (blockSize for data, 0 for a filemark)
//   20 u32 crc32(payload)
//   24 u32 crc32(bytes 0..23)
// A filemark record stores only its header; the rest of its slot is a hole.
//
// End of data (EOD) is the number of whole records: floor((fileSize − HEADER_SIZE) / SLOT).
// Writing at address a truncates the file there first, as a real tape forgets
// everything after the write position. The filemark list in the header is a
// cache: it is checked against the records on open and rebuilt by scanning the
// record headers when it does not match (or did not fit in the header).

import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { TapeError } from './types.js';

export const HEADER_SIZE = 65536;
export const RECORD_HEADER = 32;
const MAGIC_LINE = 'TAPEDECK-VTAPE 1\n';
const REC_MAGIC = 0x42525456; // 'VTRB' read as u32 LE
const TYPE_DATA = 1;
const TYPE_MARK = 2;

export interface CartridgeMeta {
  label: string;
  blockSize: number;
  capacityBytes: number;
}

/** Result of reading a run of records. */
export interface RecordRun {
  /** Payloads of the data blocks read, concatenated. */
  data: Buffer;
  /** Number of data blocks in `data`. */
  count: number;
  /** What stopped the run before `max` blocks: a filemark at the next address, EOD, or a record failing its self-check. */
  stop?: 'filemark' | 'eod' | 'bad';
}

export class VirtualCartridge {
  readonly path: string;
  readonly label: string;
  readonly blockSize: number;
  readonly capacityBytes: number;
  readonly slot: number;
  private fh: FileHandle;
  private readonly writable: boolean;
  /** Sorted logical addresses of the filemarks. */
  private marks: number[];
  private _eod: number;

  private constructor(path: string, fh: FileHandle, meta: CartridgeMeta, marks: number[], eod: number, writable: boolean) {
    this.path = path;
    this.fh = fh;
    this.label = meta.label;
    this.blockSize = meta.blockSize;
    this.capacityBytes = meta.capacityBytes;
    this.slot = RECORD_HEADER + meta.blockSize;
    this.marks = marks;
    this._eod = eod;
    this.writable = writable;
  }

  /** Create a blank cartridge file (fails if it exists). */
  static async create(path: string, meta: CartridgeMeta): Promise<void> {
    const fh = await open(path, 'wx');
    try {
      await fh.write(encodeHeader(meta, []), 0, HEADER_SIZE, 0);
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  static async open(path: string, opts: { writable?: boolean } = {}): Promise<VirtualCartridge> {
    const writable = opts.writable ?? true;
    const fh = await open(path, writable ? 'r+' : 'r');
    try {
      const head = Buffer.alloc(HEADER_SIZE);
      const { bytesRead } = await fh.read(head, 0, HEADER_SIZE, 0);
      const parsed = decodeHeader(head.subarray(0, bytesRead), path);
      const size = (await fh.stat()).size;
      const slot = RECORD_HEADER + parsed.meta.blockSize;
      const eod = Math.max(0, Math.floor((size - HEADER_SIZE) / slot));
      const cart = new VirtualCartridge(path, fh, parsed.meta, [], eod, writable);
      const cached = parsed.overflow ? undefined : parsed.marks.filter((m) => m < eod);
      if (cached && (await cart.verifyMarks(cached))) cart.marks = cached;
      else cart.marks = await cart.scanMarks();
      return cart;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  get eod(): number {
    return this._eod;
  }

  /** Filemark addresses (copy). */
  filemarks(): number[] {
    return this.marks.slice();
  }

  /** Bytes of data recorded before address `addr` (default: all). */
  usedBytes(addr = this._eod): number {
    const a = Math.min(addr, this._eod);
    return (a - this.marksBefore(a)) * this.blockSize;
  }

  /** Number of filemarks at addresses < addr (= tape file number of addr). */
  marksBefore(addr: number): number {
    let lo = 0;
    let hi = this.marks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.marks[mid]! < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Address of the first block of tape file n (n = 0 → 0), or undefined if there is no such file start. */
  fileStart(n: number): number | undefined {
    if (n === 0) return 0;
    const m = this.marks[n - 1];
    return m === undefined ? undefined : m + 1;
  }

  /** Address of the k-th filemark (k ≥ 1) at or after addr, or undefined. */
  markAfter(addr: number, k: number): number | undefined {
    return this.marks[this.marksBefore(addr) + k - 1];
  }

  isMark(addr: number): boolean {
    const i = this.marksBefore(addr);
    return this.marks[i] === addr;
  }

  /**
   * Read up to `max` data records starting at `addr`, stopping before a filemark,
   * at EOD, or before a record that fails its self-check.
   */
  async readRun(addr: number, max: number): Promise<RecordRun> {
    const avail = this._eod - addr;
    if (avail <= 0) return { data: Buffer.alloc(0), count: 0, stop: 'eod' };
    // do not read across the next filemark
    const nextMark = this.marks[this.marksBefore(addr)];
    const untilMark = nextMark === undefined ? Infinity : nextMark - addr;
    const n = Math.min(max, avail, untilMark);
    if (n <= 0) return { data: Buffer.alloc(0), count: 0, stop: 'filemark' };
    const raw = Buffer.allocUnsafe(n * this.slot);
    const { bytesRead } = await this.fh.read(raw, 0, raw.length, HEADER_SIZE + addr * this.slot);
    const out = Buffer.allocUnsafe(n * this.blockSize);
    let count = 0;
    let stop: RecordRun['stop'];
    for (; count < n; count++) {
      const rec = raw.subarray(count * this.slot, (count + 1) * this.slot);
      if ((count + 1) * this.slot > bytesRead || !this.checkRecord(rec, addr + count, TYPE_DATA)) {
        stop = 'bad';
        break;
      }
      rec.copy(out, count * this.blockSize, RECORD_HEADER, RECORD_HEADER + this.blockSize);
    }
    if (stop === undefined && count < max) {
      if (addr + count >= this._eod) stop = 'eod';
      else if (addr + count === nextMark) stop = 'filemark';
    }
    const result: RecordRun = { data: out.subarray(0, count * this.blockSize), count };
    if (stop !== undefined) result.stop = stop;
    return result;
  }

  /** Write data blocks at `addr` (truncating everything after it). */
  async writeData(addr: number, data: Buffer): Promise<void> {
    this.assertWritable();
    const n = data.length / this.blockSize;
    if (!Number.isInteger(n)) throw new TapeError('INVALID', 'data is not a whole number of blocks');
    await this.truncateAt(addr);
    if (n === 0) return;
    // build in chunks of at most ~8 MiB to bound memory
    const perChunk = Math.max(1, Math.floor((8 << 20) / this.slot));
    for (let i = 0; i < n; i += perChunk) {
      const k = Math.min(perChunk, n - i);
      const buf = Buffer.allocUnsafe(k * this.slot);
      for (let j = 0; j < k; j++) {
        const payload = data.subarray((i + j) * this.blockSize, (i + j + 1) * this.blockSize);
        writeRecordHeader(buf, j * this.slot, TYPE_DATA, addr + i + j, payload);
        payload.copy(buf, j * this.slot + RECORD_HEADER);
      }
      await this.fh.write(buf, 0, buf.length, HEADER_SIZE + (addr + i) * this.slot);
    }
    this._eod = addr + n;
  }

  /** Write `n` filemarks at `addr` (truncating everything after it). */
  async writeMarks(addr: number, n: number): Promise<void> {
    this.assertWritable();
    await this.truncateAt(addr);
    const hdr = Buffer.alloc(RECORD_HEADER);
    for (let i = 0; i < n; i++) {
      writeRecordHeader(hdr, 0, TYPE_MARK, addr + i, Buffer.alloc(0));
      await this.fh.write(hdr, 0, RECORD_HEADER, HEADER_SIZE + (addr + i) * this.slot);
      this.marks.push(addr + i);
    }
    this._eod = addr + n;
    await this.fh.truncate(HEADER_SIZE + this._eod * this.slot);
    await this.writeHeader();
    await this.fh.datasync();
  }

  async sync(): Promise<void> {
    if (this.writable) await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** The data blocks of tape file n, in chunks (NOT_FOUND when the cartridge has no such file). */
  async *fileBlocks(n: number, chunkBlocks = 64): AsyncGenerator<Buffer> {
    const start = this.fileStart(n);
    if (start === undefined || n > this.marks.length || (n === this.marks.length && start >= this._eod)) {
      throw new TapeError('NOT_FOUND', `${this.label}: no tape file ${n}`, { label: this.label });
    }
    let addr = start;
    for (;;) {
      const run = await this.readRun(addr, chunkBlocks);
      if (run.count > 0) yield run.data;
      addr += run.count;
      if (run.stop === 'bad') {
        throw new TapeError('MEDIUM_ERROR', `${this.label}: record ${addr} fails its self-check`, { label: this.label, block: addr });
      }
      if (run.stop === 'filemark' || run.stop === 'eod') return;
    }
  }

  // --- internals -----------------------------------------------------------

  private assertWritable(): void {
    if (!this.writable) throw new TapeError('IO', `${this.label}: cartridge opened read-only`, { label: this.label });
  }

  private async truncateAt(addr: number): Promise<void> {
    if (addr < 0 || addr > this._eod) {
      throw new TapeError('BAD_POSITION', `${this.label}: write position ${addr} is beyond end of data ${this._eod}`, {
        label: this.label,
        block: addr,
      });
    }
    const keep = this.marksBefore(addr);
    const marksChanged = keep !== this.marks.length;
    if (addr < this._eod) {
      this.marks.length = keep;
      this._eod = addr;
      await this.fh.truncate(HEADER_SIZE + addr * this.slot);
      if (marksChanged) await this.writeHeader();
    } else {
      // also drops a partial record left by an interrupted write
      const size = (await this.fh.stat()).size;
      if (size !== HEADER_SIZE + addr * this.slot) await this.fh.truncate(HEADER_SIZE + addr * this.slot);
    }
  }

  private async writeHeader(): Promise<void> {
    const buf = encodeHeader(
      { label: this.label, blockSize: this.blockSize, capacityBytes: this.capacityBytes },
      this.marks,
    );
    await this.fh.write(buf, 0, HEADER_SIZE, 0);
  }

  private checkRecord(rec: Buffer, addr: number, type: number): boolean {
    if (rec.length < RECORD_HEADER) return false;
    if (rec.readUInt32LE(0) !== REC_MAGIC) return false;
    if (rec.readUInt32LE(24) !== crc32(rec.subarray(0, 24))) return false;
    if (rec[4] !== type) return false;
    if (Number(rec.readBigUInt64LE(8)) !== addr) return false;
    const len = rec.readUInt32LE(16);
    if (type === TYPE_DATA) {
      if (len !== this.blockSize || rec.length < RECORD_HEADER + len) return false;
      if (rec.readUInt32LE(20) !== crc32(rec.subarray(RECORD_HEADER, RECORD_HEADER + len))) return false;
    } else if (len !== 0) return false;
    return true;
  }

  private async readHeaderAt(addr: number): Promise<Buffer> {
    const b = Buffer.alloc(RECORD_HEADER);
    await this.fh.read(b, 0, RECORD_HEADER, HEADER_SIZE + addr * this.slot);
    return b;
  }

  private async verifyMarks(marks: number[]): Promise<boolean> {
    for (const m of marks) {
      const h = await this.readHeaderAt(m);
      if (!this.checkRecord(h, m, TYPE_MARK)) return false;
    }
    return true;
  }

  private async scanMarks(): Promise<number[]> {
    const marks: number[] = [];
    for (let a = 0; a < this._eod; a++) {
      const h = await this.readHeaderAt(a);
      if (h.readUInt32LE(0) === REC_MAGIC && h[4] === TYPE_MARK && h.readUInt32LE(24) === crc32(h.subarray(0, 24))) {
        marks.push(a);
      }
    }
    return marks;
  }
}

function writeRecordHeader(buf: Buffer, at: number, type: number, addr: number, payload: Buffer): void {
  buf.fill(0, at, at + RECORD_HEADER);
  buf.writeUInt32LE(REC_MAGIC, at);
  buf[at + 4] = type;
  buf.writeBigUInt64LE(BigInt(addr), at + 8);
  buf.writeUInt32LE(payload.length, at + 16);
  buf.writeUInt32LE(payload.length ? crc32(payload) : 0, at + 20);
  buf.writeUInt32LE(crc32(buf.subarray(at, at + 24)), at + 24);
}

function encodeHeader(meta: CartridgeMeta, marks: number[]): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  const base = { label: meta.label, blockSize: meta.blockSize, capacityBytes: meta.capacityBytes };
  let json = JSON.stringify({ ...base, filemarks: marks, marksOverflow: false });
  if (MAGIC_LINE.length + json.length + 1 > HEADER_SIZE) {
    json = JSON.stringify({ ...base, filemarks: [], marksOverflow: true });
  }
  buf.write(MAGIC_LINE + json + '\n', 0, 'utf8');
  return buf;
}

function decodeHeader(head: Buffer, path: string): { meta: CartridgeMeta; marks: number[]; overflow: boolean } {
  const text = head.toString('utf8', 0, Math.min(head.length, HEADER_SIZE));
  if (!text.startsWith(MAGIC_LINE)) throw new TapeError('FORMAT', `${path}: not a virtual cartridge file`);
  const end = text.indexOf('\n', MAGIC_LINE.length);
  let obj: unknown;
  try {
    obj = JSON.parse(text.slice(MAGIC_LINE.length, end < 0 ? undefined : end));
  } catch (cause) {
    throw new TapeError('FORMAT', `${path}: damaged cartridge header`, { cause });
  }
  const o = obj as Record<string, unknown>;
  const blockSize = o.blockSize;
  const capacityBytes = o.capacityBytes;
  if (
    typeof o.label !== 'string' ||
    typeof blockSize !== 'number' ||
    !Number.isInteger(blockSize) ||
    blockSize <= 0 ||
    typeof capacityBytes !== 'number' ||
    !(capacityBytes > 0)
  ) {
    throw new TapeError('FORMAT', `${path}: damaged cartridge header`);
  }
  const marks = Array.isArray(o.filemarks) ? o.filemarks.filter((m): m is number => Number.isInteger(m) && m >= 0) : [];
  marks.sort((a, b) => a - b);
  return { meta: { label: o.label, blockSize, capacityBytes }, marks, overflow: o.marksOverflow === true };
}
