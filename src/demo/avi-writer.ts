// AVI (RIFF) writer for the demo library: an interleaved MJPEG + PCM AVI with an idx1 index,
// which the scanner's reader (src/media/avi.ts) and ffmpeg read back.

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
