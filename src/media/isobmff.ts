// Minimal ISO base media file format (MP4, MOV, 3GP, M4A) reader: finds the
// `moov` box wherever it is (front or tail), reads movie duration, track sizes
// and the first sample description of each track (codec, AVC profile/level,
// AAC object type, audio channels/rate). Reads only box headers plus `moov`.

import { type ContainerInfo, fourcc, RandomReader } from './filereader.js';
import { aacProfileName, formatCodec, h264LevelName, h264ProfileName } from './mediatypes.js';

/** Largest `moov` we are willing to load (hour-long files have a few MB). */
const MAX_MOOV = 64 * 1024 * 1024;
const MAX_TOP_LEVEL_BOXES = 4096;
const TOP_LEVEL_TYPES = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot', 'uuid', 'styp', 'sidx', 'moof', 'mfra', 'meta', 'pdin', 'junk']);

interface Box {
  type: string;
  start: number; // offset of the payload within the parent buffer
  end: number; // end of the payload
}

/** Child boxes of buf[start, end). Stops at the first malformed header. */
function* boxes(buf: Buffer, start: number, end: number): Generator<Box> {
  let pos = start;
  while (pos + 8 <= end) {
    let size = buf.readUInt32BE(pos);
    const type = fourcc(buf, pos + 4);
    let header = 8;
    if (size === 1) {
      if (pos + 16 > end) return;
      size = Number(buf.readBigUInt64BE(pos + 8));
      header = 16;
    } else if (size === 0) {
      size = end - pos;
    }
    if (size < header || pos + size > end) return;
    yield { type, start: pos + header, end: pos + size };
    pos += size;
  }
}

function child(buf: Buffer, parent: Box, type: string): Box | undefined {
  for (const b of boxes(buf, parent.start, parent.end)) if (b.type === type) return b;
  return undefined;
}

function path(buf: Buffer, parent: Box, ...types: string[]): Box | undefined {
  let cur: Box | undefined = parent;
  for (const t of types) {
    if (!cur) return undefined;
    cur = child(buf, cur, t);
  }
  return cur;
}

interface Track {
  handler?: string;
  width?: number;
  height?: number;
  duration?: number;
  codec?: string;
  sampleRate?: number;
  channels?: number;
  bitsPerSample?: number;
}

export async function readIsoBmff(r: RandomReader): Promise<ContainerInfo | undefined> {
  let pos = 0;
  let brand: string | undefined;
  let moov: Buffer | undefined;
  for (let i = 0; i < MAX_TOP_LEVEL_BOXES && pos + 8 <= r.size; i++) {
    const h = await r.read(pos, 16);
    if (h.length < 8) break;
    let size = h.readUInt32BE(0);
    const type = fourcc(h, 4);
    let header = 8;
    if (i === 0 && !TOP_LEVEL_TYPES.has(type)) return undefined;
    if (size === 1) {
      if (h.length < 16) break;
      size = Number(h.readBigUInt64BE(8));
      header = 16;
    } else if (size === 0) {
      size = r.size - pos;
    }
    if (size < header) break; // corrupt
    if (type === 'ftyp') {
      const b = await r.read(pos + header, 4);
      if (b.length === 4) brand = fourcc(b, 0);
    } else if (type === 'moov') {
      const len = Math.min(size - header, r.size - pos - header);
      if (len > MAX_MOOV) break;
      moov = await r.read(pos + header, len);
      break;
    }
    pos += size;
  }
  const container = brand === 'qt  ' ? 'mov' : brand?.startsWith('3g') ? '3gp' : 'mp4';
  if (!moov) return brand ? { container } : undefined;
  return { container, ...parseMoov(moov) };
}

