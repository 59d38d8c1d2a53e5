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
import { dropFilePages, type FileMapping } from '../util/drop-pages.js';
import { readTablesWithoutMmap } from './table-mmap.js';

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
  /**
   * Closes and opens the database again once no read or write is in flight (LevelDB only), so
   * the table pages it had mapped leave the process; what arrives meanwhile waits and then runs.
   * False when it was never quiet within `waitMs` (nothing happened then).
   */
  reopen?(waitMs?: number): Promise<boolean>;
  /**
   * Drops the resident pages of the table files LevelDB mapped (LevelDB only; synchronous, ~1 ms):
   * what a load read leaves the process, the files stay open. False when it cannot be done now
   * (closed, reopening) or here (no madvise).
   */
  dropMapped?(): boolean;
  /** LevelDB only: whether it maps its table files into the process (table-mmap.ts: not where it reads them with pread). */
  readonly mapsTables?: boolean;
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

/**
 * Values as LevelDB holds them. classic-level 3 leaks the copy it makes of an empty value in a
 * batch (binding.cc DisposeSliceBuffer frees only non-empty slices): 32 bytes of glibc heap for
 * every put of '' (child index entries and most word postings have empty values: 1.4 million
 * of them at 100,000 items, ~44 MB that stayed after the first scan, and more at every rescan
 * that rewrote them). So '' is stored as one U+0000 and a value that starts with U+0000 gets one
 * more in front; reading strips one. Values written before ('' stored as '') read the same.
 */
const NUL = '\u0000';
function toLevel(v: string): string {
  return v === '' ? NUL : v.charCodeAt(0) === 0 ? NUL + v : v;
}
function fromLevel(v: string): string {
  return v.charCodeAt(0) === 0 ? v.slice(1) : v;
}

