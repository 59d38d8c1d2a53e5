// Procedural images for the demo library and the device icons: an RGBA
// canvas with anti-aliased shapes (signed distance functions), a PNG encoder
// (node:zlib), JPEG output (./jpeg.ts) with an EXIF APP1 segment written by a
// small TIFF/EXIF writer.

import { deflateSync } from 'node:zlib';
import { encodeJpegRgba, type JpegOptions } from './jpeg.js';

export type RGBA = [number, number, number, number?];

/** Signed distance (in pixels) from a point to a shape: negative inside. */
export type Sdf = (x: number, y: number) => number;

export class Canvas {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: RGBA = [0, 0, 0, 0],
  ) {
    this.data = new Uint8Array(width * height * 4);
    const [r, g, b, a = 255] = background;
    for (let i = 0; i < this.data.length; i += 4) {
      this.data[i] = r;
      this.data[i + 1] = g;
      this.data[i + 2] = b;
      this.data[i + 3] = a;
    }
  }

  /** Sets every pixel (opaque) from a function of its centre coordinates returning 0xRRGGBB (see rgb()). */
  shade(fn: (x: number, y: number) => number): void {
    const d = this.data;
    for (let y = 0, i = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++, i += 4) {
        const c = fn(x + 0.5, y + 0.5);
        d[i] = (c >>> 16) & 0xff;
        d[i + 1] = (c >>> 8) & 0xff;
        d[i + 2] = c & 0xff;
        d[i + 3] = 255;
      }
    }
  }

  /**
   * Composites `color` where the shape is (source-over), with one pixel of
   * anti-aliasing at the edge. `bounds` limits the pixels visited.
   */
  paint(sdf: Sdf, color: RGBA, bounds?: { x0: number; y0: number; x1: number; y1: number }): void {
    const [r, g, b, a = 255] = color;
    const x0 = Math.max(0, Math.floor(bounds?.x0 ?? 0));
    const y0 = Math.max(0, Math.floor(bounds?.y0 ?? 0));
    const x1 = Math.min(this.width, Math.ceil(bounds?.x1 ?? this.width));
    const y1 = Math.min(this.height, Math.ceil(bounds?.y1 ?? this.height));
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const d = sdf(x + 0.5, y + 0.5);
        const cover = Math.min(1, Math.max(0, 0.5 - d));
        if (cover <= 0) continue;
        const sa = (cover * a) / 255;
        const i = (y * this.width + x) * 4;
        const da = this.data[i + 3] / 255;
        const oa = sa + da * (1 - sa);
        if (oa <= 0) continue;
        this.data[i] = clamp255((r * sa + this.data[i] * da * (1 - sa)) / oa);
        this.data[i + 1] = clamp255((g * sa + this.data[i + 1] * da * (1 - sa)) / oa);
        this.data[i + 2] = clamp255((b * sa + this.data[i + 2] * da * (1 - sa)) / oa);
        this.data[i + 3] = clamp255(oa * 255);
      }
    }
  }

  /** The canvas flattened onto an opaque background colour (for JPEG). */
  flatten(bg: [number, number, number]): Canvas {
    const out = new Canvas(this.width, this.height, [...bg, 255]);
    for (let i = 0; i < this.data.length; i += 4) {
      const a = this.data[i + 3] / 255;
      for (let c = 0; c < 3; c++) out.data[i + c] = clamp255(this.data[i + c] * a + bg[c] * (1 - a));
    }
    return out;
  }
}

