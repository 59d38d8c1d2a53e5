// One connection of the staging worker (a server's): framing, the hello
// handshake and the dispatch of its messages to the read path (reads.ts), the
// job drives (job-drives.ts), the cache (pins), status and the test hooks.

import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SegmentCache } from './cache.js';
import type { WorkerLog } from './log.js';
import { FrameDecoder, PROTOCOL_VERSION, checkClientMessage, encodeFrame, toWireError, type ClientMessage, type WorkerMessage } from './protocol.js';
import type { ReadReq, WorkerCounters } from './read-state.js';
import type { ReadService } from './reads.js';
import { JobDrives, type JobDrivesHost } from './job-drives.js';
import { debugOp, type TestHookHost } from './test-hooks.js';

/** What a connection needs from the worker. */
export interface SessionHost extends JobDrivesHost, TestHookHost {
  readonly log: WorkerLog;
  readonly counters: WorkerCounters;
  readonly cache: SegmentCache;
  readonly reads: ReadService;
  hello(): WorkerMessage;
  status(): Promise<Record<string, unknown>>;
}

export class Session {
  open = true;
  private greeted = false;
  private readonly decoder = new FrameDecoder();
  private readonly reqs = new Map<number, ReadReq>();
  private readonly jobs: JobDrives;

  constructor(
    private readonly w: SessionHost,
    private readonly stream: Duplex,
  ) {
    this.jobs = new JobDrives(w, (m) => this.send(m), () => this.open);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err) => this.w.log.debug({ err: err.message }, 'connection error'));
  }

  send(m: WorkerMessage, data?: Buffer): void {
    if (!this.open || this.stream.destroyed) return;
    const parts = encodeFrame(m, data);
    if (parts.length === 1) this.stream.write(parts[0]);
    else {
      (this.stream as Partial<Socket>).cork?.();
      for (const p of parts) this.stream.write(p);
      const s = this.stream as Partial<Socket>;
      if (s.uncork) process.nextTick(() => s.uncork!());
    }
  }

  forget(id: number, req: ReadReq): void {
    if (this.reqs.get(id) === req) this.reqs.delete(id);
  }

  destroy(): void {
    this.stream.destroy();
  }

  /** Connection gone: cancel its requests, give back its drives. */
  closed(): void {
    this.open = false;
    for (const r of this.reqs.values()) this.w.reads.finish(r);
    this.reqs.clear();
    this.jobs.closed();
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.w.counters.protocolErrors++;
      this.w.log.warn({ err: (err as Error).message }, 'protocol error: closing the connection');
      this.send({ t: 'error', id: 0, error: { code: 'PROTOCOL', message: (err as Error).message } });
      this.stream.end();
      return;
    }
    for (const f of frames) this.handle(f.msg as ClientMessage, f.data);
  }

  private handle(m: ClientMessage, data: Buffer | undefined): void {
    const bad = checkClientMessage(m);
    if (bad) {
      this.w.counters.protocolErrors++;
      const id = typeof (m as { id?: unknown }).id === 'number' ? (m as { id: number }).id : 0;
      this.send({ t: 'error', id, error: { code: 'PROTOCOL', message: bad } });
      if (m.t === 'hello' || !this.greeted) this.stream.end();
      return;
    }
    if (!this.greeted) {
      if (m.t !== 'hello') {
        this.send({ t: 'error', id: 0, error: { code: 'PROTOCOL', message: 'expected hello first' } });
        this.stream.end();
        return;
      }
      if (m.version !== PROTOCOL_VERSION) {
        this.w.log.error(
          { client: m.client, clientProtocol: m.version, stagerProtocol: PROTOCOL_VERSION },
          `refused a server speaking staging protocol version ${m.version}: this stager speaks version ${PROTOCOL_VERSION}; upgrade the server and the stager together`,
        );
        this.send({ t: 'error', id: 0, error: { code: 'PROTOCOL', message: `protocol version ${m.version} is not supported (this stager speaks version ${PROTOCOL_VERSION})` } });
        this.stream.end();
        return;
      }
      this.greeted = true;
      this.send(this.w.hello());
      return;
    }
    switch (m.t) {
      case 'hello':
        this.send({ t: 'error', id: 0, error: { code: 'PROTOCOL', message: 'hello sent twice' } });
        return;
      case 'read': {
        if (this.reqs.has(m.id)) {
          this.send({ t: 'error', id: m.id, error: { code: 'PROTOCOL', message: `request id ${m.id} is in use` } });
          return;
        }
        // every request is the connection's, background ones (prefetch, pre-stage) too: they end
        // by themselves (finish() forgets them here), or with the connection (closed())
        const req = this.w.reads.startRead(this, m);
        if (req && !req.finished) this.reqs.set(m.id, req);
        return;
      }
      case 'ack': {
        const r = this.reqs.get(m.id);
        if (r) this.w.reads.ack(r, m.consumed);
        return;
      }
      case 'cancel': {
        const r = this.reqs.get(m.id);
        if (r) {
          this.reqs.delete(m.id);
          this.w.reads.finish(r);
        }
        return;
      }
      case 'pin':
        this.w.cache.pin(m.itemId, m.pinned);
        this.send({ t: 'result', id: m.id, value: { pinned: m.pinned } });
        return;
      case 'status':
        void this.w.status().then(
          (value) => this.send({ t: 'result', id: m.id, value }),
          (err) => this.send({ t: 'result', id: m.id, error: toWireError(err) }),
        );
        return;
      case 'lib':
        void this.jobs.call(m, data).then(
          ({ value, data: out }) => this.send({ t: 'result', id: m.id, value: { v: value, stats: this.w.lib.stats() } }, out),
          (err) => this.send({ t: 'result', id: m.id, error: toWireError(err), value: { stats: this.w.lib.stats() } }),
        );
        return;
      case 'debug':
        void debugOp(this.w, m).then(
          (value) => this.send({ t: 'result', id: m.id, value }),
          (err) => this.send({ t: 'result', id: m.id, error: toWireError(err) }),
        );
        return;
    }
  }
}
