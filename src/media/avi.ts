// AVI (RIFF) header reader: avih, strh/strf of the first video and audio stream, OpenDML dmlh,
// INFO/INAM title. (The MJPEG + PCM writer of the demo library is src/demo/avi-writer.ts.)

import { fourccToCodec } from './ebml.js';
import { type ContainerInfo, fourcc, RandomReader } from './filereader.js';

const MAX_HDRL = 1024 * 1024;
const MAX_TOP_LEVEL_CHUNKS = 64;

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
