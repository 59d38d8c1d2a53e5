// Job drive leases in the staging worker (job-drives.ts): a job lets its drive go after an idle
// time or when playback asks for it; if someone else used the drive meanwhile (playback
// swapped or moved the tape, an idle unload), the job's next read or write that continues
// from "where the tape is" must be refused, never land on another cartridge or another place.

import test from 'ava';
import { join } from 'node:path';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { DriveScheduler } from '../src/staging/scheduler.js';
import { JobDrives } from '../src/staging/job-drives.js';
import type { ClientMessage, LibOp, WorkerMessage } from '../src/staging/protocol.js';
import { isTapeError } from '../src/tape/types.js';
import { tempDir, removeDir } from './fixtures/staging/harness.js';

const A = 'TD0001L9';
const B = 'TD0002L9';
const BS = 4096;
const block = (fill: number, n = 1) => Buffer.alloc(BS * n, fill);

async function setup(o: { idleUnloadMs?: number } = {}) {
  const dir = await tempDir('tapedeck-jobdrives-');
  const lib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { drives: 1, slots: 4, cartridges: [A, B], blockSize: BS, capacityBytes: 4 << 20, timeScale: 0 });
  // cartridge B holds 4 blocks of 0xbb that nobody may overwrite
  const d = await lib.mount(B, { drive: 0 });
  await d.writeBlocks(block(0xbb, 4));
  await d.writeFilemarks(1);
  await lib.changer.unload(0);
  const scheduler = await DriveScheduler.create(lib, { admissionTimeoutMs: 5000, idleUnloadMs: o.idleUnloadMs ?? 0 });
  const events: WorkerMessage[] = [];
  const jobs = new JobDrives({ lib, scheduler, jobIdleReleaseMs: 30, jobAdmissionTimeoutMs: () => 5000 }, (m) => events.push(m), () => true);
  let id = 0;
  const call = async (op: LibOp, args: unknown[] = [], drive?: number, data?: Buffer) =>
    jobs.call({ t: 'lib', id: ++id, op, args, ...(drive !== undefined ? { drive } : {}) } as Extract<ClientMessage, { t: 'lib' }>, data);
  /** Reads B's first 5 blocks as playback would (a lease at interactive priority). */
  const readB = async () => {
    const l = await scheduler.acquire({ label: B, priority: 'interactive' });
    try {
      await l.drive.locate(0);
      return (await l.drive.readBlocks(5)).data;
    } finally {
      l.release();
    }
  };
  return {
    lib,
    scheduler,
    jobs,
    call,
    readB,
    async done() {
      jobs.closed();
      scheduler.close();
      await lib.close();
      await removeDir(dir);
    },
  };
}

const lapse = () => new Promise((r) => setTimeout(r, 120)); // > jobIdleReleaseMs

test('a write after the job let its drive go and playback swapped the cartridge is refused: the other cartridge is untouched', async (t) => {
  const h = await setup();
  try {
    const { value } = await h.call('mount', [A]);
    const drive = (value as { drive: number }).drive;
    await h.call('drive.writeBlocks', [], drive, block(0xaa, 2));
    await lapse();
    t.deepEqual(await h.readB(), block(0xbb, 4), 'playback reads B in the same drive');
    const err = await t.throwsAsync(h.call('drive.writeBlocks', [], drive, block(0xaa)));
    t.true(isTapeError(err, 'BAD_POSITION'), String(err));
    t.regex(err!.message, /holds TD0002L9, the job had TD0001L9/);
    t.is((err as { details?: { driveLost?: unknown } }).details?.driveLost, true, 'marked so the archive service resumes the job instead of failing it');
    await t.throwsAsync(h.call('drive.locate', [0], drive), { message: /used by someone else/ }, 'not even an absolute positioning on the wrong cartridge');
    t.deepEqual(await h.readB(), block(0xbb, 4), "B's blocks are intact");
    // the job mounts its cartridge again and positions: it goes on where it should
    await h.call('mount', [A]);
    await t.throwsAsync(h.call('drive.writeBlocks', [], drive, block(0xaa)), { message: /mount and position again/ }, 'mounted but not positioned');
    await h.call('drive.seekToEod', [], drive);
    await h.call('drive.writeBlocks', [], drive, block(0xa1));
    await h.call('drive.locate', [0], drive);
    // A's two blocks (the unload ended its tape file with a filemark), then the new block
    const first = await h.call('drive.readBlocks', [4], drive);
    t.deepEqual(first.data, block(0xaa, 2));
    t.deepEqual(first.value, { mark: 'filemark' });
    t.deepEqual((await h.call('drive.readBlocks', [1], drive)).data, block(0xa1));
  } finally {
    await h.done();
  }
});

