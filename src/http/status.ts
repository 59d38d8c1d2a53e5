// The status page at the device's presentationURL (`GET /`) and its data (`GET /status.json`).
//
// The page is one HTML document with inline CSS and JS (no external resources) that polls
// /status.json every few seconds and updates its sections in place. It is read-only unless
// actions are passed to statusRoutes (then a rescan button appears; POSTs need a custom
// header, which a cross-site form or image cannot send).
//
// Data comes from a StatusProvider: the server and library parts are required; the tape
// library, stager, jobs, streams and staging cache are optional (a NAS without tape has
// none of them) and each section of the snapshot is read with a time limit, so a stager
// that does not answer shows as "unavailable" instead of hanging the page.
//
// Access control is the server's ACL middleware, which guards every route.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Context } from 'koa';
import type { Router } from '@koa/router';
import type { Catalog } from '../catalog/catalog.js';
import type { Location } from '../catalog/types.js';
import type { ScanProgress } from '../scanner/scanner.js';
import type { TapeCounters } from '../tape/types.js';
import type { HistogramSnapshot } from '../metrics.js';
import type { MediaRouteOptions, StreamEvent, StreamStart } from './delivery.js';
import { statusPageHtml } from './status/page.js';

// ---- shapes -----------------------------------------------------------------------------

/** Where an item's bytes are: 'disk' (disk only), 'tape' (tape, maybe with a head stub), 'both'. */
export type Tier = 'disk' | 'tape' | 'both' | 'none';

export function tierOf(loc: Location | undefined): Tier {
  const disk = !!loc?.disk;
  const tape = !!loc?.tape;
  return disk && tape ? 'both' : disk ? 'disk' : tape ? 'tape' : 'none';
}

export interface LibraryCell {
  /** Item kind: audio, video, image (other when unknown). */
  class: string;
  tier: Tier;
  items: number;
  bytes: number;
}

export interface LibraryStatus {
  items: number;
  bytes: number;
  containers?: number;
  systemUpdateId?: number;
  byClass: Record<string, number>;
  byTier: Partial<Record<Tier, number>>;
  /** Items and bytes per (class, tier) pair; pairs without items are left out. */
  cells: LibraryCell[];
}

export interface TapeDriveStatus {
  index: number;
  name?: string;
  /** empty, loading, ready, locating, reading, writing, unloading, offline, error (free text allowed). */
  state: string;
  /** Barcode of the loaded cartridge. */
  label?: string;
  generation?: string;
  /** What the drive is doing and for whom, e.g. "recall job 12" or "stream of Movie.mkv". */
  activity?: string;
  /** Logical block position, when known. */
  position?: number;
}

export interface TapeSlotStatus {
  slot: number;
  label?: string;
  full?: boolean;
  importExport?: boolean;
}

export interface OfflineCartridge {
  label: string;
  /** Items (or requests) waiting for it. */
  items?: number;
  reason?: string;
  /** ms since epoch when it was first needed. */
  since?: number;
}

export interface TapeStatus {
  kind?: string;
  drives: TapeDriveStatus[];
  slots: TapeSlotStatus[];
  /** Cartridges needed by requests or jobs but outside the library. */
  offlineNeeded?: OfflineCartridge[];
  /** Every cartridge known to be outside the library. */
  offline?: string[];
  counters?: Partial<TapeCounters>;
}

export interface StagerStatus {
  /** running, starting, restarting, down, external (free text allowed). */
  state: string;
  pid?: number;
  restarts: number;
  /** ms since epoch of the last (re)start. */
  since?: number;
  /** Tape reads waiting for admission. */
  queued?: number;
  lastError?: string;
  /** Queue wait as kept by the stager, mirrored into tapedeck_stager_queue_wait_seconds. */
  queueWait?: HistogramSnapshot;
}

export interface JobStatus {
  id: string;
  /** archive, recall, migrate, inventory... */
  kind: string;
  /** queued, running, done, failed, cancelled (free text allowed). */
  state: string;
  description?: string;
  /** Cartridge the job works on. */
  label?: string;
  progress?: { done: number; total?: number; unit?: 'bytes' | 'items' };
  startedAt?: number;
  finishedAt?: number;
  error?: string;
}

export interface ActiveStream {
  id: string;
  title?: string;
  tier: string;
  remote?: string;
  client?: string;
  start?: number;
  end?: number;
  size?: number;
  /** Bytes sent so far. */
  bytes: number;
  startedAt: number;
  /** Average bytes/s since the start. */
  rate?: number;
}

