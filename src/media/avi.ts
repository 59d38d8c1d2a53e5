// AVI (RIFF) support: a small header reader (avih, strh/strf of the first
// video and audio stream, OpenDML dmlh, INFO/INAM title) and a writer for
// MJPEG + PCM AVI files used by the demo library generator.

import { fourccToCodec } from './ebml.js';
import { type ContainerInfo, fourcc, RandomReader, withReader } from './filereader.js';

const MAX_HDRL = 1024 * 1024;
const MAX_TOP_LEVEL_CHUNKS = 64;

export function parseAviFile(path: string): Promise<ContainerInfo | undefined> {
  return withReader(path, readAvi);
}

interface Chunk {
  id: string;
  listType?: string; // for LIST/RIFF chunks
  start: number; // data start (after id+size, and after the list type for lists)
  end: number;
}

function* chunks(buf: Buffer, start: number, end: number): Generator<Chunk> {
  let pos = start;
  while (pos + 8 <= end) {
    const id = fourcc(buf, pos);
    const size = buf.readUInt32LE(pos + 4);
    const dataEnd = Math.min(end, pos + 8 + size);
    if (id === 'LIST' && pos + 12 <= end) yield { id, listType: fourcc(buf, pos + 8), start: pos + 12, end: dataEnd };
    else yield { id, start: pos + 8, end: dataEnd };
    pos += 8 + size + (size & 1);
  }
}

/** WAVEFORMATEX wFormatTag → FFmpeg codec name. */
function audioCodecOfTag(tag: number, bits: number): string {
  switch (tag) {
    case 0x0001:
      return bits === 8 ? 'pcm_u8' : `pcm_s${bits || 16}le`;
    case 0x0003:
      return bits === 64 ? 'pcm_f64le' : 'pcm_f32le';
    case 0x0006:
      return 'pcm_alaw';
    case 0x0007:
      return 'pcm_mulaw';
    case 0x0050:
      return 'mp2';
    case 0x0055:
      return 'mp3';
    case 0x00ff:
    case 0x1610:
    case 0x706d:
      return 'aac';
    case 0x0161:
      return 'wmav2';
    case 0x2000:
      return 'ac3';
    case 0x2001:
      return 'dts';
    case 0xfffe:
      return bits ? `pcm_s${bits}le` : 'pcm'; // WAVE_FORMAT_EXTENSIBLE, usually PCM
    default:
      return `0x${tag.toString(16).padStart(4, '0')}`;
  }
}

