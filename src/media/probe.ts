// Media metadata extraction for the scanner.
//
// probe(path) → ProbeResult (kind, UPnP class, title, descriptive metadata,
// resource description incl. DLNA profile) or undefined for files that are not
// media (by extension), empty or not readable. It never throws: whatever
// cannot be read from a damaged file is left out and the rest is returned.
//
// - audio: music-metadata (tags, duration from headers; never a full scan),
//   plus the ISO BMFF reader for the AAC profile of .m4a files;
// - images: image-size (first 512 KB) and exifr (DateTimeOriginal), falling
//   back to the file's mtime for the date;
// - video: the built-in container readers in-process (MP4/MOV, Matroska/WebM, AVI;
//   for ASF/WMV music-metadata's ASF header parser); ffprobe (JSON, with a timeout, a
//   few processes at once) only for a file they cannot fully read (no duration, size or
//   video codec: MPEG-PS/TS, FLV, WMV, an unknown codec), its answer winning.

import { execFile } from 'node:child_process';
import { closeSync, constants as fsConstants, readSync } from 'node:fs';
import { access, type FileHandle, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, delimiter, extname, join } from 'node:path';
import type { IAudioMetadata, IOptions } from 'music-metadata';
import { lazyImport } from '../util/lazy.js';
import { openRegular, openRegularSync, readHead } from '../util/read-regular.js';
import type { ItemMeta, MediaKind, ProbeResult, Resource } from '../catalog/types.js';
import { readAvi } from './avi.js';
import { dlnaProfile } from './dlna.js';
import { readEbml } from './ebml.js';
import { readFlacTags } from './flac.js';
import { type ContainerInfo, RandomReader, withReader } from './filereader.js';
import { readIsoBmff } from './isobmff.js';
import { containerOf, extensionOf, formatCodec, h264LevelName, mediaTypeOf } from './mediatypes.js';

// Loaded on first use (util/lazy.ts): a server whose scan finds no new or changed file, and the
// FLAC files the built-in reader handles, never need them (~3 MB of V8 heap together).
const musicMetadata = lazyImport(() => import('music-metadata'));
const strtok3 = lazyImport(() => import('strtok3'));
const imageSizeLib = lazyImport(() => import('image-size'));
const exifrLib = lazyImport(async () => (await import('exifr')).default);

export interface ProbeOptions {
  /** Path of the ffprobe binary; false disables it; default: look it up on PATH. */
  ffprobe?: string | false;
  /** ffprobe time limit in ms (default 15000). */
  ffprobeTimeoutMs?: number;
  /**
   * Audio: also return the embedded cover picture (`picture`, at most MAX_PICTURE bytes) from
   * the same parse as the tags; a larger or unreadable one is named in `pictureSkipped`.
   */
  pictures?: boolean;
  /**
   * Size and mtime (ms) of the file when the caller has just stat'ed it (the scanner's walk): the
   * probe does not stat it again.
   */
  known?: { size: number; mtime: number };
  /**
   * Read small audio files with blocking calls (open, read of the known size, close): for a probe
   * worker thread, which does nothing else, where each promise-based call costs a round trip
   * through libuv's thread pool and a FileHandle (a third of a worker's CPU on a library of
   * small FLAC files). Never in the main thread: it would stall the event loop.
   */
  blockingReads?: boolean;
}

/** Largest embedded picture handed to the art maker (bytes). */
export const MAX_PICTURE = 8 * 1024 * 1024;

export const UPNP_CLASS: Record<MediaKind, string> = {
  audio: 'object.item.audioItem.musicTrack',
  video: 'object.item.videoItem.movie',
  image: 'object.item.imageItem.photo',
};

/** Title for files without tags: the file name without extension, trimmed. */
export function titleFromFileName(path: string): string {
  const name = basename(path);
  const ext = extname(name);
  let t = (ext && ext.length < name.length ? name.slice(0, -ext.length) : name).trim();
  // Names like "My_Holiday_Video" read better with spaces; leave names that already have spaces alone.
  if (!t.includes(' ') && /[^_]_+[^_]/.test(t)) t = t.replace(/_+/g, ' ').trim();
  return t || name;
}

