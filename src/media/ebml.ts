// Minimal Matroska/WebM (EBML) reader: DocType, Segment Info (duration,
// timecode scale, title) and Tracks (first video and audio track: codec,
// pixel size, sampling frequency, channels). Uses the SeekHead to jump to Info
// and Tracks when they are not in front of the clusters; never reads clusters.

import { type ContainerInfo, RandomReader } from './filereader.js';
import { aacProfileName, formatCodec, h264LevelName, h264ProfileName } from './mediatypes.js';

const ID = {
  EBML: 0x1a45dfa3,
  DocType: 0x4282,
  Segment: 0x18538067,
  SeekHead: 0x114d9b74,
  Seek: 0x4dbb,
  SeekID: 0x53ab,
  SeekPosition: 0x53ac,
  Info: 0x1549a966,
  TimecodeScale: 0x2ad7b1,
  Duration: 0x4489,
  Title: 0x7ba9,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackType: 0x83,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  FlagDefault: 0x88,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  Audio: 0xe1,
  SamplingFrequency: 0xb5,
  Channels: 0x9f,
  BitDepth: 0x6264,
  Cluster: 0x1f43b675,
} as const;

/** Largest Info/Tracks/SeekHead element we load. */
const MAX_ELEMENT = 4 * 1024 * 1024;
const MAX_TOP_LEVEL = 4096;

interface Vint {
  value: number;
  length: number;
  unknown: boolean; // all value bits set: "unknown size"
}

/** Reads an EBML variable-length integer. `keepMarker` for element IDs. */
function readVint(buf: Buffer, pos: number, keepMarker: boolean): Vint | undefined {
  if (pos >= buf.length) return undefined;
  const first = buf[pos];
  if (first === 0) return undefined; // longer than 8 bytes: invalid
  let length = 1;
  while (!(first & (0x80 >> (length - 1)))) length++;
  if (pos + length > buf.length) return undefined;
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === (0xff >> length);
  for (let i = 1; i < length; i++) {
    const b = buf[pos + i];
    value = value * 256 + b;
    if (b !== 0xff) allOnes = false;
  }
  return { value, length, unknown: !keepMarker && allOnes };
}

interface Element {
  id: number;
  dataStart: number; // relative to the buffer the element was read from
  size: number; // -1 when unknown
  headerLength: number;
}

function readElementHeader(buf: Buffer, pos: number): Element | undefined {
  const id = readVint(buf, pos, true);
  if (!id) return undefined;
  const size = readVint(buf, pos + id.length, false);
  if (!size) return undefined;
  return { id: id.value, dataStart: pos + id.length + size.length, size: size.unknown ? -1 : size.value, headerLength: id.length + size.length };
}

/** Children of buf[start, end). Stops at the first malformed element. */
function* children(buf: Buffer, start: number, end: number): Generator<Element> {
  let pos = start;
  while (pos < end) {
    const e = readElementHeader(buf, pos);
    if (!e || e.size < 0 || e.dataStart + e.size > end) return;
    yield e;
    pos = e.dataStart + e.size;
  }
}

function uint(buf: Buffer, e: Element): number {
  let v = 0;
  for (let i = 0; i < e.size && i < 8; i++) v = v * 256 + buf[e.dataStart + i];
  return v;
}

function float(buf: Buffer, e: Element): number | undefined {
  if (e.size === 4) return buf.readFloatBE(e.dataStart);
  if (e.size === 8) return buf.readDoubleBE(e.dataStart);
  return undefined;
}

function str(buf: Buffer, e: Element): string {
  return buf.toString('utf8', e.dataStart, e.dataStart + e.size).replace(/\0+$/, '');
}

