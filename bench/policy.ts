// Policy benchmark (issue 9): a trace-driven run of the tape tier over 60 simulated
// days, Tapedeck's tiering against a plain HSM baseline on the same trace, in the
// same run. Prints one JSON document on stdout (also bench/results/policy.json) and
// a table on stderr.
//
//   npm run -s bench:policy -- [--days 60] [--warmup 14] [--albums 400] [--seasons 70]
//                              [--sessions 40] [--zipf 1.0] [--seed 9] [--drives 2]
//                              [--cartridge-gib 200] [--quick]
//
// Library: ≥ 5,000 items in albums and series seasons (bench/policy/trace.ts), Zipf
// popularity over containers; a high watermark of 25% of the library's bytes (low
// 20%). The items are tiny synthetic files scanned into a real catalog (their
// modelled sizes and bitrates come from the probe); bytes matter only through the
// model (bench/policy/sim.ts: drives, cartridges, cache, playback at real LTO-9
// timing, so stalls are figures at scale 1).
//
// baseline: LRU archive to the watermark, fixed 4 MiB stub, no promotion, no
//           pre-staging (bench/policy/strategies.ts).
// tapedeck: the real planner (src/policy/plan.ts: watermarks, promotion 2 plays in
//           7 days, min_archive_size 16M, collocation), head_stub_seconds = auto,
//           pre-staging by the real Prestager (3 items, 300 s).
//
// Figures (counted after the warm-up days): share of plays whose first byte did
// not wait for tape; share of playback time stalled past the stub (the wait before
// a first byte that was not on disk counts as stalled too); mounts per day
// (playback, pre-stages and policy jobs); bytes moved per day (tape reads and
// writes, verify read-back included).

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import type { ProbeResult } from '../src/catalog/types.js';
import { UPNP_CLASS } from '../src/media/probe.js';
import { scan } from '../src/scanner/scanner.js';
import { headBytes } from '../src/archive/stubs.js';
import { autoHeadStubSeconds } from '../src/archive/stub-seconds.js';
import { LTO9 } from '../src/tape/timing.js';
import { DEFAULT_TRACE, makeLibrary, makeTrace, type Library, type ModelItem, type Play } from './policy/trace.js';
import { TierModel, type Figures, type SimOptions } from './policy/sim.js';
import { baselinePass, tapedeckPass, type Marks } from './policy/strategies.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const DAY = 86400;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`--${name} needs a non-negative number\n`);
    process.exit(2);
  }
  return v;
}

const quick = process.argv.includes('--quick');
const opts = {
  ...DEFAULT_TRACE,
  seed: arg('seed', DEFAULT_TRACE.seed),
  albums: arg('albums', quick ? 60 : DEFAULT_TRACE.albums),
  seasons: arg('seasons', quick ? 12 : DEFAULT_TRACE.seasons),
  sessionsPerDay: arg('sessions', quick ? 15 : DEFAULT_TRACE.sessionsPerDay),
  zipf: arg('zipf', DEFAULT_TRACE.zipf),
};
const days = arg('days', quick ? 14 : 60);
const warmup = arg('warmup', quick ? 3 : 14);
const drives = arg('drives', 2);
const cartridgeBytes = arg('cartridge-gib', 200) * GiB;

