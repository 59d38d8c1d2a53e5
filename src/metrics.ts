// Metrics: a small registry (counters, gauges, histograms with labels) rendered in the
// Prometheus text exposition format 0.0.4, and the set of Tapedeck server metrics on top.
//
// Written here rather than taken from prom-client: what we need is ~200 lines, and the
// server then carries no dependency that registers global collectors or timers.
//
// Format (https://prometheus.io/docs/instrumenting/exposition_formats/):
//   # HELP <name> <help, with \ and newline escaped>
//   # TYPE <name> counter|gauge|histogram
//   <name>{<label>="<value, with \ " and newline escaped>",...} <value>
// Histograms expose <name>_bucket{le="..."} (cumulative, ending with le="+Inf"),
// <name>_sum and <name>_count.
//
// Values that live elsewhere (the stager's cache counters, catalog totals, scan progress)
// are read at scrape time by `collect` callbacks; `scrape()` runs them, then renders.
// Label sets per metric are capped (maxSeries) so hostile input can never grow memory.

import type { Context, Middleware } from 'koa';
import type { Router } from '@koa/router';
import type { HistogramSnapshot, StatusProvider, StreamTracker, Tier } from './server-state.js';
import { QUEUE_WAIT_BUCKETS } from './staging/protocol.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Record<string, string | number>;
export type MetricType = 'counter' | 'gauge' | 'histogram';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Default histogram buckets (seconds), as the Prometheus client libraries use. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Number as the exposition format writes it (Go float syntax for the special values). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts: string[] = [];
  for (let i = 0; i < names.length; i++) parts.push(`${names[i]}="${escapeLabelValue(values[i])}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

abstract class Metric<S> {
  protected readonly series = new Map<string, { values: string[]; s: S }>();
  /** Label sets refused because maxSeries was reached. */
  dropped = 0;

  constructor(
    readonly type: MetricType,
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    protected readonly maxSeries: number,
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`metrics: invalid metric name ${JSON.stringify(name)}`);
    const seen = new Set<string>();
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new Error(`metrics: invalid label name ${JSON.stringify(l)} on ${name}`);
      if (seen.has(l)) throw new Error(`metrics: label ${l} given twice on ${name}`);
      seen.add(l);
    }
  }

  protected abstract fresh(): S;

  /** The series of a label set, created on first use; undefined once maxSeries is reached. */
  protected get(labels: Labels | undefined, create = true): S | undefined {
    const values = this.labelValues(labels);
    const key = values.join('\u0000');
    const hit = this.series.get(key);
    if (hit || !create) return hit?.s;
    if (this.series.size >= this.maxSeries) {
      this.dropped++;
      return undefined;
    }
    const s = this.fresh();
    this.series.set(key, { values, s });
    return s;
  }

  private labelValues(labels: Labels | undefined): string[] {
    if (labels) {
      for (const k of Object.keys(labels)) {
        if (!this.labelNames.includes(k)) throw new Error(`metrics: ${this.name} has no label ${JSON.stringify(k)} (labels: ${this.labelNames.join(', ') || 'none'})`);
      }
    }
    return this.labelNames.map((n) => {
      const v = labels?.[n];
      return v === undefined ? '' : String(v);
    });
  }

  /** Forgets every label set (for metrics mirrored from elsewhere at scrape time). */
  reset(): void {
    this.series.clear();
  }

  protected sorted(): { values: string[]; s: S }[] {
    return [...this.series.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, v]) => v);
  }

  render(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    // A metric without labels always has its one series (0 until something happens).
    if (this.labelNames.length === 0 && this.series.size === 0) this.get(undefined);
    for (const { values, s } of this.sorted()) out += this.renderSeries(values, s);
    return out;
  }

  protected abstract renderSeries(values: string[], s: S): string;
}

type Num = { v: number };

/** Split `(labels?, n?)` / `(n)` call forms. */
function args(a: Labels | number | undefined, b: number | undefined, dflt: number): [Labels | undefined, number] {
  return typeof a === 'number' ? [undefined, a] : [a, b ?? dflt];
}

export class Counter extends Metric<Num> {
  constructor(name: string, help: string, labelNames: readonly string[], maxSeries: number) {
    super('counter', name, help, labelNames, maxSeries);
  }
  protected fresh(): Num {
    return { v: 0 };
  }
  /** Adds n (default 1; must be >= 0). */
  inc(labels?: Labels | number, n?: number): void {
    const [l, by] = args(labels, n, 1);
    if (!(by >= 0)) throw new Error(`metrics: counter ${this.name} can only go up (got ${by})`);
    const s = this.get(l);
    if (s) s.v += by;
  }
  /**
   * Sets the value: only for mirroring a cumulative count kept elsewhere (e.g. the stager's
   * cache hits). A lower value than before reads as a counter reset, which rate() handles.
   */
  set(labels: Labels | number | undefined, v?: number): void {
    const [l, val] = args(labels, v, 0);
    if (!(val >= 0)) throw new Error(`metrics: counter ${this.name} cannot be set to ${val}`);
    const s = this.get(l);
    if (s) s.v = val;
  }
  /** Current value of a series (0 when it does not exist; reading never creates it). */
  value(labels?: Labels): number {
    return this.get(labels, false)?.v ?? 0;
  }
  protected renderSeries(values: string[], s: Num): string {
    return `${this.name}${labelText(this.labelNames, values)} ${formatValue(s.v)}\n`;
  }
}

export class Gauge extends Metric<Num> {
  constructor(name: string, help: string, labelNames: readonly string[], maxSeries: number) {
    super('gauge', name, help, labelNames, maxSeries);
  }
  protected fresh(): Num {
    return { v: 0 };
  }
  set(labels: Labels | number | undefined, v?: number): void {
    const [l, val] = args(labels, v, 0);
    const s = this.get(l);
    if (s) s.v = val;
  }
  inc(labels?: Labels | number, n?: number): void {
    const [l, by] = args(labels, n, 1);
    const s = this.get(l);
    if (s) s.v += by;
  }
  dec(labels?: Labels | number, n?: number): void {
    const [l, by] = args(labels, n, 1);
    const s = this.get(l);
    if (s) s.v -= by;
  }
  /** Current value of a series (0 when it does not exist; reading never creates it). */
  value(labels?: Labels): number {
    return this.get(labels, false)?.v ?? 0;
  }
  protected renderSeries(values: string[], s: Num): string {
    return `${this.name}${labelText(this.labelNames, values)} ${formatValue(s.v)}\n`;
  }
}

type Hist = { counts: number[]; sum: number; count: number };

export class Histogram extends Metric<Hist> {
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[], maxSeries: number) {
    super('histogram', name, help, labelNames, maxSeries);
    if (labelNames.includes('le')) throw new Error(`metrics: histogram ${name} cannot have a label named le`);
    const b = [...buckets];
    if (b.length && b[b.length - 1] === Infinity) b.pop();
    if (b.length === 0) throw new Error(`metrics: histogram ${name} needs at least one finite bucket`);
    for (let i = 0; i < b.length; i++) {
      if (!Number.isFinite(b[i]) || (i > 0 && b[i] <= b[i - 1])) throw new Error(`metrics: histogram ${name} buckets must be finite and increasing`);
    }
    this.buckets = b;
  }
  protected fresh(): Hist {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }
  /** Records one observation (NaN is ignored). */
  observe(labels: Labels | number | undefined, v?: number): void {
    const [l, val] = args(labels, v, NaN);
    if (Number.isNaN(val)) return;
    const s = this.get(l);
    if (!s) return;
    let i = 0;
    while (i < this.buckets.length && val > this.buckets[i]) i++;
    s.counts[i]++;
    s.sum += val;
    s.count++;
  }
  /**
   * Replaces a series with a histogram kept elsewhere (e.g. the stager process). Bounds that
   * differ from ours are re-binned into our smallest bucket that holds them, so `le` stays
   * an upper bound.
   */
  setSnapshot(labels: Labels | undefined, snap: HistogramSnapshot): void {
    if (snap.counts.length !== snap.buckets.length + 1) throw new Error(`metrics: snapshot for ${this.name} needs buckets.length + 1 counts`);
    const s = this.get(labels);
    if (!s) return;
    s.counts.fill(0);
    snap.counts.forEach((c, i) => {
      const bound = i < snap.buckets.length ? snap.buckets[i] : Infinity;
      let j = 0;
      while (j < this.buckets.length && bound > this.buckets[j]) j++;
      s.counts[j] += c;
    });
    s.sum = snap.sum;
    s.count = snap.count;
  }
  /** Count and sum of a series (tests, status page). */
  stats(labels?: Labels): { count: number; sum: number } {
    const s = this.get(labels, false);
    return { count: s?.count ?? 0, sum: s?.sum ?? 0 };
  }
  protected renderSeries(values: string[], s: Hist): string {
    let out = '';
    let cum = 0;
    for (let i = 0; i <= this.buckets.length; i++) {
      cum += s.counts[i];
      const le = i < this.buckets.length ? formatValue(this.buckets[i]) : '+Inf';
      out += `${this.name}_bucket${labelText(this.labelNames, values, ['le', le])} ${cum}\n`;
    }
    const lt = labelText(this.labelNames, values);
    out += `${this.name}_sum${lt} ${formatValue(s.sum)}\n${this.name}_count${lt} ${s.count}\n`;
    return out;
  }
}

export type Collector = () => void | Promise<void>;

export interface MetricsOptions {
  /** Most label sets per metric (default 1000). */
  maxSeries?: number;
  /** Time allowed to each collector per scrape (default 5000 ms). */
  collectTimeoutMs?: number;
  /** Counter of failed/timed-out collectors (default tapedeck_metrics_collect_errors_total). */
  collectErrorsName?: string;
}

/** A registry of metrics. Names are unique; asking again for the same name and shape returns the same metric. */
export class Metrics {
  private readonly metrics = new Map<string, Counter | Gauge | Histogram>();
  private readonly collectors = new Set<Collector>();
  private readonly maxSeries: number;
  private readonly collectTimeoutMs: number;
  private readonly collectErrors: Counter;

  constructor(opts: MetricsOptions = {}) {
    this.maxSeries = opts.maxSeries ?? 1000;
    this.collectTimeoutMs = opts.collectTimeoutMs ?? 5000;
    this.collectErrors = this.counter(
      opts.collectErrorsName ?? 'tapedeck_metrics_collect_errors_total',
      'Collectors that failed or timed out while reading values at scrape time.',
    );
  }

  private register<M extends Counter | Gauge | Histogram>(type: MetricType, name: string, labelNames: readonly string[], make: () => M): M {
    const have = this.metrics.get(name);
    if (have) {
      if (have.type !== type || have.labelNames.join(',') !== labelNames.join(',')) {
        throw new Error(`metrics: ${name} is already registered as a ${have.type} with labels [${have.labelNames.join(', ')}]`);
      }
      return have as M;
    }
    const m = make();
    this.metrics.set(name, m);
    return m;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.register('counter', name, labelNames, () => new Counter(name, help, labelNames, this.maxSeries));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.register('gauge', name, labelNames, () => new Gauge(name, help, labelNames, this.maxSeries));
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = DEFAULT_BUCKETS): Histogram {
    return this.register('histogram', name, labelNames, () => new Histogram(name, help, labelNames, buckets, this.maxSeries));
  }

  get(name: string): Counter | Gauge | Histogram | undefined {
    return this.metrics.get(name);
  }

  /** Registers a callback run at each scrape (before rendering). Returns a function that removes it. */
  collect(fn: Collector): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }

  /** The exposition text of the current values (does not run collectors; see scrape()). */
  render(): string {
    let out = '';
    for (const m of this.metrics.values()) out += m.render();
    return out;
  }

  /** Runs every collector (failures and timeouts are counted, not thrown), then renders. */
  async scrape(): Promise<string> {
    await Promise.all(
      [...this.collectors].map(async (fn) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve().then(fn),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error('collector timed out')), this.collectTimeoutMs);
            }),
          ]);
        } catch {
          this.collectErrors.inc();
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return this.render();
  }
}

/** `GET /metrics`: the Prometheus text of `metrics` (collectors run per scrape). */
export function metricsRoute(router: Router, metrics: Metrics, path = '/metrics'): void {
  router.get(path, async (ctx) => {
    const text = await metrics.scrape();
    ctx.set('Content-Type', PROMETHEUS_CONTENT_TYPE);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = text;
  });
}

// ---------------------------------------------------------------------------
// The Tapedeck server's metrics

/** Upper bounds (s) for a media source's open(): disk is ms, a head stub or cache likewise, a cold tape read minutes. */
export const MEDIA_OPEN_BUCKETS: readonly number[] = [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300];
const SOAP_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface ServerMetricsOptions {
  registry?: Metrics;
  /** Shown in tapedeck_build_info. */
  version?: string;
  /** Where library, scan, tape, job, cache and stager figures are read at scrape time. */
  status?: StatusProvider;
  /** Active streams and bytes delivered by tier. */
  streams?: StreamTracker;
}

/** `urn:schemas-upnp-org:service:ContentDirectory:1` → `ContentDirectory`. */
export function shortServiceName(serviceType: string): string {
  const m = /:service:([^:]+):\d+$/.exec(serviceType);
  return m ? m[1] : serviceType;
}

function httpStatusOf(err: unknown): number {
  const e = err as { status?: unknown; statusCode?: unknown };
  const s = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 500;
  return s >= 400 && s <= 599 ? s : 500;
}

/**
 * Every tapedeck_* metric and the hooks that feed them:
 * - `http()`: Koa middleware counting requests by route, method, status and tier (install it
 *   before the ACL so refused requests count too);
 * - `soapAction`: pass as `onAction` in soapRoutes options;
 * - `streams` (a StreamTracker): active streams, bytes and open latency by tier;
 * - `status` (a StatusProvider): library, scan, tape, jobs, cache and stager, read per scrape;
 * - `stagerQueueWait.observe(seconds)` when the stager client learns a request's queue wait
 *   (or StagerStatus.queueWait as a snapshot).
 */
export class ServerMetrics {
  readonly registry: Metrics;
  readonly httpRequests: Counter;
  readonly httpResponseBytes: Counter;
  readonly mediaStreams: Counter;
  readonly activeStreams: Gauge;
  readonly mediaOpen: Histogram;
  readonly soapActions: Counter;
  readonly soapErrors: Counter;
  readonly soapDuration: Histogram;
  readonly scanRunning: Gauge;
  readonly scanFiles: Gauge;
  readonly scanElapsed: Gauge;
  readonly libraryItems: Gauge;
  readonly libraryBytes: Gauge;
  readonly tapeMounts: Counter;
  readonly tapeUnloads: Counter;
  readonly tapeLocates: Counter;
  readonly tapeBytesRead: Counter;
  readonly tapeBytesWritten: Counter;
  readonly tapeReadErrors: Counter;
  readonly tapeDrives: Gauge;
  readonly tapeSlots: Gauge;
  readonly tapeOfflineNeeded: Gauge;
  readonly stagerQueueWait: Histogram;
  readonly stagerUp: Gauge;
  readonly stagerRestarts: Counter;
  readonly stagerQueued: Gauge;
  readonly stagerRecallHolds: Gauge;
  readonly prestages: Counter;
  readonly prestagedBytes: Counter;
  readonly preemptions: Counter;
  readonly stagerStalls: Counter;
  readonly stagerStalledReads: Counter;
  readonly stagerCacheWriteErrors: Counter;
  readonly stagerUncachedReads: Counter;
  readonly stagerUncachedBytes: Counter;
  readonly stagerMounts: Counter;
  readonly stagerSyncSeconds: Counter;
  readonly stagerRoomWaitSeconds: Counter;
  readonly stagerCommitDelaySeconds: Counter;
  readonly stagerDriveWaitSeconds: Counter;
  readonly cacheHits: Counter;
  readonly cacheMisses: Counter;
  readonly cacheEvictions: Counter;
  readonly cacheUsed: Gauge;
  readonly cacheCapacity: Gauge;
  readonly jobs: Gauge;
  readonly startTime: Gauge;
  readonly memory: Gauge;

  constructor(opts: ServerMetricsOptions = {}) {
    const r = (this.registry = opts.registry ?? new Metrics());
    r.gauge('tapedeck_build_info', 'Version of this Tapedeck server (value is always 1).', ['version']).set({ version: opts.version ?? 'unknown' }, 1);
    this.startTime = r.gauge('tapedeck_start_time_seconds', 'When this server process started (Unix time, s).');
    this.startTime.set(Math.floor(Date.now() / 1000 - process.uptime()));
    this.memory = r.gauge('tapedeck_process_memory_bytes', 'Memory of the server process (rss, heap_used, external).', ['kind']);

    this.httpRequests = r.counter('tapedeck_http_requests_total', 'HTTP requests answered, by route pattern, method, status and storage tier (media only; none otherwise).', ['route', 'method', 'status', 'tier']);
    this.httpResponseBytes = r.counter('tapedeck_http_response_bytes_total', 'Media bytes handed to HTTP responses, by tier (running streams included).', ['tier']);
    this.mediaStreams = r.counter('tapedeck_media_streams_total', 'Media bodies finished, by tier and outcome (complete or aborted).', ['tier', 'outcome']);
    this.activeStreams = r.gauge('tapedeck_active_streams', 'Media bodies being streamed now, by tier.', ['tier']);
    this.mediaOpen = r.histogram('tapedeck_media_open_seconds', 'Time until a media source was open and its first bytes could flow, by tier.', ['tier'], MEDIA_OPEN_BUCKETS);

    this.soapActions = r.counter('tapedeck_soap_actions_total', 'SOAP control requests answered (responses and faults), by service and action.', ['service', 'action']);
    this.soapErrors = r.counter('tapedeck_soap_errors_total', 'SOAP faults sent, by service, action and UPnP error code.', ['service', 'action', 'code']);
    this.soapDuration = r.histogram('tapedeck_soap_action_duration_seconds', 'Time to answer a SOAP control request, by service.', ['service'], SOAP_BUCKETS);

    this.scanRunning = r.gauge('tapedeck_scan_running', '1 while a library scan runs.');
    this.scanFiles = r.gauge('tapedeck_scan_files', 'Files of the current (or last) scan, by state: seen, probed, unchanged, removed, failed.', ['state']);
    this.scanElapsed = r.gauge('tapedeck_scan_elapsed_seconds', 'Duration of the current (or last) scan.');
    // the exact name from the monitoring contract, alongside the by-state gauge
    const scanSeen = r.gauge('tapedeck_scan_files_seen', 'Media files found by the current (or last) scan.');

    this.libraryItems = r.gauge('tapedeck_library_items', 'Library items by class (audio, video, image) and tier (disk, tape, both).', ['class', 'tier']);
    this.libraryBytes = r.gauge('tapedeck_library_bytes', 'Library size in bytes by tier.', ['tier']);

    this.tapeMounts = r.counter('tapedeck_tape_mounts_total', 'Cartridge loads into a drive.');
    this.tapeUnloads = r.counter('tapedeck_tape_unloads_total', 'Cartridge unloads from a drive.');
    this.tapeLocates = r.counter('tapedeck_tape_locates_total', 'Locates that moved the tape.');
    this.tapeBytesRead = r.counter('tapedeck_tape_bytes_read_total', 'Bytes read from tape.');
    this.tapeBytesWritten = r.counter('tapedeck_tape_bytes_written_total', 'Bytes written to tape.');
    this.tapeReadErrors = r.counter('tapedeck_tape_read_errors_total', 'Unrecoverable tape read errors.');
    this.tapeDrives = r.gauge('tapedeck_tape_drives', 'Tape drives by state.', ['state']);
    this.tapeSlots = r.gauge('tapedeck_tape_slots', 'Library storage slots, by whether they hold a cartridge.', ['full']);
    this.tapeOfflineNeeded = r.gauge('tapedeck_tape_cartridges_offline_needed', 'Cartridges that requests or jobs need but that are outside the library.');

    this.stagerQueueWait = r.histogram('tapedeck_stager_queue_wait_seconds', 'Time a tape read waited for admission (a drive and cache space).', [], QUEUE_WAIT_BUCKETS);
    this.stagerUp = r.gauge('tapedeck_stager_up', '1 while the stager worker answers.');
    this.stagerRestarts = r.counter('tapedeck_stager_restarts_total', 'Restarts of the stager worker process.');
    this.stagerQueued = r.gauge('tapedeck_stager_queued_requests', 'Tape reads waiting for admission.');
    this.stagerRecallHolds = r.gauge('tapedeck_stager_recall_holds', 'Cartridges the staging worker keeps loaded for queued container-promotion recalls (no idle unload until the recall has run).');
    this.prestages = r.counter('tapedeck_prestages_total', 'Pre-stages run: the first minutes of the next items of a played or browsed container, staged at prefetch priority.');
    this.prestagedBytes = r.counter('tapedeck_prestaged_bytes_total', 'Bytes read from tape by pre-stages.');
    this.preemptions = r.counter('tapedeck_preemptions_total', 'Times playback asked an archive/recall/import job to give its drive back at its next safe point.');
    this.stagerStalls = r.counter('tapedeck_stager_stalls_total', 'Read requests the stager failed because tape passes made no progress (a bug guard; should stay 0).');
    this.stagerStalledReads = r.counter('tapedeck_stager_stalled_reads_total', 'Tape reads the server failed because no new byte came for too long (twice the admission timeout plus ten minutes of tape time) while a response waited.');
    this.stagerCacheWriteErrors = r.counter('tapedeck_stager_cache_write_errors_total', 'Staging-cache writes or segment syncs the file system refused (ENOSPC, EIO, EROFS ...).');
    this.stagerUncachedReads = r.counter('tapedeck_stager_uncached_reads_total', 'Read requests that continued straight from tape, uncached, after a cache write error.');
    this.stagerUncachedBytes = r.counter('tapedeck_stager_uncached_bytes_total', 'Bytes sent straight from tape, uncached, after a cache write error.');
    this.stagerMounts = r.counter('tapedeck_stager_mounts_total', 'Cartridge loads the stager scheduled, by the priority of the read that asked (interactive = playback, prefetch = pre-stage, job).', ['priority']);
    this.stagerSyncSeconds = r.counter('tapedeck_stager_sync_seconds_total', 'Time spent syncing (fdatasync) staging-cache segments.');
    this.stagerRoomWaitSeconds = r.counter('tapedeck_stager_cache_room_wait_seconds_total', 'Time tape reads waited for staging-cache room, summed over reads.');
    this.stagerDriveWaitSeconds = r.counter('tapedeck_stager_drive_wait_seconds_total', 'Time tape reads waited for a drive, summed over reads, by priority (interactive = playback, prefetch = pre-stage).', ['priority']);
    this.stagerCommitDelaySeconds = r.counter('tapedeck_stager_commit_delay_seconds_total', "Time from a staging-cache segment's last byte to its commit (its sync and the syncs queued before it), summed over segments.");

    this.cacheHits = r.counter('tapedeck_cache_hits_total', 'Staging-cache reads served from cached segments.');
    this.cacheMisses = r.counter('tapedeck_cache_misses_total', 'Staging-cache reads that needed tape.');
    this.cacheEvictions = r.counter('tapedeck_cache_evictions_total', 'Segments evicted from the staging cache.');
    this.cacheUsed = r.gauge('tapedeck_cache_used_bytes', 'Bytes used in the staging cache.');
    this.cacheCapacity = r.gauge('tapedeck_cache_capacity_bytes', 'Capacity of the staging cache in bytes.');

    this.jobs = r.gauge('tapedeck_jobs', 'Archive/recall jobs known to the server, by kind and state.', ['kind', 'state']);

    r.collect(() => {
      const m = process.memoryUsage();
      this.memory.set({ kind: 'rss' }, m.rss);
      this.memory.set({ kind: 'heap_used' }, m.heapUsed);
      this.memory.set({ kind: 'external' }, m.external);
    });

    const streams = opts.streams;
    if (streams) {
      streams.on('start', (s: { tier: string; openMs: number }) => this.mediaOpen.observe({ tier: s.tier }, s.openMs / 1000));
      r.collect(() => {
        const t = streams.totals();
        for (const tier of Object.keys(t.bytes)) this.httpResponseBytes.set({ tier }, t.bytes[tier]);
        for (const [tier, o] of Object.entries(t.finished)) {
          this.mediaStreams.set({ tier, outcome: 'complete' }, o.complete);
          this.mediaStreams.set({ tier, outcome: 'aborted' }, o.aborted);
        }
        this.activeStreams.reset();
        for (const tier of ['disk', 'tape']) this.activeStreams.set({ tier }, 0);
        for (const a of streams.list()) this.activeStreams.inc({ tier: a.tier });
      });
    }

    const st = opts.status;
    if (st) {
      r.collect(async () => {
        const s = await st.server();
        this.scanRunning.set(s.scanning ? 1 : 0);
        const p = s.lastScan;
        if (p) {
          for (const k of ['seen', 'probed', 'unchanged', 'removed', 'failed'] as const) this.scanFiles.set({ state: k }, p[k]);
          this.scanElapsed.set(p.elapsedMs / 1000);
          scanSeen.set(p.seen);
        }
      });
      r.collect(async () => {
        const lib = await st.library();
        this.libraryItems.reset();
        this.libraryBytes.reset();
        for (const c of lib.cells) {
          this.libraryItems.inc({ class: c.class, tier: c.tier }, c.items);
          this.libraryBytes.inc({ tier: c.tier }, c.bytes);
        }
      });
      if (st.tape) {
        const tape = st.tape.bind(st);
        r.collect(async () => {
          const t = await tape();
          if (!t) return;
          const c = t.counters;
          if (c) {
            if (c.mounts !== undefined) this.tapeMounts.set(undefined, c.mounts);
            if (c.unloads !== undefined) this.tapeUnloads.set(undefined, c.unloads);
            if (c.locates !== undefined) this.tapeLocates.set(undefined, c.locates);
            if (c.bytesRead !== undefined) this.tapeBytesRead.set(undefined, c.bytesRead);
            if (c.bytesWritten !== undefined) this.tapeBytesWritten.set(undefined, c.bytesWritten);
            if (c.readErrors !== undefined) this.tapeReadErrors.set(undefined, c.readErrors);
          }
          this.tapeDrives.reset();
          for (const d of t.drives) this.tapeDrives.inc({ state: d.state });
          this.tapeSlots.reset();
          const storage = t.slots.filter((s) => !s.importExport);
          this.tapeSlots.set({ full: 'true' }, storage.filter((s) => !!s.label || s.full).length);
          this.tapeSlots.set({ full: 'false' }, storage.filter((s) => !(s.label || s.full)).length);
          this.tapeOfflineNeeded.set(t.offlineNeeded?.length ?? 0);
        });
      }
      if (st.stager) {
        const stager = st.stager.bind(st);
        r.collect(async () => {
          const s = await stager();
          if (!s) return;
          this.stagerUp.set(s.state === 'running' || s.state === 'external' ? 1 : 0);
          this.stagerRestarts.set(undefined, s.restarts);
          if (s.queued !== undefined) this.stagerQueued.set(s.queued);
          if (s.recallHolds !== undefined) this.stagerRecallHolds.set(s.recallHolds);
          if (s.queueWait) this.stagerQueueWait.setSnapshot(undefined, s.queueWait);
          if (s.prestages !== undefined) this.prestages.set(undefined, s.prestages);
          if (s.prestagedBytes !== undefined) this.prestagedBytes.set(undefined, s.prestagedBytes);
          if (s.preemptions !== undefined) this.preemptions.set(undefined, s.preemptions);
          if (s.stalls !== undefined) this.stagerStalls.set(undefined, s.stalls);
          if (s.stalledReads !== undefined) this.stagerStalledReads.set(undefined, s.stalledReads);
          if (s.cacheWriteErrors !== undefined) this.stagerCacheWriteErrors.set(undefined, s.cacheWriteErrors);
          if (s.uncachedReads !== undefined) this.stagerUncachedReads.set(undefined, s.uncachedReads);
          if (s.uncachedBytes !== undefined) this.stagerUncachedBytes.set(undefined, s.uncachedBytes);
          if (s.mountsInteractive !== undefined) this.stagerMounts.set({ priority: 'interactive' }, s.mountsInteractive);
          if (s.mountsPrefetch !== undefined) this.stagerMounts.set({ priority: 'prefetch' }, s.mountsPrefetch);
          if (s.mountsJob !== undefined) this.stagerMounts.set({ priority: 'job' }, s.mountsJob);
          if (s.syncMs !== undefined) this.stagerSyncSeconds.set(undefined, s.syncMs / 1000);
          if (s.roomWaitMs !== undefined) this.stagerRoomWaitSeconds.set(undefined, s.roomWaitMs / 1000);
          if (s.commitDelayMs !== undefined) this.stagerCommitDelaySeconds.set(undefined, s.commitDelayMs / 1000);
          if (s.driveWaitMsInteractive !== undefined) this.stagerDriveWaitSeconds.set({ priority: 'interactive' }, s.driveWaitMsInteractive / 1000);
          if (s.driveWaitMsPrefetch !== undefined) this.stagerDriveWaitSeconds.set({ priority: 'prefetch' }, s.driveWaitMsPrefetch / 1000);
        });
      }
      if (st.cache) {
        const cache = st.cache.bind(st);
        r.collect(async () => {
          const c = await cache();
          if (!c) return;
          this.cacheHits.set(undefined, c.hits);
          this.cacheMisses.set(undefined, c.misses);
          if (c.evictions !== undefined) this.cacheEvictions.set(undefined, c.evictions);
          this.cacheUsed.set(c.usedBytes);
          this.cacheCapacity.set(c.capacityBytes);
        });
      }
      if (st.policy) {
        const policy = st.policy.bind(st);
        const next = r.gauge('tapedeck_policy_next_pass_timestamp_seconds', 'When the next automatic storage-policy pass starts (Unix time, s; 0 = only manual passes).');
        const windowOpen = r.gauge('tapedeck_policy_window_open', '1 while policy_window allows automatic passes.');
        const usage = r.gauge('tapedeck_policy_disk_usage', 'Disk usage the watermarks judge, by scope (catalog or media file system) and unit (bytes or percent).', ['scope', 'unit']);
        const marks = r.gauge('tapedeck_policy_disk_watermark', 'The disk watermarks, by scope, unit and mark (high, low).', ['scope', 'unit', 'mark']);
        const planned = r.gauge('tapedeck_policy_planned_actions', 'Items a pass would archive or recall now.', ['action']);
        const candidates = r.gauge('tapedeck_policy_candidates', 'Items eligible for archiving that a pass would not move now.');
        const lastPass = r.gauge('tapedeck_policy_last_pass_timestamp_seconds', 'When the last policy pass started (Unix time, s).');
        const lastResult = r.gauge('tapedeck_policy_last_pass_result', 'Result of the last policy pass (1 for the current result).', ['result']);
        const promotions = r.counter('tapedeck_policy_promotions_total', 'Items recalled to disk because they became popular (completed).');
        const containerPromotions = r.counter('tapedeck_policy_container_promotions_total', 'Of tapedeck_policy_promotions_total, items recalled because their container (album, season) was being played (promote_container_plays).');
        r.collect(async () => {
          const p = await policy();
          if (!p) return;
          next.set(p.nextPass !== undefined ? Math.round(p.nextPass / 1000) : 0);
          windowOpen.set(p.inWindow ? 1 : 0);
          usage.reset();
          marks.reset();
          for (const u of p.usage) {
            const unit = u.kind === 'percent' ? 'percent' : 'bytes';
            usage.set({ scope: u.scope, unit }, u.before);
            marks.set({ scope: u.scope, unit, mark: 'high' }, u.high);
            marks.set({ scope: u.scope, unit, mark: 'low' }, u.low);
          }
          planned.set({ action: 'archive' }, p.planned.archive);
          planned.set({ action: 'recall' }, p.planned.recall);
          candidates.set(p.candidates);
          promotions.set(undefined, p.promotions);
          containerPromotions.set(undefined, p.containerPromotions ?? 0);
          lastResult.reset();
          if (p.lastPass) {
            lastPass.set(Math.round(Date.parse(p.lastPass.at) / 1000));
            lastResult.set({ result: p.lastPass.result }, 1);
          }
        });
      }
      if (st.events) {
        const events = st.events.bind(st);
        const subs = r.gauge('tapedeck_gena_subscriptions', 'GENA event subscriptions held now, by UPnP service (ContentDirectory, ConnectionManager, X_MS_MediaReceiverRegistrar).', ['service']);
        const sent = r.counter('tapedeck_gena_notify_sent_total', 'GENA NOTIFYs a subscriber took (2xx), initial events included, by service.', ['service']);
        const failed = r.counter('tapedeck_gena_notify_failed_total', 'GENA NOTIFYs that failed at every callback URL of the subscription (network error, timeout, non-2xx), by service.', ['service']);
        const removed = r.counter(
          'tapedeck_gena_subscriptions_removed_total',
          'GENA subscriptions ended, by service and reason: expired (not renewed), unsubscribed, failed (NOTIFYs failed repeatedly), gone (the subscriber answered 412), replaced (per-subscriber limit), left (before the SUBSCRIBE response).',
          ['service', 'reason'],
        );
        r.collect(async () => {
          for (const e of await events()) {
            subs.set({ service: e.service }, e.subscriptions);
            sent.set({ service: e.service }, e.sent);
            failed.set({ service: e.service }, e.failed);
            for (const [reason, n] of Object.entries(e.removed)) removed.set({ service: e.service, reason }, n);
          }
        });
      }
      if (st.jobs) {
        const jobs = st.jobs.bind(st);
        r.collect(async () => {
          const list = await jobs();
          this.jobs.reset();
          for (const j of list) this.jobs.inc({ kind: j.kind, state: j.state });
        });
      }
    }
  }

  /** Koa middleware counting every request (by matched route pattern, never the raw URL). */
  http(): Middleware {
    return async (ctx, next) => {
      let status = 0;
      try {
        await next();
        // a client that left before the response began got nothing: nginx's 499 "client closed request"
        status = ctx.state.clientClosed === true ? 499 : ctx.status;
      } catch (err) {
        status = httpStatusOf(err);
        throw err;
      } finally {
        this.httpRequests.inc({ route: routeOf(ctx, status), method: ctx.method, status, tier: tierOf(ctx) });
      }
    };
  }

  /** For SoapRouteOptions.onAction. */
  readonly soapAction = (service: string, action: string, faultCode: number | undefined, ms: number): void => {
    const svc = shortServiceName(service);
    this.soapActions.inc({ service: svc, action });
    if (faultCode !== undefined) this.soapErrors.inc({ service: svc, action, code: faultCode });
    this.soapDuration.observe({ service: svc }, ms / 1000);
  };

  scrape(): Promise<string> {
    return this.registry.scrape();
  }
}

function routeOf(ctx: Context, status: number): string {
  const r = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
  if (typeof r === 'string' && r) return r;
  if (r instanceof RegExp) return String(r);
  return status === 403 ? 'denied' : 'unmatched';
}

function tierOf(ctx: Context): Tier | 'none' {
  const t = (ctx.state as { tier?: unknown } | undefined)?.tier;
  return t === 'disk' || t === 'tape' || t === 'both' ? t : 'none';
}
