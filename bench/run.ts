// Benchmark of Tapedeck's core against MiniDLNA, measured in the same run:
//
//   npm run bench [-- --quick] [-- --help]        (also ./run bench)
//
// Workloads (the same on both servers, one generated library):
//   scan     cold scan of N small tagged FLAC files in folders of 2,000 plus 2.5% videos
//            (MP4 and Matroska; files/s, and until Search finds every item)
//   browse   BrowseDirectChildren of the N-child "all tracks" container, RequestedCount 50,
//            random StartingIndex (req/s, p50/p90/p99), plus first-1k / last-1k buckets
//   search   two criteria both servers understand, RequestedCount 50 (req/s, latency)
//   memory   server RSS after browse and search, N items in the catalog
//   stream   full single-stream GET of one large file (bytes/s, median of repeats)
//
// One JSON document goes to stdout and to bench/results/latest.json; progress goes to
// stderr. Both servers send SSDP, so they run only inside the netns lab (see
// servers.ts); without it only Tapedeck runs (loopback, SSDP off) and the JSON says so.

import { cpus, freemem, loadavg, totalmem, tmpdir } from 'node:os';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureBigFile, ensureLibrary, searchQueries, warmFiles, type Library, type SearchQuery } from './library.js';
import { findFfprobe, findMinidlna, type MinidlnaInfo } from './minidlna.js';
import { childrenMemory, pickHost, startClient, startMinidlna, startTapedeck, launcherRuntime, TSX_RUNTIME, type Client, type Host, type Memory, type RunningServer, type ServerName, type TapedeckRuntime } from './servers.js';
import { buildCompiled } from './build.js';
import { atLeast, atMost, median, metric, ratio, round, summarize, type LatencySummary, type Metric } from './stats.js';
import { folderAndMetaPhase, uncachedQueries, uncachedSearchPhase, workloadMetrics, type WorkloadContext, type WorkloadDetails } from './workloads.js';
import type { SoapLoadResult } from './client.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

// ---------------------------------------------------------------------------------------
// options

interface Options {
  quick: boolean;
  files: number;
  bigBytes: number;
  concurrency: number;
  requestedCount: number;
  browseWarmup: number;
  browseRequests: number;
  bucketRequests: number;
  searchWarmup: number;
  searchRequests: number;
  rounds: number;
  scanRounds: number;
  streamRepeats: number;
  minidlna: boolean;
  install: boolean;
  runtime: 'compiled' | 'tsx';
  cpuProfileDir?: string;
  out: string;
  keep: boolean;
  workloads: Set<Workload>;
  maxMinutes: number;
  /** Tapedeck's search_cache during the run (0: every Search runs on the index). */
  searchCache: string;
}

/** Videos in the generated library, as a share of its tracks (500 beside 20,000). */
const VIDEO_SHARE = 0.025;
/**
 * How long after a load the resident memory is read again, the server idle: Tapedeck gives
 * memory back 5 s after its last request (src/util/idle-trim.ts), V8's own memory reducer
 * starts 8 s after a full collection; the figure right after the load stays the one judged.
 */
const IDLE_WAIT_MS = 8000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WORKLOADS = ['browse', 'search', 'folder', 'meta', 'uncached', 'restart', 'stream'] as const;
type Workload = (typeof WORKLOADS)[number];

