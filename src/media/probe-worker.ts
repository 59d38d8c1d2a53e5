// Worker thread of the probe pool (probe-pool.ts): probes the files it is sent with the same
// probe() as the main thread and posts the results back. Requests come in batches (one message
// per batch, not per file) and answers go back the same way: the answers of the probes that end
// in one turn of this thread's event loop, in one message. Errors go back with their code, so the
// scanner tells a file it may not read (EACCES) from one that is damaged.

import { parentPort } from 'node:worker_threads';
import { probe, type ProbeOptions } from './probe.js';

export interface ProbeRequest {
  id: number;
  path: string;
  opts: ProbeOptions;
}

export type ProbeAnswer = { id: number; result?: Awaited<ReturnType<typeof probe>> } | { id: number; error: { message: string; code?: string } };
/** `ready` once loaded, then batches of answers. */
export type ProbeReply = { ready: true } | ProbeAnswer[];

const port = parentPort;
if (!port) throw new Error('probe-worker.ts runs only as a worker thread');

let answers: ProbeAnswer[] = [];
let transfer: ArrayBuffer[] = [];
let posting = false;

function answer(a: ProbeAnswer, moved?: ArrayBuffer): void {
  answers.push(a);
  if (moved) transfer.push(moved);
  if (posting) return;
  posting = true;
  setImmediate(() => {
    posting = false;
    const batch = answers;
    const t = transfer;
    answers = [];
    transfer = [];
    port!.postMessage(batch satisfies ProbeReply, t);
  });
}

// loaded (probe() and its parsers imported): the pool may send work now
port.postMessage({ ready: true } satisfies ProbeReply);
port.on('message', (reqs: ProbeRequest[]) => {
  for (const req of reqs) {
    // this thread does nothing else: small files are read with blocking calls
    probe(req.path, { ...req.opts, blockingReads: true }).then(
      (result) => {
        // the embedded picture's bytes move to the main thread instead of being copied
        const pic = result?.picture?.data;
        const whole = pic && pic.byteOffset === 0 && pic.byteLength === pic.buffer.byteLength && !(pic.buffer instanceof SharedArrayBuffer);
        answer({ id: req.id, result }, whole && !transfer.includes(pic.buffer as ArrayBuffer) ? (pic.buffer as ArrayBuffer) : undefined);
      },
      (err: NodeJS.ErrnoException) => answer({ id: req.id, error: { message: err.message, code: err.code } }),
    );
  }
});
