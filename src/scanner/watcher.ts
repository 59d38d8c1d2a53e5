// Live watch of the media directories: inotify through Node's fs.watch, one watch per directory.
//
// Why fs.watch per directory and no library: on Linux, Node 20's `recursive` option is a
// JavaScript emulation, and chokidar (v4) is the same one-fs.watch-per-directory scheme behind a
// larger surface. Doing it here keeps the one thing a NAS needs under our control: the number of
// inotify watches (fs.inotify.max_user_watches is per user and shared with every other program).
// We know exactly which directories are watched; when the limit is reached (ENOSPC from inotify,
// or the configured watch_limit) the rest is left to the periodic rescan, and the log says so once.
//
// Events are debounced per path: a path is reported once no event arrived for `settleMs` and its
// size and mtime are the same as at the previous look (a copy in progress keeps changing both).
// A new directory gets its watches and its files go through the same settling. Paths that
// Tapedeck itself is changing (archive removing a disk copy, recall putting one back) are ignored.
// Settled paths are handed to `onChange` in batches, one batch at a time.

import { watch, type FSWatcher } from 'node:fs';
import { lstat, opendir, readFile } from 'node:fs/promises';
import { basename, join, sep } from 'node:path';
import type { OwnPaths } from '../util/own-paths.js';

export interface WatchLog {
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface WatcherOptions {
  roots: string[];
  /** Files worth reporting when they appear or change (deletions are always reported). */
  interesting: (path: string) => boolean;
  /** Receives settled paths (files or directories, existing or gone); called one batch at a time. */
  onChange: (paths: string[]) => Promise<void>;
  /** Quiet time before a path is looked at, and between two looks of a file still changing. */
  settleMs?: number;
  /** Most directories to watch (0: as many as inotify allows). */
  maxDirs?: number;
  /** What the fallback is, for the log line (e.g. "the periodic rescan every 900 s"). */
  fallback?: string;
  ownPaths?: OwnPaths;
  log?: WatchLog;
  /** fs.watch, replaceable in tests (e.g. to make it fail with ENOSPC). */
  watchFn?: typeof watch;
}

interface Pending {
  lastEvent: number;
  size?: number;
  mtime?: number;
  looked: boolean;
  timer?: NodeJS.Timeout;
}

export class LibraryWatcher {
  /** Watched directories, with the inode each watch follows (inotify watches inodes, not paths). */
  private readonly watchers = new Map<string, { w: FSWatcher; ino: number }>();
  /** Directories that are not watched because the limit was reached (the periodic rescan covers them). */
  readonly unwatched = new Set<string>();
  private readonly pending = new Map<string, Pending>();
  private readonly ready = new Set<string>();
  private limitLogged = false;
  private closed = false;
  private running?: Promise<void>;
  private flushTimer?: NodeJS.Timeout;
  private readonly settleMs: number;

  constructor(private readonly opts: WatcherOptions) {
    this.settleMs = opts.settleMs ?? 1000;
  }

  /** Number of directories watched now. */
  get watched(): number {
    return this.watchers.size;
  }

  /** Whether the watch limit has been reached (some directories rely on the periodic rescan). */
  get limited(): boolean {
    return this.limitLogged;
  }

  /**
   * Watches every directory under the roots (hidden ones excepted). `stopping` (the server's stop
   * began) ends the walk early and keeps the start from being announced after the stop's first line.
   */
  async start(stopping: () => boolean = () => false): Promise<void> {
    for (const root of this.opts.roots) {
      if (stopping()) return;
      await this.addTree(root, false, stopping);
    }
    if (this.closed || stopping()) return;
    this.opts.log?.info({ watch: { dirs: this.watchers.size, unwatched: this.unwatched.size } }, `watching ${this.watchers.size} directories for changes`);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const { w } of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    clearTimeout(this.flushTimer);
    await this.running?.catch(() => undefined);
  }

  /**
   * Adds watches to `dir` and every directory below it. With `settleFiles`, the files found are
   * put through settling (a directory that appeared: its files may still be being copied).
   */
  private async addTree(dir: string, settleFiles: boolean, stopping: () => boolean = () => false): Promise<void> {
    const stack = [dir];
    while (stack.length && !this.closed && !stopping()) {
      const d = stack.pop()!;
      await this.addWatch(d);
      let handle;
      try {
        handle = await opendir(d, { bufferSize: 256 });
      } catch {
        continue; // unreadable or gone: the scanner reports it
      }
      for await (const ent of handle) {
        if (ent.name.startsWith('.')) continue;
        const p = join(d, ent.name);
        if (ent.isDirectory()) stack.push(p);
        else if (settleFiles && ent.isFile() && this.opts.interesting(p)) this.event(p);
      }
    }
  }

