import test from 'ava';
import { join } from 'node:path';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { DriveScheduler, type DriveLease } from '../src/staging/scheduler.js';
import { StagerError, type Priority } from '../src/staging/protocol.js';
import { tempDir, removeDir, settle } from './fixtures/staging/harness.js';

const LABELS = ['TD0001L9', 'TD0002L9', 'TD0003L9', 'TD0004L9', 'TD0005L9', 'TD0006L9'];
const [A, B, C, D, E] = LABELS as [string, string, string, string, string];

async function setup(drives = 1, opts: { admissionTimeoutMs?: number; idleUnloadMs?: number; inUse?: (label: string) => boolean } = {}) {
  const dir = await tempDir('tapedeck-sched-');
  const lib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { drives, slots: 10, cartridges: LABELS, blockSize: 4096, capacityBytes: 4 << 20, timeScale: 0 });
  const s = await DriveScheduler.create(lib, { admissionTimeoutMs: opts.admissionTimeoutMs ?? 5000, idleUnloadMs: opts.idleUnloadMs ?? 0, ...(opts.inUse ? { inUse: opts.inUse } : {}) });
  const admits: { label: string | null; priority: Priority; block?: number; drive: number }[] = [];
  s.on('admit', (e) => admits.push(e));
  let busy = 0;
  let maxBusy = 0;
  /** acquire and count concurrent leases */
  const take = async (req: Parameters<DriveScheduler['acquire']>[0]): Promise<DriveLease> => {
    const l = await s.acquire(req);
    busy++;
    maxBusy = Math.max(maxBusy, busy);
    const rel = l.release.bind(l);
    (l as { release: () => void }).release = () => {
      if (!l.released) busy--;
      rel();
    };
    return l;
  };
  return {
    lib,
    s,
    admits,
    take,
    maxBusy: () => maxBusy,
    async done() {
      s.close();
      await lib.close();
      await removeDir(dir);
    },
  };
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

test('queue order: priority classes first; same cartridge by block; a loaded cartridge is used rather than swapped', async (t) => {
  const h = await setup(1);
  try {
    const hold = await h.take({ label: A, priority: 'interactive', block: 0 });
    t.is(h.s.labelIn(0), A);
    const order: string[] = [];
    const want = (name: string, label: string, priority: Priority, block: number) =>
      h.take({ label, priority, block, owner: name }).then(async (l) => {
        order.push(name);
        t.is(h.s.labelIn(l.index), label, `${name} got a drive holding ${label}`);
        await tick(2);
        l.release();
      });
    const all = [
      want('j1', B, 'job', 0),
      want('p1', C, 'prefetch', 10),
      want('i1', D, 'interactive', 500),
      want('i2', A, 'interactive', 300),
      want('i3', D, 'interactive', 100),
      want('p2', A, 'prefetch', 5),
      want('i4', E, 'interactive', 0),
    ];
    await tick();
    t.is(h.s.queue().length, 7);
    t.deepEqual(
      h.s.queue().map((q) => q.owner),
      ['i3', 'i1', 'i2', 'i4', 'p1', 'p2', 'j1'],
      'waiting list: interactive, prefetch, jobs; D in block order; cartridges by their oldest request',
    );
    const mountsBefore = h.s.counters.mounts;
    hold.release();
    await Promise.all(all);
    t.deepEqual(order, ['i2', 'i3', 'i1', 'i4', 'p1', 'p2', 'j1']);
    t.is(h.s.counters.mounts - mountsBefore, 5, 'D, E, C, A, B: one mount each, A reused by i2 without one');
    t.is(h.maxBusy(), 1, 'never more leases than drives');
    t.is(h.lib.stats().mounts, 6);
    t.is(h.s.counters.admissions, 8);
    t.is(h.s.counters.queued, 7);
  } finally {
    await h.done();
  }
});

test('1 drive, 5 cartridges at once: served one at a time in order, the rest get ADMISSION_TIMEOUT with Retry-After', async (t) => {
  const h = await setup(1, { admissionTimeoutMs: 500 });
  try {
    const results = await Promise.all(
      [A, B, C, D, E].map((label, i) =>
        h.take({ label, priority: 'interactive', owner: `r${i}` }).then(
          async (l) => {
            await new Promise((r) => setTimeout(r, 200)); // reading
            l.release();
            return { i, ok: true as const };
          },
          (err: StagerError) => ({ i, ok: false as const, err }),
        ),
      ),
    );
    const ok = results.filter((r) => r.ok).map((r) => r.i);
    const failed = results.filter((r) => !r.ok);
    t.true(ok.length >= 1 && failed.length >= 1, `some served (${ok}), some refused`);
    t.deepEqual(ok, ok.map((_, k) => k), 'the served ones are the oldest, in order');
    for (const f of failed) {
      const err = (f as { err: StagerError }).err;
      t.is(err.code, 'ADMISSION_TIMEOUT');
      t.true((err.retryAfter ?? 0) > 0);
      t.regex(err.message, /no tape drive became free/);
    }
    t.is(h.maxBusy(), 1);
    t.is(h.lib.stats().mounts, ok.length, 'one mount per served cartridge, none for refused ones');
    t.is(h.s.counters.admissionTimeouts, failed.length);
    t.is(h.s.queue().length, 0);
  } finally {
    await h.done();
  }
});