test('a lease that lapsed with nobody using the drive meanwhile continues where it was', async (t) => {
  const h = await setup();
  try {
    const drive = ((await h.call('mount', [A])).value as { drive: number }).drive;
    await h.call('drive.writeBlocks', [], drive, block(0x01));
    await lapse();
    await h.call('drive.writeBlocks', [], drive, block(0x02));
    await h.call('drive.locate', [0], drive);
    t.deepEqual((await h.call('drive.readBlocks', [2], drive)).data, Buffer.concat([block(0x01), block(0x02)]));
  } finally {
    await h.done();
  }
});

test('playback moved the tape on the same cartridge: relative reads wait for a positioning; tell, locate or seek to end of data give it back', async (t) => {
  const h = await setup();
  try {
    const drive = ((await h.call('mount', [B])).value as { drive: number }).drive;
    await h.call('drive.locate', [2], drive);
    await lapse();
    t.deepEqual(await h.readB(), block(0xbb, 4)); // playback leaves the tape after B's data
    await t.throwsAsync(h.call('drive.readBlocks', [1], drive), { message: /used by someone else/ });
    t.is((await h.call('drive.tell', [], drive)).value, 5, 'where the tape really is (after the filemark)');
    const r = await h.call('drive.readBlocks', [1], drive);
    t.deepEqual(r.value, { mark: 'eod' }, 'after tell the read continues from the place the job was told');
  } finally {
    await h.done();
  }
});

test('an idle unload while the job had let its drive go: its next read is refused until it mounts and positions again', async (t) => {
  const h = await setup({ idleUnloadMs: 20 });
  try {
    const drive = ((await h.call('mount', [A])).value as { drive: number }).drive;
    await h.call('drive.writeBlocks', [], drive, block(0x03, 2));
    await h.call('drive.writeFilemarks', [1], drive);
    // the lease lapses, then the idle unload runs: waited for (not a fixed 120 ms, too short on a loaded CI)
    for (const until = Date.now() + 10_000; h.scheduler.labelIn(drive) !== null && Date.now() < until; ) await lapse();
    t.is(h.scheduler.labelIn(drive), null, 'unloaded for idleness');
    await t.throwsAsync(h.call('drive.readBlocks', [1], drive), { message: /holds no cartridge/ });
    await h.call('mount', [A]);
    await h.call('drive.rewind', [], drive);
    t.deepEqual((await h.call('drive.readBlocks', [2], drive)).data, block(0x03, 2));
  } finally {
    await h.done();
  }
});

test('a cartridge a job mounted through a drive it already held is seen there: playback waits for that drive instead of mounting it into another (which failed: "loaded in drive 0")', async (t) => {
  const dir = await tempDir('tapedeck-jobdrives-');
  const lib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { drives: 2, slots: 4, cartridges: [A, B], blockSize: BS, capacityBytes: 4 << 20, timeScale: 0 });
  const scheduler = await DriveScheduler.create(lib, { admissionTimeoutMs: 5000, idleUnloadMs: 0 });
  const jobs = new JobDrives({ lib, scheduler, jobIdleReleaseMs: 60_000, jobAdmissionTimeoutMs: () => 5000 }, () => undefined, () => true);
  let id = 0;
  const call = async (op: LibOp, args: unknown[] = [], drive?: number) => jobs.call({ t: 'lib', id: ++id, op, args, ...(drive !== undefined ? { drive } : {}) } as Extract<ClientMessage, { t: 'lib' }>, undefined);
  try {
    await call('mount', [A, { drive: 0 }]); // the job's lease on drive 0, A mounted by the scheduler
    await call('mount', [B, { drive: 0 }]); // B through the lease the job holds
    t.is(scheduler.labelIn(0), B);
    // playback for B: drive 1 is free and empty, but B is in drive 0 (the job's)
    const play = scheduler.acquire({ label: B, priority: 'interactive' });
    await new Promise((r) => setTimeout(r, 20));
    t.is(scheduler.counters.mountErrors, 0);
    await call('release');
    const l = await play;
    t.is(l.index, 0, 'served by the drive that holds B');
    t.is(scheduler.counters.mountErrors, 0);
    l.release();
  } finally {
    jobs.closed();
    scheduler.close();
    await lib.close();
    await removeDir(dir);
  }
});
