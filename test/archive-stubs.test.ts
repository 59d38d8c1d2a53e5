// Head stubs: which ranges are kept (head by bitrate, moov wherever it is,
// Matroska SeekHead targets, tail), and the stub file helpers the HTTP side uses.
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeStubRanges,
  headBytes,
  mergeRanges,
  openStubRange,
  readStub,
  stubCoveredFrom,
  stubCovers,
  stubMissing,
  stubOffset,
  writeStub,
} from '../src/archive/stubs.js';
import { bytes } from './fixtures/archive/setup.js';

const dir = await mkdtemp(join(tmpdir(), 'tapedeck-stubs-'));
test.after.always(() => rm(dir, { recursive: true, force: true }));

function box(type: string, payload: Buffer, large = false): Buffer {
  if (large) {
    const h = Buffer.alloc(16);
    h.writeUInt32BE(1, 0);
    h.write(type, 4, 'latin1');
    h.writeBigUInt64BE(BigInt(16 + payload.length), 8);
    return Buffer.concat([h, payload]);
  }
  const h = Buffer.alloc(8);
  h.writeUInt32BE(8 + payload.length, 0);
  h.write(type, 4, 'latin1');
  return Buffer.concat([h, payload]);
}

const ftyp = box('ftyp', Buffer.from('isom\0\0\x02\0isomiso2avc1mp41', 'latin1'));

test('mergeRanges sorts, clips and merges touching or close ranges', (t) => {
  t.deepEqual(mergeRanges([{ start: 50, end: 60 }, { start: 0, end: 10 }, { start: 10, end: 20 }, { start: 55, end: 200 }], 100), [
    { start: 0, end: 20 },
    { start: 50, end: 100 },
  ]);
  t.deepEqual(mergeRanges([{ start: 0, end: 10 }, { start: 15, end: 20 }], 100, 5), [{ start: 0, end: 20 }]);
  t.deepEqual(mergeRanges([{ start: 0, end: 10 }, { start: 16, end: 20 }], 100, 5), [{ start: 0, end: 10 }, { start: 16, end: 20 }]);
  t.deepEqual(mergeRanges([{ start: 5, end: 5 }], 100), []);
});

test('head: seconds × bitrate, at least the minimum, at most the file', (t) => {
  const opts = { headSeconds: 120, headMin: 1000 };
  t.is(headBytes({ bitrate: 500_000 }, 1e9, opts), 60_000_000);
  t.is(headBytes({ bitrate: 1 }, 1e9, opts), 1000);
  t.is(headBytes({ bitrate: 500_000 }, 5000, opts), 5000);
  t.is(headBytes({}, 1e9, opts), 1000, 'unknown bitrate: the minimum');
  t.is(headBytes({ duration: 100 }, 1e6, opts), 1e6, 'bitrate from size/duration');
  t.is(headBytes({ duration: 1000 }, 1e6, { headSeconds: 120, headMin: 0 }), 120_000);
});

test('MP4 with moov at the end: head, the whole moov and the tail are kept', async (t) => {
  const mdat = box('mdat', bytes(1, 1_000_000));
  const moov = box('moov', Buffer.concat([box('mvhd', Buffer.alloc(100)), bytes(2, 30_000)]));
  const file = join(dir, 'tail-moov.mp4');
  await writeFile(file, Buffer.concat([ftyp, mdat, moov]));
  const moovAt = ftyp.length + mdat.length;
  const size = moovAt + moov.length;
  const ranges = await computeStubRanges(file, { bitrate: 100 }, { headSeconds: 10, headMin: 4096, tailBytes: 8192, mergeGap: 0 });
  t.deepEqual(ranges, [
    { start: 0, end: 4096 },
    { start: moovAt, end: size },
  ]);
});

test('MP4 with moov in front (and a 64-bit mdat): moov beyond the head is kept', async (t) => {
  const moov = box('moov', bytes(3, 50_000));
  const mdat = box('mdat', bytes(4, 300_000), true);
  const file = join(dir, 'front-moov.mp4');
  await writeFile(file, Buffer.concat([ftyp, moov, mdat]));
  const size = ftyp.length + moov.length + mdat.length;
  const ranges = await computeStubRanges(file, undefined, { headSeconds: 0, headMin: 1024, tailBytes: 1000, mergeGap: 0 });
  t.deepEqual(ranges, [
    { start: 0, end: ftyp.length + moov.length },
    { start: size - 1000, end: size },
  ]);
});

