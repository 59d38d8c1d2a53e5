// StagerClient: the server's side of the staging worker.
//
// cfg.stager = 'spawn': the client starts the worker as a child process under
// the sandbox of sandbox.ts, talks to it over an inherited socketpair (fd 3),
// forwards its log lines, and restarts it with exponential backoff when it
// dies (a 'restart' event each time). cfg.stager = a socket path: the client
// connects to an external stager (tapedeck-stager.service) and reconnects with
// backoff. Either way the server keeps serving disk items while no worker is
// there; tape requests then answer 503 + Retry-After.

import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { lstat } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { CatalogObject } from '../catalog/types.js';
import type { MediaSource } from '../http/delivery.js';
import type { TimingPreset } from '../tape/timing.js';
import { incompatibleMedia } from '../tape/types.js';
import { Connection, ProtocolVersionError, workerDown } from './connection.js';
import { levelName } from './log.js';
import { launchOptions, OPTIONS_ENV, writablePaths } from './options.js';
import { PROTOCOL_VERSION, StagerError, type ItemRef, type LibOp, type SandboxInfo, type WorkerMessage } from './protocol.js';
import { RemoteTapeLibrary } from './remote-library.js';
import { workerCommand } from './sandbox.js';
import { segmentExtent, segmentFile } from './cache.js';
import { tapeItemSource, type SourceHost } from './source.js';
import type { WorkerTuning } from './worker.js';

export interface StagerClientOptions {
  config: Config;
  log: Logger;
  /** Worker tuning (segment size, read-ahead ...); tests and benchmarks use small values. */
  tuning?: Partial<WorkerTuning>;
  /** Let the worker honour test-only debug messages. */
  testHooks?: boolean;
  /** Virtual library timing overrides handed to the worker. */
  tapeTiming?: Partial<TimingPreset>;
  /** Restart / reconnect backoff: first and largest delay (ms). Default 500 ms … 30 s. */
  backoffMs?: [number, number];
  /** How long a tape request waits for a worker connection before 503 (ms; default 3000). */
  connectWaitMs?: number;
  /**
   * Watchdog: a tape read that delivers nothing for this long while a response waits is failed
   * (ms; default: twice the admission timeout plus ten minutes of tape time).
   */
  stallMs?: number;
  /** Run the spawned worker without the permission model and netns (debugging only). */
  noSandbox?: boolean;
  /** Real ms per ms of playback (default 1; a time-compressed benchmark plays C times faster): scales read holdMs. */
  playbackTimeScale?: number;
}

export interface StagerStatus {
  connected: boolean;
  mode: 'spawn' | 'socket' | 'none';
  pid?: number;
  restarts: number;
  sandbox?: SandboxInfo;
  /** Worker's view (drives, queue, cache, needed, flagged, counters); absent while disconnected. */
  worker?: {
    drives: { index: number; name: string; label: string | null; busy: boolean; priority?: string; owner?: string; position?: number }[];
    queue: { label?: string; priority: string; owner: string; waitedMs: number; block?: number }[];
    cache: Record<string, unknown>;
    needed: { label: string; since: number; requests: number; lastItem?: string }[];
    flagged: { itemId: string; label: string; block?: number; message: string; at: number }[];
    counters: Record<string, number>;
    /** Cartridges kept loaded for queued loadedOnly recall jobs (recall-holds.ts). */
    recallHolds?: string[];
    [k: string]: unknown;
  };
  counters: Record<string, number>;
  error?: string;
}

const STABLE_MS = 30_000;

/**
 * The watchdog's default: a read may legitimately wait for a drive (admission timeout), for
 * cache room (the same again) and for a robot move, load and locate (minutes of tape time).
 */
export function defaultStallMs(cfg: Config): number {
  const tapeScale = cfg.tape.backend === 'virtual' ? Math.min(1, cfg.tape.timeScale) : 1;
  return 2 * cfg.admissionTimeout * 1000 + 600_000 * tapeScale + 5_000;
}

/** How long a changer answer about a cartridge's whereabouts is trusted (changes made through this server clear it at once). */
const WHERE_TTL_MS = 5_000;

/**
 * Events: 'connected' ({pid}), 'disconnected' ({reason}), 'restart' ({attempt, delayMs, code, signal}),
 * 'flagged' (item data), 'needed' (cartridge list), 'event' (any worker event message).
 */
