// The policy benchmark's fast model (`npm run -s bench:policy -- --model`): the same trace
// through the real planner (src/policy/plan.ts) and the real Prestager, with the staging
// worker, drives and cache modelled by bench/policy/sim.ts at scale 1 (robot, load, unload,
// serpentine locate, 400 MB/s). Seconds for the full run; the headline figures come from the
// real servers (bench/policy.ts). A play holds its cartridge's drive until it ends; a
// request for another cartridge waits for a free drive.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { goalsOf } from './report.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../../src/catalog/catalog.js';
import { MemoryStore } from '../../src/catalog/store.js';
import type { ProbeResult } from '../../src/catalog/types.js';
import { UPNP_CLASS } from '../../src/media/probe.js';
import { scan } from '../../src/scanner/scanner.js';
import { headBytes } from '../../src/archive/stubs.js';
import { autoHeadStubSeconds } from '../../src/archive/stub-seconds.js';
import { LTO9 } from '../../src/tape/timing.js';
import { makeLibrary, makeTrace, type Library, type ModelItem, type Play, type TraceOptions } from './trace.js';
import { TierModel, type Figures, type SimOptions } from './sim.js';
import { baselinePass, tapedeckOnPlay, tapedeckPass, type Marks, type PromoteRule } from './strategies.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const DAY = 86400;

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

async function run(name: string, lib: Library, trace: Play[], cat: { catalog: Catalog; ids: string[] }, sim: SimOptions, pass: (m: TierModel) => Promise<void>, afterPlay?: (m: TierModel, item: number) => Promise<void>): Promise<Run> {
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
    await afterPlay?.(m, p.item);
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
    premigrated: f.premigrated,
    wallMs: r.wallMs,
  };
}

export interface ModelOptions {
  trace: TraceOptions;
  days: number;
  warmup: number;
  drives: number;
  cartridgeBytes: number;
  /** promote_container_plays (0 = off) and promote_visit_gap (seconds) of Tapedeck. */
  containerPlays?: number;
  visitGapS?: number;
  /** premigrate of Tapedeck (default on, the setting's default). */
  premigrate?: boolean;
}

/** Runs both strategies through the model; answers the JSON document (figures as the real run's). */
export async function runModel(mo: ModelOptions): Promise<Record<string, unknown>> {
  const { trace: opts, days, warmup, drives, cartridgeBytes } = mo;
  const t0 = performance.now();
  const lib = makeLibrary(opts);
  const trace = makeTrace(lib, { ...opts, days: days + warmup });
  process.stderr.write(`library: ${lib.items.length} items in ${lib.containers.length} containers, ${(lib.bytes / 1e12).toFixed(2)} TB; ${trace.length} plays over ${days + warmup} days (${warmup} warm-up)\n`);
  const cat = await buildCatalog(lib);
  try {
    const marks: Marks = { high: Math.floor(lib.bytes * 0.25), low: Math.floor(lib.bytes * 0.2) };
    const common = { preset: LTO9, drives, cartridgeBytes, idleUnloadS: 300, cacheBytes: 2 * GiB, countFrom: warmup * DAY };
    const autoSeconds = autoHeadStubSeconds(LTO9);
    const rule: PromoteRule = { plays: 2, windowS: 7 * DAY, containerPlays: mo.containerPlays ?? 2, premigrate: mo.premigrate ?? true, ...(mo.visitGapS !== undefined ? { visitGapS: mo.visitGapS } : {}) };
    const baseline = await run('baseline', lib, trace, cat, { ...common, stubBytes: () => 4 * MiB }, (m) => baselinePass(m, marks));
    const ours = await run(
      'tapedeck',
      lib,
      trace,
      cat,
      { ...common, stubBytes: (it) => headBytes({ bitrate: it.rate }, it.size, { headSeconds: autoSeconds, headMin: 4 * MiB }), prestage: { items: 3, seconds: 300 } },
      (m) => tapedeckPass(m, marks, rule),
      (m, item) => tapedeckOnPlay(m, marks, rule, item),
    );
    const b = summary(baseline, days);
    const o = summary(ours, days);
    const doc = {
      bench: 'policy',
      library: { items: lib.items.length, containers: lib.containers.length, bytes: lib.bytes, highWatermark: marks.high, lowWatermark: marks.low },
      trace: { ...opts, days, warmupDays: warmup, plays: trace.length },
      model: { timing: 'LTO-9 at scale 1', drives, cartridgeBytes, idleUnloadSeconds: 300, cacheBytes: common.cacheBytes, autoStubSeconds: autoSeconds },
      tapedeck: o,
      baseline: b,
      goals: goalsOf(o, b),
      wallMs: Math.round(performance.now() - t0),
    };
    return doc;
  } finally {
    await cat.catalog.close();
    await cat.cleanup();
  }
}

