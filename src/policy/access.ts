// Access tracking: per item, durably in the catalog store, how often and how recently it was
// played and how many bytes were served (the signals the storage policy decides on).
//
//   a/<itemId>   AccessRecord JSON (canonical item IDs only)
//
// A play is one client starting to fetch an item's bytes: the many Range requests of one
// playback by one client count once as long as they keep coming (each less than
// PLAY_GAP_MS after the previous one ended). Browse and Search never reach this module.
// Counts are kept in memory and written in one batch every `flushMs` (and on stop()), so a
// kill -9 loses at most the last flush interval; there is no write per Range request.
// The same batch writes each client's last request of the item (`sessions`, only those younger
// than PLAY_GAP_MS), so a playback that spans a server restart (or kill -9) still counts once.

import type { KVStore } from '../catalog/store.js';
import { prefixRange } from '../catalog/store.js';
import { parseRefId } from '../catalog/layout.js';
import { ACCESS_PREFIX } from '../catalog/catalog.js';

export { ACCESS_PREFIX };
/** Requests of one client for one item closer than this belong to the same play. */
export const PLAY_GAP_MS = 30 * 60 * 1000;
/** Play times kept per item (for "N plays within the promotion window"). */
export const RECENT_PLAYS_MAX = 256;
/** Client/item sessions remembered at most (the oldest are forgotten first). */
export const MAX_SESSIONS = 20_000;
/** Clients whose last request is kept per stored record (the most recent). */
export const MAX_STORED_SESSIONS = 32;
export const DEFAULT_FLUSH_MS = 3000;

export interface AccessRecord {
  plays: number;
  /** ms since epoch of the last play start */
  lastPlayed?: number;
  bytesServed: number;
  /** Start times (ms) of the most recent plays, oldest first, at most RECENT_PLAYS_MAX. */
  recent: number[];
  /** Client → ms of its last request of the item, for clients seen within PLAY_GAP_MS of the last write. */
  sessions?: Record<string, number>;
}

export const emptyAccess = (): AccessRecord => ({ plays: 0, bytesServed: 0, recent: [] });

/** Plays that started in (now - windowMs, now]. */
export function playsWithin(rec: AccessRecord | undefined, now: number, windowMs: number): number {
  if (!rec) return 0;
  return rec.recent.filter((t) => t > now - windowMs && t <= now).length;
}

function parse(v: string | undefined): AccessRecord | undefined {
  if (v === undefined) return undefined;
  try {
    const r = JSON.parse(v) as Partial<AccessRecord>;
    const sessions = r.sessions && typeof r.sessions === 'object' ? Object.entries(r.sessions).filter(([, t]) => typeof t === 'number') : [];
    return {
      plays: Number(r.plays) || 0,
      bytesServed: Number(r.bytesServed) || 0,
      recent: Array.isArray(r.recent) ? r.recent.filter((t) => typeof t === 'number') : [],
      ...(typeof r.lastPlayed === 'number' ? { lastPlayed: r.lastPlayed } : {}),
      ...(sessions.length ? { sessions: Object.fromEntries(sessions) } : {}),
    };
  } catch {
    return undefined;
  }
}

/** A play the tracker counted that continues a playback the stored record knows (one from before a restart). */
const continues = (base: AccessRecord | undefined, p: PlayStart) => {
  const last = base?.sessions?.[p.client];
  return last !== undefined && p.t >= last && p.t - last < PLAY_GAP_MS;
};

function merge(base: AccessRecord | undefined, d: Delta, now: number): AccessRecord {
  const r = base ? { ...base, recent: [...base.recent] } : emptyAccess();
  const plays = d.plays.filter((p) => !continues(base, p)).map((p) => p.t);
  r.plays += plays.length;
  r.bytesServed += d.bytes;
  if (plays.length) {
    r.recent.push(...plays);
    r.recent.sort((a, b) => a - b);
    if (r.recent.length > RECENT_PLAYS_MAX) r.recent.splice(0, r.recent.length - RECENT_PLAYS_MAX);
    r.lastPlayed = Math.max(r.lastPlayed ?? 0, ...plays);
  }
  const sessions = new Map(Object.entries(base?.sessions ?? {}));
  for (const [c, t] of d.seen) sessions.set(c, Math.max(sessions.get(c) ?? t, t));
  const live = [...sessions].filter(([, t]) => now - t < PLAY_GAP_MS).sort((a, b) => b[1] - a[1]).slice(0, MAX_STORED_SESSIONS);
  if (live.length) r.sessions = Object.fromEntries(live);
  else delete r.sessions;
  return r;
}

/** Reading the stored records (any process: the CLI reads them without a tracker). */
export async function readAccess(store: KVStore, ids?: string[]): Promise<Map<string, AccessRecord>> {
  const out = new Map<string, AccessRecord>();
  if (ids) {
    const vals = await store.getMany(ids.map((id) => ACCESS_PREFIX + id));
    ids.forEach((id, i) => {
      const r = parse(vals[i]);
      if (r) out.set(id, r);
    });
    return out;
  }
  for await (const [k, v] of store.entries(prefixRange(ACCESS_PREFIX))) {
    const r = parse(v);
    if (r) out.set(k.slice(ACCESS_PREFIX.length), r);
  }
  return out;
}

interface PlayStart {
  t: number;
  client: string;
}

interface Delta {
  plays: PlayStart[];
  bytes: number;
  /** Client → its last request (or streamed byte) of the item in this interval. */
  seen: Map<string, number>;
}