function clamp255(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** Packs 0..255 components (clamped, rounded) into 0xRRGGBB. */
export function rgb(r: number, g: number, b: number): number {
  return (clamp255(r) << 16) | (clamp255(g) << 8) | clamp255(b);
}

/** HSV → 0xRRGGBB; h in turns (wraps), s and v in [0, 1]. */
export function hsv(h: number, s: number, v: number): number {
  const hh = (((h % 1) + 1) % 1) * 6;
  const i = Math.floor(hh) % 6;
  const f = hh - Math.floor(hh);
  const p = v * (1 - s) * 255;
  const q = v * (1 - f * s) * 255;
  const t = v * (1 - (1 - f) * s) * 255;
  const V = v * 255;
  switch (i) {
    case 0:
      return rgb(V, t, p);
    case 1:
      return rgb(q, V, p);
    case 2:
      return rgb(p, V, t);
    case 3:
      return rgb(p, q, V);
    case 4:
      return rgb(t, p, V);
    default:
      return rgb(V, p, q);
  }
}

/** 0xRRGGBB → [r, g, b] */
export function unpack(c: number): [number, number, number] {
  return [(c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff];
}

// --- shapes -----------------------------------------------------------------

export const circle = (cx: number, cy: number, r: number): Sdf => (x, y) => Math.hypot(x - cx, y - cy) - r;

export const ring = (cx: number, cy: number, r: number, width: number): Sdf => (x, y) => Math.abs(Math.hypot(x - cx, y - cy) - r) - width / 2;

/** Axis-aligned rectangle with corner radius `rad`. */
export const roundRect =
  (x0: number, y0: number, x1: number, y1: number, rad = 0): Sdf =>
  (x, y) => {
    const cx = (x0 + x1) / 2;
    const cy = (y0 + y1) / 2;
    const hx = (x1 - x0) / 2 - rad;
    const hy = (y1 - y0) / 2 - rad;
    const qx = Math.abs(x - cx) - hx;
    const qy = Math.abs(y - cy) - hy;
    return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - rad;
  };

/** Line segment of thickness `w` with round caps. */
export const segment =
  (ax: number, ay: number, bx: number, by: number, w: number): Sdf =>
  (x, y) => {
    const dx = bx - ax;
    const dy = by - ay;
    const len2 = dx * dx + dy * dy || 1;
    const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len2));
    return Math.hypot(x - (ax + t * dx), y - (ay + t * dy)) - w / 2;
  };

export const union =
  (...shapes: Sdf[]): Sdf =>
  (x, y) => {
    let d = Infinity;
    for (const s of shapes) {
      const v = s(x, y);
      if (v < d) d = v;
    }
    return d;
  };

export const subtract =
  (a: Sdf, b: Sdf): Sdf =>
  (x, y) =>
    Math.max(a(x, y), -b(x, y));

/** Seven-segment digit (0-9) in the box (x, y, w, h), stroke `t`. */
export function digit(n: number, x: number, y: number, w: number, h: number, t: number): Sdf {
  const segs = ['abcdef', 'bc', 'abged', 'abgcd', 'fgbc', 'afgcd', 'afgedc', 'abc', 'abcdefg', 'abcdfg'][n] ?? '';
  const l = x + t / 2;
  const r = x + w - t / 2;
  const top = y + t / 2;
  const mid = y + h / 2;
  const bot = y + h - t / 2;
  const lines: Record<string, [number, number, number, number]> = {
    a: [l, top, r, top],
    b: [r, top, r, mid],
    c: [r, mid, r, bot],
    d: [l, bot, r, bot],
    e: [l, mid, l, bot],
    f: [l, top, l, mid],
    g: [l, mid, r, mid],
  };
  const parts = [...segs].map((s) => segment(...lines[s], t));
  return parts.length ? union(...parts) : () => Infinity;
}

