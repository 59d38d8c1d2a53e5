// Head stubs: the parts of an archived media file kept on disk so that probing
// and the start of playback never wait for tape (DESIGN.md §7).
//
// A stub is one file, `<dataDir>/stubs/<itemId>.stub`, holding some byte ranges
// of the original file back to back, in file order; the catalog's StubLocation
// lists those ranges. The ranges are:
//   - the head: headSeconds of playback at the item's bitrate (bytes/s), at
//     least headMin bytes, at most the whole file;
//   - the regions players probe that may lie anywhere: an MP4/MOV `moov` box
//     (often at the end), Matroska Cues/Tags/Chapters/Info/Tracks reached
//     through the SeekHead;
//   - the tail (last tailBytes, default 4 MiB): ID3v1/APE tags, AVI idx1, the
//     last Ogg page, MP4 `mfra`, Matroska Cues written at the end.
// Ranges closer than mergeGap bytes are merged (a tiny hole would cost a mount).

import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { ByteRange, Resource, StubLocation } from '../catalog/types.js';
import { fourcc, RandomReader, withReader } from '../media/filereader.js';

export interface StubOptions {
  /** Seconds of playback kept at the head (cfg.headStubSeconds). */
  headSeconds: number;
  /** Smallest head in bytes (cfg.headStubMin). */
  headMin: number;
  /** Bytes kept at the end of every file (default 4 MiB). */
  tailBytes?: number;
  /** Largest probe region (moov, Cues...) kept (default 64 MiB). */
  maxRegion?: number;
  /** Ranges separated by at most this many bytes are merged (default 64 KiB). */
  mergeGap?: number;
}

export const DEFAULT_TAIL = 4 * 1024 * 1024;
const DEFAULT_MAX_REGION = 64 * 1024 * 1024;
const DEFAULT_MERGE_GAP = 64 * 1024;

/** Sort and merge ranges (touching or closer than `gap`), clipped to [0, size). */
export function mergeRanges(ranges: ByteRange[], size: number, gap = 0): ByteRange[] {
  const rs = ranges
    .map((r) => ({ start: Math.max(0, Math.floor(r.start)), end: Math.min(size, Math.ceil(r.end)) }))
    .filter((r) => r.end > r.start)
    .sort((a, b) => a.start - b.start || a.end - b.end);
  const out: ByteRange[] = [];
  for (const r of rs) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end + gap) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/** Bytes of playback kept at the head for a resource. */
export function headBytes(res: Partial<Resource> | undefined, size: number, opts: StubOptions): number {
  let rate = res?.bitrate && res.bitrate > 0 ? res.bitrate : undefined;
  if (!rate && res?.duration && res.duration > 0) rate = size / res.duration;
  const want = rate ? Math.ceil(rate * opts.headSeconds) : 0;
  return Math.min(size, Math.max(opts.headMin, want));
}

/**
 * The byte ranges of `path` a head stub keeps (sorted, merged, end exclusive).
 * Reads only box/element headers of the file. Never throws on malformed media:
 * unparseable files get head and tail only.
 */
export async function computeStubRanges(path: string, res: Partial<Resource> | undefined, opts: StubOptions): Promise<ByteRange[]> {
  return withReader(path, async (r) => {
    const size = r.size;
    const maxRegion = opts.maxRegion ?? DEFAULT_MAX_REGION;
    const ranges: ByteRange[] = [{ start: 0, end: headBytes(res, size, opts) }];
    const tail = opts.tailBytes ?? DEFAULT_TAIL;
    if (tail > 0) ranges.push({ start: Math.max(0, size - tail), end: size });
    let regions: ByteRange[] = [];
    try {
      regions = (await isoBmffRegions(r)) ?? (await matroskaRegions(r)) ?? [];
    } catch {
      regions = [];
    }
    for (const g of regions) ranges.push({ start: g.start, end: Math.min(g.end, g.start + maxRegion) });
    return mergeRanges(ranges, size, opts.mergeGap ?? DEFAULT_MERGE_GAP);
  });
}

const ISO_TOP = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot', 'uuid', 'styp', 'sidx', 'moof', 'mfra', 'meta', 'pdin', 'junk', 'prft', 'emsg']);
const ISO_KEEP = new Set(['ftyp', 'moov', 'sidx', 'mfra', 'meta', 'styp']);

