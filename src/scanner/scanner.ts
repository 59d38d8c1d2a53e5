// Library scanner: walks the media directories, reads metadata of new or changed
// files and writes the catalog in awaited batches.
//
// Incremental: every file's (size, mtime) is kept under p/<path>; an unchanged
// file is not read again, and its entry is not written (a rescan of an unchanged
// library writes nothing: a stat per file and key reads). Deleted files are found
// by comparing each directory the walk reads in full with the entries directly
// under it (ScanPass.sweepDir), so memory stays bounded by the largest directory
// whatever the library size (no set of every path seen is kept).

import { stat as statCb, type Stats } from 'node:fs';
import { lstat, opendir, readdir } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { BatchOp } from '../catalog/store.js';
import type { ApplyInput, Catalog, PathEntry } from '../catalog/catalog.js';
import type { ArtRef, CatalogObject, ProbeResult } from '../catalog/types.js';
import type { ArtMaker } from '../art/maker.js';
import { collectStores } from '../catalog/store-gc.js';
import { itemIdForPath, playlistIdForPath as playlistIdOf } from '../catalog/layout.js';
import type { ContentStore } from '../util/content-store.js';
import { findSidecars, isSubtitlePath, sidecarSignature, storeSubtitles, videosOfSidecar } from '../media/subtitles.js';
import { LRUCache } from 'lru-cache';
import { mediaTypeOf } from '../media/mediatypes.js';
import { probe as defaultProbe } from '../media/probe.js';
import { capMeta, capText } from '../util/text-cap.js';
import type { ProbePool } from '../media/probe-pool.js';
import { hashFile } from '../util/hash.js';
import { innermostRoot, isInside } from '../util/inside.js';
import { isPlaylistPath, resolvePlaylist } from './playlist.js';

export interface ScanProgress {
  seen: number; // media files found so far
  probed: number; // files whose metadata was read
  unchanged: number;
  removed: number;
  failed: number;
  /** Playlist files read (new or changed, or re-read because the items they list changed). */
  playlists?: number;
  /** Items whose disk copy vanished but that stay in the library, served from their tape copy. */
  diskCopiesGone?: number;
  /** Videos whose art (a frame through ffmpeg) was left for scanDeferredArt (ScanOptions.deferFrames). */
  framesDeferred?: number;
  /**
   * Catalog records the pass wrote or deleted (items, playlist records, path entries; not the
   * containers and index entries they move): 0 when nothing changed.
   */
  written?: number;
  /** Full scan: art and subtitle store files removed because no catalogued object refers to them. */
  collected?: { art: number; subtitles: number; bytes: number };
  elapsedMs: number;
  rate: number; // files per second
  done: boolean;
}

export interface ScanOptions {
  roots: string[];
  /** Reads a file's metadata; `known` is its size and mtime from the walk's stat. */
  probe?: (path: string, known?: { size: number; mtime: number }) => Promise<ProbeResult | undefined>;
  /** Worker threads for the default prober (none: it runs in this thread). */
  pool?: ProbePool;
  /** ffprobe binary for the default prober: a path, 'off', or undefined to look it up on PATH. */
  ffprobe?: string;
  /** Makes album art and thumbnails of new and changed items (none without it). */
  art?: ArtMaker;
  /**
   * Videos whose art would be a frame through ffmpeg (tens of ms of CPU and a process each) get
   * no art in this pass and no `art` mark in their path entries: scanDeferredArt makes it after
   * the scan, so every item is catalogued (browsable, searchable) first.
   */
  deferFrames?: boolean;
  /** Where the sidecar subtitles of new and changed videos are copied (none without it). */
  subtitles?: ContentStore;
  /**
   * Catalog operations per written batch (an item and its path entry are two); default 1,000.
   * Each batch rewrites the containers it touches and is one change event (in serve: cache drops
   * and event notifications), so fewer, larger batches cost less: 250 cost ~6% more scan CPU.
   */
  batchSize?: number;
  concurrency?: number;
  onProgress?: (p: ScanProgress) => void;
  progressIntervalMs?: number;
  log?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void };
  signal?: AbortSignal;
}

interface Found {
  path: string;
  root: string;
  size: number;
  mtime: number;
}

/** What artOf answers for a video frame left for scanDeferredArt. */
const LATER = Symbol('later');

/**
 * stat() through the callback API: no promise-based request object per call, about half the
 * main thread's CPU of fs/promises' stat (20,500 files: ~140 ms against 210-270 ms here).
 */
function statOrNone(path: string): Promise<Stats | undefined> {
  return new Promise((resolve) => statCb(path, (err, st) => resolve(err ? undefined : st)));
}