export class StagerClient extends EventEmitter implements SourceHost {
  readonly cacheDir: string;
  readonly connectWaitMs: number;
  readonly stallMs: number;
  readonly playbackTimeScale: number;
  private conn: Connection | undefined;
  private child: ChildProcess | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private connWaiters = new Set<(c: Connection) => void>();
  /** Rejects the waiters of connection() (stop() ends them at once rather than at their timeout). */
  private connFailers = new Map<(c: Connection) => void, (err: Error) => void>();
  private readonly local: Record<string, number> = {
    bytesServed: 0,
    stubBytesServed: 0,
    tapeBytesServed: 0,
    rejected503: 0,
    readErrorResponses: 0,
    streamErrors: 0,
    restarts: 0,
    reconnects: 0,
    prefetchesSent: 0,
    stalledReads: 0,
    prestagesSent: 0,
  };
  private workerCounters: Record<string, number> = {};
  private readonly offlineSeen = new Map<string, { err: StagerError; at: number }>();
  /** Where the changer said a cartridge is (in the library, offline, unknown to it), for cartridgeWhere(). */
  private readonly whereSeen = new Map<string, { where: 'library' | 'offline' | 'missing'; at: number }>();
  private readonly prefetched = new Map<string, number>();
  private remote: RemoteTapeLibrary | undefined;
  private lastSandbox: SandboxInfo | undefined;
  private readonly log: Logger;
  private sleepTimer: { t: NodeJS.Timeout; resolve: () => void } | undefined;

  constructor(readonly opts: StagerClientOptions) {
    super();
    this.log = opts.log;
    this.cacheDir = opts.config.cacheDir;
    this.connectWaitMs = opts.connectWaitMs ?? 3000;
    this.stallMs = opts.stallMs ?? defaultStallMs(opts.config);
    this.playbackTimeScale = opts.playbackTimeScale ?? 1;
  }

  get mode(): 'spawn' | 'socket' | 'none' {
    if (this.opts.config.tape.backend === 'none') return 'none';
    return this.opts.config.stager === 'spawn' ? 'spawn' : 'socket';
  }

  get connected(): boolean {
    return !!this.conn && !this.conn.closed;
  }

  /** PID of the spawned worker (spawn mode) or of the external stager (from its hello). */
  get pid(): number | undefined {
    return this.conn?.hello?.pid ?? this.child?.pid;
  }

  /**
   * Starts supervising (spawn) or connecting (socket). Resolves when the first connection is up,
   * or after `waitMs` (default 20 s) with the worker still being retried in the background.
   */
  async start(waitMs = 20_000): Promise<void> {
    if (this.running || this.mode === 'none') return;
    this.stopped = false;
    this.running = this.mode === 'spawn' ? this.superviseLoop() : this.connectLoop(this.opts.config.stager);
    try {
      await this.connection(waitMs);
    } catch (err) {
      if (!this.stopped && !this.abandoned) this.log.warn({ err: (err as Error).message }, 'staging worker not available yet; retrying in the background');
    }
    this.abandoned = false;
  }

  private abandoned = false;
  /** Ends the waits for a connection now (a start() in progress returns): the server is stopping. */
  abandonWaits(): void {
    this.abandoned = true;
    for (const fail of [...this.connFailers.values()]) fail(workerDown('the staging worker is stopping'));
  }

  /** The server's stop has begun (stop() comes later): a connection up now stays, no new worker is taken into use. */
  private closing = false;
  /**
   * The server is stopping: ends the waits for a connection (abandonWaits), and from now on a
   * worker whose hello arrives is not taken into use and a worker that exits is not restarted
   * (the server's stop reaches stop() only after SSDP, HTTP, the watch and the policy stopped).
   */
  beginStop(): void {
    this.closing = true;
    this.abandonWaits();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abandonWaits();
    if (this.sleepTimer) {
      clearTimeout(this.sleepTimer.t);
      this.sleepTimer.resolve();
    }
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    this.conn?.destroy();
    await this.running?.catch(() => undefined);
    this.running = undefined;
  }

