// Workloads of issue 11 ("light enough for a small NAS"), run on both servers in the
// same run, each with the server's CPU per request from /proc (robust to a busy machine,
// unlike req/s):
//   folder    BrowseDirectChildren of one 2,000-item folder, RequestedCount 50, random index
//   meta      BrowseMetadata of random items of that folder
//   uncached  Search with 40 distinct title words and 40 distinct artists, one request at a
//             time, nothing repeated back to back (Tapedeck runs with its result cache off)
// The folder and the item IDs are found by browsing each server (their IDs differ).

import type { Client, RunningServer, ServerName } from './servers.js';
import type { Track } from './library.js';
import { folderName, FOLDER_SIZE } from './library.js';
import type { SoapLoadResult } from './client.js';
import type { Compactions } from './leveldb-log.js';
import { atLeast, atMost, metric, prng, round, summarize, type LatencySummary, type Metric } from './stats.js';

export interface CpuLoad {
  requests: number;
  errors: number;
  errorSamples?: string[];
  reqPerSec: number;
  /** Server CPU milliseconds per request (user + system, from /proc/<pid>/stat). */
  cpuMsPerRequest: number;
  /** The part of cpuMsPerRequest its exited children used (ffmpeg of a background pass running beside the load; 0 when none). */
  childCpuMsPerRequest?: number;
  /** Compactions of the catalog database while the measured requests ran (their CPU is in cpuMsPerRequest; Tapedeck only). */
  compactions?: { count: number; mbWritten: number };
  latency: LatencySummary;
}

export interface WorkloadDetails {
  folder?: CpuLoad & { containerId: string; children: number };
  meta?: CpuLoad & { ids: number };
  uncached?: Record<'titleContains' | 'artistEquals', CpuLoad & { criteria: string[] }>;
}

export interface WorkloadContext {
  client: Client;
  log: (s: string) => void;
  notes: string[];
  rounds: number;
  concurrency: number;
  requests: number;
}

const unescapeXml = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');

interface DidlEntry {
  id: string;
  container: boolean;
  title: string;
  childCount?: number;
}

function parseResult(body: string): { entries: DidlEntry[]; total: number } {
  const total = Number(/<TotalMatches>(\d+)<\/TotalMatches>/.exec(body)?.[1] ?? NaN);
  const result = unescapeXml(/<Result>([\s\S]*?)<\/Result>/.exec(body)?.[1] ?? '');
  const entries: DidlEntry[] = [];
  const re = /<(container|item)\b([^>]*)>([\s\S]*?)<\/\1>/g;
  for (let m = re.exec(result); m; m = re.exec(result)) {
    const attrs = m[2];
    const id = unescapeXml(/\bid="([^"]*)"/.exec(attrs)?.[1] ?? '');
    const cc = /\bchildCount="(\d+)"/.exec(attrs)?.[1];
    const title = unescapeXml(/<dc:title>([\s\S]*?)<\/dc:title>/.exec(m[3])?.[1] ?? '');
    entries.push({ id, container: m[1] === 'container', title, childCount: cc === undefined ? undefined : Number(cc) });
  }
  return { entries, total };
}

