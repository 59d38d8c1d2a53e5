// Staging cache: bytes read from tape, kept on disk in fixed-size segments that
// are aligned to item offsets (segment i of an item holds bytes
// [i·S, min((i+1)·S, size)) of the original file).
//
//   <cacheDir>/index.jsonl        journal of complete segments, pins and LRU touches
//   <cacheDir>/<itemDir>/<i>      segment i of an item (itemDir: see itemDirName)
//   <cacheDir>/needed.json        offline cartridges requests asked for (worker.ts)
//
// Crash safety: a segment is written in place and recorded in the journal only
// after its last byte was written and the file was fdatasync'ed. On open, every
// journal entry is checked against its file (exists, regular, right size) and
// every file the journal does not list (a partial segment of a crash) is
// deleted, so a partial segment is never served as complete. A torn last
// journal line is ignored. The journal is compacted on open and when it grows.
//
// Only the staging worker writes here; the server reads segment files it was
// told about (it never trusts a path it did not validate).

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { constants as FS } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, rename, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkerLog } from './log.js';

export const JOURNAL = 'index.jsonl';
const JOURNAL_VERSION = 1;

/** Directory name of an item: readable when the ID is tame, a hash otherwise (never a path). */
export function itemDirName(itemId: string): string {
  if (/^[A-Za-z0-9_-]{1,100}$/.test(itemId)) return 'i' + itemId;
  return 'h' + createHash('sha256').update(itemId, 'utf8').digest('hex').slice(0, 40);
}

/** Relative segment file names as the worker announces them and the server accepts them. */
export const SEGMENT_FILE_RE = /^[ih][A-Za-z0-9_-]{1,100}\/\d{1,9}$/;

export function segmentFile(itemId: string, seg: number): string {
  return `${itemDirName(itemId)}/${seg}`;
}

/** [start, length) of segment `seg` of an item of `size` bytes. */
export function segmentExtent(size: number, segmentSize: number, seg: number): { start: number; len: number } {
  const start = seg * segmentSize;
  return { start, len: Math.max(0, Math.min(segmentSize, size - start)) };
}

interface SegEntry {
  dir: string;
  seg: number;
  len: number;
  lastUsed: number;
}

interface ItemEntry {
  id: string;
  dir: string;
  sha: string;
  pinned: boolean;
  segs: Map<number, SegEntry>;
}

type JournalLine =
  | { op: 'hdr'; v: number; segmentSize: number }
  | { op: 'item'; item: string; d: string; sha: string; pin?: boolean }
  | { op: 'add'; d: string; seg: number; len: number; t: number }
  | { op: 'del'; d: string; seg: number }
  | { op: 'drop'; d: string }
  | { op: 'pin'; d: string; on: boolean }
  | { op: 'touch'; d: string; seg: number; t: number };

export interface SegmentCacheOptions {
  dir: string;
  /** Byte cap of the cache (complete segments plus space reserved by fills in progress). */
  capacity: number;
  segmentSize: number;
  log?: WorkerLog;
  now?: () => number;
  /** How often LRU touches are written to the journal (ms; default 5000). */
  touchFlushMs?: number;
  /** Called under space pressure to drop partial segments the worker holds; returns bytes freed. */
  dropPartials?: (need: number) => number;
  /** Bytes dropPartials could free now (couldFit counts them as room). */
  droppablePartials?: () => number;
  /** Deletes a segment file (default fs unlink; tests slow it down to order it against a new fill). */
  unlink?: (path: string) => Promise<void>;
}

export interface CacheUse {
  capacity: number;
  used: number;
  reserved: number;
  segments: number;
  items: number;
  pinnedItems: number;
  leased: number;
}

/**
 * Events: 'evict' ({ itemId, seg, len }), 'space' (room may have become available).
 */
