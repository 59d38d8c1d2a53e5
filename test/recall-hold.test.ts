// Recall holds (src/staging/recall-holds.ts): while a loadedOnly recall job (a container promotion
// right after a play, or when its cartridge is loaded again) waits in the job queue, the staging
// worker keeps its cartridge loaded: the drive's idle unload waits, so the job reads it with no
// mount (bench:policy: 82 of 171 such jobs found the cartridge gone behind a make-room archive
// job). The hold is the lowest there is: playback of another cartridge still takes the drive (the
// recall then skips, mounting nothing); it ends when the job has run, after its bounded time (fake
// clock), or when the job's connection goes.
//
// In-process worker on a socket, the server's StagerClient and ArchiveService over the worker's
// remote library (as in serve), one drive, virtual library with instant timing.

import test from 'ava';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { RECALL_HOLD_MS } from '../src/archive/service.js';
import { MAX_HOLD_LABELS, MAX_HOLDS_PER_OWNER, RecallHolds } from '../src/staging/recall-holds.js';
import { ArchiveService } from '../src/archive/service.js';
import { itemAt, libraryWithDriveHook, makeLab, sha256 } from './fixtures/archive/setup.js';
import { fetchMedia, settle } from './fixtures/staging/harness.js';
import { pageStagerStatus } from '../src/tier.js';
import { ServerMetrics } from '../src/metrics.js';
import { libraryStatus } from '../src/server-state.js';
import { PolicyEngine } from '../src/policy/engine.js';
import { AccessTracker } from '../src/policy/access.js';
import { silentLogger } from '../src/log.js';
import { inprocRig, type Rig } from './fixtures/staging/inproc.js';

const A = 'TD0001L9';
const B = 'TD0002L9';
const SEASON = ['Video/ShowA/E1.mkv', 'Video/ShowA/E2.mkv', 'Video/ShowA/E3.mkv'];
const FILES: [string, number][] = [...SEASON.map((p, i) => [p, 200_000 + i * 1000] as [string, number]), ['Video/ShowB/E1.mkv', 150_000]];
const NO_TAIL = { headSeconds: 0, headMin: 4096, tailBytes: 0, mergeGap: 0 };
const IDLE_MS = 30;

/** Resolves after `ms`: a timer set now fires after every timer that was due earlier (the idle unload's). */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rig(clock: { t: number }): Promise<Rig & { season: string[]; other: string; idleUnloads: () => number }> {
  const r = await inprocRig({ files: FILES, archived: 3, stub: NO_TAIL, idleUnloadMs: IDLE_MS, now: () => clock.t });
  const season = await Promise.all(SEASON.map(async (p) => (await itemAt(r.catalog, join(r.lab.media, p))).id));
  const other = (await itemAt(r.catalog, join(r.lab.media, 'Video/ShowB/E1.mkv'))).id;
  // the setup's archive job left A in the drive, and its idle unload may or may not have come yet
  // (a loaded machine): start from empty drives and count idle unloads from here
  // (bounded generously: a miss here would count that idle unload in the test, so it fails loudly)
  await r.worker.scheduler.unloadIdle();
  if (!(await settle(() => r.worker.scheduler.drives().every((d) => d.label === null && !d.busy), 60_000))) {
    await r.done();
    throw new Error('setup: the drives did not empty');
  }
  const base = r.worker.scheduler.counters.idleUnloads;
  return Object.assign(r, { season, other, idleUnloads: () => r.worker.scheduler.counters.idleUnloads - base });
}

/**
 * A play reading from cartridge `label` (mounted for it) makes its container hot: the promotion's
 * loadedOnly recall is queued while the play reads; then the play's read ends and the drive's idle
 * clock runs. Answers the queued job once the worker holds the cartridge for it.
 */
