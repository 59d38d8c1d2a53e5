// Gives memory back once a burst of requests is over (issue 11 item 2). Under load V8 lets its
// heap grow to 1.5x what survived its last full collection and keeps both semi-spaces of the
// young generation committed (8 MB with the launcher's 4 MiB), the DIDL-Lite cache fills to its
// bound (4 MB by default, all of it in the V8 heap), and what requests read stays in LevelDB's
// caches in the C heap (and, where it maps its tables, as mapped pages): on a 20,000-item server
// after a Browse and Search load, ~40 MB of V8 pages holding ~20 MB of live objects, which V8's
// own memory reducer gets to only some time later, or not at all. When no request came for
// `idleMs` and the heap or the file-backed pages grew by more than `growthBytes` since the last
// trim, this empties the DIDL-Lite and Search caches (`release`: a TV browsing again after a
// quiet moment gets its objects rendered again, ~0.1 ms each), runs a full collection when the
// heap grew (after a few idle seconds V8 also shrinks the young generation to its minimum) and
// reopens the catalog (which frees LevelDB's caches and unmaps any table pages). Never while a
// scan or the video-frame pass runs (they release at their end themselves), never in a
// request's path, and not again until the process grew again: a client that sends a request now
// and then costs nothing.
//
// The same looks also bound the catalog's table pages while requests keep coming
// (catalog_mapped, `mappedBudget`): LevelDB 1.20 (classic-level's prebuilt) maps every table file
// it reads (up to 1,000 files; not configurable) and every page a read touched stays resident
// while the file is open (Browse and Search over a 100,000-item catalog left 40-50 MB of it); only
// closing the database unmaps them. When the file-backed pages grew by more than the budget since
// the last reopen, the catalog is reopened even without a quiet moment. The file-backed figure is
// /proc/self/status RssFile (one small read, where /proc/self/smaps, which tells the tables
// apart, costs ~30 ms); the node binary's own pages are file-backed too, but they stop growing
// once its code ran, and the base is taken again after every reopen.
//
// Cheaper still where madvise can be called (`dropMapped`, LevelStore.dropMapped): while requests
// come, every 250 ms, when the file-backed pages grew by more than `dropBudget` since the last
// drop, the table pages are dropped from the process without closing anything (~1 ms, no pause;
// what requests still read faults back in from the page cache). The quiet trim still reopens once
// after drops. catalog_mapped's reopen stays for where the drop cannot be done.

import { readFileSync } from 'node:fs';

/** Quiet looks (idleMs / 4 apart) that collect again while the young generation stays grown. */
const YOUNG_RETRIES = 4;

export interface IdleTrimOptions {
  /** Quiet time after the last request before a trim (ms). */
  idleMs: number;
  /** Growth of the V8 heap or of the file-backed resident pages since the last trim that makes one worth it (bytes). */
  growthBytes: number;
  /** Committed V8 heap (bytes). */
  heapBytes: () => number;
  /** File-backed resident memory of the process (bytes), undefined when unknown (no /proc). */
  fileBytes: () => number | undefined;
  /** A full garbage collection. */
  collect: () => void;
  /**
   * Empties what the caches filled for a burst of requests (DIDL-Lite, Search results), so the
   * collection right after gives it back: called first in every quiet trim.
   */
  release?: () => void;
  /**
   * True while V8's young generation is still grown after a collection. V8 shrinks it only when
   * its allocation rate over the last ~5 s was low, which a collection right after a burst may
   * not yet see: then the next few quiet looks collect again until it did.
   */
  youngGrown?: () => boolean;
  /**
   * Growth of the file-backed pages since the last reopen that reopens the catalog even while
   * requests come (catalog_mapped, bytes; 0 or absent: only once quiet).
   */
  mappedBudget?: number;
  /**
   * Drops the catalog's mapped table pages from the process without closing it (cheap: ~1 ms,
   * no pause); false when it cannot (no madvise here, or not now). Tried while requests come
   * whenever the file-backed pages grew by more than `dropBudget` since the last look that did.
   */
  dropMapped?: () => boolean;
  /** Growth of the file-backed pages that makes dropMapped worth a try under load (bytes). */
  dropBudget?: number;
  /**
   * How often the file-backed pages are looked at while requests come, when dropMapped is given
   * (ms; default 250): a load of uncached Searches maps several MB of tables a second.
   */
  dropLookMs?: number;
  /** Closes and opens the catalog (resolves when done or given up); `why` says which budget it was. */
  reopen: (why: 'idle' | 'catalog_mapped') => Promise<unknown>;
  /** True while a scan or the video-frame pass runs. */
  busy?: () => boolean;
  now?: () => number;
}