/** Files of one directory whose stat calls are in flight together (one round trip, not 64). */
const STAT_BATCH = 64;

/**
 * What one directory holds, for the full scan's sweep (ScanPass.sweepDir): the names of its media
 * and playlist files that were there (stat'ed) and of its subdirectories.
 */
type Listing = { dir: string; files: Set<string>; subdirs: Set<string> };

/**
 * Media files under `root`, depth first; hidden entries and symlinks are skipped. Directories that
 * cannot be read are logged and added to `unreadable`: what the catalog knows under them is kept,
 * not swept as deleted. `listed` is called with each directory read in full, after its files were
 * yielded (memory: the names of one directory, not of the library).
 */
async function* walk(root: string, unreadable: string[], log?: ScanOptions['log'], start = root, listed?: (l: Listing) => Promise<void>): AsyncGenerator<Found> {
  const stack = [start];
  // A name that is not valid UTF-8 (e.g. Latin-1 from an old share) comes back from readdir
  // with U+FFFD in place of its bytes: no path string names the file, its stat fails and it
  // would be left out without a word. Such files are named in one warning per directory.
  let undecodable: string[] = [];
  const statAll = async (paths: string[], present?: Set<string>): Promise<Found[]> => {
    const stats = await Promise.all(paths.map(statOrNone)); // undefined: vanished since readdir
    const out: Found[] = [];
    stats.forEach((st, i) => {
      if (!st && paths[i].includes('\uFFFD')) undecodable.push(basename(paths[i]));
      if (!st) return;
      out.push({ path: paths[i], root, size: st.size, mtime: Math.trunc(st.mtimeMs) });
      present?.add(basename(paths[i]));
    });
    return out;
  };
  while (stack.length) {
    const dir = stack.pop()!;
    const subdirs: string[] = [];
    let files: string[] = [];
    const present = listed ? new Set<string>() : undefined;
    let complete = true;
    try {
      const handle = await opendir(dir, { bufferSize: 256 });
      for await (const ent of handle) {
        if (ent.name.startsWith('.')) continue;
        const p = join(dir, ent.name);
        if (ent.isDirectory()) subdirs.push(p);
        else if (ent.isFile() && (mediaTypeOf(p) || isPlaylistPath(p))) {
          files.push(p);
          if (files.length >= STAT_BATCH) {
            yield* await statAll(files, present);
            files = [];
          }
        }
      }
    } catch (err) {
      log?.warn({ dir, err: (err as Error).message }, 'cannot read directory; what the catalog holds under it is kept');
      unreadable.push(dir);
      complete = false;
    }
    yield* await statAll(files, present);
    if (undecodable.length) {
      const names = undecodable;
      undecodable = [];
      log?.warn(
        { dir, files: names.length, names: names.slice(0, 5) },
        `${names.length} file(s) in ${dir} have names that are not valid UTF-8 and cannot be served (shown with \uFFFD); rename them to UTF-8 (e.g. convmv -f latin1 -t utf8)`,
      );
    }
    if (listed && present && complete) await listed({ dir, files: present, subdirs: new Set(subdirs.map((d) => basename(d))) });
    subdirs.sort().reverse();
    stack.push(...subdirs);
  }
}

export function itemFromProbe(f: Found, pr: ProbeResult, previous?: CatalogObject): CatalogObject {
  const item: CatalogObject = {
    id: itemIdForPath(f.path),
    parentId: '',
    container: false,
    upnpClass: pr.upnpClass,
    title: capText(pr.title),
    kind: pr.kind,
    meta: capMeta(pr.meta),
    res: { ...pr.res, size: f.size },
    location: { disk: { path: f.path, size: f.size, mtime: f.mtime } },
    origPath: f.path,
    mediaRoot: f.root,
    relPath: relativeTo(f.root, f.path),
    mtime: f.mtime,
  };
  // A changed file invalidates any tape copy; an unchanged identity keeps nothing else either.
  void previous;
  return item;
}

/** What the art maker needs of a catalogued video (its kind and duration), taken from its item. */
function videoProbe(item: CatalogObject): ProbeResult {
  return { kind: 'video', upnpClass: item.upnpClass, title: item.title, meta: item.meta ?? {}, res: item.res! };
}

/** relative(root, path) for a path the walk made below `root` (a slice: no two resolve() per file). */
function relativeTo(root: string, path: string): string {
  return path.length > root.length + 1 && path.startsWith(root) && path[root.length] === sep && !root.endsWith(sep) ? path.slice(root.length + 1) : relative(root, path);
}

