// The bench library's files: PCM WAV (8-bit mono) whose sample rate is the item's byte rate
// scaled down by the time compression, so that the server's own probe reads the modelled
// duration and a bitrate (bytes/s) that is the modelled one divided by the compression.

import { open } from 'node:fs/promises';

/** A WAV file of `seconds` at `byteRate` bytes per second (≥ 1): 44-byte header + data. */
export async function writeWav(path: string, byteRate: number, seconds: number): Promise<number> {
  const rate = Math.max(1, Math.round(byteRate));
  const data = Math.max(1, Math.round(rate * seconds));
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + data, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24); // sample rate
  h.writeUInt32LE(rate, 28); // byte rate
  h.writeUInt16LE(1, 32); // block align
  h.writeUInt16LE(8, 34); // bits per sample
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(data, 40);
  // bytes that differ along the file (a byte-exact check would catch a misplaced range)
  const body = Buffer.alloc(data);
  for (let i = 0; i < data; i++) body[i] = (i * 31 + (i >> 8)) & 0xff;
  const f = await open(path, 'w');
  try {
    await f.write(h);
    await f.write(body);
  } finally {
    await f.close();
  }
  return 44 + data;
}