export class SegmentCache extends EventEmitter {
  readonly dir: string;
  readonly capacity: number;
  readonly segmentSize: number;
  /** Bytes of complete segments. */
  private bytes = 0;
  /** Bytes reserved by fills in progress. */
  private reservedBytes = 0;
  private readonly items = new Map<string, ItemEntry>(); // by dir name
  /** Complete segments in LRU order (first = least recently used). Key: dir/seg. */
  private readonly lru = new Map<string, SegEntry>();
  private readonly leases = new Map<string, number>();
  /** Files of segments that never became complete, to delete once no reader holds them (dir/seg). */
  private readonly doomed = new Set<string>();
  private readonly touched = new Set<string>();
  /** Segment files being deleted in the background (dir/seg → the deletion); openForWrite waits for them. */
  private readonly deleting = new Map<string, Promise<void>>();
  private readonly unlinkFile: (path: string) => Promise<void>;
  /** Waiters of waitForSpace (each removes itself when it runs). */
  private readonly spaceWaiters = new Set<() => void>();
  private journal: FileHandle | undefined;
  private journalLines = 0;
  private writeChain: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private journalFailing = false;
  private readonly log: WorkerLog | undefined;
  private readonly now: () => number;
  dropPartials: ((need: number) => number) | undefined;
  droppablePartials: (() => number) | undefined;
  evictions = 0;

  private constructor(opts: SegmentCacheOptions) {
    super();
    this.dir = opts.dir;
    this.capacity = opts.capacity;
    this.segmentSize = opts.segmentSize;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.dropPartials = opts.dropPartials;
    this.droppablePartials = opts.droppablePartials;
    this.unlinkFile = opts.unlink ?? unlink;
    if (!Number.isSafeInteger(opts.segmentSize) || opts.segmentSize < 512) throw new RangeError(`segment size ${opts.segmentSize} is too small`);
    if (!(opts.capacity >= opts.segmentSize)) throw new RangeError(`cache capacity ${opts.capacity} is smaller than one segment`);
    const every = opts.touchFlushMs ?? 5000;
    this.flushTimer = setInterval(() => void this.flushTouches(), every);
    this.flushTimer.unref();
  }

  /** Opens (creating when missing) the cache in `opts.dir`, recovering from a crash. */
  static async open(opts: SegmentCacheOptions): Promise<SegmentCache> {
    const c = new SegmentCache(opts);
    try {
      // 0750 as the data directory (util/data-dir.ts): cached media is nobody else's to read
      await mkdir(c.dir, { recursive: true, mode: 0o750 });
      await c.load();
    } catch (err) {
      c.stopTimer();
      throw err;
    }
    return c;
  }

  // ---- queries ------------------------------------------------------------------------------

  /** Absolute path of a segment file. */
  pathOf(itemId: string, seg: number): string {
    return join(this.dir, itemDirName(itemId), String(seg));
  }

  /** Makes sure the cache knows the item with this content hash; older content of the same ID is dropped. */
  ensureItem(itemId: string, sha: string): void {
    const d = itemDirName(itemId);
    const it = this.items.get(d);
    if (it && it.sha === sha) return;
    if (it) {
      for (const s of [...it.segs.values()]) this.removeSeg(it, s, 'content changed');
      this.append({ op: 'drop', d });
      it.sha = sha;
      this.append({ op: 'item', item: itemId, d, sha, pin: it.pinned });
      return;
    }
    this.items.set(d, { id: itemId, dir: d, sha, pinned: false, segs: new Map() });
    this.append({ op: 'item', item: itemId, d, sha });
  }

  /** A complete segment (marks it recently used), or undefined. */
  lookup(itemId: string, seg: number): { len: number } | undefined {
    const d = itemDirName(itemId);
    const e = this.items.get(d)?.segs.get(seg);
    if (!e) return undefined;
    const key = `${d}/${seg}`;
    e.lastUsed = this.now();
    this.lru.delete(key);
    this.lru.set(key, e);
    this.touched.add(key);
    return { len: e.len };
  }

  has(itemId: string, seg: number): boolean {
    return this.items.get(itemDirName(itemId))?.segs.has(seg) ?? false;
  }

  /** Indexes of the complete segments of an item. */
  segmentsOf(itemId: string): number[] {
    return [...(this.items.get(itemDirName(itemId))?.segs.keys() ?? [])].sort((a, b) => a - b);
  }

