// Server side of one connection to a staging worker: framing, the hello
// handshake, request/response correlation, streaming read requests.

import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import {
  FrameDecoder,
  PROTOCOL_VERSION,
  StagerError,
  encodeFrame,
  type ClientMessage,
  type ItemRef,
  type Priority,
  type SegMessage,
  type WireError,
  type WorkerHello,
  type WorkerMessage,
} from './protocol.js';

export interface ReadHandlers {
  onSeg(m: SegMessage): void;
  /** Uncached bytes at item offset `offset` (the cache could not be written). */
  onData?(offset: number, data: Buffer): void;
  onDone(): void;
  onError(err: StagerError): void;
}

/**
 * The handshake failed because the two sides speak different protocol versions: server and
 * stager are from different releases. `peer` is the stager's version when it said it.
 */
export class ProtocolVersionError extends Error {
  constructor(readonly peer: number | undefined) {
    super(
      `staging protocol mismatch: the stager speaks protocol version ${peer ?? '(unknown, not ' + PROTOCOL_VERSION + ')'}, ` +
        `this server version ${PROTOCOL_VERSION}; upgrade the server and the stager together (tapedeck.service and tapedeck-stager.service from the same release)`,
    );
    this.name = 'ProtocolVersionError';
  }
}

/** The stager's version in its refusal of our hello ("... (this stager speaks version N)"), as every release words it. */
function refusedVersion(message: string): number | undefined {
  if (!/protocol version \d+ is not supported/.test(message)) return undefined;
  const m = /speaks version (\d+)/.exec(message);
  return m ? Number(m[1]) : NaN;
}

interface Pending {
  resolve(v: { value: unknown; data?: Buffer }): void;
  reject(err: StagerError): void;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Call = DistributiveOmit<Extract<ClientMessage, { id: number }>, 'id'>;

export function workerDown(message = 'the staging worker is not running'): StagerError {
  return new StagerError({ code: 'WORKER_DOWN', message, retryAfter: 5 });
}

/** Events: 'close' (reason: string), 'event' (WorkerMessage of type event). */
export class Connection extends EventEmitter {
  hello: WorkerHello | undefined;
  private readonly decoder = new FrameDecoder();
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly reads = new Map<number, ReadHandlers>();
  private helloWait: { resolve(h: WorkerHello): void; reject(e: Error): void } | undefined;
  private closedReason: string | undefined;

