// A small FLAC encoder for generated 16-bit PCM (the demo library's music).
//
// Format (RFC 9639): "fLaC", STREAMINFO, VORBIS_COMMENT, PADDING, then frames
// of a fixed block size. Each frame codes a channel with the best FIXED
// predictor (order 0-4) and partitioned Rice residuals, or as CONSTANT when all
// samples are equal. Stereo input whose channels are identical is coded as
// left/side, the side channel then being one CONSTANT subframe.

import { createHash } from 'node:crypto';

export interface FlacInput {
  sampleRate: number; // Hz, < 655350
  channels: 1 | 2;
  /** One Int16Array per channel, all of the same length. */
  samples: Int16Array[];
  /** Vorbis comments, e.g. { TITLE: 'x', ARTIST: 'y' }; keys are upper-cased. */
  tags?: Record<string, string | number | undefined>;
  vendor?: string;
  blockSize?: number; // default 4096
  /** An embedded front cover (PICTURE block, type 3). */
  picture?: { mime: string; data: Uint8Array; width?: number; height?: number };
}

function pictureBlock(p: NonNullable<FlacInput['picture']>): Buffer {
  const mime = Buffer.from(p.mime, 'latin1');
  const head = Buffer.alloc(8 + mime.length + 4 + 16 + 4);
  let o = head.writeUInt32BE(3, 0); // front cover
  o = head.writeUInt32BE(mime.length, o);
  o += mime.copy(head, o);
  o = head.writeUInt32BE(0, o); // no description
  o = head.writeUInt32BE(p.width ?? 0, o);
  o = head.writeUInt32BE(p.height ?? 0, o);
  o = head.writeUInt32BE(24, o);
  o = head.writeUInt32BE(0, o);
  head.writeUInt32BE(p.data.length, o);
  return Buffer.concat([head, p.data]);
}

const BPS = 16;

class BitWriter {
  private buf: Uint8Array;
  private byte = 0; // index of the byte being filled
  private bit = 0; // bits used in buf[byte]

  constructor(capacity = 1 << 16) {
    this.buf = new Uint8Array(capacity);
  }

  private ensure(extraBytes: number): void {
    if (this.byte + extraBytes + 8 < this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.byte + extraBytes + 16));
    next.set(this.buf.subarray(0, this.byte + 1));
    this.buf = next;
  }

  /** Writes the low `n` bits of `value` (n ≤ 32), MSB first. */
  write(value: number, n: number): void {
    this.ensure(5);
    if (n > 24) {
      // Split so that the fast path below only sees ≤ 24 bits (safe in 32-bit integer ops).
      this.write(Math.floor(value / 2 ** 24), n - 24);
      n = 24;
      value = value % 2 ** 24;
    }
    let v = value & ((1 << n) - 1);
    while (n > 0) {
      const room = 8 - this.bit;
      if (n < room) {
        this.buf[this.byte] |= v << (room - n);
        this.bit += n;
        return;
      }
      this.buf[this.byte] |= v >>> (n - room);
      n -= room;
      v &= (1 << n) - 1;
      this.byte++;
      this.bit = 0;
    }
  }

  /** `q` zero bits followed by a one. */
  unary(q: number): void {
    this.ensure((q >> 3) + 2);
    let left = q;
    while (left > 0) {
      const room = 8 - this.bit;
      const take = Math.min(room, left);
      this.bit += take;
      left -= take;
      if (this.bit === 8) {
        this.byte++;
        this.bit = 0;
      }
    }
    this.write(1, 1);
  }

  signed(value: number, n: number): void {
    this.write(value < 0 ? value + 2 ** n : value, n);
  }

  alignToByte(): void {
    if (this.bit) {
      this.byte++;
      this.bit = 0;
    }
  }

  get bytes(): Uint8Array {
    return this.buf.subarray(0, this.byte + (this.bit ? 1 : 0));
  }
}

const CRC8_TABLE = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let j = 0; j < 8; j++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
    t[i] = c;
  }
  return t;
})();

const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x8005) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

export function crc8(data: Uint8Array): number {
  let c = 0;
  for (const b of data) c = CRC8_TABLE[c ^ b];
  return c;
}

