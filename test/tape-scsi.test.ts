import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { ScsiTapeLibrary, type CommandRunner } from '../src/tape/scsi.js';
import { parseMtStatus, parseMtTell, parseMtxStatus } from '../src/tape/scsi-parse.js';
import { readRange, scanTape, writeArchive } from '../src/tape/format.js';
import { TapeError } from '../src/tape/types.js';
import { ScsiEmulator } from './fixtures/tape/scsi-emulator.js';
import { patternBlocks, readStructure, runTapeSuite } from './tape-compliance.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tape');
const fixture = (name: string) => readFile(join(fixtures, name), 'utf8');

// --- parsing ----------------------------------------------------------------------

test('mtx status: IBM TS4300 layout (2 drives, 23 slots + 1 I/E, padded volume tags)', async (t) => {
  const st = parseMtxStatus(await fixture('mtx-status-ibm-ts4300.txt'));
  t.deepEqual(st.declared, { drives: 2, slots: 24, importExport: 1 });
  t.is(st.device, '/dev/sg3');
  t.deepEqual(st.drives, [
    { drive: 0, full: true, sourceSlot: 3, volumeTag: 'TD0003L9' },
    { drive: 1, full: false },
  ]);
  t.is(st.slots.length, 24);
  t.deepEqual(st.slots[0], { slot: 1, full: true, importExport: false, volumeTag: 'TD0001L9' });
  t.deepEqual(st.slots[2], { slot: 3, full: false, importExport: false });
  t.deepEqual(st.slots[22], { slot: 23, full: true, importExport: false, volumeTag: 'CLN001L1' });
  t.deepEqual(st.slots[23], { slot: 24, full: false, importExport: true });
});

test('mtx status: HPE MSL3040 layout (unknown source, no barcode, alternate tag, full mail slot)', async (t) => {
  const st = parseMtxStatus(await fixture('mtx-status-hpe-msl3040.txt'));
  t.deepEqual(st.declared, { drives: 2, slots: 40, importExport: 3 });
  t.deepEqual(st.drives[0], { drive: 0, full: true, volumeTag: 'VX0101L8' });
  t.deepEqual(st.drives[1], { drive: 1, full: true, sourceSlot: 10, volumeTag: 'VX0110L8', alternateVolumeTag: 'ALT0110' });
  t.deepEqual(st.slots[1], { slot: 2, full: true, importExport: false });
  t.deepEqual(st.slots[37], { slot: 38, full: true, importExport: true, volumeTag: 'VX0199L8' });
  t.is(st.slots.filter((s) => s.importExport).length, 3);
});

test('mtx status: autoloader without mail slot; garbage is a FORMAT error', async (t) => {
  const st = parseMtxStatus(await fixture('mtx-status-autoloader.txt'));
  t.deepEqual(st.declared, { drives: 1, slots: 8, importExport: 0 });
  t.is(st.slots.filter((s) => s.full).length, 4);
  const err = t.throws(() => parseMtxStatus('mtx: Request Sense: Long Report=yes\n'), { instanceOf: TapeError });
  t.is(err?.code, 'FORMAT');
});