export interface CacheStatus {
  usedBytes: number;
  capacityBytes: number;
  hits: number;
  misses: number;
  evictions?: number;
  segments?: number;
}

export interface ServerInfo {
  name: string;
  version: string;
  uuid?: string;
  urls?: string[];
  /** ms since epoch. */
  startedAt?: number;
  scanning: boolean;
  lastScan?: ScanProgress;
  mediaDirs?: string[];
  systemUpdateId?: number;
}

type Maybe<T> = T | Promise<T>;

/** What the status page and the metrics read. Optional parts render as "not configured". */
export interface StatusProvider {
  server(): Maybe<ServerInfo>;
  library(): Promise<LibraryStatus>;
  /** undefined: no tape library configured. */
  tape?(): Maybe<TapeStatus | undefined>;
  stager?(): Maybe<StagerStatus | undefined>;
  jobs?(): Maybe<JobStatus[]>;
  streams?(): Maybe<ActiveStream[]>;
  /** undefined: no staging cache (no tape tier). */
  cache?(): Maybe<CacheStatus | undefined>;
}

export interface StatusSnapshot {
  /** ms since epoch (server clock; the page computes ages against it). */
  generatedAt: number;
  server: ServerInfo;
  library: LibraryStatus | null;
  tape: TapeStatus | null;
  stager: StagerStatus | null;
  jobs: JobStatus[] | null;
  streams: ActiveStream[];
  cache: CacheStatus | null;
  /** Operator actions this page offers (empty: read-only). */
  actions: string[];
  /** Sections that failed or timed out, with the reason. */
  errors: Record<string, string>;
}

// ---- library totals ---------------------------------------------------------------------

// The catalog hands out the same item array until something changes, so the totals of
// one array are computed once however often the page polls.
const libraryCache = new WeakMap<readonly unknown[], LibraryStatus>();

/** Items and bytes by class and tier, from the catalog's (cached) item list. */
export async function libraryStatus(catalog: Catalog): Promise<LibraryStatus> {
  const items = await catalog.items();
  const hit = libraryCache.get(items);
  if (hit) return { ...hit, systemUpdateId: catalog.systemUpdateId };
  const cells = new Map<string, LibraryCell>();
  const out: LibraryStatus = { items: items.length, bytes: 0, byClass: {}, byTier: {}, cells: [], systemUpdateId: catalog.systemUpdateId };
  for (const it of items) {
    const cls = it.kind ?? 'other';
    const tier = tierOf(it.location);
    const bytes = it.res?.size ?? it.location?.disk?.size ?? it.location?.tape?.size ?? 0;
    const key = `${cls}\u0000${tier}`;
    let c = cells.get(key);
    if (!c) cells.set(key, (c = { class: cls, tier, items: 0, bytes: 0 }));
    c.items++;
    c.bytes += bytes;
    out.bytes += bytes;
    out.byClass[cls] = (out.byClass[cls] ?? 0) + 1;
    out.byTier[tier] = (out.byTier[tier] ?? 0) + 1;
  }
  out.cells = [...cells.values()].sort((a, b) => (a.class + a.tier < b.class + b.tier ? -1 : 1));
  libraryCache.set(items, out);
  return out;
}

// ---- active streams ---------------------------------------------------------------------

export interface StreamTotals {
  /** Bytes delivered by tier, running streams included. */
  bytes: Record<string, number>;
  finished: Record<string, { complete: number; aborted: number }>;
}

/**
 * Keeps the media bodies being streamed (from delivery's onStreamStart/onStream) and the
 * bytes delivered per tier. Emits 'start' (StreamStart) and 'end' (StreamEvent).
 * Use `tracker.hooks` as (or merged into) mediaRoutes options.
 */
export class StreamTracker extends EventEmitter {
  private readonly active = new Set<StreamStart>();
  private readonly doneBytes: Record<string, number> = { disk: 0, tape: 0 };
  private readonly finished: Record<string, { complete: number; aborted: number }> = {
    disk: { complete: 0, aborted: 0 },
    tape: { complete: 0, aborted: 0 },
  };

