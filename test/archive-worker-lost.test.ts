// A job whose staging worker goes away under it (kill -9 of the stager: every call on its
// library proxy fails with WORKER_DOWN until the supervisor has a new worker) resumes from its
// durable state instead of failing; a worker that never comes back still fails it (bounded).
// The same for a job whose drive playback took while the job had let it go between two calls
// (src/staging/job-drives.ts: BAD_POSITION with details.driveLost): it mounts and positions again.
import test from 'ava';
import { ArchiveService, MAX_ATTEMPTS } from '../src/archive/service.js';
import { silentLogger } from '../src/log.js';
import { TapeError } from '../src/tape/types.js';
import { itemAt, libraryWithDriveHook, makeLab, readThroughCatalog } from './fixtures/archive/setup.js';

// What the staging worker's remote tape library throws once its connection is gone.
const workerDown = () => new TapeError('IO', 'the staging worker connection is gone (connection ended)', { details: { stagerCode: 'WORKER_DOWN' } });

/** An archive job whose second tape write fails with `fail()` once: it resumes, and every item is archived and reads back. */
async function resumesAfterOneFailedWrite(t: import('ava').ExecutionContext, fail: () => Error): Promise<void> {
  const lab = await makeLab({ memory: true, tuning: { workerRetryMs: 10 } });
  t.teardown(() => lab.cleanup());
  let writes = 0;
  let failures = 0;
  const library = libraryWithDriveHook(lab.library, (d, op) =>
    op === 'writeBlocks'
      ? async (data: Buffer) => {
          if (++writes === 2) {
            failures++;
            throw fail();
          }
          return d.writeBlocks(data);
        }
      : undefined,
  );
  const service = new ArchiveService({ catalog: lab.catalog, library, config: lab.config, log: silentLogger, tuning: { workerRetryMs: 10 } });
  const job = await service.run((await service.submit('archive', [lab.media])).id);
  t.is(failures, 1);
  t.is(job.state, 'done', job.reason);
  t.is(job.attempts, 2);
  for (const [path, content] of lab.files) {
    const item = await itemAt(lab.catalog, path);
    t.truthy(item.location?.tape, path);
    t.true((await readThroughCatalog(lab, item)).equals(content), path);
  }
}

test('archive job: the staging worker killed mid-write, the job resumes and every item is archived and reads back', (t) => resumesAfterOneFailedWrite(t, workerDown));

test('archive job: a staging worker that stays gone fails the job after MAX_ATTEMPTS, items stay on disk', async (t) => {
  const lab = await makeLab({ memory: true, files: [['a.mkv', 50_000]], tuning: { workerRetryMs: 10 } });
  t.teardown(() => lab.cleanup());
  const library = libraryWithDriveHook(lab.library, (_d, op) =>
    op === 'writeBlocks'
      ? async () => {
          throw workerDown();
        }
      : undefined,
  );
  const service = new ArchiveService({ catalog: lab.catalog, library, config: lab.config, log: silentLogger, tuning: { workerRetryMs: 10 } });
  const job = await service.run((await service.submit('archive', [lab.media])).id);
  t.is(job.state, 'failed');
  t.is(job.attempts, MAX_ATTEMPTS);
  t.regex(job.reason!, /staging worker/);
  const item = await itemAt(lab.catalog, [...lab.files.keys()][0]);
  t.truthy(item.location?.disk);
  t.falsy(item.location?.tape);
});

// What the staging worker answers a job's call on a drive that playback used meanwhile.
const driveLost = () =>
  new TapeError('BAD_POSITION', 'drive 0 was used by someone else while this job had let it go (it holds TD0002L9, the job had TD0001L9): mount and position again', {
    drive: 0,
    details: { driveLost: true, stagerCode: 'BAD_POSITION' },
  });

test('archive job: its drive taken by playback between two writes, the job resumes and every item is archived and reads back', (t) => resumesAfterOneFailedWrite(t, driveLost));

test('archive job: BAD_POSITION without driveLost is a real fault and still fails the job at once', async (t) => {
  const lab = await makeLab({ memory: true, files: [['a.mkv', 50_000]], tuning: { workerRetryMs: 10 } });
  t.teardown(() => lab.cleanup());
  const library = libraryWithDriveHook(lab.library, (_d, op) =>
    op === 'writeBlocks'
      ? async () => {
          throw new TapeError('BAD_POSITION', 'end of data before block 7', { drive: 0 });
        }
      : undefined,
  );
  const service = new ArchiveService({ catalog: lab.catalog, library, config: lab.config, log: silentLogger, tuning: { workerRetryMs: 10 } });
  const job = await service.run((await service.submit('archive', [lab.media])).id);
  t.is(job.state, 'failed');
  t.is(job.attempts, 1);
  const item = await itemAt(lab.catalog, [...lab.files.keys()][0]);
  t.truthy(item.location?.disk);
});