  isPinned(itemId: string): boolean {
    return this.items.get(itemDirName(itemId))?.pinned ?? false;
  }

  use(): CacheUse {
    let pinned = 0;
    for (const it of this.items.values()) if (it.pinned) pinned++;
    return {
      capacity: this.capacity,
      used: this.bytes,
      reserved: this.reservedBytes,
      segments: this.lru.size,
      items: [...this.items.values()].filter((i) => i.segs.size > 0).length,
      pinnedItems: pinned,
      leased: this.leases.size,
    };
  }

  // ---- space -------------------------------------------------------------------------------

  /** Room for `len` more bytes, evicting least recently used unpinned, unleased segments. False when impossible. */
  reserve(len: number): boolean {
    if (this.closed) return false;
    if (!this.makeRoom(len)) return false;
    this.reservedBytes += len;
    return true;
  }

  /** Gives back space reserved with `reserve` (a fill that was abandoned or committed). */
  unreserve(len: number): void {
    this.reservedBytes = Math.max(0, this.reservedBytes - len);
    this.spaceFreed();
  }

  /** Would `len` bytes fit (after evictions and dropping partial fills) right now? Does not evict. */
  couldFit(len: number): boolean {
    if (this.bytes + this.reservedBytes + len <= this.capacity) return true;
    let free = this.capacity - this.bytes - this.reservedBytes;
    for (const [key, e] of this.lru) {
      if (this.evictable(key, e)) free += e.len;
      if (free >= len) return true;
    }
    // paused partial fills nobody reads hold reserved bytes that reserve() (makeRoom) drops
    // under pressure: they are room too, or a cache they fill would refuse every request
    return this.dropPartials !== undefined && free + (this.droppablePartials?.() ?? 0) >= len;
  }

  private makeRoom(len: number): boolean {
    let over = this.bytes + this.reservedBytes + len - this.capacity;
    if (over <= 0) return true;
    for (const [key, e] of [...this.lru]) {
      if (over <= 0) break;
      if (!this.evictable(key, e)) continue;
      const it = this.items.get(e.dir)!;
      this.removeSeg(it, e, 'evicted');
      this.evictions++;
      this.emit('evict', { itemId: it.id, seg: e.seg, len: e.len });
      over -= e.len;
    }
    if (over > 0 && this.dropPartials) {
      this.dropPartials(over);
      over = this.bytes + this.reservedBytes + len - this.capacity;
    }
    return over <= 0;
  }