export async function probe(path: string, opts: ProbeOptions = {}): Promise<ProbeResult | undefined> {
  const type = mediaTypeOf(path);
  if (!type) return undefined;
  let size: number;
  let mtime: number;
  if (opts.known) ({ size, mtime } = opts.known);
  else {
    try {
      const st = await stat(path);
      if (!st.isFile()) return undefined;
      size = st.size;
      mtime = st.mtimeMs;
    } catch {
      return undefined;
    }
  }
  if (size === 0) return undefined;
  // A file we may not read is an error (the scanner retries it), not an item with no metadata:
  // the readers below let EACCES/EPERM through (see goneOrDenied) instead of an access() call per file.
  // ".ts" is also TypeScript: only take MPEG transport streams (sync byte every 188/192 bytes).
  try {
    if (['ts', 'm2ts', 'mts'].includes(extensionOf(path)) && !(await looksLikeTransportStream(path))) return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const result: ProbeResult = {
    kind: type.kind,
    upnpClass: UPNP_CLASS[type.kind],
    title: titleFromFileName(path),
    meta: {},
    res: { mime: type.mime, size },
  };
  const container = containerOf(path);
  if (container) result.res.container = container;
  try {
    if (type.kind === 'audio') await probeAudio(path, result, !!opts.pictures, !!opts.blockingReads);
    else if (type.kind === 'image') await probeImage(path, result, mtime);
    else await probeVideo(path, result, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (goneOrDenied(err)) throw err;
    // Keep what is known: a damaged file still gets an entry with name, MIME and size.
  }
  dropImplausible(result);
  try {
    const pn = dlnaProfile(result.res);
    if (pn) result.res.dlnaProfile = pn;
  } catch {
    // dlnaProfile is pure; never let it take a probe down.
  }
  return result;
}

/**
 * Values a crafted or damaged file can carry that no real media has: they would reach DIDL-Lite
 * (a 2^64-second duration, an 18-quintillion-pixel width, a track number outside UPnP's i4) and
 * are dropped, as if the file had not said.
 */
const PLAUSIBLE: [keyof Resource, number, number][] = [
  ['duration', 0, 366 * 24 * 3600], // a year of playback
  ['bitrate', 1, 1e10], // bytes/s
  ['sampleFrequency', 1, 10_000_000],
  ['nrAudioChannels', 1, 255],
  ['bitsPerSample', 1, 64],
  ['width', 1, 1 << 20],
  ['height', 1, 1 << 20],
];

export function dropImplausible(r: ProbeResult): void {
  const res = r.res as unknown as Record<string, unknown>;
  for (const [key, min, max] of PLAUSIBLE) {
    const v = res[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max)) delete res[key];
  }
  for (const key of ['trackNumber', 'discNumber'] as const) {
    const v = r.meta[key];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1 && v <= 99_999)) delete r.meta[key];
  }
}

/**
 * Errors no reader may swallow: a read refused for lack of permission (the probe throws it
 * rather than returning an item without metadata) and a file gone since the walk saw it (no item).
 */
function goneOrDenied(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  // ELOOP / ENOTREG: a link, named pipe or device put at the name since the walk (util/read-regular.ts)
  return code === 'EACCES' || code === 'EPERM' || code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTREG';
}

/** True when 0x47 sync bytes repeat at a 188- or 192-byte (timestamped) packet pitch near the file start. */
async function looksLikeTransportStream(path: string): Promise<boolean> {
  try {
    const head = await withReader(path, (r) => r.read(0, 192 * 8));
    for (const [pitch, first] of [
      [188, 0],
      [192, 4],
    ]) {
      let packets = 0;
      for (let i = first; i < head.length && head[i] === 0x47; i += pitch) packets++;
      if (packets >= Math.min(4, Math.floor((head.length - first) / pitch)) && packets > 0) return true;
    }
    return false;
  } catch (err) {
    if (goneOrDenied(err)) throw err;
    return false;
  }
}

// --- audio ----------------------------------------------------------------------