/** What the tracker needs of a response body that started (delivery's StreamStart has it). */
export interface ServedStream {
  /** Object ID of the request (a reference ID counts for its canonical item). */
  id: string;
  /** Client address. */
  remote: string;
  bytes(): number;
}

export interface AccessTrackerOptions {
  store: KVStore;
  now?: () => number;
  flushMs?: number;
  onError?: (err: Error) => void;
}

export class AccessTracker {
  private readonly store: KVStore;
  private readonly now: () => number;
  private readonly flushMs: number;
  private readonly onError: (err: Error) => void;
  private pending = new Map<string, Delta>();
  /** `<client>\0<item>` → time of the last request (insertion order = least recently seen first). */
  private readonly sessions = new Map<string, number>();
  /** Bodies still streaming and the bytes of each already counted. */
  private readonly active = new Map<ServedStream, { item: string; client: string; counted: number }>();
  private writing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** Plays counted since this tracker started (for /metrics). */
  playsCounted = 0;

  constructor(opts: AccessTrackerOptions) {
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
    this.flushMs = opts.flushMs ?? DEFAULT_FLUSH_MS;
    this.onError = opts.onError ?? (() => undefined);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush().catch((err: Error) => this.onError(err)), this.flushMs);
    this.timer.unref();
  }

  /** Writes what is pending and stops the timer. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private delta(id: string): Delta {
    let d = this.pending.get(id);
    if (!d) this.pending.set(id, (d = { plays: [], bytes: 0, seen: new Map() }));
    return d;
  }

  /** The client is still fetching the item now: remembered, and written with the next batch. Returns the previous time. */
  private touch(id: string, client: string, now: number): number | undefined {
    const key = client + '\0' + id;
    const last = this.sessions.get(key);
    this.sessions.delete(key);
    this.sessions.set(key, now);
    this.pruneSessions(now);
    this.delta(id).seen.set(client, now);
    return last;
  }

  /**
   * A client asked for an item's bytes. Counts a play unless the same client fetched the
   * same item less than PLAY_GAP_MS ago. Returns whether a play was counted (a play that turns
   * out, when written, to continue a playback stored before a restart is dropped then).
   */
  notePlay(objectId: string, client: string): boolean {
    const id = parseRefId(objectId)?.itemId ?? objectId;
    const now = this.now();
    const last = this.touch(id, client, now);
    if (last !== undefined && now - last < PLAY_GAP_MS && now >= last) return false;
    this.delta(id).plays.push({ t: now, client });
    this.playsCounted++;
    return true;
  }

  private pruneSessions(now: number): void {
    for (const [k, t] of this.sessions) {
      if (this.sessions.size <= MAX_SESSIONS && now - t < PLAY_GAP_MS) break;
      this.sessions.delete(k);
    }
  }

  /** Served bytes of an item (outside a tracked stream). */
  noteBytes(objectId: string, n: number): void {
    if (n > 0) this.delta(parseRefId(objectId)?.itemId ?? objectId).bytes += n;
  }

  /** A body started streaming: a play (see notePlay), and its bytes are counted as they go. Returns whether a play was counted. */
  streamStarted(s: ServedStream): boolean {
    const item = parseRefId(s.id)?.itemId ?? s.id;
    const counted = this.notePlay(item, s.remote);
    this.active.set(s, { item, client: s.remote, counted: 0 });
    return counted;
  }

  /** A body ended: its remaining bytes are counted. */
  streamEnded(s: ServedStream, bytes = s.bytes()): void {
    const a = this.active.get(s);
    if (!a) return;
    this.active.delete(s);
    this.noteBytes(a.item, bytes - a.counted);
    // a long body is activity until it ends: the gap to the next request counts from here
    this.touch(a.item, a.client, this.now());
  }

  private sampleActive(): void {
    const now = this.now();
    for (const [s, a] of this.active) {
      const b = s.bytes();
      if (b > a.counted) {
        this.noteBytes(a.item, b - a.counted);
        a.counted = b;
        this.touch(a.item, a.client, now);
      }
    }
  }

  /** Writes the counts gathered since the last flush in one batch (serialised). */
  flush(): Promise<void> {
    const run = this.writing.then(async () => {
      this.sampleActive();
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      const ids = [...batch.keys()];
      try {
        const stored = await readAccess(this.store, ids);
        const now = this.now();
        await this.store.batch(ids.map((id) => ({ type: 'put' as const, key: ACCESS_PREFIX + id, value: JSON.stringify(merge(stored.get(id), batch.get(id)!, now)) })));
        for (const [id, d] of batch) this.playsCounted -= d.plays.filter((p) => continues(stored.get(id), p)).length;
      } catch (err) {
        // keep the counts for the next flush
        for (const [id, d] of batch) {
          const cur = this.delta(id);
          cur.plays.unshift(...d.plays);
          cur.bytes += d.bytes;
          for (const [c, t] of d.seen) cur.seen.set(c, Math.max(cur.seen.get(c) ?? t, t));
        }
        throw err;
      }
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** Stored records with what is not flushed yet merged in. */
  async read(ids?: string[]): Promise<Map<string, AccessRecord>> {
    await this.writing;
    const stored = await readAccess(this.store, ids);
    const wanted = ids ? new Set(ids) : undefined;
    for (const [id, d] of this.pending) {
      if (wanted && !wanted.has(id)) continue;
      stored.set(id, merge(stored.get(id), d, this.now()));
    }
    return stored;
  }
}
