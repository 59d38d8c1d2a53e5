// A small pool of worker threads that run probe() (tag parsing, image and container headers)
// off the main thread, so a scan uses a second core: the main thread walks the directories and
// writes the catalog while the workers read and parse files.
//
// Bounded: `threads` workers (a setting, scan_threads), each with at most PER_WORKER probes in
// flight (the scanner's own concurrency bounds the rest). The workers start with the first
// probe and end after IDLE_MS without one, or when the scan is over (release()), so a server
// holds no extra heap between scans. A
// worker that dies fails its probes with an error (the scanner logs them and retries those files
// at the next scan) and the pool starts a new one for the next probe; when workers cannot start
// at all, every probe runs in this thread (`broken` says why).

import { Worker } from 'node:worker_threads';
import type { ProbeResult } from '../catalog/types.js';
import { probe, type ProbeOptions } from './probe.js';
import type { ProbeAnswer, ProbeReply, ProbeRequest } from './probe-worker.js';

/** Probes one worker has in flight at most. */
const PER_WORKER = 8;
/** A worker idle this long ends (ms). */
const IDLE_MS = 5000;

// Compiled, the worker is the .js beside this file. Under tsx (development, tests) it is the .ts
// source, loaded through tsx's loader, registered in the worker first.
const SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(SOURCE ? './probe-worker.ts' : './probe-worker.js', import.meta.url);

function newWorker(name: string, url = WORKER_URL): Worker {
  if (!SOURCE) return new Worker(url, { name });
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, name });
}

interface Pending {
  path: string;
  opts: ProbeOptions;
  resolve: (r: ProbeResult | undefined) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Whether it ever answered: one that fails before that cannot start here (no pool then). */
  answered: boolean;
  /** Its modules are loaded: until then probes run in this thread (a small scan never waits for a worker). */
  ready: boolean;
  idle?: NodeJS.Timeout;
  /** Requests not posted yet: the probes asked for in one turn of the event loop go in one message. */
  queued: ProbeRequest[];
}

export class ProbePool {
  private readonly slots: (Slot | undefined)[];
  private seq = 0;
  private closed = false;
  /** Why workers cannot run here: every probe then runs in this thread. */
  broken?: string;

  /** `workerUrl`: another worker script (tests). */
  constructor(
    readonly threads: number,
    private readonly workerUrl?: URL,
  ) {
    this.slots = Array.from({ length: Math.max(1, threads) }, () => undefined);
  }

  /** probe(path, opts) in a worker thread. */
  probe(path: string, opts: ProbeOptions): Promise<ProbeResult | undefined> {
    if (this.closed) return Promise.reject(new Error('probe pool closed'));
    if (this.broken) return probe(path, opts);
    const slot = this.pick();
    if (!slot) return probe(path, opts);
    const id = ++this.seq;
    if (slot.idle) {
      clearTimeout(slot.idle);
      slot.idle = undefined;
    }
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { path, opts, resolve, reject });
      if (slot.queued.push({ id, path, opts }) === 1) setImmediate(() => this.post(slot));
    });
  }

  private post(slot: Slot): void {
    const batch = slot.queued;
    slot.queued = [];
    // a worker that failed meanwhile has failed these probes already (see start)
    if (batch.length && batch.some((r) => slot.pending.has(r.id))) slot.worker.postMessage(batch);
  }

  /** The ready worker with the fewest probes in flight (workers start when their slot is empty); none ready yet: undefined. */
  private pick(): Slot | undefined {
    let best: Slot | undefined;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i] ?? (this.slots[i] = this.start(i));
      if (!s.ready) continue;
      if (!best || s.pending.size < best.pending.size) best = s;
      if (s.pending.size < PER_WORKER) return s;
    }
    return best;
  }

  private start(i: number): Slot {
    const worker = newWorker(`probe-${i}`, this.workerUrl);
    const slot: Slot = { worker, pending: new Map(), answered: false, ready: false, queued: [] };
    worker.unref(); // never keeps the process alive by itself
    worker.on('message', (m: ProbeReply) => {
      if ('ready' in m) {
        slot.ready = slot.answered = true;
        slot.idle = setTimeout(() => this.retire(i, slot), IDLE_MS);
        slot.idle.unref();
        return;
      }
      for (const a of m) this.settle(slot, a);
      if (!slot.pending.size) {
        slot.idle = setTimeout(() => this.retire(i, slot), IDLE_MS);
        slot.idle.unref();
      }
    });
    const fail = (err: Error) => {
      if (this.slots[i] === slot) this.slots[i] = undefined;
      if (!slot.answered && !this.closed) this.broken ??= `probe worker cannot start: ${err.message}`;
      for (const p of slot.pending.values()) {
        if (this.broken) probe(p.path, p.opts).then(p.resolve, p.reject);
        else p.reject(new Error(`probe worker failed: ${err.message}`));
      }
      slot.pending.clear();
      slot.queued = [];
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    return slot;
  }

  private settle(slot: Slot, a: ProbeAnswer): void {
    const p = slot.pending.get(a.id);
    if (!p) return;
    slot.pending.delete(a.id);
    slot.answered = true;
    if ('error' in a) p.reject(Object.assign(new Error(a.error.message), a.error.code ? { code: a.error.code } : {}));
    else p.resolve(a.result);
  }

  private retire(i: number, slot: Slot): void {
    if (slot.pending.size) return;
    if (this.slots[i] === slot) this.slots[i] = undefined;
    void slot.worker.terminate();
  }

  /** Worker threads that have loaded and take probes. */
  get ready(): number {
    return this.slots.filter((s) => s?.ready).length;
  }

  /** Worker threads running now. */
  get running(): number {
    return this.slots.filter(Boolean).length;
  }

  /** Ends the workers with nothing in flight now, not IDLE_MS later (a scan is over: its heap goes). */
  async release(): Promise<void> {
    const idle = this.slots.map((s, i) => [s, i] as const).filter((e): e is readonly [Slot, number] => !!e[0] && !e[0].pending.size);
    for (const [s, i] of idle) {
      if (s.idle) clearTimeout(s.idle);
      this.slots[i] = undefined;
    }
    await Promise.all(idle.map(([s]) => s.worker.terminate()));
  }

  /** Ends every worker (probes in flight fail). */
  async close(): Promise<void> {
    this.closed = true;
    const running = this.slots.filter((s): s is Slot => !!s);
    this.slots.fill(undefined);
    for (const s of running) if (s.idle) clearTimeout(s.idle);
    await Promise.all(running.map((s) => s.worker.terminate()));
  }
}
