// The staging cache must never lock up (every tape request refused with
// CACHE_FULL as if space were held forever): whatever way a request ends, its
// leases, its reservations and its waits for room are given back. In-process
// worker, real SegmentCache, ReadService and virtual library.

import test from 'ava';
import { join } from 'node:path';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import type { ItemState, Pass } from '../src/staging/read-state.js';
import { buildLibrary, fetchMedia, inProcessStager, removeDir, sha256, tempDir, type ArchivedItem, type ItemSpec, settle } from './fixtures/staging/harness.js';

const KB = 1024;
const SEG = 64 * KB;

async function inProcess(specs: ItemSpec[], cacheSize: number, admissionTimeoutMs = 5000) {
  const dir = await tempDir();
  const items = await buildLibrary(dir, specs);
  const vlib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { timeScale: 0 });
  const s = await inProcessStager(dir, vlib, items, { cacheSize, admissionTimeoutMs, tuning: { segmentSize: SEG, readAhead: 256 * KB, maxChunk: 64 * KB } });
  return {
    dir,
    items,
    vlib,
    worker: s.worker,
    client: s.client,
    port: s.port,
    async done() {
      await s.stop();
      await removeDir(dir);
    },
  };
}

function blockOf(it: ArchivedItem, pos: number): number {
  const l = it.obj.location!.tape!;
  return l.block + Math.floor((l.offset + pos) / l.blockSize);
}

test('a request that ends with an error gives back its leases and is forgotten by the worker', async (t) => {
  // The server forgets a request the worker answered with an error and never cancels it; before
  // the fix the worker kept it for the connection's life: its leases kept segments from eviction,
  // it leased every segment of its range announced later and kept its cartridge "in use".
  const r = await inProcess([{ id: 'a', size: 1024 * KB, label: 'TD0001L9' }], 16 << 20);
  try {
    const a = r.items.get('a')!;
    const head = await fetchMedia(r.port, 'a', { range: `bytes=0-${4 * SEG - 1}` });
    t.true(head.body.equals(a.data.subarray(0, 4 * SEG)));
    t.true(await settle(() => r.worker.cache.use().segments >= 4 && r.worker.cache.use().leased === 0));
    // the whole item: 4 cached segments are announced (leased), then the tape fails for good
    r.vlib.injectReadError('TD0001L9', blockOf(a, 8 * SEG), { count: 50 });
    const f = await fetchMedia(r.port, 'a', { timeoutMs: 10_000 });
    t.false(f.timedOut ?? false);
    t.false(f.complete && f.body.length === a.data.length, 'the response was cut');
    t.true(
      await settle(() => r.worker.reads.activeRequests() === 0 && r.worker.cache.use().leased === 0),
      `requests ${r.worker.reads.activeRequests()}, leased ${r.worker.cache.use().leased}`,
    );
    t.false(r.worker.reads.streaming('TD0001L9'), 'the cartridge is not held for a request that ended');
  } finally {
    await r.done();
  }
});

test('a fill whose file is being created or reopened is not a droppable partial (its file is never deleted under the pass)', async (t) => {
  // A new Fill is 'paused' without a writer until its file is open; another pass making room
  // (reserve → dropPartials) took it for a paused fill nobody reads: it released the reservation
  // and deleted the file the first pass then wrote and announced.
  const r = await inProcess([{ id: 'b', size: 512 * KB, label: 'TD0001L9' }], 16 << 20);
  try {
    const reads = r.worker.reads;
    const item: ItemState = { ref: { id: 'b', tape: r.items.get('b')!.obj.location!.tape! }, fills: new Map(), requests: new Set(), passes: new Set() };
    (reads as unknown as { items: Map<string, ItemState> }).items.set('b', item);
    r.worker.cache.ensureItem('b', item.ref.tape.sha256);
    const pass = { owner: {}, lease: {} } as unknown as Pass;
    const claiming = reads.claimFill(item, 0, pass, 0); // not awaited: its file is being created
    t.is(reads.droppablePartialBytes(), 0, 'a fill being created is not droppable');
    t.is(reads.dropPartials(SEG), 0);
    const f = await claiming;
    t.truthy(f);
    t.is(item.fills.get(0), f, "the fill is still the segment's fill");
    t.is(r.worker.cache.use().reserved, SEG, 'its reservation is still held');
    // the pass pauses it with some bytes; a later pass reopens it
    f!.valid = 1000;
    await reads.pauseFill(f!);
    t.is(reads.droppablePartialBytes(), SEG, 'paused and unread: droppable');
    const reopening = reads.claimFill(item, 0, pass, 1000);
    t.is(reads.droppablePartialBytes(), 0, 'a fill being reopened is not droppable');
    t.is(reads.dropPartials(SEG), 0);
    t.is(await reopening, f);
    t.is(item.fills.get(0), f);
    await reads.failFill(f!, { code: 'IO', message: 'test over' });
    t.is(r.worker.cache.use().reserved, 0);
    (reads as unknown as { items: Map<string, ItemState> }).items.delete('b');
  } finally {
    await r.done();
  }
});