export async function readEbml(r: RandomReader): Promise<ContainerInfo | undefined> {
  const head = await r.read(0, 64);
  const ebml = readElementHeader(head, 0);
  if (!ebml || ebml.id !== ID.EBML || ebml.size < 0 || ebml.size > 4096) return undefined;
  const hbuf = ebml.dataStart + ebml.size <= head.length ? head : await r.read(0, ebml.dataStart + ebml.size);
  let docType = 'matroska';
  for (const e of children(hbuf, ebml.dataStart, Math.min(hbuf.length, ebml.dataStart + ebml.size))) {
    if (e.id === ID.DocType) docType = str(hbuf, e);
  }
  const out: ContainerInfo = { container: docType === 'webm' ? 'webm' : 'mkv' };

  // Segment header.
  let pos = ebml.dataStart + ebml.size;
  const segHead = await r.read(pos, 16);
  const seg = readElementHeader(segHead, 0);
  if (!seg || seg.id !== ID.Segment) return out;
  const segData = pos + seg.dataStart;
  const segEnd = seg.size < 0 ? r.size : Math.min(r.size, segData + seg.size);

  let info: Buffer | undefined;
  let tracks: Buffer | undefined;
  const seekTargets = new Map<number, number>();
  const loadElement = async (at: number): Promise<{ id: number; data: Buffer } | undefined> => {
    const h = await r.read(at, 16);
    const e = readElementHeader(h, 0);
    if (!e || e.size < 0 || e.size > MAX_ELEMENT) return undefined;
    return { id: e.id, data: await r.read(at + e.dataStart, e.size) };
  };

  pos = segData;
  for (let i = 0; i < MAX_TOP_LEVEL && pos < segEnd && !(info && tracks); i++) {
    const h = await r.read(pos, 16);
    const e = readElementHeader(h, 0);
    if (!e) break;
    if (e.id === ID.Info || e.id === ID.Tracks || e.id === ID.SeekHead) {
      if (e.size < 0 || e.size > MAX_ELEMENT) break;
      const data = await r.read(pos + e.dataStart, e.size);
      if (e.id === ID.Info) info = data;
      else if (e.id === ID.Tracks) tracks = data;
      else parseSeekHead(data, seekTargets);
    } else if (e.id === ID.Cluster && seekTargets.size > 0) {
      break; // reached the media data: use the SeekHead for the rest
    }
    if (e.size < 0) break; // unknown-size element (live stream cluster): cannot skip it
    pos += e.dataStart + e.size;
  }
  if (!info && seekTargets.has(ID.Info)) {
    const el = await loadElement(segData + seekTargets.get(ID.Info)!);
    if (el?.id === ID.Info) info = el.data;
  }
  if (!tracks && seekTargets.has(ID.Tracks)) {
    const el = await loadElement(segData + seekTargets.get(ID.Tracks)!);
    if (el?.id === ID.Tracks) tracks = el.data;
  }
  if (info) parseInfo(info, out);
  if (tracks) parseTracks(tracks, out);
  return out;
}

function parseSeekHead(buf: Buffer, targets: Map<number, number>): void {
  for (const seek of children(buf, 0, buf.length)) {
    if (seek.id !== ID.Seek) continue;
    let id: number | undefined;
    let position: number | undefined;
    for (const e of children(buf, seek.dataStart, seek.dataStart + seek.size)) {
      if (e.id === ID.SeekID) id = readVint(buf.subarray(e.dataStart, e.dataStart + e.size), 0, true)?.value;
      else if (e.id === ID.SeekPosition) position = uint(buf, e);
    }
    if (id !== undefined && position !== undefined && !targets.has(id)) targets.set(id, position);
  }
}

function parseInfo(buf: Buffer, out: ContainerInfo): void {
  let scale = 1_000_000;
  let duration: number | undefined;
  for (const e of children(buf, 0, buf.length)) {
    if (e.id === ID.TimecodeScale) scale = uint(buf, e) || scale;
    else if (e.id === ID.Duration) duration = float(buf, e);
    else if (e.id === ID.Title) {
      const t = str(buf, e).trim();
      if (t) out.title = t;
    }
  }
  if (duration !== undefined && Number.isFinite(duration) && duration > 0) out.duration = (duration * scale) / 1e9;
}

interface TrackEntry {
  type?: number;
  codecId?: string;
  codecPrivate?: Buffer;
  isDefault: boolean;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
  bitDepth?: number;
}

function parseTracks(buf: Buffer, out: ContainerInfo): void {
  const entries: TrackEntry[] = [];
  for (const te of children(buf, 0, buf.length)) {
    if (te.id !== ID.TrackEntry) continue;
    const t: TrackEntry = { isDefault: true };
    for (const e of children(buf, te.dataStart, te.dataStart + te.size)) {
      switch (e.id) {
        case ID.TrackType:
          t.type = uint(buf, e);
          break;
        case ID.CodecID:
          t.codecId = str(buf, e);
          break;
        case ID.CodecPrivate:
          t.codecPrivate = buf.subarray(e.dataStart, e.dataStart + e.size);
          break;
        case ID.FlagDefault:
          t.isDefault = uint(buf, e) !== 0;
          break;
        case ID.Video:
          for (const v of children(buf, e.dataStart, e.dataStart + e.size)) {
            if (v.id === ID.PixelWidth) t.width = uint(buf, v);
            else if (v.id === ID.PixelHeight) t.height = uint(buf, v);
          }
          break;
        case ID.Audio:
          t.channels = 1; // Matroska default
          t.sampleRate = 8000; // Matroska default
          for (const a of children(buf, e.dataStart, e.dataStart + e.size)) {
            if (a.id === ID.SamplingFrequency) t.sampleRate = Math.round(float(buf, a) ?? t.sampleRate);
            else if (a.id === ID.Channels) t.channels = uint(buf, a);
            else if (a.id === ID.BitDepth) t.bitDepth = uint(buf, a);
          }
          break;
      }
    }
    entries.push(t);
  }
  const pick = (type: number) => entries.find((t) => t.type === type && t.isDefault) ?? entries.find((t) => t.type === type);
  const video = pick(1);
  const audio = pick(2);
  if (video) {
    if (video.width && video.height) {
      out.width = video.width;
      out.height = video.height;
    }
    if (video.codecId) out.videoCodec = videoCodec(video);
  }
  if (audio) {
    if (audio.codecId) out.audioCodec = audioCodec(audio);
    if (audio.sampleRate) out.sampleRate = audio.sampleRate;
    if (audio.channels) out.channels = audio.channels;
    if (audio.bitDepth && out.audioCodec?.startsWith('pcm')) out.bitsPerSample = audio.bitDepth;
  }
}