export async function readAvi(r: RandomReader): Promise<ContainerInfo | undefined> {
  const head = await r.read(0, 12);
  if (head.length < 12 || fourcc(head, 0) !== 'RIFF' || fourcc(head, 8) !== 'AVI ') return undefined;
  const out: ContainerInfo = { container: 'avi' };
  let pos = 12;
  let hdrl: Buffer | undefined;
  for (let i = 0; i < MAX_TOP_LEVEL_CHUNKS && pos + 8 <= r.size; i++) {
    const h = await r.read(pos, 12);
    if (h.length < 8) break;
    const id = fourcc(h, 0);
    const size = h.readUInt32LE(4);
    if (id === 'LIST' && h.length >= 12) {
      const type = fourcc(h, 8);
      if (type === 'hdrl' && size <= MAX_HDRL) hdrl = await r.read(pos + 12, size - 4);
      else if (type === 'INFO' && size <= MAX_HDRL) {
        const info = await r.read(pos + 12, size - 4);
        for (const c of chunks(info, 0, info.length)) {
          if (c.id === 'INAM') {
            const t = info.toString('utf8', c.start, c.end).replace(/\0+$/, '').trim();
            if (t) out.title = t;
          }
        }
      } else if (type === 'movi' && hdrl) {
        break; // headers come before the media data
      }
    }
    pos += 8 + size + (size & 1);
  }
  if (!hdrl) return out;

  let usPerFrame = 0;
  let totalFrames = 0;
  let odmlFrames = 0;
  let videoDuration: number | undefined;
  let audioDuration: number | undefined;
  for (const c of chunks(hdrl, 0, hdrl.length)) {
    if (c.id === 'avih' && c.end - c.start >= 40) {
      usPerFrame = hdrl.readUInt32LE(c.start);
      totalFrames = hdrl.readUInt32LE(c.start + 16);
      const w = hdrl.readUInt32LE(c.start + 32);
      const hgt = hdrl.readUInt32LE(c.start + 36);
      if (w > 0 && hgt > 0) {
        out.width = w;
        out.height = hgt;
      }
    } else if (c.id === 'LIST' && c.listType === 'odml') {
      for (const d of chunks(hdrl, c.start, c.end)) {
        if (d.id === 'dmlh' && d.end - d.start >= 4) odmlFrames = hdrl.readUInt32LE(d.start);
      }
    } else if (c.id === 'LIST' && c.listType === 'strl') {
      let strh: Chunk | undefined;
      let strf: Chunk | undefined;
      for (const d of chunks(hdrl, c.start, c.end)) {
        if (d.id === 'strh') strh = d;
        else if (d.id === 'strf') strf = d;
      }
      if (!strh || strh.end - strh.start < 36) continue;
      const type = fourcc(hdrl, strh.start);
      const handler = fourcc(hdrl, strh.start + 4);
      const scale = hdrl.readUInt32LE(strh.start + 20);
      const rate = hdrl.readUInt32LE(strh.start + 24);
      const length = hdrl.readUInt32LE(strh.start + 32);
      const dur = scale > 0 && rate > 0 && length > 0 ? (length * scale) / rate : undefined;
      if (type === 'vids' && !out.videoCodec) {
        let fcc = handler;
        if (strf && strf.end - strf.start >= 20) {
          const compression = fourcc(hdrl, strf.start + 16);
          if (compression.replace(/\0/g, '').trim()) fcc = compression;
          if (!out.width) {
            const w = hdrl.readInt32LE(strf.start + 4);
            const hgt = Math.abs(hdrl.readInt32LE(strf.start + 8));
            if (w > 0 && hgt > 0) {
              out.width = w;
              out.height = hgt;
            }
          }
        }
        out.videoCodec = fourccToCodec(fcc);
        videoDuration = dur;
      } else if (type === 'auds' && !out.audioCodec && strf && strf.end - strf.start >= 16) {
        const tag = hdrl.readUInt16LE(strf.start);
        const channels = hdrl.readUInt16LE(strf.start + 2);
        const rateHz = hdrl.readUInt32LE(strf.start + 4);
        const bits = hdrl.readUInt16LE(strf.start + 14);
        out.audioCodec = audioCodecOfTag(tag, bits);
        if (channels) out.channels = channels;
        if (rateHz) out.sampleRate = rateHz;
        if (out.audioCodec.startsWith('pcm') && bits) out.bitsPerSample = bits;
        audioDuration = dur;
      }
    }
  }
  // strh.dwLength covers the whole stream (also in OpenDML files); avih.dwTotalFrames only the first RIFF.
  if (videoDuration) out.duration = videoDuration;
  else if (usPerFrame && (odmlFrames || totalFrames)) out.duration = ((odmlFrames || totalFrames) * usPerFrame) / 1e6;
  else if (audioDuration) out.duration = audioDuration;
  return out;
}

// ---------------------------------------------------------------------------
// Writer

export interface AviAudio {
  sampleRate: number;
  channels: number;
  /** Interleaved signed 16-bit little-endian PCM for the whole clip. */
  pcm: Int16Array;
}

export interface MjpegAviInput {
  width: number;
  height: number;
  fps: number;
  frames: Buffer[]; // JPEG images (baseline, 4:2:0 or 4:4:4)
  audio?: AviAudio;
  title?: string;
}

function chunk(id: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(id, 0, 'latin1');
  head.writeUInt32LE(data.length, 4);
  return data.length & 1 ? Buffer.concat([head, data, Buffer.alloc(1)]) : Buffer.concat([head, data]);
}

function list(type: string, parts: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), ...parts]);
  return chunk('LIST', body);
}

