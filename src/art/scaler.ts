// Scales art in a child process (src/art/scale-child.ts) so the server never loads sharp:
// libvips maps ~14 MB, and its worker threads keep glibc malloc arenas and caches after use,
// which a long-running server would carry forever after one scan with art. The child starts
// with the first picture to scale and is let go after IDLE_MS without one (it exits when its
// IPC channel closes, which is also what happens when the server dies), so between scans the
// server holds nothing of it.
//
// Same results as scaleArt() in this process: the child runs that very function, one picture
// at a time. A child that dies fails its pictures with an error (the maker logs them and the
// items get no art, like an undecodable picture) and the next picture starts a new one.

import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Scaled } from './scale.js';
import type { ScaleAnswer, ScaleRequest } from './scale-child.js';

/** The child is let go after this long without a picture to scale (ms). */
export const IDLE_MS = 5000;

// Compiled, the child is the .js beside this file; under tsx (development, tests) the .ts source,
// run with this process's loader flags (fork passes process.execArgv).
const SOURCE = import.meta.url.endsWith('.ts');
const CHILD = fileURLToPath(new URL(SOURCE ? './scale-child.ts' : './scale-child.js', import.meta.url));
/** Flags of this process the child must not take over (profiles, inspector, snapshots on a signal). */
const NOT_INHERITED = /^--(cpu-prof|heap-prof|inspect|heapsnapshot|diagnostic-dir|prof)/;

interface Pending {
  resolve: (r: { tn: Scaled; sm: Scaled }) => void;
  reject: (e: Error) => void;
}

export class ArtScaler {
  private child?: ChildProcess;
  private pending = new Map<number, Pending>();
  private seq = 0;
  private idle?: NodeJS.Timeout;

  constructor(private readonly idleMs = IDLE_MS) {}

  /** The running child's pid (tests, metrics), undefined when none runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** JPEG_TN and JPEG_SM renditions of a picture (encoded bytes or a file path), made in the child. */
  scale(input: Buffer | string): Promise<{ tn: Scaled; sm: Scaled }> {
    const child = this.running();
    if (this.idle) {
      clearTimeout(this.idle);
      this.idle = undefined;
    }
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // while a picture is out, the child keeps this process alive (a `tapedeck scan` waits for it)
      child.channel?.ref();
      const req: ScaleRequest = { id, input };
      child.send(req, (err) => {
        if (err) this.settle(id, { id, error: `art scaler: ${err.message}` });
      });
    });
  }

  /** Lets the child go now (it exits when the channel closes); pictures still out fail. */
  close(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    const child = this.child;
    this.child = undefined;
    if (child?.connected) child.disconnect();
    this.failAll('art scaler closed');
  }

  private running(): ChildProcess {
    if (this.child) return this.child;
    const child = fork(CHILD, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: process.execArgv.filter((a) => !NOT_INHERITED.test(a)),
    });
    this.child = child;
    child.unref(); // an idle child never keeps this process alive; the channel does while a picture is out
    child.on('message', (a: ScaleAnswer) => this.settle(a.id, a));
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.idle) clearTimeout(this.idle);
      this.idle = undefined;
      this.failAll(why);
    };
    child.on('error', (err) => gone(`art scaler: ${err.message}`));
    child.on('exit', (code, signal) => gone(`art scaler exited (${signal ?? `code ${code}`})`));
    return child;
  }

  private settle(id: number, a: ScaleAnswer): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if ('error' in a) p.reject(new Error(a.error));
    else p.resolve({ tn: asBuffer(a.tn), sm: asBuffer(a.sm) });
    if (this.pending.size === 0) this.idleNow();
  }

  private idleNow(): void {
    const child = this.child;
    if (!child) return;
    child.channel?.unref();
    this.idle = setTimeout(() => {
      if (this.child !== child || this.pending.size > 0) return;
      this.close();
    }, this.idleMs);
    this.idle.unref();
  }

  private failAll(why: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(new Error(why));
  }
}

/** Structured clone gives a Uint8Array: the same bytes as a Buffer, without a copy. */
function asBuffer(s: Scaled): Scaled {
  const d = s.data as Uint8Array;
  return { data: Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength), width: s.width, height: s.height };
}

/** The process's scaler: one child for every ArtMaker of the process. */
export const artScaler = new ArtScaler();
