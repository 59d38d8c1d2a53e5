// Archive job: copy items to tape, verify, switch the catalog, free the disk.
//
// Per batch (one tar on one cartridge), each step recorded before the next:
//   planned   items and cartridge chosen
//   writing   tape file number at end of data recorded; tar + index being written
//   written   index entries recorded (where every member is)
//   verified  every member read back, SHA-256 equal to what was written
// then per item:
//   stub written (temp + fsync + rename), then ONE catalog batch sets the location
//   { tape, stub } (or { disk, tape } with keepDisk), marks the scanner entry
//   archived and the item 'committed'; then the disk copy is removed and the
//   item is 'done'.
// The catalog points at the disk copy until the tape copy is verified, and at
// the verified tape copy before the disk copy goes: every item is readable from
// what the catalog says at every instant.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { basename, dirname, sep } from 'node:path';
import type { BatchOp } from '../catalog/store.js';
import type { CatalogObject, TapeLocation } from '../catalog/types.js';
import { readIndex, toTapeLocation, writeArchive, type ArchiveMember, type IndexEntry } from '../tape/format.js';
import { isTapeError, type TapeDrive } from '../tape/types.js';
import type { JobContext } from './context.js';
import { ArchiveError } from './errors.js';
import { faultPoint } from './faults.js';
import type { JobBatch, JobItem } from './jobs.js';
import { archiveBytes, metaItemOf, metaMember, META_OBJECT, type CartridgeRecord } from './pool.js';
import { MemberReader, prefetch } from './tapeio.js';
import { hashFile } from '../util/hash.js';
import { formatBytes } from '../util/units.js';
import { computeStubRanges, stubPath, syncDir, writeStub } from './stubs.js';
import { ownPaths } from '../util/own-paths.js';
import { ArtMaker } from '../art/maker.js';
import { storeSubtitles, subtitleStore } from '../media/subtitles.js';

/** Last verified tape copy of every item ever archived: lets an unchanged file reuse it. */
export const HISTORY = 'ta/';

export async function runArchive(ctx: JobContext): Promise<Record<string, unknown>> {
  const items = await ctx.jobs.items(ctx.job.id);
  const batches = await ctx.jobs.batches(ctx.job.id);
  const run = new ArchiveRun(ctx, items, batches);
  return run.run();
}

class ArchiveRun {
  private readonly bySeq: Map<number, JobItem>;
  private readonly used = new Set<string>();
  private reused = 0;
  /** The last tar was ended early because playback wants the drive: yield once it is recorded. */
  private cutShort = false;
  private art?: ArtMaker;

  constructor(
    private readonly ctx: JobContext,
    private readonly items: JobItem[],
    private readonly batches: JobBatch[],
  ) {
    this.bySeq = new Map(items.map((i) => [i.seq, i]));
  }

  async run(): Promise<Record<string, unknown>> {
    const { ctx } = this;
    ctx.job.progress.itemsTotal = this.items.length;
    ctx.job.progress.itemsDone = this.items.filter((i) => ['done', 'skipped', 'failed'].includes(i.phase)).length;
    // Item bytes, each item once: done = verified (or committed), written = on tape.
    const batchPhase = new Map(this.batches.flatMap((b) => b.items.map((s) => [s, b.phase] as const)));
    const sum = (f: (i: JobItem) => boolean) => this.items.reduce((n, i) => n + (f(i) ? i.size ?? 0 : 0), 0);
    const verified = (i: JobItem) => ['done', 'committed'].includes(i.phase) || (i.phase === 'batched' && batchPhase.get(i.seq) === 'verified');
    ctx.job.progress.bytesTotal = sum((i) => !['skipped', 'failed'].includes(i.phase));
    ctx.job.progress.bytesDone = sum(verified);
    ctx.job.progress.bytesWritten = sum((i) => verified(i) || (i.phase === 'batched' && batchPhase.get(i.seq) === 'written'));
    await ctx.save();

    // Batches left by an earlier attempt first: they may hold verified copies.
    for (const b of this.batches) if (b.phase !== 'done') await this.processBatch(b);
    for (const item of this.items) if (item.phase === 'committed') await this.removeDisk(item);

    for (;;) {
      ctx.checkpoint();
      await this.classify();
      const pending = this.items.filter((i) => i.phase === 'pending');
      if (pending.length === 0) break;
      const batch = await this.plan(pending);
      if (!batch) break;
      await this.processBatch(batch);
    }
    const count = (p: string) => this.items.filter((i) => i.phase === p).length;
    return {
      archived: count('done'),
      skipped: count('skipped'),
      failed: count('failed'),
      reused: this.reused,
      cartridges: [...this.used].sort(),
      batches: this.batches.length,
    };
  }