test('a request whose cartridge is in a busy drive waits for that drive; another cartridge takes the free one', async (t) => {
  const h = await setup(2);
  try {
    const a1 = await h.take({ label: A, priority: 'interactive' });
    let a2: DriveLease | undefined;
    const p = h.take({ label: A, priority: 'interactive' }).then((l) => (a2 = l));
    const b = await h.take({ label: B, priority: 'prefetch' });
    t.not(b.index, a1.index);
    await tick();
    t.is(a2, undefined, 'A is not mounted twice');
    a1.release();
    await p;
    t.is(a2!.index, a1.index);
    t.is(h.lib.stats().mounts, 2);
    a2!.release();
    b.release();
  } finally {
    await h.done();
  }
});

test('two requests for a cartridge while it is being mounted: one mount, the second waits for that drive (not the other empty one)', async (t) => {
  const dir = await tempDir('tapedeck-sched-');
  // mounts take real (scaled) time, so the second request arrives during the first one's mount
  const lib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { drives: 2, slots: 10, cartridges: LABELS, blockSize: 4096, capacityBytes: 4 << 20, timeScale: 0.005 });
  const s = await DriveScheduler.create(lib, { admissionTimeoutMs: 10_000, idleUnloadMs: 0 });
  t.teardown(async () => {
    s.close();
    await lib.close();
    await removeDir(dir);
  });
  const first = s.acquire({ label: A, priority: 'interactive', block: 0, owner: 'first' });
  await tick(20);
  t.is(s.labelIn(0), null, 'the mount is still running');
  const second = s.acquire({ label: A, priority: 'interactive', block: 100, owner: 'second' });
  await tick(20);
  t.deepEqual(s.queue().map((q) => q.owner), ['second'], 'the second request waits instead of taking drive 1');
  const l1 = await first;
  t.is(s.labelIn(l1.index), A);
  l1.release();
  const l2 = await second;
  t.is(l2.index, l1.index, 'same drive');
  t.is(s.labelIn(l2.index), A);
  l2.release();
  t.is(s.counters.mounts, 1);
  t.is(s.counters.mountErrors, 0);
});

test('offline cartridge: rejected at once and remembered as needed until it is back', async (t) => {
  const h = await setup(1, { admissionTimeoutMs: 60_000 });
  try {
    await h.lib.changer.exportCartridge(C);
    const needed: unknown[] = [];
    h.s.on('needed', (l) => needed.push(l));
    const t0 = Date.now();
    const err = await t.throwsAsync(h.s.acquire({ label: C, priority: 'interactive', owner: 'item 7' }));
    t.true(Date.now() - t0 < 30_000, 'not after waiting for the 60 s admission limit');
    t.is((err as StagerError).code, 'OFFLINE');
    t.regex(err!.message, /TD0003L9 is offline/);
    t.is((err as StagerError).label, C);
    t.true(((err as StagerError).retryAfter ?? 0) > 0);
    await t.throwsAsync(h.s.acquire({ label: C, priority: 'prefetch', owner: 'item 8' }));
    t.like(h.s.neededCartridges()[0], { label: C, requests: 2, lastItem: 'item 8' });
    t.is(h.s.counters.rejectedOffline, 2);
    t.is(h.lib.stats().mounts, 0);
    await h.lib.changer.importCartridge(C);
    const l = await h.s.acquire({ label: C, priority: 'interactive' });
    l.release();
    t.deepEqual(h.s.neededCartridges(), []);
    t.true(needed.length >= 2);
    await t.throwsAsync(h.s.acquire({ label: 'XX9999L9', priority: 'interactive' }), { message: /not known/ });
  } finally {
    await h.done();
  }
});

