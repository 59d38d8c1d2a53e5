// Drives that are only held (no lease: a client plays bytes it took, or the drive waits for its
// idle unload) belong to whoever reads next: a play of another cartridge swaps one at once
// instead of waiting for the hold to end, choosing the cartridge whose clients lose least; a
// drive that reads for a play (a lease) is never taken. In-process worker, virtual library with
// two drives, fake clock for the holds (it never advances here: a wait for a hold to end would
// never be served).

import test from 'ava';
import { fetchMedia, gatedStager, settle, sha256, type ItemSpec } from './fixtures/staging/harness.js';

const KB = 1024;
const SEG = 64 * KB;
const A = 'TD0001L9';
const B = 'TD0002L9';
const C = 'TD0003L9';

async function rig(specs: ItemSpec[]) {
  // 1 KiB/s: a 256 KiB item plays 256 s
  const s = await gatedStager(specs, { drives: 2, admissionTimeoutMs: 20_000, segmentSize: SEG, now: () => 1_000_000, bitrate: 1024 });
  const play = async (id: string) => {
    const f = await fetchMedia(s.port, id, { timeoutMs: 20_000 });
    return f.status === 200 && f.complete && sha256(f.body) === s.items.get(id)!.sha256;
  };
  const loaded = () => s.worker.scheduler.drives().map((d) => d.label).sort();
  return { ...s, play, loaded };
}

test('a play of B while both drives are only held for A and C gets a drive at once, from the holder that loses least; the held session plays its next item after mounting again', async (t) => {
  const r = await rig([
    { id: 'a', size: 4 * SEG, label: A }, // 256 s of playback
    { id: 'b', size: 4 * SEG, label: B },
    { id: 'c', size: 8 * SEG, label: C }, // 512 s
    { id: 'c2', size: 4 * SEG, label: C },
  ]);
  try {
    t.true(await r.play('a'));
    t.true(await r.play('c'));
    t.true(await settle(() => r.worker.reads.activeRequests() === 0));
    t.true(r.worker.reads.streaming(A) && r.worker.reads.streaming(C), 'both clients still play what they took');
    t.deepEqual(r.loaded(), [A, C]);
    // A's client has 256 s left, C's 512 s: C's needs its cartridge back later, so C goes
    // (least recently used alone would have unloaded A)
    t.true(r.worker.reads.swapLoss(C) < r.worker.reads.swapLoss(A));
    t.true(await r.play('b'), 'B played without waiting for a hold to end');
    t.deepEqual(r.loaded(), [A, B]);
    t.is(r.worker.scheduler.counters.admissionTimeouts, 0);
    t.is(r.worker.scheduler.counters.swaps, 1);
    const mounts = r.worker.scheduler.counters.mounts;
    t.true(await r.play('c2'), "C's session plays its next item");
    t.is(r.worker.scheduler.counters.mounts, mounts + 1, 'after mounting C again');
    t.true(r.loaded().includes(C));
  } finally {
    await r.done();
  }
});

test('a drive that reads for a play is never taken: B takes the held drive; with both drives reading, C waits for one', async (t) => {
  const r = await rig([
    { id: 'a', size: 4 * SEG, label: A },
    { id: 'b', size: 4 * SEG, label: B },
    { id: 'b2', size: 4 * SEG, label: B },
    { id: 'c', size: 4 * SEG, label: C },
    { id: 'c2', size: 4 * SEG, label: C },
  ]);
  const busyWith = (label: string) => r.worker.scheduler.drives().some((d) => d.busy && d.label === label);
  try {
    t.true(await r.play('c'));
    t.true(await settle(() => r.worker.reads.activeRequests() === 0));
    // A's play reads (its drive reads wait at the gate): its drive is leased
    r.gated.add(A);
    const a = r.play('a');
    t.true(await settle(() => busyWith(A), 30_000, 10), 'A is mounted and read');
    t.true(await r.play('b'), 'B takes the drive C was held in');
    t.deepEqual(r.loaded(), [A, B]);
    t.true(busyWith(A), "A's read kept its drive");
    // both drives read now (B's next item at the gate too): C's next item waits for one
    r.gated.add(B);
    const b2 = r.play('b2');
    t.true(await settle(() => busyWith(B), 30_000, 10));
    const c2 = r.play('c2');
    t.true(await settle(() => r.worker.scheduler.playbackWaiting(), 30_000, 10), 'C waits for a drive');
    t.true(busyWith(A) && busyWith(B), 'neither read lost its drive');
    t.deepEqual(r.loaded(), [A, B]);
    r.gated.delete(A);
    t.true(await a, "A's play completes, undisturbed");
    t.true(await c2, 'C got the drive A had read from');
    r.gated.delete(B);
    t.true(await b2);
    t.is(r.worker.scheduler.counters.admissionTimeouts, 0);
  } finally {
    await r.done();
  }
});

test('swapLoss: 0 for a cartridge nobody plays from; a client that only plays what it took loses less the more playback it has left; one with bytes still to come from the cartridge loses most', async (t) => {
  const r = await rig([
    { id: 'a', size: 4 * SEG, label: A }, // 256 s
    { id: 'c', size: 8 * SEG, label: C }, // 512 s
    { id: 'big', size: 32 * 1024 * KB, label: B }, // far more than socket buffers and read-ahead hold
  ]);
  try {
    t.is(r.worker.reads.swapLoss(A), 0);
    t.true(await r.play('a'));
    t.true(await r.play('c'));
    t.true(await settle(() => r.worker.reads.activeRequests() === 0));
    const la = r.worker.reads.swapLoss(A);
    const lc = r.worker.reads.swapLoss(C);
    t.true(la > 1 && la < 2 && lc > 1 && lc < 2 && lc < la, `A ${la}, C ${lc}`);
    // a client that reads slowly: its request has bytes that only the tape can give
    let stop = false;
    const big = fetchMedia(r.port, 'big', { onData: (n, req) => (stop || n >= 64 * 1024 * KB) && req.destroy(), bytesPerSec: 256 * KB, timeoutMs: 20_000 });
    t.true(await settle(() => r.worker.reads.activeRequests() === 1 && r.worker.cache.use().segments > 0, 30_000, 10));
    t.is(r.worker.reads.swapLoss(B), 3);
    stop = true;
    await big;
  } finally {
    await r.done();
  }
});
