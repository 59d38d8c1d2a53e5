// Timing model of the virtual tape library (DESIGN.md §6).
//
// Figures per LTO generation (full-height drives):
//   native rate 400 / 360 MB/s, load-to-ready 17 / 15 s, unload incl. rewind
//   30 / 24 s, average locate from load point 45 / 50 s, robot move ~20 s.
//
// Locate model (serpentine layout)
// --------------------------------
// LTO records data in wraps: the head writes one wrap from the beginning of the
// tape to its end, steps over, writes the next wrap back towards the beginning,
// and so on (LTO-8: 208 wraps, LTO-9: 280 wraps). A logical position therefore
// maps to a *longitudinal* position x ∈ [0,1] along the tape:
//
//   f = address·blockSize / capacity        (fraction of the cartridge filled)
//   w = floor(f·W), r = f·W − w              (wrap number, fraction into the wrap)
//   x = r on even (forward) wraps, 1 − r on odd (reverse) wraps
//
// Moving between wraps is a quick head step; the cost of a locate is the
// longitudinal travel at locate speed plus a fixed start/stop overhead:
//
//   locate(x0 → x1) = overhead + |x1 − x0| · fullPass      (0 when x1 = x0 and same address)
//
// For a target uniformly distributed over a full cartridge, x is uniform on
// [0,1]; from the load point (x0 = 0) the mean is overhead + fullPass/2, so
// fullPass = 2·(averageLocate − overhead) makes the average from load point
// equal the published figure (LTO-9: 3 + 42 = 45 s). Between two random
// positions the mean is overhead + fullPass/3 (≈ 31 s on LTO-9).
// Positions are fractions of the *configured* capacity, so a small demo
// cartridge behaves like a full-size tape shrunk to that capacity.
//
// Rewind, spacing over filemarks and seeking to EOD use the same model (drives
// do them at locate speed). Unload is a flat figure (it includes the rewind).
// Streaming costs bytes / native rate.
//
// Every figure is multiplied by ONE `timeScale` factor when time is actually
// spent (1 = real time, 0.001 = a thousand times faster, 0 = no waiting). The
// modelled seconds themselves are never scaled: they are what counters report.

import type { LtoGeneration } from './types.js';

export interface TimingPreset {
  generation: LtoGeneration;
  /** Native streaming rate, bytes per second. */
  rate: number;
  /** Seconds from cartridge in the drive to ready. */
  load: number;
  /** Seconds to unload, rewind included. */
  unload: number;
  /** Published average locate time from the load point, seconds. */
  averageLocate: number;
  /** Start/stop (and wrap change) overhead of every locate, seconds. */
  locateOverhead: number;
  /** One robot move (slot → drive, drive → slot, slot ↔ mail slot), seconds. */
  robotMove: number;
  /** Number of wraps of the serpentine layout. */
  wraps: number;
}

export const LTO9: TimingPreset = {
  generation: 'LTO-9',
  rate: 400e6,
  load: 17,
  unload: 30,
  averageLocate: 45,
  locateOverhead: 3,
  robotMove: 20,
  wraps: 280,
};

export const LTO8: TimingPreset = {
  generation: 'LTO-8',
  rate: 360e6,
  load: 15,
  unload: 24,
  averageLocate: 50,
  locateOverhead: 3,
  robotMove: 20,
  wraps: 208,
};

export const PRESETS: Record<LtoGeneration, TimingPreset> = { 'LTO-8': LTO8, 'LTO-9': LTO9 };

/** Seconds for one pass over the whole tape length at locate speed. */
export function fullPassSeconds(p: TimingPreset): number {
  return 2 * (p.averageLocate - p.locateOverhead);
}

/**
 * Longitudinal position x ∈ [0,1] of logical address `address` on a cartridge
 * of `capacityBytes` written in `blockSize` blocks (see the serpentine model above).
 */
export function longitudinalPosition(
  address: number,
  blockSize: number,
  capacityBytes: number,
  wraps: number,
): number {
  if (capacityBytes <= 0 || address <= 0) return 0;
  const f = Math.min(1, (address * blockSize) / capacityBytes);
  if (f >= 1) return wraps % 2 === 0 ? 0 : 1; // end of the last wrap
  const t = f * wraps;
  const w = Math.floor(t);
  const r = t - w;
  return w % 2 === 0 ? r : 1 - r;
}

/** Modelled seconds of moving between two longitudinal positions (0 when none is needed). */
export function locateSeconds(p: TimingPreset, fromX: number, toX: number): number {
  return p.locateOverhead + Math.abs(toX - fromX) * fullPassSeconds(p);
}

/** Modelled seconds of streaming `bytes` at native rate. */
export function streamSeconds(p: TimingPreset, bytes: number): number {
  return bytes / p.rate;
}

/** One unit of modelled time spent. */
export interface TimeEvent {
  /** Operation kind: robot, load, unload, locate, space, rewind, read, write, filemark. */
  op: string;
  /** What was busy: 'robot' or a drive name. */
  resource: string;
  /** Modelled seconds (unscaled). */
  seconds: number;
  /** Sum of modelled seconds of all events before this one (a total, not a timeline). */
  before: number;
}

/** How the virtual library spends modelled time. Injectable so tests can observe it. */
export interface TapeClock {
  spend(seconds: number, op: string, resource: string): Promise<void>;
}

export interface ScaledClockOptions {
  /** Real seconds per modelled second (1 = real time, 0 = no waiting). Default 1. */
  timeScale?: number;
  /** Keep every event (tests); totals are always kept. Default false. */
  keepEvents?: boolean;
}

/**
 * Spends modelled time as real timer waits scaled by `timeScale`, and records
 * totals per operation (and optionally each event).
 */
export class ScaledClock implements TapeClock {
  readonly timeScale: number;
  readonly keepEvents: boolean;
  readonly events: TimeEvent[] = [];
  private readonly totals = new Map<string, { count: number; seconds: number }>();
  private sum = 0;

  constructor(opts: ScaledClockOptions = {}) {
    const s = opts.timeScale ?? 1;
    if (!Number.isFinite(s) || s < 0) throw new RangeError(`timeScale must be a finite number ≥ 0, got ${s}`);
    this.timeScale = s;
    this.keepEvents = opts.keepEvents ?? false;
  }

  async spend(seconds: number, op: string, resource: string): Promise<void> {
    if (!(seconds >= 0)) seconds = 0;
    const t = this.totals.get(op) ?? { count: 0, seconds: 0 };
    t.count++;
    t.seconds += seconds;
    this.totals.set(op, t);
    if (this.keepEvents) this.events.push({ op, resource, seconds, before: this.sum });
    this.sum += seconds;
    const ms = seconds * this.timeScale * 1000;
    if (ms >= 1) await new Promise<void>((resolve) => setTimeout(resolve, ms));
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Total modelled seconds, of one operation kind or of all. */
  total(op?: string): number {
    if (op === undefined) return this.sum;
    return this.totals.get(op)?.seconds ?? 0;
  }

  /** Number of events of one operation kind. */
  count(op: string): number {
    return this.totals.get(op)?.count ?? 0;
  }

  /** Events of one kind (needs keepEvents). */
  eventsOf(op: string): TimeEvent[] {
    return this.events.filter((e) => e.op === op);
  }

  reset(): void {
    this.events.length = 0;
    this.totals.clear();
    this.sum = 0;
  }
}