test('idle drives are unloaded after the configured time, not while a request wants the cartridge', async (t) => {
  // real timers: an idle time far above the checks' own waits, and a bounded poll for the unload,
  // so a loaded machine (late timers) cannot turn either check around
  const h = await setup(1, { idleUnloadMs: 1000 });
  try {
    const l = await h.s.acquire({ label: A, priority: 'interactive' });
    await tick(1200);
    t.is(h.s.labelIn(0), A, 'not unloaded while leased');
    const released = Date.now();
    l.release();
    await tick(30);
    if (Date.now() - released < 900) t.is(h.s.labelIn(0), A, 'not before the idle time');
    t.true(await settle(() => h.s.labelIn(0) === null, 10_000, 20), 'unloaded after the idle time');
    t.true(Date.now() - released >= 990, 'not before it');
    t.is(h.s.counters.idleUnloads, 1);
    t.is(h.lib.stats().unloads, 1);
    const inv = await h.lib.changer.inventory();
    t.false(inv.drives[0]!.full);
  } finally {
    await h.done();
  }
});

test('a cancelled waiter leaves the queue; job leases on a named drive wait for playback', async (t) => {
  const h = await setup(1);
  try {
    const l = await h.s.acquire({ label: A, priority: 'interactive' });
    const ac = new AbortController();
    const p = h.s.acquire({ label: B, priority: 'interactive', signal: ac.signal });
    let job: DriveLease | undefined;
    const j = h.s.acquire({ drive: 0, priority: 'job', owner: 'job' }).then((x) => (job = x));
    await tick();
    t.is(h.s.queue().length, 2);
    ac.abort();
    await t.throwsAsync(p, { message: /cancelled/ });
    t.is(h.s.queue().length, 1);
    t.is(job, undefined);
    l.release();
    await j;
    t.is(job!.index, 0);
    t.is(job!.label, A, 'a job lease takes the drive as it is');
    t.is(h.s.drives()[0]!.owner, 'job');
    job!.release();
    await tick();
    t.false(h.s.drives()[0]!.busy);
  } finally {
    await h.done();
  }
});

test('pre-emption: playback blocked by job leases asks one job per blocked request, once; prefetch never does', async (t) => {
  const h = await setup(2);
  try {
    const asks: { drive: number; label: string | null }[] = [];
    h.s.on('preempt', (e) => asks.push(e));
    const j0 = await h.take({ label: A, priority: 'job', owner: 'job' });
    const j1 = await h.take({ label: B, priority: 'job', owner: 'job' });
    const told: number[] = [];
    j0.onPreempt(() => told.push(0));
    j1.onPreempt(() => told.push(1));
    // prefetch waits like before
    const pre = h.take({ label: C, priority: 'prefetch', owner: 'prefetch' });
    await tick();
    t.deepEqual(asks, [], 'prefetch does not pre-empt');
    // playback of a cartridge a job holds: that job is asked
    const p1 = h.take({ label: B, priority: 'interactive', owner: 'play B' });
    await tick();
    t.deepEqual(asks.map((a) => a.drive), [1]);
    t.deepEqual(told, [1]);
    t.true(j1.preemptAsked);
    // a second request for the same cartridge asks nobody else; one for another cartridge asks the other job
    const p2 = h.take({ label: B, priority: 'interactive', owner: 'play B again' });
    await tick();
    t.is(asks.length, 1);
    const p3 = h.take({ label: D, priority: 'interactive', owner: 'play D' });
    await tick();
    t.deepEqual(asks.map((a) => a.drive), [1, 0]);
    t.is(h.s.counters.preemptions, 2);
    // the jobs give back at their safe point: playback is admitted, prefetch still after it
    j1.release();
    const l1 = await p1;
    t.is(l1.index, 1);
    l1.release();
    (await p2).release();
    j0.release();
    const l3 = await p3;
    t.is(h.s.labelIn(l3.index), D);
    l3.release();
    (await pre).release();
    t.deepEqual(h.admits.slice(2).map((a) => a.priority), ['interactive', 'interactive', 'interactive', 'prefetch']);
    t.is(h.s.counters.admissionTimeouts, 0);
    t.is(h.s.counters.preemptions, 2, 'no lease asked twice');
  } finally {
    await h.done();
  }
});

test('a cartridge a client still streams from is not unloaded for idleness; it is once the client is done', async (t) => {
  let streaming = true;
  const h = await setup(1, { idleUnloadMs: 40, inUse: (label) => streaming && label === A });
  try {
    (await h.s.acquire({ label: A, priority: 'interactive' })).release();
    await tick(200);
    t.is(h.s.labelIn(0), A, 'kept loaded across several idle periods while in use');
    t.is(h.s.counters.idleUnloads, 0);
    streaming = false;
    for (let i = 0; i < 100 && h.s.labelIn(0) !== null; i++) await tick(10);
    t.is(h.s.labelIn(0), null);
    t.is(h.s.counters.idleUnloads, 1);
  } finally {
    await h.done();
  }
});

