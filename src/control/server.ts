// Control socket server: the operator CLI talks to a running `tapedeck serve`
// through it (see protocol.ts). Unix socket only, mode 0600; no network.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, rm, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { ArchiveService } from '../archive/service.js';
import { ArchiveError, errorCode, messageOf } from '../archive/errors.js';
import { isTerminal, type JobKind, type JobRecord } from '../archive/jobs.js';
import type { Logger } from '../log.js';
import { MAX_BODY, PROTOCOL_VERSION, statusOf, type ErrorBody } from './protocol.js';
import { registerServer } from './registry.js';
import type { ScanProgress } from '../scanner/scanner.js';

/** What the control socket offers of the server itself (scan, full status). */
export interface ControlServerHooks {
  /** Run (or join) an incremental scan of the server's media directories. */
  rescan(): Promise<ScanProgress | undefined>;
  /** The running scan's latest progress (for the progress bar). */
  scanProgress(): ScanProgress | undefined;
  /** Library totals after a scan (as `tapedeck scan` prints them). */
  totals(): Promise<unknown>;
  /** The status snapshot with absolute paths (the status page shows them relative). */
  status?(): Promise<unknown>;
}

/** The storage policy as the control socket exposes it (answers are plain JSON). */
export interface PolicyControl {
  /** `tapedeck ls`: { targets?, tier?, sort? } → listed items. */
  items(query: { targets?: string[]; tier?: string; sort?: string }): Promise<unknown>;
  /** `tapedeck policy plan`: what a pass would do now. */
  plan(): Promise<unknown>;
  /** `tapedeck policy run`: start one pass now; answers the plan it runs and its job IDs. */
  run(): Promise<unknown>;
}

export interface ControlServerOptions {
  socketPath: string;
  /** The tape tier's jobs; without it the job and tape endpoints answer NO_LIBRARY (exit 3). */
  archive?: ArchiveService;
  server?: ControlServerHooks;
  /** `tapedeck ls` and `tapedeck policy`. */
  policy?: PolicyControl;
  log?: Logger;
  /** How often a scan stream reports progress (ms, default 250). */
  progressMs?: number;
}

export interface ControlServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