  /** Decide what each new item needs; reuse a verified tape copy when the file did not change. */
  private async classify(): Promise<void> {
    const { ctx } = this;
    for (const item of this.items) {
      if (item.phase !== 'pending' || item.src !== undefined) continue;
      ctx.checkpoint();
      const obj = await ctx.catalog.get(item.id);
      if (!obj || obj.container) {
        ctx.fail(item, 'no longer in the catalog', 'NOT_FOUND');
        await this.finishItem(item);
        continue;
      }
      const loc = obj.location ?? {};
      if (!loc.disk) {
        item.phase = loc.tape ? 'skipped' : 'failed';
        item.note = loc.tape ? 'already on tape' : 'no copy on disk';
        if (!loc.tape) ctx.fail(item, item.note);
        await this.finishItem(item);
        continue;
      }
      let st;
      try {
        st = await stat(loc.disk.path);
      } catch {
        ctx.fail(item, `disk copy ${loc.disk.path} is missing`);
        await this.finishItem(item);
        continue;
      }
      if (st.size !== loc.disk.size || Math.trunc(st.mtimeMs) !== loc.disk.mtime) {
        // The catalog describes another version of the file: archive what it describes, or nothing.
        ctx.fail(item, `${loc.disk.path} changed since it was scanned; rescan, then archive it`);
        await this.finishItem(item);
        continue;
      }
      item.src = loc.disk.path;
      item.srcSize = st.size;
      item.srcMtime = Math.trunc(st.mtimeMs);
      if (item.size !== st.size) {
        ctx.job.progress.bytesTotal += st.size - (item.size ?? 0);
        item.size = st.size;
      }
      // A verified copy of the same bytes already on tape: no need to write again.
      const known = loc.tape ?? (await this.history(item.id));
      if (known && known.size === st.size) {
        ctx.activity(`checking ${basename(item.src)} against its tape copy`);
        if ((await hashFile(item.src)) === known.sha256) {
          // already written and verified
          ctx.addWritten(st.size);
          ctx.addBytes(st.size);
          this.reused++;
          this.used.add(known.label);
          await this.commit(item, obj, known);
          continue;
        }
      }
      await ctx.saveItem(item);
    }
  }

  private async history(id: string): Promise<TapeLocation | undefined> {
    const v = await this.ctx.catalog.store.get(HISTORY + id);
    return v === undefined ? undefined : (JSON.parse(v) as TapeLocation);
  }

