import test from 'ava';
import { appendFile, readFile, readdir, rm, stat, writeFile, mkdir, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SegmentCache, itemDirName, segmentExtent, segmentFile, SEGMENT_FILE_RE, JOURNAL } from '../src/staging/cache.js';
import { FrameDecoder, encodeFrame, ProtocolError, checkClientMessage, MAX_FRAME, toWireError, StagerError } from '../src/staging/protocol.js';
import { TapeError } from '../src/tape/types.js';
import { tempDir, removeDir } from './fixtures/staging/harness.js';

const SEG = 4096;

/** Writes a complete segment the way the worker does: reserve, write, commit. */
async function put(c: SegmentCache, item: string, seg: number, len = SEG, fill = seg & 0xff): Promise<boolean> {
  if (!c.reserve(len)) return false;
  const fh = await c.openForWrite(item, seg);
  await fh.write(Buffer.alloc(len, fill), 0, len, 0);
  await fh.datasync();
  await fh.close();
  c.commit(item, seg, len);
  return true;
}

test('segment geometry and names', (t) => {
  t.deepEqual(segmentExtent(10_000, SEG, 0), { start: 0, len: 4096 });
  t.deepEqual(segmentExtent(10_000, SEG, 2), { start: 8192, len: 10_000 - 8192 });
  t.deepEqual(segmentExtent(10_000, SEG, 3), { start: 12288, len: 0 });
  t.is(itemDirName('42'), 'i42');
  t.regex(itemDirName('../etc/passwd'), /^h[0-9a-f]{40}$/);
  t.regex(itemDirName('a b'), /^h/);
  t.true(SEGMENT_FILE_RE.test(segmentFile('abc', 7)));
  t.true(SEGMENT_FILE_RE.test(segmentFile('../../x', 7)));
  t.false(SEGMENT_FILE_RE.test('../i1/0'));
  t.false(SEGMENT_FILE_RE.test('i1/0/../../x'));
});

test('LRU eviction to the cap; leased and pinned segments are never evicted', async (t) => {
  const dir = await tempDir();
  try {
    const evicted: string[] = [];
    const c = await SegmentCache.open({ dir, capacity: 4 * SEG, segmentSize: SEG });
    c.on('evict', (e: { itemId: string; seg: number }) => evicted.push(`${e.itemId}/${e.seg}`));
    c.ensureItem('a', 'sha-a');
    c.ensureItem('b', 'sha-b');
    for (let i = 0; i < 4; i++) t.true(await put(c, 'a', i));
    c.lookup('a', 0); // a/0 becomes most recently used
    c.lease('a', 1); // a/1 is being read
    t.true(await put(c, 'b', 0));
    t.deepEqual(evicted, ['a/2'], 'least recently used unleased segment goes first');
    c.pin('a', true);
    t.true(await put(c, 'b', 1), 'room is made by evicting the only unpinned, unleased segment');
    t.deepEqual(evicted, ['a/2', 'b/0'], 'a is pinned: only b could go');
    t.false(existsSync(c.pathOf('a', 2)));
    t.false(existsSync(c.pathOf('b', 0)));
    // everything left is pinned or leased: no room
    c.lease('b', 1);
    t.false(c.reserve(SEG));
    t.false(c.couldFit(SEG));
    c.unlease('b', 1);
    t.true(c.couldFit(SEG));
    c.pin('a', false);
    c.unlease('a', 1);
    t.is(c.use().segments, 4);
    t.is(c.use().used, 4 * SEG);
    t.is(c.evictions, 2);
    await c.close();
  } finally {
    await removeDir(dir);
  }
});