  /**
   * The current connection, waiting up to `ms` for one (rejects with WORKER_DOWN). `signal`: the
   * one who asked is gone (an HTTP client that disconnected): the wait ends at once, rejecting
   * with the signal's reason, and leaves nothing behind.
   */
  connection(ms: number, signal?: AbortSignal): Promise<Connection> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.conn && !this.conn.closed) return Promise.resolve(this.conn);
    if (this.mode === 'none') return Promise.reject(new StagerError({ code: 'NOT_FOUND', message: 'no tape library is configured (tape_backend = none)' }));
    if (this.stopped || !this.running) return Promise.reject(workerDown('the staging worker is not started'));
    return new Promise((resolve, reject) => {
      const onAbort = () => fail(signal!.reason);
      const done = (c: Connection) => {
        clearTimeout(t);
        this.connFailers.delete(done);
        signal?.removeEventListener('abort', onAbort);
        resolve(c);
      };
      const fail = (err: Error) => {
        clearTimeout(t);
        this.connWaiters.delete(done);
        this.connFailers.delete(done);
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      const t = setTimeout(() => fail(workerDown(`no staging worker connection within ${ms} ms`)), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.connWaiters.add(done);
      this.connFailers.set(done, fail);
    });
  }

  // ---- API for the server ----------------------------------------------------------------------

  /** MediaSource for an archived item (see source.ts). */
  source(item: CatalogObject): MediaSource {
    const s = tapeItemSource(this, item);
    if (!s) throw new Error(`item ${item.id} has no tape location`);
    return s;
  }

  /** Remote TapeLibrary for archive/recall jobs (operations run in the worker). */
  library(): RemoteTapeLibrary {
    if (!this.remote) {
      this.remote = new RemoteTapeLibrary({
        call: async (op: LibOp, drive: number | undefined, args: unknown[], data?: Buffer) => {
          const c = await this.connection(this.connectWaitMs);
          try {
            return await c.call({ t: 'lib', op, ...(drive !== undefined ? { drive } : {}), args }, data);
          } finally {
            // cartridges moved in or out of the library through this server
            if (op === 'changer.exportCartridge' || op === 'changer.importCartridge' || op === 'virtual.createCartridge') this.whereSeen.clear();
          }
        },
        driveList: () => {
          const h = this.conn?.hello;
          if (h) return h.library.drives;
          const t = this.opts.config.tape;
          const n = t.backend === 'scsi' ? t.devices.length : t.drives;
          return Array.from({ length: n }, (_, i) => ({ index: i, name: t.backend === 'scsi' ? t.devices[i]! : `drive${i}` }));
        },
        kind: () => this.conn?.hello?.library.kind ?? (this.opts.config.tape.backend === 'scsi' ? 'scsi' : 'virtual'),
      });
    }
    return this.remote;
  }

  /** Counters of this client merged with the worker's last reported ones. */
  stats(): Record<string, number> {
    return { ...this.workerCounters, ...this.local, connected: this.connected ? 1 : 0 };
  }

  async status(): Promise<StagerStatus> {
    const st: StagerStatus = { connected: this.connected, mode: this.mode, restarts: this.local.restarts!, counters: this.stats() };
    const pid = this.pid;
    if (pid !== undefined) st.pid = pid;
    const sandbox = this.conn?.hello?.sandbox ?? this.lastSandbox;
    if (sandbox) st.sandbox = sandbox;
    if (this.connected) {
      try {
        const r = await this.conn!.call({ t: 'status' });
        st.worker = r.value as StagerStatus['worker'];
        if (st.worker?.counters) this.workerCounters = st.worker.counters;
        st.counters = this.stats();
      } catch (err) {
        st.error = (err as Error).message;
      }
    }
    return st;
  }

  /** Pins (or unpins) an item's cache segments: pinned segments are never evicted. */
  async pin(itemId: string, pinned: boolean): Promise<void> {
    const c = await this.connection(this.connectWaitMs);
    await c.call({ t: 'pin', itemId, pinned });
  }

  /** Test hooks (the worker must have been started with testHooks). */
  async debug(
    op: 'readFile' | 'connect' | 'injectReadError' | 'injectCacheError' | 'injectSyncError',
    args: { path?: string; host?: string; port?: number; label?: string; block?: number; count?: number; errno?: string; after?: number },
  ): Promise<unknown> {
    const c = await this.connection(this.connectWaitMs);
    return (await c.call({ t: 'debug', op, ...args })).value;
  }

  // ---- SourceHost -----------------------------------------------------------------------------

  prefetch(item: ItemRef, offset: number): void {
    const key = `${item.id}:${offset}`;
    const now = Date.now();
    const last = this.prefetched.get(key);
    if (last !== undefined && now - last < 30_000) return;
    this.prefetched.set(key, now);
    if (this.prefetched.size > 1000) for (const [k, t] of this.prefetched) if (now - t > 30_000) this.prefetched.delete(k);
    const c = this.conn;
    if (!c || c.closed) return;
    const S = c.hello?.segmentSize ?? 4 << 20;
    const seg = Math.floor(offset / S);
    const { start, len } = segmentExtent(item.tape.size, S, seg);
    if (len <= 0) return;
    this.local.prefetchesSent!++;
    this.background(c, item, Math.max(offset, start), start + len, false);
  }

  /** A read at prefetch priority nobody waits for (prefetch, pre-stage): errors are noted and logged. */
  private background(c: Connection, item: ItemRef, start: number, end: number, prestage: boolean, noMount = false): void {
    const what = prestage ? 'pre-stage' : 'prefetch';
    const h = {
      onSeg: () => undefined,
      onDone: () => undefined,
      onError: (err: StagerError) => {
        this.noteError(err, item);
        this.log.debug({ item: item.id, err: err.message }, `${what} failed`);
      },
    };
    c.read(item, start, end, 'prefetch', h, false, prestage, { noMount });
  }

  /**
   * Pre-stages bytes [start, end) of an item into the staging cache at prefetch priority
   * (fire and forget; the worker counts it as a pre-stage). False when no worker is connected.
   * With `mount` false the worker only reads while the cartridge is loaded for something else.
   */
  prestage(item: ItemRef, start: number, end: number, mount = true): boolean {
    const c = this.conn;
    if (!c || c.closed || end <= start) return false;
    this.local.prestagesSent!++;
    this.background(c, item, start, end, true, !mount);
    return true;
  }

  async cartridgeOffline(label: string): Promise<boolean> {
    return (await this.cartridgeWhere(label)) === 'offline';
  }

  async cartridgeWhere(label: string): Promise<'library' | 'offline' | 'missing' | undefined> {
    const seen = this.whereSeen.get(label);
    if (seen && Date.now() - seen.at < WHERE_TTL_MS) return seen.where;
    if (!this.connected) return undefined; // unknown; the stub is served and the tape part answers for itself
    let where: 'library' | 'offline' | 'missing';
    try {
      where = (await this.library().changer.find(label)).where === 'offline' ? 'offline' : 'library';
    } catch (err) {
      // not known to the library: the read path would answer NOT_FOUND; anything else is unknown
      if ((err as { code?: string }).code !== 'NOT_FOUND') return undefined;
      where = 'missing';
    }
    this.whereSeen.set(label, { where, at: Date.now() });
    return where;
  }

  async cached(item: ItemRef, start: number, end: number): Promise<boolean> {
    const S = this.conn?.hello?.segmentSize;
    if (!S || end <= start) return false;
    const first = Math.floor(start / S);
    const last = Math.floor((end - 1) / S);
    // more segments than the cache holds cannot all be there (and bounds the look-ups)
    if (last - first + 1 > Math.ceil(this.opts.config.cacheSize / S)) return false;
    for (let seg = first; seg <= last; seg++) {
      const { len } = segmentExtent(item.tape.size, S, seg);
      const st = await lstat(join(this.cacheDir, segmentFile(item.id, seg))).catch(() => undefined);
      if (!st?.isFile() || st.size !== len) return false;
    }
    return true;
  }

  offline(label: string): StagerError | undefined {
    // media no drive of the library reads (its hello names the drives' generation): known without
    // asking the worker, so HEAD answers what GET would before any GET has found out
    const incompatible = incompatibleMedia(label, this.conn?.hello?.library.generation);
    if (incompatible) return new StagerError({ code: 'INCOMPATIBLE', message: incompatible, label });
    const o = this.offlineSeen.get(label);
    if (!o) return undefined;
    if (Date.now() - o.at > 10_000) {
      this.offlineSeen.delete(label);
      return undefined;
    }
    return o.err;
  }

  noteError(err: StagerError, item: ItemRef): void {
    if (err.code === 'OFFLINE' || err.code === 'INCOMPATIBLE') this.offlineSeen.set(item.tape.label, { err, at: Date.now() });
    if (err.code === 'STALLED') {
      this.local.stalledReads!++;
      this.log.warn({ item: item.id, label: item.tape.label, ...err.details }, err.message);
    }
    if (err.code === 'MEDIUM_ERROR') this.local.readErrorResponses!++;
  }

  count(name: string, n = 1): void {
    this.local[name] = (this.local[name] ?? 0) + n;
  }

  // ---- supervision ---------------------------------------------------------------------------

  private setConnection(c: Connection): void {
    this.conn = c;
    c.on('event', (m: Extract<WorkerMessage, { t: 'event' }>) => this.onWorkerEvent(m));
    this.remote?.reconnected(); // the recall holds of the previous connection are asked for again
    const ws = [...this.connWaiters];
    this.connWaiters.clear();
    for (const w of ws) w(c);
    this.emit('connected', { pid: c.hello?.pid });
  }

  private onWorkerEvent(m: Extract<WorkerMessage, { t: 'event' }>): void {
    switch (m.name) {
      case 'stats':
        this.workerCounters = m.data as Record<string, number>;
        break;
      case 'flagged':
        this.log.error({ stager: m.data }, `archived item ${String(m.data.itemId)} is unreadable on ${String(m.data.label)}: ${String(m.data.message)}`);
        this.emit('flagged', m.data);
        break;
      case 'preempt':
        if (typeof m.data.drive === 'number') this.remote?.notePreempt(m.data.drive);
        this.log.info({ drive: m.data.drive }, 'playback needs a drive the running job holds: the job gives it back at its next safe point');
        break;
      case 'needed': {
        const list = (m.data.cartridges ?? []) as { label: string }[];
        if (list.length) this.log.warn({ needed: list.map((c) => c.label) }, `cartridge${list.length > 1 ? 's' : ''} needed: ${list.map((c) => c.label).join(', ')} (offline; import to serve)`);
        this.emit('needed', list);
        break;
      }
      default:
        this.log.debug({ stager: m.data }, `stager: ${m.name}`);
    }
    this.emit('event', m);
  }

  private backoff(attempt: number): number {
    const [min, max] = this.opts.backoffMs ?? [500, 30_000];
    return Math.min(max, min * 2 ** Math.max(0, attempt - 1));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.sleepTimer = undefined;
        resolve();
      }, ms);
      this.sleepTimer = { t, resolve };
    });
  }

  private async superviseLoop(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      const t0 = Date.now();
      let code: number | null = null;
      let signal: NodeJS.Signals | null = null;
      try {
        ({ code, signal } = await this.runWorkerOnce());
      } catch (err) {
        this.log.error({ err: (err as Error).message }, `cannot start the staging worker: ${(err as Error).message}`);
      }
      if (this.stopped || this.closing) break;
      attempt = Date.now() - t0 > STABLE_MS ? 1 : attempt + 1;
      const delayMs = this.backoff(attempt);
      this.local.restarts!++;
      this.log.warn({ code, signal, delayMs, attempt }, `staging worker exited (${signal ?? `code ${code}`}); restarting in ${delayMs} ms`);
      this.emit('restart', { attempt, delayMs, code, signal });
      await this.sleep(delayMs);
    }
  }

  /** Spawns one worker and resolves when it has exited. */
  private async runWorkerOnce(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const o = launchOptions(this.opts.config, {
      ...(this.opts.tuning ? { tuning: this.opts.tuning } : {}),
      ...(this.opts.testHooks ? { testHooks: true } : {}),
      ...(this.opts.tapeTiming ? { tapeTiming: this.opts.tapeTiming } : {}),
    });
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    if (process.env.LANG) env.LANG = process.env.LANG;
    const cmd = await workerCommand(writablePaths(o), env, { sandbox: !this.opts.noSandbox });
    o.sandbox = cmd.sandbox;
    this.lastSandbox = cmd.sandbox;
    for (const note of cmd.sandbox.notes) this.log.warn({ sandbox: note }, `staging worker sandbox: ${note}`);
    env[OPTIONS_ENV] = JSON.stringify(o);
    // stop() while the command was being prepared found no child to end: do not spawn one it would wait for
    if (this.stopped || this.closing) return { code: null, signal: null };
    const child = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env, cwd: o.cacheDir });
    this.child = child;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => {
        this.log.error({ err: err.message }, 'cannot spawn the staging worker');
        resolve({ code: -1, signal: null });
      });
    });
    this.forwardLogs(child);
    const sock = child.stdio[3] as Socket | undefined;
    if (!sock) {
      child.kill('SIGKILL');
      return exited;
    }
    const conn = new Connection(sock);
    conn.once('close', (reason: string) => {
      if (this.conn === conn) {
        this.conn = undefined;
        this.emit('disconnected', { reason });
      }
      // a worker that lost its server connection exits by itself; make sure of it
      if (child.exitCode === null && child.signalCode === null) {
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => clearTimeout(t));
        child.kill('SIGTERM');
      }
    });
    try {
      const hello = await Promise.race([
        conn.handshake(30_000),
        exited.then((e) => {
          throw new Error(`the staging worker exited during startup (${e.signal ?? `code ${e.code}`})`);
        }),
      ]);
      // a stop() that began while the worker said hello has already sent it SIGTERM: the worker
      // is not taken into use (nothing may start once the server is stopping)
      if (this.stopped || this.closing) conn.destroy();
      else {
        this.log.info({ workerPid: hello.pid, sandbox: { permission: cmd.sandbox.permission, netns: cmd.sandbox.netns } }, `staging worker ${hello.pid} ready`);
        this.setConnection(conn);
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'staging worker handshake failed');
      conn.destroy();
    }
    const r = await exited;
    conn.destroy();
    if (this.child === child) this.child = undefined;
    return r;
  }

  private forwardLogs(child: ChildProcess): void {
    const wl = this.log.child({ proc: 'stager', workerPid: child.pid });
    if (child.stdout) {
      createInterface({ input: child.stdout }).on('line', (line) => {
        let o: Record<string, unknown>;
        try {
          o = JSON.parse(line) as Record<string, unknown>;
        } catch {
          wl.info(line);
          return;
        }
        const { level, time: _t, msg, pid: _p, name: _n, ...rest } = o;
        wl[levelName(Number(level) || 30)](rest, typeof msg === 'string' ? msg : '');
      });
    }
    if (child.stderr) createInterface({ input: child.stderr }).on('line', (line) => line.trim() && wl.warn(line));
  }

  private async connectLoop(path: string): Promise<void> {
    let attempt = 0;
    let warned = false;
    while (!this.stopped) {
      const t0 = Date.now();
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = netConnect(path);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        const conn = new Connection(sock);
        const closed = new Promise<string>((resolve) => conn.once('close', resolve));
        const hello = await conn.handshake(10_000);
        if (this.stopped || this.closing) {
          // stop() came during the handshake: it found no connection to close and waits for this loop
          conn.destroy();
          break;
        }
        if (hello.cacheDir !== this.cacheDir) {
          this.log.warn({ stager: hello.cacheDir, server: this.cacheDir }, 'the stager uses another cache directory than this server: tape items cannot be served');
        }
        this.log.info({ socket: path, stagerPid: hello.pid }, `connected to the stager at ${path}`);
        warned = false;
        if (attempt > 0) this.local.reconnects!++;
        this.setConnection(conn);
        const reason = await closed;
        if (this.conn === conn) this.conn = undefined;
        this.emit('disconnected', { reason });
        if (!this.stopped) this.log.warn({ reason }, 'lost the stager connection');
      } catch (err) {
        if (err instanceof ProtocolVersionError) {
          // not a transient failure: say so plainly (once per streak), then keep retrying for the upgrade
          if (!warned) this.log.error({ socket: path, stagerProtocol: err.peer, serverProtocol: PROTOCOL_VERSION }, `stager at ${path}: ${err.message}`);
        } else if (!warned) this.log.warn({ socket: path, err: (err as Error).message }, `cannot connect to the stager at ${path}; retrying`);
        warned = true;
      }
      if (this.stopped) break;
      attempt = Date.now() - t0 > STABLE_MS ? 1 : attempt + 1;
      await this.sleep(this.backoff(attempt));
    }
  }
}