test('mt status: BOT, after a filemark, at EOD, write-protected mid-file, empty drive, fast EOD', async (t) => {
  const bot = parseMtStatus(await fixture('mt-status-lto9-bot.txt'));
  t.is(bot.driveType, 'SCSI 2');
  t.is(bot.fileNumber, 0);
  t.is(bot.blockNumber, 0);
  t.is(bot.partition, 0);
  t.is(bot.blockSize, 262144);
  t.is(bot.densityCode, 0x60);
  t.is(bot.densityName, 'LTO-9');
  t.is(bot.gstat, 0x41010000);
  t.deepEqual([...bot.flags].sort(), ['BOT', 'IM_REP_EN', 'ONLINE']);

  const fm = parseMtStatus(await fixture('mt-status-lto9-file2.txt'));
  t.is(fm.fileNumber, 2);
  t.true(fm.flags.has('EOF'));
  t.false(fm.flags.has('EOD'));

  const eod = parseMtStatus(await fixture('mt-status-lto9-eod.txt'));
  t.is(eod.fileNumber, 4);
  t.true(eod.flags.has('EOD'));
  t.true(eod.flags.has('ONLINE'));

  const wp = parseMtStatus(await fixture('mt-status-lto8-wrprot-midfile.txt'));
  t.is(wp.blockNumber, 1234);
  t.is(wp.densityName, 'LTO-8');
  t.is(wp.softErrors, 3);
  t.true(wp.flags.has('WR_PROT'));

  const empty = parseMtStatus(await fixture('mt-status-empty.txt'));
  t.is(empty.fileNumber, -1);
  t.is(empty.blockSize, 0);
  t.false(empty.flags.has('ONLINE'));
  t.true(empty.flags.has('DR_OPEN'));

  const fast = parseMtStatus(await fixture('mt-status-fast-eod.txt'));
  t.is(fast.fileNumber, -1);
  t.true(fast.flags.has('EOD'));

  t.is(parseMtTell(await fixture('mt-tell.txt')), 48213);
  t.throws(() => parseMtTell('/dev/nst0: Input/output error'), { instanceOf: TapeError });
  t.throws(() => parseMtStatus(''), { instanceOf: TapeError });
});

// --- the shared suite, through an emulated mt-st / mtx / st device ------------------