  private async addWatch(dir: string): Promise<void> {
    if (this.watchers.has(dir) || this.closed) return;
    const ino = (await lstat(dir).catch(() => undefined))?.ino;
    if (ino === undefined || this.watchers.has(dir) || this.closed) return;
    const max = this.opts.maxDirs ?? 0;
    if (this.limitLogged || (max > 0 && this.watchers.size >= max)) return this.overLimit(dir, max > 0 && this.watchers.size >= max ? `watch_limit ${max}` : undefined);
    let w: FSWatcher;
    try {
      w = (this.opts.watchFn ?? watch)(dir, { persistent: false }, (_type, name) => this.onEvent(dir, name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC') return this.overLimit(dir, 'fs.inotify.max_user_watches');
      this.opts.log?.debug({ dir, err: (err as Error).message }, 'cannot watch directory');
      this.unwatched.add(dir);
      return;
    }
    w.on('error', (err) => {
      // the directory went away (or inotify dropped the watch): the parent's event handles it
      this.opts.log?.debug({ dir, err: err.message }, 'watch error');
      this.dropWatch(dir);
    });
    this.watchers.set(dir, { w, ino });
    this.unwatched.delete(dir);
  }

  private overLimit(dir: string, what: string | undefined): void {
    this.unwatched.add(dir);
    if (this.limitLogged) return;
    this.limitLogged = true;
    void this.systemLimit().then((sys) => {
      const limit = what ?? `fs.inotify.max_user_watches (${sys ?? '?'})`;
      const fallback = this.opts.fallback ?? 'the periodic rescan';
      this.opts.log?.warn(
        { watch: { limit, watched: this.watchers.size, firstUnwatched: dir, maxUserWatches: sys } },
        `watch limit reached (${limit === 'fs.inotify.max_user_watches' ? `${limit} = ${sys ?? '?'}` : limit}) after ${this.watchers.size} directories: changes in directories beyond it (from ${dir}) show up through ${fallback}; raise fs.inotify.max_user_watches (sysctl) to watch them all`,
      );
    });
  }

  private async systemLimit(): Promise<number | undefined> {
    const raw = await readFile('/proc/sys/fs/inotify/max_user_watches', 'utf8').catch(() => undefined);
    return raw === undefined ? undefined : Number(raw.trim()) || undefined;
  }

  private dropWatch(dir: string): void {
    for (const [d, { w }] of this.watchers) {
      if (d === dir || d.startsWith(dir + sep)) {
        w.close();
        this.watchers.delete(d);
      }
    }
    for (const d of this.unwatched) if (d === dir || d.startsWith(dir + sep)) this.unwatched.delete(d);
  }

  private onEvent(dir: string, name: string | Buffer | null): void {
    if (this.closed) return;
    if (name === null || name === undefined) return this.event(dir); // unknown entry: look at the directory
    const n = String(name);
    if (n.startsWith('.')) return; // hidden (recall's temp files among them)
    this.event(join(dir, n));
  }

  /** Something happened at `path`: (re)start its quiet period. */
  private event(path: string): void {
    if (this.opts.ownPaths?.has(path)) return;
    let p = this.pending.get(path);
    if (!p) {
      p = { lastEvent: Date.now(), looked: false };
      this.pending.set(path, p);
    } else p.lastEvent = Date.now();
    if (!p.timer) p.timer = setTimeout(() => void this.look(path), this.settleMs);
  }

  private async look(path: string): Promise<void> {
    const p = this.pending.get(path);
    if (!p || this.closed) return;
    p.timer = undefined;
    const quiet = Date.now() - p.lastEvent;
    if (quiet < this.settleMs) {
      p.timer = setTimeout(() => void this.look(path), this.settleMs - quiet);
      return;
    }
    const st = await lstat(path).catch(() => undefined);
    if (this.closed || this.pending.get(path) !== p) return;
    if (p.timer) return; // a new event came while we looked
    if (!st) {
      // gone (deleted or renamed away): drop the watches below it, report it
      this.pending.delete(path);
      this.dropWatch(path);
      return this.report(path);
    }
    if (st.isDirectory()) {
      this.pending.delete(path);
      const known = this.watchers.get(path);
      if (known?.ino === st.ino) return; // the same directory (e.g. its attributes changed): its own watch reports its content
      if (known) {
        // another directory now has this name (renamed over it): the old watch follows the old one
        this.dropWatch(path);
        this.report(path);
      }
      await this.addTree(path, true);
      return;
    }
    if (!this.opts.interesting(path)) {
      this.pending.delete(path);
      return;
    }
    if (!st.isFile()) {
      // a symbolic link or special file with a media name, maybe put over a catalogued file: the
      // scan drops what the catalog held there (it catalogues regular files only)
      this.pending.delete(path);
      return this.report(path);
    }
    const size = st.size;
    const mtime = Math.trunc(st.mtimeMs);
    if (p.looked && p.size === size && p.mtime === mtime) {
      this.pending.delete(path);
      return this.report(path);
    }
    // first look, or still changing: look again after another quiet period
    p.looked = true;
    p.size = size;
    p.mtime = mtime;
    p.timer = setTimeout(() => void this.look(path), this.settleMs);
  }

  private report(path: string): void {
    if (this.opts.ownPaths?.has(path)) return;
    this.ready.add(path);
    if (!this.flushTimer && !this.running) this.flushTimer = setTimeout(() => this.flush(), 50);
  }

  private flush(): void {
    this.flushTimer = undefined;
    if (this.closed || this.running || this.ready.size === 0) return;
    const paths = [...this.ready];
    this.ready.clear();
    this.opts.log?.debug({ watch: { paths: paths.length, first: basename(paths[0]!) } }, 'changes seen in the media directories');
    this.running = this.opts
      .onChange(paths)
      .catch((err: Error) => {
        if (!this.closed) this.opts.log?.warn({ err: err.message }, 'could not catalogue watched changes; the periodic rescan will');
      })
      .finally(() => {
        this.running = undefined;
        if (this.ready.size) this.flush();
      });
  }
}