/** music-metadata's codec description → FFmpeg codec name. */
export function audioCodecName(codec: string | undefined, bitsPerSample?: number): string | undefined {
  if (!codec) return undefined;
  const c = codec.trim();
  if (/^MPEG[- ]?[12](\.5)? Layer 3$/i.test(c)) return 'mp3';
  if (/^MPEG[- ]?[12](\.5)? Layer 2$/i.test(c)) return 'mp2';
  if (/^MPEG[- ]?[12](\.5)? Layer 1$/i.test(c)) return 'mp1';
  if (/AAC/i.test(c)) return 'aac';
  if (/^FLAC$/i.test(c)) return 'flac';
  if (/^ALAC$/i.test(c)) return 'alac';
  if (/^PCM$/i.test(c)) return bitsPerSample === 8 ? 'pcm_u8' : `pcm_s${bitsPerSample ?? 16}le`;
  if (/vorbis/i.test(c)) return 'vorbis';
  if (/opus/i.test(c)) return 'opus';
  if (/windows media audio/i.test(c) || /^wma/i.test(c)) {
    if (/lossless/i.test(c)) return 'wmalossless';
    if (/pro/i.test(c)) return 'wmapro';
    if (/voice/i.test(c)) return 'wmavoice';
    return 'wmav2';
  }
  if (/^(AC-?3|ATSC A\/52)/i.test(c)) return 'ac3';
  if (/E-?AC-?3/i.test(c)) return 'eac3';
  return c.toLowerCase().replace(/\s+/g, '_');
}

function cleanString(s: unknown): string | undefined {
  if (typeof s !== 'string') return undefined;
  const t = s.replace(/\0+$/g, '').trim();
  return t || undefined;
}