// --- PNG ----------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/** Encodes a canvas as an 8-bit RGBA (or RGB when `alpha` is false) PNG. */
export function encodePng(c: Canvas, opts: { alpha?: boolean; text?: Record<string, string> } = {}): Buffer {
  const alpha = opts.alpha ?? true;
  const bpp = alpha ? 4 : 3;
  const stride = c.width * bpp;
  const raw = Buffer.alloc((stride + 1) * c.height);
  for (let y = 0; y < c.height; y++) {
    const row = (stride + 1) * y;
    raw[row] = 1; // filter: Sub
    for (let x = 0; x < c.width; x++) {
      for (let k = 0; k < bpp; k++) {
        const v = c.data[(y * c.width + x) * 4 + k];
        const left = x > 0 ? c.data[(y * c.width + x - 1) * 4 + k] : 0;
        raw[row + 1 + x * bpp + k] = (v - left) & 0xff;
      }
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(c.width, 0);
  ihdr.writeUInt32BE(c.height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = alpha ? 6 : 2; // colour type RGBA / RGB
  const text = Object.entries(opts.text ?? {}).map(([k, v]) => pngChunk('tEXt', Buffer.from(`${k}\0${v}`, 'latin1')));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...text,
    pngChunk('IDAT', deflateSync(raw, { level: 6 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

// --- EXIF / JPEG --------------------------------------------------------------

export interface ExifFields {
  /** 'YYYY:MM:DD HH:MM:SS' (EXIF form) */
  dateTimeOriginal?: string;
  make?: string;
  model?: string;
  description?: string;
  software?: string;
  width?: number;
  height?: number;
}

const ASCII = 2;
const SHORT = 3;
const LONG = 4;
const UNDEFINED = 7;

interface IfdEntry {
  tag: number;
  type: number;
  count: number;
  value: Buffer; // raw little-endian value bytes
}

function ascii(tag: number, s: string): IfdEntry {
  const value = Buffer.from(`${s}\0`, 'latin1');
  return { tag, type: ASCII, count: value.length, value };
}

function long(tag: number, n: number): IfdEntry {
  const value = Buffer.alloc(4);
  value.writeUInt32LE(n);
  return { tag, type: LONG, count: 1, value };
}

function short(tag: number, n: number): IfdEntry {
  const value = Buffer.alloc(2);
  value.writeUInt16LE(n);
  return { tag, type: SHORT, count: 1, value };
}

/** Serialises one IFD placed at `offset` within the TIFF structure; values > 4 bytes follow it. */
function ifd(entries: IfdEntry[], offset: number): Buffer {
  entries.sort((a, b) => a.tag - b.tag);
  const head = Buffer.alloc(2 + entries.length * 12 + 4);
  head.writeUInt16LE(entries.length, 0);
  let dataOffset = offset + head.length;
  const data: Buffer[] = [];
  entries.forEach((e, i) => {
    const p = 2 + i * 12;
    head.writeUInt16LE(e.tag, p);
    head.writeUInt16LE(e.type, p + 2);
    head.writeUInt32LE(e.count, p + 4);
    if (e.value.length <= 4) {
      e.value.copy(head, p + 8);
    } else {
      head.writeUInt32LE(dataOffset, p + 8);
      const v = e.value.length & 1 ? Buffer.concat([e.value, Buffer.alloc(1)]) : e.value;
      data.push(v);
      dataOffset += v.length;
    }
  });
  head.writeUInt32LE(0, head.length - 4); // no next IFD
  return Buffer.concat([head, ...data]);
}

/** A complete APP1 "Exif" segment (marker included). */
export function exifApp1(f: ExifFields): Buffer {
  const ifd0: IfdEntry[] = [];
  if (f.description) ifd0.push(ascii(0x010e, f.description));
  if (f.make) ifd0.push(ascii(0x010f, f.make));
  if (f.model) ifd0.push(ascii(0x0110, f.model));
  ifd0.push(short(0x0112, 1)); // Orientation: top-left
  if (f.software) ifd0.push(ascii(0x0131, f.software));
  if (f.dateTimeOriginal) ifd0.push(ascii(0x0132, f.dateTimeOriginal)); // DateTime
  const exif: IfdEntry[] = [{ tag: 0x9000, type: UNDEFINED, count: 4, value: Buffer.from('0232', 'latin1') }];
  if (f.dateTimeOriginal) {
    exif.push(ascii(0x9003, f.dateTimeOriginal)); // DateTimeOriginal
    exif.push(ascii(0x9004, f.dateTimeOriginal)); // DateTimeDigitized
  }
  if (f.width) exif.push(long(0xa002, f.width));
  if (f.height) exif.push(long(0xa003, f.height));
  // Lay out: TIFF header (8) | IFD0 | Exif IFD. Pointer value depends on IFD0's size, so size it first.
  ifd0.push(long(0x8769, 0));
  const ifd0Size = ifd([...ifd0], 8).length;
  ifd0[ifd0.length - 1] = long(0x8769, 8 + ifd0Size);
  const tiffHeader = Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00]); // "II", 42, IFD0 at 8
  const tiff = Buffer.concat([tiffHeader, ifd(ifd0, 8), ifd(exif, 8 + ifd0Size)]);
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  if (payload.length + 2 > 0xffff) throw new Error('exifApp1: EXIF data too large');
  const seg = Buffer.alloc(4);
  seg.writeUInt16BE(0xffe1, 0);
  seg.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([seg, payload]);
}

/** Baseline JPEG (4:2:0) of the canvas (alpha ignored), with an EXIF segment when `exif` is given. */
export function encodeJpeg(c: Canvas, quality = 85, exif?: ExifFields, opts: Omit<JpegOptions, 'quality' | 'segments'> = {}): Buffer {
  return encodeJpegRgba(c.width, c.height, c.data, { ...opts, quality, segments: exif ? [exifApp1(exif)] : [] });
}
