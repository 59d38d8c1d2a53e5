// ArchiveService.stop() of the background runner (the server's stop) always ends: a stop that
// comes while the runner lists the jobs (after a job ended, or while it resumes interrupted ones
// at start) used to find nobody waiting to be woken; the runner then waited for a wake that never
// came and the server's stop hung until a second signal. The list is held at a gate here, so the
// order is deterministic.

import test from 'ava';
import { makeLab } from './fixtures/archive/setup.js';
import { settle } from './fixtures/staging/harness.js';

test('a stop while the runner lists the jobs ends (the runner does not wait for a wake that already came)', async (t) => {
  t.timeout(120_000);
  const lab = await makeLab({ files: [['a.mkv', 10_000]], memory: true });
  try {
    const svc = lab.service;
    const list = svc.list.bind(svc);
    let listing = 0;
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    (svc as { list: typeof svc.list }).list = async () => {
      const out = await list();
      // resume() lists twice (finished jobs, interrupted ones); the third is the runner's look for
      // a queued job: held until stop() has run
      if (++listing === 3) await gate;
      return out;
    };
    svc.start();
    t.true(await settle(() => listing >= 3, 60_000, 5), 'the runner lists the jobs');
    let done = false;
    const stop = svc.stop().then(() => (done = true));
    open();
    // bounded: without the fix the stop never ends
    t.true(await settle(() => done, 60_000, 10), 'the stop ended');
    if (done) await stop;
  } finally {
    await lab.cleanup();
  }
});