/** Media directories to walk: resolved, deduplicated, a root inside another one dropped (and logged). */
function rootsOf(opts: ScanOptions): string[] {
  const unique = [...new Set(opts.roots.map((r) => resolve(r)))];
  // a root inside another one is walked as part of it (once: a file must not be read twice)
  return unique.filter((r) => {
    const outer = unique.find((o) => o !== r && isInside(o, r));
    if (outer) opts.log?.warn({ root: r, inside: outer }, `media directory ${r} is inside ${outer}; it is scanned once, as part of ${outer}`);
    return !outer;
  });
}

/**
 * One pass of the scanner: reads new and changed files (a bounded pool of probes), writes items
 * and path entries in awaited batches, and sweeps entries of files that are gone. Used by the full
 * scan and by scanPaths (the live watch), so both read metadata the same way.
 */
class ScanPass {
  readonly progress: ScanProgress = { seen: 0, probed: 0, unchanged: 0, removed: 0, failed: 0, elapsedMs: 0, rate: 0, done: false };
  private readonly started = Date.now();
  private lastReport = 0;
  private readonly probe: (path: string, known?: { size: number; mtime: number }) => Promise<ProbeResult | undefined>;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private upserts: CatalogObject[] = [];
  private extra: BatchOp[] = [];
  // One batch is written while the next one is gathered: probing never waits for the
  // catalog unless a second batch is full before the first is committed. A probe adds its
  // item and its path entry in the same synchronous step, so both land in one batch.
  private writing: Promise<unknown> = Promise.resolve();
  private readonly inflight = new Set<Promise<void>>();
  private removes: string[] = [];
  private dels: BatchOp[] = [];
  /** New or changed playlist files: read after the items they list are in the catalog. */
  private changedPlaylists: Found[] = [];
  /**
   * Partial scans (the watch) see a rename as one path gone and one new: a new file with the size
   * and mtime of a removed one is taken as that file renamed, and inherits its resume bookmark.
   */
  private moved?: { gone: Map<string, number>; added: Map<string, string> };

