// Ordered key-value store under the catalog. Two implementations share one
// contract (test/store-compliance.ts): MemoryStore for tests and throw-away
// runs, LevelStore (LevelDB via `level`) for the real catalog.
//
// Keys and values are strings. MemoryStore sorts keys by UTF-16 code unit, LevelDB by UTF-8
// byte: the two agree except that LevelDB puts astral characters (emoji...) after U+E000-U+FFFF.
// U+FFFF (a noncharacter, never in a key) is the "past everything" mark of range bounds
// (prefixRange, `o/i\uffff`): LevelStore writes it as U+10FFFF (UTF-8 F4 8F BF BF, past every
// character), so a bound keeps its meaning in both orders.

import { Level } from 'level';

export interface KeyRange {
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
  reverse?: boolean;
  limit?: number;
}

export type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

export interface KVStore {
  readonly kind: string;
  open(): Promise<void>;
  close(): Promise<void>;
  /**
   * Rewrites the database without the overwritten and deleted entries a scan left, so its files
   * (and the part of them mapped into memory) are the size of the live data. LevelDB only.
   */
  compact?(): Promise<void>;
  /** Deletes the files a compaction left while an iterator still read them (LevelDB only; cheap). */
  dropObsolete?(): Promise<void>;
  get(key: string): Promise<string | undefined>;
  getMany(keys: string[]): Promise<(string | undefined)[]>;
  /** Applies every op or none. */
  batch(ops: BatchOp[]): Promise<void>;
  entries(range: KeyRange): AsyncIterable<[string, string]>;
  keys(range: KeyRange): AsyncIterable<string>;
  /** Every key of a range at once (cheaper per key than iterating; for bounded ranges). */
  keyList(range: KeyRange): Promise<string[]>;
  /** Every entry of a range at once (as keyList, with the values). */
  entryList(range: KeyRange): Promise<[string, string][]>;
}

/** Range covering every key that starts with `prefix`. */
export function prefixRange(prefix: string, extra: Omit<KeyRange, 'gt' | 'gte' | 'lt' | 'lte'> = {}): KeyRange {
  return { gte: prefix, lt: prefix + '\uffff', ...extra };
}

function inRange(k: string, r: KeyRange): boolean {
  if (r.gt !== undefined && !(k > r.gt)) return false;
  if (r.gte !== undefined && !(k >= r.gte)) return false;
  if (r.lt !== undefined && !(k < r.lt)) return false;
  if (r.lte !== undefined && !(k <= r.lte)) return false;
  return true;
}