async function recallQueuedDuringPlay(t: import('ava').ExecutionContext, r: Rig, label: string, ids: string[]) {
  const lease = await r.worker.scheduler.acquire({ label, priority: 'interactive', owner: 'test play' });
  try {
    const job = await r.service.submit('recall', ids, { loadedOnly: true });
    // the lease goes only once the hold is there (else the idle unload may come: a loaded machine
    // can take seconds for the job's write and the hold's round trip)
    t.true(await settle(() => r.worker.recallHolds.labels().includes(label), 60_000), "the worker holds the job's cartridge");
    return job;
  } finally {
    lease.release();
  }
}

const tierOf = async (r: Rig, id: string) => {
  const l = (await r.catalog.get(id))!.location!;
  return l.disk && l.tape ? 'both' : l.disk ? 'disk' : 'tape';
};

type HoldRig = Awaited<ReturnType<typeof rig>>;

/** A test on its own rig (fake clock starting at `start`), which it always shuts down. */
function rigTest(title: string, fn: (t: import('ava').ExecutionContext, r: HoldRig, clock: { t: number }) => Promise<void>, start = 1_000_000): void {
  test(title, async (t) => {
    const clock = { t: start };
    const r = await rig(clock);
    try {
      await fn(t, r, clock);
    } finally {
      await r.done();
    }
  });
}

rigTest('a queued loadedOnly recall keeps its cartridge loaded past the idle unload; the job reads it with no mount, then the hold ends and the idle unload goes on', async (t, r) => {
  const job = await recallQueuedDuringPlay(t, r, A, r.season);
  const mounts = r.worker.scheduler.counters.mounts;
  t.is(r.worker.scheduler.opts.swapLoss!(A), 0.5, 'held for a recall only: swapped before any cartridge a client plays from');
  // the operator sees it: status page (stager line) and /metrics
  const stager = pageStagerStatus(await r.client.status());
  t.is(stager.recallHolds, 1);
  const text = await new ServerMetrics({ version: '0', status: { server: () => ({ name: 'nas', version: '0', scanning: false }), library: () => libraryStatus(r.catalog), stager: () => stager } }).scrape();
  t.regex(text, /^tapedeck_stager_recall_holds 1$/m);
  // several idle periods pass (other jobs run before this one); this timer fires after the idle unload's
  await sleep(IDLE_MS * 5);
  t.is(r.idleUnloads(), 0, 'no idle unload while the recall waits');
  t.is(r.worker.scheduler.labelIn(0), A);
  const done = await r.service.run(job.id);
  t.is(done.state, 'done', done.reason);
  t.like(done.result, { recalled: 3, skipped: 0 });
  t.is(r.worker.scheduler.counters.mounts, mounts, 'read from the drive it was in: no mount');
  for (const id of r.season) {
    t.is(await tierOf(r, id), 'both');
    const now = (await r.catalog.get(id))!;
    t.is(sha256(await readFile(now.location!.disk!.path)), now.location!.tape!.sha256);
  }
  // the job has run: the hold is gone and the drive's idle unload takes the cartridge
  t.true(await settle(() => r.worker.recallHolds.labels().length === 0, 60_000), 'hold released at the end of the job');
  t.true(await settle(() => r.idleUnloads() === 1, 60_000), 'unloaded when idle again');
  t.is(r.worker.scheduler.labelIn(0), null);
});

rigTest('a worker restart while a loadedOnly recall is queued: the server holds its cartridge again on the new worker, and the job ends that hold when it has run', async (t, r) => {
  const job = await recallQueuedDuringPlay(t, r, A, r.season);
  const before = r.worker.recallHolds.generation;
  await r.restartWorker();
  t.not(r.worker.recallHolds.generation, before, 'a new worker process');
  t.true(await settle(() => r.client.connected && r.worker.recallHolds.labels().includes(A), 60_000), "the new worker holds the queued job's cartridge");
  t.is(pageStagerStatus(await r.client.status()).recallHolds, 1, 'one hold, as before the restart');
  const done = await r.service.run(job.id);
  t.is(done.state, 'done', done.reason);
  // the job's handle names the new worker's hold: its release ends it (not only the hold's time)
  t.true(await settle(() => r.worker.recallHolds.labels().length === 0, 60_000), 'hold released at the end of the job');
});

