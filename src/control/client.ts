// Control socket client (used by the CLI when a server holds the catalog).

import { existsSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import type { ArchiveErrorCode } from '../archive/errors.js';
import { ArchiveError, EXIT_CODES } from '../archive/errors.js';
import { isTerminal, type JobItem, type JobKind, type JobOptions, type JobRecord } from '../archive/jobs.js';
import type { LabelResult, TapeStatus } from '../archive/service.js';
import type { ErrorBody } from './protocol.js';
import type { ScanProgress } from '../scanner/scanner.js';

/**
 * How long a command waits for the server's answer to its ping: a server that accepts the
 * connection and never answers (stopped with SIGSTOP, its event loop stuck) is not waited for
 * forever; the command says so (BUSY) instead.
 */
const PING_TIMEOUT_MS = 15_000;

/**
 * After this long without a byte of an answer (a reply, or a line of a job's or scan's progress),
 * the command pings the server on a second connection: a server that answers the ping is alive
 * and busy (a label pass, a quiet job waiting for a drive), so the command waits on; one that does
 * not answer within PING_TIMEOUT_MS is stopped or stuck, and the command ends (BUSY, exit 3)
 * instead of hanging forever.
 */
const IDLE_MS = 15_000;

/** `fn` that first stops the request's watchdog (once the answer settles there is nothing to watch). */
function stopFirst<A extends unknown[]>(stop: () => void, fn: (...a: A) => void): (...a: A) => void {
  return (...a: A) => {
    stop();
    fn(...a);
  };
}

export interface ControlClientOptions {
  /** Quiet time (no byte of the answer) after which the server is pinged (ms, default 15 s). */
  idleMs?: number;
  /** Time the server has to answer that ping, and the ping before a command (ms, default 15 s). */
  pingTimeoutMs?: number;
}

export class ControlClient {
  private readonly idleMs: number;
  private readonly pingTimeoutMs: number;

  constructor(
    readonly socketPath: string,
    opts: ControlClientOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? IDLE_MS;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? PING_TIMEOUT_MS;
  }

  /**
   * Watches a request's answer for silence (see IDLE_MS): `touch()` on every byte; `stuck` is the error
   * once the server failed a ping, after which the request has been destroyed.
   */
  private watchdog(req: ClientRequest, what: string): { touch(): void; stop(): void; readonly stuck: ArchiveError | undefined } {
    let last = Date.now();
    let stuck: ArchiveError | undefined;
    let pinging = false;
    const timer = setInterval(
      () => {
        if (pinging || stuck || Date.now() - last < this.idleMs) return;
        pinging = true;
        this.ping(this.pingTimeoutMs).then(
          () => {
            pinging = false;
            last = Date.now();
          },
          () => {
            pinging = false;
            const quiet = Math.round((Date.now() - last) / 1000);
            stuck = new ArchiveError(
              'BUSY',
              `the server at ${this.socketPath} stopped answering: nothing of its answer to ${what} for ${quiet} s, and no answer to a ping within ${this.pingTimeoutMs / 1000} s (is it stopped or stuck? its log may say why)`,
            );
            req.destroy(stuck);
          },
        );
      },
      Math.max(10, Math.min(this.idleMs, 1000)),
    );
    timer.unref();
    return {
      touch: () => (last = Date.now()),
      stop: () => clearInterval(timer),
      get stuck() {
        return stuck;
      },
    };
  }

  /**
   * `timeoutMs`: the most the answer may keep the command waiting; without it, as long as the
   * server answers pings while it works (see IDLE_MS).
   */
  request<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      let dog: ReturnType<ControlClient['watchdog']> | undefined;
      resolve = stopFirst(() => dog?.stop(), resolve);
      reject = stopFirst(() => dog?.stop(), reject);
      const req = request(
        { socketPath: this.socketPath, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} },
        (res) => {
          const parts: Buffer[] = [];
          dog?.touch();
          res.on('data', (c: Buffer) => {
            dog?.touch();
            parts.push(c);
          });
          res.on('error', (err) => reject(dog?.stuck ?? err));
          res.on('end', () => {
            const text = Buffer.concat(parts).toString('utf8');
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              reject(new ArchiveError('FAILED', `control socket: bad answer to ${method} ${path} (HTTP ${res.statusCode})`));
              return;
            }
            if ((res.statusCode ?? 500) >= 400) reject(toError(json, res.statusCode));
            else resolve(json as T);
          });
        },
      );
      if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s (is the server stopped or stuck?)`)));
      else dog = this.watchdog(req, `${method} ${path}`);
      req.on('error', (err) => reject(dog?.stuck ?? new ArchiveError('BUSY', `cannot reach the server's control socket ${this.socketPath}: ${err.message}`, { cause: err })));
      req.end(data);
    });
  }

  ping(timeoutMs = this.pingTimeoutMs): Promise<{ service: string; protocol: number; pid: number }> {
    return this.request('GET', '/v1/ping', undefined, timeoutMs);
  }
  submit(kind: JobKind, targets: string[], opts: JobOptions = {}): Promise<JobRecord> {
    return this.request('POST', '/v1/jobs', { kind, targets, opts });
  }
  list(): Promise<JobRecord[]> {
    return this.request('GET', '/v1/jobs');
  }
  get(id: string): Promise<JobRecord> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }
  items(id: string): Promise<JobItem[]> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/items`);
  }
  tapeStatus(): Promise<TapeStatus> {
    return this.request('GET', '/v1/tape');
  }
  label(labels: string[], opts: { force?: boolean } = {}): Promise<LabelResult[]> {
    return this.request('POST', '/v1/tape/label', { labels, force: opts.force === true });
  }
  exportCartridge(label: string): Promise<{ label: string; offline: true }> {
    return this.request('POST', '/v1/tape/export', { label });
  }

  listItems<T = unknown>(query: { targets?: string[]; tier?: string; sort?: string }): Promise<T> {
    return this.request('POST', '/v1/items', query);
  }
  policyPlan<T = unknown>(): Promise<T> {
    return this.request('GET', '/v1/policy/plan');
  }
  policyRun<T = unknown>(): Promise<T> {
    return this.request('POST', '/v1/policy/run', {});
  }

  /** The server's full status snapshot (absolute paths: the socket is the local operator's). */
  status(): Promise<unknown> {
    return this.request('GET', '/v1/status');
  }

  /** Run (or join) the server's incremental scan; onProgress hears its progress. */
  async scan(onProgress: (p: ScanProgress) => void, signal?: AbortSignal): Promise<{ scan: ScanProgress; library: Record<string, number> }> {
    type Line = { progress?: ScanProgress; result?: { scan: ScanProgress; library: Record<string, number> }; error?: ErrorBody['error'] };
    let end: Line | undefined;
    await this.stream<Line>('POST', '/v1/scan', signal, (m) => {
      if (m.progress) onProgress(m.progress);
      if (m.result || m.error) end = m;
    });
    if (end?.error) throw toError({ error: end.error }, 500);
    if (!end?.result) throw new ArchiveError('FAILED', 'the server stopped before the scan ended');
    return end.result;
  }

  /**
   * Follow a job until it is done or failed; onJob hears every update. When the server goes away
   * first (killed, crashed or stopped): INTERRUPTED (exit 130), saying the job resumes. `known`:
   * the job as its submit answered, so that message names its kind even when the server went away
   * before the watch's first line.
   */
  async watch(id: string, onJob: (j: JobRecord) => void, signal?: AbortSignal, known?: JobRecord): Promise<JobRecord> {
    let last: JobRecord | undefined = known?.id === id ? known : undefined;
    let lost: ArchiveError | undefined;
    try {
      await this.stream<JobRecord>('GET', `/v1/jobs/${encodeURIComponent(id)}/watch`, signal, (j) => {
        last = j;
        onJob(j);
      });
    } catch (err) {
      if (err instanceof ArchiveError && err.code === 'BUSY') {
        throw new ArchiveError('BUSY', `${err.message}. Job ${id} is durable: \`tapedeck jobs ${id}\` shows it once the server answers again`, { cause: err });
      }
      if (!(err instanceof ArchiveError && err.code === 'INTERRUPTED')) throw err;
      lost = err;
    }
    if (last && isTerminal(last.state)) return last;
    const j = last as JobRecord | undefined;
    const where = j ? ` (${j.state}, ${j.progress.itemsDone} of ${j.progress.itemsTotal} item(s) done)` : '';
    throw new ArchiveError(
      'INTERRUPTED',
      `the server went away while ${j ? `${j.kind} job` : 'job'} ${id} was unfinished${where}${lost ? ': the control connection broke' : ': it stopped'}. The job is durable: it resumes when the server starts again (\`tapedeck jobs ${id}\` shows it)`,
      lost ? { cause: lost } : {},
    );
  }

  /** An NDJSON answer: onLine hears each JSON line; resolves when the server ends it. */
  private stream<T>(method: string, path: string, signal: AbortSignal | undefined, onLine: (v: T) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      resolve = stopFirst(() => dog.stop(), resolve);
      reject = stopFirst(() => dog.stop(), reject);
      const req = request({ socketPath: this.socketPath, method, path, signal }, (res) => {
        dog.touch();
        if ((res.statusCode ?? 500) >= 400) {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            let j: unknown;
            try {
              j = JSON.parse(Buffer.concat(parts).toString('utf8'));
            } catch {
              j = undefined;
            }
            reject(toError(j, res.statusCode));
          });
          return;
        }
        // the server killed or crashed mid-answer: the connection breaks before the end
        let ended = false;
        const gone = (cause?: unknown) => dog.stuck ?? (signal?.aborted ? Object.assign(new Error('aborted'), { cause }) : new ArchiveError('INTERRUPTED', `the server went away (control socket ${this.socketPath})`, cause !== undefined ? { cause } : {}));
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          dog.touch();
          buf += chunk;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!line.trim()) continue;
            let v: T;
            try {
              v = JSON.parse(line) as T;
            } catch {
              continue;
            }
            onLine(v);
          }
        });
        res.on('end', () => {
          ended = true;
          resolve();
        });
        res.on('error', (err) => reject(gone(err)));
        res.on('close', () => ended || reject(gone()));
      });
      // progress lines keep it going however long the job or scan takes; silence is checked with a ping
      const dog = this.watchdog(req, `${method} ${path}`);
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (dog.stuck) reject(dog.stuck);
        else if (signal?.aborted) reject(err);
        // connected, then the connection broke before the answer began (the server was killed
        // or crashed in between): it went away, as when it breaks mid-answer
        else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') reject(new ArchiveError('INTERRUPTED', `the server went away (control socket ${this.socketPath})`, { cause: err }));
        else reject(new ArchiveError('BUSY', `cannot reach the server's control socket ${this.socketPath}: ${err.message}`, { cause: err }));
      });
      req.end();
    });
  }
}

/**
 * The client of the server answering at `socketPath`, or undefined when none does (no socket,
 * a stale one left by a killed server, or no answer). A CLI command asks this before it opens
 * the catalog itself: a running server holds LevelDB's lock, except for the moment it closes and
 * opens the catalog again (LevelStore.reopen), when a command that opened it would take it away.
 */
export async function answeringServer(socketPath: string): Promise<ControlClient | undefined> {
  if (!existsSync(socketPath)) return undefined;
  const client = new ControlClient(socketPath);
  try {
    await client.ping();
    return client;
  } catch {
    return undefined;
  }
}

function toError(body: unknown, status: number | undefined): ArchiveError {
  const e = (body as ErrorBody | undefined)?.error;
  if (e && typeof e.message === 'string') return new ArchiveError(e.code in EXIT_CODES ? (e.code as ArchiveErrorCode) : 'FAILED', e.message);
  return new ArchiveError('FAILED', `control socket answered HTTP ${status}`);
}