/** Tiny files with the model's names, scanned into a real catalog; model bitrate and duration from the probe. */
async function buildCatalog(lib: Library): Promise<{ catalog: Catalog; ids: string[]; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-policy-'));
  const media = join(dir, 'media');
  const byPath = new Map<string, ModelItem>();
  for (const c of lib.containers) {
    await mkdir(join(media, c.dir), { recursive: true });
    for (const n of c.items) {
      const it = lib.items[n]!;
      const p = join(media, c.dir, it.name);
      byPath.set(p, it);
      await writeFile(p, 'x');
    }
  }
  const probe = async (path: string): Promise<ProbeResult | undefined> => {
    const it = byPath.get(path);
    if (!it) return undefined;
    const audio = it.kind === 'audio';
    return {
      kind: it.kind,
      upnpClass: UPNP_CLASS[it.kind],
      title: it.name.replace(/\.[^.]+$/, ''),
      meta: {},
      res: { mime: audio ? 'audio/flac' : 'video/x-matroska', size: 1, bitrate: it.rate, duration: it.seconds },
    };
  };
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await scan(catalog, { roots: [media], probe });
  const ids: string[] = [];
  for (const c of lib.containers) {
    for (const n of c.items) {
      const e = await catalog.getPath(join(media, c.dir, lib.items[n]!.name));
      if (!e?.id) throw new Error(`not catalogued: ${lib.items[n]!.name}`);
      ids[n] = e.id;
    }
  }
  return { catalog, ids, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

interface Run {
  name: string;
  figures: Figures;
  wallMs: number;
}

async function run(name: string, lib: Library, trace: Play[], cat: { catalog: Catalog; ids: string[] }, sim: SimOptions, pass: (m: TierModel) => Promise<void>): Promise<Run> {
  const t0 = performance.now();
  const m = new TierModel(lib, cat.ids, cat.catalog, sim);
  for (let n = 0; n < lib.items.length; n++) await cat.catalog.setLocation(cat.ids[n]!, { disk: { path: `/model/${n}`, size: lib.items[n]!.size, mtime: 0 } });
  m.now = 0;
  await pass(m); // the library starts within its marks
  let nextPass = 3 * 3600 + DAY; // 03:00 every day
  for (const p of trace) {
    while (p.at >= nextPass) {
      m.now = nextPass;
      await pass(m);
      nextPass += DAY;
    }
    await m.play(p);
  }
  return { name, figures: m.figures, wallMs: Math.round(performance.now() - t0) };
}

function summary(r: Run, days: number) {
  const f = r.figures;
  return {
    plays: f.plays,
    playsFromTape: f.playsFromTape,
    firstByteNoWaitShare: f.plays ? f.firstByteNoWait / f.plays : 1,
    stalledShare: f.playbackSeconds ? (f.stallSeconds + f.startWaitSeconds) / f.playbackSeconds : 0,
    stallSeconds: Math.round(f.stallSeconds),
    startWaitSeconds: Math.round(f.startWaitSeconds),
    playbackHours: Math.round(f.playbackSeconds / 3600),
    mountsPerDay: f.mounts / days,
    bytesMovedPerDay: Math.round((f.bytesRead + f.bytesWritten) / days),
    bytesReadPerDay: Math.round(f.bytesRead / days),
    bytesWrittenPerDay: Math.round(f.bytesWritten / days),
    prestages: f.prestages,
    prestagedBytes: f.prestagedBytes,
    archived: f.archived,
    recalled: f.recalled,
    wallMs: r.wallMs,
  };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const lib = makeLibrary(opts);
  const trace = makeTrace(lib, { ...opts, days: days + warmup });
  process.stderr.write(`library: ${lib.items.length} items in ${lib.containers.length} containers, ${(lib.bytes / 1e12).toFixed(2)} TB; ${trace.length} plays over ${days + warmup} days (${warmup} warm-up)\n`);
  const cat = await buildCatalog(lib);
  try {
    const marks: Marks = { high: Math.floor(lib.bytes * 0.25), low: Math.floor(lib.bytes * 0.2) };
    const common = { preset: LTO9, drives, cartridgeBytes, idleUnloadS: 300, cacheBytes: 2 * GiB, countFrom: warmup * DAY };
    const autoSeconds = autoHeadStubSeconds(LTO9);
    const baseline = await run('baseline', lib, trace, cat, { ...common, stubBytes: () => 4 * MiB }, (m) => baselinePass(m, marks));
    const ours = await run(
      'tapedeck',
      lib,
      trace,
      cat,
      { ...common, stubBytes: (it) => headBytes({ bitrate: it.rate }, it.size, { headSeconds: autoSeconds, headMin: 4 * MiB }), prestage: { items: 3, seconds: 300 } },
      (m) => tapedeckPass(m, marks, { plays: 2, windowS: 7 * DAY }),
    );
    const b = summary(baseline, days);
    const o = summary(ours, days);
    const goals = {
      firstByteNoWait: { target: '>= 0.99', value: o.firstByteNoWaitShare, met: o.firstByteNoWaitShare >= 0.99 },
      stalled: { target: '<= 0.001', value: o.stalledShare, met: o.stalledShare <= 0.001 },
      mountsVsBaseline: { target: '<= 0.5', value: b.mountsPerDay ? o.mountsPerDay / b.mountsPerDay : 0, met: b.mountsPerDay ? o.mountsPerDay / b.mountsPerDay <= 0.5 : o.mountsPerDay === 0 },
    };
    const doc = {
      bench: 'policy',
      library: { items: lib.items.length, containers: lib.containers.length, bytes: lib.bytes, highWatermark: marks.high, lowWatermark: marks.low },
      trace: { ...opts, days, warmupDays: warmup, plays: trace.length },
      model: { timing: 'LTO-9 at scale 1', drives, cartridgeBytes, idleUnloadSeconds: 300, cacheBytes: common.cacheBytes, autoStubSeconds: autoSeconds },
      tapedeck: o,
      baseline: b,
      goals,
      wallMs: Math.round(performance.now() - t0),
    };
    const json = JSON.stringify(doc, null, 2);
    process.stdout.write(json + '\n');
    const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'policy.json'), json + '\n');
    const pct = (x: number) => (100 * x).toFixed(3) + ' %';
    const rows: [string, string, string][] = [
      ['plays (counted)', String(o.plays), String(b.plays)],
      ['plays needing tape', String(o.playsFromTape), String(b.playsFromTape)],
      ['first byte without waiting for tape', pct(o.firstByteNoWaitShare), pct(b.firstByteNoWaitShare)],
      ['playback time stalled (scale 1)', pct(o.stalledShare), pct(b.stalledShare)],
      ['mounts per day', o.mountsPerDay.toFixed(2), b.mountsPerDay.toFixed(2)],
      ['bytes moved per day', (o.bytesMovedPerDay / GiB).toFixed(1) + ' GiB', (b.bytesMovedPerDay / GiB).toFixed(1) + ' GiB'],
      ['pre-stages', String(o.prestages), String(b.prestages)],
      ['archived / recalled items', `${o.archived} / ${o.recalled}`, `${b.archived} / ${b.recalled}`],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    process.stderr.write(`\n${'figure'.padEnd(w)}  ${'tapedeck'.padStart(14)}  ${'baseline'.padStart(14)}\n`);
    for (const r of rows) process.stderr.write(`${r[0].padEnd(w)}  ${r[1].padStart(14)}  ${r[2].padStart(14)}\n`);
    process.stderr.write(
      `\ngoals: first byte ${goals.firstByteNoWait.met ? 'met' : 'MISSED'}, stalls ${goals.stalled.met ? 'met' : 'MISSED'}, mounts ${(goals.mountsVsBaseline.value * 100).toFixed(0)}% of baseline ${goals.mountsVsBaseline.met ? 'met' : 'MISSED'}\n`,
    );
  } finally {
    await cat.catalog.close();
    await cat.cleanup();
  }
}

await main();
