// The player of the policy benchmark: one playback of a byte range over HTTP, as a renderer
// does it (GET with Range; after a 503 or a cut connection it asks again for the rest), with
// the playback clock that turns byte arrival times into a start wait and stalls.
//
// The player starts playing at the first byte and then consumes `rate` bytes per ms; a byte
// that arrives after the clock reached it stalls playback by the difference (the clock then
// waits). Bytes arrive as fast as the server sends them (the player's buffer is the socket's):
// stalls are what tape delivery costs, not the player's own pacing.

import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface PlayTarget {
  host: string;
  port: number;
  id: string;
  /** Byte range [start, end) of the file. */
  start: number;
  end: number;
  /** Playback rate in bytes per ms of real time. */
  rate: number;
  /** Client address on loopback (one per viewing session: a play is per client). */
  localAddress: string;
  /** Wait before asking again after a 503 or a cut response (ms). */
  retryMs: number;
  /** Give up after this long (ms). */
  giveUpMs: number;
}

export interface PlayOutcome {
  /** ms from the first request to the first byte. */
  ttfbMs: number;
  /** ms the playback clock waited for bytes after the first one. */
  stallMs: number;
  bytes: number;
  /** Requests made (1 when nothing went wrong). */
  requests: number;
  /** 503 answers (all drives busy past admission_timeout). */
  busy: number;
  /** Not every byte came before giveUpMs. */
  failed: boolean;
}

export async function play(t: PlayTarget): Promise<PlayOutcome> {
  const total = t.end - t.start;
  const t0 = performance.now();
  let received = 0;
  let started = false;
  let ttfb = NaN;
  let pos = 0;
  let lastT = 0;
  let stall = 0;
  let requests = 0;
  let busy = 0;
  const arrive = (n: number) => {
    const now = performance.now();
    if (!started) {
      started = true;
      ttfb = now - t0;
      lastT = now;
    } else {
      const can = (now - lastT) * t.rate;
      if (pos + can > received) {
        stall += now - lastT - (received - pos) / t.rate;
        pos = received;
      } else pos += can;
      lastT = now;
    }
    received += n;
  };
  while (received < total && performance.now() - t0 < t.giveUpMs) {
    requests++;
    const status = await new Promise<number>((resolve) => {
      const req = http.request(
        { host: t.host, port: t.port, path: `/media/${t.id}`, agent: false, localAddress: t.localAddress, headers: { Range: `bytes=${t.start + received}-${t.end - 1}` } },
        (res) => {
          if (res.statusCode !== 206 && res.statusCode !== 200) {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', () => resolve(res.statusCode ?? 0));
            return;
          }
          res.on('data', (c: Buffer) => arrive(Math.min(c.length, total - received)));
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(0));
          res.on('aborted', () => resolve(0));
        },
      );
      req.on('error', () => resolve(0));
      req.end();
    });
    if (status === 503) busy++;
    if (received < total) await new Promise((r) => setTimeout(r, t.retryMs));
  }
  return { ttfbMs: ttfb, stallMs: stall, bytes: received, requests, busy, failed: received < total };
}

/** A loopback address per viewing session (127.x.y.z, z in 1..254). */
export function sessionAddress(session: number): string {
  const z = (session % 254) + 1;
  const rest = Math.floor(session / 254);
  return `127.${20 + ((rest >> 8) & 0xff)}.${rest & 0xff}.${z}`;
}