export function crc16(data: Uint8Array): number {
  let c = 0;
  for (const b of data) c = ((c << 8) & 0xffff) ^ CRC16_TABLE[(c >> 8) ^ b];
  return c;
}

/** FLAC's UTF-8-like coding of the frame number. */
function utf8Number(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  let bytes = 2;
  while (n >= 2 ** (5 * bytes + 1)) bytes++;
  for (let i = bytes - 1; i > 0; i--) {
    out.unshift(0x80 | (n & 0x3f));
    n = Math.floor(n / 64);
  }
  out.unshift(((0xff << (8 - bytes)) & 0xff) | n);
  return out;
}

function blockSizeCode(size: number): { code: number; extra?: number } {
  const fixed: Record<number, number> = { 192: 1, 576: 2, 1152: 3, 2304: 4, 4608: 5, 256: 8, 512: 9, 1024: 10, 2048: 11, 4096: 12, 8192: 13, 16384: 14, 32768: 15 };
  if (fixed[size]) return { code: fixed[size] };
  if (size <= 256) return { code: 6, extra: size - 1 }; // 8-bit (blocksize-1) follows
  return { code: 7, extra: size - 1 }; // 16-bit (blocksize-1) follows
}

function sampleRateCode(rate: number): number {
  const codes: Record<number, number> = { 88200: 1, 176400: 2, 192000: 3, 8000: 4, 16000: 5, 22050: 6, 24000: 7, 32000: 8, 44100: 9, 48000: 10, 96000: 11 };
  return codes[rate] ?? 0; // 0: take it from STREAMINFO
}

/** Residual of the FIXED predictor of `order` for samples[order..]. */
function fixedResidual(x: Int32Array, order: number): Int32Array {
  const n = x.length;
  const r = new Int32Array(Math.max(0, n - order));
  for (let i = order; i < n; i++) {
    let p = 0;
    switch (order) {
      case 1:
        p = x[i - 1];
        break;
      case 2:
        p = 2 * x[i - 1] - x[i - 2];
        break;
      case 3:
        p = 3 * x[i - 1] - 3 * x[i - 2] + x[i - 3];
        break;
      case 4:
        p = 4 * x[i - 1] - 6 * x[i - 2] + 4 * x[i - 3] - x[i - 4];
        break;
    }
    r[i - order] = x[i] - p;
  }
  return r;
}

function fold(v: number): number {
  return v < 0 ? -2 * v - 1 : 2 * v;
}

interface RicePlan {
  order: number;
  params: number[];
  bits: number;
}

const MAX_PARTITION_ORDER = 6;

/** Best Rice parameter for a partition of `count` folded residuals summing to `sum`, and its estimated cost. */
function bestRiceParam(sum: number, count: number): { k: number; bits: number } {
  let best = { k: 0, bits: Infinity };
  for (let k = 0; k <= 14; k++) {
    // Each value costs k + 1 bits plus its quotient; sum / 2^k estimates the quotients.
    const bits = count * (k + 1) + Math.floor(sum / 2 ** k);
    if (bits < best.bits) best = { k, bits };
  }
  return best;
}

/** Chooses partition order and Rice parameters from per-partition sums (estimated cost). */
function planRice(u: Uint32Array, blockSize: number, predOrder: number): RicePlan {
  // Sums at the finest usable partition order, merged pairwise for coarser ones.
  let maxOrder = 0;
  while (maxOrder < MAX_PARTITION_ORDER && blockSize % (1 << (maxOrder + 1)) === 0 && blockSize >> (maxOrder + 1) > predOrder) maxOrder++;
  const finest = 1 << maxOrder;
  const part = blockSize >> maxOrder;
  let sums: number[] = [];
  let counts: number[] = [];
  let pos = 0;
  for (let p = 0; p < finest; p++) {
    const count = p === 0 ? part - predOrder : part;
    let s = 0;
    for (let i = pos; i < pos + count; i++) s += u[i];
    sums.push(s);
    counts.push(count);
    pos += count;
  }
  let best: RicePlan | undefined;
  for (let order = maxOrder; order >= 0; order--) {
    const params: number[] = [];
    let bits = 6;
    for (let p = 0; p < sums.length; p++) {
      const r = bestRiceParam(sums[p], counts[p]);
      params.push(r.k);
      bits += 4 + r.bits;
    }
    if (!best || bits < best.bits) best = { order, params, bits };
    const s2: number[] = [];
    const c2: number[] = [];
    for (let p = 0; p + 1 < sums.length; p += 2) {
      s2.push(sums[p] + sums[p + 1]);
      c2.push(counts[p] + counts[p + 1]);
    }
    sums = s2;
    counts = c2;
  }
  return best!;
}