rigTest('a recall hold is bounded: past its time (fake clock) the idle unload takes the cartridge, and the job skips it without mounting', async (t, r, clock) => {
  const job = await recallQueuedDuringPlay(t, r, A, r.season);
  const mounts = r.worker.scheduler.counters.mounts;
  clock.t += RECALL_HOLD_MS + 1;
  t.deepEqual(r.worker.recallHolds.labels(), [], 'ran out');
  t.true(await settle(() => r.idleUnloads() === 1, 60_000), 'idle unload once the hold ran out');
  const done = await r.service.run(job.id);
  t.like(done.result, { recalled: 0, skipped: 3 }, done.reason);
  t.is(r.worker.scheduler.counters.mounts, mounts, 'the recall mounts nothing');
});

rigTest('playback of another cartridge still gets the only drive a recall holds (at once, a swap); the recall then skips, mounting nothing', async (t, r) => {
  // ShowB's episode on a second cartridge (a container not on A goes to the emptiest)
  await r.service.label([B]);
  const put = await r.service.run((await r.service.submit('archive', [r.other], { stub: NO_TAIL })).id);
  t.is(put.state, 'done', put.reason);
  t.is((await r.catalog.get(r.other))!.location!.tape!.label, B);
  const job = await recallQueuedDuringPlay(t, r, A, r.season);
  const c = r.worker.scheduler.counters;
  const before = { swaps: c.swaps, mountsJob: c.mountsJob, timeouts: c.admissionTimeouts };
  const f = await fetchMedia(r.port, r.other);
  t.is(f.status, 200);
  t.is(sha256(f.body), sha256(r.lab.files.get(join(r.lab.media, 'Video/ShowB/E1.mkv'))!), 'byte-exact');
  t.is(c.swaps, before.swaps + 1, 'the held cartridge was swapped out for the play');
  t.is(c.admissionTimeouts, before.timeouts);
  t.is(r.worker.scheduler.labelIn(0), B);
  const done = await r.service.run(job.id);
  t.like(done.result, { recalled: 0, skipped: 3 });
  t.is(c.mountsJob, before.mountsJob, 'the recall never mounts A back');
  for (const id of r.season) t.is(await tierOf(r, id), 'tape');
});

rigTest('a container promotion keeps the play\'s cartridge loaded while it plans (it reads the whole catalog, the play\'s read ends meanwhile): its recall reads the season with no mount', async (t, r, clock) => {
  const policy = { ...r.lab.config.policy, minArchiveSize: 10_000, promoteContainerPlays: 2, highWatermark: { kind: 'bytes' as const, bytes: 100_000_000 }, lowWatermark: { kind: 'bytes' as const, bytes: 100_000_000 } };
  const access = new AccessTracker({ store: r.catalog.store, now: () => clock.t });
  // the play reads from A (mounted for it)
  const play = await r.worker.scheduler.acquire({ label: A, priority: 'interactive', owner: 'test play' });
  let calls = 0;
  let heldWhilePlanning = false;
  const readAccess = async (ids: string[]) => {
    if (++calls === 2) {
      // the plan's read of every item: meanwhile the play's read ends and idle periods pass
      heldWhilePlanning = await settle(() => r.worker.recallHolds.labels().includes(A), 60_000);
      play.release();
      await sleep(IDLE_MS * 5); // fires after the idle unload's timer
    }
    return access.read(ids);
  };
  const e = new PolicyEngine({ catalog: r.catalog, config: { ...r.lab.config, policy }, archive: r.service, readAccess, log: silentLogger, now: () => clock.t, mediaDirs: [r.lab.media] });
  t.teardown(() => e.stop());
  access.notePlay(r.season[0], '10.0.0.5');
  access.notePlay(r.season[1], '10.0.0.5');
  const c = r.worker.scheduler.counters;
  const mounts = c.mounts;
  const jobs = await e.onPlay(r.season[1]);
  t.true(heldWhilePlanning, 'held from the moment the container is found hot');
  t.is(r.idleUnloads(), 0, 'no idle unload while the promotion planned');
  t.is(jobs.length, 1);
  t.like(jobs[0], { kind: 'recall', opts: { loadedOnly: true, trigger: 'play' } });
  const done = await r.service.run(jobs[0]!.id);
  t.like(done.result, { recalled: 3, skipped: 0 });
  t.is(c.mounts, mounts, 'read from the drive the play loaded');
  for (const id of r.season) t.is(await tierOf(r, id), 'both');
  t.true(await settle(() => r.worker.recallHolds.labels().length === 0, 60_000), 'every hold ended');
}, new Date(2030, 0, 10, 20, 0).getTime());