  /**
   * The catalog held no path entry when the pass began (a first scan): no file has an entry to
   * look up, and nothing can be gone, so there is nothing to sweep.
   */
  fresh = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly opts: ScanOptions,
    private readonly gen: number,
  ) {
    const ffprobe = opts.ffprobe === 'off' ? false : opts.ffprobe;
    // the walk has just stat'ed the file: the probe does not again
    const pool = opts.pool;
    this.probe = opts.probe ?? (pool ? (p, known) => pool.probe(p, { ffprobe, pictures: !!opts.art, known }) : (p, known) => defaultProbe(p, { ffprobe, pictures: !!opts.art, known }));
    this.batchSize = opts.batchSize ?? 1000;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
  }

  report(force = false): void {
    const now = Date.now();
    const progress = this.progress;
    progress.elapsedMs = now - this.started;
    progress.rate = progress.elapsedMs > 0 ? Math.round((progress.seen * 1000) / progress.elapsedMs) : 0;
    if (force || now - this.lastReport >= (this.opts.progressIntervalMs ?? 500)) {
      this.lastReport = now;
      this.opts.onProgress?.({ ...progress });
    }
  }

  /** Every write of the pass goes through here (counted in `written`). */
  private apply(input: ApplyInput): Promise<unknown> {
    this.progress.written = (this.progress.written ?? 0) + (input.upserts?.length ?? 0) + (input.removes?.length ?? 0) + (input.extraOps?.length ?? 0);
    return this.catalog.apply(input);
  }

  private async flush(): Promise<void> {
    await this.writing; // rethrows a failed batch
    if (!this.upserts.length && !this.extra.length) return;
    const u = this.upserts;
    const e = this.extra;
    this.upserts = [];
    this.extra = [];
    this.writing = this.apply({ upserts: u, extraOps: e });
    this.writing.catch(() => undefined); // handled by the next await of `writing`
  }

  /**
   * Art never fails a scan: a picture that cannot be used leaves the item without art. LATER: a
   * video frame left for scanDeferredArt (deferFrames).
   */
  private async artOf(path: string, pr: ProbeResult): Promise<ArtRef | typeof LATER | undefined> {
    if (!this.opts.art) return undefined;
    try {
      if (this.opts.deferFrames && (await this.opts.art.frameNeeded(path, pr))) {
        this.progress.framesDeferred = (this.progress.framesDeferred ?? 0) + 1;
        return LATER;
      }
      return await this.opts.art.forItem(path, pr);
    } catch (err) {
      this.opts.log?.warn({ path, err: (err as Error).message }, 'cannot make art');
      return undefined;
    } finally {
      pr.picture = undefined;
    }
  }

  private async subtitlesOf(path: string) {
    if (!this.opts.subtitles) return undefined;
    return storeSubtitles(this.opts.subtitles, path, this.opts.log).catch((err: Error) => {
      this.opts.log?.warn({ path, err: err.message }, 'cannot store subtitles');
      return undefined;
    });
  }

  /** Signature of a video's sidecar subtitles ('' for none), undefined when subtitles are not kept or not a video. */
  private async subsSig(path: string): Promise<string | undefined> {
    if (!this.opts.subtitles || mediaTypeOf(path)?.kind !== 'video') return undefined;
    return sidecarSignature(path, await this.listing(dirname(path)));
  }

  /**
   * Directory listings for sidecar subtitles, read once per directory and pass (not once per
   * video: a folder of 250 videos was read 250 times), and for archived videos, whose
   * directories are not walked for them.
   */
  private listings = new LRUCache<string, Promise<string[]>>({ max: 8 });

  private listing(dir: string): Promise<string[]> {
    let names = this.listings.get(dir);
    if (!names) {
      names = readdir(dir).catch(() => [] as string[]);
      this.listings.set(dir, names);
    }
    return names;
  }

  /**
   * A video archived (only on tape, with a head stub) is not on disk, so the walk does not see it:
   * its sidecars are looked for here, in its directory, without touching tape. A sidecar added or
   * changed since is copied as for a disk video; when none is left, the stored copies stay (they
   * are the subtitles the tape item has, like its art).
   */
  async archivedSidecars(path: string, entry: PathEntry): Promise<void> {
    if (!this.opts.subtitles || !entry.archived || !entry.id || mediaTypeOf(path)?.kind !== 'video') return;
    const subs = await sidecarSignature(path, await this.listing(dirname(path)));
    if (subs === (entry.subs ?? '')) return;
    const item = await this.catalog.get(entry.id);
    const ops = [this.catalog.pathOp(path, { ...entry, subs })];
    const subtitles = subs && item && !item.container ? await this.subtitlesOf(path) : undefined;
    if (subtitles && item && JSON.stringify(subtitles) !== JSON.stringify(item.subtitles)) await this.apply({ upserts: [{ ...item, subtitles }], extraOps: ops });
    else await this.apply({ extraOps: ops });
  }

  /** Path entries say whether art was looked for, so an unchanged file is not read again for it. */
  private get artFlag(): { art?: boolean } {
    return this.opts.art ? { art: true } : {};
  }

  /**
   * An unchanged item whose art was never looked for (an older catalog, or art was off) or whose
   * sidecar subtitles changed (`subs`, their new signature): only those are updated; everything
   * else, its tape copy included, stays as it is.
   */
  private async handleExtras(f: Found, prev: PathEntry, needArt: boolean, subs: string | undefined): Promise<void> {
    let markArt = needArt;
    const item = await this.catalog.get(prev.id);
    if (item && !item.container) {
      // a video's art needs only what its item holds (kind, duration): the file is not read again
      // (an ffprobe each in the frame pass after a scan); a track's needs its embedded cover
      const pr = !needArt ? undefined : item.kind === 'video' && item.res ? videoProbe(item) : await this.probe(f.path, f).catch(() => undefined);
      const itemArt = pr ? await this.artOf(f.path, pr) : undefined;
      if (itemArt === LATER) markArt = false; // still to be looked for
      const next = { ...item, ...(itemArt && itemArt !== LATER ? { art: itemArt } : {}) };
      if (subs !== undefined) {
        const subtitles = await this.subtitlesOf(f.path);
        if (subtitles) next.subtitles = subtitles;
        else delete next.subtitles;
      }
      if (JSON.stringify(next) !== JSON.stringify(item)) this.upserts.push(next);
    }
    const entry = { ...prev, ...(markArt ? this.artFlag : {}), ...(subs !== undefined ? { subs } : {}) };
    // a video whose frame is left for later again (LATER) keeps its entry as it is: no write
    if (JSON.stringify(entry) !== JSON.stringify(prev)) this.extra.push(this.catalog.pathOp(f.path, entry));
  }

  private async handle(f: Found, prev: PathEntry | undefined): Promise<void> {
    const { catalog, opts, gen, progress } = this;
    let pr: ProbeResult | undefined;
    let denied = false;
    try {
      pr = await this.probe(f.path, f);
    } catch (err) {
      denied = ['EACCES', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '');
      opts.log?.warn({ path: f.path, err: (err as Error).message }, 'cannot read media file');
    }
    if (!pr) {
      progress.failed++;
      // Remember it so a damaged file is not re-read on every scan, but keep no item. A file we
      // may not read is tried again next time: fixing its permissions changes neither size nor mtime.
      this.extra.push(catalog.pathOp(f.path, { id: '', size: f.size, mtime: f.mtime, gen, ...(denied ? { denied: true } : {}) }));
      if (prev?.id) await this.apply({ removes: [prev.id] });
      return;
    }
    progress.probed++;
    const item = itemFromProbe(f, pr);
    const itemArt = await this.artOf(f.path, pr);
    if (itemArt && itemArt !== LATER) item.art = itemArt;
    const subs = await this.subsSig(f.path);
    const subtitles = subs ? await this.subtitlesOf(f.path) : undefined;
    if (subtitles) item.subtitles = subtitles;
    if (prev?.archived && prev.id === item.id) {
      // the file came back where an archived item's disk copy was: when it holds the bytes of
      // the tape copy, the item lives on disk and tape again (the tape copy is not forgotten)
      const tape = (await catalog.get(item.id))?.location?.tape;
      if (tape && tape.size === f.size && (await hashFile(f.path).catch(() => undefined)) === tape.sha256) item.location = { ...item.location, tape };
    }
    if (!prev) this.moved?.added.set(`${f.size}:${f.mtime}`, item.id);
    this.upserts.push(item);
    this.extra.push(catalog.pathOp(f.path, { id: item.id, size: f.size, mtime: f.mtime, gen, ...(itemArt === LATER ? {} : this.artFlag), ...(subs ? { subs } : {}) }));
  }

  /** Looks for the art of an unchanged item whose art was never looked for (scanDeferredArt). */
  async artOnly(f: Found, prev: PathEntry, done?: () => void): Promise<void> {
    const p = this.handleExtras(f, prev, true, undefined).finally(() => {
      this.inflight.delete(p);
      done?.();
    });
    this.inflight.add(p);
    if (this.inflight.size >= this.concurrency) await Promise.race(this.inflight);
    if (this.upserts.length + this.extra.length >= this.batchSize) await this.flush();
  }

  /** Files are looked up in the scanner map in chunks (one getMany), not one await per file. */
  async files(chunk: Found[]): Promise<void> {
    const prevs = this.fresh ? [] : await this.catalog.getPaths(chunk.map((f) => f.path));
    for (let i = 0; i < chunk.length; i++) {
      const f = chunk[i];
      const prev = prevs[i];
      if (isPlaylistPath(f.path)) {
        // a new or changed one is read after the sweep; an unchanged one costs nothing
        if (!(prev && prev.size === f.size && prev.mtime === f.mtime && !prev.denied)) this.changedPlaylists.push(f);
        continue;
      }
      this.progress.seen++;
      if (prev && prev.size === f.size && prev.mtime === f.mtime && !prev.archived && !prev.denied) {
        this.progress.unchanged++;
        const needArt = !!this.opts.art && !prev.art && !!prev.id;
        const subs = prev.id ? await this.subsSig(f.path) : undefined;
        const subsChanged = subs !== undefined && subs !== (prev.subs ?? '');
        if (needArt || subsChanged) {
          const p = this.handleExtras(f, prev, needArt, subsChanged ? subs : undefined).finally(() => this.inflight.delete(p));
          this.inflight.add(p);
          if (this.inflight.size >= this.concurrency) await Promise.race(this.inflight);
        }
        // else nothing is written: the entry is right as it is (the sweep goes by what the walk lists)
      } else {
        const p = this.handle(f, prev).finally(() => this.inflight.delete(p));
        this.inflight.add(p);
        if (this.inflight.size >= this.concurrency) await Promise.race(this.inflight);
      }
      if (this.upserts.length + this.extra.length >= this.batchSize) await this.flush();
      this.report();
    }
  }

  /**
   * Walks a directory tree (or the whole media root) into the pass; with `sweep`, what the catalog
   * holds in each directory read but is no longer there is swept as it goes (sweepDir).
   */
  async walk(root: string, unreadable: string[], start = root, sweep = false): Promise<void> {
    let chunk: Found[] = [];
    for await (const f of walk(root, unreadable, this.opts.log, start, sweep ? (l) => this.sweepDir(l) : undefined)) {
      if (this.opts.signal?.aborted) throw new Error('scan aborted');
      chunk.push(f);
      if (chunk.length >= 128) {
        await this.files(chunk);
        chunk = [];
      }
    }
    await this.files(chunk);
  }

  /**
   * The full scan's sweep of one directory it has just read in full: entries of the scanner map
   * directly in it whose file is not there, and every entry below a subdirectory that is not there
   * any more, are gone (a subdirectory that is there is swept when it is read). Keys only: nothing
   * is read or written for what is still there, so an unchanged library costs the walk's stat per
   * file and a key scan, no write (before, every entry was rewritten with the scan's generation).
   */
  async sweepDir({ dir, files, subdirs }: Listing): Promise<void> {
    const prefix = below(dir);
    await this.sweepRange(prefix, (path) => {
      const rest = path.slice(prefix.length);
      const i = rest.indexOf(sep);
      if (i < 0) return files.has(rest);
      const sub = rest.slice(0, i);
      return subdirs.has(sub) ? prefix + sub + sep + '\uffff' : false;
    });
  }

  /**
   * Sweeps the scanner map entries whose path starts with `prefix`, in key order: `there` says of
   * each path whether its file is there (true), gone (false), or, as a key, that the path starts a
   * subtree to skip up to that key (a new iterator from there: one seek, not a read of the subtree).
   */
  async sweepRange(prefix: string, there: (path: string) => boolean | string): Promise<void> {
    let after: string | undefined;
    for (;;) {
      let skip: string | undefined;
      for await (const path of this.catalog.pathNames(prefix, after)) {
        const v = there(path);
        if (typeof v === 'string') {
          skip = v;
          break;
        }
        if (!v) await this.sweep(path);
      }
      if (skip === undefined) break;
      after = skip;
    }
    await this.flushRemoves();
  }

  /** An entry whose file the walk did not find: an archived item's (sidecars looked for), or gone. */
  private async sweep(path: string): Promise<void> {
    const entry = await this.catalog.getPath(path);
    if (!entry) return;
    if (entry.archived) await this.archivedSidecars(path, entry);
    else await this.gone(path, entry);
  }

  /** Waits for every probe and batch of the pass. */
  async drain(): Promise<void> {
    await Promise.all(this.inflight);
    await this.flush();
    await this.writing;
  }

  /**
   * A file the catalog knows is gone. An item that also has a verified tape copy loses only its
   * disk location: it stays in the library, served from tape, as if it had been archived.
   * A disk copy removed on purpose (archived) is not a deletion.
   */
  async gone(path: string, entry: PathEntry): Promise<void> {
    const { catalog, opts, progress } = this;
    if (entry.archived) return;
    const item = entry.id ? await catalog.get(entry.id) : undefined;
    if (item?.location?.tape) {
      const { tape, stub } = item.location;
      await catalog.setLocation(item.id, { tape, ...(stub ? { stub } : {}) }, [catalog.pathOp(path, { ...entry, archived: true })]);
      this.progress.written = (this.progress.written ?? 0) + 2;
      opts.log?.warn({ path, id: item.id, label: tape.label }, `disk copy ${path} is gone; the item stays, served from its tape copy on ${tape.label}`);
      progress.diskCopiesGone = (progress.diskCopiesGone ?? 0) + 1;
      return;
    }
    if (entry.id && this.moved) {
      const mark = await catalog.bookmarks.get(entry.id);
      if (mark) this.moved.gone.set(`${entry.size}:${entry.mtime}`, mark.pos);
    }
    if (entry.id) this.removes.push(entry.id);
    this.dels.push(catalog.pathOp(path, undefined));
    progress.removed++;
    if (this.dels.length >= this.batchSize) await this.flushRemoves();
  }

  trackMoves(): void {
    this.moved = { gone: new Map(), added: new Map() };
  }

  /** Bookmarks of renamed files go to their new items (see `moved`). */
  async moveBookmarks(): Promise<void> {
    if (!this.moved) return;
    for (const [key, pos] of this.moved.gone) {
      const id = this.moved.added.get(key);
      if (id) await this.catalog.bookmarks.set(id, pos);
    }
  }

  async flushRemoves(): Promise<void> {
    if (!this.dels.length) return;
    const removes = this.removes;
    const dels = this.dels;
    this.removes = [];
    this.dels = [];
    await this.apply({ removes, extraOps: dels });
  }

  /**
   * Resolves playlists: the new or changed files, and every playlist of the library when items came
   * or went in this pass (an entry that was missing may exist now, one that existed may be gone).
   */
  async playlists(): Promise<void> {
    const { catalog, opts } = this;
    const changed = new Map(this.changedPlaylists.map((f) => [f.path, f]));
    this.changedPlaylists = [];
    const todo = new Map<string, Found | undefined>(changed);
    if (this.progress.probed || this.progress.removed) {
      for await (const rec of catalog.playlistRecords()) if (rec.origPath && !todo.has(rec.origPath)) todo.set(rec.origPath, undefined);
    }
    if (!todo.size) return;
    const roots = rootsOf({ ...opts, log: undefined });
    const upserts: CatalogObject[] = [];
    const ops: BatchOp[] = [];
    for (const [path, f] of todo) {
      const root = f?.root ?? innermostRoot(roots, path);
      if (!root) continue;
      const old = f ? undefined : await catalog.get(playlistIdOf(path));
      let r;
      try {
        r = await resolvePlaylist(catalog, path, root, roots);
        if (!r) opts.log?.warn({ path }, `playlist ${path} is larger than 1 MiB; skipped`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // gone: the sweep removes it
        opts.log?.warn({ path, err: (err as Error).message }, 'cannot read playlist');
      }
      this.progress.playlists = (this.progress.playlists ?? 0) + 1;
      if (!r) {
        if (f) ops.push(catalog.pathOp(path, { id: '', size: f.size, mtime: f.mtime, gen: this.gen }));
        continue;
      }
      upserts.push(r.record);
      if (f) ops.push(catalog.pathOp(path, { id: r.record.id, size: f.size, mtime: f.mtime, gen: this.gen }));
      if (f || JSON.stringify(old?.playlist) !== JSON.stringify(r.record.playlist)) {
        const skipped = r.outside + r.missing + r.duplicates;
        const msg = `playlist ${path}: ${r.record.playlist!.entries.length} of ${r.listed} entries${skipped ? `; skipped ${r.outside} outside the library, ${r.missing} missing, ${r.duplicates} repeated` : ''}`;
        const fields = { playlist: { path, listed: r.listed, entries: r.record.playlist!.entries.length, outside: r.outside, missing: r.missing, duplicates: r.duplicates } };
        if (skipped) opts.log?.warn(fields, msg);
        else opts.log?.debug?.(fields, msg);
      }
      if (upserts.length >= this.batchSize) await this.apply({ upserts: upserts.splice(0), extraOps: ops.splice(0) });
    }
    if (upserts.length || ops.length) await this.apply({ upserts, extraOps: ops });
  }

  /**
   * Removes art and subtitle store files no catalogued object refers to any more (those written
   * since `before` are kept). Never fails the scan: a store that cannot be cleaned is logged.
   */
  async collect(before: number): Promise<void> {
    const { opts } = this;
    try {
      const r = await collectStores(this.catalog, { art: opts.art?.store, subtitles: opts.subtitles }, before);
      if (r.art) opts.art?.forget();
      if (r.art || r.subtitles) {
        this.progress.collected = r;
        opts.log?.debug?.({ collected: r }, `removed ${r.art} art and ${r.subtitles} subtitle files no item refers to (${r.bytes} bytes)`);
      }
    } catch (err) {
      opts.log?.warn({ err: (err as Error).message }, 'cannot clean the art and subtitle stores');
    }
  }

  finish(): ScanProgress {
    this.progress.done = true;
    this.report(true);
    return this.progress;
  }
}