function parseMoov(buf: Buffer): Omit<ContainerInfo, 'container'> {
  const root: Box = { type: 'moov', start: 0, end: buf.length };
  const out: Omit<ContainerInfo, 'container'> = {};
  let timescale = 0;
  const mvhd = child(buf, root, 'mvhd');
  if (mvhd && mvhd.end - mvhd.start >= 20) {
    const v = buf[mvhd.start];
    let dur: number;
    if (v === 1 && mvhd.end - mvhd.start >= 32) {
      timescale = buf.readUInt32BE(mvhd.start + 20);
      dur = Number(buf.readBigUInt64BE(mvhd.start + 24));
    } else {
      timescale = buf.readUInt32BE(mvhd.start + 12);
      dur = buf.readUInt32BE(mvhd.start + 16);
    }
    if (timescale > 0 && dur > 0 && dur !== 0xffffffff) out.duration = dur / timescale;
  }
  // Fragmented MP4: movie duration lives in mvex/mehd.
  const mehd = path(buf, root, 'mvex', 'mehd');
  if (!out.duration && mehd && timescale > 0 && mehd.end - mehd.start >= 8) {
    const v = buf[mehd.start];
    const dur = v === 1 && mehd.end - mehd.start >= 12 ? Number(buf.readBigUInt64BE(mehd.start + 4)) : buf.readUInt32BE(mehd.start + 4);
    if (dur > 0) out.duration = dur / timescale;
  }
  const tracks: Track[] = [];
  for (const b of boxes(buf, root.start, root.end)) if (b.type === 'trak') tracks.push(parseTrak(buf, b));
  const video = tracks.find((t) => t.handler === 'vide');
  const audio = tracks.find((t) => t.handler === 'soun');
  if (video) {
    if (video.width) out.width = video.width;
    if (video.height) out.height = video.height;
    if (video.codec) out.videoCodec = video.codec;
  }
  if (audio) {
    if (audio.codec) out.audioCodec = audio.codec;
    if (audio.sampleRate) out.sampleRate = audio.sampleRate;
    if (audio.channels) out.channels = audio.channels;
    if (audio.bitsPerSample) out.bitsPerSample = audio.bitsPerSample;
  }
  if (!out.duration) {
    const d = Math.max(0, ...tracks.map((t) => t.duration ?? 0));
    if (d > 0) out.duration = d;
  }
  return out;
}

function parseTrak(buf: Buffer, trak: Box): Track {
  const t: Track = {};
  const tkhd = child(buf, trak, 'tkhd');
  if (tkhd) {
    const v = buf[tkhd.start];
    const off = tkhd.start + (v === 1 ? 88 : 76);
    if (off + 8 <= tkhd.end) {
      const w = Math.round(buf.readUInt32BE(off) / 65536);
      const h = Math.round(buf.readUInt32BE(off + 4) / 65536);
      if (w > 0 && h > 0) {
        t.width = w;
        t.height = h;
      }
    }
  }
  const mdia = child(buf, trak, 'mdia');
  if (!mdia) return t;
  const hdlr = child(buf, mdia, 'hdlr');
  if (hdlr && hdlr.start + 12 <= hdlr.end) t.handler = fourcc(buf, hdlr.start + 8);
  const mdhd = child(buf, mdia, 'mdhd');
  if (mdhd) {
    const v = buf[mdhd.start];
    let ts = 0;
    let dur = 0;
    if (v === 1 && mdhd.start + 32 <= mdhd.end) {
      ts = buf.readUInt32BE(mdhd.start + 20);
      dur = Number(buf.readBigUInt64BE(mdhd.start + 24));
    } else if (mdhd.start + 20 <= mdhd.end) {
      ts = buf.readUInt32BE(mdhd.start + 12);
      dur = buf.readUInt32BE(mdhd.start + 16);
    }
    if (ts > 0 && dur > 0 && dur !== 0xffffffff) t.duration = dur / ts;
  }
  const stsd = path(buf, mdia, 'minf', 'stbl', 'stsd');
  if (stsd && stsd.start + 16 <= stsd.end) {
    // First sample entry follows version/flags and entry_count.
    const entries = [...boxes(buf, stsd.start + 8, stsd.end)];
    const e = entries[0];
    if (e) {
      if (t.handler === 'vide') parseVisualEntry(buf, e, t);
      else if (t.handler === 'soun') parseAudioEntry(buf, e, t);
    }
  }
  return t;
}

