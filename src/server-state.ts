// The server's state as the status page (http/status.ts) and /metrics (metrics.ts) read it:
// the shapes of each part (library by class and tier, tape library, stager, jobs, streams,
// staging cache), the library totals, the tracker of active streams and bytes by tier, and
// the StatusProvider over a running server. Both views read this model; neither defines it.

import { EventEmitter } from 'node:events';
import type { Catalog } from './catalog/catalog.js';
import { itemSize, tierOf, type Tier } from './catalog/tier.js';
import type { ScanProgress } from './scanner/scanner.js';
import type { TapeCounters } from './tape/types.js';
import type { PolicyStatus } from './policy/engine.js';
import type { EventServiceStats } from './upnp/gena.js';

export type { PolicyStatus, EventServiceStats };
import type { MediaRouteOptions, StreamEvent, StreamStart } from './http/delivery.js';
import { VERSION } from './version.js';

// ---- shapes -----------------------------------------------------------------------------

export { tierOf, type Tier };

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
  /** Cartridges the worker keeps loaded for queued container-promotion recalls (recall holds). */
  recallHolds?: number;
  lastError?: string;
  /** Queue wait as kept by the stager, mirrored into tapedeck_stager_queue_wait_seconds. */
  queueWait?: HistogramSnapshot;
  /** Pre-stage requests the worker ran (next items of a container) and the tape bytes they read. */
  prestages?: number;
  prestagedBytes?: number;
  /** Times playback asked a job to give its drive back (pre-emption). */
  preemptions?: number;
  /** Worker read requests failed because tape passes made no progress (a bug guard; should stay 0). */
  stalls?: number;
  /** Tape reads the server failed because no new byte came for too long while a response waited. */
  stalledReads?: number;
  /** Cache writes (or segment syncs) the cache file system refused (ENOSPC, EIO, EROFS ...). */
  cacheWriteErrors?: number;
  /** Read requests that continued uncached (straight from tape) after a cache write error, and their bytes. */
  uncachedReads?: number;
  uncachedBytes?: number;
  /** Mounts the scheduler made for playback, pre-stages and jobs (a job mounting through its own drive lease is not among them). */
  mountsInteractive?: number;
  mountsPrefetch?: number;
  mountsJob?: number;
  /** Time spent in segment syncs, waiting for cache room, and from a segment's last byte to its commit (ms, summed). */
  syncMs?: number;
  roomWaitMs?: number;
  commitDelayMs?: number;
  /** Time playback reads and pre-stages waited for a drive (ms, summed). */
  driveWaitMsInteractive?: number;
  driveWaitMsPrefetch?: number;
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
  /** done of total (item bytes: each item counts once); an archive also has its write pass in written (done = verified). */
  progress?: { done: number; total?: number; unit?: 'bytes' | 'items'; written?: number };
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
  /** The live watch of the media directories (absent when it is off). */
  watch?: WatchInfo;
}

export interface WatchInfo {
  /** Directories watched. */
  dirs: number;
  /** Directories beyond the watch limit, left to the periodic rescan. */
  unwatched: number;
  limited: boolean;
}

/** A histogram's state kept elsewhere (the staging worker's queue wait), to be mirrored by /metrics (see Histogram.setSnapshot). */
export interface HistogramSnapshot {
  /** Upper bounds of the buckets, increasing, without +Inf. */
  buckets: readonly number[];
  /** Observations per bucket, NOT cumulative: buckets.length + 1 entries (the last is above every bound). */
  counts: readonly number[];
  sum: number;
  count: number;
}

export type Maybe<T> = T | Promise<T>;

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
  /** Storage policy: next pass, window, usage against the marks, last pass, promotions. */
  policy?(): Maybe<PolicyStatus | undefined>;
  /** GENA event subscriptions per UPnP service: held now, NOTIFYs sent and failed, subscriptions ended. */
  events?(): Maybe<EventServiceStats[]>;
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
  policy: PolicyStatus | null;
  /** GENA subscriptions per service (null: no event services, e.g. a provider without them). */
  events: EventServiceStats[] | null;
  /** Operator actions this page offers (empty: read-only). */
  actions: string[];
  /** Sections that failed or timed out, with the reason. */
  errors: Record<string, string>;
}

// ---- library totals ---------------------------------------------------------------------

// The totals are computed once per catalog generation (one pass over the stored items,
// none held in memory) however often the page polls.
const libraryCache = new WeakMap<Catalog, { generation: number; status: LibraryStatus }>();

/** Items and bytes by class and tier, from one pass over the catalog's items. */
export async function libraryStatus(catalog: Catalog): Promise<LibraryStatus> {
  const generation = catalog.generation;
  const hit = libraryCache.get(catalog);
  if (hit?.generation === generation) return { ...hit.status, systemUpdateId: catalog.systemUpdateId };
  const cells = new Map<string, LibraryCell>();
  const out: LibraryStatus = { items: 0, bytes: 0, byClass: {}, byTier: {}, cells: [], systemUpdateId: catalog.systemUpdateId };
  for await (const it of catalog.eachItem()) {
    out.items++;
    const cls = it.kind ?? 'other';
    const tier = tierOf(it.location);
    const bytes = itemSize(it);
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
  libraryCache.set(catalog, { generation, status: out });
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

// ---- the provider for a TapedeckServer ----------------------------------------------------

/** What serverStatusProvider needs of the server (TapedeckServer has all of it). */
export interface ServerLike {
  config: { friendlyName: string };
  uuid: string;
  catalog: Catalog;
  status: { scanning: boolean; lastScan?: ScanProgress };
  mediaDirs: string[];
  urls(): string[];
  /** The live watch, when it runs. */
  watcher?: { readonly watched: number; readonly unwatched: ReadonlySet<string>; readonly limited: boolean };
}

/** Optional parts added to the server's own status (tape tier, streams...). */
export type StatusExtras = Partial<Pick<StatusProvider, 'tape' | 'stager' | 'jobs' | 'cache' | 'streams' | 'policy' | 'events'>> & {
  /** Active streams from this tracker (titles are looked up in the catalog). */
  tracker?: StreamTracker;
  version?: string;
};

/** A StatusProvider over a running server, plus whatever tape-tier parts are given. */
export function serverStatusProvider(server: ServerLike, extras: StatusExtras = {}): StatusProvider {
  const startedAt = Date.now();
  const version = extras.version ?? VERSION;
  const { tracker, ...parts } = extras;
  const provider: StatusProvider = {
    async server() {
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
        ...(server.watcher ? { watch: { dirs: server.watcher.watched, unwatched: server.watcher.unwatched.size, limited: server.watcher.limited } } : {}),
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