export async function scan(catalog: Catalog, opts: ScanOptions): Promise<ScanProgress> {
  const started = Date.now();
  const roots = rootsOf(opts);
  const unreadable: string[] = [];
  // path entries written keep the generation of older catalogs' sweep (no longer bumped: a bump
  // was a write per scan, and the sweep goes by the walk's listings)
  const gen = Number(await catalog.getMeta('scanGen')) || 0;
  const pass = new ScanPass(catalog, opts, gen);
  pass.fresh = await noPathEntries(catalog);
  // each directory read in full is swept as the walk goes (deleted files; an archived item's
  // disk copy removed on purpose is not one); directories that could not be read are not
  for (const root of roots) await pass.walk(root, unreadable, root, !pass.fresh);
  await pass.drain();
  // what the catalog holds outside every media directory (one dropped from the configuration)
  if (!pass.fresh) {
    await pass.sweepRange('', (path) => {
      const root = roots.find((r) => path.startsWith(below(r)));
      if (root) return below(root) + '\uffff';
      return unreadable.some((d) => isInside(d, path));
    });
  }
  await pass.playlists();
  await pass.collect(started);
  return pass.finish();
}

/**
 * Makes the art a scan with `deferFrames` left out (video frames through ffmpeg): every catalogued
 * video whose art was not looked for yet, in path order, at most `limit` of them (then `after` says
 * where it stopped, to go on from there: a server runs it in slices between live updates).
 * `concurrency` ffmpeg runs at once (default 1: the other core stays with the clients; `tapedeck
 * scan` runs more); `onVideo` is told how many videos are done as each one is. Must not run
 * concurrently with scan() or scanPaths().
 */