/** ISO BMFF (MP4, MOV, M4A, 3GP): the top-level boxes players read before playing (moov wherever it is). */
async function isoBmffRegions(r: RandomReader): Promise<ByteRange[] | undefined> {
  const out: ByteRange[] = [];
  let pos = 0;
  for (let i = 0; i < 100_000 && pos + 8 <= r.size; i++) {
    const h = await r.read(pos, 16);
    if (h.length < 8) break;
    let size = h.readUInt32BE(0);
    const type = fourcc(h, 4);
    if (i === 0 && !ISO_TOP.has(type)) return undefined;
    if (!/^[\x20-\x7e]{4}$/.test(type)) break;
    if (size === 1) {
      if (h.length < 16) break;
      size = Number(h.readBigUInt64BE(8));
      if (size < 16) break;
    } else if (size === 0) size = r.size - pos;
    else if (size < 8) break;
    if (ISO_KEEP.has(type)) out.push({ start: pos, end: Math.min(r.size, pos + size) });
    pos += size;
  }
  return out;
}

const EBML = {
  Header: 0x1a45dfa3,
  Segment: 0x18538067,
  SeekHead: 0x114d9b74,
  Seek: 0x4dbb,
  SeekID: 0x53ab,
  SeekPosition: 0x53ac,
  Cluster: 0x1f43b675,
  Void: 0xec,
};

function vint(buf: Buffer, pos: number, keepMarker: boolean): { value: number; length: number; unknown: boolean } | undefined {
  if (pos >= buf.length) return undefined;
  const first = buf[pos];
  if (first === 0) return undefined;
  let length = 1;
  while (!(first & (0x80 >> (length - 1)))) length++;
  if (pos + length > buf.length) return undefined;
  let value = keepMarker ? first : first & (0xff >> length);
  let ones = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    value = value * 256 + buf[pos + i];
    if (buf[pos + i] !== 0xff) ones = false;
  }
  return { value, length, unknown: !keepMarker && ones };
}

function element(buf: Buffer, pos: number): { id: number; header: number; size: number } | undefined {
  const id = vint(buf, pos, true);
  if (!id) return undefined;
  const sz = vint(buf, pos + id.length, false);
  if (!sz) return undefined;
  return { id: id.value, header: id.length + sz.length, size: sz.unknown ? -1 : sz.value };
}

/** Matroska/WebM: every element a SeekHead points to (Info, Tracks, Cues, Tags, Chapters...), and the SeekHeads. */
async function matroskaRegions(r: RandomReader): Promise<ByteRange[] | undefined> {
  const head = await r.read(0, 64);
  const ebml = element(head, 0);
  if (!ebml || ebml.id !== EBML.Header || ebml.size < 0) return undefined;
  const segAt = ebml.header + ebml.size;
  const seg = element(await r.read(segAt, 16), 0);
  if (!seg || seg.id !== EBML.Segment) return [];
  const segData = segAt + seg.header;
  const out: ByteRange[] = [];
  const seen = new Set<number>();
  const queue: number[] = [];
  // Top-level elements in front of the first cluster (usually SeekHead, Info, Tracks).
  let pos = segData;
  for (let i = 0; i < 64 && pos < r.size; i++) {
    const e = element(await r.read(pos, 16), 0);
    if (!e || e.size < 0 || e.id === EBML.Cluster) break;
    if (e.id === EBML.SeekHead) queue.push(pos);
    else if (e.id !== EBML.Void) out.push({ start: pos, end: pos + e.header + e.size });
    pos += e.header + e.size;
  }
  // SeekHeads, following SeekHead entries that point to further SeekHeads.
  while (queue.length && seen.size < 16) {
    const at = queue.shift()!;
    if (seen.has(at)) continue;
    seen.add(at);
    const e = element(await r.read(at, 16), 0);
    if (!e || e.id !== EBML.SeekHead || e.size < 0 || e.size > 1 << 20) continue;
    out.push({ start: at, end: at + e.header + e.size });
    const data = await r.read(at + e.header, e.size);
    let p = 0;
    while (p < data.length) {
      const s = element(data, p);
      if (!s || s.size < 0 || p + s.header + s.size > data.length) break;
      if (s.id === EBML.Seek) {
        let id: number | undefined;
        let position: number | undefined;
        let q = p + s.header;
        const end = q + s.size;
        while (q < end) {
          const c = element(data, q);
          if (!c || c.size < 0 || q + c.header + c.size > end) break;
          const body = data.subarray(q + c.header, q + c.header + c.size);
          if (c.id === EBML.SeekID) id = vint(body, 0, true)?.value;
          else if (c.id === EBML.SeekPosition) {
            position = 0;
            for (const b of body.subarray(0, 8)) position = position * 256 + b;
          }
          q += c.header + c.size;
        }
        if (id !== undefined && position !== undefined && id !== EBML.Cluster) {
          const target = segData + position;
          if (target < r.size) {
            if (id === EBML.SeekHead) queue.push(target);
            else {
              const t = element(await r.read(target, 16), 0);
              if (t && t.id === id && t.size >= 0) out.push({ start: target, end: target + t.header + t.size });
            }
          }
        }
      }
      p += s.header + s.size;
    }
  }
  return out;
}

