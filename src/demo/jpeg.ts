// Baseline JPEG encoder (ITU-T T.81) for generated images: YCbCr with 4:2:0
// (or 4:4:4) sampling, IJG-style quality scaling of the Annex K quantisation
// tables, and Huffman tables optimised per image (Annex K.2), so no fixed
// Huffman tables are needed. Tables and DCT matrix are computed once per
// process, which makes many small frames (MJPEG video) cheap.
//
// Kept instead of jpeg-js on measurement (bench/jpeg.ts): jpeg-js 0.4.4 encodes only 4:4:4 with
// the fixed Annex K Huffman tables, so the demo's pictures and MJPEG frames come out about 2.2×
// larger and take about 2× longer to encode.

export interface JpegOptions {
  quality?: number; // 1..100, default 85
  subsampling?: '420' | '444'; // default '420'
  /** Complete marker segments (e.g. EXIF APP1) inserted after the JFIF APP0 segment. */
  segments?: Buffer[];
}

// Annex K.1 example tables, natural (row-major) order.
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103,
  77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_Q = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, ...new Array<number>(32).fill(99),
];

/** ZIGZAG[k] = natural index of the k-th coefficient in zig-zag order. */
const ZIGZAG: number[] = (() => {
  const out: number[] = [];
  for (let s = 0; s <= 14; s++) {
    const lo = Math.max(0, s - 7);
    const hi = Math.min(s, 7);
    if (s % 2 === 0) for (let row = hi; row >= lo; row--) out.push(row * 8 + (s - row));
    else for (let row = lo; row <= hi; row++) out.push(row * 8 + (s - row));
  }
  return out;
})();

/** DCT basis: M[u*8 + x] = C(u)/2 · cos((2x+1)uπ/16). */
const DCT = (() => {
  const m = new Float64Array(64);
  for (let u = 0; u < 8; u++) {
    const c = u === 0 ? Math.SQRT1_2 : 1;
    for (let x = 0; x < 8; x++) m[u * 8 + x] = (c / 2) * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  }
  return m;
})();

// Even rows of M are symmetric (M[u][x] = M[u][7-x]), odd rows antisymmetric, so each
// 8-point transform needs only the first four columns applied to sums / differences.
const [E00, E01, E02, E03] = DCT.subarray(0, 4);
const [E20, E21, E22, E23] = DCT.subarray(16, 20);
const [E40, E41, E42, E43] = DCT.subarray(32, 36);
const [E60, E61, E62, E63] = DCT.subarray(48, 52);
const [O10, O11, O12, O13] = DCT.subarray(8, 12);
const [O30, O31, O32, O33] = DCT.subarray(24, 28);
const [O50, O51, O52, O53] = DCT.subarray(40, 44);
const [O70, O71, O72, O73] = DCT.subarray(56, 60);

/** 8-point DCT of v[off + k·step], k = 0..7, in place. */
function dct8(v: Float64Array, off: number, step: number): void {
  const f0 = v[off];
  const f1 = v[off + step];
  const f2 = v[off + 2 * step];
  const f3 = v[off + 3 * step];
  const f4 = v[off + 4 * step];
  const f5 = v[off + 5 * step];
  const f6 = v[off + 6 * step];
  const f7 = v[off + 7 * step];
  const s0 = f0 + f7;
  const s1 = f1 + f6;
  const s2 = f2 + f5;
  const s3 = f3 + f4;
  const d0 = f0 - f7;
  const d1 = f1 - f6;
  const d2 = f2 - f5;
  const d3 = f3 - f4;
  v[off] = E00 * s0 + E01 * s1 + E02 * s2 + E03 * s3;
  v[off + 2 * step] = E20 * s0 + E21 * s1 + E22 * s2 + E23 * s3;
  v[off + 4 * step] = E40 * s0 + E41 * s1 + E42 * s2 + E43 * s3;
  v[off + 6 * step] = E60 * s0 + E61 * s1 + E62 * s2 + E63 * s3;
  v[off + step] = O10 * d0 + O11 * d1 + O12 * d2 + O13 * d3;
  v[off + 3 * step] = O30 * d0 + O31 * d1 + O32 * d2 + O33 * d3;
  v[off + 5 * step] = O50 * d0 + O51 * d1 + O52 * d2 + O53 * d3;
  v[off + 7 * step] = O70 * d0 + O71 * d1 + O72 * d2 + O73 * d3;
}

function scaledTable(base: number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - 2 * q;
  const t = new Uint8Array(64);
  for (let i = 0; i < 64; i++) t[i] = Math.min(255, Math.max(1, Math.floor((base[i] * scale + 50) / 100)));
  return t;
}

interface QuantTables {
  luma: Uint8Array;
  chroma: Uint8Array;
  lumaRecip: Float64Array; // 1 / luma[n]
  chromaRecip: Float64Array;
}