test('the real MP4 fixture: its moov is covered', async (t) => {
  const file = 'test/fixtures/media/clip-720p.mp4';
  const buf = await readFile(file);
  let pos = 0;
  let moov: [number, number] | undefined;
  while (pos + 8 <= buf.length) {
    const size = buf.readUInt32BE(pos);
    if (buf.toString('latin1', pos + 4, pos + 8) === 'moov') moov = [pos, pos + size];
    pos += size;
  }
  t.truthy(moov);
  const ranges = await computeStubRanges(file, undefined, { headSeconds: 0, headMin: 512, tailBytes: 0, mergeGap: 0 });
  t.true(stubCovers({ ranges }, moov![0], moov![1]));
});

test('Matroska: the elements the SeekHead points to (Cues at the end) are kept', async (t) => {
  const file = 'test/fixtures/media/clip.mkv';
  const buf = await readFile(file);
  const cues = buf.lastIndexOf(Buffer.from([0x1c, 0x53, 0xbb, 0x6b]));
  t.true(cues > buf.length / 2, 'fixture has its Cues at the end');
  const ranges = await computeStubRanges(file, undefined, { headSeconds: 0, headMin: 256, tailBytes: 0, mergeGap: 0 });
  t.true(stubCovers({ ranges }, cues, buf.length), 'Cues covered');
  const cluster = buf.indexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75]));
  t.true(stubCovers({ ranges }, 0, cluster), 'everything before the first cluster (SeekHead, Info, Tracks, Tags)');
  t.false(stubCovers({ ranges }, cluster, cluster + 1000), 'clusters are not kept');
});

test('not media or empty: head and tail only, never a throw', async (t) => {
  const junk = join(dir, 'junk.mkv');
  await writeFile(junk, bytes(9, 100_000));
  t.deepEqual(await computeStubRanges(junk, undefined, { headSeconds: 0, headMin: 1000, tailBytes: 2000, mergeGap: 0 }), [
    { start: 0, end: 1000 },
    { start: 98_000, end: 100_000 },
  ]);
  const empty = join(dir, 'empty.mp4');
  await writeFile(empty, Buffer.alloc(0));
  t.deepEqual(await computeStubRanges(empty, undefined, { headSeconds: 10, headMin: 1000 }), []);
  const trunc = join(dir, 'trunc.mp4');
  await writeFile(trunc, Buffer.concat([ftyp, Buffer.from([0, 0, 0, 0x40, 0x6d, 0x6f])])); // box header cut short
  t.deepEqual(await computeStubRanges(trunc, undefined, { headSeconds: 0, headMin: 10, tailBytes: 0, mergeGap: 0 }), [{ start: 0, end: ftyp.length }]);
});

test('stub files: written back to back, read by original offsets, gaps reported', async (t) => {
  const data = bytes(11, 200_000);
  const src = join(dir, 'src.bin');
  await writeFile(src, data);
  const ranges = [
    { start: 0, end: 1000 },
    { start: 5000, end: 7000 },
    { start: 199_000, end: 200_000 },
  ];
  const stub = await writeStub(src, ranges, join(dir, 'stubs', 'x.stub'));
  const file = await readFile(stub.path);
  t.is(file.length, 4000);
  t.true(file.equals(Buffer.concat(ranges.map((r) => data.subarray(r.start, r.end)))));
  t.is(stubOffset(stub, 5000), 1000);
  t.is(stubOffset(stub, 199_999), 3999);
  t.is(stubOffset(stub, 1000), undefined);
  t.true(stubCovers(stub, 5500, 7000));
  t.false(stubCovers(stub, 5500, 7001));
  t.true(stubCovers(stub, 10, 10));
  t.is(stubCoveredFrom(stub, 6000), 1000);
  t.is(stubCoveredFrom(stub, 3000), 0);
  t.deepEqual(stubMissing(stub, 500, 8000), [
    { start: 1000, end: 5000 },
    { start: 7000, end: 8000 },
  ]);
  t.deepEqual(stubMissing(stub, 0, 1000), []);
  t.true((await readStub(stub, 5100, 6900)).equals(data.subarray(5100, 6900)));
  const parts: Buffer[] = [];
  for await (const c of openStubRange(stub, 199_500, 200_000)) parts.push(c as Buffer);
  t.true(Buffer.concat(parts).equals(data.subarray(199_500)));
  t.throws(() => openStubRange(stub, 900, 1100), { instanceOf: RangeError });
});