async function emulated(o: { drives: number; blockSize: number; capacityBytes: number; cartridges: number }, extra: Partial<ConstructorParameters<typeof ScsiTapeLibrary>[0]> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-scsi-'));
  const backing = await VirtualTapeLibrary.open(join(dir, 'media'), {
    drives: o.drives,
    blockSize: o.blockSize,
    capacityBytes: o.capacityBytes,
    cartridges: o.cartridges,
    slots: 8,
    timeScale: 0,
  });
  const labels = await backing.labels();
  const emu = new ScsiEmulator(backing, { storageSlots: 8, ieSlots: 1, labels });
  const statePath = join(dir, 'scsi-state.json');
  const make = () =>
    new ScsiTapeLibrary({
      changer: emu.changer,
      drives: emu.drives.map((d) => ({ device: d.device })),
      blockSize: o.blockSize,
      run: emu.run,
      io: emu.io,
      sleep: async () => undefined,
      statePath,
      ...extra,
    }).init();
  let lib = await make();
  return {
    emu,
    backing,
    dir,
    labels,
    get library() {
      return lib;
    },
    async reopen() {
      await lib.close();
      lib = await make();
      return lib;
    },
    injectReadError: (label: string, block: number, count: number) => backing.injectReadError(label, block, { count }),
    operatorRemove: (label: string) => emu.operatorRemove(label),
    operatorInsert: (label: string) => emu.operatorInsert(label),
    async cleanup() {
      await lib.close();
      await backing.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

runTapeSuite(test, 'scsi (emulated mt-st/mtx)', (o) => emulated(o));

// --- exact command sequences ------------------------------------------------------------

const O = { drives: 2, blockSize: 4096, capacityBytes: 4 << 20, cartridges: 3 };

test('command sequence: cold mount, write a tape file, locate, read to the filemark, unload', async (t) => {
  const h = await emulated(O);
  try {
    const lib = h.library;
    const log = h.emu.log;
    const d = await lib.mount('TD0002L9');
    t.deepEqual(log.splice(0), [
      'mtx -f /dev/sg3 status',
      'mtx -f /dev/sg3 status',
      'mtx -f /dev/sg3 load 2 0',
      'mt -f /dev/nst0 status',
      'mt -f /dev/nst0 setblk 4096',
    ]);
    await d.writeBlocks(patternBlocks('a', 3, 4096));
    await d.writeBlocks(patternBlocks('b', 2, 4096));
    t.is(await d.tell(), 5, 'tell while writing does not touch the device');
    await d.writeFilemarks(2);
    t.deepEqual(log.splice(0), ['mt -f /dev/nst0 tell', 'open /dev/nst0 write', 'close /dev/nst0', 'mt -f /dev/nst0 weof 1']);
    await d.locate(3);
    t.deepEqual((await d.readBlocks(8)).data, patternBlocks('b', 2, 4096));
    t.deepEqual(await d.readBlocks(8), { data: Buffer.alloc(0), mark: 'filemark' });
    t.deepEqual(log.splice(0), [
      'mt -f /dev/nst0 seek 3',
      'open /dev/nst0 read',
      'close /dev/nst0',
      'mt -f /dev/nst0 status',
    ]);
    t.deepEqual(await d.readBlocks(8), { data: Buffer.alloc(0), mark: 'filemark' }, 'the second filemark (empty tape file)');
    t.deepEqual(await d.readBlocks(8), { data: Buffer.alloc(0), mark: 'eod' });
    log.splice(0);
    t.is(await lib.changer.unload(0), 2);
    t.deepEqual(log.splice(0), ['mt -f /dev/nst0 offline', 'mtx -f /dev/sg3 status', 'mtx -f /dev/sg3 unload 2 0']);
  } finally {
    await h.cleanup();
  }
});

test('command sequence: export and import through the mail slot, with eepos', async (t) => {
  const h = await emulated(O, { eepos: 1 });
  try {
    const lib = h.library;
    await lib.changer.exportCartridge('TD0003L9');
    t.deepEqual(h.emu.log.splice(0), ['mtx -f /dev/sg3 status', 'mtx -f /dev/sg3 eepos 1 transfer 3 9']);
    t.deepEqual(await lib.changer.find('TD0003L9'), { where: 'ie', slot: 9 }, 'still in the mail slot');
    const inv = await lib.changer.inventory();
    t.deepEqual(inv.ie, [{ slot: 9, full: true, importExport: true, label: 'TD0003L9' }]);
    t.deepEqual(inv.offline, ['TD0003L9']);
    await t.throwsAsync(lib.changer.load('TD0003L9', 0), { instanceOf: TapeError, message: /offline/ });
    await h.emu.operatorRemove('TD0003L9');
    const state = JSON.parse(await readFile(join(h.dir, 'scsi-state.json'), 'utf8'));
    t.deepEqual(state.offline, ['TD0003L9']);
    await t.throwsAsync(lib.changer.importCartridge('TD0003L9'), { instanceOf: TapeError, message: /mail slot/ });
    await h.emu.operatorInsert('TD0003L9');
    h.emu.log.splice(0);
    t.is(await lib.changer.importCartridge('TD0003L9', 5), 5);
    t.deepEqual(h.emu.log.splice(0), ['mtx -f /dev/sg3 status', 'mtx -f /dev/sg3 eepos 1 transfer 9 5']);
    t.deepEqual(await lib.changer.find('TD0003L9'), { where: 'slot', slot: 5 });
  } finally {
    await h.cleanup();
  }
});

test('reading data then a filemark reports the filemark on the next read, even across a tell', async (t) => {
  const h = await emulated(O);
  try {
    const d = await h.library.mount('TD0001L9');
    const a = patternBlocks('a', 2, 4096);
    await d.writeBlocks(a);
    await d.writeFilemarks(1);
    await d.rewind();
    const r = await d.readBlocks(5);
    t.deepEqual(r.data, a);
    t.is(r.mark, undefined, 'st returns the data first');
    t.is(await d.tell(), 2, 'closing backs up over the filemark that was hit');
    t.is(await d.readBlock(), 'filemark');
    t.is(await d.tell(), 3);
    t.is(await d.readBlock(), 'eod');
  } finally {
    await h.cleanup();
  }
});

test('waiting for a loaded cartridge: polls mt status until ONLINE, times out with IO', async (t) => {
  const h = await emulated(O);
  try {
    let notReady = 2;
    const sleeps: number[] = [];
    const empty = await fixture('mt-status-empty.txt');
    const run: CommandRunner = async (file, args) => {
      if (file === 'mt' && args[2] === 'status' && notReady > 0) {
        notReady--;
        return { stdout: empty, stderr: '', code: 0 };
      }
      return h.emu.run(file, args);
    };
    const lib = await new ScsiTapeLibrary({
      changer: h.emu.changer,
      drives: [{ device: '/dev/nst0' }, { device: '/dev/nst1' }],
      blockSize: 4096,
      run,
      io: h.emu.io,
      pollMs: 500,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    }).init();
    await lib.changer.load('TD0001L9', 1);
    t.deepEqual(sleeps, [500, 500]);
    t.true((await lib.drives[1]!.status()).ready);
    notReady = 1000;
    const lib2 = new ScsiTapeLibrary({
      changer: h.emu.changer,
      drives: [{ device: '/dev/nst0' }],
      blockSize: 4096,
      run,
      io: h.emu.io,
      readyTimeoutMs: 0,
      sleep: async () => undefined,
    });
    const err = await t.throwsAsync(lib2.changer.load('TD0002L9', 0), { instanceOf: TapeError });
    t.is(err?.code, 'IO');
    t.regex(err!.message, /not ready/);
  } finally {
    await h.cleanup();
  }
});

test('command failures map to error codes; a missing program is an IO error', async (t) => {
  const lib = new ScsiTapeLibrary({
    changer: '/dev/sg9',
    drives: [{ device: '/dev/nst0' }],
    run: async (file) =>
      file === 'mtx'
        ? { stdout: '', stderr: 'mtx: No such file or directory\n', code: 127 }
        : { stdout: '', stderr: '/dev/nst0: Device or resource busy\n', code: 1 },
  });
  const e1 = await t.throwsAsync(lib.changer.inventory(), { instanceOf: TapeError });
  t.is(e1?.code, 'IO');
  t.is(e1?.details?.command, 'mtx -f /dev/sg9 status');
  const e2 = await t.throwsAsync(lib.drives[0]!.rewind(), { instanceOf: TapeError });
  t.is(e2?.code, 'BUSY');
  t.throws(() => new ScsiTapeLibrary({ changer: '/dev/sg9', drives: [] }), { instanceOf: TapeError });
  t.throws(() => new ScsiTapeLibrary({ changer: '/dev/sg9', drives: [{ device: '/dev/nst0' }], blockSize: 1000 }), { instanceOf: TapeError });
});

test('the tape format works unchanged over the SCSI backend', async (t) => {
  const h = await emulated({ ...O, blockSize: 8192, capacityBytes: 16 << 20 });
  try {
    const d = await h.library.mount('TD0001L9');
    const data = [Buffer.alloc(0), patternBlocks('m1', 3, 1000), patternBlocks('m2', 40, 999)];
    const idx = await writeArchive(
      d,
      data.map((b, i) => ({ objectId: `o${i}`, path: `dir/m${i}.bin`, size: b.length, open: () => Readable.from([b]) })),
    );
    t.is(idx.label, 'TD0001L9');
    const idx2 = await writeArchive(d, [{ objectId: 'x', path: 'x.bin', size: 5, open: () => Readable.from([Buffer.from('hello')]) }]);
    t.is(idx2.tapeFile, 2);
    const scan = await scanTape(d);
    t.deepEqual(scan.entries, [...idx.entries, ...idx2.entries]);
    for (const [i, e] of idx.entries.entries()) {
      const parts: Buffer[] = [];
      for await (const b of readRange(d, e, 0, e.size)) parts.push(b);
      t.deepEqual(Buffer.concat(parts), data[i]);
    }
    const parts: Buffer[] = [];
    for await (const b of readRange(d, idx.entries[2]!, 12345, 30000)) parts.push(b);
    t.deepEqual(Buffer.concat(parts), data[2]!.subarray(12345, 30000));
    await d.rewind();
    const s = await readStructure(d, 4);
    t.is(s.filter((x) => x === 'FM').length, 4);
  } finally {
    await h.cleanup();
  }
});
