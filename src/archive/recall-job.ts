// Recall job: bring archived items back to disk.
//
// Items are grouped by cartridge (cartridges already in a drive first) and read
// in block order, so each cartridge is mounted once and read front to back.
// Per item, each step recorded before the next:
//   restoring  temp file next to the destination (recorded, so a restart deletes it)
//   verified   temp file complete, SHA-256 equal to the tape copy's, fsynced, mtime restored
//   renamed    temp file renamed into place (the catalog still says tape: still true)
//   committed  ONE catalog batch: location { disk, tape } + scanner entry (real size,
//              mtime, archived: false) + item phase
//   done       head stub removed
// The tape copy stays in the catalog: the item is on disk and tape, and a later
// archive of the unchanged file writes nothing.

import { createHash } from 'node:crypto';
import { open, mkdir, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import type { BatchOp } from '../catalog/store.js';
import type { CatalogObject, TapeLocation } from '../catalog/types.js';
import { extentOf } from '../tape/format.js';
import type { TapeDrive, TapeLibrary } from '../tape/types.js';
import type { JobContext } from './context.js';
import { ArchiveError } from './errors.js';
import { faultPoint } from './faults.js';
import type { JobItem } from './jobs.js';
import { MemberReader, prefetch } from './tapeio.js';
import { hashFile } from '../util/hash.js';
import { stubPath, syncDir } from './stubs.js';
import { ownPaths } from '../util/own-paths.js';
import { formatBytes } from '../util/units.js';

export async function runRecall(ctx: JobContext): Promise<Record<string, unknown>> {
  const items = await ctx.jobs.items(ctx.job.id);
  const run = new RecallRun(ctx, items);
  return run.run();
}

/** Where a recalled item goes: its original path, or under <dataDir>/restored for items imported from tape. */
export function destinationOf(obj: CatalogObject, tape: TapeLocation, dataDir: string): string {
  if (obj.origPath && obj.origPath.startsWith('/')) return obj.origPath;
  const rel = (obj.relPath ?? basename(obj.origPath ?? obj.id))
    .split(/[\\/]+/)
    .filter((p) => p !== '' && p !== '.' && p !== '..')
    .join(sep);
  return join(dataDir, 'restored', tape.label, rel || obj.id);
}

/** A member read into its temp file, not yet synced. */
interface Fetched {
  fh: FileHandle;
  got: number;
  sha: string;
}

const tmpOf = (dest: string) => join(dirname(dest), `.${basename(dest)}.tapedeck-recall`);

class RecallRun {
  private mounts = new Map<string, { drive: TapeDrive; reader: MemberReader }>();
  private order: string[] = [];

  constructor(
    private readonly ctx: JobContext,
    private readonly items: JobItem[],
  ) {}

  async run(): Promise<Record<string, unknown>> {
    const { ctx } = this;
    const objs = new Map<string, CatalogObject>();
    for (const item of this.items) {
      const obj = await ctx.catalog.get(item.id);
      if (obj) objs.set(item.id, obj);
      if (item.phase !== 'pending' || item.label) continue;
      const loc = obj?.location;
      if (!obj) ctx.fail(item, 'no longer in the catalog', 'NOT_FOUND');
      else if (loc?.disk) {
        item.phase = 'skipped';
        item.note = 'already on disk';
      } else if (!loc?.tape) ctx.fail(item, 'no tape copy in the catalog');
      else {
        item.label = loc.tape.label;
        item.size = loc.tape.size;
        item.dest = destinationOf(obj, loc.tape, ctx.config.dataDir);
      }
      await ctx.saveItem(item);
    }
    const open = this.items.filter((i) => !['done', 'skipped', 'failed'].includes(i.phase));
    ctx.job.progress.itemsTotal = this.items.length;
    ctx.job.progress.itemsDone = this.items.length - open.length;
    ctx.job.progress.bytesTotal = open.reduce((n, i) => n + (i.size ?? 0), 0);
    ctx.job.progress.bytesDone = open.filter((i) => i.phase !== 'pending' && i.phase !== 'restoring').reduce((n, i) => n + (i.size ?? 0), 0);
    await ctx.save();

    // Cartridges needed for reading: all must be in the library before anything starts.
    const needTape = open.filter((i) => i.phase === 'pending' || i.phase === 'restoring');
    const labels = [...new Set(needTape.map((i) => i.label!))];
    for (const label of labels) {
      const w = await ctx.drives.where(label);
      if (w.where === 'offline') {
        ctx.noteNeeded(label);
        const others = labels.filter((l) => l !== label);
        throw new ArchiveError(
          'OFFLINE',
          `cartridge ${label} is offline (exported); put it back with \`tapedeck tape import ${label}\`${others.length ? ` (the recall also needs ${others.join(', ')})` : ''}`,
          { label },
        );
      }
    }
    await this.checkSpace(needTape);
    // Items whose bytes are already restored first (no tape), then by cartridge:
    // the ones in a drive first, each cartridge's items in block order.
    const inv = await ctx.library.changer.inventory();
    const loaded = new Set(inv.drives.filter((d) => d.full && d.label).map((d) => d.label!));
    const groups = new Map<string, JobItem[]>();
    for (const item of open) {
      const key = item.phase === 'pending' || item.phase === 'restoring' ? item.label! : '';
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push(item);
    }
    const keys = [...groups.keys()].sort((a, b) => (a === '' ? -1 : b === '' ? 1 : Number(loaded.has(b)) - Number(loaded.has(a)) || a.localeCompare(b)));
    for (const key of keys) {
      const group = groups.get(key)!;
      if (key && ctx.job.opts.loadedOnly && !(await inDrive(ctx, key))) {
        for (const item of group) {
          item.phase = 'skipped';
          item.note = `cartridge ${key} is no longer in a drive (this recall mounts none); left to a later play of its container (which loads it) or a pass that mounts it anyway`;
          await ctx.saveItem(item);
        }
        continue;
      }
      const pos = (i: JobItem) => objs.get(i.id)?.location?.tape;
      group.sort((a, b) => (pos(a)?.block ?? 0) - (pos(b)?.block ?? 0) || (pos(a)?.offset ?? 0) - (pos(b)?.offset ?? 0));
      if (key) ctx.activity(`recalling ${group.length} item(s) from ${key}`);
      await this.pipeline(group);
    }
    const count = (p: string) => this.items.filter((i) => i.phase === p).length;
    return { recalled: count('done'), skipped: count('skipped'), failed: count('failed'), cartridges: this.order };
  }

  /**
   * Before any cartridge is mounted: the items to read must fit in the free space of the file
   * systems they go to (each whole: its head stub goes only once the file is in place).
   */
  private async checkSpace(items: JobItem[]): Promise<void> {
    const { ctx } = this;
    const byFs = new Map<string, { dir: string; free: number; need: number; items: number }>();
    const probed = new Map<string, Awaited<ReturnType<typeof ctx.tuning.fsSpace>>>();
    for (const item of items) {
      const dir = dirname(item.dest!);
      let s = probed.get(dir);
      if (!s) probed.set(dir, (s = await ctx.tuning.fsSpace(dir)));
      const f = byFs.get(s.key) ?? { dir, free: s.freeBytes, need: 0, items: 0 };
      f.need += item.size ?? 0;
      f.items++;
      byFs.set(s.key, f);
    }
    for (const f of byFs.values()) {
      if (f.need <= f.free) continue;
      throw new ArchiveError(
        'NO_SPACE',
        `not enough free space to recall: ${f.items} item(s) need ${formatBytes(f.need)} on the file system holding ${f.dir}, which has ${formatBytes(f.free)} free; nothing was mounted or changed (free some space, or recall fewer items)`,
      );
    }
  }

  private async reader(label: string, bs: number): Promise<MemberReader> {
    let m = this.mounts.get(label);
    if (!m) {
      const drive = await this.ctx.drives.mount(label);
      const reader = new MemberReader(drive, bs, label, this.ctx.tuning.reader);
      await reader.check();
      m = { drive, reader };
      this.mounts.set(label, m);
      if (!this.order.includes(label)) this.order.push(label);
    }
    this.ctx.drives.touch(label);
    return m.reader;
  }

  /**
   * Items in block order. The tape part of an item (reading into its temp file)
   * runs in this loop; the disk part (fsync, verify, rename, commit) is chained
   * behind it, so the drive reads the next item while the previous one is
   * being made durable: the drive keeps streaming.
   */
  private async pipeline(group: JobItem[]): Promise<void> {
    const { ctx } = this;
    let tail: Promise<void> = Promise.resolve();
    let failed = false;
    const after = (item: JobItem, f?: Fetched) => {
      tail = tail.then(
        () => this.step(item, f),
        async (err: unknown) => {
          await f?.fh.close().catch(() => undefined);
          throw err;
        },
      );
      tail.catch(() => {
        failed = true;
      });
    };
    try {
      for (const [k, item] of group.entries()) {
        if (failed) break;
        ctx.checkpoint();
        // safe point between members: playback may take the drive; reader() mounts again
        if (k > 0 && (await ctx.yieldToPlayback())) this.mounts.clear();
        after(item, item.phase === 'pending' || item.phase === 'restoring' ? await this.fetchFor(item) : undefined);
      }
    } finally {
      await tail.catch(() => undefined);
    }
    await tail;
  }

  /** The tape part of restoring an item; undefined when there is nothing to read (step() does the rest). */
  private async fetchFor(item: JobItem): Promise<Fetched | undefined> {
    const obj = await this.ctx.catalog.get(item.id);
    const tape = obj?.location?.tape;
    if (!obj || !tape || !item.dest || obj.location?.disk) return undefined;
    const ready = await this.prepare(item, tape);
    if (ready === 'failed') {
      await this.finish(item);
      return undefined;
    }
    if (ready === 'adopted') return undefined;
    return this.fetch(item, tape);
  }

  /** Move one item forward until it is done (or failed); every step is idempotent. */
  private async step(item: JobItem, fetched?: Fetched): Promise<void> {
    let f = fetched;
    try {
      const { ctx } = this;
      for (let guard = 0; guard < 8; guard++) {
        const obj = await ctx.catalog.get(item.id);
        const tape = obj?.location?.tape;
        if (!obj || !tape || !item.dest) {
          if (item.phase === 'committed' || (obj?.location?.disk && item.phase !== 'pending')) {
            await this.dropStub(item);
            return;
          }
          ctx.fail(item, !obj ? 'no longer in the catalog' : 'no tape copy in the catalog', !obj ? 'NOT_FOUND' : 'FAILED');
          return await this.finish(item);
        }
        switch (item.phase) {
          case 'pending':
          case 'restoring': {
            const taken = f;
            f = undefined; // restore() owns (and closes) it now
            if (!(await this.restore(item, obj, tape, taken))) return await this.finish(item);
            break;
          }
          case 'verified':
            await this.place(item, tape);
            break;
          case 'renamed':
            await this.commit(item, obj, tape);
            break;
          case 'committed':
            await this.dropStub(item);
            return;
          default:
            return;
        }
      }
      throw new ArchiveError('FAILED', `recall of ${item.id} does not make progress (phase ${item.phase})`);
    } finally {
      await f?.fh.close().catch(() => undefined);
    }
  }

  /** Tape → temp file, verified. False when the item failed. */
  private async restore(item: JobItem, obj: CatalogObject, tape: TapeLocation, fetched?: Fetched): Promise<boolean> {
    let f = fetched;
    if (!f) {
      const ready = await this.prepare(item, tape);
      if (ready !== 'fetch') return ready === 'adopted';
      f = await this.fetch(item, tape);
    }
    return this.verifyTemp(item, obj, tape, f);
  }

  /** Before reading: drop an old temp file; adopt an identical file already at the destination. */
  private async prepare(item: JobItem, tape: TapeLocation): Promise<'fetch' | 'adopted' | 'failed'> {
    const { ctx } = this;
    const dest = item.dest!;
    if (item.tmp) await rm(item.tmp, { force: true });
    const existing = await stat(dest).catch(() => undefined);
    if (existing) {
      if (existing.isFile() && existing.size === tape.size && (await hashFile(dest)) === tape.sha256) {
        item.adopted = true;
        item.phase = 'renamed';
        ctx.addBytes(tape.size);
        await ctx.saveItem(item);
        return 'adopted';
      }
      ctx.fail(item, `${dest} exists and is a different file; not overwritten`);
      return 'failed';
    }
    await mkdir(dirname(dest), { recursive: true });
    item.tmp = tmpOf(dest);
    item.phase = 'restoring';
    await ctx.saveItem(item);
    return 'fetch';
  }

  /** Read the member into the temp file (not yet synced), hashing it. */
  private async fetch(item: JobItem, tape: TapeLocation): Promise<Fetched> {
    const { ctx } = this;
    const reader = await this.reader(tape.label, tape.blockSize);
    const fh = await open(item.tmp!, 'w', 0o644);
    const h = createHash('sha256');
    let got = 0;
    try {
      let first = true;
      for await (const chunk of prefetch(reader.read(extentOf(tape)))) {
        h.update(chunk);
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        got += chunk.length;
        ctx.addBytes(chunk.length);
        if (first) {
          first = false;
          faultPoint('recall:mid-restore');
        }
      }
    } catch (err) {
      ctx.addBytes(-got);
      await fh.close().catch(() => undefined);
      throw err;
    }
    return { fh, got, sha: h.digest('hex') };
  }

  /** Make the temp file durable, check it against the tape copy's SHA-256, restore its mtime. */
  private async verifyTemp(item: JobItem, obj: CatalogObject, tape: TapeLocation, f: Fetched): Promise<boolean> {
    const { ctx } = this;
    try {
      await f.fh.sync();
    } finally {
      await f.fh.close();
    }
    if (f.got !== tape.size || f.sha !== tape.sha256) {
      await rm(item.tmp!, { force: true });
      ctx.addBytes(-f.got);
      ctx.fail(item, `the copy on ${tape.label} does not match its SHA-256 (read ${f.got} bytes, ${f.sha}); the item stays archived`, 'VERIFY');
      return false;
    }
    if (obj.mtime !== undefined) {
      // Seconds as a float; half a microsecond more so the float rounding never lands below the millisecond.
      const t = (obj.mtime + 0.0005) / 1000;
      await utimes(item.tmp!, t, t);
    }
    faultPoint('recall:after-restore');
    item.phase = 'verified';
    await ctx.saveItem(item);
    faultPoint('recall:verified');
    return true;
  }

  /** Verified temp file → its place. */
  private async place(item: JobItem, tape: TapeLocation): Promise<void> {
    const { ctx } = this;
    const dest = item.dest!;
    const tmp = item.tmp;
    const t = tmp ? await stat(tmp).catch(() => undefined) : undefined;
    if (tmp && t && t.size === tape.size) {
      ownPaths.expect(dest); // the live watch must not see a new file: commit() switches the catalog
      await rename(tmp, dest);
      await syncDir(dirname(dest));
    } else {
      // The rename happened before a crash (or the temp file is gone): check what is there.
      const d = await stat(dest).catch(() => undefined);
      if (!d || d.size !== tape.size || (await hashFile(dest)) !== tape.sha256) {
        item.phase = 'pending';
        ctx.addBytes(-tape.size);
        await ctx.saveItem(item);
        return;
      }
    }
    item.phase = 'renamed';
    await ctx.saveItem(item);
    faultPoint('recall:renamed');
  }

  /** File in place: switch the catalog (and the scanner's entry) in one batch. */
  private async commit(item: JobItem, obj: CatalogObject, tape: TapeLocation): Promise<void> {
    const { ctx } = this;
    const dest = item.dest!;
    const st = await stat(dest).catch(() => undefined);
    if (!st || st.size !== tape.size) {
      item.phase = 'pending';
      ctx.addBytes(-tape.size);
      await ctx.saveItem(item);
      return;
    }
    const mtime = Math.trunc(st.mtimeMs);
    item.phase = 'committed';
    const ops: BatchOp[] = [ctx.itemOp(item)];
    if (obj.origPath === dest) {
      const prev = await ctx.catalog.getPath(dest);
      const gen = prev?.gen ?? (Number(await ctx.catalog.getMeta('scanGen')) || 0);
      ops.push(ctx.catalog.pathOp(dest, { id: item.id, size: st.size, mtime, gen, archived: false }));
    }
    await ctx.catalog.setLocation(item.id, { disk: { path: dest, size: st.size, mtime }, tape }, ops);
    ownPaths.expect(dest);
    await ctx.save();
    faultPoint('recall:committed');
    await this.dropStub(item);
  }

  private async dropStub(item: JobItem): Promise<void> {
    const { ctx } = this;
    await rm(stubPath(ctx.config.dataDir, item.id), { force: true });
    faultPoint('recall:after-stub-remove');
    item.phase = 'done';
    ctx.itemDone();
    await ctx.saveItem(item);
  }

  private async finish(item: JobItem): Promise<void> {
    this.ctx.itemDone();
    await this.ctx.saveItem(item);
  }
}

/**
 * Labels of the cartridges in a drive now, from the changer's inventory. loadedOnly recalls read
 * only from those, and a policy plan counts the same ones as loaded (ArchiveService.loadedCartridges).
 */
export async function loadedLabels(library: Pick<TapeLibrary, 'changer'>): Promise<string[]> {
  return (await library.changer.inventory()).drives.filter((d) => d.full && d.label).map((d) => d.label!);
}

/** Whether a cartridge is in a drive now (loadedOnly recalls read only from those). */
async function inDrive(ctx: JobContext, label: string): Promise<boolean> {
  return (await loadedLabels(ctx.library)).includes(label);
}

/** Failure cleanup: commit what is already in place, delete temp files. */
export async function cleanupRecall(ctx: JobContext): Promise<void> {
  for (const item of await ctx.jobs.items(ctx.job.id)) {
    if (item.phase === 'restoring' || item.phase === 'verified' || item.phase === 'pending') {
      if (item.tmp) await rm(item.tmp, { force: true });
      if (item.phase !== 'pending' || item.tmp) {
        item.phase = 'failed';
        item.note = item.note ?? 'not recalled: the job failed';
        await ctx.saveItem(item);
      }
    } else if (item.phase === 'renamed' || item.phase === 'committed') {
      const obj = await ctx.catalog.get(item.id);
      const tape = obj?.location?.tape;
      if (item.phase === 'renamed' && obj && tape && item.dest && !obj.location?.disk) {
        const st = await stat(item.dest).catch(() => undefined);
        if (st && st.size === tape.size) {
          const mtime = Math.trunc(st.mtimeMs);
          const ops: BatchOp[] = [];
          if (obj.origPath === item.dest) {
            const prev = await ctx.catalog.getPath(item.dest);
            ops.push(ctx.catalog.pathOp(item.dest, { id: item.id, size: st.size, mtime, gen: prev?.gen ?? 0, archived: false }));
          }
          item.phase = 'committed';
          await ctx.catalog.setLocation(item.id, { disk: { path: item.dest, size: st.size, mtime }, tape }, [...ops, ctx.itemOp(item)]);
        }
      }
      if (item.phase === 'committed') {
        await rm(stubPath(ctx.config.dataDir, item.id), { force: true });
        item.phase = 'done';
        await ctx.saveItem(item);
      }
    }
  }
}