const VIDEO_FOURCC: Record<string, string> = {
  avc1: 'h264', avc2: 'h264', avc3: 'h264', avc4: 'h264',
  hvc1: 'hevc', hev1: 'hevc',
  mp4v: 'mpeg4', vp08: 'vp8', vp09: 'vp9', av01: 'av1',
  jpeg: 'mjpeg', mjpa: 'mjpeg', mjpb: 'mjpeg',
  s263: 'h263', h263: 'h263',
  apcn: 'prores', apch: 'prores', apcs: 'prores', apco: 'prores', ap4h: 'prores', ap4x: 'prores',
  'mp2v': 'mpeg2video', xdvd: 'mpeg2video', 'hdv2': 'mpeg2video', 'hdv3': 'mpeg2video',
  dvc: 'dvvideo', 'dvcp': 'dvvideo', 'dvpp': 'dvvideo',
};

function parseVisualEntry(buf: Buffer, e: Box, t: Track): void {
  const type = e.type;
  let name = VIDEO_FOURCC[type] ?? type.trim().toLowerCase();
  // VisualSampleEntry: 8 bytes SampleEntry, 16 pre_defined/reserved, width@24, height@26 (payload-relative).
  if (e.start + 78 <= e.end) {
    const w = buf.readUInt16BE(e.start + 24);
    const h = buf.readUInt16BE(e.start + 26);
    // the coded size (as ffprobe reports it, and as DLNA profiles count it) wins over the track
    // header's display size, which differs for anamorphic video
    if (w > 0 && h > 0) {
      t.width = w;
      t.height = h;
    }
  }
  let profile: string | undefined;
  let level: string | undefined;
  const childStart = e.start + 78;
  if (childStart <= e.end) {
    for (const b of boxes(buf, childStart, e.end)) {
      if (b.type === 'avcC' && b.start + 4 <= b.end) {
        profile = h264ProfileName(buf[b.start + 1], buf[b.start + 2]);
        level = h264LevelName(buf[b.start + 3]);
      } else if (b.type === 'hvcC' && b.start + 13 <= b.end) {
        const p = buf[b.start + 1] & 0x1f;
        profile = p === 1 ? 'main' : p === 2 ? 'main 10' : p === 3 ? 'main still picture' : undefined;
        const l = buf[b.start + 12];
        if (l) level = String(l / 30);
      } else if (b.type === 'esds' && type === 'mp4v') {
        const oti = esdsObjectType(buf, b);
        if (oti !== undefined && oti.oti >= 0x60 && oti.oti <= 0x65) name = 'mpeg2video';
        else if (oti?.oti === 0x6a) name = 'mpeg1video';
      }
    }
  }
  t.codec = formatCodec({ name, profile, level });
}

const AUDIO_FOURCC: Record<string, string> = {
  mp4a: 'aac', 'ac-3': 'ac3', 'ec-3': 'eac3', alac: 'alac', Opus: 'opus', fLaC: 'flac',
  '.mp3': 'mp3', samr: 'amr_nb', sawb: 'amr_wb', sowt: 'pcm_s16le', twos: 'pcm_s16be',
  in24: 'pcm_s24be', in32: 'pcm_s32be', fl32: 'pcm_f32be', lpcm: 'pcm', ulaw: 'pcm_mulaw', alaw: 'pcm_alaw',
  'dtsc': 'dts', 'dtsh': 'dts', 'dtsl': 'dts', 'mlpa': 'truehd',
};