  readonly hooks: Required<Pick<MediaRouteOptions, 'onStreamStart' | 'onStream'>> = {
    onStreamStart: (s: StreamStart) => {
      this.active.add(s);
      this.emit('start', s);
    },
    onStream: (ev: StreamEvent) => {
      if (ev.stream) this.active.delete(ev.stream);
      this.doneBytes[ev.tier] = (this.doneBytes[ev.tier] ?? 0) + ev.bytes;
      const f = (this.finished[ev.tier] ??= { complete: 0, aborted: 0 });
      if (ev.aborted) f.aborted++;
      else f.complete++;
      this.emit('end', ev);
    },
  };

  /** Streams now running, oldest first. */
  list(now = Date.now()): ActiveStream[] {
    return [...this.active].map((s) => {
      const bytes = s.bytes();
      const secs = (now - s.startedAt) / 1000;
      return {
        id: s.id,
        tier: s.tier,
        remote: s.remote,
        client: s.userAgent?.slice(0, 160),
        start: s.start,
        end: s.end,
        size: s.size,
        bytes,
        startedAt: s.startedAt,
        rate: secs > 0.5 ? Math.round(bytes / secs) : undefined,
      };
    });
  }

  get size(): number {
    return this.active.size;
  }

  totals(): StreamTotals {
    const bytes = { ...this.doneBytes };
    for (const s of this.active) bytes[s.tier] = (bytes[s.tier] ?? 0) + s.bytes();
    const finished: StreamTotals['finished'] = {};
    for (const [k, v] of Object.entries(this.finished)) finished[k] = { ...v };
    return { bytes, finished };
  }
}

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
  const [server, library, tape, stager, jobs, streams, cache] = await Promise.all([
    read('server', () => p.server()),
    read('library', () => p.library()),
    read('tape', p.tape && (() => p.tape!())),
    read('stager', p.stager && (() => p.stager!())),
    read('jobs', p.jobs && (() => p.jobs!())),
    read('streams', p.streams && (() => p.streams!())),
    read('cache', p.cache && (() => p.cache!())),
  ]);
  return {
    generatedAt: Date.now(),
    server: server ?? { name: 'Tapedeck', version: '', scanning: false },
    library: library ?? null,
    tape: tape ?? null,
    stager: stager ?? null,
    jobs: jobs ? orderJobs(jobs) : p.jobs ? [] : null,
    streams: (streams ?? []).slice(0, MAX_STREAMS),
    cache: cache ?? null,
    actions: opts.actions?.rescan ? ['rescan'] : [],
    errors,
  };
}

// ---- routes -----------------------------------------------------------------------------

/** JSON for a <script type="application/json"> block: nothing in it can close the element. */
function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
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
      // A custom header cannot be sent cross-site without a CORS preflight we never allow.
      if (ctx.get('x-tapedeck-action') !== 'rescan') {
        ctx.status = 403;
        ctx.body = 'Forbidden: missing X-Tapedeck-Action header';
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

// ---- the provider for a TapedeckServer ----------------------------------------------------

/** What serverStatusProvider needs of the server (TapedeckServer has all of it). */
export interface ServerLike {
  config: { friendlyName: string };
  uuid: string;
  catalog: Catalog;
  status: { scanning: boolean; lastScan?: ScanProgress };
  mediaDirs: string[];
  urls(): string[];
}

/** Optional parts added to the server's own status (tape tier, streams...). */
export type StatusExtras = Partial<Pick<StatusProvider, 'tape' | 'stager' | 'jobs' | 'cache' | 'streams'>> & {
  /** Active streams from this tracker (titles are looked up in the catalog). */
  tracker?: StreamTracker;
  version?: string;
};

/** A StatusProvider over a running server, plus whatever tape-tier parts are given. */
export function serverStatusProvider(server: ServerLike, extras: StatusExtras = {}): StatusProvider {
  const startedAt = Date.now();
  let version = extras.version;
  const { tracker, ...parts } = extras;
  const provider: StatusProvider = {
    async server() {
      version ??= (await import('../server.js')).VERSION;
      return {
        name: server.config.friendlyName,
        version,
        uuid: server.uuid,
        urls: server.urls(),
        startedAt,
        scanning: server.status.scanning,
        lastScan: server.status.lastScan,
        mediaDirs: server.mediaDirs,
        systemUpdateId: server.catalog.systemUpdateId,
      };
    },
    library: () => libraryStatus(server.catalog),
    ...parts,
  };
  if (tracker && !parts.streams) {
    provider.streams = async () =>
      Promise.all(
        tracker.list().map(async (s) => ({ ...s, title: (await server.catalog.get(s.id).catch(() => undefined))?.title })),
      );
  }
  return provider;
}