export async function scanDeferredArt(catalog: Catalog, opts: ScanOptions & { after?: string; limit?: number; onVideo?: (done: number) => void }): Promise<{ made: number; after?: string }> {
  if (!opts.art) return { made: 0 };
  const gen = Number(await catalog.getMeta('scanGen')) || 0;
  const pass = new ScanPass(catalog, { ...opts, deferFrames: false, concurrency: opts.concurrency ?? 1 }, gen);
  const limit = opts.limit ?? Infinity;
  let made = 0;
  let last: string | undefined;
  let more = false;
  let done = 0;
  const onDone = opts.onVideo && (() => opts.onVideo!(++done));
  for await (const [path, entry] of catalog.paths('', opts.after)) {
    if (opts.signal?.aborted) break;
    if (!entry.id || entry.art || entry.archived || entry.denied || mediaTypeOf(path)?.kind !== 'video') continue;
    if (made >= limit) {
      more = true;
      break;
    }
    made++;
    last = path;
    await pass.artOnly({ path, root: '', size: entry.size, mtime: entry.mtime }, entry, onDone);
  }
  await pass.drain();
  return { made, ...(more ? { after: last } : {}) };
}

/**
 * Incremental scan of some paths only (what the live watch saw change): each path is a file or a
 * directory under one of the media directories. A file is read when it is new or changed; a
 * directory is walked; a path that no longer exists removes what the catalog holds at and below
 * it (tape copies kept, as in the full scan). Must not run concurrently with scan().
 */