function parseAudioEntry(buf: Buffer, e: Box, t: Track): void {
  // AudioSampleEntry: 8 bytes SampleEntry; QuickTime version@8; channels@16, samplesize@18, samplerate(16.16)@24.
  if (e.start + 28 > e.end) return;
  const qtVersion = buf.readUInt16BE(e.start + 8);
  const channels = buf.readUInt16BE(e.start + 16);
  const bits = buf.readUInt16BE(e.start + 18);
  const rate = buf.readUInt32BE(e.start + 24) >>> 16;
  if (channels > 0) t.channels = channels;
  if (rate > 0) t.sampleRate = rate;
  let name = AUDIO_FOURCC[e.type] ?? e.type.trim().toLowerCase();
  if ((name.startsWith('pcm') || name === 'alac') && bits > 0) t.bitsPerSample = bits;
  let profile: string | undefined;
  const childStart = e.start + 28 + (qtVersion === 1 ? 16 : qtVersion === 2 ? 36 : 0);
  let esds: Box | undefined;
  if (childStart <= e.end) {
    for (const b of boxes(buf, childStart, e.end)) {
      if (b.type === 'esds') esds = b;
      else if (b.type === 'wave') esds = child(buf, b, 'esds') ?? esds; // QuickTime wraps esds in 'wave'
    }
  }
  if (e.type === 'mp4a' && esds) {
    const info = esdsObjectType(buf, esds);
    if (info) {
      if (info.oti === 0x69 || info.oti === 0x6b) name = 'mp3';
      else if (info.oti === 0x40 || (info.oti >= 0x66 && info.oti <= 0x68)) {
        name = 'aac';
        if (info.aot !== undefined) profile = aacProfileName(info.aot);
        if (info.sampleRate && !t.sampleRate) t.sampleRate = info.sampleRate;
        // The AudioSpecificConfig is authoritative for channels (writers often put 2 in the sample entry),
        // except with parametric stereo (HE-AACv2), which signals 1 channel but decodes to 2.
        if (info.channels && info.aot !== 29) t.channels = info.channels;
      } else if (info.oti === 0xa5) name = 'ac3';
    }
  }
  t.codec = formatCodec({ name, profile });
}

const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/** objectTypeIndication (and for MPEG-4 audio: the audio object type) from an esds box. */
function esdsObjectType(buf: Buffer, esds: Box): { oti: number; aot?: number; sampleRate?: number; channels?: number } | undefined {
  let pos = esds.start + 4; // version/flags
  const end = esds.end;
  const readDescr = (): { tag: number; len: number; start: number } | undefined => {
    if (pos + 2 > end) return undefined;
    const tag = buf[pos++];
    let len = 0;
    for (let i = 0; i < 4 && pos < end; i++) {
      const b = buf[pos++];
      len = (len << 7) | (b & 0x7f);
      if (!(b & 0x80)) break;
    }
    return { tag, len, start: pos };
  };
  const es = readDescr();
  if (!es || es.tag !== 0x03) return undefined;
  if (pos + 3 > end) return undefined;
  pos += 2; // ES_ID
  const flags = buf[pos++];
  if (flags & 0x80) pos += 2; // dependsOn_ES_ID
  if (flags & 0x40) pos += 1 + (buf[pos] ?? 0); // URL
  if (flags & 0x20) pos += 2; // OCR_ES_Id
  const dc = readDescr();
  if (!dc || dc.tag !== 0x04 || pos + 13 > end) return undefined;
  const oti = buf[pos];
  pos += 13;
  const out: { oti: number; aot?: number; sampleRate?: number; channels?: number } = { oti };
  const dsi = readDescr();
  if (dsi && dsi.tag === 0x05 && pos + 2 <= end) {
    // AudioSpecificConfig: 5 bits object type (31 = escape + 6 bits), 4 bits frequency index, 4 bits channel config.
    const four = Buffer.alloc(4);
    buf.copy(four, 0, pos, Math.min(end, pos + 4));
    const bits = four.readUInt32BE(0);
    let aot = bits >>> 27;
    let shift = 27;
    if (aot === 31) {
      aot = 32 + ((bits >>> 21) & 0x3f);
      shift = 21;
    }
    out.aot = aot;
    const fi = (bits >>> (shift - 4)) & 0xf;
    const ch = (bits >>> (shift - 8)) & 0xf;
    if (fi < AAC_RATES.length) out.sampleRate = AAC_RATES[fi];
    if (ch > 0 && ch < 8) out.channels = ch === 7 ? 8 : ch;
  }
  return out;
}
