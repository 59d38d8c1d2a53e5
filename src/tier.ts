// The tape tier as the server sees it: the supervised staging worker (which owns
// the tape library), the archive/recall/import jobs (which reach tape only through
// the worker's remote library), and the adapters that
// put their state on the status page and the metrics. The server never touches tape.

import type { Catalog } from './catalog/catalog.js';
import type { CatalogObject } from './catalog/types.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { MediaSource } from './http/delivery.js';
import type { CacheStatus, HistogramSnapshot, JobStatus, StagerStatus as PageStagerStatus, StatusExtras, TapeStatus as PageTapeStatus } from './server-state.js';
import { ArchiveService } from './archive/service.js';
import type { JobRecord } from './archive/jobs.js';
import { StagerClient, type StagerStatus } from './staging/client.js';
import { Prestager } from './staging/prestage.js';
import type { TimingPreset } from './tape/timing.js';
import type { WorkerTuning } from './staging/worker.js';

/** An error delivery turns into an HTTP status (503 + Retry-After, …). */
function httpError(status: number, message: string, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(message), { status, expose: true, headers });
}

const ms = (iso?: string) => (iso ? Date.parse(iso) : undefined);

/**
 * A job as the status page shows it; `title` names the object IDs among its targets (items and
 * containers by their titles; paths stay paths, shown relative to their media directory).
 */
export function jobStatusOf(j: JobRecord, title: (id: string) => string | undefined = () => undefined): JobStatus {
  const p = j.progress;
  const named = j.targets.slice(0, 3).map((t) => (t.startsWith('/') || t.startsWith('tape://') ? t : title(t) ?? t));
  // item bytes (an import counts cartridges: its "bytes" are index entries)
  const byBytes = p.bytesTotal > 0 && j.kind !== 'import';
  return {
    id: j.id,
    kind: j.kind,
    state: j.state,
    description: j.activity ?? named.join(', ') + (j.targets.length > 3 ? ` (+${j.targets.length - 3})` : ''),
    progress: byBytes ? { done: p.bytesDone, total: p.bytesTotal, unit: 'bytes', ...(p.bytesWritten !== undefined ? { written: p.bytesWritten } : {}) } : { done: p.itemsDone, total: p.itemsTotal, unit: 'items' },
    startedAt: ms(j.started),
    finishedAt: ms(j.finished),
    error: j.reason,
  };
}

/**
 * Test and benchmark hooks of a server started in code (not settings: `tapedeck serve` never
 * sets them). tapeTiming: figures of the virtual library's timing model handed to the staging
 * worker; stagerTuning: the worker's segment size, read-ahead and lease times (bench/policy.ts
 * scales them with the bytes and the clock of its time-compressed library).
 */
export interface ServerHooks {
  tapeTiming?: Partial<TimingPreset>;
  stagerTuning?: Partial<WorkerTuning>;
  /** Real ms per ms of playback (bench/policy.ts: 1/C, its clients play C times faster). */
  playbackTimeScale?: number;
}

export class TapeTier {
  readonly stager: StagerClient;
  readonly archive: ArchiveService;
  /** Predictive pre-staging of the next items of a container (plays and browses). */
  readonly prestager: Prestager;

  constructor(
    private readonly catalog: Catalog,
    private readonly config: Config,
    private readonly log: Logger,
    hooks: ServerHooks = {},
  ) {
    this.stager = new StagerClient({ config, log: log.child({ component: 'stager' }), ...(hooks.tapeTiming ? { tapeTiming: hooks.tapeTiming } : {}), ...(hooks.stagerTuning ? { tuning: hooks.stagerTuning } : {}), ...(hooks.playbackTimeScale ? { playbackTimeScale: hooks.playbackTimeScale } : {}) });
    this.archive = new ArchiveService({ catalog, library: this.stager.library(), config, log: log.child({ component: 'archive' }) });
    this.prestager = new Prestager(
      catalog,
      this.stager,
      { items: config.prestageItems, seconds: config.prestageSeconds, onBrowse: config.prestageOnBrowse, cacheSize: config.cacheSize },
      log.child({ component: 'prestage' }),
    );
    this.stager.on('needed', (list: { label: string }[]) => {
      for (const c of list ?? []) this.archive.noteNeeded(c.label);
    });
    this.stager.on('flagged', (f: { itemId: string; label: string; message: string }) => this.log.error({ item: f.itemId, label: f.label, err: f.message }, `tape read failed for item ${f.itemId} on ${f.label}`));
    // a worker restart is logged once, by the stager client (with its exit code or signal and the delay)
  }

  async start(): Promise<void> {
    await this.stager.start();
    this.archive.start();
  }

  /** Puts part of the demo library on the virtual tape, once. */
  async archiveDemoOnce(): Promise<void> {
    if (await this.catalog.getMeta('demoArchived')) return;
    const { archiveDemo } = await import('./demo/tape.js'); // loaded only for the demo
    const job = await archiveDemo(this.archive, this.catalog);
    if (job) {
      const done = await this.archive.run(job.id);
      if (done.state !== 'done') throw new Error(`demo archive job ${done.id} ${done.state}: ${done.reason ?? ''}`);
      this.log.info({ job: done.id, items: done.progress.itemsDone }, `demo: ${done.progress.itemsDone} items moved to the virtual tape library`);
    }
    await this.catalog.setMeta('demoArchived', '1');
  }