test('paused partial fills the worker may drop count as room: couldFit agrees with reserve (no CACHE_FULL lock-up)', async (t) => {
  // The worker waits with couldFit before a tape pass; reserve() drops paused partial fills
  // nobody reads. A cache filled by such fills (reserved, never committed) must not answer
  // "no room" forever: before the fix, couldFit ignored them and every request got CACHE_FULL.
  const dir = await tempDir();
  try {
    const partials = [SEG, SEG, SEG, SEG];
    const c = await SegmentCache.open({
      dir,
      capacity: 4 * SEG,
      segmentSize: SEG,
      dropPartials: (need) => {
        let freed = 0;
        while (freed < need && partials.length) {
          freed += partials.pop()!;
          c.unreserve(SEG);
        }
        return freed;
      },
      droppablePartials: () => partials.reduce((a, b) => a + b, 0),
    });
    c.ensureItem('x', 'sha-x');
    for (let i = 0; i < 4; i++) t.true(c.reserve(SEG), 'four fills take the whole cache');
    t.true(c.couldFit(SEG), 'their bytes can be dropped');
    t.true(await put(c, 'x', 0), 'and reserve drops one of them');
    t.is(partials.length, 3);
    // the segment is being read and nothing droppable is left: no room
    c.lease('x', 0);
    partials.length = 0;
    t.false(c.couldFit(SEG));
    await c.close();
  } finally {
    await removeDir(dir);
  }
});

test('the index survives a restart; a partial segment of a crash is deleted, never served', async (t) => {
  const dir = await tempDir();
  try {
    let c = await SegmentCache.open({ dir, capacity: 64 * SEG, segmentSize: SEG });
    c.ensureItem('m', 'sha1');
    t.true(await put(c, 'm', 0));
    t.true(await put(c, 'm', 1, 1000));
    c.pin('m', true);
    // a fill that was being written when the process died: file present, never committed
    t.true(c.reserve(SEG));
    const fh = await c.openForWrite('m', 2);
    await fh.write(Buffer.alloc(1234, 7), 0, 1234, 0);
    await fh.close();
    // no close(): simulate a crash (the journal lines written so far are on disk)
    await new Promise((r) => setTimeout(r, 50));
    c = await SegmentCache.open({ dir, capacity: 64 * SEG, segmentSize: SEG });
    t.deepEqual(c.segmentsOf('m'), [0, 1]);
    t.true(c.isPinned('m'));
    t.false(c.has('m', 2));
    t.false(existsSync(c.pathOf('m', 2)), 'the partial segment file is gone');
    t.deepEqual(c.lookup('m', 1), { len: 1000 });
    // a segment whose file was truncated behind our back is dropped
    await writeFile(c.pathOf('m', 1), Buffer.alloc(10));
    await c.close();
    c = await SegmentCache.open({ dir, capacity: 64 * SEG, segmentSize: SEG });
    t.deepEqual(c.segmentsOf('m'), [0]);
    await c.close();
  } finally {
    await removeDir(dir);
  }
});

test('journal: torn last line ignored; other segment size starts empty; content change drops old segments', async (t) => {
  const dir = await tempDir();
  try {
    let c = await SegmentCache.open({ dir, capacity: 64 * SEG, segmentSize: SEG });
    c.ensureItem('x', 'v1');
    t.true(await put(c, 'x', 0));
    t.true(await put(c, 'x', 1));
    await c.close();
    await appendFile(join(dir, JOURNAL), '{"op":"del","d":"ix","se');
    c = await SegmentCache.open({ dir, capacity: 64 * SEG, segmentSize: SEG });
    t.deepEqual(c.segmentsOf('x'), [0, 1]);
    // same item, other content (re-archived after an edit): its old segments must go
    c.ensureItem('x', 'v2');
    t.deepEqual(c.segmentsOf('x'), []);
    t.true(await put(c, 'x', 3));
    await c.close();
    c = await SegmentCache.open({ dir, capacity: 64 * SEG, segmentSize: SEG });
    t.deepEqual(c.segmentsOf('x'), [3]);
    await c.close();
    c = await SegmentCache.open({ dir, capacity: 64 * 2 * SEG, segmentSize: 2 * SEG });
    t.deepEqual(c.segmentsOf('x'), [], 'segments of another size are not reused');
    t.deepEqual((await readdir(dir)).filter((n) => n !== JOURNAL && n !== 'needed.json'), []);
    await c.close();
  } finally {
    await removeDir(dir);
  }
});