  /** Choose a cartridge and the items of the next tar. */
  private async plan(pending: JobItem[]): Promise<JobBatch | undefined> {
    const { ctx } = this;
    const candidates: { rec: CartridgeRecord; free: number }[] = [];
    const offline: string[] = [];
    for (const rec of await ctx.pool.list()) {
      if (!rec.pool || rec.full) continue;
      let w;
      try {
        w = await ctx.drives.where(rec.label);
      } catch {
        continue;
      }
      if (w.where === 'offline') {
        offline.push(rec.label);
        continue;
      }
      const free = rec.remainingBytes ?? (rec.capacityBytes !== undefined ? rec.capacityBytes - (rec.usedBytes ?? 0) : ctx.config.tape.capacity);
      candidates.push({ rec, free });
    }
    candidates.sort((a, b) => b.free - a.free || a.rec.label.localeCompare(b.rec.label));
    const objs = new Map<number, CatalogObject>();
    for (const item of pending) {
      const obj = await ctx.catalog.get(item.id);
      if (obj) objs.set(item.seq, obj);
      else {
        ctx.fail(item, 'no longer in the catalog', 'NOT_FOUND');
        await this.finishItem(item);
      }
    }
    const collocate = ctx.job.opts.collocate === true;
    // collocated jobs keep the order they were given (containers together, in play order)
    const todo = pending.filter((i) => i.phase === 'pending').sort(collocate ? (a, b) => a.seq - b.seq : (a, b) => (a.src ?? '').localeCompare(b.src ?? ''));
    if (todo.length === 0) return undefined;
    if (candidates.length === 0) {
      const why = offline.length ? ` (offline: ${offline.join(', ')})` : '';
      throw new ArchiveError('NO_ROOM', `no cartridge of the archive pool has room${why}: label a new one with \`tapedeck tape label\``);
    }
    const groupOf = (i: JobItem) => objs.get(i.seq)?.parentId ?? '';
    let best = candidates[0];
    if (collocate) {
      // The first container goes where it fits whole: the cartridge already holding most of its
      // items (a container archived over several passes stays one mount), then the previous
      // batch's cartridge, then the emptiest.
      const first = groupOf(todo[0]);
      const groupBytes = todo.filter((i) => groupOf(i) === first).reduce((n, i) => n + (i.srcSize ?? 0), 0);
      const fits = candidates.filter((c) => c.free >= groupBytes);
      const held = new Map<string, number>();
      for (const sib of first ? await ctx.catalog.allChildren(first) : []) {
        const label = sib.location?.tape?.label;
        if (label && !sib.container) held.set(label, (held.get(label) ?? 0) + 1);
      }
      const home = fits.filter((c) => held.has(c.rec.label)).sort((a, b) => held.get(b.rec.label)! - held.get(a.rec.label)!)[0];
      const prev = this.batches[this.batches.length - 1]?.label;
      best = home ?? fits.find((c) => c.rec.label === prev) ?? fits[0] ?? best;
    }
    const bs = best.rec.blockSize ?? ctx.config.tape.blockSize;
    const chosen: JobItem[] = [];
    const members: { objectId: string; path: string; size: number }[] = [];
    let metaBytes = 400;
    let bytes = 0;
    for (const [n, item] of todo.entries()) {
      const obj = objs.get(item.seq)!;
      const m = { objectId: item.id, path: memberPath(obj), size: item.srcSize ?? 0 };
      if (collocate && chosen.length > 0 && groupOf(item) !== groupOf(todo[n - 1])) {
        // a new container starts: it goes whole into this tar or into the next one
        const group = todo.slice(n).filter((i) => groupOf(i) === groupOf(item));
        const gBytes = group.reduce((x, i) => x + (i.srcSize ?? 0), 0);
        if (bytes + gBytes > ctx.tuning.maxBatchBytes || chosen.length + group.length > ctx.tuning.maxBatchItems || bytes + gBytes > best.free) break;
      }
      const mb = metaBytes + Buffer.byteLength(JSON.stringify(metaItemOf(obj))) + 1;
      const need = archiveBytes([{ objectId: META_OBJECT, path: '.tapedeck/archive-000000000000000-000000.json', size: mb }, ...members, m], bs);
      const fits = need <= best.free && (chosen.length === 0 || (bytes + m.size <= ctx.tuning.maxBatchBytes && chosen.length < ctx.tuning.maxBatchItems));
      if (!fits) {
        if (chosen.length > 0) break;
        // Does not fit on the emptiest cartridge: no cartridge can take it.
        ctx.fail(item, `${formatBytes(m.size)} (${m.size} bytes) do not fit on any cartridge of the archive pool (most free: ${best.rec.label}, ${formatBytes(best.free)})`, 'NO_ROOM');
        await this.finishItem(item);
        continue;
      }
      chosen.push(item);
      members.push(m);
      metaBytes = mb;
      bytes += m.size;
    }
    if (chosen.length === 0) return undefined;
    const batch: JobBatch = { n: this.batches.length, label: best.rec.label, phase: 'planned', items: chosen.map((i) => i.seq) };
    this.batches.push(batch);
    for (const item of chosen) {
      item.phase = 'batched';
      item.batch = batch.n;
      item.label = batch.label;
    }
    await ctx.saveBatch(batch, chosen.map((i) => ctx.itemOp(i)));
    faultPoint('archive:planned');
    return batch;
  }