const HELP = `Usage: npm run bench -- [options]

  --quick               small sizes for a smoke run (2,000 files, 64 MiB stream, short runs)
  --files N             library size (default 20000; quick 2000)
  --big-mib N           size of the streamed file in MiB (default 1024; quick 64)
  --concurrency N       concurrent Browse/Search requests (default 4)
  --browse-requests N   measured random Browse requests per server (default 3000; quick 300)
  --bucket-requests N   Browse requests per StartingIndex bucket (default 1000; quick 100)
  --search-requests N   measured requests per search query per server (default 300; quick 60)
  --rounds N            measurements are split into N rounds alternating the servers (default 3; quick 1)
  --scan-rounds N       cold scans per server, median reported (default 2; quick 1)
  --stream-repeats N    full GETs per server after one warm-up, median reported (default 3; quick 2)
  --runtime R           how Tapedeck runs: compiled (JavaScript built from src/, as deployed; default)
                        or tsx (the TypeScript sources, as in development)
  --no-minidlna         run Tapedeck only
  --no-install          do not try to install MiniDLNA when it is missing
  --cpu-profile DIR     write V8 CPU profiles of the Tapedeck servers into DIR
  --out FILE            where to write the JSON too (default bench/results/latest.json)
  --keep                keep the servers' data directories (path printed at the end)
  --workloads LIST      comma-separated subset of ${WORKLOADS.join(',')} (default: all; the cold
                        scan always runs, it starts the servers)
  --search-cache BYTES  Tapedeck's search_cache during the run (default 0: no result cache)
  --max-minutes N       stop the servers and write what was measured after N minutes (default 120)
`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      files: { type: 'string' },
      'big-mib': { type: 'string' },
      concurrency: { type: 'string' },
      'browse-requests': { type: 'string' },
      'bucket-requests': { type: 'string' },
      'search-requests': { type: 'string' },
      rounds: { type: 'string' },
      'scan-rounds': { type: 'string' },
      'stream-repeats': { type: 'string' },
      runtime: { type: 'string' },
      'no-minidlna': { type: 'boolean', default: false },
      'no-install': { type: 'boolean', default: false },
      'cpu-profile': { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      workloads: { type: 'string' },
      'search-cache': { type: 'string' },
      'max-minutes': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const q = values.quick;
  const int = (name: string, v: string | undefined, dflt: number, min: number, max: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  const runtime = values.runtime ?? 'compiled';
  if (runtime !== 'compiled' && runtime !== 'tsx') throw new UsageError(`--runtime must be compiled or tsx, got ${JSON.stringify(runtime)}`);
  const files = int('files', values.files, q ? 2000 : 20000, 100, 1_000_000);
  return {
    quick: q,
    files,
    bigBytes: int('big-mib', values['big-mib'], q ? 64 : 1024, 1, 4000) * 1024 * 1024,
    concurrency: int('concurrency', values.concurrency, 4, 1, 256),
    requestedCount: 50,
    browseWarmup: q ? 50 : 200,
    browseRequests: int('browse-requests', values['browse-requests'], q ? 300 : 3000, 10, 1_000_000),
    bucketRequests: int('bucket-requests', values['bucket-requests'], q ? 100 : 1000, 10, 1_000_000),
    searchWarmup: q ? 5 : 20,
    searchRequests: int('search-requests', values['search-requests'], q ? 60 : 300, 5, 1_000_000),
    rounds: int('rounds', values.rounds, q ? 1 : 3, 1, 20),
    scanRounds: int('scan-rounds', values['scan-rounds'], q ? 1 : 2, 1, 10),
    streamRepeats: int('stream-repeats', values['stream-repeats'], q ? 2 : 3, 1, 20),
    minidlna: !values['no-minidlna'],
    install: !values['no-install'],
    runtime,
    cpuProfileDir: values['cpu-profile'] ? resolve(values['cpu-profile']) : undefined,
    out: resolve(values.out ?? join(BENCH_DIR, 'results', 'latest.json')),
    keep: values.keep,
    workloads: parseWorkloads(values.workloads),
    maxMinutes: int('max-minutes', values['max-minutes'], 120, 1, 24 * 60),
    searchCache: values['search-cache'] ?? '0',
  };
}

class UsageError extends Error {}

function parseWorkloads(v: string | undefined): Set<Workload> {
  if (v === undefined) return new Set(WORKLOADS);
  const out = new Set<Workload>();
  for (const w of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (w === 'scan') continue;
    if (!(WORKLOADS as readonly string[]).includes(w)) throw new UsageError(`--workloads: unknown workload ${JSON.stringify(w)} (known: scan,${WORKLOADS.join(',')})`);
    out.add(w as Workload);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// measurement helpers

interface LoadRun {
  requests: number;
  ok: number;
  errors: number;
  errorSamples: string[];
  elapsedMs: number;
  latenciesMs: number[];
  starts: number[];
  bytes: number;
}

function mergeRuns(runs: LoadRun[]): LoadRun {
  return {
    requests: runs.reduce((a, r) => a + r.requests, 0),
    ok: runs.reduce((a, r) => a + r.ok, 0),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    errorSamples: runs.flatMap((r) => r.errorSamples).slice(0, 5),
    elapsedMs: runs.reduce((a, r) => a + r.elapsedMs, 0),
    latenciesMs: runs.flatMap((r) => r.latenciesMs),
    starts: runs.flatMap((r) => r.starts),
    bytes: runs.reduce((a, r) => a + r.bytes, 0),
  };
}

interface LoadSummary {
  requests: number;
  errors: number;
  errorSamples?: string[];
  reqPerSec: number;
  meanResponseBytes: number;
  latency: LatencySummary;
}

function loadSummary(r: LoadRun): LoadSummary {
  return {
    requests: r.requests,
    errors: r.errors,
    ...(r.errors ? { errorSamples: r.errorSamples } : {}),
    // failed requests do not count as served
    reqPerSec: round((r.ok * 1000) / r.elapsedMs, 1),
    meanResponseBytes: Math.round(r.bytes / (r.requests || 1)),
    latency: summarize(r.latenciesMs.filter(Number.isFinite)),
  };
}

async function soapLoad(client: Client, server: RunningServer, job: Record<string, unknown>, requests: number): Promise<LoadRun> {
  const r = await client.call<SoapLoadResult>('soap-load', { url: server.controlUrl, ...job, requests, timeoutMs: 30_000 }, Math.max(120_000, requests * 30_000));
  return { requests, ...r };
}

function browseJob(server: RunningServer, o: Options, seed: number, startMin: number, startMax: number, expectTotal: number) {
  return {
    action: 'Browse',
    args: { ObjectID: server.allMusicId, BrowseFlag: 'BrowseDirectChildren', Filter: '*', StartingIndex: 0, RequestedCount: o.requestedCount, SortCriteria: '' },
    startMin,
    startMax,
    seed,
    concurrency: o.concurrency,
    expectTotal,
  };
}

function searchJob(q: SearchQuery, o: Options) {
  return {
    action: 'Search',
    args: { ContainerID: '0', SearchCriteria: q.criteria, Filter: '*', StartingIndex: 0, RequestedCount: o.requestedCount, SortCriteria: '' },
    concurrency: o.concurrency,
    expectTotal: q.expected,
  };
}

/** Runs fn for each server in an order that alternates with the round, so slow drifts in machine load hit both. */
async function alternate<T>(servers: RunningServer[], roundNo: number, fn: (s: RunningServer) => Promise<T>): Promise<Map<ServerName, T>> {
  const order = roundNo % 2 === 0 ? servers : [...servers].reverse();
  const out = new Map<ServerName, T>();
  for (const s of order) out.set(s.name, await fn(s));
  return out;
}

function mb(bytesPerSec: number): number {
  return round(bytesPerSec / 1e6, 1);
}

const load = () => loadavg().map((x) => round(x, 2));

// ---------------------------------------------------------------------------------------
// phases

interface ScanResult {
  runs: { ms: number; wallMs: number; files: number; basis: string; cpuS: number; searchableMs: number }[];
  medianMs: number;
  filesPerSec: number;
  /** From process start until a Search finds every item (median), and the server's CPU seconds by then. */
  searchableMs: number;
  cpuS: number;
}

interface ServerDetails extends WorkloadDetails {
  scan?: ScanResult;
  memoryAfterScan?: Memory;
  browse?: {
    random: LoadSummary & { startRange: [number, number] };
    first1k: LoadSummary & { cpuMsPerRequest: number; startRange: [number, number] };
    last1k: LoadSummary & { cpuMsPerRequest: number; startRange: [number, number] };
    /** p50 of the last-1k bucket over p50 of the first-1k bucket (every slice of each pooled). */
    offsetSlowdownP50: number;
    /** The server's CPU per request of the last-1k bucket over the first-1k bucket's. */
    offsetSlowdownCpu: number;
    /** The p50 ratio of each interleaved slice pair (its spread is the measurement's noise). */
    offsetSlowdownP50Slices: number[];
  };
  search?: Record<string, LoadSummary & { criteria: string; expectedMatches: number }>;
  memory?: Memory;
  /** RSS once the server was idle IDLE_WAIT_MS after the load (Tapedeck gives memory back after 5 s without requests). */
  memoryIdle?: Memory;
  /** RSS of the server's child processes (Tapedeck's staging worker) after the load. */
  children?: { pid: number; rssMB: number; cmd: string }[];
  restarted?: { incrementalRescanMs?: number; readyMs?: number; cpuAtStartS?: number; rssAtStartMB: number; rssAfterLoadMB: number; rssIdleMB?: number; peakRssMB: number; splitAtStart?: Memory['split']; splitAfterLoad?: Memory['split']; splitIdle?: Memory['split']; load: string };
  stream?: { bytes: number; runsMBps: number[]; medianMBps: number; cpuSPerGB: number; verified: boolean; client: string };
}

async function startServer(ctx: Context, name: ServerName, host: Host, o: Options, md: MinidlnaInfo, mediaDirs: string[], work: string, tag: string, port: number, files: number, restart = false): Promise<RunningServer> {
  const timeoutMs = Math.max(120_000, files * 30);
  if (name === 'tapedeck') {
    return startTapedeck(host, {
      runtime: ctx.runtime,
      mediaDirs,
      dataDir: join(work, `tapedeck-${tag}`),
      port,
      timeoutMs,
      cpuProfileDir: o.cpuProfileDir,
      extraArgs: ['--search-cache', o.searchCache],
      readyProbe: restart && ctx.client ? () => answersBrowse(ctx, host, port) : undefined,
    });
  }
  return startMinidlna(host, { binary: md.binary!, mediaDirs, dbDir: join(work, `minidlna-${tag}`), port, timeoutMs, expectScan: !restart });
}

const PORTS: Record<ServerName, number> = { tapedeck: 8210, minidlna: 8200 };

interface Context {
  o: Options;
  host: Host;
  md: MinidlnaInfo;
  names: ServerName[];
  runtime: TapedeckRuntime;
  work: string;
  client?: Client;
  running: RunningServer[];
  details: Record<ServerName, ServerDetails>;
  notes: string[];
}

async function stopAll(ctx: Context): Promise<void> {
  const rs = ctx.running;
  ctx.running = [];
  await Promise.all(rs.map((s) => s.stop()));
}

/** Cold scans (fresh data dir each), alternating the order; the last round's servers stay up. */
async function scanPhase(ctx: Context, lib: Library): Promise<RunningServer[]> {
  const { o, names } = ctx;
  const runs = new Map<ServerName, ScanResult['runs']>(names.map((n) => [n, []]));
  let last: RunningServer[] = [];
  for (let r = 0; r < o.scanRounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    const keep = r === o.scanRounds - 1;
    for (const name of order) {
      log(`scan round ${r + 1}/${o.scanRounds}: ${name} scanning ${lib.files} files (cold catalog; load ${load().join(' ')})`);
      const s = await startServer(ctx, name, ctx.host, o, ctx.md, [lib.dir], ctx.work, `lib${r}`, PORTS[name], lib.files);
      ctx.running.push(s);
      const afterScan = performance.now();
      await searchableAll(ctx, s, lib.files);
      const searchableMs = Math.round(s.scan.wallMs + performance.now() - afterScan);
      runs.get(name)!.push({ ms: Math.round(s.scan.ms), wallMs: Math.round(s.scan.wallMs), files: s.scan.files, basis: s.scan.basis, cpuS: round(s.cpu(), 2), searchableMs });
      log(`  ${name}: ${s.scan.files} files in ${(s.scan.ms / 1000).toFixed(2)} s = ${Math.round((s.scan.files * 1000) / s.scan.ms)} files/s`);
      if (s.scan.files !== lib.files) ctx.notes.push(`${name} scan round ${r + 1} reported ${s.scan.files} files, expected ${lib.files}`);
      if (keep) {
        last.push(s);
        const note = await s.settled?.();
        if (note) {
          log(`  ${note}`);
          ctx.notes.push(note);
        }
      } else {
        ctx.running = ctx.running.filter((x) => x !== s);
        await s.stop();
      }
    }
  }
  for (const name of names) {
    const rs = runs.get(name)!;
    const med = median(rs.map((x) => x.ms));
    ctx.details[name].scan = {
      runs: rs,
      medianMs: Math.round(med),
      filesPerSec: round((lib.files * 1000) / med, 1),
      searchableMs: Math.round(median(rs.map((x) => x.searchableMs))),
      cpuS: round(median(rs.map((x) => x.cpuS)), 2),
    };
  }
  last = names.map((n) => last.find((s) => s.name === n)!);
  for (const s of last) {
    const m = s.memory();
    if (m) ctx.details[s.name].memoryAfterScan = m;
  }
  return last;
}

/**
 * Browse of the all-tracks container until TotalMatches is `expected` (at most twice:
 * MiniDLNA 1.3.0 answers its very first query after a scan with TotalMatches 0).
 */
async function browseUntil(ctx: Context, s: RunningServer, count: number, expected: number): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const r = await ctx.client!.call<{ status: number; body: string }>(
      'soap-call',
      { url: s.controlUrl, action: 'Browse', args: { ObjectID: s.allMusicId, BrowseFlag: 'BrowseDirectChildren', Filter: '*', StartingIndex: 0, RequestedCount: count, SortCriteria: '' } },
      60_000,
    );
    const total = Number(/<TotalMatches>(\d+)<\/TotalMatches>/.exec(r.body)?.[1] ?? NaN);
    if (r.status === 200 && total === expected) return r.body;
    if (attempt >= 2) throw new Error(`${s.name}: Browse of ${s.allMusicId} answered HTTP ${r.status} with TotalMatches ${total}, expected ${expected}: ${r.body.slice(0, 300)}`);
  }
}

/** Polls a Search for every item (tracks and videos) until it finds `count` (the scan's results are searchable). */
async function searchableAll(ctx: Context, s: RunningServer, count: number): Promise<void> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const r = await ctx.client!.call<{ status: number; body: string }>(
      'soap-call',
      { url: s.controlUrl, action: 'Search', args: { ContainerID: '0', SearchCriteria: 'upnp:class derivedfrom "object.item"', Filter: '*', StartingIndex: 0, RequestedCount: 1, SortCriteria: '' } },
      60_000,
    );
    if (r.status === 200 && Number(/<TotalMatches>(\d+)<\/TotalMatches>/.exec(r.body)?.[1]) === count) return;
    if (Date.now() > deadline) throw new Error(`${s.name}: Search did not find all ${count} items within 10 minutes of its scan`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** Whether Tapedeck on this port answers a Browse of the root (restart readiness). */
async function answersBrowse(ctx: Context, host: Host, port: number): Promise<boolean> {
  const r = await ctx.client!.call<{ status: number; body: string }>(
    'soap-call',
    { url: `http://${host.serverIp}:${port}/upnp/control/cds`, action: 'Browse', args: { ObjectID: '0', BrowseFlag: 'BrowseDirectChildren', Filter: '*', StartingIndex: 0, RequestedCount: 5, SortCriteria: '' }, timeoutMs: 2000 },
    5000,
  ).catch(() => undefined);
  return r?.status === 200;
}

async function verifyLibrary(ctx: Context, servers: RunningServer[], lib: Library): Promise<void> {
  for (const s of servers) await browseUntil(ctx, s, 1, lib.count);
}

/** Interleaved slices of each StartingIndex bucket (first / last 1k) in the offset measurement. */
const BUCKET_SLICES = 10;

async function browsePhase(ctx: Context, servers: RunningServer[], lib: Library): Promise<void> {
  const { o, client } = ctx;
  const total = lib.count;
  const maxStart = total - o.requestedCount;
  log(`browse warm-up: ${o.browseWarmup} requests each`);
  for (const s of servers) await soapLoad(client!, s, browseJob(s, o, 7, 0, maxStart, total), o.browseWarmup);
  const per = Math.ceil(o.browseRequests / o.rounds);
  const random = new Map<ServerName, LoadRun[]>(servers.map((s) => [s.name, []]));
  for (let r = 0; r < o.rounds; r++) {
    log(`browse round ${r + 1}/${o.rounds}: ${per} requests each, StartingIndex uniform in [0, ${maxStart}], concurrency ${o.concurrency} (load ${load().join(' ')})`);
    const res = await alternate(servers, r, (s) => soapLoad(client!, s, browseJob(s, o, 1000 + r, 0, maxStart, total), per));
    for (const [n, run] of res) {
      random.get(n)!.push(run);
      log(`  ${n}: ${round((run.ok * 1000) / run.elapsedMs, 1)} req/s, ${run.errors} errors`);
    }
  }
  const first: [number, number] = [0, Math.min(999, maxStart)];
  const last: [number, number] = [Math.max(0, maxStart - 999), maxStart];
  // The two buckets are measured interleaved, in BUCKET_SLICES slices each that alternate which
  // goes first, after a warm-up slice of each: one bucket run after the other (as before) let a
  // drift of the machine's load, a background compaction or a cache filling up land on one
  // bucket only (1.70 at 20k in a quiet full run where an A/B right after gave 1.07).
  const slice = Math.max(1, Math.ceil(o.bucketRequests / BUCKET_SLICES));
  const ranges = { first, last } as const;
  const buckets = new Map<ServerName, Record<'first' | 'last', { runs: LoadRun[]; cpuS: number }>>(servers.map((s) => [s.name, { first: { runs: [], cpuS: 0 }, last: { runs: [], cpuS: 0 } }]));
  log(`browse buckets first/last 1k (StartingIndex ${first[0]}..${first[1]} / ${last[0]}..${last[1]}): warm-up ${slice}, then ${BUCKET_SLICES} interleaved slices of ${slice} requests each`);
  for (const s of servers) for (const key of ['first', 'last'] as const) await soapLoad(client!, s, browseJob(s, o, 1900 + (key === 'first' ? 0 : 1), ranges[key][0], ranges[key][1], total), slice);
  for (let k = 0; k < BUCKET_SLICES; k++) {
    const order = k % 2 === 0 ? (['first', 'last'] as const) : (['last', 'first'] as const);
    await alternate(servers, k, async (s) => {
      for (const key of order) {
        const c0 = s.cpu();
        const run = await soapLoad(client!, s, browseJob(s, o, 2000 + 2 * k + (key === 'first' ? 0 : 1), ranges[key][0], ranges[key][1], total), slice);
        const b = buckets.get(s.name)![key];
        b.runs.push(run);
        b.cpuS += s.cpu() - c0;
      }
    });
  }
  for (const s of servers) {
    const b = buckets.get(s.name)!;
    const sum = (key: 'first' | 'last') => {
      const run = mergeRuns(b[key].runs);
      return { ...loadSummary(run), cpuMsPerRequest: round((b[key].cpuS * 1000) / run.requests, 3), startRange: ranges[key] };
    };
    const f = sum('first');
    const l = sum('last');
    // the p50 of each slice pair: how much the ratio moves between slices (noise)
    const pairs = b.first.runs.map((fr, k) => summarize(b.last.runs[k].latenciesMs.filter(Number.isFinite)).p50Ms / summarize(fr.latenciesMs.filter(Number.isFinite)).p50Ms);
    ctx.details[s.name].browse = {
      random: { ...loadSummary(mergeRuns(random.get(s.name)!)), startRange: [0, maxStart] },
      first1k: f,
      last1k: l,
      offsetSlowdownP50: round(l.latency.p50Ms / f.latency.p50Ms, 2),
      offsetSlowdownCpu: round(l.cpuMsPerRequest / f.cpuMsPerRequest, 2),
      offsetSlowdownP50Slices: pairs.map((x) => round(x, 2)),
    };
    log(`  ${s.name}: offset slowdown p50 ${ctx.details[s.name].browse!.offsetSlowdownP50} (slices ${pairs.map((x) => round(x, 2)).join(' ')}), CPU ${f.cpuMsPerRequest} -> ${l.cpuMsPerRequest} ms/request`);
  }
}

async function searchPhase(ctx: Context, servers: RunningServer[], queries: SearchQuery[]): Promise<void> {
  const { o, client } = ctx;
  const per = Math.ceil(o.searchRequests / o.rounds);
  for (const q of queries) {
    log(`search "${q.criteria}" (${q.expected} matches): warm-up ${o.searchWarmup}, then ${per * o.rounds} requests each`);
    for (const s of servers) await soapLoad(client!, s, searchJob(q, o), o.searchWarmup);
    const runs = new Map<ServerName, LoadRun[]>(servers.map((s) => [s.name, []]));
    for (let r = 0; r < o.rounds; r++) {
      const res = await alternate(servers, r, (s) => soapLoad(client!, s, searchJob(q, o), per));
      for (const [n, run] of res) runs.get(n)!.push(run);
    }
    for (const s of servers) {
      const sum = loadSummary(mergeRuns(runs.get(s.name)!));
      log(`  ${s.name}: ${sum.reqPerSec} req/s, p99 ${sum.latency.p99Ms} ms, ${sum.errors} errors`);
      (ctx.details[s.name].search ??= {})[q.name] = { ...sum, criteria: q.criteria, expectedMatches: q.expected };
    }
  }
}

/**
 * Steady state: both servers restarted on their existing catalogs (Tapedeck rescans
 * incrementally, MiniDLNA does not rescan), a shorter Browse and Search load, then RSS
 * again. Tells scan leftovers apart from what the server needs to serve the library.
 */
async function restartPhase(ctx: Context, lib: Library, queries: SearchQuery[]): Promise<void> {
  const { o, client } = ctx;
  const tag = `lib${o.scanRounds - 1}`;
  const servers: RunningServer[] = [];
  for (const name of ctx.names) {
    log(`restart: ${name} on its existing catalog`);
    const s = await startServer(ctx, name, ctx.host, o, ctx.md, [lib.dir], ctx.work, tag, PORTS[name], lib.files, true);
    ctx.running.push(s);
    servers.push(s);
  }
  await verifyLibrary(ctx, servers, lib);
  const maxStart = lib.count - o.requestedCount;
  const n = Math.max(50, Math.ceil(o.browseRequests / 6));
  for (const s of servers) {
    const at = s.memory();
    const cpuAtStart = s.cpu();
    await soapLoad(client!, s, browseJob(s, o, 3000, 0, maxStart, lib.count), n);
    for (const q of queries) await soapLoad(client!, s, searchJob(q, o), Math.max(10, Math.ceil(o.searchRequests / 6)));
    const after = s.memory();
    await sleep(IDLE_WAIT_MS);
    const idle = s.memory();
    ctx.details[s.name].restarted = {
      ...(s.name === 'tapedeck' ? { incrementalRescanMs: Math.round(s.scan.ms), readyMs: s.readyMs } : { readyMs: Math.round(s.scan.wallMs) }),
      // from spawn until the load starts: start-up, Tapedeck's rescan (and what it queued after it)
      ...(Number.isFinite(cpuAtStart) ? { cpuAtStartS: round(cpuAtStart, 2) } : {}),
      rssAtStartMB: at?.rssMB ?? NaN,
      rssAfterLoadMB: after?.rssMB ?? NaN,
      ...(idle ? { rssIdleMB: idle.rssMB } : {}),
      peakRssMB: after?.peakRssMB ?? NaN,
      ...(at?.split ? { splitAtStart: at.split } : {}),
      ...(after?.split ? { splitAfterLoad: after.split } : {}),
      ...(idle?.split ? { splitIdle: idle.split } : {}),
      load: `${n} Browse + ${Math.max(10, Math.ceil(o.searchRequests / 6))} per search query`,
    };
    log(`  ${s.name}: RSS ${at?.rssMB} MB at start${splitText(at?.split)}, ${after?.rssMB} MB after load${splitText(after?.split)}, ${idle?.rssMB} MB ${IDLE_WAIT_MS / 1000} s later${splitText(idle?.split)}; CPU ${round(cpuAtStart, 2)} s from spawn to the load`);
  }
  await stopAll(ctx);
}

async function resourceUrl(ctx: Context, s: RunningServer): Promise<string> {
  const body = await browseUntil(ctx, s, 5, 1);
  const url = /&gt;(https?:\/\/[^&<]+)&lt;\/res&gt;/.exec(body)?.[1];
  if (!url) throw new Error(`${s.name}: no resource URL in ${body.slice(0, 300)}`);
  return url;
}

async function curlGet(ctx: Context, url: string, timeoutMs: number): Promise<{ status: number; bytes: number; seconds: number }> {
  const r = await ctx.host.execClient('curl', ['-sS', '-o', '/dev/null', '-m', String(Math.ceil(timeoutMs / 1000)), '-w', '%{http_code} %{size_download} %{time_total}', url], timeoutMs + 5000);
  const [status, bytes, seconds] = r.stdout.trim().split(/\s+/).map(Number);
  if (r.code !== 0) throw new Error(`curl ${url} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return { status, bytes, seconds };
}

async function streamPhase(ctx: Context, bigDir: string, bytes: number, sha256: string, haveCurl: boolean): Promise<void> {
  const { o, host } = ctx;
  const servers: RunningServer[] = [];
  for (const name of ctx.names) {
    log(`stream: starting ${name} on the ${(bytes / 2 ** 20).toFixed(0)} MiB file`);
    const s = await startServer(ctx, name, host, o, ctx.md, [bigDir], ctx.work, 'big', PORTS[name] + 1, 1);
    ctx.running.push(s);
    servers.push(s);
  }
  const timeoutMs = Math.max(60_000, Math.ceil(bytes / 5e6)); // at least 5 MB/s
  const urls = new Map<ServerName, string>();
  const verified = new Map<ServerName, boolean>();
  for (const s of servers) {
    const url = await resourceUrl(ctx, s);
    urls.set(s.name, url);
    // warm-up GET (page cache, connection paths) that also checks the bytes
    if (haveCurl) {
      const r = await host.execClient('sh', ['-c', `curl -sS -m ${Math.ceil(timeoutMs / 1000)} "$1" | sha256sum`, 'sh', url], timeoutMs + 5000);
      const ok = r.stdout.trim().startsWith(sha256);
      verified.set(s.name, ok);
      if (!ok) ctx.notes.push(`${s.name}: streamed bytes do not match the file (sha256 ${r.stdout.trim().slice(0, 16)}…, ${r.stderr.trim()})`);
    } else {
      const r = await ctx.client!.call<{ status: number; bytes: number }>('get', { url, timeoutMs }, timeoutMs + 5000);
      verified.set(s.name, r.status === 200 && r.bytes === bytes);
    }
  }
  const runs = new Map<ServerName, number[]>(servers.map((s) => [s.name, []]));
  const cpu = new Map<ServerName, number>(servers.map((s) => [s.name, 0]));
  for (let r = 0; r < o.streamRepeats; r++) {
    const res = await alternate(servers, r, async (s) => {
      const c0 = s.cpu();
      try {
        return await streamOnce(s);
      } finally {
        cpu.set(s.name, cpu.get(s.name)! + s.cpu() - c0);
      }
    });
    for (const [n, bps] of res) {
      runs.get(n)!.push(bps);
      log(`  stream ${r + 1}/${o.streamRepeats} ${n}: ${mb(bps)} MB/s`);
    }
  }
  async function streamOnce(s: RunningServer): Promise<number> {
    {
      const url = urls.get(s.name)!;
      if (haveCurl) {
        const g = await curlGet(ctx, url, timeoutMs);
        if (g.status !== 200 || g.bytes !== bytes) throw new Error(`${s.name}: GET ${url} gave HTTP ${g.status} with ${g.bytes} bytes, expected ${bytes}`);
        return g.bytes / g.seconds;
      }
      const g = await ctx.client!.call<{ status: number; bytes: number; ms: number }>('get', { url, timeoutMs }, timeoutMs + 5000);
      if (g.status !== 200 || g.bytes !== bytes) throw new Error(`${s.name}: GET ${url} gave HTTP ${g.status} with ${g.bytes} bytes, expected ${bytes}`);
      return (g.bytes * 1000) / g.ms;
    }
  }
  for (const s of servers) {
    const rs = runs.get(s.name)!;
    ctx.details[s.name].stream = { bytes, runsMBps: rs.map(mb), medianMBps: mb(median(rs)), cpuSPerGB: round(cpu.get(s.name)! / ((bytes * o.streamRepeats) / 1e9), 3), verified: verified.get(s.name) ?? false, client: haveCurl ? 'curl' : 'node http' };
  }
  await stopAll(ctx);
}

// ---------------------------------------------------------------------------------------
// report

function buildMetrics(d: Record<ServerName, ServerDetails>, queries: SearchQuery[], files: number): Record<string, Metric> {
  const t = d.tapedeck;
  const m = d.minidlna;
  const metrics: Record<string, Metric> = {
    browseThroughput: metric('Browse, RequestedCount 50, random StartingIndex over the whole container', 'req/s', t.browse?.random.reqPerSec, m.browse?.random.reqPerSec, 'ratio >= 1.5', atLeast(1.5)),
    browseP99: metric('Browse p99 latency (same load)', 'ms', t.browse?.random.latency.p99Ms, m.browse?.random.latency.p99Ms, 'ratio <= 1.0 (no worse)', atMost(1.0)),
    browseOffsetSlowdown: metric(
      'Browse p50 latency, last 1k StartingIndex over first 1k (paging must not slow down with the offset)',
      'x',
      t.browse?.offsetSlowdownP50,
      m.browse?.offsetSlowdownP50,
      'ours <= 1.25',
      (ours) => ours <= 1.25,
    ),
    // the same buckets' server CPU per request (from /proc): what the offset costs the server,
    // which hardly moves with other work on the machine, where the p50 latency of a 1 ms request does
    browseOffsetSlowdownCpu: metric(
      'Browse server CPU per request, last 1k StartingIndex over first 1k (same interleaved buckets)',
      'x',
      t.browse?.offsetSlowdownCpu,
      m.browse?.offsetSlowdownCpu,
      'ours <= 1.25',
      (ours) => ours <= 1.25,
    ),
  };
  // Search: every query must reach the target; the headline is the weakest query.
  const perQuery = queries.map((q) => ({ name: q.name, ours: t.search?.[q.name]?.reqPerSec, theirs: m.search?.[q.name]?.reqPerSec }));
  const ratios = perQuery.map((p) => ratio(p.ours, p.theirs));
  const weakest = ratios.every((r) => r !== null) && ratios.length ? ratios.indexOf(Math.min(...(ratios as number[]))) : -1;
  const pick = weakest >= 0 ? perQuery[weakest] : perQuery[0];
  metrics.searchThroughput = {
    ...metric(`Search, RequestedCount 50, weakest of ${queries.length} queries (${pick?.name})`, 'req/s', pick?.ours, pick?.theirs, 'ratio >= 10 for every query', atLeast(10)),
  };
  for (const p of perQuery) metrics[`search.${p.name}`] = metric(`Search ${p.name}`, 'req/s', p.ours, p.theirs, 'ratio >= 10', atLeast(10));
  metrics.scanRate = metric('Cold scan of the generated library', 'files/s', t.scan?.filesPerSec, m.scan?.filesPerSec, 'ratio >= 1.0 (no slower)', atLeast(1.0));
  metrics.streamThroughput = metric('Single-stream HTTP GET of the large file (median)', 'MB/s', t.stream?.medianMBps, m.stream?.medianMBps, 'ratio >= 0.8', atLeast(0.8));
  const rssCap = files <= 20_000 ? 80 : 120;
  metrics.scanInServe = metric('First scan inside serve: from process start until Search finds every item', 's', t.scan && round(t.scan.searchableMs / 1000, 2), m.scan && round(m.scan.searchableMs / 1000, 2), 'ratio <= 1.0', atMost(1.0));
  metrics.scanCpu = metric('First scan inside serve: server CPU (with reaped children) until the scan is done', 's', t.scan?.cpuS, m.scan?.cpuS, 'ratio <= 1.0', atMost(1.0));
  metrics.streamCpu = metric('Single-stream GET: server CPU per GB', 's/GB', t.stream?.cpuSPerGB, m.stream?.cpuSPerGB, 'ratio <= 2.0', atMost(2.0));
  metrics.memoryAfterScan = withSplit(metric('Server RSS right after the cold scan', 'MB', t.memoryAfterScan?.rssMB, m.memoryAfterScan?.rssMB, `ours <= ${rssCap} MB`, (ours) => ours <= rssCap), t.memoryAfterScan?.split, m.memoryAfterScan?.split);
  metrics.memoryRss = withSplit(metric('Server RSS after the Browse and Search load, library in the catalog', 'MB', t.memory?.rssMB, m.memory?.rssMB, `ours <= ${rssCap} MB`, (ours) => ours <= rssCap), t.memory?.split, m.memory?.split);
  metrics.memoryIdle = withSplit(metric(`Server RSS ${IDLE_WAIT_MS / 1000} s after the Browse and Search load (idle)`, 'MB', t.memoryIdle?.rssMB, m.memoryIdle?.rssMB, `ours <= ${rssCap} MB`, (ours) => ours <= rssCap), t.memoryIdle?.split, m.memoryIdle?.split);
  if (t.children) metrics.childRss = metric('Largest child process RSS (staging worker), idle after the load', 'MB', t.children[0]?.rssMB ?? 0, undefined, 'ours <= 60 MB', (ours) => ours <= 60);
  if (t.restarted) {
    metrics.restartRss = withSplit(metric('Server RSS after a restart on the catalog and a shorter load', 'MB', t.restarted.rssAfterLoadMB, m.restarted?.rssAfterLoadMB, `ours <= ${rssCap} MB`, (ours) => ours <= rssCap), t.restarted.splitAfterLoad, m.restarted?.splitAfterLoad);
    metrics.restartIdleRss = withSplit(metric(`Server RSS ${IDLE_WAIT_MS / 1000} s after the restart's load (idle)`, 'MB', t.restarted.rssIdleMB, m.restarted?.rssIdleMB, `ours <= ${rssCap} MB`, (ours) => ours <= rssCap), t.restarted.splitIdle, m.restarted?.splitIdle);
    metrics.restartReady = metric('Restart on the existing catalog: from spawn until Browse answers', 's', t.restarted.readyMs === undefined ? undefined : round(t.restarted.readyMs / 1000, 2), m.restarted?.readyMs === undefined ? undefined : round(m.restarted.readyMs / 1000, 2), 'ours <= 1 s', (ours) => ours <= 1);
  }
  Object.assign(metrics, workloadMetrics(t, m));
  return metrics;
}

/** ' (anon A + file F MB, LevelDB tables L MB)': where a VmRSS figure is. */
function splitText(split: Memory['split']): string {
  return split ? ` (anon ${split.anonMB} + file ${split.fileMB} MB, LevelDB tables ${split.ldbMB} MB)` : '';
}

/** An RSS metric with its split (anonymous / file-backed / LevelDB tables) beside VmRSS, which stays the figure judged. */
function withSplit(m: Metric, ours: Memory['split'], theirs: Memory['split']): Metric {
  return ours || theirs ? { ...m, split: { ...(ours ? { tapedeck: ours } : {}), ...(theirs ? { minidlna: theirs } : {}) } } : m;
}

function table(metrics: Record<string, Metric>): string {
  const rows = Object.entries(metrics).map(([k, v]) => [
    k,
    v.ours === null ? '-' : `${v.ours} ${v.unit}${v.split?.tapedeck ? ` (anon ${v.split.tapedeck.anonMB} + file ${v.split.tapedeck.fileMB})` : ''}`,
    v.minidlna === null ? '-' : `${v.minidlna} ${v.unit}${v.split?.minidlna ? ` (anon ${v.split.minidlna.anonMB} + file ${v.split.minidlna.fileMB})` : ''}`,
    v.ratio === null ? '-' : `${v.ratio}`,
    v.target,
    v.met === null ? 'n/a' : v.met ? 'met' : 'MISSED',
  ]);
  const head = ['metric', 'tapedeck', 'minidlna', 'ratio', 'target', ''];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const startedAt = new Date();
  const loadStart = load();
  const host = pickHost();
  log(`${o.quick ? 'quick' : 'full'} run: ${o.files} files, ${(o.bigBytes / 2 ** 20).toFixed(0)} MiB stream; ${host.description}`);

  let md: MinidlnaInfo;
  if (!o.minidlna) md = { absent: 'disabled with --no-minidlna' };
  else if (!host.allowsMinidlna) md = { absent: `not run: ${host.description}; MiniDLNA always sends SSDP` };
  else md = await findMinidlna({ install: o.install, log });
  if (md.absent) log(`MiniDLNA absent (${md.absent}): measuring Tapedeck only`);
  else log(`MiniDLNA ${md.version} at ${md.binary}${md.installedNow ? ' (installed now)' : ''}`);
  const names: ServerName[] = md.absent ? ['tapedeck'] : ['minidlna', 'tapedeck'];
  const ffprobe = await findFfprobe({ install: o.install, log });
  if (ffprobe.absent) log(`ffprobe absent (${ffprobe.absent}): Tapedeck runs without it, unlike a deployed NAS`);

  // 2.5% videos, as a real library has (the scan figures include what probing them costs)
  const lib = await ensureLibrary(o.files, log, { videoShare: VIDEO_SHARE });
  const big = await ensureBigFile(o.bigBytes, log);
  log(`library: ${lib.count} tracks + ${lib.videos.length} videos, ${(lib.bytes / 1e6).toFixed(1)} MB in ${lib.dir}${lib.generatedMs ? ` (generated in ${(lib.generatedMs / 1000).toFixed(1)} s)` : ' (cached)'}`);
  await warmFiles(lib.dir);
  const queries = searchQueries(lib.tracks, lib.videos);

  let runtime = TSX_RUNTIME;
  let buildInfo: { ms: number; diagnostics?: string } | undefined;
  if (o.runtime === 'compiled') {
    const b = await buildCompiled(log);
    runtime = launcherRuntime(b.launcher);
    buildInfo = { ms: b.ms, ...(b.diagnostics ? { diagnostics: b.diagnostics } : {}) };
    if (b.diagnostics) log(`tsc reported errors (JavaScript was emitted anyway): ${b.diagnostics.split('\n')[0]}`);
  }

  const haveCurl = (await host.execClient('curl', ['--version'], 10_000).catch(() => undefined))?.code === 0;
  const work = await mkdtemp(join(tmpdir(), 'tapedeck-bench-run-'));
  const ctx: Context = { o, host, md, names, runtime, work, running: [], details: { tapedeck: {}, minidlna: {} }, notes: [] };
  if (o.cpuProfileDir) await mkdir(o.cpuProfileDir, { recursive: true });

  let failure: Error | undefined;
  // Ctrl-C or a kill: stop what we started (servers by PID, their forked children too) and remove the lab.
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${sig}: stopping the servers and removing the lab`);
    void (async () => {
      await ctx.client?.close().catch(() => undefined);
      await stopAll(ctx).catch(() => undefined);
      await host.down().catch(() => undefined);
      if (!o.keep) await rm(work, { recursive: true, force: true }).catch(() => undefined);
      process.exit(130);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Bounded in time: past the limit the servers are stopped, the phase under way fails,
  // and what was measured so far is reported.
  let timedOut = false;
  const limit = setTimeout(() => {
    timedOut = true;
    log(`time limit of ${o.maxMinutes} min reached: stopping the servers`);
    void stopAll(ctx).catch(() => undefined);
  }, o.maxMinutes * 60_000);
  limit.unref();
  const w = o.workloads;
  try {
    await host.up();
    ctx.client = await startClient(host);
    const servers = await scanPhase(ctx, lib);
    await verifyLibrary(ctx, servers, lib);
    if (w.has('browse')) await browsePhase(ctx, servers, lib);
    if (w.has('search')) await searchPhase(ctx, servers, queries);
    const wctx: WorkloadContext = { client: ctx.client, log, notes: ctx.notes, rounds: o.rounds, concurrency: o.concurrency, requests: Math.max(20, Math.ceil(o.browseRequests / 3)) };
    if (w.has('folder') || w.has('meta')) await folderAndMetaPhase(wctx, servers, lib.count, ctx.details, { folder: w.has('folder'), meta: w.has('meta') });
    if (w.has('uncached')) await uncachedSearchPhase({ ...wctx, requests: Math.max(80, Math.ceil(o.searchRequests / 2)) }, servers, uncachedQueries(lib.tracks), ctx.details);
    for (const s of servers) {
      const m = s.memory();
      if (m) ctx.details[s.name].memory = m;
      if (s.name === 'tapedeck') ctx.details[s.name].children = childrenMemory(s.pid);
      log(`memory ${s.name}: RSS ${m?.rssMB} MB${splitText(m?.split)} (peak ${m?.peakRssMB} MB)${s.name === 'tapedeck' ? `, children ${JSON.stringify(ctx.details[s.name].children?.map((c) => c.rssMB))} MB` : ''}`);
    }
    await sleep(IDLE_WAIT_MS);
    for (const s of servers) {
      const m = s.memory();
      if (m) ctx.details[s.name].memoryIdle = m;
      log(`memory ${s.name} ${IDLE_WAIT_MS / 1000} s after the load: RSS ${m?.rssMB} MB${splitText(m?.split)}`);
    }
    await stopAll(ctx);
    if (w.has('restart')) await restartPhase(ctx, lib, queries);
    if (w.has('stream')) await streamPhase(ctx, big.dir, big.bytes, big.sha256, haveCurl);
  } catch (err) {
    failure = timedOut ? new Error(`time limit of ${o.maxMinutes} min reached (${(err as Error).message})`) : (err as Error);
    log(`FAILED: ${failure.message}`);
  } finally {
    clearTimeout(limit);
    await ctx.client?.close().catch(() => undefined);
    await stopAll(ctx).catch(() => undefined);
    await host.down().catch((err: Error) => log(`lab teardown: ${err.message}`));
    if (!o.keep) await rm(work, { recursive: true, force: true });
  }

  const metrics = buildMetrics(ctx.details, queries, lib.count);
  const evaluated = Object.values(metrics).filter((m) => m.met !== null);
  const report = {
    benchmark: 'tapedeck-core-vs-minidlna',
    schema: 1,
    mode: o.quick ? 'quick' : 'full',
    complete: !failure,
    ...(failure ? { error: failure.message } : {}),
    startedAt: startedAt.toISOString(),
    durationS: round((Date.now() - startedAt.getTime()) / 1000, 1),
    environment: {
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memTotalMB: Math.round(totalmem() / 1e6),
      memFreeMB: Math.round(freemem() / 1e6),
      loadavgStart: loadStart,
      loadavgEnd: load(),
      network: host.description,
      tapedeckRuntime: runtime.name === 'compiled' ? 'compiled JavaScript through the deployed launcher (bench/results/build/bin/tapedeck, with its Node flags and MALLOC_ARENA_MAX)' : 'TypeScript through tsx (node --import tsx src/cli.ts)',
      ...(buildInfo ? { build: buildInfo } : {}),
      ffprobe: ffprobe.binary ?? `absent (${ffprobe.absent})`,
      tapedeckSearchCache: o.searchCache,
      minidlna: md.absent ? 'absent' : md.version,
      ...(md.absent ? { minidlnaAbsentReason: md.absent } : { minidlnaBinary: md.binary }),
      streamClient: haveCurl ? (host.kind === 'lab' ? 'curl in the client namespace' : 'curl') : 'node http',
    },
    parameters: {
      files: o.files,
      videos: lib.videos.length,
      libraryBytes: lib.bytes,
      streamFileBytes: big.bytes,
      requestedCount: o.requestedCount,
      concurrency: o.concurrency,
      browse: { warmup: o.browseWarmup, requests: Math.ceil(o.browseRequests / o.rounds) * o.rounds, bucketRequests: o.bucketRequests, container: { tapedeck: 'music/all', minidlna: '1$4' } },
      search: { warmup: o.searchWarmup, requestsPerQuery: Math.ceil(o.searchRequests / o.rounds) * o.rounds, containerId: '0', queries: queries.map((q) => ({ name: q.name, criteria: q.criteria, expectedMatches: q.expected })) },
      workloads: ['scan', ...o.workloads],
      rounds: o.rounds,
      scanRounds: o.scanRounds,
      streamRepeats: o.streamRepeats,
    },
    metrics,
    summary: {
      evaluated: evaluated.length,
      met: evaluated.filter((m) => m.met).length,
      missed: Object.entries(metrics)
        .filter(([, m]) => m.met === false)
        .map(([k]) => k),
    },
    notes: ctx.notes,
    details: names.reduce((acc, n) => ({ ...acc, [n]: ctx.details[n] }), {} as Record<string, ServerDetails>),
  };
  const json = JSON.stringify(report, null, 2);
  await mkdir(dirname(o.out), { recursive: true });
  await writeFile(o.out, json + '\n');
  process.stdout.write(json + '\n');
  process.stderr.write('\n' + table(metrics) + '\n\n');
  log(`JSON written to ${o.out}${o.keep ? `; data directories kept in ${work}` : ''}`);
  return failure ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