test('a symlink planted in the cache is removed, not followed', async (t) => {
  const dir = await tempDir();
  const outside = await tempDir();
  try {
    let c = await SegmentCache.open({ dir, capacity: 64 * SEG, segmentSize: SEG });
    c.ensureItem('s', 'sha');
    t.true(await put(c, 's', 0));
    await c.close();
    const secret = join(outside, 'secret');
    await writeFile(secret, 'x'.repeat(SEG));
    // replace the segment file with a link to a file outside the cache (same size as the segment)
    await rm(join(dir, 'is', '0'));
    await symlink(secret, join(dir, 'is', '0'));
    c = await SegmentCache.open({ dir, capacity: 64 * SEG, segmentSize: SEG });
    t.deepEqual(c.segmentsOf('s'), [], 'a symlink is not a segment');
    t.false(existsSync(join(dir, 'is', '0')), 'the link was removed');
    t.is((await stat(secret)).size, SEG, 'its target was not touched');
    // writing a segment never follows a link either
    await mkdir(join(dir, 'is'), { recursive: true });
    await symlink(secret, join(dir, 'is', '0'));
    await t.throwsAsync(c.openForWrite('s', 0), { code: 'ELOOP' });
    t.is(await readFile(secret, 'utf8'), 'x'.repeat(SEG));
    await c.close();
  } finally {
    await removeDir(dir);
    await removeDir(outside);
  }
});

test('frames: split across chunks, binary payloads, malformed input', (t) => {
  const d = new FrameDecoder();
  const bin = Buffer.from([1, 2, 3, 4, 5]);
  const wire = Buffer.concat([...encodeFrame({ t: 'a', n: 1 }), ...encodeFrame({ t: 'b' }, bin), ...encodeFrame({ t: 'c', s: 'é' })]);
  const got: unknown[] = [];
  for (let i = 0; i < wire.length; i += 3) got.push(...d.push(wire.subarray(i, i + 3)));
  t.is(got.length, 3);
  t.deepEqual((got[0] as { msg: unknown }).msg, { t: 'a', n: 1 });
  t.deepEqual((got[1] as { data: Buffer }).data, bin);
  t.deepEqual((got[2] as { msg: unknown }).msg, { t: 'c', s: 'é' });
  const big = Buffer.alloc(8);
  big.writeUInt32BE(MAX_FRAME + 1, 0);
  t.throws(() => new FrameDecoder().push(big), { instanceOf: ProtocolError });
  const notJson = Buffer.alloc(12);
  notJson.writeUInt32BE(8, 0);
  notJson.writeUInt32BE(4, 4);
  notJson.write('{{{{', 8);
  t.throws(() => new FrameDecoder().push(notJson), { instanceOf: ProtocolError });
  const noType = Buffer.concat(encodeFrame({ x: 1 }));
  t.throws(() => new FrameDecoder().push(noType), { message: /without a type/ });
});

