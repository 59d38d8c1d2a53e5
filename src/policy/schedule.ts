// When the next automatic policy pass starts (pure: clock and local time are parameters).

import { inWindow, type DailyWindow } from './units.js';

/** Minute of the local day of a time (ms). */
export const localMinute = (ms: number): number => {
  const d = new Date(ms);
  return d.getHours() * 60 + d.getMinutes();
};

/** The first time >= t (ms, rounded up to a minute boundary when it has to move) inside the window. */
export function nextInWindow(t: number, window: DailyWindow | undefined, minuteOf: (ms: number) => number = localMinute): number {
  if (!window || window.start === window.end || inWindow(window, minuteOf(t))) return t;
  const m = minuteOf(t);
  const wait = (window.start - m + 1440) % 1440;
  // to the start of that minute: seconds within the current minute are dropped
  const start = t - (t % 60_000) + wait * 60_000;
  // DST shifts can land an hour off: step minute by minute (bounded) into the window
  let x = start;
  for (let i = 0; i < 120 && !inWindow(window, minuteOf(x)); i++) x += 60_000;
  return x;
}

export interface ScheduleInput {
  now: number;
  /** ms of the last pass's start (any trigger), if any */
  lastPass?: number;
  /** seconds; 0 = never automatically */
  interval: number;
  window?: DailyWindow;
  /** earliest start (e.g. server start + a grace period for the first scan) */
  notBefore?: number;
}

/** ms of the next automatic pass, or undefined when passes only run by hand. */
export function nextPassTime(s: ScheduleInput, minuteOf: (ms: number) => number = localMinute): number | undefined {
  if (s.interval <= 0) return undefined;
  let t = s.lastPass !== undefined ? s.lastPass + s.interval * 1000 : s.now;
  t = Math.max(t, s.notBefore ?? t);
  // overdue (the server was down, or busy with a scan, when it came due): due now, or when the
  // window opens next if it has closed since (a pass never starts outside it)
  return nextInWindow(Math.max(t, s.now), s.window, minuteOf);
}
