// Bounded random-access reads for the container parsers: they read headers at
// known offsets and never load a whole media file.

import type { FileHandle } from 'node:fs/promises';
import { openRegular } from '../util/read-regular.js';

export class RandomReader {
  private constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  /** The regular file at `path` (util/read-regular.ts: a link, pipe or device put there is refused, not waited on). */
  static async open(path: string): Promise<RandomReader> {
    const { fh, size } = await openRegular(path);
    return new RandomReader(fh, size);
  }

  /** Up to `len` bytes at `pos` (fewer at end of file, empty beyond it). */
  async read(pos: number, len: number): Promise<Buffer> {
    if (pos < 0 || pos >= this.size || len <= 0) return Buffer.alloc(0);
    const n = Math.min(len, this.size - pos);
    const buf = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fh.read(buf, got, n - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === n ? buf : buf.subarray(0, got);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Opens `path`, runs `fn`, always closes the file. */
export async function withReader<T>(path: string, fn: (r: RandomReader) => Promise<T>): Promise<T> {
  const r = await RandomReader.open(path);
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}

/** What a container parser found out about a video file. All fields optional except container. */
export interface ContainerInfo {
  container: string;
  duration?: number; // seconds
  width?: number;
  height?: number;
  videoCodec?: string; // codec string, see mediatypes.ts
  audioCodec?: string;
  sampleRate?: number;
  channels?: number;
  bitsPerSample?: number;
  title?: string;
}

export function fourcc(buf: Buffer, off: number): string {
  return buf.toString('latin1', off, off + 4);
}
