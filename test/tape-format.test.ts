import test from 'ava';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, mkdir, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import {
  dockForeignTar,
  readIndex,
  readRange,
  scanTape,
  tarStreamSize,
  toTapeLocation,
  writeArchive,
  type ArchiveMember,
  type IndexEntry,
} from '../src/tape/format.js';
import { decodeHeader, encodeFileHeader, parsePax, paxRecord, TAR_BLOCK } from '../src/tape/tar.js';
import { TapeError, type TapeDrive } from '../src/tape/types.js';
import { prng as rng } from '../src/util/prng.js';

const run = promisify(execFile);


function bytes(seed: number, n: number): Buffer {
  const r = rng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A member whose bytes arrive in irregular chunks. */
function member(objectId: string, path: string, data: Buffer, seed = 1): ArchiveMember {
  return {
    objectId,
    path,
    size: data.length,
    mtime: Date.UTC(2024, 0, 2, 3, 4, 5),
    open: () => {
      const r = rng(seed);
      const chunks: Buffer[] = [];
      for (let at = 0; at < data.length; ) {
        const n = Math.min(data.length - at, 1 + Math.floor(r() * 70000));
        chunks.push(data.subarray(at, at + n));
        at += n;
      }
      return Readable.from(chunks);
    },
  };
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

async function setup(blockSize: number, capacityBytes = 64 << 20) {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-fmt-'));
  const lib = await VirtualTapeLibrary.open(join(dir, 'lib'), { blockSize, capacityBytes, cartridges: 3, slots: 4, timeScale: 0 });
  const drive = await lib.mount('TD0001L9');
  return {
    dir,
    lib,
    drive,
    async done() {
      await lib.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function sampleSet(bs: number): { id: string; path: string; data: Buffer }[] {
  const longPath = `${'deep/'.repeat(15)}${'a-very-long-file-name-'.repeat(3)}.mkv`;
  return [
    { id: 'o0', path: 'empty.txt', data: Buffer.alloc(0) },
    { id: 'o1', path: 'one.bin', data: bytes(1, 1) },
    { id: 'o2', path: 'dir/511.bin', data: bytes(2, 511) },
    { id: 'o3', path: 'dir/512.bin', data: bytes(3, 512) },
    { id: 'o4', path: 'bs-1.bin', data: bytes(4, bs - 1) },
    { id: 'o5', path: 'bs.bin', data: bytes(5, bs) },
    { id: 'o6', path: 'bs+1.bin', data: bytes(6, bs + 1) },
    { id: 'o7', path: 'Musik/Björk/Jóga – live ♫.flac', data: bytes(7, 70001) },
    { id: 'o8', path: longPath, data: bytes(8, 5000) },
    { id: 'o9', path: 'video/big.mp4', data: bytes(9, 3 * 1024 * 1024 + 17) },
  ];
}

test('round trip: index entries, scanTape, byte-identical ranges for awkward sizes and names', async (t) => {
  const bs = 16 * 1024;
  const h = await setup(bs);
  try {
    const set = sampleSet(bs);
    t.true(Buffer.byteLength(set[8]!.path) > 100);
    const progress: number[] = [];
    const idx = await writeArchive(
      h.drive,
      set.map((m, i) => member(m.id, m.path, m.data, i + 1)),
      { onProgress: (b) => progress.push(b), now: new Date('2025-01-01T00:00:00Z') },
    );
    t.is(idx.tapeFile, 0);
    t.is(idx.indexFile, 1);
    t.is(idx.label, 'TD0001L9');
    t.is(idx.created, '2025-01-01T00:00:00.000Z');
    t.is(idx.entries.length, set.length);
    t.true(progress.length > 0 && progress.at(-1)! === (idx.tarEndBlock - idx.tarFirstBlock) * bs);
    t.is((idx.tarEndBlock - idx.tarFirstBlock) * bs, tarStreamSize(set.map((m) => ({ path: m.path, size: m.data.length })), bs));
    for (const [i, e] of idx.entries.entries()) {
      const src = set[i]!;
      t.is(e.objectId, src.id);
      t.is(e.path, src.path);
      t.is(e.size, src.data.length);
      t.is(e.sha256, sha(src.data));
      t.is(e.blockSize, bs);
      t.is(e.tapeFile, 0);
      t.true(e.offset >= 0 && e.offset < bs && e.offset % 512 === 0);
      t.is(e.mtime, Date.UTC(2024, 0, 2, 3, 4, 5) / 1000);
      const got = await collect(readRange(h.drive, e, 0, e.size));
      t.is(sha(got), e.sha256, `member ${e.path}`);
    }
    const loc = toTapeLocation(idx.entries[9]!);
    t.deepEqual(loc, {
      label: 'TD0001L9',
      tapeFile: 0,
      block: idx.entries[9]!.firstBlock,
      offset: idx.entries[9]!.offset,
      size: set[9]!.data.length,
      sha256: sha(set[9]!.data),
      blockSize: bs,
    });
    t.deepEqual(await collect(readRange(h.drive, loc, 100, 200)), set[9]!.data.subarray(100, 200));

    // a second archive appends after the first
    const idx2 = await writeArchive(h.drive, [member('p0', 'second/x.bin', bytes(99, 12345))]);
    t.is(idx2.tapeFile, 2);
    t.is(idx2.indexFile, 3);
    const scan = await scanTape(h.drive);
    t.is(scan.label, 'TD0001L9');
    t.is(scan.tapeFiles, 4);
    t.deepEqual(scan.unindexed, []);
    t.deepEqual(scan.indexes, [idx, idx2]);
    t.deepEqual(scan.entries, [...idx.entries, ...idx2.entries]);
    t.deepEqual(await readIndex(h.drive, 3), idx2);
    await t.throwsAsync(readIndex(h.drive, 2), { instanceOf: TapeError, message: /not a Tapedeck index/ });
    await t.throwsAsync(readIndex(h.drive, 7), { instanceOf: TapeError, message: /no tape file 7/ });
  } finally {
    await h.done();
  }
});

test('readRange: many random ranges equal the source bytes; no locate when already positioned', async (t) => {
  const bs = 8 * 1024;
  const h = await setup(bs);
  try {
    const set = sampleSet(bs);
    const idx = await writeArchive(h.drive, set.map((m, i) => member(m.id, m.path, m.data, i + 7)));
    const r = rng(1234);
    for (let i = 0; i < 150; i++) {
      const k = 1 + Math.floor(r() * (set.length - 1));
      const e = idx.entries[k]!;
      const src = set[k]!.data;
      const a = Math.floor(r() * src.length);
      const b = a + Math.floor(r() * Math.min(src.length - a, 200000));
      const got = await collect(readRange(h.drive, e, a, b, { chunkBlocks: 1 + Math.floor(r() * 5) }));
      if (!got.equals(src.subarray(a, b))) {
        t.fail(`range [${a},${b}) of ${e.path} differs`);
        return;
      }
    }
    t.pass('150 random ranges match');
    // empty range: no tape motion at all
    const s0 = h.lib.stats();
    t.is((await collect(readRange(h.drive, idx.entries[9]!, 10, 10))).length, 0);
    t.is(h.lib.stats().locates, s0.locates);

    // sequential ranges of one member: one locate for the first, none after
    const big = idx.entries[9]!;
    const src = set[9]!.data;
    await h.drive.rewind();
    const before = h.lib.stats().locates;
    const step = 3 * bs; // block-aligned steps relative to the data start keep the drive in place
    const parts: Buffer[] = [];
    for (let a = 0; a < src.length; a += step - (a === 0 ? big.offset : 0)) {
      const end = Math.min(src.length, a + step - (a === 0 ? big.offset : 0));
      parts.push(await collect(readRange(h.drive, big, a, end)));
    }
    t.true(Buffer.concat(parts).equals(src));
    t.is(h.lib.stats().locates - before, 1, 'only the first range located');
    // already at the block: no locate
    const e5 = idx.entries[5]!;
    await h.drive.locate(e5.firstBlock);
    const b2 = h.lib.stats().locates;
    t.true((await collect(readRange(h.drive, e5, 0, 10))).equals(set[5]!.data.subarray(0, 10)));
    t.is(h.lib.stats().locates, b2);
    await t.throwsAsync(collect(readRange(h.drive, big, 5, 4)), { instanceOf: TapeError, message: /outside member/ });
    await t.throwsAsync(collect(readRange(h.drive, big, 0, big.size + 1)), { instanceOf: TapeError, message: /outside member/ });
    await t.throwsAsync(collect(readRange(h.drive, { ...big, label: 'TD0002L9' }, 0, 1)), { instanceOf: TapeError, message: /holds TD0001L9/ });
    await t.throwsAsync(collect(readRange(h.drive, { ...big, blockSize: bs * 2 }, 0, 1)), { instanceOf: TapeError, message: /block size/ });
  } finally {
    await h.done();
  }
});

test('GNU tar lists and extracts the archive tape file byte-identically (256 KiB blocks, tar -b 512)', async (t) => {
  const bs = 256 * 1024;
  const h = await setup(bs, 256 << 20);
  try {
    const set = sampleSet(bs).filter((m) => m.data.length < 2 << 20);
    const idx = await writeArchive(h.drive, set.map((m, i) => member(m.id, m.path, m.data, i)));
    const tarFile = join(h.dir, 'archive.tar');
    const n = await h.lib.exportTapeFile('TD0001L9', idx.tapeFile, tarFile);
    t.is(n % bs, 0);
    const list = await run('tar', ['-b', '512', '-tvf', tarFile], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    const lines = list.stdout.trim().split('\n');
    t.is(lines.length, set.length);
    for (const [i, m] of set.entries()) {
      t.true(lines[i]!.endsWith(m.path), `listing line ${i}: ${lines[i]}`);
      t.true(lines[i]!.includes(` ${m.data.length} `), `size in listing line ${i}`);
    }
    const out = join(h.dir, 'x');
    await mkdir(out);
    await run('tar', ['-b', '512', '-xf', tarFile, '-C', out]);
    for (const m of set) {
      const got = await readFile(join(out, m.path));
      t.is(sha(got), sha(m.data), m.path);
    }
    // the index file is plain JSON padded with zeros
    const idxFile = join(h.dir, 'index.json');
    await h.lib.exportTapeFile('TD0001L9', idx.indexFile, idxFile);
    const raw = await readFile(idxFile);
    t.is(raw.length % bs, 0);
    t.deepEqual(JSON.parse(raw.toString('utf8').replace(/\0+$/, '')), idx);
  } finally {
    await h.done();
  }
});

async function tarAvailable(): Promise<boolean> {
  try {
    const { stdout } = await run('tar', ['--version']);
    return stdout.includes('GNU tar');
  } catch {
    return false;
  }
}

async function writeTapeFile(drive: TapeDrive, file: string): Promise<number> {
  await drive.seekToEod();
  const n = (await drive.status()).position!.fileNumber;
  await drive.writeBlocks(await readFile(file));
  await drive.writeFilemarks(1);
  return n;
}

for (const format of ['gnu', 'pax', 'ustar'] as const) {
  test(`a tar written by GNU tar (--format=${format}) is docked: entries, hashes, ranges`, async (t) => {
    if (!(await tarAvailable())) {
      t.log('GNU tar not installed: skipped');
      t.pass();
      return;
    }
    const bs = 32 * 1024;
    const h = await setup(bs);
    try {
      const src = join(h.dir, 'src');
      // ustar cannot hold names > 255 bytes or a > 100-byte last component
      const longPath = format === 'ustar' ? `${'sub/'.repeat(30)}file.bin` : `${'sub/'.repeat(30)}${'n'.repeat(120)}.bin`;
      const files: [string, Buffer][] = [
        ['a.txt', bytes(11, 0)],
        ['b/c.bin', bytes(12, bs + 3)],
        [format === 'ustar' ? 'b/cafe.bin' : 'b/café ☕.bin', bytes(13, 777)],
        [longPath, bytes(14, 100000)],
      ];
      for (const [p, d] of files) {
        await mkdir(dirname(join(src, p)), { recursive: true });
        await writeFile(join(src, p), d);
      }
      const tarFile = join(h.dir, 'foreign.tar');
      await run('tar', [`--format=${format}`, '-b', String(bs / 512), '-cf', tarFile, '-C', src, 'a.txt', 'b', longPath.split('/')[0]!]);
      t.is((await stat(tarFile)).size % bs, 0, 'GNU tar pads to whole records');
      // put something before it so it is not tape file 0
      await writeArchive(h.drive, [member('q', 'before.bin', bytes(5, 1000))]);
      const tapeFile = await writeTapeFile(h.drive, tarFile);
      t.is(tapeFile, 2);
      const dock = await dockForeignTar(h.drive, { tapeFile });
      t.is(dock.tapeFile, 2);
      t.deepEqual(dock.skipped, []);
      const byPath = new Map(dock.entries.map((e) => [e.path, e] as [string, IndexEntry]));
      t.is(dock.entries.length, files.length, dock.entries.map((e) => e.path).join(', '));
      for (const [p, d] of files) {
        const e = byPath.get(p);
        if (!e) {
          t.fail(`missing ${p}`);
          continue;
        }
        t.is(e.objectId, null);
        t.is(e.size, d.length);
        t.is(e.sha256, sha(d));
        t.is(e.tapeFile, 2);
        t.is(e.label, 'TD0001L9');
        t.true((await collect(readRange(h.drive, e, 0, e.size))).equals(d), p);
        if (d.length > 10) t.true((await collect(readRange(h.drive, e, 3, d.length - 4))).equals(d.subarray(3, d.length - 4)));
      }
      // scanTape sees the foreign tar as unindexed
      const scan = await scanTape(h.drive);
      t.deepEqual(scan.unindexed, [2]);
      t.is(scan.entries.length, 1);
    } finally {
      await h.done();
    }
  });
}

test('docking something that is not a tar answers FORMAT; a blank tape scans empty', async (t) => {
  const h = await setup(4096);
  try {
    t.deepEqual(await scanTape(h.drive), { label: 'TD0001L9', tapeFiles: 0, indexes: [], entries: [], unindexed: [] });
    await t.throwsAsync(dockForeignTar(h.drive), { instanceOf: TapeError, message: /is empty/ });
    await h.drive.writeBlocks(Buffer.alloc(4096, 0x41));
    await h.drive.writeFilemarks(1);
    await t.throwsAsync(dockForeignTar(h.drive), { instanceOf: TapeError, message: /no valid tar header/ });
    await t.throwsAsync(dockForeignTar(h.drive, { tapeFile: 1 }), { instanceOf: TapeError });
  } finally {
    await h.done();
  }
});

test('invalid members are refused before anything is written', async (t) => {
  const h = await setup(4096);
  try {
    for (const path of ['/abs', '../up', 'a/../b', 'a//b', '', 'back\\slash']) {
      const err = await t.throwsAsync(writeArchive(h.drive, [member('x', path, Buffer.alloc(1))]), { instanceOf: TapeError });
      t.is(err?.code, 'INVALID', path);
    }
    await t.throwsAsync(writeArchive(h.drive, [{ ...member('x', 'a', Buffer.alloc(1)), objectId: '' }]), { message: /objectId/ });
    t.is((await h.lib.cartridgeInfo('TD0001L9')).eod, 0, 'tape untouched');
  } finally {
    await h.done();
  }
});

test('a source that delivers the wrong size aborts the archive; the tape stays usable', async (t) => {
  const h = await setup(4096);
  try {
    const ok = member('a', 'a.bin', bytes(1, 9000));
    const lying: ArchiveMember = { ...member('b', 'b.bin', bytes(2, 5000)), size: 6000 };
    const err = await t.throwsAsync(writeArchive(h.drive, [ok, lying]), { instanceOf: TapeError });
    t.regex(err!.message, /b\.bin: source delivered 5000 of 6000 bytes/);
    const longer: ArchiveMember = { ...member('c', 'c.bin', bytes(3, 5000)), size: 100 };
    await t.throwsAsync(writeArchive(h.drive, [longer]), { message: /more than 100 bytes/ });
    const good = await writeArchive(h.drive, [member('d', 'd.bin', bytes(4, 100))]);
    const scan = await scanTape(h.drive);
    t.deepEqual(scan.entries, good.entries);
    t.deepEqual(scan.unindexed, [0], 'the aborted partial tar has no index');
    t.is(good.tapeFile, 1, 'the second failure wrote nothing to tape');
  } finally {
    await h.done();
  }
});

test('end of medium during an archive: error, partial file unindexed', async (t) => {
  const h = await setup(4096, 200 * 4096);
  try {
    await t.throwsAsync(writeArchive(h.drive, [member('a', 'a.bin', bytes(1, 300 * 4096))], { chunkBytes: 16 * 4096 }), {
      instanceOf: TapeError,
      message: /end of medium/,
    });
    const scan = await scanTape(h.drive);
    t.deepEqual(scan.indexes, []);
    t.deepEqual(scan.unindexed, [0]);
  } finally {
    await h.done();
  }
});

test('tar headers: pax for long, non-ASCII and huge members; decode round trip', (t) => {
  t.is(paxRecord('path', 'abc'), '12 path=abc\n');
  t.is(paxRecord('x', 'y'.repeat(90)), `96 x=${'y'.repeat(90)}\n`);
  const rollover = paxRecord('x', 'y'.repeat(94)); // 98-byte body: 2 digits would make 100, so it needs 3
  t.is(rollover, `101 x=${'y'.repeat(94)}\n`);
  t.is(Buffer.byteLength(rollover), 101);
  const plain = encodeFileHeader({ path: 'a/b.txt', size: 1234, mtime: 1700000000 });
  t.is(plain.length, TAR_BLOCK);
  const d = decodeHeader(plain)!;
  t.is(d.name, 'a/b.txt');
  t.is(d.size, 1234);
  t.is(d.mtime, 1700000000);
  t.is(d.type, '0');
  t.true(d.ustar);
  const huge = encodeFileHeader({ path: 'big.bin', size: 20 * 1024 ** 3, mtime: 0 });
  t.is(huge.length, 3 * TAR_BLOCK);
  const ph = decodeHeader(huge.subarray(0, TAR_BLOCK))!;
  t.is(ph.type, 'x');
  const pax = parsePax(huge.subarray(TAR_BLOCK, TAR_BLOCK + ph.size));
  t.is(pax.get('size'), String(20 * 1024 ** 3));
  t.is(pax.get('path'), undefined);
  const uni = encodeFileHeader({ path: 'Ä/ö.mp3', size: 1, mtime: 0 });
  const pu = parsePax(uni.subarray(TAR_BLOCK, TAR_BLOCK + decodeHeader(uni)!.size));
  t.is(pu.get('path'), 'Ä/ö.mp3');
  const bad = Buffer.from(plain);
  bad[10] = bad[10]! ^ 1;
  t.is(decodeHeader(bad), undefined, 'checksum mismatch is not a header');
});

test('openTapeLibrary opens the virtual backend from a config object', async (t) => {
  const { openTapeLibrary } = await import('../src/tape/index.js');
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-open-'));
  try {
    const lib = await openTapeLibrary({ backend: 'virtual', dir, cartridges: 1, blockSize: 4096, capacityBytes: 1 << 20, timeScale: 0 });
    t.is(lib.kind, 'virtual');
    t.deepEqual((await lib.changer.find('TD0001L9')).where, 'slot');
    await lib.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
