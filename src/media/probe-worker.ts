// Worker thread of the probe pool (probe-pool.ts): probes the files it is sent with the same
// probe() as the main thread and posts each result back. Errors go back with their code, so
// the scanner tells a file it may not read (EACCES) from one that is damaged.

import { parentPort } from 'node:worker_threads';
import { probe, type ProbeOptions } from './probe.js';

export interface ProbeRequest {
  id: number;
  path: string;
  opts: ProbeOptions;
}

export type ProbeReply = { ready: true } | { id: number; result?: Awaited<ReturnType<typeof probe>> } | { id: number; error: { message: string; code?: string } };

const port = parentPort;
if (!port) throw new Error('probe-worker.ts runs only as a worker thread');
// loaded (probe() and its parsers imported): the pool may send work now
port.postMessage({ ready: true });
port.on('message', (req: ProbeRequest) => {
  probe(req.path, req.opts).then(
    (result) => {
      // the embedded picture's bytes move to the main thread instead of being copied
      const pic = result?.picture?.data;
      const transfer = pic && pic.byteOffset === 0 && pic.byteLength === pic.buffer.byteLength && !(pic.buffer instanceof SharedArrayBuffer) ? [pic.buffer as ArrayBuffer] : [];
      port.postMessage({ id: req.id, result } satisfies ProbeReply, transfer);
    },
    (err: NodeJS.ErrnoException) => port.postMessage({ id: req.id, error: { message: err.message, code: err.code } } satisfies ProbeReply),
  );
});