function allEqual(x: Int32Array): boolean {
  const first = x[0];
  for (let i = 1; i < x.length; i++) if (x[i] !== first) return false;
  return true;
}

/** The FIXED predictor order (0-4) with the smallest sum of absolute residuals, in one pass. */
function bestFixedOrder(x: Int32Array): number {
  const n = x.length;
  const maxOrder = Math.min(4, n - 1);
  const sums = [0, 0, 0, 0, 0];
  // e_k[i] = k-th difference of x at i; the residual of FIXED order k is e_k.
  let p0 = 0;
  let p1 = 0;
  let p2 = 0;
  let p3 = 0;
  for (let i = 0; i < n; i++) {
    const e0 = x[i];
    const e1 = e0 - p0;
    const e2 = e1 - p1;
    const e3 = e2 - p2;
    const e4 = e3 - p3;
    if (i >= 4) {
      sums[0] += Math.abs(e0);
      sums[1] += Math.abs(e1);
      sums[2] += Math.abs(e2);
      sums[3] += Math.abs(e3);
      sums[4] += Math.abs(e4);
    }
    p0 = e0;
    p1 = e1;
    p2 = e2;
    p3 = e3;
  }
  let best = 0;
  for (let k = 1; k <= maxOrder; k++) if (sums[k] < sums[best]) best = k;
  return best;
}

function writeSubframe(w: BitWriter, x: Int32Array, bps: number): void {
  const n = x.length;
  if (allEqual(x)) {
    w.write(0, 1);
    w.write(0b000000, 6); // CONSTANT
    w.write(0, 1);
    w.signed(x[0], bps);
    return;
  }
  const bestOrder = bestFixedOrder(x);
  const res = fixedResidual(x, bestOrder);
  const u = new Uint32Array(res.length);
  for (let i = 0; i < res.length; i++) u[i] = fold(res[i]);
  const plan = planRice(u, n, bestOrder);
  if (plan.bits + bestOrder * bps >= n * bps) {
    w.write(0, 1);
    w.write(0b000001, 6); // VERBATIM
    w.write(0, 1);
    for (const v of x) w.signed(v, bps);
    return;
  }
  w.write(0, 1);
  w.write(0b001000 | bestOrder, 6); // FIXED
  w.write(0, 1);
  for (let i = 0; i < bestOrder; i++) w.signed(x[i], bps);
  w.write(0b00, 2); // Rice, 4-bit parameters
  w.write(plan.order, 4);
  let pos = 0;
  const part = n >> plan.order;
  for (let p = 0; p < plan.params.length; p++) {
    const k = plan.params[p];
    w.write(k, 4);
    const count = p === 0 ? part - bestOrder : part;
    for (let i = pos; i < pos + count; i++) {
      const v = u[i];
      w.unary(v >>> k);
      if (k) w.write(v & ((1 << k) - 1), k);
    }
    pos += count;
  }
}

function metadataBlock(type: number, last: boolean, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = (last ? 0x80 : 0) | type;
  h.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([h, body]);
}

function vorbisComment(vendor: string, tags: Record<string, string | number | undefined>): Buffer {
  const parts: Buffer[] = [];
  const v = Buffer.from(vendor, 'utf8');
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  parts.push(u32(v.length), v);
  const entries = Object.entries(tags).filter(([, val]) => val !== undefined && val !== '');
  parts.push(u32(entries.length));
  for (const [k, val] of entries) {
    const e = Buffer.from(`${k.toUpperCase()}=${val}`, 'utf8');
    parts.push(u32(e.length), e);
  }
  return Buffer.concat(parts);
}