// --- stub files ----------------------------------------------------------------

export function stubPath(dataDir: string, itemId: string): string {
  return join(dataDir, 'stubs', `${itemId}.stub`);
}

export function stubBytes(stub: Pick<StubLocation, 'ranges'>): number {
  return stub.ranges.reduce((n, r) => n + (r.end - r.start), 0);
}

/**
 * Write the stub of `source` (the original file, still on disk) to `dest`:
 * temp file, fsync, rename, fsync of the directory. Returns the StubLocation.
 */
export async function writeStub(source: string, ranges: ByteRange[], dest: string): Promise<StubLocation> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.${process.pid}.tmp`;
  const src = await open(source, 'r');
  try {
    const out = await open(tmp, 'w', 0o644);
    try {
      const buf = Buffer.alloc(1 << 20);
      let at = 0;
      for (const r of ranges) {
        for (let pos = r.start; pos < r.end; ) {
          const n = Math.min(buf.length, r.end - pos);
          const { bytesRead } = await src.read(buf, 0, n, pos);
          if (bytesRead === 0) throw new Error(`${source} is shorter than ${r.end} bytes`);
          await out.write(buf, 0, bytesRead, at);
          at += bytesRead;
          pos += bytesRead;
        }
      }
      await out.sync();
    } finally {
      await out.close();
    }
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    await src.close();
  }
  await syncDir(dirname(dest));
  return { path: dest, ranges: ranges.map((r) => ({ start: r.start, end: r.end })) };
}

/** fsync a directory (makes a rename or unlink durable); ignores platforms that refuse. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // not supported here
  }
}

/** Position in the stub file of original byte `pos`, or undefined when the stub does not hold it. */
export function stubOffset(stub: Pick<StubLocation, 'ranges'>, pos: number): number | undefined {
  let base = 0;
  for (const r of stub.ranges) {
    if (pos >= r.start && pos < r.end) return base + (pos - r.start);
    base += r.end - r.start;
  }
  return undefined;
}

/** True when the stub holds every byte of [start, end) (end exclusive). */
export function stubCovers(stub: Pick<StubLocation, 'ranges'>, start: number, end: number): boolean {
  if (end <= start) return true;
  return stubCoveredFrom(stub, start) >= end - start;
}

/** How many bytes from `start` on the stub holds without a gap (0 when it does not hold `start`). */
export function stubCoveredFrom(stub: Pick<StubLocation, 'ranges'>, start: number): number {
  for (const r of stub.ranges) if (start >= r.start && start < r.end) return r.end - start;
  return 0;
}

/** The parts of [start, end) the stub does NOT hold (what has to come from tape). */
export function stubMissing(stub: Pick<StubLocation, 'ranges'>, start: number, end: number): ByteRange[] {
  const out: ByteRange[] = [];
  let at = start;
  for (const r of stub.ranges) {
    if (r.end <= at) continue;
    if (r.start >= end) break;
    if (r.start > at) out.push({ start: at, end: Math.min(r.start, end) });
    at = Math.max(at, r.end);
    if (at >= end) break;
  }
  if (at < end) out.push({ start: at, end });
  return out;
}

/** Stream original bytes [start, end) (end exclusive) from the stub file; they must be covered. */
export function openStubRange(stub: StubLocation, start: number, end: number): Readable {
  if (end <= start) return Readable.from([]);
  const off = stubOffset(stub, start);
  if (off === undefined || !stubCovers(stub, start, end)) throw new RangeError(`stub ${stub.path} does not hold bytes [${start}, ${end})`);
  return createReadStream(stub.path, { start: off, end: off + (end - start) - 1, highWaterMark: 512 * 1024 });
}

/** Read original bytes [start, end) from the stub into memory (small ranges only). */
export async function readStub(stub: StubLocation, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of openStubRange(stub, start, end)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** True when the stub file exists with the size its ranges need. */
export async function stubFileOk(stub: StubLocation): Promise<boolean> {
  try {
    return (await stat(stub.path)).size === stubBytes(stub);
  } catch {
    return false;
  }
}