test('many requests waiting for cache room: no listener pile-up, each waiter goes when its client leaves, later requests are served', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  const specs: ItemSpec[] = [{ id: 'keep', size: 16 * SEG, label: 'TD0001L9' }];
  for (let i = 0; i < 14; i++) specs.push({ id: `w${i}`, size: 2 * SEG, label: 'TD0001L9' });
  const r = await inProcess(specs, 16 * SEG, 8000);
  try {
    await r.client.pin('keep', true);
    const keep = await fetchMedia(r.port, 'keep');
    t.is(sha256(keep.body), r.items.get('keep')!.sha256);
    // the pinned item fills the cache: every other request waits for room
    const waiting = specs.slice(1).map((s) => fetchMedia(r.port, s.id, { timeoutMs: 1500 }));
    t.true(await settle(() => r.worker.cache.waitingForSpace === 14), `waiting: ${r.worker.cache.waitingForSpace}`);
    const left = await Promise.all(waiting);
    t.true(left.every((f) => f.timedOut), 'the clients gave up first');
    // gone with their clients, long before the admission timeout
    t.true(await settle(() => r.worker.cache.waitingForSpace === 0 && r.worker.reads.activeRequests() === 0, 30_000), `waiting ${r.worker.cache.waitingForSpace}`);
    await new Promise((res) => setImmediate(res));
    t.deepEqual(
      warnings.filter((w) => /MaxListeners/.test(w)),
      [],
    );
    await r.client.pin('keep', false);
    const later = await fetchMedia(r.port, 'w3', { timeoutMs: 5000 });
    t.is(later.status, 200);
    t.is(sha256(later.body), r.items.get('w3')!.sha256);
    t.true(await settle(() => r.worker.cache.use().reserved === 0 && r.worker.cache.use().leased === 0), JSON.stringify(r.worker.cache.use()));
  } finally {
    process.off('warning', onWarning);
    await r.done();
  }
});

test('a tiny cache under many concurrent reads, clients leaving mid-body and pre-stages: nothing stays held, a later request is served', async (t) => {
  const specs: ItemSpec[] = [];
  for (let i = 0; i < 16; i++) specs.push({ id: `m${i}`, size: 6 * SEG + 123, label: 'TD0001L9' });
  // 8 segments of room for 16 items of 7 segments each, a short admission timeout: some get CACHE_FULL
  const r = await inProcess(specs, 8 * SEG, 300);
  try {
    const conn = await r.client.connection(1000);
    // pre-stages (prefetch priority, nobody waits for them)
    for (let i = 8; i < 16; i++) {
      const it = r.items.get(`m${i}`)!;
      conn.read({ id: it.obj.id, tape: it.obj.location!.tape! }, 0, it.data.length, 'prefetch', { onSeg() {}, onDone() {}, onError() {} }, false, true);
    }
    // A full reader resumes after a cut like a player (a Range request from the first missing
    // byte): with a 300 ms admission timeout a loaded machine cuts responses mid-stream (a clean
    // abort after an admission timeout, as designed); what must hold is that every byte arrives,
    // exact, and nothing hangs.
    const readAll = async (id: string) => {
      const first = await fetchMedia(r.port, id, { timeoutMs: 60_000 });
      if (first.status !== 200 || first.complete || first.timedOut) return first;
      const total = Number(first.headers['content-length']);
      const parts = [first.body];
      let have = first.body.length;
      let f = first;
      for (let tries = 0; tries < 20 && have < total && !f.timedOut; tries++) {
        f = await fetchMedia(r.port, id, { range: `bytes=${have}-`, timeoutMs: 60_000 });
        if (f.status === 503) await new Promise((res) => setTimeout(res, 50));
        if (f.status !== 206) continue;
        parts.push(f.body);
        have += f.body.length;
        if (f.complete) break;
      }
      return { ...f, status: 200, body: Buffer.concat(parts), complete: f.complete && f.status === 206 };
    };
    const runs = specs.map((s, i) =>
      // half of the clients leave mid-body (slow readers given up), the others read everything
      // (a generous limit for the full readers: a hang shows as timedOut, a loaded machine is not one)
      i % 2 ? fetchMedia(r.port, s.id, { bytesPerSec: 64 * KB, timeoutMs: 400 }) : readAll(s.id),
    );
    const got = await Promise.all(runs);
    for (const [i, f] of got.entries()) {
      if (i % 2 || f.status !== 200) continue;
      const id = specs[i]!.id;
      const it = r.items.get(id)!;
      // told apart: a hang, a cut response, wrong bytes
      t.falsy(f.timedOut, `${id}: no answer within 60 s (${f.body.length} of ${it.data.length} bytes)`);
      t.true(f.complete, `${id}: response cut at ${f.body.length} of ${it.data.length} bytes`);
      t.is(f.body.length, it.data.length, `${id}: length`);
      t.is(sha256(f.body), it.sha256, `${id} byte-exact`);
    }
    t.true(
      await settle(() => {
        const u = r.worker.cache.use();
        // a client that left mid-segment may leave a paused partial fill: it keeps its reservation
        // until someone needs the room (dropPartials), so "nothing held" is: every reserved byte
        // is such a droppable partial, nobody writes, leases or waits
        return (
          r.worker.reads.activeRequests() === 0 &&
          u.leased === 0 &&
          u.reserved === r.worker.reads.droppablePartialBytes() &&
          r.worker.cache.waitingForSpace === 0
        );
      }, 6000),
      JSON.stringify({
        requests: r.worker.reads.activeRequests(),
        ...r.worker.cache.use(),
        droppable: r.worker.reads.droppablePartialBytes(),
        waiting: r.worker.cache.waitingForSpace,
      }),
    );
    for (const id of ['m1', 'm8']) {
      const f = await fetchMedia(r.port, id, { timeoutMs: 8000 });
      t.is(f.status, 200);
      t.is(sha256(f.body), r.items.get(id)!.sha256);
    }
  } finally {
    await r.done();
  }
});