  private async processBatch(batch: JobBatch): Promise<void> {
    const { ctx } = this;
    const items = batch.items.map((s) => this.bySeq.get(s)!).filter(Boolean);
    this.used.add(batch.label);
    if (batch.phase === 'planned' || batch.phase === 'writing') {
      ctx.checkpoint();
      const drive = await ctx.drives.mount(batch.label);
      let entries: IndexEntry[] | undefined;
      if (batch.phase === 'writing' && batch.tapeFile !== undefined) {
        entries = await this.findWritten(drive, batch, items);
        // written completely before a crash: its items' bytes are on tape
        if (entries) ctx.addWritten(items.reduce((n, i) => n + (i.size ?? 0), 0));
      }
      if (!entries) {
        // Files that changed since they were planned go back to be looked at again.
        const changed = await this.unchangedOnly(batch, items);
        if (changed) {
          const keep = new Set(batch.items);
          items.splice(0, items.length, ...items.filter((i) => keep.has(i.seq)));
        }
        if (items.length === 0) {
          batch.phase = 'done';
          await ctx.saveBatch(batch);
          return;
        }
        await drive.seekToEod();
        let st = await drive.status();
        if (st.position && st.position.blockInFile > 0) {
          // A tape file left open by a crash: close it so the new tar starts a tape file of its own.
          await drive.writeFilemarks(1);
          st = await drive.status();
        }
        batch.tapeFile = st.position?.fileNumber;
        batch.phase = 'writing';
        await ctx.saveBatch(batch);
        entries = await this.write(drive, batch, items);
        if (!entries) return; // cartridge full: items go back to pending
        faultPoint('archive:after-write');
      }
      batch.entries = entries;
      batch.tapeFile = entries[0]?.tapeFile ?? batch.tapeFile;
      batch.phase = 'written';
      await ctx.saveBatch(batch, [await this.poolUpdate(drive, batch.label)]);
      faultPoint('archive:written');
      if (this.cutShort) {
        this.cutShort = false;
        await ctx.yieldToPlayback();
      }
    }
    if (batch.phase === 'written') {
      ctx.checkpoint();
      await this.verify(batch);
      batch.phase = 'verified';
      await ctx.saveBatch(batch);
      faultPoint('archive:verified');
    }
    if (batch.phase === 'verified') {
      const byId = new Map((batch.entries ?? []).map((e) => [e.objectId, e]));
      for (const item of items) {
        ctx.checkpoint();
        if (item.phase === 'batched') {
          const entry = byId.get(item.id);
          const obj = await ctx.catalog.get(item.id);
          if (!entry) ctx.fail(item, `not in the index of batch ${batch.n}`);
          else if (!obj) ctx.fail(item, 'no longer in the catalog', 'NOT_FOUND');
          else {
            await this.commit(item, obj, toTapeLocation(entry, batch.label));
            continue;
          }
          await this.finishItem(item);
        } else if (item.phase === 'committed') await this.removeDisk(item);
      }
      batch.phase = 'done';
      await ctx.saveBatch(batch);
    }
  }

  /** Drop items whose source changed since planning from the batch (they are classified again). True when any was dropped. */
  private async unchangedOnly(batch: JobBatch, items: JobItem[]): Promise<boolean> {
    const { ctx } = this;
    const ops = [];
    for (const item of items) {
      const st = item.src ? await stat(item.src).catch(() => undefined) : undefined;
      if (st && st.size === item.srcSize && Math.trunc(st.mtimeMs) === item.srcMtime) continue;
      item.phase = 'pending';
      for (const k of ['src', 'srcSize', 'srcMtime', 'batch', 'label'] as const) delete item[k];
      ops.push(ctx.itemOp(item));
    }
    if (ops.length === 0) return false;
    const dropped = new Set(items.filter((i) => i.phase === 'pending').map((i) => i.seq));
    batch.items = batch.items.filter((s) => !dropped.has(s));
    await ctx.saveBatch(batch, ops);
    return true;
  }

