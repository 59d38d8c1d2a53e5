// POSIX tar (ustar + pax extended headers) encoding and decoding of 512-byte
// headers. Only what the tape format needs: regular files on write; on read,
// everything GNU tar and POSIX pax produce is recognised well enough to find
// regular files' names, sizes and data positions.

export const TAR_BLOCK = 512;

/** Largest size an ustar octal size field (11 digits) holds. */
export const USTAR_MAX_SIZE = 0o77777777777;

export interface TarFileHeader {
  path: string;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  mode?: number;
}

/** Bytes needed to store `size` bytes of data in tar: rounded up to 512. */
export function paddedSize(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

function needsPax(path: string, size: number): boolean {
  // ustar names are bytes; non-ASCII names go to pax so the UTF-8 charset is explicit
  return Buffer.byteLength(path) > 100 || !/^[\x20-\x7e]*$/.test(path) || size > USTAR_MAX_SIZE;
}

/** Encode the header(s) of one regular file: [pax header + pax data] + ustar header. */
export function encodeFileHeader(h: TarFileHeader): Buffer {
  const mtime = Math.max(0, Math.floor(h.mtime));
  const parts: Buffer[] = [];
  if (needsPax(h.path, h.size)) {
    const records = paxRecords(h);
    const data = Buffer.from(records, 'utf8');
    const base = asciiName(h.path.split('/').pop() ?? 'file');
    parts.push(
      ustarHeader({ name: truncateBytes(`PaxHeaders.0/${base}`, 100), size: data.length, mtime, type: 'x', mode: 0o644 }),
    );
    parts.push(data, Buffer.alloc(paddedSize(data.length) - data.length));
  }
  parts.push(
    ustarHeader({
      name: needsPax(h.path, 0) ? truncateBytes(asciiName(h.path), 100) : h.path,
      size: h.size > USTAR_MAX_SIZE ? 0 : h.size,
      mtime,
      type: '0',
      mode: h.mode ?? 0o644,
    }),
  );
  return Buffer.concat(parts);
}

/** Length of encodeFileHeader(h) without building it. */
export function fileHeaderLength(h: { path: string; size: number }): number {
  if (!needsPax(h.path, h.size)) return TAR_BLOCK;
  const records = paxRecords(h);
  return TAR_BLOCK + paddedSize(Buffer.byteLength(records)) + TAR_BLOCK;
}

function paxRecords(h: { path: string; size: number }): string {
  let records = needsPax(h.path, 0) ? paxRecord('path', h.path) : '';
  if (h.size > USTAR_MAX_SIZE) records += paxRecord('size', String(h.size));
  return records;
}

/** The end-of-archive marker: two zero blocks. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(2 * TAR_BLOCK);
}

/** One pax record "<len> <key>=<value>\n", where len counts the whole record. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return `${len}${body}`;
}

interface UstarFields {
  name: string;
  size: number;
  mtime: number;
  type: string;
  mode: number;
}

function ustarHeader(f: UstarFields): Buffer {
  const b = Buffer.alloc(TAR_BLOCK);
  b.write(f.name, 0, 100, 'utf8');
  writeOctal(b, 100, 8, f.mode);
  writeOctal(b, 108, 8, 0); // uid
  writeOctal(b, 116, 8, 0); // gid
  writeOctal(b, 124, 12, f.size);
  writeOctal(b, 136, 12, f.mtime);
  b.fill(0x20, 148, 156); // checksum placeholder: spaces
  b.write(f.type, 156, 1, 'latin1');
  b.write('ustar\0', 257, 6, 'latin1');
  b.write('00', 263, 2, 'latin1');
  writeOctal(b, 329, 8, 0); // devmajor
  writeOctal(b, 337, 8, 0); // devminor
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

function writeOctal(b: Buffer, at: number, len: number, value: number): void {
  const s = Math.floor(value).toString(8).padStart(len - 1, '0');
  if (s.length > len - 1) throw new RangeError(`value ${value} does not fit in a ${len}-byte tar field`);
  b.write(s + '\0', at, len, 'latin1');
}

function asciiName(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '_');
}

function truncateBytes(s: string, max: number): string {
  let out = s;
  while (Buffer.byteLength(out) > max) out = out.slice(0, -1);
  return out;
}

// --- decoding ------------------------------------------------------------------

export interface DecodedHeader {
  /** Name from the header itself (prefix/name joined), before pax or GNU long-name overrides. */
  name: string;
  size: number;
  mtime: number;
  mode: number;
  /** Type flag character ('0', '\0', '5', 'x', 'g', 'L', ...). */
  type: string;
  linkname: string;
  ustar: boolean;
}

/** True when the block is all zeros (end-of-archive marker). */
export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Decode one 512-byte header; undefined when its checksum does not match (not a header). */
export function decodeHeader(b: Buffer): DecodedHeader | undefined {
  if (b.length < TAR_BLOCK) return undefined;
  const stored = parseNumeric(b.subarray(148, 156));
  if (stored === undefined) return undefined;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) return undefined;
  const magic = b.toString('latin1', 257, 263);
  const ustar = magic === 'ustar\0' || magic === 'ustar ';
  let name = cString(b, 0, 100);
  if (magic === 'ustar\0') {
    const prefix = cString(b, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const size = parseNumeric(b.subarray(124, 136));
  const mtime = parseNumeric(b.subarray(136, 148));
  const mode = parseNumeric(b.subarray(100, 108));
  if (size === undefined || size < 0) return undefined;
  return {
    name,
    size,
    mtime: mtime ?? 0,
    mode: mode ?? 0,
    type: String.fromCharCode(b[156]!),
    linkname: cString(b, 157, 100),
    ustar,
  };
}

function cString(b: Buffer, at: number, len: number): string {
  const field = b.subarray(at, at + len);
  const z = field.indexOf(0);
  return field.toString('utf8', 0, z < 0 ? len : z);
}

/** Octal (space/NUL terminated) or GNU base-256 numeric field. */
export function parseNumeric(field: Buffer): number | undefined {
  if (field.length === 0) return undefined;
  if (field[0]! & 0x80) {
    // GNU base-256: big-endian, top bit of the first byte is the marker; negative values are not sizes
    if (field[0]! & 0x40) return undefined;
    let v = field[0]! & 0x3f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return Number.isSafeInteger(v) ? v : undefined;
  }
  const s = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  return parseInt(s, 8);
}

/** Parse pax extended header data into key/value pairs (malformed records are skipped). */
export function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(data.toString('latin1', i, sp));
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length) break;
    const rec = data.toString('utf8', sp + 1, i + len - 1); // without trailing \n
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}