function sameSamples(a: Int32Array, b: Int32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Encodes 16-bit PCM as a FLAC file. */
export function encodeFlac(input: FlacInput): Buffer {
  const { sampleRate, channels, samples } = input;
  const blockSize = input.blockSize ?? 4096;
  if (samples.length !== channels) throw new Error(`encodeFlac: ${channels} channels declared, ${samples.length} given`);
  const total = samples[0].length;
  if (samples.some((s) => s.length !== total)) throw new Error('encodeFlac: channels differ in length');
  if (blockSize < 16 || blockSize > 65535) throw new Error('encodeFlac: block size out of range');

  // MD5 of the interleaved little-endian samples, as STREAMINFO wants.
  const inter = new Int16Array(total * channels);
  for (let c = 0; c < channels; c++) {
    const s = samples[c];
    for (let i = 0; i < total; i++) inter[i * channels + c] = s[i];
  }
  const bytes = new Uint8Array(inter.buffer);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    for (let i = 0; i < bytes.length; i += 2) [bytes[i], bytes[i + 1]] = [bytes[i + 1], bytes[i]]; // big-endian host
  }
  const md5 = createHash('md5').update(bytes).digest();

  const frames: Buffer[] = [];
  let minFrame = Infinity;
  let maxFrame = 0;
  const srCode = sampleRateCode(sampleRate);
  for (let start = 0, frameNo = 0; start < total; start += blockSize, frameNo++) {
    const n = Math.min(blockSize, total - start);
    const w = new BitWriter(n * channels * 2 + 64);
    const bs = blockSizeCode(n);
    const chans = samples.map((s) => Int32Array.from(s.subarray(start, start + n)));
    const identical = channels === 2 && sameSamples(chans[0], chans[1]);
    const chanCode = identical ? 0b1000 : channels - 1; // left/side or independent
    w.write(0b11111111111110, 14);
    w.write(0, 1); // reserved
    w.write(0, 1); // fixed block size stream
    w.write(bs.code, 4);
    w.write(srCode, 4);
    w.write(chanCode, 4);
    w.write(0b100, 3); // 16 bits per sample
    w.write(0, 1);
    for (const b of utf8Number(frameNo)) w.write(b, 8);
    if (bs.code === 6) w.write(bs.extra!, 8);
    else if (bs.code === 7) w.write(bs.extra!, 16);
    w.write(crc8(w.bytes), 8);
    if (identical) {
      writeSubframe(w, chans[0], BPS);
      writeSubframe(w, new Int32Array(n), BPS + 1); // side = left - right = 0
    } else {
      for (const ch of chans) writeSubframe(w, ch, BPS);
    }
    w.alignToByte();
    const crc = crc16(w.bytes);
    w.write(crc, 16);
    const frame = Buffer.from(w.bytes);
    frames.push(frame);
    minFrame = Math.min(minFrame, frame.length);
    maxFrame = Math.max(maxFrame, frame.length);
  }

  const si = Buffer.alloc(34);
  si.writeUInt16BE(blockSize, 0); // min block size (the last block may be shorter; the spec allows it)
  si.writeUInt16BE(blockSize, 2);
  si.writeUIntBE(frames.length ? minFrame : 0, 4, 3);
  si.writeUIntBE(maxFrame, 7, 3);
  // 20 bits sample rate, 3 bits channels-1, 5 bits bps-1, 36 bits total samples.
  const hi = sampleRate * 16 + (channels - 1) * 2 + ((BPS - 1) >> 4);
  si.writeUIntBE(hi, 10, 3);
  si[13] = (((BPS - 1) & 0x0f) << 4) | Math.floor(total / 2 ** 32);
  si.writeUInt32BE(total % 2 ** 32, 14);
  md5.copy(si, 18);

  const vendor = input.vendor ?? 'Tapedeck demo generator';
  return Buffer.concat([
    Buffer.from('fLaC', 'latin1'),
    metadataBlock(0, false, si),
    metadataBlock(4, false, vorbisComment(vendor, input.tags ?? {})),
    ...(input.picture ? [metadataBlock(6, false, pictureBlock(input.picture))] : []),
    metadataBlock(1, true, Buffer.alloc(512)), // PADDING: room to edit tags in place
    ...frames,
  ]);
}