  /** After a crash while writing: adopt the archive if it was completed (its index is on tape). */
  private async findWritten(drive: TapeDrive, batch: JobBatch, items: JobItem[]): Promise<IndexEntry[] | undefined> {
    await drive.seekToEod();
    const st = await drive.status();
    const eodFile = st.position?.fileNumber ?? -1;
    if (batch.tapeFile === undefined || eodFile < batch.tapeFile + 2) return undefined;
    try {
      const idx = await readIndex(drive, batch.tapeFile + 1);
      const ids = idx.entries.map((e) => e.objectId);
      const want = [META_OBJECT, ...items.map((i) => i.id)];
      if (idx.tapeFile === batch.tapeFile && ids.length === want.length && ids.every((id, k) => id === want[k])) {
        this.ctx.log.info({ job: this.ctx.job.id, label: batch.label, tapeFile: batch.tapeFile }, 'archive: adopting the archive written before the restart');
        return idx.entries;
      }
    } catch (err) {
      if (!isTapeError(err)) throw err;
    }
    return undefined;
  }

  private async write(drive: TapeDrive, batch: JobBatch, items: JobItem[]): Promise<IndexEntry[] | undefined> {
    const { ctx } = this;
    const objs: CatalogObject[] = [];
    const members: ArchiveMember[] = [];
    for (const item of items) {
      const obj = await ctx.catalog.get(item.id);
      if (!obj) throw new ArchiveError('FAILED', `item ${item.id} vanished from the catalog while archiving`);
      objs.push(obj);
      const src = item.src!;
      members.push({
        objectId: item.id,
        path: memberPath(obj),
        size: item.srcSize ?? 0,
        mtime: item.srcMtime,
        open: () => createReadStream(src, { highWaterMark: 4 << 20, signal: ctx.signal }),
      });
    }
    members.unshift(metaMember(ctx.job.id, batch.n, objs));
    ctx.activity(`writing ${items.length} item(s) to ${batch.label}`);
    // The tar stream also carries headers, padding and the batch's meta member: count item
    // bytes only (the stream bytes, capped at the items' total).
    const itemBytes = items.reduce((n, i) => n + (i.srcSize ?? 0), 0);
    let last = 0;
    let ends = 0;
    try {
      const index = await writeArchive(drive, members, {
        label: batch.label,
        chunkBytes: ctx.tuning.writeChunkBytes,
        onProgress: (bytes) => {
          const now = Math.min(bytes, itemBytes);
          ctx.addWritten(now - last);
          last = now;
          faultPoint('archive:mid-write');
        },
        // safe point: the end of a tar member (the tar is ended there, the rest waits for another
        // batch), after at least one item (the first member is the batch's meta member)
        stopAfter: () => ++ends > 1 && (ctx.preemptRequested() || ctx.pauseRequested()),
      });
      if (index.entries.length < members.length) await this.trimBatch(batch, items, index.entries);
      return index.entries;
    } catch (err) {
      ctx.addWritten(-last);
      if (!isTapeError(err, 'EOM')) throw err;
      // The cartridge is full: the partial tar has no index and is never referenced.
      ctx.log.warn({ job: ctx.job.id, label: batch.label }, 'archive: cartridge full, choosing another one');
      const rec = (await ctx.pool.get(batch.label)) ?? { label: batch.label, pool: true, updated: '' };
      const ops: BatchOp[] = [ctx.pool.op({ ...rec, full: true, remainingBytes: 0, updated: new Date().toISOString() })];
      for (const item of items) {
        item.phase = 'pending';
        delete item.batch;
        delete item.label;
        ops.push(ctx.itemOp(item));
      }
      batch.phase = 'done';
      batch.items = [];
      await ctx.saveBatch(batch, ops);
      return undefined;
    }
  }

  /** The tar was ended early (pre-emption): the items it does not hold go back to pending. */
  private async trimBatch(batch: JobBatch, items: JobItem[], entries: IndexEntry[]): Promise<void> {
    const { ctx } = this;
    const written = new Set(entries.map((e) => e.objectId));
    const ops: BatchOp[] = [];
    for (const item of items) {
      if (written.has(item.id)) continue;
      item.phase = 'pending';
      delete item.batch;
      delete item.label;
      ops.push(ctx.itemOp(item));
    }
    batch.items = batch.items.filter((s) => written.has(this.bySeq.get(s)?.id ?? ''));
    items.splice(0, items.length, ...items.filter((i) => written.has(i.id)));
    ctx.log.info({ job: ctx.job.id, label: batch.label, written: items.length, back: ops.length }, `archive: tar ended early (${ctx.pauseRequested() ? 'job paused' : 'playback needs the drive'}); the other items go to the next batch`);
    this.cutShort = true;
    await ctx.saveBatch(batch, ops);
  }

