// Small statistics helpers for the benchmark report.

export interface LatencySummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Percentile by linear interpolation between closest ranks (p in 0..100) of a sorted array. */
export function percentileSorted(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function median(xs: number[]): number {
  return percentileSorted([...xs].sort((a, b) => a - b), 50);
}

export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function summarize(latenciesMs: number[]): LatencySummary {
  const s = [...latenciesMs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    count: s.length,
    minMs: round(s[0] ?? NaN),
    meanMs: round(mean),
    p50Ms: round(percentileSorted(s, 50)),
    p90Ms: round(percentileSorted(s, 90)),
    p99Ms: round(percentileSorted(s, 99)),
    maxMs: round(s[s.length - 1] ?? NaN),
  };
}

/** ours / theirs, or null when either side is missing. */
export function ratio(ours: number | null | undefined, theirs: number | null | undefined): number | null {
  if (ours == null || theirs == null || !Number.isFinite(ours) || !Number.isFinite(theirs) || theirs === 0) return null;
  return round(ours / theirs, 3);
}

export interface Metric {
  description: string;
  unit: string;
  ours: number | null;
  minidlna: number | null;
  /** ours / minidlna */
  ratio: number | null;
  target: string;
  met: boolean | null;
  /** RSS metrics: how the resident memory splits (anonymous / file-backed MB, LevelDB tables' share). */
  split?: Partial<Record<'tapedeck' | 'minidlna', { anonMB: number; fileMB: number; ldbMB: number }>>;
}

export function metric(description: string, unit: string, ours: number | undefined, theirs: number | undefined, target: string, check: (ours: number, ratio: number | null) => boolean | null): Metric {
  const r = ratio(ours, theirs);
  return {
    description,
    unit,
    ours: ours ?? null,
    minidlna: theirs ?? null,
    ratio: r,
    target,
    met: ours === undefined || !Number.isFinite(ours) ? null : check(ours, r),
  };
}

export const atLeast = (x: number) => (_o: number, r: number | null) => (r === null ? null : r >= x);
export const atMost = (x: number) => (_o: number, r: number | null) => (r === null ? null : r <= x);

export { prng } from '../src/util/prng.js';