export async function scanPaths(catalog: Catalog, opts: ScanOptions & { paths: string[] }): Promise<ScanProgress> {
  const roots = rootsOf(opts);
  const gen = Number(await catalog.getMeta('scanGen')) || 0;
  const pass = new ScanPass(catalog, opts, gen);
  pass.trackMoves();
  const unreadable: string[] = [];
  const asked = opts.paths.map((p) => resolve(p));
  // a sidecar subtitle that came, changed or went is a change of its video(s)
  if (opts.subtitles) {
    for (const p of asked.filter((q) => isSubtitlePath(q))) asked.push(...(await videosOfSidecar(p, (n) => mediaTypeOf(n)?.kind === 'video')));
  }
  const todo = [...new Set(asked)].sort();
  // a path below another one in the list is covered by it
  const paths = todo.filter((p, i) => !todo.slice(0, i).some((o) => o !== p && isInside(o, p)));
  // ... and of archived videos beside it (not on disk: known to the catalog only)
  if (opts.subtitles) {
    for (const p of asked.filter((q) => isSubtitlePath(q))) {
      const dir = dirname(p);
      for await (const [video, entry] of catalog.paths(dir + sep)) {
        if (entry.archived && dirname(video) === dir && (await findSidecars(video, [relative(dir, p)])).length) await pass.archivedSidecars(video, entry);
      }
    }
  }
  for (const path of paths) {
    const root = innermostRoot(roots, path);
    if (!root || hiddenBelow(root, path)) continue;
    const st = await lstat(path).catch(() => undefined);
    if (st?.isDirectory()) await pass.walk(root, unreadable, path);
    else if (st?.isFile() && (mediaTypeOf(path) || isPlaylistPath(path))) await pass.files([{ path, root, size: st.size, mtime: Math.trunc(st.mtimeMs) }]);
    await pass.drain();
    // what the catalog holds at or below the path but is no longer there
    const check = async (p: string, entry: PathEntry) => {
      if (entry.archived || unreadable.some((d) => isInside(d, p))) return;
      const now = await lstat(p).catch(() => undefined);
      if (!now?.isFile()) await pass.gone(p, entry);
    };
    const own = await catalog.getPath(path);
    if (own) await check(path, own);
    for await (const [p, entry] of catalog.paths(path + sep)) await check(p, entry);
    await pass.flushRemoves();
  }
  await pass.moveBookmarks();
  await pass.playlists();
  return pass.finish();
}

/** Whether the scanner map is empty (a first scan: every file the walk finds is new). */
async function noPathEntries(catalog: Catalog): Promise<boolean> {
  for await (const path of catalog.pathNames()) if (path !== undefined) return false;
  return true;
}

/** `dir` with one trailing separator: the prefix of the paths below it. */
function below(dir: string): string {
  return dir.endsWith(sep) ? dir : dir + sep;
}

/** True when a path below `root` has a hidden component (the scanner skips those). */
function hiddenBelow(root: string, path: string): boolean {
  return relative(root, path)
    .split(sep)
    .some((part) => part.startsWith('.'));
}