  private async poolUpdate(drive: TapeDrive, label: string): Promise<BatchOp> {
    const { ctx } = this;
    const st = await drive.status();
    const rec = (await ctx.pool.get(label)) ?? { label, pool: true, updated: '' };
    const next: CartridgeRecord = { ...rec, updated: new Date().toISOString() };
    if (st.blockSize) next.blockSize = st.blockSize;
    if (st.capacityBytes !== undefined) next.capacityBytes = st.capacityBytes;
    if (st.remainingBytes !== undefined) {
      next.remainingBytes = st.remainingBytes;
      if (next.capacityBytes !== undefined) next.usedBytes = next.capacityBytes - st.remainingBytes;
    } else if (st.position && st.blockSize) {
      // Backend without a remaining-capacity report: count what we wrote.
      next.usedBytes = (st.position.block - st.position.fileNumber) * st.blockSize;
      if (next.capacityBytes !== undefined) next.remainingBytes = Math.max(0, next.capacityBytes - next.usedBytes);
    }
    return ctx.pool.op(next);
  }

  private async verify(batch: JobBatch): Promise<void> {
    const { ctx } = this;
    const entries = [...(batch.entries ?? [])].sort((a, b) => a.firstBlock - b.firstBlock || a.offset - b.offset);
    if (entries.length === 0) return;
    const open = async () => {
      const r = new MemberReader(await ctx.drives.mount(batch.label), entries[0].blockSize, batch.label, ctx.tuning.reader);
      await r.check();
      ctx.activity(`verifying ${entries.length} member(s) on ${batch.label}`);
      return r;
    };
    let reader = await open();
    let first = true;
    for (const [k, e] of entries.entries()) {
      ctx.checkpoint();
      // safe point between members: playback may take the drive; mount again after it
      if (k > 0 && (await ctx.yieldToPlayback())) reader = await open();
      const h = createHash('sha256');
      for await (const chunk of prefetch(reader.read(e))) {
        h.update(chunk);
        if (e.objectId !== META_OBJECT) ctx.addBytes(chunk.length);
      }
      const got = h.digest('hex');
      if (got !== e.sha256) {
        throw new ArchiveError('VERIFY', `${batch.label}: read-back of ${e.path} does not match (SHA-256 ${got}, written ${e.sha256}); disk copies are kept`, { label: batch.label });
      }
      if (first && e.objectId !== META_OBJECT) {
        first = false;
        faultPoint('archive:mid-verify');
      }
    }
  }

  /** Tape copy verified: stub, switch the catalog, then free the disk. */
  private async commit(item: JobItem, obj: CatalogObject, tape: TapeLocation): Promise<void> {
    const { ctx } = this;
    const src = item.src!;
    const disk = obj.location?.disk;
    let st;
    try {
      st = await stat(src);
    } catch {
      st = undefined;
    }
    if (!disk || disk.path !== src || !st || st.size !== item.srcSize || Math.trunc(st.mtimeMs) !== item.srcMtime || st.size !== tape.size) {
      ctx.fail(item, `${src} changed while it was being archived; it stays on disk`);
      await this.finishItem(item);
      return;
    }
    const history: BatchOp = { type: 'put', key: HISTORY + item.id, value: JSON.stringify(tape) };
    if (ctx.job.opts.keepDisk) {
      item.phase = 'done';
      ctx.itemDone();
      await ctx.catalog.setLocation(item.id, { disk, tape }, [ctx.itemOp(item), history]);
      await ctx.save();
      return;
    }
    ctx.activity(`committing ${basename(src)}`);
    // art is made while the file is on disk (an item scanned before art existed, or with art off
    // then); it stays in the data directory's art store with the stub
    if ((ctx.config.art && !obj.art) || (obj.kind === 'video' && !obj.subtitles)) await this.addExtras(obj, src);
    const ranges = await computeStubRanges(src, obj.res, ctx.stubOpts);
    const stub = await writeStub(src, ranges, stubPath(ctx.config.dataDir, item.id));
    faultPoint('archive:after-stub');
    const prev = await ctx.catalog.getPath(src);
    const entry = { ...(prev ?? { id: item.id, size: st.size, mtime: Math.trunc(st.mtimeMs), gen: 0 }), archived: true };
    item.phase = 'committed';
    await ctx.catalog.setLocation(item.id, { tape, stub }, [ctx.catalog.pathOp(src, entry), ctx.itemOp(item), history]);
    await ctx.save();
    faultPoint('archive:committed');
    await this.removeDisk(item);
  }