test('RecallHolds: per owner, ended by id, by the owner going, by time; bounded in number', (t) => {
  let now = 0;
  const h = new RecallHolds(() => now);
  const conn1 = {};
  const conn2 = {};
  const a = h.add(conn1, [A, A], 1000);
  h.add(conn2, [B], 5000);
  t.deepEqual(h.labels(), [A, B]);
  t.false(h.remove(conn2, a), 'another connection cannot end it');
  t.true(h.held(A));
  t.true(h.remove(conn1, a));
  t.false(h.held(A));
  h.add(conn1, [A], 1000);
  h.removeOwner(conn1);
  t.deepEqual(h.labels(), [B]);
  now = 5000;
  t.false(h.held(B), 'ran out');
  for (let i = 0; i < MAX_HOLDS_PER_OWNER + 10; i++) h.add(conn1, [`L${i}`], 1000);
  t.is(h.labels().length, MAX_HOLDS_PER_OWNER, 'the oldest go beyond the bound');
  t.true(h.held(`L${MAX_HOLDS_PER_OWNER + 9}`));
  t.false(h.held('L0'));
  h.add(conn1, [A], 10 * RECALL_HOLD_MS);
  now += 3600_000;
  t.false(h.held(A), 'capped at an hour');
});

test('hold ids are unique across worker restarts: the id of a hold of the worker before a restart never ends a hold of the new one', (t) => {
  const before = new RecallHolds();
  const after = new RecallHolds(); // the restarted worker (a new process: a new generation)
  const conn = {}; // the server's connection to the new worker, which a job of before the restart releases its old hold through
  const old = before.add({}, [A], 1000);
  const mine = after.add(conn, [B], 1000);
  t.not(old, mine);
  t.false(after.remove(conn, old), "the old worker's hold id names no hold of the new one");
  t.true(after.held(B));
  t.true(after.remove(conn, mine));
  t.not(new RecallHolds().generation, new RecallHolds().generation);
});

test('a hold asked for more cartridges than the worker takes in one names the first MAX_HOLD_LABELS (the worker refused it whole)', async (t) => {
  const lab = await makeLab({ memory: true, files: [['a.mkv', 50_000]] });
  t.teardown(() => lab.cleanup());
  const asked: string[][] = [];
  const released: string[] = [];
  const library = Object.assign(libraryWithDriveHook(lab.library, () => undefined), {
    hold: async (labels: string[]) => {
      asked.push(labels);
      // as the worker does (src/staging/recall-holds.ts)
      if (labels.length > MAX_HOLD_LABELS) throw new Error(`a hold names at most ${MAX_HOLD_LABELS} cartridges`);
      return 'h1';
    },
    unhold: async (id: string) => {
      released.push(id);
    },
  });
  const service = new ArchiveService({ catalog: lab.catalog, library, config: lab.config, log: silentLogger });
  const labels = Array.from({ length: 100 }, (_, i) => `TD${String(i).padStart(4, '0')}L9`);
  const release = service.holdCartridges([...labels, labels[0]!]);
  release();
  for (let i = 0; i < 100 && released.length === 0; i++) await new Promise((r) => setImmediate(r));
  t.deepEqual(asked, [labels.slice(0, MAX_HOLD_LABELS)]);
  t.deepEqual(released, ['h1'], 'the hold was taken, and released');
});