test('message validation and error mapping', (t) => {
  const tape = { label: 'TD0001L9', tapeFile: 0, block: 1, offset: 512, size: 1000, sha256: 'x', blockSize: 4096 };
  t.is(checkClientMessage({ t: 'read', id: 1, item: { id: 'a', tape }, start: 0, end: 1000, priority: 'interactive' }), undefined);
  t.regex(checkClientMessage({ t: 'read', id: 1, item: { id: 'a', tape }, start: 0, end: 1001, priority: 'interactive' })!, /range/);
  t.regex(checkClientMessage({ t: 'read', id: 1, item: { id: 'a', tape: { ...tape, offset: 5000 } }, start: 0, end: 10, priority: 'interactive' })!, /tape location/);
  t.regex(checkClientMessage({ t: 'read', id: 1, item: { id: 'a', tape }, start: 0, end: 10, priority: 'urgent' as 'job' })!, /priority/);
  t.is(checkClientMessage({ t: 'read', id: 1, item: { id: 'a', tape }, start: 0, end: 10, priority: 'prefetch', holdMs: 5000, noMount: true }), undefined);
  t.regex(checkClientMessage({ t: 'read', id: 1, item: { id: 'a', tape }, start: 0, end: 10, priority: 'interactive', holdMs: -1 })!, /holdMs/);
  t.regex(checkClientMessage({ t: 'read', id: 1, item: { id: 'a', tape }, start: 0, end: 10, priority: 'prefetch', noMount: 'yes' as unknown as boolean })!, /noMount/);
  t.regex(checkClientMessage({ t: 'lib', id: 1, op: 'rm -rf' as 'stats', args: [] })!, /unknown library operation/);
  t.regex(checkClientMessage({ t: 'nope' } as never)!, /unknown message type/);
  const te = toWireError(new TapeError('MEDIUM_ERROR', 'bad block', { label: 'TD0001L9', block: 7 }));
  t.like(te, { code: 'MEDIUM_ERROR', label: 'TD0001L9', block: 7 });
  const eom = toWireError(new TapeError('EOM', 'full'));
  t.is(eom.code, 'EOM');
  const fsErr = toWireError(Object.assign(new Error('denied'), { code: 'ERR_ACCESS_DENIED' }));
  t.like(fsErr, { code: 'INTERNAL', errno: 'ERR_ACCESS_DENIED' });
  const se = toWireError(new StagerError({ code: 'OFFLINE', message: 'x', retryAfter: 9, label: 'L' }));
  t.like(se, { code: 'OFFLINE', retryAfter: 9, label: 'L' });
});

test('a new fill of a segment waits for the deletion of its old file still in progress (evicted or discarded), so the deletion never removes the new file', async (t) => {
  // Deletions run in the background; the libuv queue alone does not order a slow unlink before
  // the open of a new fill of the same segment. The gate holds each unlink until released.
  const dir = await tempDir();
  const gates: Array<() => void> = [];
  const slowUnlink = async (path: string) => {
    await new Promise<void>((r) => gates.push(r));
    await rm(path);
  };
  try {
    const c = await SegmentCache.open({ dir, capacity: 1 * SEG, segmentSize: SEG, unlink: slowUnlink });
    c.ensureItem('a', 'sha-a');
    c.ensureItem('b', 'sha-b');
    t.true(await put(c, 'a', 0, SEG, 1));
    t.true(await put(c, 'b', 0, SEG, 2), 'a/0 evicted: its file is being deleted');
    t.is(gates.length, 1);
    // a new fill of a/0 (a/0 is no longer cached) while the deletion is pending
    let opened = false;
    const fh = c.openForWrite('a', 0).then((h) => ((opened = true), h));
    await new Promise((r) => setTimeout(r, 50));
    t.false(opened, 'the open waits for the pending deletion');
    gates.shift()!();
    const h = await fh;
    await h.write(Buffer.alloc(SEG, 3), 0, SEG, 0);
    await h.close();
    t.deepEqual(await readFile(c.pathOf('a', 0)), Buffer.alloc(SEG, 3), 'the new file is there, with the new bytes');

    // the same for a discarded (abandoned) fill: discard, then a new fill of the segment
    const d = c.discard('a', 1);
    const fh2 = c.openForWrite('a', 1);
    await new Promise((r) => setTimeout(r, 20));
    t.is(gates.length, 1);
    gates.shift()!();
    await d;
    const h2 = await fh2;
    await h2.write(Buffer.alloc(SEG, 4), 0, SEG, 0);
    await h2.close();
    t.deepEqual(await readFile(c.pathOf('a', 1)), Buffer.alloc(SEG, 4));
    for (const g of gates.splice(0)) g();
    await c.close();
  } finally {
    for (const g of gates.splice(0)) g();
    await removeDir(dir);
  }
});