  /** Media source of an item whose bytes are only on tape (stub + tape). */
  source(item: CatalogObject): MediaSource {
    if (!this.stager.connected && this.stager.mode === 'none') throw httpError(503, 'the tape tier is disabled (tape_backend = none)');
    return this.stager.source(item);
  }

  statusExtras(): Omit<StatusExtras, 'tracker'> {
    return {
      tape: async (): Promise<PageTapeStatus> => {
        const t = await this.archive.tapeStatus();
        const counts = new Map(t.cartridges.map((c) => [c.label, c]));
        return {
          kind: t.backend,
          drives: t.drives.map((d) => ({ index: d.index, name: d.name, state: !d.online ? 'offline' : !d.loaded ? 'empty' : d.ready ? 'ready' : 'loading', label: d.label, position: d.block })),
          slots: t.slots.map((s) => ({ slot: s.slot, label: s.label, full: !!s.label, importExport: s.importExport })),
          offlineNeeded: t.needed.map((label) => ({ label, items: counts.get(label)?.items, reason: 'requested while outside the library' })),
          offline: t.offline,
          counters: tapeCounters(this.stager.stats()),
        };
      },
      stager: async (): Promise<PageStagerStatus> => pageStagerStatus(await this.stager.status()),
      jobs: async () => {
        const jobs = (await this.archive.list()).slice(-50);
        const ids = [...new Set(jobs.flatMap((j) => j.targets.slice(0, 3)).filter((t) => !t.startsWith('/') && !t.startsWith('tape://')))];
        const titles = new Map<string, string>();
        for (const id of ids) {
          const o = await this.catalog.get(id).catch(() => undefined);
          if (o?.title) titles.set(id, o.title);
        }
        return jobs.map((j) => jobStatusOf(j, (id) => titles.get(id)));
      },
      cache: async (): Promise<CacheStatus | undefined> => {
        const s = await this.stager.status();
        const c = s.worker?.cache as Record<string, number> | undefined;
        if (!c) return undefined;
        const k = s.counters;
        return { usedBytes: c.used ?? c.usedBytes ?? 0, capacityBytes: c.capacity ?? c.capacityBytes ?? this.config.cacheSize, hits: k.cacheHits ?? 0, misses: k.cacheMisses ?? 0, evictions: k.evictions ?? 0, segments: c.segments };
      },
    };
  }

  async stop(): Promise<void> {
    await this.archive.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'archive stop failed'));
    await this.stager.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'stager stop failed'));
  }
}

/**
 * The tape library's counters as the status page and /metrics show them, from the staging
 * worker's stats: the worker owns the library, so its `lib*` figures count every operation
 * (playback, prefetch, and the archive jobs that reach the library through the worker).
 */
export function tapeCounters(stats: Record<string, number>): PageTapeStatus['counters'] {
  const out: NonNullable<PageTapeStatus['counters']> = {};
  for (const key of ['mounts', 'unloads', 'locates', 'bytesRead', 'bytesWritten', 'readErrors'] as const) {
    const v = stats['lib' + key[0]!.toUpperCase() + key.slice(1)];
    if (typeof v === 'number') out[key] = v;
  }
  return out;
}

/** The named numeric counters present in `c` (the worker is another process: never trust shapes). */
/** The stager section of the status page and /metrics, from the stager client's status. */
export function pageStagerStatus(s: StagerStatus): PageStagerStatus {
  return {
    state: s.connected ? (s.mode === 'socket' ? 'external' : 'running') : s.restarts > 0 ? 'restarting' : 'starting',
    pid: s.pid,
    restarts: s.restarts,
    queued: s.worker?.queue.length,
    ...(Array.isArray(s.worker?.recallHolds) ? { recallHolds: s.worker.recallHolds.length } : {}),
    queueWait: validSnapshot(s.worker?.queueWait),
    lastError: s.error,
    ...counterFields(s.counters, ['prestages', 'prestagedBytes', 'preemptions', 'stalls', 'stalledReads', 'cacheWriteErrors', 'uncachedReads', 'uncachedBytes', 'mountsInteractive', 'mountsPrefetch', 'mountsJob', 'syncMs', 'roomWaitMs', 'commitDelayMs', 'driveWaitMsInteractive', 'driveWaitMsPrefetch']),
  };
}

function counterFields<K extends string>(c: Record<string, unknown> | undefined, keys: K[]): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const k of keys) if (typeof c?.[k] === 'number' && Number.isFinite(c[k])) out[k] = c[k] as number;
  return out;
}

/** The worker's queue-wait histogram, when it has the shape /metrics expects (a worker is another process). */
function validSnapshot(v: unknown): HistogramSnapshot | undefined {
  const h = v as HistogramSnapshot | undefined;
  if (!h || !Array.isArray(h.buckets) || !Array.isArray(h.counts) || h.counts.length !== h.buckets.length + 1) return undefined;
  return h;
}