/** Leading date of a tag value → 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'. */
export function normaliseTagDate(s: string | undefined, year?: number): string | undefined {
  const m = s ? /^\s*(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?/.exec(s) : null;
  if (m && Number(m[1]) > 0) {
    const mm = m[2] ? Number(m[2]) : 0;
    const dd = m[3] ? Number(m[3]) : 0;
    if (mm >= 1 && mm <= 12) {
      const ym = `${m[1]}-${String(mm).padStart(2, '0')}`;
      return dd >= 1 && dd <= 31 ? `${ym}-${String(dd).padStart(2, '0')}` : ym;
    }
    return m[1];
  }
  if (year && year > 0 && year < 10000) return String(year).padStart(4, '0');
  return undefined;
}

const OGG_HEAD = 256 * 1024;
const OGG_TAIL = 64 * 1024;

/**
 * Ogg: music-metadata walks every page of the file, so it only gets the head
 * (identification and comment headers live in the first pages); the duration
 * comes from the granule position of the last page (see oggDuration).
 */
async function parseOggHead(path: string, size: number, skipCovers = true): Promise<IAudioMetadata> {
  const { fh } = await openRegular(path); // closed with the stream
  const stream = fh.createReadStream({ start: 0, end: Math.min(size, OGG_HEAD) - 1 });
  try {
    return await (await musicMetadata()).parseStream(stream, { mimeType: 'audio/ogg', size }, { duration: false, skipCovers });
  } finally {
    stream.destroy();
  }
}

/** Duration of an Ogg stream from its last page's granule position (Opus: 48 kHz minus pre-skip). */
export async function oggDuration(path: string, sampleRate: number | undefined, opus: boolean): Promise<number | undefined> {
  return withReader(path, async (r) => {
    const tail = await r.read(Math.max(0, r.size - OGG_TAIL), OGG_TAIL);
    let granule: bigint | undefined;
    for (let i = tail.lastIndexOf('OggS'); i >= 0; i = i > 0 ? tail.lastIndexOf('OggS', i - 1) : -1) {
      if (i + 14 > tail.length || tail[i + 4] !== 0) continue; // stream structure version 0
      const g = tail.readBigInt64LE(i + 6);
      if (g > 0n) {
        granule = g;
        break;
      }
    }
    if (granule === undefined) return undefined;
    if (opus) {
      const head = await r.read(0, 4096);
      const at = head.indexOf('OpusHead');
      const preSkip = at >= 0 && at + 12 <= head.length ? head.readUInt16LE(at + 10) : 0;
      const d = Number(granule - BigInt(preSkip)) / 48000;
      return d > 0 ? d : undefined;
    }
    return sampleRate ? Number(granule) / sampleRate : undefined;
  });
}

/**
 * Largest single read music-metadata may ask for. A tag or chunk declaring more than the file
 * holds, or more than this, ends the parse (what was read so far is kept) instead of allocating
 * the declared size: a hostile 4 GB sparse WAV once made it ask Node for a 4 GB read, which aborts
 * the process, and declared sizes of a few hundred MB cost gigabytes of memory.
 */
const MAX_TAG_READ = 16 * 1024 * 1024;

/** music-metadata's parseFile, with reads bounded by the file's size and MAX_TAG_READ. */
async function parseFileBounded(path: string, opts: IOptions): Promise<IAudioMetadata> {
  const { parseFromTokenizer } = await musicMetadata();
  const { FileTokenizer } = await strtok3();
  // Not fromFile(path): its open follows a link and waits for a pipe's writer (util/read-regular.ts).
  const { fh, size } = await openRegular(path);
  // FileTokenizer's constructor (what fromFile calls after its own open and fstat) takes the handle.
  const Tokenizer = FileTokenizer as unknown as new (fh: FileHandle, o: { maxBufferSize: number; fileInfo: { path: string; size: number } }) => Awaited<ReturnType<typeof FileTokenizer.fromFile>>;
  const tokenizer = new Tokenizer(fh, { maxBufferSize: MAX_TAG_READ, fileInfo: { path, size } });
  try {
    return await parseFromTokenizer(tokenizer, opts);
  } finally {
    await tokenizer.close();
  }
}

/** Audio files up to this size are parsed from one whole read. */
const SMALL_AUDIO = 512 * 1024;

/** The first `size` bytes of a file (fewer if it shrank) with blocking calls: see ProbeOptions.blockingReads. */
function readHeadSync(path: string, size: number): Buffer {
  const { fd } = openRegularSync(path); // a link, pipe or device put there since the walk: refused
  try {
    const buf = Buffer.allocUnsafeSlow(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === size ? buf : buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** The first `size` bytes of the regular file at `path` (fewer if it shrank): one open, fstat, read(s), close. */
async function readRegularHead(path: string, size: number): Promise<Buffer> {
  const { fh } = await openRegular(path);
  try {
    return await readHead(fh, size);
  } finally {
    await fh.close();
  }
}

async function probeAudio(path: string, out: ProbeResult, pictures: boolean, blocking = false): Promise<void> {
  // duration: false → header-derived duration (Xing/VBRI/STREAMINFO/mvhd, or CBR size estimate), no full scan.
  const ogg = out.res.container === 'ogg';
  // A small file is read in one go: music-metadata's file tokenizer issues one read per
  // field (about ten for a small FLAC), which dominates scanning libraries of short files.
  const small = out.res.size > SMALL_AUDIO ? undefined : blocking ? readHeadSync(path, out.res.size) : await readRegularHead(path, out.res.size);
  const parse = (skipCovers: boolean): Promise<IAudioMetadata> => {
    const fast = small && out.res.container === 'flac' ? readFlacTags(small, out.res.size, !skipCovers) : undefined;
    if (fast) return Promise.resolve(fast as unknown as IAudioMetadata);
    // mkvUseIndex: Matroska audio (.mka/.weba) jumps through the SeekHead instead of walking every cluster.
    const opts = { duration: false, skipCovers, mkvUseIndex: true };
    if (ogg) return parseOggHead(path, out.res.size, skipCovers);
    return small ? musicMetadata().then((m) => m.parseBuffer(small, { mimeType: out.res.mime, size: out.res.size, path }, opts)) : parseFileBounded(path, opts);
  };
  let mm: IAudioMetadata;
  if (pictures) {
    try {
      mm = await parse(false);
    } catch {
      // a picture the parser cannot read (or larger than its read bound) must not cost the tags
      mm = await parse(true);
      out.pictureSkipped = 'embedded picture unreadable';
    }
    const pics = mm.common.picture ?? [];
    const pic = pics.find((p) => /front/i.test(p.type ?? '')) ?? pics[0];
    if (pic) {
      if (pic.data.length > MAX_PICTURE) out.pictureSkipped = `embedded picture of ${pic.data.length} bytes is over ${MAX_PICTURE}`;
      else if (pic.data.length) out.picture = { data: pic.data, format: pic.format };
    }
    // the pictures are not kept past this probe
    mm.common.picture = undefined;
  } else mm = await parse(true);
  const { common, format } = mm;
  const meta: ItemMeta = out.meta;
  const title = cleanString(common.title);
  if (title) out.title = title;
  const artist = cleanString(common.artist) ?? cleanString(common.artists?.[0]);
  if (artist) meta.artist = artist;
  const albumArtist = cleanString(common.albumartist);
  if (albumArtist) meta.albumArtist = albumArtist;
  const album = cleanString(common.album);
  if (album) meta.album = album;
  const genre = cleanString(common.genre?.[0]);
  if (genre) meta.genre = genre;
  const date = normaliseTagDate(cleanString(common.date) ?? cleanString(common.originaldate), common.year);
  if (date) meta.date = date;
  if (common.track?.no && common.track.no > 0) meta.trackNumber = common.track.no;
  if (common.disk?.no && common.disk.no > 0) meta.discNumber = common.disk.no;
  const creator = artist ?? albumArtist;
  if (creator) meta.creator = creator;

  const res = out.res;
  if (format.duration && Number.isFinite(format.duration) && format.duration > 0) res.duration = format.duration;
  if (format.sampleRate) res.sampleFrequency = format.sampleRate;
  if (format.numberOfChannels) res.nrAudioChannels = format.numberOfChannels;
  if (format.bitsPerSample && format.lossless) res.bitsPerSample = format.bitsPerSample;
  if (format.bitrate && Number.isFinite(format.bitrate) && format.bitrate > 0) res.bitrate = Math.round(format.bitrate / 8);
  else if (res.duration) res.bitrate = Math.round(res.size / res.duration);
  const codec = audioCodecName(format.codec, format.bitsPerSample);
  if (codec) res.audioCodec = codec;
  if (ogg && !res.duration) {
    try {
      const d = await oggDuration(path, format.sampleRate, codec === 'opus');
      if (d) {
        res.duration = d;
        if (!res.bitrate) res.bitrate = Math.round(res.size / d);
      }
    } catch {
      // no duration then
    }
  }
  if (res.container === 'mp4') {
    // music-metadata does not tell AAC-LC from HE-AAC; the sample description does.
    try {
      const info = await withReader(path, readIsoBmff);
      if (info?.audioCodec) res.audioCodec = info.audioCodec;
      if (!res.duration && info?.duration) res.duration = info.duration;
    } catch {
      // keep music-metadata's view
    }
  }
}

// --- images ---------------------------------------------------------------------

const EXIF_DATE = /^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/;

/** EXIF 'YYYY:MM:DD HH:MM:SS' (+ optional '+HH:MM' offset) → ISO 8601; undefined for blank/zero dates. */
export function exifDateToIso(value: unknown, offset?: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (typeof value !== 'string') return undefined;
  const m = EXIF_DATE.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  if (Number(y) === 0 || Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return undefined;
  let iso = `${y}-${mo}-${d}T${h}:${mi}:${s}`;
  if (typeof offset === 'string' && /^[+-]\d{2}:\d{2}$/.test(offset.trim())) iso += offset.trim();
  return iso;
}

function isoFromMtime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const IMAGE_HEAD = 512 * 1024;
const IMAGE_HEAD_MAX = 4 * 1024 * 1024;

async function imageDimensions(path: string): Promise<{ width: number; height: number } | undefined> {
  const { imageSize } = await imageSizeLib();
  return withReader(path, async (r) => {
    for (const len of [IMAGE_HEAD, IMAGE_HEAD_MAX]) {
      const buf = await r.read(0, len);
      try {
        const s = imageSize(buf);
        if (s.width > 0 && s.height > 0) return { width: s.width, height: s.height };
        return undefined;
      } catch {
        if (buf.length < len) return undefined; // whole file seen: not decodable
      }
    }
    return undefined;
  });
}

async function probeImage(path: string, out: ProbeResult, mtime: number): Promise<void> {
  try {
    const dims = await imageDimensions(path);
    if (dims) {
      out.res.width = dims.width;
      out.res.height = dims.height;
    }
  } catch (err) {
    if (goneOrDenied(err)) throw err;
    // unreadable header: no dimensions
  }
  let date: string | undefined;
  // (exifr leaves its file handle open when a file is too short to tell its format; no image
  // that carries EXIF is that small)
  if (out.res.size >= 64 && ['jpg', 'jpeg', 'jpe', 'tif', 'tiff', 'png', 'heic', 'heif', 'avif', 'webp'].includes(extensionOf(path))) {
    try {
      const tags = await (await exifrLib()).parse(path, {
        pick: ['DateTimeOriginal', 'CreateDate', 'ModifyDate', 'OffsetTimeOriginal', 'Artist', 'ImageDescription'],
        reviveValues: false,
        translateValues: false,
        xmp: false,
        icc: false,
        iptc: false,
        jfif: false,
        ihdr: false,
      });
      if (tags) {
        date =
          exifDateToIso(tags.DateTimeOriginal, tags.OffsetTimeOriginal) ?? exifDateToIso(tags.CreateDate) ?? exifDateToIso(tags.ModifyDate);
        const artist = cleanString(tags.Artist);
        if (artist) out.meta.creator = artist;
        const description = cleanString(tags.ImageDescription);
        if (description) out.meta.description = description;
      }
    } catch {
      // no or broken EXIF
    }
  }
  out.meta.date = date ?? isoFromMtime(mtime);
}

// --- video ----------------------------------------------------------------------

let ffprobeOnPath: Promise<string | undefined> | undefined;

/** Absolute path of `ffprobe` on PATH (looked up once per process). */
export function findFfprobe(): Promise<string | undefined> {
  ffprobeOnPath ??= (async () => {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!dir) continue;
      const p = join(dir, process.platform === 'win32' ? 'ffprobe.exe' : 'ffprobe');
      try {
        await access(p, fsConstants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
    return undefined;
  })();
  return ffprobeOnPath;
}

interface FfStream {
  codec_type?: string;
  codec_name?: string;
  profile?: string;
  level?: number;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
  bits_per_sample?: number;
  bits_per_raw_sample?: string;
  disposition?: { attached_pic?: number };
}

interface FfProbeJson {
  streams?: FfStream[];
  format?: { duration?: string; bit_rate?: string; format_name?: string };
}

function runFfprobe(bin: string, path: string, timeoutMs: number): Promise<FfProbeJson> {
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', '--', path],
      { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024, killSignal: 'SIGKILL', windowsHide: true },
      (err, stdout) => {
        if (err) return reject(err);
        try {
          resolve(JSON.parse(stdout) as FfProbeJson);
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}

function ffProfile(codec: string, profile: string | undefined): string | undefined {
  if (!profile || profile === 'unknown') return undefined;
  const p = profile.toLowerCase().replace(/ profile$/, '');
  if (codec === 'aac') {
    if (p === 'he-aacv2') return 'hev2';
    if (p === 'he-aac') return 'he';
    return p; // lc, main, ltp, ssr
  }
  return p;
}

function ffLevel(codec: string, level: number | undefined): string | undefined {
  if (level === undefined || level <= 0) return undefined;
  if (codec === 'h264') return h264LevelName(level);
  if (codec === 'hevc') return String(level / 30);
  return undefined;
}

/** ffprobe JSON → ContainerInfo (exported for tests). */
export function fromFfprobe(j: FfProbeJson, container: string): ContainerInfo {
  const out: ContainerInfo = { container };
  const streams = j.streams ?? [];
  const v = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  const a = streams.find((s) => s.codec_type === 'audio');
  const dur = Number(j.format?.duration);
  if (Number.isFinite(dur) && dur > 0) out.duration = dur;
  if (v?.codec_name) {
    out.videoCodec = formatCodec({ name: v.codec_name, profile: ffProfile(v.codec_name, v.profile), level: ffLevel(v.codec_name, v.level) });
    if (v.width && v.height) {
      out.width = v.width;
      out.height = v.height;
    }
  }
  if (a?.codec_name) {
    out.audioCodec = formatCodec({ name: a.codec_name, profile: ffProfile(a.codec_name, a.profile) });
    const sr = Number(a.sample_rate);
    if (sr > 0) out.sampleRate = sr;
    if (a.channels) out.channels = a.channels;
    const bits = a.bits_per_sample || Number(a.bits_per_raw_sample) || 0;
    if (bits > 0 && a.codec_name.startsWith('pcm')) out.bitsPerSample = bits;
  }
  return out;
}

async function builtInVideo(path: string): Promise<ContainerInfo | undefined> {
  const ext = extensionOf(path);
  if (['asf', 'wmv'].includes(ext)) {
    const mm = await parseFileBounded(path, { duration: false, skipCovers: true });
    return { container: 'asf', duration: mm.format.duration, audioCodec: audioCodecName(mm.format.codec), sampleRate: mm.format.sampleRate, channels: mm.format.numberOfChannels };
  }
  return withReader(path, async (r: RandomReader) => (await readIsoBmff(r)) ?? (await readEbml(r)) ?? (await readAvi(r)));
}

/**
 * Whether the built-in readers told everything a video item needs (duration, picture size,
 * video codec); when they did, ffprobe would only repeat it at ~100 ms and a process per file.
 */
export function builtInComplete(info: ContainerInfo | undefined): boolean {
  return !!info && !!info.duration && info.duration > 0 && !!info.width && !!info.height && !!info.videoCodec;
}

/** ffprobe processes run at once, across every probe of this process. */
const FFPROBE_SLOTS = Math.max(2, availableParallelism());
let ffprobeRunning = 0;
const ffprobeQueue: (() => void)[] = [];

/** Runs `fn` when fewer than FFPROBE_SLOTS ffprobe runs are under way (FIFO). */
async function ffprobeSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (ffprobeRunning >= FFPROBE_SLOTS) await new Promise<void>((res) => ffprobeQueue.push(res));
  else ffprobeRunning++;
  try {
    return await fn();
  } finally {
    const next = ffprobeQueue.shift();
    if (next) next(); // the slot passes on
    else ffprobeRunning--;
  }
}

async function probeVideo(path: string, out: ProbeResult, opts: ProbeOptions): Promise<void> {
  const res: Resource = out.res;
  // The built-in readers first: MP4/MOV/3GP, Matroska/WebM and AVI headers are read in-process.
  let info: ContainerInfo | undefined;
  try {
    info = await builtInVideo(path);
  } catch (err) {
    if (goneOrDenied(err)) throw err;
    info = undefined; // unreadable container: ffprobe may know better
  }
  let bitrate: number | undefined;
  if (!builtInComplete(info)) {
    const bin = opts.ffprobe === false ? undefined : (opts.ffprobe ?? (await findFfprobe()));
    if (bin) {
      try {
        const j = await ffprobeSlot(() => runFfprobe(bin, path, opts.ffprobeTimeoutMs ?? 15_000));
        const ff = fromFfprobe(j, res.container ?? info?.container ?? 'unknown');
        if (ff.duration || ff.videoCodec) {
          // what ffprobe says wins; what only the built-in reader found is kept
          info = { ...info, ...ff };
          const br = Number(j.format?.bit_rate);
          if (Number.isFinite(br) && br > 0) bitrate = Math.round(br / 8);
        }
      } catch {
        // keep what the built-in readers found
      }
    }
  }
  if (!info) return;
  if (info.duration && Number.isFinite(info.duration) && info.duration > 0) res.duration = info.duration;
  if (info.width && info.height) {
    res.width = info.width;
    res.height = info.height;
  }
  if (info.videoCodec) res.videoCodec = info.videoCodec;
  if (info.audioCodec) res.audioCodec = info.audioCodec;
  if (info.sampleRate) res.sampleFrequency = info.sampleRate;
  if (info.channels) res.nrAudioChannels = info.channels;
  if (info.bitsPerSample) res.bitsPerSample = info.bitsPerSample;
  if (info.container && info.container !== 'unknown' && ['mp4', 'mov', '3gp', 'mkv', 'webm', 'avi', 'asf'].includes(info.container)) {
    res.container = info.container;
  }
  // (ffprobe's format bit_rate is the file size over the duration too, for the containers read here)
  if (bitrate) res.bitrate = bitrate;
  else if (res.duration) res.bitrate = Math.round(res.size / res.duration);
}