test('a segment written and still being synced is served from the cache and counted as a hit: a second play reads no tape', async (t) => {
  const r = await inProcess([{ id: 's', size: SEG - 100, label: 'TD0001L9' }], 16 << 20);
  try {
    const it = r.items.get('s')!;
    // hold every segment sync until released: the first play's only segment stays "complete, syncing"
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    const reads = r.worker.reads as unknown as { syncSegment(fh: unknown): Promise<void> };
    const sync = reads.syncSegment.bind(reads);
    reads.syncSegment = async (fh) => {
      await gate;
      return sync(fh);
    };
    const first = await fetchMedia(r.port, 's', { timeoutMs: 8000 });
    t.is(sha256(first.body), it.sha256);
    t.is(r.worker.cache.use().segments, 0, 'not committed while its sync is held');
    const hits = r.worker.reads.counters.cacheHits;
    const tape = r.vlib.stats().bytesRead;
    const second = await fetchMedia(r.port, 's', { timeoutMs: 8000 });
    t.is(sha256(second.body), it.sha256);
    t.is(r.vlib.stats().bytesRead - tape, 0, 'no tape byte');
    t.is(r.worker.reads.counters.cacheHits - hits, 1, 'a cache hit');
    release();
    t.true(await settle(() => r.worker.cache.use().segments === 1), JSON.stringify(r.worker.cache.use()));
  } finally {
    await r.done();
  }
});

test('a read that waited for a drive and then finds its cache room taken waits for room again instead of answering CACHE_FULL (503)', async (t) => {
  // The pass checks for room, then waits for the drive; meanwhile others take the room. Before
  // the fix the pass, holding its drive, answered CACHE_FULL at once; now it gives the drive
  // back and waits for room again, bounded by the admission timeout.
  const r = await inProcess([{ id: 'a', size: 2 * SEG, label: 'TD0001L9' }], 4 * SEG, 30_000);
  try {
    const a = r.items.get('a')!;
    const sched = r.worker.scheduler;
    const job = await sched.acquire({ drive: 0, priority: 'job', owner: 'test job' });
    const f = fetchMedia(r.port, 'a', { timeoutMs: 20_000 });
    t.true(await settle(() => sched.queue().some((q) => q.priority === 'interactive'), 30_000, 10), 'the read waits for the drive');
    t.true(r.worker.cache.reserve(4 * SEG), 'someone takes every byte of the cache');
    job.release();
    t.true(await settle(() => r.worker.cache.waitingForSpace > 0, 30_000, 10), 'the read waits for room again');
    r.worker.cache.unreserve(4 * SEG);
    const got = await f;
    t.is(got.status, 200);
    t.true(got.complete);
    t.is(sha256(got.body), a.sha256);
    t.is(r.worker.counters.cacheFull, 1, 'the pass found no room once');
  } finally {
    await r.done();
  }
});