const VIDEO_CODECS: Record<string, string> = {
  'V_MPEG4/ISO/AVC': 'h264',
  'V_MPEGH/ISO/HEVC': 'hevc',
  V_VP8: 'vp8',
  V_VP9: 'vp9',
  V_AV1: 'av1',
  V_MPEG1: 'mpeg1video',
  V_MPEG2: 'mpeg2video',
  'V_MPEG4/ISO/SP': 'mpeg4',
  'V_MPEG4/ISO/ASP': 'mpeg4',
  'V_MPEG4/ISO/AP': 'mpeg4',
  'V_MPEG4/MS/V3': 'msmpeg4v3',
  V_MJPEG: 'mjpeg',
  V_THEORA: 'theora',
  'V_MS/VFW/FOURCC': 'vfw',
  V_PRORES: 'prores',
  V_FFV1: 'ffv1',
};

function videoCodec(t: TrackEntry): string {
  const name = VIDEO_CODECS[t.codecId!] ?? t.codecId!.toLowerCase();
  const cp = t.codecPrivate;
  if (name === 'h264' && cp && cp.length >= 4 && cp[0] === 1) {
    return formatCodec({ name, profile: h264ProfileName(cp[1], cp[2]), level: h264LevelName(cp[3]) });
  }
  if (name === 'vfw' && cp && cp.length >= 20) {
    // BITMAPINFOHEADER: biCompression at 16.
    return fourccToCodec(cp.toString('latin1', 16, 20));
  }
  return name;
}

function audioCodec(t: TrackEntry): string {
  const id = t.codecId!;
  if (id.startsWith('A_AAC')) {
    let profile: string | undefined;
    if (t.codecPrivate && t.codecPrivate.length >= 1) profile = aacProfileName(t.codecPrivate[0] >>> 3);
    else if (/\/SBR$/.test(id)) profile = 'he';
    else if (/\/LC$/.test(id)) profile = 'lc';
    else if (/\/MAIN$/.test(id)) profile = 'main';
    return formatCodec({ name: 'aac', profile });
  }
  const map: Record<string, string> = {
    A_AC3: 'ac3', A_EAC3: 'eac3', A_DTS: 'dts', 'A_MPEG/L3': 'mp3', 'A_MPEG/L2': 'mp2', 'A_MPEG/L1': 'mp1',
    A_VORBIS: 'vorbis', A_OPUS: 'opus', A_FLAC: 'flac', A_TRUEHD: 'truehd', A_ALAC: 'alac',
    'A_PCM/INT/LIT': 'pcm_s16le', 'A_PCM/INT/BIG': 'pcm_s16be', 'A_PCM/FLOAT/IEEE': 'pcm_f32le',
  };
  let name = map[id] ?? id.toLowerCase();
  if (name === 'pcm_s16le' && t.bitDepth && t.bitDepth !== 16) name = `pcm_s${t.bitDepth}le`;
  if (name === 'pcm_s16be' && t.bitDepth && t.bitDepth !== 16) name = `pcm_s${t.bitDepth}be`;
  return name;
}

/** Video FourCC (AVI, VfW) → FFmpeg codec name. */
export function fourccToCodec(fcc: string): string {
  const f = fcc.toUpperCase().replace(/\0/g, ' ');
  if (['MJPG', 'AVRN', 'LJPG', 'JPGL', 'MJLS'].includes(f)) return 'mjpeg';
  if (['XVID', 'DIVX', 'DX50', 'FMP4', 'MP4V', 'M4S2', '3IV2', 'RMP4', 'DIV5', 'DIV6'].includes(f)) return 'mpeg4';
  if (['H264', 'X264', 'AVC1', 'DAVC', 'VSSH'].includes(f)) return 'h264';
  if (['HEVC', 'H265', 'HVC1', 'X265'].includes(f)) return 'hevc';
  if (['DIV3', 'MP43', 'DIV4', 'AP41', 'COL1'].includes(f)) return 'msmpeg4v3';
  if (['MP42', 'DIV2'].includes(f)) return 'msmpeg4v2';
  if (f === 'MPG2' || f === 'MPEG' || f === 'MPG1') return f === 'MPG1' ? 'mpeg1video' : 'mpeg2video';
  if (f === 'WMV3') return 'wmv3';
  if (f === 'WVC1') return 'vc1';
  if (f === 'VP80') return 'vp8';
  if (f === 'VP90') return 'vp9';
  if (f === 'AV01') return 'av1';
  if (f === 'DVSD' || f === 'DV25' || f === 'DV50' || f === 'CDVC') return 'dvvideo';
  if (f === 'FFV1') return 'ffv1';
  if (f.trim() === '' || f === 'DIB ' || f === 'RGB ') return 'rawvideo'; // BI_RGB is 0
  return f.trim().toLowerCase();
}
