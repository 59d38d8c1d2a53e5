// A byte range of an open file written straight to an HTTP response: the disk half of media
// delivery (http/delivery.ts), where a TV streaming a film spends its server's CPU.
//
// Why not `createReadStream(...).pipe(res)`: a file stream allocates a fresh buffer for every
// read, and a fresh multi-hundred-KiB allocation is fresh memory the kernel has to fault in and
// zero, page by page, on every chunk; a Transform to count bytes added a copy of the stream
// machinery per chunk. Here a response owns at most FILE_BUFFERS buffers, reads the file into
// them with fs.read at explicit positions and hands each one to `res.write`; a buffer is read
// into again only once its write callback says the socket took it. That is also the
// backpressure: with every buffer waiting for the socket, no read is issued, so a client
// holds at most FILE_BUFFERS buffers of memory (plus the kernel's socket buffer); their size below.
//
// Sizes: the first buffer is FILE_FIRST_CHUNK (the first byte of a seek does not wait for a big
// read), each new one 4× the last up to FILE_CHUNK_SLOW (1 MiB); a buffer outgrown by the ramp
// is dropped when it comes back. Only a client that drains faster than any LAN player can
// (FAST_BYTES_PER_MS, i.e. 256 MB/s: a local copy, a 10 GbE backup) after the first
// RAMP_AFTER bytes (past what the kernel's send buffer absorbs at memory speed) gets
// FILE_CHUNK (4 MiB) buffers: fewer reads, wake-ups and socket writes per GB (about a fifth
// less server CPU per GB than 1 MiB reads in the lab bench). A TV streaming at its bitrate, or
// paused, holds at most FILE_BUFFERS × 1 MiB; a fast client that slows down goes back to 1 MiB
// buffers as its big ones come back.
//
// Memory across clients: every response's buffers count against FILE_BUFFER_BUDGET for the
// process. Past it (many stalled or paused clients: a flood of GETs that never read, or a house
// full of paused players), a response gets no second buffer and no bigger one, and a new response
// starts with one of at most FILE_MIN_CHUNK: it still streams, with smaller reads, and the
// server's memory stays bounded by the budget plus FILE_MIN_CHUNK per connection.
//
// Ending:
// - all bytes written: res.end(), then the file is closed;
// - the client goes (res 'close' before 'finish'): no further read is issued, and the file is
//   closed as soon as no read is in flight (never under a pending read, whose descriptor could
//   otherwise be reused by another open meanwhile);
// - a read fails or the file is shorter than its catalogued size (truncated since the scan):
//   the connection is destroyed (with or without headers sent, as Koa does when a body stream
//   fails), so the client sees a cut body rather than a short or wrong one; `done` carries the
//   error for the log (the response is destroyed without it, so it is reported once).

import { read } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

/** Largest read (and socket write), for a client that drains faster than a LAN player. */
export const FILE_CHUNK = 4 * 1024 * 1024;
/** Largest read for every other client (what a slow or paused client can hold per buffer). */
export const FILE_CHUNK_SLOW = 1024 * 1024;
/** Bytes written before a client's drain rate is trusted (the send buffer fills at memory speed). */
export const RAMP_AFTER = 8 * 1024 * 1024;
/** Drain rate (bytes per ms) of a write of ≥ FILE_CHUNK_SLOW that counts as fast: 256 MB/s. */
export const FAST_BYTES_PER_MS = 256 * 1024;
/** First read of a body. */
export const FILE_FIRST_CHUNK = 256 * 1024;
/** Buffers per response: one can be filled from the file while the other drains to the socket. */
export const FILE_BUFFERS = 2;
/** Buffer bytes all responses of the process hold together before they stop growing (see above). */
export const FILE_BUFFER_BUDGET = 64 * 1024 * 1024;
/** The one buffer of a response that starts while the budget is spent. */
export const FILE_MIN_CHUNK = 64 * 1024;

let budget = FILE_BUFFER_BUDGET;
let heldTotal = 0;
/** Buffer bytes held by every response of the process now (tests, diagnostics). */
export function fileBufferBytes(): number {
  return heldTotal;
}
/** Sets the process's buffer budget (tests); returns the previous one. */
export function setFileBufferBudget(bytes: number): number {
  const was = budget;
  budget = bytes;
  return was;
}