  /**
   * Resolves at the next moment room may have become available, after `ms`, or when `signal`
   * aborts, whichever comes first; the waiter is gone then in every case. (Waiters are kept
   * here, not as 'space' listeners: any number of requests may wait at once.)
   */
  waitForSpace(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted || this.closed) return resolve();
      const done = () => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        this.spaceWaiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
      this.spaceWaiters.add(done);
    });
  }

  /** Requests waiting for room now (waitForSpace). */
  get waitingForSpace(): number {
    return this.spaceWaiters.size;
  }

  private spaceFreed(): void {
    this.emit('space');
    for (const w of [...this.spaceWaiters]) w();
  }

  private evictable(key: string, e: SegEntry): boolean {
    return !this.items.get(e.dir)?.pinned && !this.leases.has(key);
  }

  // ---- leases (segments announced to a reader are not evicted) --------------------------------

  lease(itemId: string, seg: number): void {
    const key = `${itemDirName(itemId)}/${seg}`;
    this.leases.set(key, (this.leases.get(key) ?? 0) + 1);
  }

  unlease(itemId: string, seg: number): void {
    const key = `${itemDirName(itemId)}/${seg}`;
    const n = this.leases.get(key);
    if (n === undefined) return;
    if (n <= 1) {
      this.leases.delete(key);
      if (this.doomed.delete(key)) void this.discard(itemId, seg);
    } else this.leases.set(key, n - 1);
    this.spaceFreed();
  }

  /**
   * A segment that never became complete: its file is deleted now, or, while a reader holds
   * a lease on it (it was told some of its bytes are valid), when the last lease goes.
   */
  discardWhenFree(itemId: string, seg: number): Promise<void> {
    const key = `${itemDirName(itemId)}/${seg}`;
    if (this.leases.has(key)) {
      this.doomed.add(key);
      return Promise.resolve();
    }
    return this.discard(itemId, seg);
  }

  /** The segment's file is still read and must not be rewritten (see discardWhenFree). */
  isDoomed(itemId: string, seg: number): boolean {
    return this.doomed.has(`${itemDirName(itemId)}/${seg}`);
  }

  // ---- writing -----------------------------------------------------------------------------

  /**
   * Creates the item's directory (idempotent) and opens segment `seg` for writing in place,
   * after any deletion of that segment's file still in progress (evicted, replaced or
   * discarded a moment ago): otherwise the deletion could remove the new file.
   */
  async openForWrite(itemId: string, seg: number): Promise<FileHandle> {
    const d = itemDirName(itemId);
    const key = `${d}/${seg}`;
    await mkdir(join(this.dir, d), { recursive: true });
    for (let p = this.deleting.get(key); p; p = this.deleting.get(key)) await p;
    return open(join(this.dir, d, String(seg)), FS.O_WRONLY | FS.O_CREAT | FS.O_TRUNC | FS.O_NOFOLLOW, 0o640);
  }

  /**
   * Records a fully written, synced segment as complete. The caller had reserved `len`
   * bytes for it; that reservation turns into the segment's own space.
   */
  commit(itemId: string, seg: number, len: number): void {
    const d = itemDirName(itemId);
    const it = this.items.get(d);
    this.reservedBytes = Math.max(0, this.reservedBytes - len);
    if (!it || this.closed) {
      // the item was dropped (content changed) while the segment was being written
      void this.deleteFile(`${d}/${seg}`);
      this.spaceFreed();
      return;
    }
    const old = it.segs.get(seg);
    if (old) this.removeSeg(it, old, 'replaced');
    const e: SegEntry = { dir: d, seg, len, lastUsed: this.now() };
    it.segs.set(seg, e);
    this.lru.set(`${d}/${seg}`, e);
    this.bytes += len;
    this.append({ op: 'add', d, seg, len, t: e.lastUsed });
    this.spaceFreed();
  }

  /** Deletes a segment file that never became complete (abandoned fill). */
  async discard(itemId: string, seg: number): Promise<void> {
    const key = `${itemDirName(itemId)}/${seg}`;
    if (this.has(itemId, seg) || this.doomed.has(key)) return;
    await this.deleteFile(key);
  }

  /**
   * Deletes the file of segment `key` (dir/seg) in the background, after any deletion of it
   * already in progress; openForWrite of that segment waits until it is done.
   */
  private deleteFile(key: string): Promise<void> {
    const path = join(this.dir, key);
    const before = this.deleting.get(key) ?? Promise.resolve();
    const p = before
      .then(() => this.unlinkFile(path))
      .catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.log?.warn({ path, err: err.message }, 'cache: cannot delete segment');
      })
      .finally(() => {
        if (this.deleting.get(key) === p) this.deleting.delete(key);
      });
    this.deleting.set(key, p);
    return p;
  }

  pin(itemId: string, on: boolean, sha?: string): void {
    const d = itemDirName(itemId);
    let it = this.items.get(d);
    if (!it) {
      if (!on) return;
      it = { id: itemId, dir: d, sha: sha ?? '', pinned: false, segs: new Map() };
      this.items.set(d, it);
      this.append({ op: 'item', item: itemId, d, sha: it.sha });
    }
    if (it.pinned === on) return;
    it.pinned = on;
    this.append({ op: 'pin', d, on });
    if (!on) this.spaceFreed();
  }

  /** Writes pending LRU touches and closes the journal. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flushTouches();
    this.closed = true;
    this.stopTimer();
    for (const w of [...this.spaceWaiters]) w();
    await this.writeChain;
    await this.journal?.close().catch(() => undefined);
    this.journal = undefined;
  }

  // ---- internals ---------------------------------------------------------------------------

  private stopTimer(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = undefined;
  }

  private removeSeg(it: ItemEntry, e: SegEntry, why: string): void {
    it.segs.delete(e.seg);
    const key = `${e.dir}/${e.seg}`;
    this.lru.delete(key);
    this.touched.delete(key);
    this.bytes -= e.len;
    this.append({ op: 'del', d: e.dir, seg: e.seg });
    void this.deleteFile(key);
    this.log?.debug({ item: it.id, seg: e.seg, why }, 'cache: segment removed');
  }

  private append(line: JournalLine): void {
    if (this.closed) return;
    const text = JSON.stringify(line) + '\n';
    this.journalLines++;
    this.writeChain = this.writeChain
      .then(async () => {
        if (!this.journal) return;
        await this.journal.write(text);
        this.journalFailing = false;
      })
      .catch((err: NodeJS.ErrnoException) => {
        // logged once per episode (a full file system fails every line); a segment missing from
        // the journal is only deleted on the next start, never served wrong
        if (this.journalFailing) return;
        this.journalFailing = true;
        this.log?.error({ err: err.message, errno: err.code }, 'cache: journal write failed');
      });
    if (this.journalLines > Math.max(2000, 4 * (this.lru.size + this.items.size))) {
      this.journalLines = 0;
      this.writeChain = this.writeChain.then(() => this.compact()).catch((err: Error) => this.log?.error({ err: err.message }, 'cache: compaction failed'));
    }
  }

  private async flushTouches(): Promise<void> {
    if (this.closed || this.touched.size === 0) return;
    const t = this.now();
    for (const key of this.touched) {
      const e = this.lru.get(key);
      if (e) this.append({ op: 'touch', d: e.dir, seg: e.seg, t: e.lastUsed || t });
    }
    this.touched.clear();
    await this.writeChain;
  }

  /** Rewrites the journal as a snapshot (items, pins, complete segments in LRU order). */
  private async compact(): Promise<void> {
    const lines: JournalLine[] = [{ op: 'hdr', v: JOURNAL_VERSION, segmentSize: this.segmentSize }];
    for (const it of this.items.values()) {
      if (it.segs.size === 0 && !it.pinned) continue;
      lines.push({ op: 'item', item: it.id, d: it.dir, sha: it.sha, ...(it.pinned ? { pin: true } : {}) });
    }
    for (const e of this.lru.values()) lines.push({ op: 'add', d: e.dir, seg: e.seg, len: e.len, t: e.lastUsed });
    const tmp = join(this.dir, JOURNAL + '.tmp');
    await writeFile(tmp, lines.map((l) => JSON.stringify(l)).join('\n') + '\n', { mode: 0o640 });
    await this.journal?.close().catch(() => undefined);
    await rename(tmp, join(this.dir, JOURNAL));
    this.journal = await open(join(this.dir, JOURNAL), 'a', 0o640);
    this.journalLines = lines.length;
    this.touched.clear();
  }

  /** Replays the journal, checks it against the files, removes strays, compacts. */
  private async load(): Promise<void> {
    let text = '';
    try {
      text = await readFile(join(this.dir, JOURNAL), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let usable = true;
    const byDir = new Map<string, ItemEntry>();
    const segs = new Map<string, SegEntry>();
    for (const raw of text.split('\n')) {
      if (!raw.trim()) continue;
      let l: JournalLine;
      try {
        l = JSON.parse(raw) as JournalLine;
      } catch {
        continue; // torn or damaged line
      }
      if (!l || typeof l !== 'object' || typeof (l as { op?: unknown }).op !== 'string') continue;
      const okDir = (d: unknown): d is string => typeof d === 'string' && /^[ih][A-Za-z0-9_-]{1,100}$/.test(d);
      switch (l.op) {
        case 'hdr':
          if (l.v !== JOURNAL_VERSION || l.segmentSize !== this.segmentSize) usable = false;
          break;
        case 'item':
          if (!okDir(l.d) || typeof l.item !== 'string' || itemDirName(l.item) !== l.d) break;
          {
            const prev = byDir.get(l.d);
            if (prev && prev.sha !== l.sha) for (const k of [...segs.keys()]) if (k.startsWith(l.d + '/')) segs.delete(k);
            byDir.set(l.d, { id: l.item, dir: l.d, sha: typeof l.sha === 'string' ? l.sha : '', pinned: l.pin === true || (prev?.pinned ?? false), segs: new Map() });
          }
          break;
        case 'add':
          if (!okDir(l.d) || !Number.isSafeInteger(l.seg) || l.seg < 0 || !Number.isSafeInteger(l.len) || l.len <= 0 || l.len > this.segmentSize) break;
          segs.delete(`${l.d}/${l.seg}`);
          segs.set(`${l.d}/${l.seg}`, { dir: l.d, seg: l.seg, len: l.len, lastUsed: Number(l.t) || 0 });
          break;
        case 'del':
          segs.delete(`${l.d}/${l.seg}`);
          break;
        case 'drop':
          for (const k of [...segs.keys()]) if (k.startsWith(l.d + '/')) segs.delete(k);
          break;
        case 'pin': {
          const it = byDir.get(l.d);
          if (it) it.pinned = l.on === true;
          break;
        }
        case 'touch': {
          const e = segs.get(`${l.d}/${l.seg}`);
          if (e) e.lastUsed = Math.max(e.lastUsed, Number(l.t) || 0);
          break;
        }
      }
    }
    if (!usable) {
      this.log?.warn({ dir: this.dir }, 'cache: journal written with another segment size or version; starting empty');
      byDir.clear();
      segs.clear();
    }
    // check every listed segment against its file
    const ordered = [...segs.values()].sort((a, b) => a.lastUsed - b.lastUsed);
    for (const e of ordered) {
      const it = byDir.get(e.dir);
      if (!it) continue;
      let ok = false;
      try {
        const st = await lstat(join(this.dir, e.dir, String(e.seg)));
        ok = st.isFile() && st.size === e.len;
      } catch {
        ok = false;
      }
      if (!ok) continue;
      it.segs.set(e.seg, e);
      this.lru.set(`${e.dir}/${e.seg}`, e);
      this.bytes += e.len;
    }
    for (const [d, it] of byDir) this.items.set(d, it);
    // delete what the journal does not vouch for (partial segments, strays)
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (name === JOURNAL || name === 'needed.json') continue;
      if (!/^[ih][A-Za-z0-9_-]{1,100}$/.test(name)) {
        if (name.endsWith('.tmp')) await rm(path, { force: true });
        continue;
      }
      const st = await lstat(path);
      if (!st.isDirectory()) {
        await rm(path, { force: true });
        continue;
      }
      const it = this.items.get(name);
      let left = 0;
      for (const f of await readdir(path)) {
        const seg = /^\d{1,9}$/.test(f) ? Number(f) : -1;
        if (it && it.segs.has(seg)) {
          left++;
          continue;
        }
        await rm(join(path, f), { force: true, recursive: true });
      }
      if (left === 0) await rm(path, { force: true, recursive: true });
    }
    // over the cap (e.g. the cap was lowered): evict now
    this.makeRoomSilently();
    this.journal = await open(join(this.dir, JOURNAL), 'a', 0o640);
    await this.compact();
    this.log?.info({ dir: this.dir, segments: this.lru.size, bytes: this.bytes }, 'cache: opened');
  }

  private makeRoomSilently(): void {
    if (this.bytes <= this.capacity) return;
    for (const e of [...this.lru.values()]) {
      if (this.bytes <= this.capacity) break;
      const it = this.items.get(e.dir)!;
      if (it.pinned) continue;
      it.segs.delete(e.seg);
      this.lru.delete(`${e.dir}/${e.seg}`);
      this.bytes -= e.len;
      void this.deleteFile(`${e.dir}/${e.seg}`);
    }
  }
}