const tableCache = new Map<number, QuantTables>();
function tablesFor(quality: number): QuantTables {
  let t = tableCache.get(quality);
  if (!t) {
    const luma = scaledTable(LUMA_Q, quality);
    const chroma = scaledTable(CHROMA_Q, quality);
    t = { luma, chroma, lumaRecip: Float64Array.from(luma, (v) => 1 / v), chromaRecip: Float64Array.from(chroma, (v) => 1 / v) };
    tableCache.set(quality, t);
  }
  return t;
}

/** Forward DCT of an 8×8 level-shifted block (in place), quantised, written in zig-zag order to out[off..off+64). */
function fdctQuantise(block: Float64Array, q: Float64Array, out: Int16Array, off: number): void {
  for (let y = 0; y < 8; y++) dct8(block, y * 8, 1); // rows
  for (let x = 0; x < 8; x++) dct8(block, x, 8); // columns
  for (let k = 0; k < 64; k++) {
    const n = ZIGZAG[k];
    out[off + k] = Math.round(block[n] * q[n]);
  }
}

function bitLength(v: number): number {
  let a = v < 0 ? -v : v;
  let n = 0;
  while (a) {
    n++;
    a >>= 1;
  }
  return n;
}

interface HuffTable {
  bits: number[]; // bits[1..16]: number of codes of each length
  vals: number[];
  code: Uint16Array; // by symbol
  size: Uint8Array; // by symbol
}

/** Optimal length-limited Huffman table from symbol frequencies (T.81 Annex K.2). */
function buildHuffman(freqIn: Uint32Array): HuffTable {
  const freq = Array.from(freqIn);
  freq[256] = 1; // reserved symbol: guarantees no real code is all ones
  const codesize = new Array<number>(257).fill(0);
  const others = new Array<number>(257).fill(-1);
  for (;;) {
    let c1 = -1;
    let v = Infinity;
    for (let i = 0; i <= 256; i++) if (freq[i] && freq[i] <= v) ((v = freq[i]), (c1 = i));
    let c2 = -1;
    v = Infinity;
    for (let i = 0; i <= 256; i++) if (freq[i] && freq[i] <= v && i !== c1) ((v = freq[i]), (c2 = i));
    if (c2 < 0) break;
    freq[c1] += freq[c2];
    freq[c2] = 0;
    codesize[c1]++;
    while (others[c1] >= 0) {
      c1 = others[c1];
      codesize[c1]++;
    }
    others[c1] = c2;
    codesize[c2]++;
    while (others[c2] >= 0) {
      c2 = others[c2];
      codesize[c2]++;
    }
  }
  const bits = new Array<number>(300).fill(0);
  for (let i = 0; i <= 256; i++) if (codesize[i]) bits[codesize[i]]++;
  // Limit code lengths to 16 bits.
  for (let i = 299; i > 16; i--) {
    while (bits[i] > 0) {
      let j = i - 2;
      while (bits[j] === 0) j--;
      bits[i] -= 2;
      bits[i - 1]++;
      bits[j + 1] += 2;
      bits[j]--;
    }
  }
  let i = 16;
  while (bits[i] === 0) i--;
  bits[i]--; // drop the reserved symbol (it has the longest code)
  const vals: number[] = [];
  for (let len = 1; len < 300; len++) for (let s = 0; s < 256; s++) if (codesize[s] === len) vals.push(s);
  const table: HuffTable = { bits: bits.slice(0, 17), vals, code: new Uint16Array(256), size: new Uint8Array(256) };
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let n = 0; n < table.bits[len]; n++) {
      table.code[vals[k]] = code;
      table.size[vals[k]] = len;
      code++;
      k++;
    }
    code <<= 1;
  }
  return table;
}

class EntropyWriter {
  private out: Uint8Array;
  private len = 0;
  private acc = 0;
  private nbits = 0;

  constructor(
    capacity: number,
    private readonly dcTables: HuffTable[] = [],
    private readonly acTables: HuffTable[] = [],
  ) {
    this.out = new Uint8Array(Math.max(1024, capacity));
  }

  dcSym(t: number, symbol: number, extra: number, extraBits: number): void {
    const h = this.dcTables[t];
    this.write(h.code[symbol], h.size[symbol]);
    this.write(extra, extraBits);
  }

  acSym(t: number, symbol: number, extra: number, extraBits: number): void {
    const h = this.acTables[t];
    this.write(h.code[symbol], h.size[symbol]);
    this.write(extra, extraBits);
  }

  private pushByte(b: number): void {
    if (this.len + 2 > this.out.length) {
      const next = new Uint8Array(this.out.length * 2);
      next.set(this.out);
      this.out = next;
    }
    this.out[this.len++] = b;
    if (b === 0xff) this.out[this.len++] = 0; // byte stuffing
  }

