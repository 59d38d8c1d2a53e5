// Library and play trace of the policy benchmark (bench/policy.ts), deterministic per seed.
//
// Library: albums (8-14 tracks of 3-6 min at 320 kbit/s) and series seasons (8-12
// episodes of 40-50 min at 6 Mbit/s). Popularity is Zipf-distributed over
// containers (exponent `zipf`, ranks shuffled so popularity is unrelated to the
// order of creation). Each day has a Poisson number of listening/viewing
// sessions, mostly in the evening; a session picks a container by popularity and
// plays a run of consecutive items from a start item (albums mostly from track
// 1, series from the next unwatched episode), some of them only partly; some
// episode plays resume in the middle (a bookmark), so their first byte lies
// outside the head stub.

import { prng } from '../../src/util/prng.js';

export interface ModelItem {
  /** Index in Library.items (the simulator's key). */
  n: number;
  container: number;
  /** Position in the container's play order. */
  k: number;
  kind: 'audio' | 'video';
  /** Modelled bytes and playback. */
  size: number;
  seconds: number;
  /** Bytes per second. */
  rate: number;
  /** File name (natural order = play order). */
  name: string;
}

export interface ModelContainer {
  n: number;
  kind: 'album' | 'season';
  /** Relative directory of its files. */
  dir: string;
  items: number[];
  /** Popularity weight (Zipf). */
  weight: number;
}

export interface Library {
  items: ModelItem[];
  containers: ModelContainer[];
  bytes: number;
}

export interface Play {
  /** Seconds from the start of the trace. */
  at: number;
  item: number;
  /** Byte offset the play starts at (0, or a resume position). */
  offset: number;
  /** Seconds of playback from `offset`. */
  seconds: number;
  /** The session this play belongs to (consecutive plays of one viewer). */
  session: number;
}

export interface TraceOptions {
  seed: number;
  albums: number;
  seasons: number;
  days: number;
  sessionsPerDay: number;
  zipf: number;
}

export const DEFAULT_TRACE: TraceOptions = { seed: 9, albums: 400, seasons: 70, days: 60, sessionsPerDay: 40, zipf: 1.0 };

const AUDIO_RATE = 320_000 / 8;
const VIDEO_RATE = 6_000_000 / 8;

export function makeLibrary(o: TraceOptions): Library {
  const r = prng(o.seed);
  const between = (a: number, b: number) => a + Math.floor(r() * (b - a + 1));
  const items: ModelItem[] = [];
  const containers: ModelContainer[] = [];
  const add = (kind: 'album' | 'season', dir: string, count: number) => {
    const c: ModelContainer = { n: containers.length, kind, dir, items: [], weight: 0 };
    containers.push(c);
    for (let k = 0; k < count; k++) {
      const audio = kind === 'album';
      const seconds = audio ? between(180, 360) : between(2400, 3000);
      const rate = audio ? AUDIO_RATE : VIDEO_RATE;
      const name = audio ? `${String(k + 1).padStart(2, '0')} Track ${k + 1}.flac` : `S01E${String(k + 1).padStart(2, '0')}.mkv`;
      c.items.push(items.length);
      items.push({ n: items.length, container: c.n, k, kind: audio ? 'audio' : 'video', size: Math.round(seconds * rate), seconds, rate, name });
    }
  };
  for (let a = 0; a < o.albums; a++) add('album', `Music/Artist ${Math.floor(a / 3) + 1}/Album ${a + 1}`, between(8, 14));
  for (let s = 0; s < o.seasons; s++) add('season', `Video/Series ${Math.floor(s / 2) + 1}/Season ${(s % 2) + 1}`, between(8, 12));
  // Zipf weights over a shuffled rank order
  const ranks = containers.map((_, i) => i);
  for (let i = ranks.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [ranks[i], ranks[j]] = [ranks[j]!, ranks[i]!];
  }
  ranks.forEach((c, rank) => (containers[c]!.weight = 1 / Math.pow(rank + 1, o.zipf)));
  return { items, containers, bytes: items.reduce((n, i) => n + i.size, 0) };
}

/** Plays of `o.days` days, in time order. */
export function makeTrace(lib: Library, o: TraceOptions): Play[] {
  const r = prng(o.seed * 7919 + 1);
  const total = lib.containers.reduce((n, c) => n + c.weight, 0);
  const cum: number[] = [];
  let acc = 0;
  for (const c of lib.containers) cum.push((acc += c.weight / total));
  const pick = () => {
    const x = r();
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lib.containers[lo]!;
  };
  const poisson = (mean: number) => {
    let n = 0;
    let p = Math.exp(-mean);
    let s = p;
    const u = r();
    while (u > s && n < mean * 10) {
      n++;
      p *= mean / n;
      s += p;
    }
    return n;
  };
  /** Next unwatched episode per season. */
  const progress = new Map<number, number>();
  const plays: Play[] = [];
  let session = 0;
  for (let day = 0; day < o.days; day++) {
    const n = poisson(o.sessionsPerDay);
    for (let s = 0; s < n; s++) {
      // evenings mostly: 70% between 18:00 and 24:00, the rest any time
      const hour = r() < 0.7 ? 18 + r() * 6 : r() * 24;
      let t = day * 86400 + hour * 3600;
      const c = pick();
      session++;
      let k: number;
      let count: number;
      if (c.kind === 'album') {
        k = r() < 0.7 ? 0 : Math.floor(r() * c.items.length);
        count = r() < 0.5 ? c.items.length - k : 1 + Math.floor(r() * Math.min(5, c.items.length - k));
      } else {
        k = (progress.get(c.n) ?? 0) % c.items.length;
        count = Math.min(c.items.length - k, 1 + Math.floor(r() * 3));
      }
      for (let i = 0; i < count; i++) {
        const it = lib.items[c.items[k + i]!]!;
        const resume = it.kind === 'video' && i === 0 && r() < 0.15;
        const offset = resume ? Math.floor(it.size * (0.2 + 0.6 * r())) : 0;
        const left = it.seconds - offset / it.rate;
        const seconds = r() < 0.85 ? left : left * r();
        plays.push({ at: t, item: it.n, offset, seconds, session });
        t += seconds + 2;
        if (seconds < left) break; // stopped part-way: the session ends
      }
      if (c.kind === 'season') progress.set(c.n, k + count);
    }
  }
  return plays.sort((a, b) => a.at - b.at || a.session - b.session);
}
