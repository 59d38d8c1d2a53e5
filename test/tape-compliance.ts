// Compliance suite for tape library backends (in the style of abstract-level's
// shared tests): every backend runs the same behavioural tests through the
// TapeLibrary / TapeDrive / TapeChanger interfaces.
//
//   import test from 'ava';
//   runTapeSuite(test, 'virtual', async (opts) => ({ library, labels, ... }));

import type { ExecutionContext, TestFn } from 'ava';
import { TapeError, type TapeDrive, type TapeLibrary } from '../src/tape/types.js';

export interface HarnessOptions {
  drives: number;
  blockSize: number;
  /** Number of cartridges to put into slots. */
  cartridges: number;
  /** Capacity of every cartridge (the suite's EOM test uses it). */
  capacityBytes: number;
}

export interface TapeHarness {
  library: TapeLibrary;
  /** Labels of the cartridges, in slot order (slot 1 first). */
  labels: string[];
  /** Close and open the library again over the same state (persistence); omit when not meaningful. */
  reopen?(): Promise<TapeLibrary>;
  /** Make the next `count` reads of `block` on `label` fail. */
  injectReadError?(label: string, block: number, count: number): void;
  /** After exportCartridge: the operator takes the cartridge out of the mail slot. */
  operatorRemove?(label: string): Promise<void>;
  /** Before importCartridge: the operator puts the cartridge into the mail slot. */
  operatorInsert?(label: string): Promise<void>;
  cleanup(): Promise<void>;
}

export type MakeHarness = (opts: HarnessOptions) => Promise<TapeHarness>;

const DEFAULTS: HarnessOptions = { drives: 2, blockSize: 4096, cartridges: 4, capacityBytes: 4 << 20 };

/** A recognisable block: `tag:i` at the start, then bytes derived from tag and i. */
export function patternBlocks(tag: string, count: number, bs: number): Buffer {
  const out = Buffer.alloc(count * bs);
  let seed = 0;
  for (const ch of tag) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0;
  for (let i = 0; i < count; i++) {
    const b = out.subarray(i * bs, (i + 1) * bs);
    let x = (seed + i * 2654435761) >>> 0 || 1;
    for (let j = 0; j < bs; j++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      b[j] = x & 0xff;
    }
    b.write(`${tag}:${i};`, 0, 'latin1');
  }
  return out;
}

/** Read a whole tape structure from the current position: [data (concatenated) | 'FM' | 'EOD']. */
export async function readStructure(drive: TapeDrive, maxBlocks = 3): Promise<(Buffer | 'FM' | 'EOD')[]> {
  const out: (Buffer | 'FM' | 'EOD')[] = [];
  let cur: Buffer[] = [];
  for (let guard = 0; guard < 100000; guard++) {
    const r = await drive.readBlocks(maxBlocks);
    if (r.data.length) cur.push(r.data);
    if (r.mark) {
      if (cur.length) out.push(Buffer.concat(cur));
      cur = [];
      out.push(r.mark === 'filemark' ? 'FM' : 'EOD');
      if (r.mark === 'eod') return out;
    }
  }
  throw new Error('no EOD reached');
}

async function rejectsCode(t: ExecutionContext, p: Promise<unknown>, code: TapeError['code'], what: string): Promise<TapeError> {
  const err = await t.throwsAsync(p, { instanceOf: TapeError }, what);
  t.is(err?.code, code, `${what}: ${err?.message}`);
  return err as TapeError;
}

