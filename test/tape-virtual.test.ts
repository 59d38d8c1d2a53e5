import test from 'ava';
import { mkdtemp, rm, readFile, open, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { ScaledClock, LTO8, LTO9, fullPassSeconds, longitudinalPosition, type TapeClock } from '../src/tape/timing.js';
import { HEADER_SIZE, RECORD_HEADER } from '../src/tape/cartridge.js';
import { TapeError } from '../src/tape/types.js';
import { runTapeSuite, patternBlocks, readStructure } from './tape-compliance.js';
import { prng as rng } from '../src/util/prng.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'tapedeck-vtl-'));
}

runTapeSuite(test, 'virtual', async (o) => {
  const dir = await tempDir();
  let lib = await VirtualTapeLibrary.open(dir, {
    drives: o.drives,
    blockSize: o.blockSize,
    capacityBytes: o.capacityBytes,
    cartridges: o.cartridges,
    slots: 8,
    timeScale: 0,
  });
  const labels = await lib.labels();
  return {
    get library() {
      return lib;
    },
    labels,
    async reopen() {
      await lib.close();
      lib = await VirtualTapeLibrary.open(dir, { timeScale: 0 });
      return lib;
    },
    injectReadError: (label, block, count) => lib.injectReadError(label, block, { count }),
    async cleanup() {
      await lib.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});


async function openLib(opts: Parameters<typeof VirtualTapeLibrary.open>[1] = {}) {
  const dir = await tempDir();
  const clock = new ScaledClock({ timeScale: 0, keepEvents: true });
  const lib = await VirtualTapeLibrary.open(dir, { blockSize: 4096, capacityBytes: 4 << 20, cartridges: 4, slots: 8, clock, ...opts });
  return {
    dir,
    lib,
    clock,
    async done() {
      await lib.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('new library: defaults, labels, library.json', async (t) => {
  const dir = await tempDir();
  try {
    const lib = await VirtualTapeLibrary.open(dir, { cartridges: 3, timeScale: 0 });
    t.is(lib.config.blockSize, 256 * 1024);
    t.is(lib.config.drives, 2);
    t.is(lib.config.generation, 'LTO-9');
    t.deepEqual(await lib.labels(), ['TD0001L9', 'TD0002L9', 'TD0003L9']);
    const inv = await lib.changer.inventory();
    t.deepEqual(
      inv.slots.slice(0, 4).map((s) => s.label ?? null),
      ['TD0001L9', 'TD0002L9', 'TD0003L9', null],
    );
    t.is(inv.ie[0]!.slot, lib.config.slots + 1);
    const file = JSON.parse(await readFile(join(dir, 'library.json'), 'utf8'));
    t.is(file.format, 'tapedeck-virtual-library');
    t.is(file.slots[0], 'TD0001L9');
    await t.throwsAsync(VirtualTapeLibrary.open(dir), { instanceOf: TapeError, message: /already open/ });
    await lib.close();
    // configuration is fixed at creation
    const again = await VirtualTapeLibrary.open(dir, { drives: 5, timeScale: 0 });
    t.is(again.drives.length, 2);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('createCartridge validates labels and slots; LTO-8 media in an LTO-9 drive, LTO-7 refused', async (t) => {
  const h = await openLib({ cartridges: 0 });
  try {
    await t.throwsAsync(h.lib.createCartridge('bad'), { instanceOf: TapeError, message: /invalid barcode/ });
    await h.lib.createCartridge('AB0001L8', { slot: 3 });
    await h.lib.createCartridge('AB0002L7');
    await t.throwsAsync(h.lib.createCartridge('AB0001L8'), { instanceOf: TapeError, message: /already exists/ });
    await t.throwsAsync(h.lib.createCartridge('AB0003L9', { slot: 3 }), { instanceOf: TapeError, message: /slot 3 is full/ });
    t.deepEqual(await h.lib.changer.find('AB0001L8'), { where: 'slot', slot: 3 });
    await h.lib.changer.load('AB0001L8', 0);
    const err = await t.throwsAsync(h.lib.changer.load('AB0002L7', 1), { instanceOf: TapeError });
    t.is(err?.code, 'INCOMPATIBLE');
    t.deepEqual(await h.lib.changer.find('AB0002L7'), { where: 'slot', slot: 1 }, 'refused cartridge did not move');
    await h.lib.createCartridge('AB0004L9', { offline: true });
    t.deepEqual(await h.lib.changer.find('AB0004L9'), { where: 'offline' });
  } finally {
    await h.done();
  }
});

test('modelled time: cold mount = robot + load, unload = unload + robot (LTO-9 and LTO-8)', async (t) => {
  for (const [gen, p] of [
    ['LTO-9', LTO9],
    ['LTO-8', LTO8],
  ] as const) {
    const h = await openLib({ generation: gen, cartridges: 2 });
    try {
      const d = await h.lib.mount(`TD0001L${gen.slice(4)}`);
      t.is(h.clock.total('robot'), p.robotMove);
      t.is(h.clock.total('load'), p.load);
      t.is(h.clock.total(), p.robotMove + p.load, `${gen} cold mount`);
      t.is(h.lib.stats().seconds.load, p.load);
      h.clock.reset();
      await h.lib.changer.unload(d.index);
      t.is(h.clock.total(), p.unload + p.robotMove, `${gen} unload`);
      t.deepEqual(
        h.clock.events.map((e) => [e.op, e.resource]),
        [
          ['unload', 'drive0'],
          ['robot', 'robot'],
        ],
      );
    } finally {
      await h.done();
    }
  }
});

test('modelled time: streaming at native rate', async (t) => {
  const h = await openLib({ blockSize: 64 * 1024, capacityBytes: 64 << 20 });
  try {
    const d = await h.lib.mount('TD0001L9');
    h.clock.reset();
    await d.writeBlocks(Buffer.alloc(16 * 64 * 1024));
    t.is(h.clock.total('write'), (16 * 64 * 1024) / 400e6);
    await d.rewind();
    h.clock.reset();
    await d.readBlocks(8);
    t.is(h.clock.total('read'), (8 * 64 * 1024) / 400e6);
    t.is(h.clock.total('locate'), 0);
  } finally {
    await h.done();
  }
});

test('locate model: serpentine positions, average from load point ≈ published figure, random-to-random ≈ overhead + pass/3', async (t) => {
  // pure model
  const cap = 1 << 30;
  t.is(longitudinalPosition(0, 4096, cap, 280), 0);
  const wrapBlocks = cap / 280 / 4096;
  t.true(Math.abs(longitudinalPosition(Math.round(wrapBlocks * 0.5), 4096, cap, 280) - 0.5) < 0.01);
  t.true(Math.abs(longitudinalPosition(Math.round(wrapBlocks * 1.2), 4096, cap, 280) - 0.8) < 0.01, 'second wrap runs backwards');
  t.true(Math.abs(longitudinalPosition(Math.round(wrapBlocks * 2.3), 4096, cap, 280) - 0.3) < 0.01, 'third wrap forwards again');
  t.is(fullPassSeconds(LTO9), 84);

  for (const [gen, p] of [
    ['LTO-9', LTO9],
    ['LTO-8', LTO8],
  ] as const) {
    // a full small cartridge: 1024 blocks of 4 KiB
    const h = await openLib({ generation: gen, capacityBytes: 4 << 20, cartridges: 1 });
    try {
      const d = await h.lib.mount(`TD0001L${gen.slice(4)}`);
      await d.writeBlocks(Buffer.alloc(1024 * 4096));
      await d.writeFilemarks(1);
      const rand = rng(42);
      const n = 400;
      let fromBot = 0;
      for (let i = 0; i < n; i++) {
        await d.rewind();
        const target = 1 + Math.floor(rand() * 1023);
        const before = h.clock.total('locate');
        await d.locate(target);
        fromBot += h.clock.total('locate') - before;
      }
      const avg = fromBot / n;
      t.log(`${gen}: from BOT ${avg.toFixed(2)} s`);
      t.true(Math.abs(avg - p.averageLocate) < 0.06 * p.averageLocate, `${gen} average locate from BOT ${avg.toFixed(1)} s vs ${p.averageLocate}`);
      let between = 0;
      const locatesBefore = h.lib.stats().locates;
      for (let i = 0; i < n; i++) {
        const before = h.clock.total('locate');
        await d.locate(Math.floor(rand() * 1024));
        between += h.clock.total('locate') - before;
      }
      const expect = p.locateOverhead + fullPassSeconds(p) / 3;
      const avg2 = between / n;
      t.log(`${gen}: random-to-random ${avg2.toFixed(2)} s`);
      t.true(Math.abs(avg2 - expect) < 0.1 * expect, `${gen} random-to-random ${avg2.toFixed(1)} s vs ${expect.toFixed(1)}`);
      t.true(h.lib.stats().locates - locatesBefore <= n);
    } finally {
      await h.done();
    }
  }
});

test('a locate to the current block does not move the tape', async (t) => {
  const h = await openLib();
  try {
    const d = await h.lib.mount('TD0001L9');
    await d.writeBlocks(patternBlocks('x', 10, 4096));
    await d.writeFilemarks(1);
    await d.locate(5);
    const s = h.lib.stats();
    const secs = h.clock.total('locate');
    await d.locate(5);
    t.is(h.lib.stats().locates, s.locates);
    t.is(h.clock.total('locate'), secs);
  } finally {
    await h.done();
  }
});

test('timeScale spends real time (lower bound only)', async (t) => {
  const h = await openLib({ clock: new ScaledClock({ timeScale: 0.002 }) });
  try {
    const t0 = performance.now();
    await h.lib.mount('TD0001L9'); // 37 modelled seconds → 74 ms
    t.true(performance.now() - t0 >= 70);
  } finally {
    await h.done();
  }
});

/** A clock that holds each 'hold' op until `release` — lets tests see what runs concurrently. */
class GateClock implements TapeClock {
  running = new Map<string, number>();
  maxConcurrent = new Map<string, number>();
  log: string[] = [];
  private waiters: (() => void)[] = [];
  constructor(private readonly hold: Set<string>) {}
  async spend(_s: number, op: string, resource: string): Promise<void> {
    this.log.push(`${op}@${resource}`);
    if (!this.hold.has(op)) return new Promise((r) => setImmediate(r));
    const n = (this.running.get(op) ?? 0) + 1;
    this.running.set(op, n);
    this.maxConcurrent.set(op, Math.max(this.maxConcurrent.get(op) ?? 0, n));
    await new Promise<void>((r) => this.waiters.push(r));
    this.running.set(op, (this.running.get(op) ?? 1) - 1);
  }
  waiting(): number {
    return this.waiters.length;
  }
  releaseAll(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('concurrency: two drives locate at the same time; the robot moves one cartridge at a time', async (t) => {
  const gate = new GateClock(new Set(['locate', 'robot']));
  const h = await openLib({ clock: gate });
  try {
    // two mounts: robot moves are serialized
    const m = [h.lib.mount('TD0001L9'), h.lib.mount('TD0002L9')];
    await until(() => gate.waiting() === 1, 'first robot move');
    await new Promise((r) => setTimeout(r, 20));
    t.is(gate.waiting(), 1, 'second robot move waits for the first');
    gate.releaseAll();
    await until(() => gate.waiting() === 1, 'second robot move');
    gate.releaseAll();
    const [d0, d1] = await Promise.all(m);
    t.is(gate.maxConcurrent.get('robot'), 1);
    for (const d of [d0!, d1!]) {
      await d.writeBlocks(Buffer.alloc(40 * 4096));
      await d.writeFilemarks(1);
    }
    // two drives: both locates in flight at once
    const l = [d0!.locate(20), d1!.locate(30)];
    await until(() => gate.waiting() === 2, 'both locates in flight');
    t.is(gate.maxConcurrent.get('locate'), 2);
    // one drive: a second locate waits for the first
    const l2 = d0!.locate(5);
    await new Promise((r) => setTimeout(r, 20));
    t.is(gate.waiting(), 2);
    gate.releaseAll();
    await Promise.all(l);
    await until(() => gate.waiting() === 1, 'queued locate');
    gate.releaseAll();
    await l2;
    t.is(await d0!.tell(), 5);
    t.is(await d1!.tell(), 30);
    // status answers at once while the drive is busy
    const l3 = d1!.locate(1);
    await until(() => gate.waiting() === 1, 'locate 3');
    const st = await d1!.status();
    t.true(st.ready);
    gate.releaseAll();
    await l3;
  } finally {
    gate.releaseAll();
    await h.done();
  }
});

test('status during a load shows loaded but not ready', async (t) => {
  const gate = new GateClock(new Set(['load']));
  const h = await openLib({ clock: gate });
  try {
    const p = h.lib.changer.load('TD0001L9', 0);
    await until(() => gate.waiting() === 1, 'load');
    const st = await h.lib.drives[0]!.status();
    t.true(st.loaded);
    t.false(st.ready);
    t.is(st.label, 'TD0001L9');
    gate.releaseAll();
    await p;
    t.true((await h.lib.drives[0]!.status()).ready);
  } finally {
    gate.releaseAll();
    await h.done();
  }
});

test('a damaged record is a MEDIUM_ERROR; the filemark cache is rebuilt when wrong', async (t) => {
  const h = await openLib();
  const bs = 4096;
  try {
    const d = await h.lib.mount('TD0001L9');
    await d.writeBlocks(patternBlocks('a', 4, bs));
    await d.writeFilemarks(1);
    await d.writeBlocks(patternBlocks('b', 2, bs));
    await d.writeFilemarks(1);
    await h.lib.changer.unload(d.index);
    // flip one payload byte of block 2
    const path = join(h.dir, 'cartridges', 'TD0001L9.tape');
    const fh = await open(path, 'r+');
    const at = HEADER_SIZE + 2 * (RECORD_HEADER + bs) + RECORD_HEADER + 100;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, at);
    // and damage the cached filemark list in the header (same length)
    const head = Buffer.alloc(512);
    await fh.read(head, 0, 512, 0);
    const text = head.toString('latin1');
    t.true(text.includes('"filemarks":[4,7]'));
    await fh.write(Buffer.from(text.replace('"filemarks":[4,7]', '"filemarks":[1,2]'), 'latin1'), 0, 512, 0);
    await fh.close();
    const d2 = await h.lib.mount('TD0001L9');
    const info = await h.lib.cartridgeInfo('TD0001L9');
    t.deepEqual(info.filemarks, [4, 7]);
    const r = await d2.readBlocks(4);
    t.is(r.data.length, 2 * bs);
    const err = await t.throwsAsync(d2.readBlocks(1), { instanceOf: TapeError });
    t.is(err?.code, 'MEDIUM_ERROR');
    t.is(err?.block, 2);
    await d2.locate(5);
    t.deepEqual(await readStructure(d2), [patternBlocks('b', 2, bs), 'FM', 'EOD']);
  } finally {
    await h.done();
  }
});

test('injected errors: count and clearing; errors on other cartridges unaffected', async (t) => {
  const h = await openLib();
  try {
    const d = await h.lib.mount('TD0001L9');
    await d.writeBlocks(patternBlocks('z', 3, 4096));
    await d.writeFilemarks(1);
    h.lib.injectReadError('TD0002L9', 1, { count: 5 });
    h.lib.injectReadError('TD0001L9', 1, { count: Infinity });
    await d.locate(1);
    for (let i = 0; i < 3; i++) await t.throwsAsync(d.readBlocks(1), { instanceOf: TapeError, message: /read error at block 1/ });
    h.lib.clearReadErrors('TD0001L9');
    t.is((await d.readBlocks(1)).data.length, 4096);
  } finally {
    await h.done();
  }
});

test('exportTapeFile copies one tape file; cartridgeInfo reports usage', async (t) => {
  const h = await openLib();
  try {
    const d = await h.lib.mount('TD0003L9');
    const a = patternBlocks('a', 3, 4096);
    const b = patternBlocks('b', 2, 4096);
    await d.writeBlocks(a);
    await d.writeFilemarks(1);
    await d.writeBlocks(b);
    await d.writeFilemarks(1);
    const out = join(h.dir, 'file1.bin');
    t.is(await h.lib.exportTapeFile('TD0003L9', 1, out), b.length);
    t.deepEqual(await readFile(out), b);
    await t.throwsAsync(h.lib.exportTapeFile('TD0003L9', 2, out), { instanceOf: TapeError, message: /no tape file 2/ });
    await t.throwsAsync(h.lib.exportTapeFile('NOPE01L9', 0, out), { instanceOf: TapeError, message: /no cartridge/ });
    const info = await h.lib.cartridgeInfo('TD0003L9');
    t.is(info.eod, 7);
    t.is(info.usedBytes, 5 * 4096);
    const st = await d.status();
    t.is(st.remainingBytes, (4 << 20) - 5 * 4096);
  } finally {
    await h.done();
  }
});

test('closed library refuses operations', async (t) => {
  const h = await openLib();
  const d = await h.lib.mount('TD0001L9');
  await h.done();
  const err = await t.throwsAsync(d.tell(), { instanceOf: TapeError });
  t.is(err?.code, 'CLOSED');
});

test('reopen: a damaged cartridge in a drive does not stop the library; it can be unloaded', async (t) => {
  const dir = await tempDir();
  try {
    const lib = await VirtualTapeLibrary.open(dir, { blockSize: 4096, capacityBytes: 1 << 20, cartridges: 2, slots: 4, timeScale: 0 });
    await lib.mount('TD0002L9');
    await lib.close();
    const fh = await open(join(dir, 'cartridges', 'TD0002L9.tape'), 'r+');
    await fh.write(Buffer.from('GARBAGE'), 0, 7, 0);
    await fh.close();
    const lib2 = await VirtualTapeLibrary.open(dir, { timeScale: 0 });
    const st = await lib2.drives[0]!.status();
    t.true(st.loaded);
    t.false(st.ready);
    const err = await t.throwsAsync(lib2.drives[0]!.readBlocks(1), { instanceOf: TapeError });
    t.is(err?.code, 'MEDIUM_ERROR');
    t.regex(err!.message, /TD0002L9 cannot be read/);
    t.is(await lib2.changer.unload(0), 2);
    await lib2.close();
    // a broken library.json is reported, not a crash
    await writeFile(join(dir, 'library.json'), '{"format":"something else"}');
    const e2 = await t.throwsAsync(VirtualTapeLibrary.open(dir, { timeScale: 0 }), { instanceOf: TapeError });
    t.is(e2?.code, 'FORMAT');
    // and the failed open released the directory
    await writeFile(join(dir, 'library.json'), 'not json');
    await t.throwsAsync(VirtualTapeLibrary.open(dir, { timeScale: 0 }), { instanceOf: TapeError, message: /not valid JSON/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