/** File names (`000123.ldb`) of the tables LevelDB's `leveldb.sstables` property lists (` 123:4567['a' .. 'b']` per file). */
export function liveTables(sstables: string): Set<string> {
  const out = new Set<string>();
  for (const m of sstables.matchAll(/^\s*(\d+):\d+\[/gm)) out.add(`${m[1].padStart(6, '0')}.ldb`);
  return out;
}

export class LevelStore implements KVStore {
  readonly kind = 'level';
  readonly mapsTables: boolean;
  private db: Level<string, string>;
  /** Reads and writes in flight, open iterators included (reopen waits for none). */
  private busy = 0;
  /** Set while the database is closed and opened again: every call waits for it. */
  private paused?: Promise<void>;
  /** Called when `busy` falls to 0 (a reopen waiting for quiet). */
  private onQuiet?: () => void;
  /** cacheBytes: LevelDB's block cache (uncompressed blocks kept in memory; LevelDB's own default is 8 MiB). */
  constructor(
    readonly location: string,
    opts: { cacheBytes?: number } = {},
  ) {
    this.mapsTables = !readTablesWithoutMmap(); // before LevelDB's Env exists: see table-mmap.ts
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
    this.closed = true;
    await this.reopening?.catch(() => false);
    await this.db.close();
  }
  /** Set by close(): a reopen asked afterwards (a plan that ended after the server's stop) opens nothing. */
  private closed = false;
  /** Runs `fn` as one call in flight (a reopen waits for it; it waits for a reopen). */
  private async track<T>(fn: () => Promise<T>): Promise<T> {
    while (this.paused) await this.paused;
    this.busy++;
    try {
      return await fn();
    } finally {
      if (--this.busy === 0) this.onQuiet?.();
    }
  }
  /**
   * LevelDB 1.20 maps every table file it reads into the process (up to 1,000 files; classic-level
   * cannot turn it off) and keeps each page it touched resident for as long as the file is open:
   * after a scan, its compaction, or a pass over every item, tens of MB at 100,000 items that
   * nothing reads again. Closing the database unmaps them all (what is read afterwards maps only
   * what it touches) and opening it again deletes the files compactions left. Waits until no
   * call is in flight (then calls wait for the reopen: ~10-50 ms); when calls overlap for half of
   * `waitMs`, new ones wait while those in flight end (a stall of at most the other half when
   * one never does: an iterator held open; then nothing is closed). A database that does not
   * open again throws, as open() does. Loses nothing: every write it waited for is in LevelDB's log.
   */
  reopen(waitMs = 10_000): Promise<boolean> {
    // one at a time: a second caller shares the one under way
    return (this.reopening ??= this.reopenNow(waitMs).finally(() => (this.reopening = undefined)));
  }
  private reopening?: Promise<boolean>;
  private async reopenNow(waitMs: number): Promise<boolean> {
    if (this.closed) return false;
    const deadline = Date.now() + waitMs;
    // a moment when nothing is in flight, for up to half the time ...
    await this.quiet(Date.now() + waitMs / 2);
    // ... else (requests overlapping all the time) new calls wait from now on while those in
    // flight end; still not quiet (an iterator held open) by the deadline: they go on, no reopen
    let done!: () => void;
    this.paused = new Promise<void>((resolve) => (done = resolve));
    try {
      if (this.busy > 0) await this.quiet(deadline);
      // closed meanwhile (close() waits for this reopen): the database stays closed
      if (this.busy > 0 || this.closed) return false;
      await this.db.close();
      await this.openAgain();
      return true;
    } finally {
      this.paused = undefined;
      done();
    }
  }
  /**
   * Opens the database after reopen() closed it. LevelDB's lock is free while it is closed: another
   * process that opened the catalog just then (a CLI command that found no server answering) holds
   * it for a moment, so a lock error is tried again, every 50-500 ms for up to `LOCK_RETRY_MS`,
   * before it is thrown (calls keep waiting meanwhile: none meets a closed database).
   */
  private async openAgain(): Promise<void> {
    const deadline = Date.now() + LevelStore.LOCK_RETRY_MS;
    for (let delay = 50; ; delay = Math.min(500, delay * 2)) {
      try {
        return await this.open();
      } catch (err) {
        if (!/lock/i.test((err as Error).message) || Date.now() + delay > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
  /** How long a reopen waits for another process to give LevelDB's lock back (openAgain). */
  static LOCK_RETRY_MS = 30_000;
  /** Resolves when no call is in flight, or at `deadline`. */
  private async quiet(deadline: number): Promise<void> {
    while (this.busy > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.onQuiet = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.onQuiet = undefined;
    }
  }
  /**
   * LevelDB keeps a table file mapped while it is open, and the pages reads touched stay resident
   * (see reopen): this unmaps those pages from the process without closing anything
   * (src/util/drop-pages.ts; they stay in the page cache). madvise must not meet a table LevelDB
   * unmaps meanwhile (its address could be reused by memory DONTNEED would zero). LevelDB 1.20
   * unmaps a table when a compaction ends (under the mutex NewIterator takes) and only a file no
   * live version holds, or when the database closes: an iterator opened first pins the current
   * version, and only the files of that version (LevelDB's leveldb.sstables, read synchronously
   * just before and just after the pin, and only when both agree: no other version came in
   * between) are advised, so a table no version holds any more (mapped until the next
   * compaction evicts it) is left alone; nothing runs while the database closes or opens, nor past
   * 900 mapped tables (LevelDB's table cache closes files past ~990). Synchronous, ~1 ms.
   */
  dropMapped(): boolean {
    if (this.closed || this.paused || this.reopening || this.db.status !== 'open') return false;
    const dir = this.location.endsWith('/') ? this.location : this.location + '/';
    let pin: { close(): Promise<void> } | undefined;
    try {
      // `level` is classic-level under Node; its type declarations leave getProperty out
      const tables = () => (this.db as unknown as { getProperty(p: string): string }).getProperty('leveldb.sstables');
      // the files current before and after the pin are the same only if no compaction installed a
      // version in between: then the pinned version holds exactly them (file numbers never come back);
      // otherwise a file of a newer version could be unmapped by a second compaction mid-madvise
      const before = tables();
      pin = this.db.iterator({ limit: 1 });
      const after = tables();
      if (after !== before) return false;
      const live = liveTables(after);
      const isTable = (m: FileMapping) => m.path.startsWith(dir) && live.has(m.path.slice(dir.length));
      return dropFilePages(isTable, 900) !== false;
    } finally {
      void pin?.close().catch(() => undefined);
    }
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
    return this.track(() => (this.db as unknown as { compactRange(start: string, end: string): Promise<void> }).compactRange(start, end));
  }
  async get(key: string): Promise<string | undefined> {
    // LevelDB's synchronous get: ~3 µs of CPU for a small value in the block or page cache,
    // against ~17 µs for the asynchronous one (a round trip through the thread pool); Browse
    // and BrowseMetadata do one or two per request. Synchronous: nothing to track.
    while (this.paused) await this.paused;
    const v = this.db.getSync(key);
    return v === undefined ? undefined : fromLevel(v);
  }
  async getMany(keys: string[]): Promise<(string | undefined)[]> {
    if (keys.length === 0) return [];
    return this.track(async () => (await this.db.getMany(keys)).map((v) => (v === undefined ? undefined : fromLevel(v))));
  }
  async batch(ops: BatchOp[]): Promise<void> {
    if (ops.length === 0) return;
    // an op is copied only when its value changes (abstract-level copies every op anyway)
    await this.track(() => this.db.batch(ops.map((op) => (op.type === 'put' && (op.value === '' || op.value.charCodeAt(0) === 0) ? { type: 'put', key: op.key, value: toLevel(op.value) } : op))));
  }
  async *entries(r: KeyRange): AsyncIterable<[string, string]> {
    while (this.paused) await this.paused;
    // an open iterator is a call in flight until it ends (or its reader stops: return())
    this.busy++;
    try {
      for await (const [k, v] of this.db.iterator(levelRange(r))) yield [k, fromLevel(v)];
    } finally {
      if (--this.busy === 0) this.onQuiet?.();
    }
  }
  async *keys(r: KeyRange): AsyncIterable<string> {
    while (this.paused) await this.paused;
    this.busy++;
    try {
      yield* this.db.keys(levelRange(r));
    } finally {
      if (--this.busy === 0) this.onQuiet?.();
    }
  }
  async keyList(r: KeyRange): Promise<string[]> {
    return this.track(() => this.db.keys(levelRange(r)).all());
  }
  async entryList(r: KeyRange): Promise<[string, string][]> {
    return this.track(async () => {
      const out = await this.db.iterator(levelRange(r)).all();
      for (const e of out) if (e[1].charCodeAt(0) === 0) e[1] = e[1].slice(1);
      return out;
    });
  }
}