test('mounts are counted by the priority of the request that caused them; a loaded cartridge costs none', async (t) => {
  const h = await setup(2);
  try {
    (await h.take({ label: A, priority: 'interactive', block: 0 })).release();
    (await h.take({ label: A, priority: 'prefetch', block: 0 })).release(); // already loaded: no mount
    (await h.take({ label: B, priority: 'prefetch', block: 0 })).release();
    (await h.take({ label: C, priority: 'job' })).release();
    t.like(h.s.counters, { mounts: 3, mountsInteractive: 1, mountsPrefetch: 1, mountsJob: 1 });
  } finally {
    await h.done();
  }
});

test('a noMount request (a pre-stage) never mounts: refused at once when its cartridge is not loaded, served by the drive that holds or loads it', async (t) => {
  const h = await setup(2);
  try {
    const err = await t.throwsAsync(h.take({ label: A, priority: 'prefetch', noMount: true }));
    t.is((err as StagerError).code, 'NOT_LOADED');
    t.is(h.s.counters.mounts, 0);
    t.is(h.s.counters.notLoaded, 1);
    // loaded by playback: the pre-stage waits for that drive and gets it, no mount of its own
    const play = await h.take({ label: A, priority: 'interactive', block: 0 });
    const pre = h.take({ label: A, priority: 'prefetch', noMount: true });
    await tick();
    play.release();
    const l = await pre;
    t.is(h.s.labelIn(l.index), A);
    l.release();
    t.like(h.s.counters, { mounts: 1, mountsInteractive: 1, mountsPrefetch: 0 });
    t.false(h.s.playbackWaiting());
  } finally {
    await h.done();
  }
});

test('a swap takes the cartridge nobody plays from, even when the one in use is the least recently used', async (t) => {
  const h = await setup(2, { inUse: (label) => label === A });
  try {
    const a = await h.take({ label: A, priority: 'interactive', block: 0 });
    const b = await h.take({ label: B, priority: 'interactive', block: 0 });
    a.release();
    await tick(10);
    b.release(); // A's drive is the least recently used, but a client still plays from A
    const c = await h.take({ label: C, priority: 'interactive', block: 0 });
    t.is(h.s.labelIn(c.index), C);
    t.deepEqual([h.s.labelIn(0), h.s.labelIn(1)].sort(), [A, C], 'B was swapped out, A stays');
    c.release();
  } finally {
    await h.done();
  }
});

test('a request for the cartridge a swap is taking out of a drive waits until it is back in its slot, then mounts it (it failed: "loaded in drive 0" → BUSY → 503)', async (t) => {
  const dir = await tempDir('tapedeck-sched-');
  const lib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { drives: 2, slots: 10, cartridges: LABELS, blockSize: 4096, capacityBytes: 4 << 20, timeScale: 0 });
  // the swap's mount (unload A, load C) waits at a gate: A is still in drive 0 meanwhile
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let gated = false;
  const gatedLib = { kind: lib.kind, changer: lib.changer, drives: lib.drives, stats: () => lib.stats(), close: () => lib.close(), mount: async (label: string, opts?: { drive?: number }) => {
    if (label === C && !gated) {
      gated = true;
      await gate;
    }
    return lib.mount(label, opts);
  } };
  const s = await DriveScheduler.create(gatedLib, { admissionTimeoutMs: 120_000, idleUnloadMs: 0 }); // no admission timeout under load: the test holds the swap at a gate
  try {
    const a = await s.acquire({ label: A, priority: 'interactive' });
    const b = await s.acquire({ label: B, priority: 'interactive' });
    t.deepEqual([s.labelIn(0), s.labelIn(1)], [A, B]);
    a.release();
    const c = s.acquire({ label: C, priority: 'interactive' }); // swaps A out of drive 0 (drive 1 is busy)
    t.true(await settle(() => gated), 'the swap is under way');
    b.release(); // drive 1 is free now: a request for A must not mount it there while A is still in drive 0
    const again = s.acquire({ label: A, priority: 'interactive' });
    await tick(20);
    open();
    const lc = await c;
    const la = await again;
    t.is(lc.index, 0);
    t.is(la.index, 1, 'A mounted into the other drive once it was back in its slot');
    t.is(s.labelIn(1), A);
    t.is(s.counters.mountErrors, 0);
    lc.release();
    la.release();
  } finally {
    s.close();
    await lib.close();
    await removeDir(dir);
  }
});
