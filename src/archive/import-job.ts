// Import job (`tapedeck tape import LABEL`): rebuild the catalog's tape
// locations from what a cartridge says about itself, and dock foreign tars.
//
//   - An offline cartridge is first brought back into the library.
//   - Tapedeck archives: every index entry whose object is in the catalog gets
//     its tape location (an item with a disk copy only when the disk file has the
//     same SHA-256). Objects the catalog does not know are recreated from the
//     archive's metadata member with the SAME object ID (title, tags, folder),
//     as archived items.
//   - Tape files without an index that are not aborted Tapedeck archives are
//     docked as foreign tars: their headers are read once and every media file
//     becomes an archived item under a Folders container for the cartridge
//     (`tape://<LABEL>/<path>`).
//   - A cartridge carrying a Tapedeck label member rejoins the archive pool.
// Import is idempotent: an interrupted import is simply run again.

import { stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { BatchOp } from '../catalog/store.js';
import type { CatalogObject, Location, TapeLocation } from '../catalog/types.js';
import { itemIdForPath } from '../catalog/layout.js';
import { dockForeignTar, extentOf, scanTape, seekToFile, toTapeLocation, type IndexEntry } from '../tape/format.js';
import { decodeHeader, TAR_BLOCK } from '../tape/tar.js';
import { isTapeError, type TapeDrive } from '../tape/types.js';
import { mediaTypeOf } from '../media/mediatypes.js';
import { titleFromFileName, UPNP_CLASS } from '../media/probe.js';
import type { JobContext } from './context.js';
import { messageOf } from './errors.js';
import { faultPoint } from './faults.js';
import { isMetaPath, LABEL_MEMBER, type ArchiveMeta, type ArchiveMetaItem, type CartridgeRecord, type LabelContent } from './pool.js';
import { MemberReader } from './tapeio.js';
import { hashFile } from '../util/hash.js';

export interface ImportResult {
  label: string;
  pool: boolean;
  tapeFiles: number;
  /** Index entries of Tapedeck archives (metadata members excluded). */
  indexed: number;
  /** Known items that got their tape location. */
  attached: number;
  /** Known items whose tape location was already right. */
  unchanged: number;
  /** Items recreated from archive metadata. */
  recreated: number;
  /** Items created from docked foreign tars. */
  docked: number;
  /** Entries not used, with why. */
  skipped: { path: string; reason: string }[];
  foreignTapeFiles: number[];
}

export async function runImport(ctx: JobContext): Promise<Record<string, unknown>> {
  const results: ImportResult[] = [];
  ctx.job.progress.itemsTotal = ctx.job.targets.length;
  ctx.job.progress.itemsDone = 0;
  await ctx.save();
  for (const [k, label] of ctx.job.targets.entries()) {
    ctx.checkpoint();
    // safe point between cartridges: playback may take the drive (importCartridge mounts again)
    if (k > 0) await ctx.yieldToPlayback();
    results.push(await importCartridge(ctx, label));
    ctx.itemDone();
    await ctx.save();
  }
  return { cartridges: results };
}

const sameTape = (a: TapeLocation | undefined, b: TapeLocation) =>
  !!a && a.label === b.label && a.block === b.block && a.offset === b.offset && a.sha256 === b.sha256 && a.size === b.size;

async function importCartridge(ctx: JobContext, label: string): Promise<ImportResult> {
  const w = await ctx.drives.where(label);
  if (w.where === 'offline') {
    ctx.activity(`bringing ${label} back into the library`);
    await ctx.library.changer.importCartridge(label);
  }
  const drive = await ctx.drives.mount(label);
  ctx.activity(`reading the indexes of ${label}`);
  const scan = await scanTape(drive);
  const st = await drive.status();
  const bs = st.blockSize;
  const reader = new MemberReader(drive, bs, label, ctx.tuning.reader);
  const res: ImportResult = { label, pool: false, tapeFiles: scan.tapeFiles, indexed: 0, attached: 0, unchanged: 0, recreated: 0, docked: 0, skipped: [], foreignTapeFiles: [] };

  // Metadata and label members.
  const metas = new Map<string, ArchiveMetaItem>();
  const entries: IndexEntry[] = [];
  for (const e of scan.entries) {
    if (e.path === LABEL_MEMBER) {
      const l = await readJson<LabelContent>(reader, e);
      if (l?.format === 'tapedeck-label') res.pool = true;
    } else if (isMetaPath(e.path)) {
      const m = await readJson<ArchiveMeta>(reader, e);
      if (m?.format === 'tapedeck-archive-meta' && Array.isArray(m.items)) for (const it of m.items) if (it?.objectId) metas.set(it.objectId, it);
    } else entries.push(e);
  }
  res.indexed = entries.length;
  ctx.job.progress.bytesTotal += entries.length;

  // Last entry per object wins (a later archive of the same object is newer).
  const byObject = new Map<string, IndexEntry[]>();
  for (const e of entries) {
    if (!e.objectId) continue;
    if (!byObject.has(e.objectId)) byObject.set(e.objectId, []);
    byObject.get(e.objectId)!.push(e);
  }
  const upserts: CatalogObject[] = [];
  let extra: BatchOp[] = [];
  const flush = async () => {
    if (upserts.length || extra.length) await ctx.catalog.apply({ upserts: upserts.splice(0), extraOps: extra.splice(0) });
  };
  let n = 0;
  for (const [objectId, list] of byObject) {
    ctx.checkpoint();
    const latest = list[list.length - 1];
    const obj = await ctx.catalog.get(objectId);
    if (obj && !obj.container && obj.id === objectId) {
      const loc: Location = obj.location ?? {};
      if (list.some((e) => sameTape(loc.tape, toTapeLocation(e, label)))) res.unchanged++;
      else if (loc.tape && list.every((e) => e.sha256 !== loc.tape!.sha256)) {
        // The catalog knows a different copy (a newer archive on another cartridge): keep it.
        res.skipped.push({ path: latest.path, reason: `catalog holds another copy of ${objectId} on ${loc.tape.label}` });
      } else if (loc.tape) res.unchanged++;
      else if (loc.disk) {
        // The disk copy may have changed since the archive: attach only an identical copy.
        const sha = await hashFile(loc.disk.path).catch(() => undefined);
        const match = [...list].reverse().find((e) => e.sha256 === sha && e.size === loc.disk!.size);
        if (match) {
          await ctx.catalog.setLocation(objectId, { ...loc, tape: toTapeLocation(match, label) });
          res.attached++;
        } else res.skipped.push({ path: latest.path, reason: `disk copy of ${objectId} differs from the tape copies` });
      } else {
        await ctx.catalog.setLocation(objectId, { ...loc, tape: toTapeLocation(latest, label) });
        res.attached++;
      }
    } else if (!obj) {
      const meta = metas.get(objectId);
      const item = meta ? await fromMeta(meta, latest, label) : synthetic(label, latest, objectId.startsWith('i') && !objectId.includes('$') ? objectId : undefined);
      if (!item) {
        res.skipped.push({ path: latest.path, reason: 'not a media file' });
        continue;
      }
      upserts.push(item.object);
      if (item.pathEntry) extra.push(ctx.catalog.pathOp(item.object.origPath!, item.pathEntry));
      if (meta) res.recreated++;
      else res.docked++;
    } else res.skipped.push({ path: latest.path, reason: `${objectId} is not an item` });
    ctx.addBytes(1);
    if (++n % 200 === 0) {
      await flush();
      faultPoint('import:mid');
    }
  }
  await flush();

  // Tape files without an index: aborted Tapedeck archives are skipped, anything else is docked.
  for (const f of scan.unindexed) {
    ctx.checkpoint();
    if (await isTapedeckTar(drive, f)) {
      res.skipped.push({ path: `tape file ${f}`, reason: 'incomplete Tapedeck archive (no index)' });
      continue;
    }
    ctx.activity(`docking tape file ${f} of ${label}`);
    let dock;
    try {
      dock = await dockForeignTar(drive, { tapeFile: f, label });
    } catch (err) {
      if (!isTapeError(err)) throw err;
      res.skipped.push({ path: `tape file ${f}`, reason: `not a readable tar: ${messageOf(err)}` });
      continue;
    }
    res.foreignTapeFiles.push(f);
    for (const s of dock.skipped) res.skipped.push(s);
    for (const e of dock.entries) {
      const item = synthetic(label, e);
      if (!item) {
        res.skipped.push({ path: e.path, reason: 'not a media file' });
        continue;
      }
      const existing = await ctx.catalog.get(item.object.id);
      if (existing?.location?.tape && sameTape(existing.location.tape, item.object.location!.tape!)) {
        res.unchanged++;
        continue;
      }
      upserts.push(item.object);
      res.docked++;
      if (upserts.length >= 200) await flush();
    }
    await flush();
  }

  // The cartridge record: a labelled tape rejoins the pool.
  const prev = await ctx.pool.get(label);
  const rec: CartridgeRecord = { ...(prev ?? { label, pool: false }), label, pool: res.pool || prev?.pool === true, updated: new Date().toISOString() };
  if (bs) rec.blockSize = bs;
  if (st.capacityBytes !== undefined) rec.capacityBytes = st.capacityBytes;
  if (st.remainingBytes !== undefined) {
    rec.remainingBytes = st.remainingBytes;
    if (rec.capacityBytes !== undefined) rec.usedBytes = rec.capacityBytes - st.remainingBytes;
  }
  if (res.pool && !prev?.labelled) rec.labelled = new Date().toISOString();
  await ctx.pool.put(rec);
  return res;
}

async function readJson<T>(reader: MemberReader, e: IndexEntry): Promise<T | undefined> {
  if (e.size > 64 << 20) return undefined;
  const parts: Buffer[] = [];
  const h = createHash('sha256');
  for await (const c of reader.read(extentOf(e))) {
    parts.push(Buffer.from(c));
    h.update(c);
  }
  if (h.digest('hex') !== e.sha256) return undefined;
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/** First tar header of a tape file names a `.tapedeck/` member: a Tapedeck archive (label or aborted). */
async function isTapedeckTar(drive: TapeDrive, tapeFile: number): Promise<boolean> {
  try {
    await seekToFile(drive, tapeFile);
    const r = await drive.readBlocks(1);
    if (r.data.length < TAR_BLOCK) return false;
    const h = decodeHeader(r.data.subarray(0, TAR_BLOCK));
    return !!h && isMetaPath(h.name);
  } catch (err) {
    if (isTapeError(err)) return false;
    throw err;
  }
}

interface NewItem {
  object: CatalogObject;
  pathEntry?: { id: string; size: number; mtime: number; gen: number; archived: boolean };
}

/** An archived item recreated from the archive's metadata (same object ID, title, tags, folder). */
async function fromMeta(meta: ArchiveMetaItem, e: IndexEntry, label: string): Promise<NewItem | undefined> {
  const tape = toTapeLocation(e, label);
  if (!meta.origPath || !meta.mediaRoot) return synthetic(label, e, meta.objectId);
  const object: CatalogObject = {
    id: meta.objectId,
    parentId: '',
    container: false,
    upnpClass: meta.upnpClass,
    title: meta.title,
    origPath: meta.origPath,
    mediaRoot: meta.mediaRoot,
    location: { tape },
  };
  if (meta.relPath !== undefined) object.relPath = meta.relPath;
  if (meta.kind !== undefined) object.kind = meta.kind;
  if (meta.meta !== undefined) object.meta = meta.meta;
  if (meta.res !== undefined) object.res = { ...meta.res, size: e.size };
  if (meta.mtime !== undefined) object.mtime = meta.mtime;
  // The original file may still be there, unchanged: then the item is on disk and tape.
  let pathEntry: NewItem['pathEntry'] = { id: meta.objectId, size: e.size, mtime: meta.mtime ?? e.mtime * 1000, gen: 0, archived: true };
  const st = meta.origPath.startsWith('/') ? await stat(meta.origPath).catch(() => undefined) : undefined;
  if (st?.isFile() && st.size === e.size && (await hashFile(meta.origPath).catch(() => undefined)) === e.sha256) {
    const mtime = Math.trunc(st.mtimeMs);
    object.location = { disk: { path: meta.origPath, size: st.size, mtime }, tape };
    pathEntry = { id: meta.objectId, size: st.size, mtime, gen: 0, archived: false };
  }
  if (!meta.origPath.startsWith('/')) pathEntry = undefined;
  return { object, pathEntry };
}

/** An archived item known only from a tar member: kind, type and title from its name. */
function synthetic(label: string, e: IndexEntry, id?: string): NewItem | undefined {
  const type = mediaTypeOf(e.path);
  if (!type) return undefined;
  const root = `tape://${label}`;
  const rel = e.path.split('/').filter((p) => p !== '' && p !== '.' && p !== '..').join('/');
  if (!rel) return undefined;
  const origPath = `${root}/${rel}`;
  const object: CatalogObject = {
    id: id ?? itemIdForPath(origPath),
    parentId: '',
    container: false,
    upnpClass: UPNP_CLASS[type.kind],
    title: titleFromFileName(rel),
    kind: type.kind,
    meta: {},
    res: { mime: type.mime, size: e.size },
    origPath,
    mediaRoot: root,
    relPath: rel,
    mtime: e.mtime * 1000,
    location: { tape: toTapeLocation(e, label) },
  };
  return { object };
}
