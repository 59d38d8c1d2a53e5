// The art scaling process: runs scaleArt() (src/art/scale.ts, sharp/libvips) for the server,
// which starts it through src/art/scaler.ts. libvips, its thread pool's malloc arenas and its
// cache stay in this short-lived process instead of the server's resident memory.
//
// Protocol: IPC messages with Node's 'advanced' serialization (Buffers pass as bytes).
//   request  { id, input: Uint8Array | string }           (encoded picture, or a file path)
//   answer   { id, tn: Scaled, sm: Scaled } | { id, error }
// The process exits when its IPC channel closes: the server let it go after being idle, or the
// server ended (even on kill -9, the kernel closes the channel), so it never outlives it.

import { scaleArt, type Scaled } from './scale.js';

export interface ScaleRequest {
  id: number;
  input: Uint8Array | string;
}

export type ScaleAnswer = { id: number; tn: Scaled; sm: Scaled } | { id: number; error: string };

const send = (a: ScaleAnswer) => process.send?.(a);

process.on('message', (m: ScaleRequest) => {
  const input = typeof m.input === 'string' ? m.input : Buffer.from(m.input.buffer, m.input.byteOffset, m.input.byteLength);
  scaleArt(input).then(
    (r) => send({ id: m.id, tn: r.tn, sm: r.sm }),
    (err: unknown) => send({ id: m.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
if (!process.connected) process.exit(0);
