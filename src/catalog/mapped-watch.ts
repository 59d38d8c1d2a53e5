// Bounds the catalog's table pages held in the server's resident memory (catalog_mapped).
//
// LevelDB 1.20 (classic-level's prebuilt) maps every table file it reads into the process (up to
// 1,000 files; not configurable) and every page a read touched stays resident, counted in our
// RSS, while the file is open: Browse and Search over a 100,000-item catalog left 40-50 MB of
// it. Only closing the database unmaps them (LevelStore.reopen). This watch looks every 2
// seconds at the process's file-backed resident memory (/proc/self/status RssFile: one small
// read, where /proc/self/smaps, which tells the tables apart, costs ~30 ms) and reopens the
// catalog when it grew by more than the budget since the last reopen. The node binary's own
// pages are file-backed too, but they stop growing once its code ran: the baseline is taken
// again after every reopen, so they can cause a spurious reopen at most once or twice.

import { readFileSync } from 'node:fs';

export interface MappedWatchOptions {
  /** Bytes of file-backed pages allowed to accumulate between reopens (catalog_mapped; > 0). */
  budgetBytes: number;
  /** RssFile of this process in bytes, undefined when unknown (no /proc). */
  readRssFile?: () => number | undefined;
  /** Closes and opens the catalog (resolves when done or given up). */
  reopen: () => Promise<unknown>;
  /** True while a scan or the video-frame pass runs: they reopen at their end themselves. */
  busy?: () => boolean;
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

export class MappedTablesWatch {
  private baseline?: number;
  private running?: Promise<void>;
  private timer?: NodeJS.Timeout;
  /** Reopens this watch asked for. */
  reopens = 0;

  constructor(private readonly opts: MappedWatchOptions) {}

  /** Checks every `intervalMs` (the timer does not keep the process alive). */
  start(intervalMs = 2000): void {
    if (this.timer || !(this.opts.budgetBytes > 0)) return;
    this.baseline = this.read();
    if (this.baseline === undefined) return; // no /proc: nothing to watch
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return this.running ?? Promise.resolve();
  }

  /** Takes the baseline again (after a reopen someone else made). */
  rebase(): void {
    this.baseline = this.read();
  }

  /** One look: reopens when the file-backed pages grew past the budget. True when it reopened. */
  async check(): Promise<boolean> {
    if (this.running || this.opts.busy?.()) return false;
    const now = this.read();
    if (now === undefined) return false;
    if (this.baseline === undefined || now < this.baseline) {
      this.baseline = now;
      return false;
    }
    if (now - this.baseline <= this.opts.budgetBytes) return false;
    this.running = this.opts.reopen().then(
      () => undefined,
      () => undefined,
    );
    await this.running;
    this.running = undefined;
    this.reopens++;
    this.baseline = this.read();
    return true;
  }

  private read(): number | undefined {
    return (this.opts.readRssFile ?? rssFileBytes)();
  }
}