  write(value: number, n: number): void {
    if (n === 0) return;
    this.acc = ((this.acc << n) | (value & ((1 << n) - 1))) >>> 0;
    this.nbits += n;
    while (this.nbits >= 8) {
      this.nbits -= 8;
      this.pushByte((this.acc >>> this.nbits) & 0xff);
    }
    this.acc &= (1 << this.nbits) - 1;
  }

  finish(): Uint8Array {
    if (this.nbits > 0) this.write(0x7f, 8 - this.nbits); // pad with one bits
    return this.out.subarray(0, this.len);
  }
}

function copyBlock(plane: Float32Array, stride: number, x0: number, y0: number, out: Float64Array): void {
  for (let y = 0; y < 8; y++) {
    const row = (y0 + y) * stride + x0;
    for (let x = 0; x < 8; x++) out[y * 8 + x] = plane[row + x];
  }
}

/** 8×8 block of the 2×2-averaged plane at full-resolution origin (x0, y0). */
function averageBlock(plane: Float32Array, stride: number, x0: number, y0: number, out: Float64Array): void {
  for (let y = 0; y < 8; y++) {
    const row = (y0 + 2 * y) * stride + x0;
    for (let x = 0; x < 8; x++) {
      const o = row + 2 * x;
      out[y * 8 + x] = (plane[o] + plane[o + 1] + plane[o + stride] + plane[o + stride + 1]) * 0.25;
    }
  }
}

interface SymbolSink {
  /** t: 0 luminance, 1 chrominance tables. */
  dcSym(t: number, symbol: number, extra: number, extraBits: number): void;
  acSym(t: number, symbol: number, extra: number, extraBits: number): void;
}

class SymbolCounter implements SymbolSink {
  readonly dc = [new Uint32Array(257), new Uint32Array(257)];
  readonly ac = [new Uint32Array(257), new Uint32Array(257)];
  dcSym(t: number, symbol: number): void {
    this.dc[t][symbol]++;
  }
  acSym(t: number, symbol: number): void {
    this.ac[t][symbol]++;
  }
}

/** Huffman symbols of all blocks (DC differences per component, AC run/size with ZRL and EOB). */
function codeBlocks(blocks: Int16Array, comp: Uint8Array, nBlocks: number, sink: SymbolSink): void {
  let p0 = 0;
  let p1 = 0;
  let p2 = 0;
  for (let b = 0; b < nBlocks; b++) {
    const off = b * 64;
    const c = comp[b];
    const t = c === 0 ? 0 : 1;
    const dc = blocks[off];
    const diff = c === 0 ? dc - p0 : c === 1 ? dc - p1 : dc - p2;
    if (c === 0) p0 = dc;
    else if (c === 1) p1 = dc;
    else p2 = dc;
    const s = bitLength(diff);
    sink.dcSym(t, s, diff < 0 ? diff + (1 << s) - 1 : diff, s);
    let run = 0;
    for (let k = 1; k < 64; k++) {
      const v = blocks[off + k];
      if (v === 0) {
        run++;
        continue;
      }
      while (run > 15) {
        sink.acSym(t, 0xf0, 0, 0); // ZRL: 16 zeros
        run -= 16;
      }
      const size = bitLength(v);
      sink.acSym(t, (run << 4) | size, v < 0 ? v + (1 << size) - 1 : v, size);
      run = 0;
    }
    if (run > 0) sink.acSym(t, 0x00, 0, 0); // EOB
  }
}

function segment(marker: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(marker, 0);
  h.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([h, body]);
}