export interface FileBody {
  /** Bytes handed to the response so far. */
  readonly bytes: number;
  /**
   * Settles when the file is closed: whether every byte went to the socket, and the error of a
   * failed read (the connection is already cut then).
   */
  readonly done: Promise<{ complete: boolean; error?: Error }>;
}

/**
 * Writes bytes [start, start + length) of `fh` to `res` (status and headers already set) and
 * closes `fh` when done. The first write happens after the first read completes, i.e. after
 * the current tick: whatever the caller still sets on `res` synchronously goes out with it.
 */
export function writeFileBody(res: ServerResponse, fh: FileHandle, start: number, length: number): FileBody {
  const end = start + length;
  let pos = start; // next byte to read
  const free: Buffer[] = [];
  let held = 0; // buffers allocated and not dropped
  let mine = 0; // their bytes (counted in heldTotal)
  let grow = FILE_FIRST_CHUNK; // size of the next buffer
  let cap = FILE_CHUNK_SLOW; // FILE_CHUNK while the client drains fast
  const fits = (more: number) => heldTotal + more <= budget;
  const drop = (buf: Buffer) => {
    held--;
    mine -= buf.length;
    heldTotal -= buf.length;
  };
  /**
   * A buffer to read into: a free one, or a new one while fewer than FILE_BUFFERS are held and
   * the process's budget allows it (a response always gets one, small when the budget is spent).
   */
  const take = (): Buffer | undefined => {
    const want = Math.min(grow, cap, end - pos);
    let buf = free.pop();
    // too big for a client that slowed down, or outgrown (replaced only if the budget allows)
    if (buf && (buf.length > cap || (buf.length < want && fits(want - buf.length)))) {
      drop(buf);
      buf = undefined;
    }
    if (!buf && held < FILE_BUFFERS && (held === 0 || fits(want))) {
      const size = fits(want) ? want : Math.min(want, FILE_MIN_CHUNK);
      buf = Buffer.allocUnsafeSlow(size);
      held++;
      mine += size;
      heldTotal += size;
      grow = Math.min(grow * 4, FILE_CHUNK);
    }
    return buf;
  };
  let reading = false;
  let stopped = false; // no more reads: everything read, client gone, or failed
  let closed = false;
  let error: Error | undefined;
  let settle!: (r: { complete: boolean; error?: Error }) => void;
  const body = {
    bytes: 0,
    done: new Promise<{ complete: boolean; error?: Error }>((r) => (settle = r)),
  };

  const closeFile = () => {
    if (closed || reading) return;
    closed = true;
    heldTotal -= mine; // no more reads: the buffers go with the response
    mine = 0;
    fh.close().then(
      () => settle({ complete: res.writableFinished && !error, error }),
      (err: Error) => settle({ complete: false, error: error ?? err }),
    );
  };
  const stop = () => {
    stopped = true;
    closeFile();
  };
  const fail = (err: Error) => {
    error = err;
    stop();
    // without the error: destroyed with it, the socket's 'error' reaches Koa's on-finished hook,
    // which reports it too (delivery reports `done`'s error: one log line per cut body)
    res.destroy();
  };

  const pump = () => {
    if (stopped || reading || pos >= end) return;
    const buf = take();
    if (!buf) return;
    reading = true;
    read(fh.fd, buf, 0, Math.min(buf.length, end - pos), pos, (err, n) => {
      reading = false;
      if (stopped || res.destroyed) return stop();
      if (err) return fail(err);
      if (n === 0) return fail(new Error(`media file ended after ${pos - start} of ${length} bytes (shorter than when it was scanned)`));
      pos += n;
      body.bytes += n;
      const sentBefore = body.bytes - n;
      const issued = performance.now();
      res.write(n === buf.length ? buf : buf.subarray(0, n), (werr) => {
        if (werr) return; // the response is gone; 'close' stops the pump
        if (n >= FILE_CHUNK_SLOW) {
          const fast = sentBefore >= RAMP_AFTER && n >= FAST_BYTES_PER_MS * (performance.now() - issued);
          cap = fast ? FILE_CHUNK : FILE_CHUNK_SLOW;
        }
        free.push(buf);
        pump();
      });
      if (pos >= end) {
        stopped = true;
        res.end(closeFile);
      } else pump();
    });
  };

  res.once('close', stop);
  pump();
  return body;
}