/** RssFile of this process (bytes) from /proc/self/status, undefined without it. */
export function rssFileBytes(): number | undefined {
  try {
    const m = /^RssFile:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export class IdleTrim {
  private lastRequest: number;
  private heapBase: number;
  private fileBase: number | undefined;
  private running?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private dropTimer?: NodeJS.Timeout;
  /** Quiet looks left that collect again while the young generation stays grown. */
  private youngRetries = 0;
  /** A drop under load happened since the last quiet trim's reopen. */
  private droppedSinceTrim = false;
  private readonly now: () => number;
  /** Trims made: collections, reopens (of them `mapped` under load past catalog_mapped). */
  readonly counts = { collections: 0, reopens: 0, mapped: 0, drops: 0 };

  constructor(private readonly opts: IdleTrimOptions) {
    this.now = opts.now ?? Date.now;
    this.lastRequest = this.now();
    // the first quiet moment collects once: start-up (and its rescan) leave the young generation grown
    this.heapBase = 0;
    this.fileBase = opts.fileBytes();
  }

  /** A request came: the next trim waits for `idleMs` of quiet from now. Called for every request (one clock read). */
  touch(): void {
    this.lastRequest = this.now();
  }

  /** Looks every `intervalMs` (the timer does not keep the process alive). */
  start(intervalMs = Math.max(250, Math.round(this.opts.idleMs / 4))): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
    if (this.opts.dropMapped && this.opts.dropBudget !== undefined) {
      // between the looks above, only while requests come (one small read of /proc each); also
      // while a scan or the frame pass runs (the drop is safe beside LevelDB's writes and
      // compactions: LevelStore.dropMapped)
      this.dropTimer = setInterval(() => {
        if (!this.running && this.now() - this.lastRequest < this.opts.idleMs) this.checkDrop();
      }, this.opts.dropLookMs ?? 250);
      this.dropTimer.unref();
    }
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.dropTimer) clearInterval(this.dropTimer);
    this.timer = undefined;
    this.dropTimer = undefined;
    return this.running ?? Promise.resolve();
  }

  /** Takes the file-backed base again (after a reopen someone else made: the scan's, the frame pass's). */
  rebase(): void {
    this.fileBase = this.opts.fileBytes();
  }

  /** One look: trims when quiet and grown, reopens under load past the mapped budget. True when it did something. */
  async check(): Promise<boolean> {
    if (this.running || this.opts.busy?.()) return false;
    if (this.now() - this.lastRequest < this.opts.idleMs) return this.checkMapped();
    const heap = this.opts.heapBytes();
    const file = this.opts.fileBytes();
    // what shrank by itself (V8's memory reducer, a reopen after a pass) is the new base
    if (heap < this.heapBase) this.heapBase = heap;
    if (file !== undefined && (this.fileBase === undefined || file < this.fileBase)) this.fileBase = file;
    const heapGrew = heap - this.heapBase > this.opts.growthBytes;
    const fileLimit = Math.min(this.opts.growthBytes, this.opts.mappedBudget || Infinity);
    // pages dropped under load were mapped all the same: the quiet trim still reopens (LevelDB's
    // table handles, block cache and memtable leave with it)
    const fileGrew = this.droppedSinceTrim || (file !== undefined && this.fileBase !== undefined && file - this.fileBase > fileLimit);
    // grown since (requests between a trim and its retries): a whole trim, the retries start over
    if (!heapGrew && !fileGrew) return this.retryYoung();
    this.running = (async () => {
      this.opts.release?.();
      if (heapGrew) {
        this.opts.collect();
        this.counts.collections++;
        this.youngRetries = this.opts.youngGrown?.() ? YOUNG_RETRIES : 0;
      }
      // the catalog is reopened in every trim, not only when its mapped pages grew: what the
      // requests read also left LevelDB's table handles (their index and filter blocks) and
      // block cache in the C heap, all of it there when it reads tables with pread
      // (src/catalog/table-mmap.ts: 20,000 items, ~6 MB of `[heap]` after a Search load)
      this.droppedSinceTrim = false;
      await this.opts.reopen('idle').catch(() => undefined);
      this.counts.reopens++;
    })();
    await this.running;
    this.running = undefined;
    this.heapBase = this.opts.heapBytes();
    this.fileBase = this.opts.fileBytes();
    return true;
  }

  /** A quiet look after a trim while V8's young generation stays grown: one more collection. */
  private retryYoung(): boolean {
    if (this.youngRetries <= 0) return false;
    this.youngRetries--;
    if (!this.opts.youngGrown?.()) {
      this.youngRetries = 0;
      return false;
    }
    this.opts.collect();
    this.counts.collections++;
    this.heapBase = this.opts.heapBytes();
    return true;
  }

  /** Under load: drops the mapped table pages when the file-backed pages grew past dropBudget. True when it did. */
  checkDrop(): boolean {
    if (this.running) return false;
    const file = this.fileSinceBase();
    return file !== undefined && this.dropIfGrown(file);
  }

  /**
   * The file-backed pages now, when they can be set against the base; undefined when unknown, or
   * when there was no base or they shrank below it (then they are the new base).
   */
  private fileSinceBase(): number | undefined {
    const file = this.opts.fileBytes();
    if (file === undefined) return undefined;
    if (this.fileBase === undefined || file < this.fileBase) {
      this.fileBase = file;
      return undefined;
    }
    return file;
  }

  private dropIfGrown(file: number): boolean {
    if (!this.opts.dropMapped || this.opts.dropBudget === undefined) return false;
    if (file - this.fileBase! <= this.opts.dropBudget) return false;
    let dropped = false;
    try {
      dropped = this.opts.dropMapped();
    } catch {
      // from a timer: a failure must not take the server down; the next look tries again
    }
    if (!dropped) return false;
    this.counts.drops++;
    this.droppedSinceTrim = true;
    this.fileBase = this.opts.fileBytes();
    return true;
  }

  /** Requests are coming: reopens only when the file-backed pages grew past mappedBudget since the last reopen. */
  private async checkMapped(): Promise<boolean> {
    const drop = this.opts.dropMapped && this.opts.dropBudget !== undefined;
    if (!drop && !(this.opts.mappedBudget && this.opts.mappedBudget > 0)) return false;
    const file = this.fileSinceBase();
    if (file === undefined) return false;
    if (drop && this.dropIfGrown(file)) return true;
    if (!(this.opts.mappedBudget && this.opts.mappedBudget > 0)) return false;
    if (file - this.fileBase! <= this.opts.mappedBudget) return false;
    this.running = this.opts.reopen('catalog_mapped').then(
      () => undefined,
      () => undefined,
    );
    await this.running;
    this.running = undefined;
    this.counts.reopens++;
    this.counts.mapped++;
    this.fileBase = this.opts.fileBytes();
    return true;
  }
}
