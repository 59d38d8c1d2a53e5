// Waits on the tape read path that must stay bounded (QA of the recall holds, the swap slot wait
// and noMount pre-stages): one drive, in-process worker, virtual library with instant timing; the
// drive's reads of a cartridge wait while it is named in `gated`, so every order is deterministic.
// The worker's admission timeout is 10 min: a request that waits for it instead of being served
// by an idle drive shows as the server's no-progress 503 (or the client's bound), never by timing.

import test from 'ava';
import { join } from 'node:path';
import type { CatalogObject } from '../src/catalog/types.js';
import type { DriveLease } from '../src/staging/scheduler.js';
import { itemAt } from './fixtures/archive/setup.js';
import { fetchMedia, gatedStager, settle, sha256, type ItemSpec } from './fixtures/staging/harness.js';
import { inprocRig } from './fixtures/staging/inproc.js';

const KB = 1024;
const SEG = 64 * KB;
const A = 'TD0001L9';
const B = 'TD0002L9';
const NO_TAIL = { headSeconds: 0, headMin: 4096, tailBytes: 0, mergeGap: 0 };
const tierOf = (o: CatalogObject | undefined) => (o?.location?.disk && o.location.tape ? 'both' : o?.location?.disk ? 'disk' : o?.location?.tape ? 'tape' : 'none');

async function rig(specs: ItemSpec[]) {
  const s = await gatedStager(specs, { drives: 1, admissionTimeoutMs: 600_000, segmentSize: SEG });
  const play = async (id: string) => {
    const f = await fetchMedia(s.port, id, { timeoutMs: 120_000 });
    return { ok: f.status === 200 && f.complete && sha256(f.body) === s.items.get(id)!.sha256, what: `${id}: ${f.status}, ${f.body.length} bytes${f.timedOut ? ', no answer' : ''}${f.status >= 400 ? ` (${f.body.toString().slice(0, 160)})` : ''}` };
  };
  const idle = () => s.worker.reads.activeRequests() === 0 && s.worker.scheduler.queue().length === 0;
  return { ...s, play, idle };
}

test('a play never follows a pre-stage pass that waits for a cartridge it will not mount: the play of x2 mounts A itself while the drive is idle', async (t) => {
  t.timeout(120_000);
  const r = await rig([
    { id: 'x1', size: 4 * SEG, label: A },
    { id: 'x2', size: 4 * SEG, label: A },
    { id: 'y', size: 4 * SEG, label: B },
  ]);
  try {
    // x1 plays from A (its reads held); the pre-stage of the next item x2 (noMount, as after a
    // play) queues for A's drive; then a play of y on B queues too
    r.gated.add(A);
    const x1 = r.play('x1');
    t.true(await settle(() => r.worker.scheduler.drives()[0]!.busy && r.worker.scheduler.drives()[0]!.label === A, 30_000, 10));
    t.true(r.client.prestage({ id: 'x2', tape: r.items.get('x2')!.obj.location!.tape! }, 0, 4 * SEG, false));
    t.true(await settle(() => r.worker.scheduler.queue().length === 1, 30_000, 10), 'the pre-stage waits for the drive');
    const y = r.play('y');
    t.true(await settle(() => r.worker.scheduler.queue().length === 2, 30_000, 10), 'y waits for the drive');
    r.gated.delete(A);
    t.true((await x1).ok);
    // y (playback) goes before the pre-stage and swaps A out: the pre-stage now waits for A's next load
    t.true((await y).ok);
    t.deepEqual(
      r.worker.scheduler.queue().map((q) => [q.priority, q.label]),
      [['prefetch', A]],
    );
    t.is(r.worker.scheduler.drives()[0]!.label, B);
    t.false(r.worker.scheduler.drives()[0]!.busy);
    // the play of x2 used to follow that pass (which waits up to the admission timeout with the
    // drive idle) and got the server's no-progress 503; it mounts A now, and the pre-stage rides on it
    const x2 = await r.play('x2');
    t.true(x2.ok, x2.what);
    t.true(await settle(r.idle, 30_000, 10), 'no request or drive waiter left');
    t.is(r.worker.scheduler.counters.admissionTimeouts, 0);
  } finally {
    await r.done();
  }
});

test("the server's stop does not wait for a job that waits in the worker for a drive: the job stops as interrupted and runs to its end after the next start", async (t) => {
  t.timeout(240_000);
  const r = await inprocRig({ files: [['Video/a.mkv', 200_000], ['Video/b.mkv', 200_000]], archived: 1, stub: NO_TAIL });
  let lease: DriveLease | undefined;
  try {
    // playback holds the only drive (jobs never pre-empt it); the archive job's mount queues behind it
    lease = await r.worker.scheduler.acquire({ drive: 0, priority: 'interactive', owner: 'test play' });
    const b = await itemAt(r.catalog, join(r.lab.media, 'Video/b.mkv'));
    r.service.start();
    const job = await r.service.submit('archive', [b.id], { stub: NO_TAIL });
    t.true(await settle(() => r.worker.scheduler.queue().some((q) => q.priority === 'job'), 60_000, 10), 'the job waits for the drive');
    let released = false;
    let stopped: boolean | undefined;
    const stop = r.service.stop().then(() => (stopped = released));
    // bounded: without the fix the stop ends only once the drive is free (below), so this fails
    await settle(() => stopped !== undefined, 60_000, 10);
    released = true;
    lease.release();
    lease = undefined;
    await stop;
    t.false(stopped, 'the stop ended while the job still waited for the drive');
    const rec = (await r.service.get(job.id))!;
    t.is(rec.state, 'running', 'durable: it resumes on the next start');
    t.regex(rec.activity ?? '', /interrupted/);
    t.is(tierOf(await r.catalog.get(b.id)), 'disk');
    // the next start: the job resumes and archives b
    r.service.start();
    const done = await r.service.run(job.id);
    t.is(done.state, 'done', done.reason);
    t.is(tierOf(await r.catalog.get(b.id)), 'tape');
    await r.service.stop();
  } finally {
    lease?.release();
    await r.done();
  }
});