/** Builds an interleaved MJPEG (+ PCM) AVI with an idx1 index. */
export function writeMjpegAvi(input: MjpegAviInput): Buffer {
  const { width, height, fps, frames, audio } = input;
  if (!(fps > 0) || frames.length === 0) throw new Error('writeMjpegAvi: need fps > 0 and at least one frame');
  const nFrames = frames.length;
  const maxFrame = Math.max(...frames.map((f) => f.length));
  const blockAlign = audio ? audio.channels * 2 : 0;
  const samplesTotal = audio ? Math.floor(audio.pcm.length / audio.channels) : 0;

  // Split audio into one chunk per video frame.
  const audioChunks: Buffer[] = [];
  if (audio) {
    for (let i = 0; i < nFrames; i++) {
      const s0 = Math.round((i * samplesTotal) / nFrames);
      const s1 = Math.round(((i + 1) * samplesTotal) / nFrames);
      const pcm = audio.pcm.subarray(s0 * audio.channels, s1 * audio.channels);
      audioChunks.push(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    }
  }
  const maxAudio = audioChunks.length ? Math.max(...audioChunks.map((c) => c.length)) : 0;
  const streams = audio ? 2 : 1;

  const avih = Buffer.alloc(56);
  avih.writeUInt32LE(Math.round(1e6 / fps), 0); // dwMicroSecPerFrame
  avih.writeUInt32LE(Math.ceil((maxFrame + maxAudio) * fps), 4); // dwMaxBytesPerSec
  avih.writeUInt32LE(0, 8); // dwPaddingGranularity
  avih.writeUInt32LE(0x10 | (audio ? 0x100 : 0), 12); // AVIF_HASINDEX | AVIF_ISINTERLEAVED
  avih.writeUInt32LE(nFrames, 16); // dwTotalFrames
  avih.writeUInt32LE(0, 20); // dwInitialFrames
  avih.writeUInt32LE(streams, 24);
  avih.writeUInt32LE(maxFrame + maxAudio + 16, 28); // dwSuggestedBufferSize
  avih.writeUInt32LE(width, 32);
  avih.writeUInt32LE(height, 36);

  // Frame rate as rate/scale; keep integer fps exact.
  const scale = Number.isInteger(fps) ? 1 : 1000;
  const rate = Math.round(fps * scale);

  const vstrh = Buffer.alloc(56);
  vstrh.write('vids', 0, 'latin1');
  vstrh.write('MJPG', 4, 'latin1');
  vstrh.writeUInt32LE(scale, 20);
  vstrh.writeUInt32LE(rate, 24);
  vstrh.writeUInt32LE(nFrames, 32); // dwLength
  vstrh.writeUInt32LE(maxFrame, 36); // dwSuggestedBufferSize
  vstrh.writeInt32LE(-1, 40); // dwQuality: default
  vstrh.writeInt16LE(width, 52); // rcFrame right
  vstrh.writeInt16LE(height, 54); // rcFrame bottom

  const vstrf = Buffer.alloc(40); // BITMAPINFOHEADER
  vstrf.writeUInt32LE(40, 0);
  vstrf.writeInt32LE(width, 4);
  vstrf.writeInt32LE(height, 8);
  vstrf.writeUInt16LE(1, 12); // planes
  vstrf.writeUInt16LE(24, 14); // bit count
  vstrf.write('MJPG', 16, 'latin1');
  vstrf.writeUInt32LE(width * height * 3, 20); // biSizeImage

  const strls = [list('strl', [chunk('strh', vstrh), chunk('strf', vstrf)])];
  if (audio) {
    const astrh = Buffer.alloc(56);
    astrh.write('auds', 0, 'latin1');
    astrh.writeUInt32LE(1, 20); // dwScale
    astrh.writeUInt32LE(audio.sampleRate, 24); // dwRate: samples per second
    astrh.writeUInt32LE(samplesTotal, 32); // dwLength in samples
    astrh.writeUInt32LE(maxAudio, 36);
    astrh.writeInt32LE(-1, 40);
    astrh.writeUInt32LE(blockAlign, 44); // dwSampleSize
    const astrf = Buffer.alloc(18); // WAVEFORMATEX
    astrf.writeUInt16LE(1, 0); // WAVE_FORMAT_PCM
    astrf.writeUInt16LE(audio.channels, 2);
    astrf.writeUInt32LE(audio.sampleRate, 4);
    astrf.writeUInt32LE(audio.sampleRate * blockAlign, 8);
    astrf.writeUInt16LE(blockAlign, 12);
    astrf.writeUInt16LE(16, 14);
    astrf.writeUInt16LE(0, 16); // cbSize
    strls.push(list('strl', [chunk('strh', astrh), chunk('strf', astrf)]));
  }
  const hdrl = list('hdrl', [chunk('avih', avih), ...strls]);
  const infoParts = [chunk('ISFT', Buffer.from('Tapedeck demo generator\0', 'utf8'))];
  if (input.title) infoParts.unshift(chunk('INAM', Buffer.from(`${input.title}\0`, 'utf8')));
  const info = list('INFO', infoParts);

  // movi: frames interleaved with audio; idx1 offsets are relative to the 'movi' fourcc.
  const moviParts: Buffer[] = [];
  const index: Buffer[] = [];
  let offset = 4; // first chunk follows the 'movi' fourcc
  const add = (id: string, data: Buffer, keyframe: boolean): void => {
    const c = chunk(id, data);
    const e = Buffer.alloc(16);
    e.write(id, 0, 'latin1');
    e.writeUInt32LE(keyframe ? 0x10 : 0, 4); // AVIIF_KEYFRAME
    e.writeUInt32LE(offset, 8);
    e.writeUInt32LE(data.length, 12);
    index.push(e);
    moviParts.push(c);
    offset += c.length;
  };
  for (let i = 0; i < nFrames; i++) {
    if (audio) add('01wb', audioChunks[i], true);
    add('00dc', frames[i], true);
  }
  const movi = list('movi', moviParts);
  const idx1 = chunk('idx1', Buffer.concat(index));
  const body = Buffer.concat([Buffer.from('AVI ', 'latin1'), hdrl, info, movi, idx1]);
  return chunk('RIFF', body);
}