async function browse(ctx: WorkloadContext, s: RunningServer, id: string, start: number, count: number): Promise<{ entries: DidlEntry[]; total: number }> {
  const r = await ctx.client.call<{ status: number; body: string }>(
    'soap-call',
    { url: s.controlUrl, action: 'Browse', args: { ObjectID: id, BrowseFlag: 'BrowseDirectChildren', Filter: '*', StartingIndex: start, RequestedCount: count, SortCriteria: '' } },
    60_000,
  );
  if (r.status !== 200) throw new Error(`${s.name}: Browse ${id} answered HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  return parseResult(r.body);
}

/** The container titled `title` holding `children` items: breadth first from the root, never opening big containers. */
export async function findFolder(ctx: WorkloadContext, s: RunningServer, title: string, children: number): Promise<string> {
  const queue = ['0'];
  const seen = new Set<string>();
  for (let opened = 0; queue.length && opened < 200; opened++) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const { entries } = await browse(ctx, s, id, 0, 500);
    for (const e of entries) {
      if (!e.container) continue;
      if (e.title === title && e.childCount === children) return e.id;
      if ((e.childCount ?? 0) <= 500) queue.push(e.id);
    }
  }
  throw new Error(`${s.name}: no container "${title}" with ${children} children found by browsing`);
}

async function itemIds(ctx: WorkloadContext, s: RunningServer, folderId: string, total: number): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < total; start += 500) ids.push(...(await browse(ctx, s, folderId, start, 500)).entries.filter((e) => !e.container).map((e) => e.id));
  return ids;
}

/** One load run with the server's CPU time around it. */
interface Measured {
  run: SoapLoadResult;
  cpuS: number;
  childS: number;
  requests: number;
  compactions?: Compactions;
}

async function measured(ctx: WorkloadContext, s: RunningServer, job: Record<string, unknown>, requests: number): Promise<Measured> {
  const c0 = s.cpu();
  const k0 = s.childCpu?.() ?? 0;
  const t0 = Date.now();
  const run = await ctx.client.call<SoapLoadResult>('soap-load', { url: s.controlUrl, ...job, requests, timeoutMs: 30_000 }, Math.max(120_000, requests * 30_000));
  const cpuS = s.cpu() - c0;
  return { run, cpuS, childS: (s.childCpu?.() ?? 0) - k0, requests, compactions: s.compactions?.(t0, Date.now()) };
}

function summarizeRuns(runs: Measured[]): CpuLoad {
  const requests = runs.reduce((a, r) => a + r.requests, 0);
  const ok = runs.reduce((a, r) => a + r.run.ok, 0);
  const errors = runs.reduce((a, r) => a + r.run.errors, 0);
  const ms = runs.reduce((a, r) => a + r.run.elapsedMs, 0);
  const cpu = runs.reduce((a, r) => a + r.cpuS, 0);
  const child = runs.reduce((a, r) => a + r.childS, 0);
  const samples = runs.flatMap((r) => r.run.errorSamples).slice(0, 5);
  const compacted = runs.some((r) => r.compactions);
  const compactions = runs.reduce((a, r) => a + (r.compactions?.count ?? 0), 0);
  const compactedBytes = runs.reduce((a, r) => a + (r.compactions?.bytes ?? 0), 0);
  return {
    requests,
    errors,
    ...(errors ? { errorSamples: samples } : {}),
    reqPerSec: round((ok * 1000) / ms, 1),
    cpuMsPerRequest: round((cpu * 1000) / requests, 3),
    childCpuMsPerRequest: round((child * 1000) / requests, 3),
    ...(compacted ? { compactions: { count: compactions, mbWritten: round(compactedBytes / 1e6, 1) } } : {}),
    latency: summarize(runs.flatMap((r) => r.run.latenciesMs).filter(Number.isFinite)),
  };
}

/** Runs `job` on every server for `rounds` rounds, alternating which goes first; one warm-up each. */
/** `requests`: measured requests per server, in all rounds (a function: a count of its own for each server). */
async function compare(
  ctx: WorkloadContext,
  servers: RunningServer[],
  jobOf: (s: RunningServer, round: number) => Record<string, unknown>,
  requests: number | ((s: RunningServer) => number),
  warmup: number,
): Promise<Map<ServerName, CpuLoad>> {
  for (const s of servers) await measured(ctx, s, jobOf(s, -1), warmup);
  const per = (s: RunningServer) => Math.max(1, Math.ceil((typeof requests === 'number' ? requests : requests(s)) / ctx.rounds));
  const runs = new Map<ServerName, Measured[]>(servers.map((s) => [s.name, []]));
  for (let r = 0; r < ctx.rounds; r++) {
    const order = r % 2 === 0 ? servers : [...servers].reverse();
    for (const s of order) runs.get(s.name)!.push(await measured(ctx, s, jobOf(s, r), per(s)));
  }
  const out = new Map<ServerName, CpuLoad>();
  for (const s of servers) {
    const sum = summarizeRuns(runs.get(s.name)!);
    out.set(s.name, sum);
    const c = sum.compactions?.count ? ` (LevelDB compacted ${sum.compactions.count}x, ${sum.compactions.mbWritten} MB written, meanwhile: counted in the CPU)` : '';
    ctx.log(`  ${s.name}: ${sum.reqPerSec} req/s, ${sum.cpuMsPerRequest} CPU ms/request${sum.childCpuMsPerRequest ? ` (${sum.childCpuMsPerRequest} of it exited children's)` : ''}${c}, p50 ${sum.latency.p50Ms} ms, ${sum.errors} errors`);
  }
  return out;
}

/** Folder Browse and BrowseMetadata on a 2,000-item folder of the library. */
export async function folderAndMetaPhase(ctx: WorkloadContext, servers: RunningServer[], libraryCount: number, details: Record<ServerName, WorkloadDetails>, which: { folder: boolean; meta: boolean }): Promise<void> {
  // a middle folder that is full
  const folders = Math.floor(libraryCount / FOLDER_SIZE);
  if (folders < 1) {
    ctx.notes.push(`folder and metadata workloads skipped: the library has no full ${FOLDER_SIZE}-item folder`);
    return;
  }
  const title = folderName(Math.floor(folders / 2) * FOLDER_SIZE);
  const ids = new Map<ServerName, { folder: string; items: string[] }>();
  for (const s of servers) {
    const folder = await findFolder(ctx, s, title, FOLDER_SIZE);
    const items = which.meta ? await itemIds(ctx, s, folder, FOLDER_SIZE) : [];
    ids.set(s.name, { folder, items });
    ctx.log(`${s.name}: folder ${title} is ${folder}`);
  }
  if (which.folder) {
    ctx.log(`folder Browse of ${title} (${FOLDER_SIZE} items), RequestedCount 50, random StartingIndex, concurrency ${ctx.concurrency}`);
    const res = await compare(
      ctx,
      servers,
      (s, r) => ({
        action: 'Browse',
        args: { ObjectID: ids.get(s.name)!.folder, BrowseFlag: 'BrowseDirectChildren', Filter: '*', StartingIndex: 0, RequestedCount: 50, SortCriteria: '' },
        startMin: 0,
        startMax: FOLDER_SIZE - 50,
        seed: 500 + r,
        concurrency: ctx.concurrency,
        expectTotal: FOLDER_SIZE,
      }),
      ctx.requests,
      ctx.requests, // warm-up as long as the run: the steady state of a server that runs for days (Node compiles its hot paths; 200 requests left JIT work in the figure)
    );
    for (const [n, v] of res) details[n].folder = { ...v, containerId: ids.get(n)!.folder, children: FOLDER_SIZE };
  }
  if (which.meta) {
    ctx.log(`BrowseMetadata of random items of ${title}, concurrency ${ctx.concurrency}`);
    const res = await compare(
      ctx,
      servers,
      (s, r) => {
        const all = ids.get(s.name)!.items;
        const rnd = prng(900 + r);
        const pick = Array.from({ length: 256 }, () => all[Math.floor(rnd() * all.length)]);
        return {
          action: 'Browse',
          args: { ObjectID: '', BrowseFlag: 'BrowseMetadata', Filter: '*', StartingIndex: 0, RequestedCount: 0, SortCriteria: '' },
          variants: pick.map((id) => ({ args: { ObjectID: id }, expectTotal: 1 })),
          concurrency: ctx.concurrency,
        };
      },
      ctx.requests * 2,
      ctx.requests, // warm-up as long as the run: the steady state of a server that runs for days (Node compiles its hot paths; 200 requests left JIT work in the figure)
    );
    for (const [n, v] of res) details[n].meta = { ...v, ids: ids.get(n)!.items.length };
  }
}

/** Times Tapedeck's uncached Search load asks each criteria (see uncachedSearchPhase). */
export const UNCACHED_REPEATS = 25;

export interface UncachedQueries {
  titleContains: { criteria: string; expected: number }[];
  artistEquals: { criteria: string; expected: number }[];
}

/** 40 distinct title words and 40 distinct artists of the library, spread over it. */
export function uncachedQueries(tracks: Track[], n = 40): UncachedQueries {
  const words = [...new Set(tracks.flatMap((t) => t.title.toLowerCase().split(' ')))].sort();
  const artists = [...new Set(tracks.map((t) => t.artist))];
  const spread = <T>(a: T[]) => Array.from({ length: Math.min(n, a.length) }, (_, k) => a[Math.floor((k * a.length) / Math.min(n, a.length))]);
  return {
    titleContains: spread(words).map((w) => ({
      criteria: `upnp:class derivedfrom "object.item.audioItem" and dc:title contains "${w}"`,
      expected: tracks.filter((t) => t.title.toLowerCase().includes(w)).length,
    })),
    artistEquals: spread(artists).map((a) => ({ criteria: `upnp:artist = "${a}"`, expected: tracks.filter((t) => t.artist === a).length })),
  };
}

/**
 * Search with varied criteria, one request at a time. Every criteria is checked once on
 * each server first; a server whose TotalMatches differs from the library's is noted and
 * then held to its own answer (MiniDLNA's SQL may count containers differently).
 */
export async function uncachedSearchPhase(ctx: WorkloadContext, servers: RunningServer[], q: UncachedQueries, details: Record<ServerName, WorkloadDetails>): Promise<void> {
  for (const kind of ['titleContains', 'artistEquals'] as const) {
    const list = q[kind];
    const expect = new Map<ServerName, (number | undefined)[]>();
    for (const s of servers) {
      const totals: (number | undefined)[] = [];
      for (const c of list) {
        const r = await ctx.client.call<{ status: number; body: string }>(
          'soap-call',
          { url: s.controlUrl, action: 'Search', args: { ContainerID: '0', SearchCriteria: c.criteria, Filter: '*', StartingIndex: 0, RequestedCount: 50, SortCriteria: '' } },
          60_000,
        );
        const total = Number(/<TotalMatches>(\d+)<\/TotalMatches>/.exec(r.body)?.[1] ?? NaN);
        if (r.status !== 200 || total !== c.expected) ctx.notes.push(`${s.name}: Search ${c.criteria} answered HTTP ${r.status}, TotalMatches ${total} (library: ${c.expected})`);
        totals.push(r.status === 200 && Number.isFinite(total) ? total : undefined);
      }
      expect.set(s.name, totals);
    }
    ctx.log(`uncached Search ${kind}: ${list.length} distinct criteria, one request at a time`);
    const res = await compare(
      ctx,
      servers,
      (s, r) => {
        // a different rotation each round, so no criteria follows itself
        const rot = (r + 1 + list.length) % list.length;
        const order = list.map((_, k) => (k + rot) % list.length);
        return {
          action: 'Search',
          args: { ContainerID: '0', SearchCriteria: '', Filter: '*', StartingIndex: 0, RequestedCount: 50, SortCriteria: '' },
          variants: order.map((k) => ({ args: { SearchCriteria: list[k].criteria }, expectTotal: expect.get(s.name)![k] })),
          concurrency: 1,
        };
      },
      // Tapedeck's CPU per request is ~1 ms: 150 requests were ~15 ticks of /proc's 10 ms clock,
      // and one background compaction or GC in them moved the figure by a third (0.73 -> 1.33 ms
      // from 20k to 100k in a quiet run, 1.07 -> 1.0 the next). Every criteria UNCACHED_REPEATS
      // times gives it a second or more of CPU; MiniDLNA (~50-250 ms a request) keeps the count.
      (s) => Math.max(list.length, ctx.requests, s.name === 'tapedeck' ? UNCACHED_REPEATS * list.length : 0),
      Math.min(list.length, 10),
    );
    for (const [n, v] of res) (details[n].uncached ??= {} as NonNullable<WorkloadDetails['uncached']>)[kind] = { ...v, criteria: list.map((c) => c.criteria) };
  }
}

/** Metrics of these workloads (ratios ours / MiniDLNA; CPU targets per issue 11). */
export function workloadMetrics(t: WorkloadDetails, m: WorkloadDetails): Record<string, Metric> {
  const out: Record<string, Metric> = {};
  if (t.folder) {
    out.folderBrowseCpu = metric(`Browse of a ${FOLDER_SIZE}-item folder, 50 per page, random index: server CPU per request`, 'ms', t.folder.cpuMsPerRequest, m.folder?.cpuMsPerRequest, 'ratio <= 1.0', atMost(1.0));
    out.folderBrowseRate = metric(`Browse of a ${FOLDER_SIZE}-item folder: throughput`, 'req/s', t.folder.reqPerSec, m.folder?.reqPerSec, 'ratio >= 1.0', atLeast(1.0));
  }
  if (t.meta) {
    out.metadataCpu = metric('BrowseMetadata of one item: server CPU per request', 'ms', t.meta.cpuMsPerRequest, m.meta?.cpuMsPerRequest, 'ratio <= 1.0', atMost(1.0));
    out.metadataRate = metric('BrowseMetadata of one item: throughput', 'req/s', t.meta.reqPerSec, m.meta?.reqPerSec, 'ratio >= 1.0', atLeast(1.0));
  }
  for (const k of ['titleContains', 'artistEquals'] as const) {
    const a = t.uncached?.[k];
    if (!a) continue;
    const b = m.uncached?.[k];
    out[`uncachedSearch.${k}`] = metric(`Search without result cache, ${a.criteria.length} distinct ${k === 'titleContains' ? 'class + dc:title contains' : 'upnp:artist ='} criteria, one at a time`, 'req/s', a.reqPerSec, b?.reqPerSec, 'ratio >= 10', atLeast(10));
    out[`uncachedSearchCpu.${k}`] = metric(`Search without result cache (${k}): server CPU per request`, 'ms', a.cpuMsPerRequest, b?.cpuMsPerRequest, 'ratio <= 0.1', atMost(0.1));
  }
  return out;
}
