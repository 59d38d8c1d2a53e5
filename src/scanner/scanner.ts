// Library scanner: walks the media directories, reads metadata of new or changed
// files and writes the catalog in awaited batches.
//
// Incremental: every file's (size, mtime) is kept under p/<path>; an unchanged
// file is not read again. Deleted files are found by a mark-and-sweep with a
// scan generation number stored in those entries, so memory stays bounded
// whatever the library size (no set of every path seen is kept).

import { opendir, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { BatchOp } from '../catalog/store.js';
import type { Catalog, PathEntry } from '../catalog/catalog.js';
import type { CatalogObject, ProbeResult } from '../catalog/types.js';
import { itemIdForPath } from '../catalog/layout.js';
import { mediaTypeOf } from '../media/mediatypes.js';
import { probe as defaultProbe } from '../media/probe.js';
import { hashFile } from '../util/hash.js';
import { isInside } from '../util/inside.js';

export interface ScanProgress {
  seen: number; // media files found so far
  probed: number; // files whose metadata was read
  unchanged: number;
  removed: number;
  failed: number;
  /** Items whose disk copy vanished but that stay in the library, served from their tape copy. */
  diskCopiesGone?: number;
  elapsedMs: number;
  rate: number; // files per second
  done: boolean;
}

export interface ScanOptions {
  roots: string[];
  probe?: (path: string) => Promise<ProbeResult | undefined>;
  /** ffprobe binary for the default prober: a path, 'off', or undefined to look it up on PATH. */
  ffprobe?: string;
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

/** Files of one directory whose stat calls are in flight together (one round trip, not 64). */
const STAT_BATCH = 64;

/**
 * Media files under `root`, depth first; hidden entries and symlinks are skipped. Directories that
 * cannot be read are logged and added to `unreadable`: what the catalog knows under them is kept,
 * not swept as deleted.
 */
async function* walk(root: string, unreadable: string[], log?: ScanOptions['log']): AsyncGenerator<Found> {
  const stack = [root];
  const statAll = async (paths: string[]): Promise<Found[]> => {
    const stats = await Promise.all(paths.map((p) => stat(p).catch(() => undefined))); // undefined: vanished since readdir
    const out: Found[] = [];
    stats.forEach((st, i) => {
      if (st) out.push({ path: paths[i], root, size: st.size, mtime: Math.trunc(st.mtimeMs) });
    });
    return out;
  };
  while (stack.length) {
    const dir = stack.pop()!;
    const subdirs: string[] = [];
    let files: string[] = [];
    try {
      const handle = await opendir(dir, { bufferSize: 256 });
      for await (const ent of handle) {
        if (ent.name.startsWith('.')) continue;
        const p = join(dir, ent.name);
        if (ent.isDirectory()) subdirs.push(p);
        else if (ent.isFile() && mediaTypeOf(p)) {
          files.push(p);
          if (files.length >= STAT_BATCH) {
            yield* await statAll(files);
            files = [];
          }
        }
      }
    } catch (err) {
      log?.warn({ dir, err: (err as Error).message }, 'cannot read directory; what the catalog holds under it is kept');
      unreadable.push(dir);
    }
    yield* await statAll(files);
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
    title: pr.title,
    kind: pr.kind,
    meta: pr.meta,
    res: { ...pr.res, size: f.size },
    location: { disk: { path: f.path, size: f.size, mtime: f.mtime } },
    origPath: f.path,
    mediaRoot: f.root,
    relPath: relative(f.root, f.path),
    mtime: f.mtime,
  };
  // A changed file invalidates any tape copy; an unchanged identity keeps nothing else either.
  void previous;
  return item;
}

export async function scan(catalog: Catalog, opts: ScanOptions): Promise<ScanProgress> {
  const ffprobe = opts.ffprobe === 'off' ? false : opts.ffprobe;
  const probe = opts.probe ?? ((p: string) => defaultProbe(p, { ffprobe }));
  const batchSize = opts.batchSize ?? 250;
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const unique = [...new Set(opts.roots.map((r) => resolve(r)))];
  // a root inside another one is walked as part of it (once: a file must not be read twice)
  const roots = unique.filter((r) => {
    const outer = unique.find((o) => o !== r && isInside(o, r));
    if (outer) opts.log?.warn({ root: r, inside: outer }, `media directory ${r} is inside ${outer}; it is scanned once, as part of ${outer}`);
    return !outer;
  });
  const unreadable: string[] = [];
  const gen = (Number(await catalog.getMeta('scanGen')) || 0) + 1;
  const started = Date.now();
  const progress: ScanProgress = { seen: 0, probed: 0, unchanged: 0, removed: 0, failed: 0, elapsedMs: 0, rate: 0, done: false };
  let lastReport = 0;
  const report = (force = false) => {
    const now = Date.now();
    progress.elapsedMs = now - started;
    progress.rate = progress.elapsedMs > 0 ? Math.round((progress.seen * 1000) / progress.elapsedMs) : 0;
    if (force || now - lastReport >= (opts.progressIntervalMs ?? 500)) {
      lastReport = now;
      opts.onProgress?.({ ...progress });
    }
  };

  let upserts: CatalogObject[] = [];
  let extra: BatchOp[] = [];
  // One batch is written while the next one is gathered: probing never waits for the
  // catalog unless a second batch is full before the first is committed. A probe adds its
  // item and its path entry in the same synchronous step, so both land in one batch.
  let writing: Promise<unknown> = Promise.resolve();
  const flush = async () => {
    await writing; // rethrows a failed batch
    if (!upserts.length && !extra.length) return;
    const u = upserts;
    const e = extra;
    upserts = [];
    extra = [];
    writing = catalog.apply({ upserts: u, extraOps: e });
    writing.catch(() => undefined); // handled by the next await of `writing`
  };

  // Bounded pool of probes in flight.
  const inflight = new Set<Promise<void>>();
  const handle = async (f: Found, prev: PathEntry | undefined) => {
    let pr: ProbeResult | undefined;
    let denied = false;
    try {
      pr = await probe(f.path);
    } catch (err) {
      denied = ['EACCES', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '');
      opts.log?.warn({ path: f.path, err: (err as Error).message }, 'cannot read media file');
    }
    if (!pr) {
      progress.failed++;
      // Remember it so a damaged file is not re-read on every scan, but keep no item. A file we
      // may not read is tried again next time: fixing its permissions changes neither size nor mtime.
      extra.push(catalog.pathOp(f.path, { id: '', size: f.size, mtime: f.mtime, gen, ...(denied ? { denied: true } : {}) }));
      if (prev?.id) await catalog.apply({ removes: [prev.id] });
      return;
    }
    progress.probed++;
    const item = itemFromProbe(f, pr);
    if (prev?.archived && prev.id === item.id) {
      // the file came back where an archived item's disk copy was: when it holds the bytes of
      // the tape copy, the item lives on disk and tape again (the tape copy is not forgotten)
      const tape = (await catalog.get(item.id))?.location?.tape;
      if (tape && tape.size === f.size && (await hashFile(f.path).catch(() => undefined)) === tape.sha256) item.location = { ...item.location, tape };
    }
    upserts.push(item);
    extra.push(catalog.pathOp(f.path, { id: item.id, size: f.size, mtime: f.mtime, gen }));
  };

  // Files are looked up in the scanner map in chunks (one getMany), not one await per file.
  const processChunk = async (chunk: Found[]) => {
    const prevs = await catalog.getPaths(chunk.map((f) => f.path));
    for (let i = 0; i < chunk.length; i++) {
      const f = chunk[i];
      const prev = prevs[i];
      progress.seen++;
      if (prev && prev.size === f.size && prev.mtime === f.mtime && !prev.archived && !prev.denied) {
        progress.unchanged++;
        extra.push(catalog.pathOp(f.path, { ...prev, gen }));
      } else {
        const p = handle(f, prev).finally(() => inflight.delete(p));
        inflight.add(p);
        if (inflight.size >= concurrency) await Promise.race(inflight);
      }
      if (upserts.length + extra.length >= batchSize) await flush();
      report();
    }
  };
  let chunk: Found[] = [];
  for (const root of roots) {
    for await (const f of walk(root, unreadable, opts.log)) {
      if (opts.signal?.aborted) throw new Error('scan aborted');
      chunk.push(f);
      if (chunk.length >= 128) {
        await processChunk(chunk);
        chunk = [];
      }
    }
  }
  await processChunk(chunk);
  await Promise.all(inflight);
  await flush();
  await writing;

  // Sweep: entries not seen in this generation are deleted files (unless the
  // disk copy was removed on purpose because the item lives on tape). An item that
  // also has a verified tape copy loses only its disk location: it stays in the
  // library, served from tape, as if it had been archived.
  let removes: string[] = [];
  let dels: BatchOp[] = [];
  const underUnreadable = (path: string) => unreadable.some((d) => isInside(d, path));
  for await (const [path, entry] of catalog.paths()) {
    if (entry.gen === gen || entry.archived) continue;
    if (underUnreadable(path)) continue; // not seen because its directory could not be read: not deleted
    const item = entry.id ? await catalog.get(entry.id) : undefined;
    if (item?.location?.tape) {
      const { tape, stub } = item.location;
      await catalog.setLocation(item.id, { tape, ...(stub ? { stub } : {}) }, [catalog.pathOp(path, { ...entry, archived: true })]);
      opts.log?.warn({ path, id: item.id, label: tape.label }, `disk copy ${path} is gone; the item stays, served from its tape copy on ${tape.label}`);
      progress.diskCopiesGone = (progress.diskCopiesGone ?? 0) + 1;
      continue;
    }
    if (entry.id) removes.push(entry.id);
    dels.push(catalog.pathOp(path, undefined));
    progress.removed++;
    if (dels.length >= batchSize) {
      await catalog.apply({ removes, extraOps: dels });
      removes = [];
      dels = [];
    }
  }
  if (dels.length) await catalog.apply({ removes, extraOps: dels });
  await catalog.setMeta('scanGen', String(gen));
  progress.done = true;
  report(true);
  return progress;
}
