// Reading a small file found in a media directory (a sidecar subtitle, a folder picture) without
// following a symbolic link put at its name since it was looked at. Checking with lstat() and
// then reading the path follows a link swapped in between: anyone who may write to a share could
// have any file the server may read copied into the data directory and served to every client.
// Here the one open(2) refuses a link (O_NOFOLLOW), does not wait for a named pipe's writer
// (O_NONBLOCK), and what is read is what fstat(2) on that descriptor says is a regular file.

import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** The bytes (at most `maxBytes`) and mtime of the regular file at `path`, or undefined: a link, not a regular file, larger, unreadable. */
export async function readRegularFile(path: string, maxBytes: number): Promise<{ data: Buffer; mtimeMs: number } | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > maxBytes) return undefined;
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break; // shortened since the fstat: what is there
      got += bytesRead;
    }
    return { data: buf.subarray(0, got), mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  } finally {
    await fh.close().catch(() => undefined);
  }
}