  /** Art and sidecar subtitles an item lacks, kept in the data directory before its disk copy goes. */
  private async addExtras(obj: CatalogObject, src: string): Promise<void> {
    const { ctx } = this;
    try {
      let art;
      if (ctx.config.art && !obj.art) {
        this.art ??= new ArtMaker({ dataDir: ctx.config.dataDir, ffprobe: ctx.config.ffprobe, log: ctx.log });
        art = await this.art.forFile(src);
      }
      const subtitles = obj.kind === 'video' && !obj.subtitles ? await storeSubtitles(subtitleStore(ctx.config.dataDir), src, ctx.log) : undefined;
      const now = art || subtitles ? await ctx.catalog.get(obj.id) : undefined;
      if (now && !now.container) await ctx.catalog.apply({ upserts: [{ ...now, ...(art ? { art } : {}), ...(subtitles ? { subtitles } : {}) }] });
    } catch (err) {
      ctx.log.warn({ path: src, err: (err as Error).message }, 'cannot keep art or subtitles before archiving; the item is archived without them');
    }
  }

  private async removeDisk(item: JobItem): Promise<void> {
    const { ctx } = this;
    const src = item.src;
    const obj = await ctx.catalog.get(item.id);
    if (src && obj?.location?.disk?.path !== src) {
      ownPaths.expect(src); // the live watch must not see a deletion
      await rm(src, { force: true });
      await syncDir(dirname(src));
    } else if (src) item.note = 'disk copy is in the catalog again; not removed';
    faultPoint('archive:after-remove');
    item.phase = 'done';
    ctx.itemDone();
    await ctx.saveItem(item);
  }

  private async finishItem(item: JobItem): Promise<void> {
    this.ctx.itemDone();
    const p = this.ctx.job.progress;
    p.bytesTotal = Math.max(p.bytesTotal - (item.size ?? 0), p.bytesDone, p.bytesWritten ?? 0);
    await this.ctx.saveItem(item);
  }
}

/** Failure cleanup: finish items past the point of no return, drop stubs nobody points at. */
export async function cleanupArchive(ctx: JobContext): Promise<void> {
  for (const item of await ctx.jobs.items(ctx.job.id)) {
    if (item.phase === 'committed') {
      const obj = await ctx.catalog.get(item.id);
      if (item.src && obj?.location?.disk?.path !== item.src) await rm(item.src, { force: true });
      item.phase = 'done';
      await ctx.saveItem(item);
    } else if (item.phase === 'batched' || item.phase === 'pending') {
      const obj = await ctx.catalog.get(item.id);
      const sp = stubPath(ctx.config.dataDir, item.id);
      if (obj?.location?.stub?.path !== sp) await rm(sp, { force: true });
      item.phase = 'failed';
      item.note = item.note ?? 'not archived: the job failed';
      await ctx.saveItem(item);
    }
  }
}

/** Tar member name of an item: <media root name>/<path relative to it>. */
export function memberPath(obj: CatalogObject): string {
  const clean = (s: string) => (s === '' || s === '.' || s === '..' ? '_' : s.replace(/\\/g, '_').replace(/\0/g, ''));
  const rel = obj.relPath ? obj.relPath.split(sep).join('/') : '';
  const parts = rel.split('/').filter((p) => p !== '');
  if (parts.length === 0) return `objects/${obj.id}`;
  const root = obj.mediaRoot ? basename(obj.mediaRoot.replace(/\/+$/, '')) : '';
  return [...(root ? [clean(root)] : []), ...parts.map(clean)].join('/');
}

