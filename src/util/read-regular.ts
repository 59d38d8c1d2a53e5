// Reading a small file found in a media directory (a sidecar subtitle, a folder picture) without
// following a symbolic link put at its name since it was looked at. Checking with lstat() and
// then reading the path follows a link swapped in between: anyone who may write to a share could
// have any file the server may read copied into the data directory and served to every client.
// Here the one open(2) refuses a link (O_NOFOLLOW), does not wait for a named pipe's writer
// (O_NONBLOCK), and what is read is what fstat(2) on that descriptor says is a regular file.
// The media prober (media/probe.ts, media/filereader.ts) and hashFile open media files the same
// way (openRegular): the walk skips links, so a link, pipe or device at the name came later.

import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Flags of the one open(2) used here: no link at the last component, no wait for a pipe's writer. */
export const REGULAR_OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function notRegular(path: string): Error {
  return Object.assign(new Error(`not a regular file: ${path}`), { code: 'ENOTREG' });
}

/**
 * A handle on the regular file at `path` and its fstat(2), for reads of a media file the walk
 * found (its walk skips links): a link, a named pipe or a device put at the name since then is
 * refused (ELOOP, or an error with code 'ENOTREG') instead of being read or waited on.
 */
export async function openRegular(path: string): Promise<{ fh: FileHandle; size: number; mtimeMs: number }> {
  const fh = await open(path, REGULAR_OPEN_FLAGS);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(path);
    return { fh, size: st.size, mtimeMs: st.mtimeMs };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** openRegular with blocking calls (a probe worker thread): the descriptor and its size. */
export function openRegularSync(path: string): { fd: number; size: number } {
  const fd = openSync(path, REGULAR_OPEN_FLAGS);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(path);
    return { fd, size: st.size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** The first `size` bytes of an open file (fewer where it ends sooner: shortened since its fstat). */
export async function readHead(fh: FileHandle, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafeSlow(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await fh.read(buf, got, size - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === size ? buf : buf.subarray(0, got);
}

/** The bytes (at most `maxBytes`) and mtime of the regular file at `path`, or undefined: a link, not a regular file, larger, unreadable. */
export async function readRegularFile(path: string, maxBytes: number): Promise<{ data: Buffer; mtimeMs: number } | undefined> {
  let file: Awaited<ReturnType<typeof openRegular>>;
  try {
    file = await openRegular(path);
  } catch {
    return undefined;
  }
  try {
    if (file.size > maxBytes) return undefined;
    return { data: await readHead(file.fh, file.size), mtimeMs: file.mtimeMs };
  } catch {
    return undefined;
  } finally {
    await file.fh.close().catch(() => undefined);
  }
}