/** True when something answers on the socket (another server is running). */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const { socketPath, policy, log } = opts;
  const tapeTier = (): ArchiveService => {
    if (!opts.archive) throw new ArchiveError('NO_LIBRARY', 'the tape tier is disabled in the running server (tape_backend = none)');
    return opts.archive;
  };
  const st = await stat(socketPath).catch(() => undefined);
  if (st) {
    if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket`);
    if (await socketAlive(socketPath)) throw new Error(`control socket ${socketPath} is in use by another process`);
    await rm(socketPath, { force: true }); // stale, from a process that died
  }
  const sockets = new Set<Socket>();
  const watchers = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // a bad request (unknown ID, bad argument) is the caller's, answered with its code: info
      const fields = { err: messageOf(err), url: req.url };
      if (statusOf(errorCode(err)) >= 500) log?.warn(fields, 'control request failed');
      else log?.info(fields, 'control request refused');
      sendError(res, err);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control');
    const parts = url.pathname.split('/').filter(Boolean).map(decodePart);
    if (parts[0] !== 'v1') throw new ArchiveError('NOT_FOUND', `unknown control endpoint ${url.pathname} (protocol ${PROTOCOL_VERSION})`);
    const [, a, b, c] = parts;
    const m = req.method ?? 'GET';
    if (m === 'GET' && a === 'ping' && !b) return send(res, 200, { service: 'tapedeck', protocol: PROTOCOL_VERSION, pid: process.pid });
    if (a === 'scan' && !b && m === 'POST' && opts.server) return scanStream(res, opts.server);
    if (a === 'status' && !b && m === 'GET' && opts.server?.status) return send(res, 200, await opts.server.status());
    if (a === 'items' && !b && m === 'POST' && policy) {
      const body = (await readJson(req)) as { targets?: string[]; tier?: string; sort?: string };
      return send(res, 200, await policy.items(body));
    }
    if (a === 'policy' && policy && !c) {
      if (b === 'plan' && m === 'GET') return send(res, 200, await policy.plan());
      if (b === 'run' && m === 'POST') return send(res, 200, await policy.run());
    }
    if (a === 'jobs' || a === 'tape') return handleTape(req, res, m, url, tapeTier(), a, b, c);
    throw new ArchiveError('NOT_FOUND', `unknown control endpoint ${m} ${url.pathname}`);
  }

  /** NDJSON: { progress } lines while the scan runs, then { result: { scan, library } } or { error }. */
  async function scanStream(res: ServerResponse, hooks: ControlServerHooks): Promise<void> {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    watchers.add(res);
    const line = (v: unknown) => {
      if (!res.writableEnded) res.write(JSON.stringify(v) + '\n');
    };
    const timer = setInterval(() => {
      const p = hooks.scanProgress();
      if (p && !p.done) line({ progress: p });
    }, opts.progressMs ?? 250);
    try {
      const result = await hooks.rescan();
      if (!result) line({ error: { code: 'FAILED', message: 'the scan failed or the server is stopping (see its log)' } });
      else line({ result: { scan: result, library: await hooks.totals() } });
    } catch (err) {
      line({ error: { code: errorCode(err), message: messageOf(err) } });
    } finally {
      clearInterval(timer);
      watchers.delete(res);
      res.end();
    }
  }

  async function handleTape(req: IncomingMessage, res: ServerResponse, m: string, url: URL, archive: ArchiveService, a: string | undefined, b: string | undefined, c: string | undefined): Promise<void> {
    if (a === 'jobs') {
      if (!b && m === 'GET') return send(res, 200, await archive.list());
      if (!b && m === 'POST') {
        const body = (await readJson(req)) as { kind?: unknown; targets?: unknown; opts?: { keepDisk?: unknown } };
        if (typeof body.kind !== 'string' || !Array.isArray(body.targets) || !body.targets.every((t) => typeof t === 'string')) {
          throw new ArchiveError('INVALID', 'expected { kind, targets: string[] }');
        }
        const job = await archive.submit(body.kind as JobKind, body.targets as string[], { keepDisk: body.opts?.keepDisk === true });
        return send(res, 201, job);
      }
      if (b && m === 'GET') {
        const job = await archive.get(b);
        if (!job) throw new ArchiveError('NOT_FOUND', `no job ${b}`);
        if (!c) return send(res, 200, job);
        if (c === 'items') return send(res, 200, await archive.items(b));
        if (c === 'watch') return watch(res, job, archive);
      }
    }
    if (a === 'tape') {
      if (!b && m === 'GET') return send(res, 200, await archive.tapeStatus());
      if (b === 'label' && m === 'POST') {
        const body = (await readJson(req)) as { labels?: unknown; force?: unknown };
        const labels = body.labels ?? [];
        if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) throw new ArchiveError('INVALID', 'expected { labels: string[] }');
        return send(res, 200, await archive.label(labels as string[], { force: body.force === true }));
      }
      if (b === 'export' && m === 'POST') {
        const body = (await readJson(req)) as { label?: unknown };
        if (typeof body.label !== 'string') throw new ArchiveError('INVALID', 'expected { label }');
        return send(res, 200, await archive.exportCartridge(body.label));
      }
    }
    throw new ArchiveError('NOT_FOUND', `unknown control endpoint ${m} ${url.pathname}`);
  }

  function watch(res: ServerResponse, initial: JobRecord, archive: ArchiveService): void {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    watchers.add(res);
    const write = (j: JobRecord) => res.write(JSON.stringify(j) + '\n');
    const stopWatching = () => {
      archive.off('job', onJob);
      watchers.delete(res);
    };
    const onJob = (j: JobRecord) => {
      if (j.id !== initial.id) return;
      write(j);
      if (isTerminal(j.state)) {
        stopWatching();
        res.end();
      }
    };
    archive.on('job', onJob);
    res.on('close', stopWatching);
    write(initial);
    if (isTerminal(initial.state)) {
      stopWatching();
      res.end();
      return;
    }
    // The job may have finished between get() and on(): check once more.
    archive.get(initial.id).then((j) => {
      if (j && isTerminal(j.state) && watchers.has(res)) onJob(j);
    }, () => undefined);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The socket is made 0600 at bind(2) (listen binds synchronously): with a permissive umask
    // (0002, 0000 on shared NAS setups) it was group/world-writable until the chmod below, and a
    // local user connecting in between kept an operator connection (archive, recall, tape export).
    const umask = process.umask(0o177);
    try {
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  await chmod(socketPath, 0o600);
  const unregister = await registerServer(socketPath);
  // 'control socket listening' is the caller's line: it knows whether a stop came meanwhile

  return {
    socketPath,
    async close() {
      for (const w of watchers) w.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await rm(socketPath, { force: true });
      await unregister();
    },
  };
}

/** One path segment, percent-decoded; a malformed escape is the caller's error (400), not ours. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ArchiveError('INVALID', `malformed percent-encoding in the control request path: ${part}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': data.length });
  res.end(data);
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const code = errorCode(err);
  const body: ErrorBody = { error: { code, message: messageOf(err) } };
  send(res, statusOf(code), body);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new ArchiveError('INVALID', `request body larger than ${MAX_BODY} bytes`);
    parts.push(c as Buffer);
  }
  if (n === 0) return {};
  try {
    const v = JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch {
    throw new ArchiveError('INVALID', 'request body is not a JSON object');
  }
}