/** Encodes RGBA (alpha ignored) pixels as a baseline JPEG. */
export function encodeJpegRgba(width: number, height: number, rgba: Uint8Array, opts: JpegOptions = {}): Buffer {
  if (width < 1 || height < 1 || width > 65535 || height > 65535) throw new Error(`encodeJpeg: bad size ${width}x${height}`);
  if (rgba.length < width * height * 4) throw new Error('encodeJpeg: pixel buffer too small');
  const quality = opts.quality ?? 85;
  const sub = opts.subsampling ?? '420';
  const { luma, chroma, lumaRecip, chromaRecip } = tablesFor(quality);
  const mcu = sub === '420' ? 16 : 8;
  const mcuX = Math.ceil(width / mcu);
  const mcuY = Math.ceil(height / mcu);
  const pw = mcuX * mcu;
  const ph = mcuY * mcu;

  // Colour conversion to padded planes (edges replicated), level-shifted by -128.
  const Y = new Float32Array(pw * ph);
  const Cb = new Float32Array(pw * ph);
  const Cr = new Float32Array(pw * ph);
  for (let y = 0; y < ph; y++) {
    const src = Math.min(y, height - 1) * width * 4;
    let o = y * pw;
    for (let x = 0, i = src; x < width; x++, i += 4, o++) {
      const r = rgba[i];
      const g = rgba[i + 1];
      const b = rgba[i + 2];
      Y[o] = 0.299 * r + 0.587 * g + 0.114 * b - 128;
      Cb[o] = -0.168736 * r - 0.331264 * g + 0.5 * b;
      Cr[o] = 0.5 * r - 0.418688 * g - 0.081312 * b;
    }
    // Replicate the last column into the padding.
    for (let x = width; x < pw; x++, o++) {
      Y[o] = Y[o - 1];
      Cb[o] = Cb[o - 1];
      Cr[o] = Cr[o - 1];
    }
  }

  // Quantised blocks in MCU order: 4:2:0 → Y0 Y1 Y2 Y3 Cb Cr; 4:4:4 → Y Cb Cr.
  const perMcu = sub === '420' ? 6 : 3;
  const nBlocks = mcuX * mcuY * perMcu;
  const blocks = new Int16Array(nBlocks * 64);
  const comp = new Uint8Array(nBlocks); // 0 Y, 1 Cb, 2 Cr
  const buf = new Float64Array(64);
  let bi = 0;
  for (let my = 0; my < mcuY; my++) {
    for (let mx = 0; mx < mcuX; mx++) {
      const x0 = mx * mcu;
      const y0 = my * mcu;
      if (sub === '420') {
        for (let k = 0; k < 4; k++) {
          copyBlock(Y, pw, x0 + (k & 1) * 8, y0 + (k >> 1) * 8, buf);
          fdctQuantise(buf, lumaRecip, blocks, bi * 64);
          comp[bi++] = 0;
        }
        averageBlock(Cb, pw, x0, y0, buf);
        fdctQuantise(buf, chromaRecip, blocks, bi * 64);
        comp[bi++] = 1;
        averageBlock(Cr, pw, x0, y0, buf);
        fdctQuantise(buf, chromaRecip, blocks, bi * 64);
        comp[bi++] = 2;
      } else {
        copyBlock(Y, pw, x0, y0, buf);
        fdctQuantise(buf, lumaRecip, blocks, bi * 64);
        comp[bi++] = 0;
        copyBlock(Cb, pw, x0, y0, buf);
        fdctQuantise(buf, chromaRecip, blocks, bi * 64);
        comp[bi++] = 1;
        copyBlock(Cr, pw, x0, y0, buf);
        fdctQuantise(buf, chromaRecip, blocks, bi * 64);
        comp[bi++] = 2;
      }
    }
  }

  // Pass 1: symbol statistics → optimal tables. Pass 2: emit with them.
  const stats = new SymbolCounter();
  codeBlocks(blocks, comp, nBlocks, stats);
  const dcTables = [buildHuffman(stats.dc[0]), buildHuffman(stats.dc[1])];
  const acTables = [buildHuffman(stats.ac[0]), buildHuffman(stats.ac[1])];
  const w = new EntropyWriter(Math.ceil(width * height * 0.5), dcTables, acTables);
  codeBlocks(blocks, comp, nBlocks, w);
  const scan = w.finish();

  const jfif = Buffer.from([0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const dqt = Buffer.alloc(130);
  dqt[0] = 0x00;
  dqt[65] = 0x01;
  for (let k = 0; k < 64; k++) {
    dqt[1 + k] = luma[ZIGZAG[k]];
    dqt[66 + k] = chroma[ZIGZAG[k]];
  }
  const sof = Buffer.alloc(15);
  sof[0] = 8;
  sof.writeUInt16BE(height, 1);
  sof.writeUInt16BE(width, 3);
  sof[5] = 3;
  sof.set([1, sub === '420' ? 0x22 : 0x11, 0, 2, 0x11, 1, 3, 0x11, 1], 6);
  const dhtParts: Buffer[] = [];
  const addTable = (cls: number, id: number, h: HuffTable): void => {
    dhtParts.push(Buffer.from([(cls << 4) | id, ...h.bits.slice(1, 17), ...h.vals]));
  };
  addTable(0, 0, dcTables[0]);
  addTable(1, 0, acTables[0]);
  addTable(0, 1, dcTables[1]);
  addTable(1, 1, acTables[1]);
  const sos = Buffer.from([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    segment(0xffe0, jfif),
    ...(opts.segments ?? []),
    segment(0xffdb, dqt),
    segment(0xffc0, sof),
    segment(0xffc4, Buffer.concat(dhtParts)),
    segment(0xffda, sos),
    Buffer.from(scan),
    Buffer.from([0xff, 0xd9]),
  ]);
}
