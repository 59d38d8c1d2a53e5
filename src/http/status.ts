// The status page at the device's presentationURL (`GET /`) and its data (`GET /status.json`).
//
// The page is one HTML document with inline CSS and JS (no external resources) that polls
// /status.json every few seconds and updates its sections in place. It is read-only unless
// actions are passed to statusRoutes (then a rescan button appears; POSTs need a custom
// header, which a cross-site form or image cannot send).
//
// Data comes from a StatusProvider (the server-state model in src/server-state.ts): the server and library parts are required; the tape
// library, stager, jobs, streams and staging cache are optional (a NAS without tape has
// none of them) and each section of the snapshot is read with a time limit, so a stager
// that does not answer shows as "unavailable" instead of hanging the page.
//
// Access control is the server's ACL middleware, which guards every route.

import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type { Router } from '@koa/router';
import type { JobStatus, Maybe, StatusProvider, StatusSnapshot } from '../server-state.js';
import { statusPageHtml } from './status/page.js';
import { pathRoots, relativePaths, type PathRoot } from './status-paths.js';
import { crossOriginOf } from './own-host.js';

// ---- snapshot ---------------------------------------------------------------------------

const MAX_JOBS = 50;
const MAX_STREAMS = 200;

function withTimeout<T>(p: Maybe<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    Promise.resolve(p),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const JOB_ORDER: Record<string, number> = { running: 0, queued: 1, waiting: 1 };

/** Running jobs first, then queued, then the most recently finished. */
function orderJobs(jobs: JobStatus[]): JobStatus[] {
  return [...jobs]
    .sort((a, b) => (JOB_ORDER[a.state] ?? 2) - (JOB_ORDER[b.state] ?? 2) || (b.finishedAt ?? b.startedAt ?? 0) - (a.finishedAt ?? a.startedAt ?? 0))
    .slice(0, MAX_JOBS);
}

export interface StatusOptions {
  /** How often the page polls /status.json (ms, default 3000). */
  pollMs?: number;
  /** Time limit per section of the snapshot (ms, default 3000). */
  sectionTimeoutMs?: number;
  /** Operator actions; without them the page is read-only. */
  actions?: { rescan?(): Promise<unknown> | void };
  /**
   * Directories whose paths the snapshot shows relative to them (media directories by name,
   * the server's own ones by setting): every allowed client reads the page. Not applied for
   * view 'operator' (the local control socket).
   */
  roots?: () => PathRoot[];
  /** The addresses the server listens on: an Origin naming one of them is same-origin (besides the socket's own address and localhost names). */
  ownAddresses?: () => readonly string[];
  view?: 'network' | 'operator';
}

/** Reads every section of the provider (in parallel, each with a time limit). */
export async function collectStatus(provider: StatusProvider, opts: StatusOptions = {}): Promise<StatusSnapshot> {
  const ms = opts.sectionTimeoutMs ?? 3000;
  const errors: Record<string, string> = {};
  const read = async <T>(name: string, fn: (() => Maybe<T>) | undefined): Promise<T | undefined> => {
    if (!fn) return undefined;
    try {
      return await withTimeout(fn(), ms);
    } catch (err) {
      errors[name] = (err as Error)?.message ?? String(err);
      return undefined;
    }
  };
  const p = provider;
  const [server, library, tape, stager, jobs, streams, cache, policy, events] = await Promise.all([
    read('server', () => p.server()),
    read('library', () => p.library()),
    read('tape', p.tape && (() => p.tape!())),
    read('stager', p.stager && (() => p.stager!())),
    read('jobs', p.jobs && (() => p.jobs!())),
    read('streams', p.streams && (() => p.streams!())),
    read('cache', p.cache && (() => p.cache!())),
    read('policy', p.policy && (() => p.policy!())),
    read('events', p.events && (() => p.events!())),
  ]);
  const snap: StatusSnapshot = {
    generatedAt: Date.now(),
    server: server ?? { name: 'Tapedeck', version: '', scanning: false },
    library: library ?? null,
    tape: tape ?? null,
    stager: stager ?? null,
    jobs: jobs ? orderJobs(jobs) : p.jobs ? [] : null,
    streams: (streams ?? []).slice(0, MAX_STREAMS),
    cache: cache ?? null,
    policy: policy ?? null,
    events: events ?? null,
    actions: opts.actions?.rescan ? ['rescan'] : [],
    errors,
  };
  if (opts.view === 'operator') return snap;
  return relativePaths(snap, opts.roots?.() ?? pathRoots(snap.server.mediaDirs ?? []));
}

// ---- routes -----------------------------------------------------------------------------

/** JSON for a <script type="application/json"> block: nothing in it can close the element. */
function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/**
 * Why a request does not come from the status page itself, or undefined (http/own-host.ts
 * crossOriginOf): the custom header already keeps cross-site forms out.
 */
export function crossOrigin(ctx: Context, own: readonly string[] = []): string | undefined {
  return crossOriginOf(ctx.req, own);
}

function noStore(ctx: Context): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Content-Type-Options', 'nosniff');
}

/**
 * `GET /` (the status page, with the first snapshot inlined so it paints at once) and
 * `GET /status.json`; with `opts.actions.rescan`, also `POST /status/rescan`.
 */
export function statusRoutes(router: Router, provider: StatusProvider, opts: StatusOptions = {}): void {
  const pollMs = Math.max(500, opts.pollMs ?? 3000);

  router.get('/status.json', async (ctx) => {
    const snap = await collectStatus(provider, opts);
    noStore(ctx);
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = JSON.stringify(snap);
  });

  router.get('/', async (ctx) => {
    const snap = await collectStatus(provider, opts);
    const nonce = randomBytes(16).toString('base64');
    noStore(ctx);
    ctx.set(
      'Content-Security-Policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = statusPageHtml({ title: snap.server.name, nonce, pollMs, initialJson: jsonForScript(snap) });
  });

  const rescan = opts.actions?.rescan;
  if (rescan) {
    router.post('/status/rescan', async (ctx) => {
      // (allowed subnets only: the server's ACL guards every route)
      // A custom header cannot be sent cross-site without a CORS preflight we never allow.
      if (ctx.get('x-tapedeck-action') !== 'rescan') {
        ctx.status = 403;
        ctx.body = 'Forbidden: missing X-Tapedeck-Action header';
        return;
      }
      const cross = crossOrigin(ctx, opts.ownAddresses?.() ?? []);
      if (cross) {
        ctx.status = 403;
        ctx.body = `Forbidden: ${cross}`;
        return;
      }
      void Promise.resolve()
        .then(() => rescan())
        .catch(() => undefined); // the scan reports its own failures in the log and in lastScan
      ctx.status = 202;
      ctx.body = { accepted: 'rescan' };
    });
  }
}
