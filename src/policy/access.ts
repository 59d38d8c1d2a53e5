// Access tracking: per item, durably in the catalog store, how often and how recently it was
// played and how many bytes were served (the signals the storage policy decides on).
//
//   a/<itemId>   AccessRecord JSON (canonical item IDs only)
//
// A play is one client starting to fetch an item's bytes: the many Range requests of one
// playback by one client count once as long as they keep coming (each less than
// PLAY_GAP_MS after the previous one). Browse and Search never reach this module.
// Counts are kept in memory and written in one batch every `flushMs` (and on stop()), so a
// kill -9 loses at most the last flush interval; there is no write per Range request.

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
export const DEFAULT_FLUSH_MS = 3000;

export interface AccessRecord {
  plays: number;
  /** ms since epoch of the last play start */
  lastPlayed?: number;
  bytesServed: number;
  /** Start times (ms) of the most recent plays, oldest first, at most RECENT_PLAYS_MAX. */
  recent: number[];
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
    return { plays: Number(r.plays) || 0, bytesServed: Number(r.bytesServed) || 0, recent: Array.isArray(r.recent) ? r.recent.filter((t) => typeof t === 'number') : [], ...(typeof r.lastPlayed === 'number' ? { lastPlayed: r.lastPlayed } : {}) };
  } catch {
    return undefined;
  }
}

function merge(base: AccessRecord | undefined, d: Delta): AccessRecord {
  const r = base ? { ...base, recent: [...base.recent] } : emptyAccess();
  r.plays += d.plays.length;
  r.bytesServed += d.bytes;
  if (d.plays.length) {
    r.recent.push(...d.plays);
    r.recent.sort((a, b) => a - b);
    if (r.recent.length > RECENT_PLAYS_MAX) r.recent.splice(0, r.recent.length - RECENT_PLAYS_MAX);
    r.lastPlayed = Math.max(r.lastPlayed ?? 0, ...d.plays);
  }
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

interface Delta {
  plays: number[];
  bytes: number;
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
  private readonly active = new Map<ServedStream, { item: string; counted: number }>();
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
    if (!d) this.pending.set(id, (d = { plays: [], bytes: 0 }));
    return d;
  }

  /**
   * A client asked for an item's bytes. Counts a play unless the same client fetched the
   * same item less than PLAY_GAP_MS ago. Returns whether a play was counted.
   */
  notePlay(objectId: string, client: string): boolean {
    const id = parseRefId(objectId)?.itemId ?? objectId;
    const now = this.now();
    const key = client + '\0' + id;
    const last = this.sessions.get(key);
    this.sessions.delete(key);
    this.sessions.set(key, now);
    this.pruneSessions(now);
    if (last !== undefined && now - last < PLAY_GAP_MS && now >= last) return false;
    this.delta(id).plays.push(now);
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

  /** A body started streaming: a play (see notePlay), and its bytes are counted as they go. */
  streamStarted(s: ServedStream): void {
    const item = parseRefId(s.id)?.itemId ?? s.id;
    this.notePlay(item, s.remote);
    this.active.set(s, { item, counted: 0 });
  }

  /** A body ended: its remaining bytes are counted. */
  streamEnded(s: ServedStream, bytes = s.bytes()): void {
    const a = this.active.get(s);
    if (!a) return;
    this.active.delete(s);
    this.noteBytes(a.item, bytes - a.counted);
  }

  private sampleActive(): void {
    for (const [s, a] of this.active) {
      const b = s.bytes();
      if (b > a.counted) {
        this.noteBytes(a.item, b - a.counted);
        a.counted = b;
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
        await this.store.batch(ids.map((id) => ({ type: 'put' as const, key: ACCESS_PREFIX + id, value: JSON.stringify(merge(stored.get(id), batch.get(id)!)) })));
      } catch (err) {
        // keep the counts for the next flush
        for (const [id, d] of batch) {
          const cur = this.delta(id);
          cur.plays.unshift(...d.plays);
          cur.bytes += d.bytes;
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
      stored.set(id, merge(stored.get(id), d));
    }
    return stored;
  }
}