  constructor(
    private readonly stream: Duplex,
    readonly clientName = 'tapedeck-server',
  ) {
    super();
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err) => this.shutdown(`connection error: ${err.message}`));
    stream.on('close', () => this.shutdown('connection closed'));
    stream.on('end', () => this.shutdown('connection ended'));
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Sends hello and waits for the worker's. */
  handshake(timeoutMs: number): Promise<WorkerHello> {
    return new Promise<WorkerHello>((resolve, reject) => {
      const t = setTimeout(() => {
        this.helloWait = undefined;
        reject(new Error(`the staging worker did not answer hello within ${timeoutMs} ms`));
        this.destroy();
      }, timeoutMs);
      this.helloWait = {
        resolve: (h) => {
          clearTimeout(t);
          resolve(h);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      };
      this.send({ t: 'hello', version: PROTOCOL_VERSION, client: this.clientName });
    });
  }

  send(m: ClientMessage, data?: Buffer): void {
    if (this.closed || this.stream.destroyed) return;
    const parts = encodeFrame(m, data);
    const s = this.stream as Partial<Socket>;
    if (parts.length > 1) s.cork?.();
    for (const p of parts) this.stream.write(p);
    if (parts.length > 1 && s.uncork) process.nextTick(() => s.uncork!());
  }

  /** A request answered by one `result`. */
  call(m: Call, data?: Buffer): Promise<{ value: unknown; data?: Buffer }> {
    if (this.closed) return Promise.reject(workerDown(`the staging worker connection is gone (${this.closedReason})`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send({ ...m, id } as ClientMessage, data);
    });
  }

  /** Starts a read request; returns its id (for ack/cancel). */
  /**
   * holdMs: how long the client plays these bytes (keeps the cartridge loaded); noMount: the read
   * only uses the cartridge while something else has it loaded (a pre-stage never costs a mount).
   */
  read(item: ItemRef, start: number, end: number, priority: Priority, h: ReadHandlers, notify = true, prestage = false, extra: { holdMs?: number; noMount?: boolean } = {}): number {
    const holdMs = extra.holdMs ?? 0;
    const id = this.nextId++;
    if (this.closed) {
      queueMicrotask(() => h.onError(workerDown(`the staging worker connection is gone (${this.closedReason})`)));
      return id;
    }
    this.reads.set(id, h);
    this.send({ t: 'read', id, item, start, end, priority, notify, ...(prestage ? { prestage: true } : {}), ...(holdMs > 0 ? { holdMs: Math.round(holdMs) } : {}), ...(extra.noMount ? { noMount: true } : {}) });
    return id;
  }

  ack(id: number, consumed: number): void {
    if (this.reads.has(id)) this.send({ t: 'ack', id, consumed });
  }

  cancel(id: number): void {
    if (!this.reads.delete(id)) return;
    this.send({ t: 'cancel', id });
  }

  destroy(): void {
    this.stream.destroy();
    this.shutdown('closed by the server');
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.shutdown(`protocol error: ${(err as Error).message}`);
      this.stream.destroy();
      return;
    }
    for (const f of frames) this.handle(f.msg as WorkerMessage, f.data);
  }

  private handle(m: WorkerMessage, data: Buffer | undefined): void {
    switch (m.t) {
      case 'hello': {
        if (m.version !== PROTOCOL_VERSION) {
          this.helloWait?.reject(new ProtocolVersionError(m.version));
          this.helloWait = undefined;
          this.destroy();
          return;
        }
        this.hello = m;
        this.helloWait?.resolve(m);
        this.helloWait = undefined;
        return;
      }
      case 'seg':
        this.reads.get(m.id)?.onSeg(m);
        return;
      case 'data':
        this.reads.get(m.id)?.onData?.(m.offset, data ?? Buffer.alloc(0));
        return;
      case 'done':
        this.reads.get(m.id)?.onDone();
        return;
      case 'error': {
        const err = new StagerError(m.error);
        if (m.id === 0) {
          if (this.helloWait) {
            const peer = m.error.code === 'PROTOCOL' ? refusedVersion(m.error.message) : undefined;
            if (peer !== undefined) this.helloWait.reject(new ProtocolVersionError(Number.isNaN(peer) ? undefined : peer));
            else this.helloWait.reject(new Error(`the staging worker refused the connection: ${m.error.message}`));
            this.helloWait = undefined;
          }
          this.emit('protocolError', err);
          return;
        }
        const r = this.reads.get(m.id);
        if (r) {
          this.reads.delete(m.id);
          r.onError(err);
          return;
        }
        const p = this.pending.get(m.id);
        if (p) {
          this.pending.delete(m.id);
          p.reject(err);
        }
        return;
      }
      case 'result': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) {
          const e = new StagerError(m.error);
          (e as StagerError & { value?: unknown }).value = m.value;
          p.reject(e);
        } else p.resolve(data ? { value: m.value, data } : { value: m.value });
        return;
      }
      case 'event':
        this.emit('event', m);
        return;
    }
  }

  private shutdown(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    const err = workerDown(`the staging worker connection is gone (${reason})`);
    this.helloWait?.reject(err);
    this.helloWait = undefined;
    const reads = [...this.reads.values()];
    this.reads.clear();
    const pend = [...this.pending.values()];
    this.pending.clear();
    for (const r of reads) r.onError(err);
    for (const p of pend) p.reject(err);
    this.emit('close', reason);
  }
}

export type { WireError };