/** Index of the first element >= key (or > key when strict). */
function lowerBound(arr: string[], key: string, strict: boolean): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid] < key || (strict && arr[mid] === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MemoryStore implements KVStore {
  readonly kind = 'memory';
  private map = new Map<string, string>();
  private sorted: string[] = [];
  private dirty = false;
  private isOpen = false;

  async open(): Promise<void> {
    this.isOpen = true;
  }
  async close(): Promise<void> {
    this.isOpen = false;
  }
  private check(): void {
    if (!this.isOpen) throw new Error('store is not open');
  }
  async get(key: string): Promise<string | undefined> {
    this.check();
    return this.map.get(key);
  }
  async getMany(keys: string[]): Promise<(string | undefined)[]> {
    this.check();
    return keys.map((k) => this.map.get(k));
  }
  async batch(ops: BatchOp[]): Promise<void> {
    this.check();
    for (const op of ops) {
      if (typeof op.key !== 'string') throw new TypeError('batch key must be a string');
      if (op.type === 'put' && typeof op.value !== 'string') throw new TypeError('batch value must be a string');
    }
    for (const op of ops) {
      if (op.type === 'put') {
        if (!this.map.has(op.key)) this.dirty = true;
        this.map.set(op.key, op.value);
      } else if (this.map.delete(op.key)) {
        this.dirty = true;
      }
    }
  }
  private snapshot(r: KeyRange): string[] {
    if (this.dirty) {
      this.sorted = [...this.map.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.dirty = false;
    }
    const arr = this.sorted;
    let from = 0;
    if (r.gte !== undefined) from = Math.max(from, lowerBound(arr, r.gte, false));
    if (r.gt !== undefined) from = Math.max(from, lowerBound(arr, r.gt, true));
    let to = arr.length;
    if (r.lt !== undefined) to = Math.min(to, lowerBound(arr, r.lt, false));
    if (r.lte !== undefined) to = Math.min(to, lowerBound(arr, r.lte, true));
    let out = from < to ? arr.slice(from, to) : [];
    if (r.reverse) out.reverse();
    if (r.limit !== undefined && r.limit >= 0) out = out.slice(0, r.limit);
    return out;
  }
  async *entries(r: KeyRange): AsyncIterable<[string, string]> {
    this.check();
    // Iterates a snapshot of the keys, as LevelDB iterators do.
    for (const k of this.snapshot(r)) {
      const v = this.map.get(k);
      if (v !== undefined && inRange(k, r)) yield [k, v];
    }
  }
  async *keys(r: KeyRange): AsyncIterable<string> {
    for await (const [k] of this.entries(r)) yield k;
  }
  async keyList(r: KeyRange): Promise<string[]> {
    this.check();
    return this.snapshot(r).filter((k) => this.map.has(k));
  }
  async entryList(r: KeyRange): Promise<[string, string][]> {
    this.check();
    const out: [string, string][] = [];
    for (const k of this.snapshot(r)) {
      const v = this.map.get(k);
      if (v !== undefined) out.push([k, v]);
    }
    return out;
  }
}

/** U+10FFFF, the greatest code point: its UTF-8 (F4 8F BF BF) is past every character LevelDB can hold. */
const LEVEL_MAX = '\u{10FFFF}';
/** Above every key (keys are UTF-8; no key starts with four U+10FFFF). */
const LEVEL_TOP = LEVEL_MAX.repeat(4);

/** A range as LevelDB compares it: each U+FFFF of a bound becomes U+10FFFF (see the top of this file). */
function levelRange(r: KeyRange): KeyRange {
  if (!(r.gt?.includes('\uffff') || r.gte?.includes('\uffff') || r.lt?.includes('\uffff') || r.lte?.includes('\uffff'))) return r;
  const out = { ...r };
  for (const k of ['gt', 'gte', 'lt', 'lte'] as const) if (out[k] !== undefined) out[k] = out[k]!.replaceAll('\uffff', LEVEL_MAX);
  return out;
}

export class LevelStore implements KVStore {
  readonly kind = 'level';
  private db: Level<string, string>;
  /** cacheBytes: LevelDB's block cache (uncompressed blocks kept in memory; LevelDB's own default is 8 MiB). */
  constructor(
    readonly location: string,
    opts: { cacheBytes?: number } = {},
  ) {
    this.db = new Level<string, string>(location, { keyEncoding: 'utf8', valueEncoding: 'utf8', ...(opts.cacheBytes !== undefined ? { cacheSize: opts.cacheBytes } : {}) });
  }
  async open(): Promise<void> {
    try {
      await this.db.open();
    } catch (err) {
      const cause = (err as { cause?: Error }).cause;
      const why = cause?.message ?? (err as Error).message;
      throw new Error(`cannot open catalog database at ${this.location}: ${why}`);
    }
  }
  async close(): Promise<void> {
    await this.db.close();
  }
  async compact(): Promise<void> {
    await this.compactRange('', LEVEL_TOP);
    await this.dropObsolete();
  }
  /**
   * Deletes (and unmaps) the table files a compaction left because an iterator still read them:
   * LevelDB removes obsolete files only at the end of its next compaction, so a compaction of
   * an empty range (a memtable flush, nothing else) is that next one.
   */
  async dropObsolete(): Promise<void> {
    await this.compactRange(LEVEL_TOP, LEVEL_TOP);
  }
  private compactRange(start: string, end: string): Promise<void> {
    // \`level\` is classic-level under Node; its type declarations leave compactRange out
    return (this.db as unknown as { compactRange(start: string, end: string): Promise<void> }).compactRange(start, end);
  }
  async get(key: string): Promise<string | undefined> {
    // LevelDB's synchronous get: ~3 µs of CPU for a small value in the block or page cache,
    // against ~17 µs for the asynchronous one (a round trip through the thread pool); Browse
    // and BrowseMetadata do one or two per request.
    return this.db.getSync(key) ?? undefined;
  }
  async getMany(keys: string[]): Promise<(string | undefined)[]> {
    if (keys.length === 0) return [];
    return (await this.db.getMany(keys)).map((v) => v ?? undefined);
  }
  async batch(ops: BatchOp[]): Promise<void> {
    if (ops.length === 0) return;
    await this.db.batch(ops);
  }
  async *entries(r: KeyRange): AsyncIterable<[string, string]> {
    yield* this.db.iterator(levelRange(r));
  }
  async *keys(r: KeyRange): AsyncIterable<string> {
    yield* this.db.keys(levelRange(r));
  }
  async keyList(r: KeyRange): Promise<string[]> {
    return this.db.keys(levelRange(r)).all();
  }
  async entryList(r: KeyRange): Promise<[string, string][]> {
    return this.db.iterator(levelRange(r)).all();
  }
}