export function runTapeSuite(test: TestFn, name: string, make: MakeHarness): void {
  const withLib = (title: string, opts: Partial<HarnessOptions>, fn: (t: ExecutionContext, h: TapeHarness, o: HarnessOptions) => Promise<void>) => {
    test(`${name}: ${title}`, async (t) => {
      const o = { ...DEFAULTS, ...opts };
      const h = await make(o);
      try {
        await fn(t, h, o);
      } finally {
        await h.cleanup();
      }
    });
  };

  withLib('inventory lists cartridges in slots and empty drives', {}, async (t, h, o) => {
    const inv = await h.library.changer.inventory();
    t.is(inv.drives.length, o.drives);
    t.true(inv.drives.every((d) => !d.full));
    const labelled = inv.slots.filter((s) => s.full).map((s) => s.label);
    t.deepEqual(labelled, h.labels);
    t.true(inv.ie.length >= 1, 'has an import/export slot');
    t.true(inv.ie.every((s) => s.importExport));
    t.is(h.library.drives.length, o.drives);
  });

  withLib('load by label and by slot through the robot, unload back to the source slot', {}, async (t, h) => {
    const lib = h.library;
    const [a, b] = h.labels as [string, string];
    const where = await lib.changer.find(a);
    t.is(where.where, 'slot');
    const slotA = (where as { slot: number }).slot;
    await lib.changer.load(a, 0);
    const st = await lib.drives[0]!.status();
    t.true(st.loaded);
    t.true(st.ready);
    t.is(st.label, a);
    t.is(st.position?.block, 0);
    t.true(st.position?.bot);
    t.deepEqual(await lib.changer.find(a), { where: 'drive', drive: 0, sourceSlot: slotA });
    const slotB = ((await lib.changer.find(b)) as { slot: number }).slot;
    await lib.changer.load(slotB, 1);
    t.is((await lib.drives[1]!.status()).label, b);
    const inv = await lib.changer.inventory();
    t.false(inv.slots.find((s) => s.slot === slotA)!.full);
    t.deepEqual(
      inv.drives.map((d) => d.label),
      [a, b],
    );
    t.is(await lib.changer.unload(0), slotA);
    t.is(await lib.changer.unload(1), slotB);
    const after = await lib.changer.inventory();
    t.is(after.slots.find((s) => s.slot === slotA)!.label, a);
    t.true(after.drives.every((d) => !d.full));
    const s0 = await lib.drives[0]!.status();
    t.false(s0.loaded);
    t.false(s0.ready);
  });

  withLib('empty drive answers NO_MEDIUM; bad loads answer BUSY / NOT_FOUND', {}, async (t, h) => {
    const lib = h.library;
    const d = lib.drives[0]!;
    await rejectsCode(t, d.tell(), 'NO_MEDIUM', 'tell');
    await rejectsCode(t, d.readBlocks(1), 'NO_MEDIUM', 'read');
    await rejectsCode(t, d.writeBlocks(Buffer.alloc(4096)), 'NO_MEDIUM', 'write');
    await rejectsCode(t, d.locate(0), 'NO_MEDIUM', 'locate');
    await rejectsCode(t, d.rewind(), 'NO_MEDIUM', 'rewind');
    await rejectsCode(t, lib.changer.unload(0), 'NO_MEDIUM', 'unload empty drive');
    await lib.changer.load(h.labels[0]!, 0);
    await rejectsCode(t, lib.changer.load(h.labels[1]!, 0), 'BUSY', 'load into full drive');
    await rejectsCode(t, lib.changer.load(h.labels[0]!, 1), 'BUSY', 'load a cartridge that is in another drive');
    await rejectsCode(t, lib.changer.load('ZZ9999L9', 1), 'NOT_FOUND', 'unknown label');
    await rejectsCode(t, lib.changer.find('ZZ9999L9'), 'NOT_FOUND', 'find unknown label');
  });

  withLib('write blocks and filemarks, read back; locate/tell; EOD; append', {}, async (t, h, o) => {
    const bs = o.blockSize;
    const d = await h.library.mount(h.labels[0]!);
    const f0 = patternBlocks('f0', 3, bs);
    const f1 = patternBlocks('f1', 5, bs);
    await d.writeBlocks(f0);
    t.is(await d.tell(), 3);
    await d.writeFilemarks(1);
    await d.writeBlocks(f1.subarray(0, 2 * bs));
    await d.writeBlocks(f1.subarray(2 * bs));
    await d.writeFilemarks();
    t.is(await d.tell(), 3 + 1 + 5 + 1);
    await d.rewind();
    t.is(await d.tell(), 0);
    t.deepEqual(await readStructure(d), [f0, 'FM', f1, 'FM', 'EOD']);
    // addresses count filemarks: file 1 starts at 4
    await d.locate(4 + 2);
    t.is(await d.tell(), 6);
    const st = await d.status();
    t.is(st.position?.fileNumber, 1);
    t.is(st.position?.blockInFile, 2);
    t.deepEqual(await d.readBlock(), f1.subarray(2 * bs, 3 * bs));
    t.is(await d.tell(), 7);
    // read past filemark: position lands on the next file
    await d.locate(2);
    t.deepEqual(await d.readBlock(), f0.subarray(2 * bs));
    t.is(await d.readBlock(), 'filemark');
    t.is(await d.tell(), 4);
    t.is((await d.status()).position?.fileNumber, 1);
    // EOD
    await d.seekToEod();
    t.is(await d.tell(), 10);
    t.is(await d.readBlock(), 'eod');
    t.is(await d.tell(), 10);
    // append after EOD
    const f2 = patternBlocks('f2', 1, bs);
    await d.writeBlocks(f2);
    await d.writeFilemarks(1);
    await d.rewind();
    await d.spaceFilemarks(2);
    t.is(await d.tell(), 10);
    t.deepEqual(await readStructure(d), [f2, 'FM', 'EOD']);
  });

  withLib('positioning errors: locate beyond EOD, spacing past the last filemark, bad arguments', {}, async (t, h, o) => {
    const d = await h.library.mount(h.labels[0]!);
    await d.writeBlocks(patternBlocks('x', 2, o.blockSize));
    await d.writeFilemarks(1);
    await rejectsCode(t, d.locate(50), 'BAD_POSITION', 'locate beyond EOD');
    await d.rewind();
    await rejectsCode(t, d.spaceFilemarks(2), 'BAD_POSITION', 'space past last filemark');
    await d.rewind();
    await d.spaceFilemarks(1);
    t.is(await d.tell(), 3);
    await rejectsCode(t, d.locate(-1), 'INVALID', 'negative locate');
    await rejectsCode(t, d.writeBlocks(Buffer.alloc(o.blockSize + 1)), 'INVALID', 'unaligned write');
    await rejectsCode(t, d.writeFilemarks(0), 'INVALID', 'zero filemarks');
  });

  withLib('an open tape file is ended by one filemark when the drive moves', {}, async (t, h, o) => {
    const d = await h.library.mount(h.labels[0]!);
    const a = patternBlocks('a', 2, o.blockSize);
    await d.writeBlocks(a);
    t.is(await d.tell(), 2, 'tell does not end the tape file');
    await d.rewind();
    t.deepEqual(await readStructure(d), [a, 'FM', 'EOD']);
  });

  withLib('writing in the middle makes that the new end of data', {}, async (t, h, o) => {
    const bs = o.blockSize;
    const d = await h.library.mount(h.labels[0]!);
    await d.writeBlocks(patternBlocks('old', 6, bs));
    await d.writeFilemarks(1);
    await d.locate(2);
    const n = patternBlocks('new', 1, bs);
    await d.writeBlocks(n);
    await d.writeFilemarks(1);
    await d.rewind();
    t.deepEqual(await readStructure(d), [Buffer.concat([patternBlocks('old', 2, bs), n]), 'FM', 'EOD']);
  });

  withLib('capacity: EOM when the cartridge is full, filemarks still fit, data stays readable', { capacityBytes: 64 * 4096 }, async (t, h, o) => {
    const bs = o.blockSize;
    const d = await h.library.mount(h.labels[0]!);
    const first = patternBlocks('fill', 60, bs);
    await d.writeBlocks(first);
    const err = await rejectsCode(t, d.writeBlocks(patternBlocks('more', 10, bs)), 'EOM', 'overfull write');
    const landed = Number(err.details?.blocksWritten);
    t.true(landed >= 0 && landed <= 4, `blocksWritten ${landed}`);
    await d.writeFilemarks(1);
    await d.rewind();
    const s = await readStructure(d, 16);
    t.is(s.length, 3);
    t.deepEqual((s[0] as Buffer).subarray(0, first.length), first);
    t.is((s[0] as Buffer).length, first.length + landed * bs);
    t.deepEqual(s.slice(1), ['FM', 'EOD']);
  });

  withLib('export makes a cartridge offline; import brings it back', {}, async (t, h) => {
    const lib = h.library;
    const [a, b] = h.labels as [string, string];
    await lib.changer.load(b, 0);
    await rejectsCode(t, lib.changer.exportCartridge(b), 'BUSY', 'export of a loaded cartridge');
    await lib.changer.exportCartridge(a);
    await h.operatorRemove?.(a);
    t.deepEqual(await lib.changer.find(a), { where: 'offline' });
    const err = await rejectsCode(t, lib.changer.load(a, 1), 'OFFLINE', 'load of an exported cartridge');
    t.is(err.label, a);
    await rejectsCode(t, lib.mount(a), 'OFFLINE', 'mount of an exported cartridge');
    t.true((await lib.changer.inventory()).offline?.includes(a) ?? true);
    await h.operatorInsert?.(a);
    const slot = await lib.changer.importCartridge(a);
    t.deepEqual(await lib.changer.find(a), { where: 'slot', slot });
    await lib.changer.load(a, 1);
    t.is((await lib.drives[1]!.status()).label, a);
  });

  withLib('mount: loads into a free drive, reuses a loaded cartridge, coalesces concurrent mounts', {}, async (t, h) => {
    const lib = h.library;
    const [a, b] = h.labels as [string, string];
    const before = lib.stats();
    const [d1, d2] = await Promise.all([lib.mount(a), lib.mount(a)]);
    t.is(d1, d2);
    const mid = lib.stats();
    t.is(mid.mounts - before.mounts, 1);
    const again = await lib.mount(a);
    t.is(again, d1);
    t.is(lib.stats().mounts, mid.mounts);
    t.is(lib.stats().robotMoves, mid.robotMoves);
    const other = await lib.mount(b);
    t.not(other.index, d1.index);
    t.is((await other.status()).label, b);
    // all drives full: naming a drive swaps its cartridge
    if (lib.drives.length === 2) {
      await rejectsCode(t, lib.mount(h.labels[2]!), 'BUSY', 'no empty drive');
      const swapped = await lib.mount(h.labels[2]!, { drive: d1.index });
      t.is(swapped.index, d1.index);
      t.is((await swapped.status()).label, h.labels[2]);
      t.is(((await lib.changer.find(a)) as { where: string }).where, 'slot');
    }
  });

  withLib('two drives work in parallel; operations on one drive run in call order', {}, async (t, h, o) => {
    const bs = o.blockSize;
    const lib = h.library;
    const [d0, d1] = await Promise.all([lib.mount(h.labels[0]!, { drive: 0 }), lib.mount(h.labels[1]!, { drive: 1 })]);
    const a = patternBlocks('A', 8, bs);
    const b = patternBlocks('B', 8, bs);
    // fire without awaiting: each drive's queue keeps the order
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++) {
      ops.push(d0.writeBlocks(a.subarray(i * bs, (i + 1) * bs)));
      ops.push(d1.writeBlocks(b.subarray(i * bs, (i + 1) * bs)));
    }
    ops.push(d0.writeFilemarks(1), d1.writeFilemarks(1), d0.rewind(), d1.rewind());
    const reads0 = [d0.readBlocks(4), d0.readBlocks(4), d0.readBlocks(4)];
    const reads1 = [d1.readBlocks(8), d1.readBlocks(8)];
    await Promise.all(ops);
    const r0 = await Promise.all(reads0);
    const r1 = await Promise.all(reads1);
    t.deepEqual(Buffer.concat(r0.map((r) => r.data)), a);
    t.deepEqual(Buffer.concat(r1.map((r) => r.data)), b);
    t.is(r0.some((r) => r.mark === 'filemark') || (await d0.readBlock()) === 'filemark', true);
  });

  withLib('counters: a locate on a loaded cartridge costs one locate and no mount', {}, async (t, h, o) => {
    const lib = h.library;
    const d = await lib.mount(h.labels[0]!);
    const s0 = lib.stats();
    t.true(s0.mounts >= 1);
    t.true(s0.robotMoves >= 1);
    await d.writeBlocks(patternBlocks('c', 20, o.blockSize));
    await d.writeFilemarks(1);
    const s1 = lib.stats();
    t.is(s1.blocksWritten - s0.blocksWritten, 20);
    t.is(s1.bytesWritten - s0.bytesWritten, 20 * o.blockSize);
    await d.locate(7);
    await d.readBlocks(2);
    const s2 = lib.stats();
    t.is(s2.locates - s1.locates, 1);
    t.is(s2.mounts, s1.mounts);
    t.is(s2.robotMoves, s1.robotMoves);
    t.is(s2.blocksRead - s1.blocksRead, 2);
    t.is(s2.bytesRead - s1.bytesRead, 2 * o.blockSize);
    await lib.changer.unload(d.index);
    const s3 = lib.stats();
    t.is(s3.unloads - s2.unloads, 1);
    t.is(s3.robotMoves - s2.robotMoves, 1);
  });

  withLib('persistence: contents and cartridge locations survive reopening', {}, async (t, h, o) => {
    if (!h.reopen) {
      t.pass('backend has no reopen');
      return;
    }
    const bs = o.blockSize;
    const d = await h.library.mount(h.labels[1]!, { drive: 1 });
    const data = patternBlocks('persist', 5, bs);
    await d.writeBlocks(data);
    await d.writeFilemarks(1);
    await h.library.changer.exportCartridge(h.labels[0]!);
    await h.operatorRemove?.(h.labels[0]!);
    const lib2 = await h.reopen();
    t.deepEqual(await lib2.changer.find(h.labels[0]!), { where: 'offline' });
    const where = await lib2.changer.find(h.labels[1]!);
    t.is(where.where, 'drive');
    const d2 = lib2.drives[1]!;
    t.is((await d2.status()).label, h.labels[1]);
    await d2.rewind();
    t.deepEqual(await readStructure(d2), [data, 'FM', 'EOD']);
    await lib2.changer.unload(1);
    const d3 = await lib2.mount(h.labels[1]!);
    await d3.rewind();
    t.deepEqual(await readStructure(d3), [data, 'FM', 'EOD']);
  });

  withLib('read errors: injected MEDIUM_ERROR at a block, position kept, retry succeeds', {}, async (t, h, o) => {
    if (!h.injectReadError) {
      t.pass('backend cannot inject read errors');
      return;
    }
    const bs = o.blockSize;
    const label = h.labels[0]!;
    const d = await h.library.mount(label);
    const data = patternBlocks('err', 6, bs);
    await d.writeBlocks(data);
    await d.writeFilemarks(1);
    h.injectReadError(label, 3, 2);
    await d.rewind();
    const r = await d.readBlocks(6);
    t.true(r.data.length <= 3 * bs, 'a multi-block read stops before the bad block');
    t.deepEqual(r.data, data.subarray(0, r.data.length));
    await d.locate(3);
    const before = h.library.stats().readErrors;
    const e1 = await rejectsCode(t, d.readBlocks(1), 'MEDIUM_ERROR', 'first read of bad block');
    t.is(e1.label, label);
    await d.locate(3);
    await rejectsCode(t, d.readBlocks(1), 'MEDIUM_ERROR', 'second read of bad block');
    t.is(h.library.stats().readErrors - before, 2);
    await d.locate(3);
    t.deepEqual(await d.readBlock(), data.subarray(3 * bs, 4 * bs));
  });
}
