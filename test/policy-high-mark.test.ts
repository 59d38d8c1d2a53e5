// An automatic pass also starts when disk usage is above the high watermark, not only every
// policy_interval: a SIZE mark is looked at (one plan) when the catalog changed since the last
// look, a percent mark (statfs of the media directories) at every tick; never sooner than
// HIGH_MARK_GAP_MS after the previous pass, only inside policy_window, never with
// policy_interval = 0; and a pass the high mark started that found nothing to archive does not
// start another before the interval's pass. Fake clock, real catalog and virtual tape library.
import test from 'ava';
import { join } from 'node:path';
import { HIGH_MARK_GAP_MS, PolicyEngine } from '../src/policy/engine.js';
import { AccessTracker } from '../src/policy/access.js';
import { silentLogger } from '../src/log.js';
import type { FsProbe } from '../src/policy/state.js';
import { makeLab, type Lab } from './fixtures/archive/setup.js';

const FILES: [string, number][] = [
  ['Video/Show/S01/S01E1.mkv', 80_000],
  ['Video/Show/S01/S01E2.mkv', 90_000],
  ['Video/Film/Film.mkv', 70_000],
];
const MIN = 60_000;

async function setup(t: import('ava').ExecutionContext, rules: Partial<Lab['config']['policy']>, fsProbe?: FsProbe) {
  const lab = await makeLab({ files: FILES });
  t.teardown(() => lab.cleanup());
  const clock = { t: new Date(2030, 0, 10, 12, 0).getTime() };
  const now = () => clock.t;
  lab.config.headStubTail = 0;
  lab.config.policy = { ...lab.config.policy, minArchiveSize: 10_000, promoteContainerPlays: 0, interval: 3600, ...rules };
  const access = new AccessTracker({ store: lab.catalog.store, now });
  const e = new PolicyEngine({ catalog: lab.catalog, config: lab.config, archive: lab.service, readAccess: (ids) => access.read(ids), log: silentLogger, now, mediaDirs: [lab.media], ...(fsProbe ? { fsProbe } : {}) });
  t.teardown(() => e.stop());
  const id = async (rel: string) => (await lab.catalog.getPath(join(lab.media, rel)))!.id;
  return { lab, e, clock, id };
}

test('a SIZE high mark: a catalog change that takes usage over it starts a pass before the interval is due', async (t) => {
  const { lab, e, clock, id } = await setup(t, { highWatermark: { kind: 'bytes', bytes: 10_000_000 }, lowWatermark: { kind: 'bytes', bytes: 10_000_000 } });
  const film = await id('Video/Film/Film.mkv');
  t.is((await lab.service.run((await lab.service.submit('archive', [film])).id)).state, 'done');
  const used = (await e.plan()).usage[0]!.before;
  // usage is within the marks now: room for the film's recall does not exist (70,000 bytes over)
  lab.config.policy = { ...lab.config.policy, highWatermark: { kind: 'bytes', bytes: used + 10_000 }, lowWatermark: { kind: 'bytes', bytes: used } };
  clock.t += 2 * MIN;
  t.true(await e.tick(), 'the first pass (a minute after start)');
  t.is((await e.lastPass())!.archive, 0, 'within the marks: nothing to do');
  clock.t += HIGH_MARK_GAP_MS;
  t.false(await e.tick(), 'within the marks, the interval not due: no pass');
  // the operator recalls the film: usage is over the high mark, an hour before the next interval pass
  t.is((await lab.service.run((await lab.service.submit('recall', [film])).id)).state, 'done');
  t.true((await e.plan()).usage[0]!.before > used + 10_000);
  t.false(await e.tick(), 'a SIZE mark is looked at (a plan: the whole catalog) at most every HIGH_MARK_GAP_MS');
  clock.t += HIGH_MARK_GAP_MS;
  t.true(await e.tick(), 'over the high mark: a pass now');
  const last = (await e.lastPass())!;
  t.like(last, { trigger: 'auto' });
  t.true(last.archive > 0, 'it archives down to the low mark');
  for (const j of last.jobs) t.is((await lab.service.run(j)).state, 'done');
  t.true((await e.plan()).usage[0]!.before <= used, 'at or below the low mark');
  clock.t += MIN;
  t.false(await e.tick(), 'under the mark again');
});

test('a percent high mark: statfs at each tick; not within HIGH_MARK_GAP_MS of the last pass, not outside policy_window, not with policy_interval 0; a pass that found nothing to archive does not repeat before the interval', async (t) => {
  const fs = { used: 50 };
  const probe: FsProbe = async () => ({ key: 'fs1', sizeBytes: 100 * 1_000_000, usedBytes: fs.used * 1_000_000, freeBytes: (100 - fs.used) * 1_000_000 });
  const { lab, e, clock } = await setup(t, { highWatermark: { kind: 'percent', percent: 80 }, lowWatermark: { kind: 'percent', percent: 70 }, window: { start: 10 * 60, end: 18 * 60 } }, probe);
  clock.t += 2 * MIN;
  t.true(await e.tick(), 'the first pass');
  fs.used = 90; // something else filled the file system
  clock.t += MIN;
  t.false(await e.tick(), 'over the mark, but a pass ran a minute ago');
  clock.t += HIGH_MARK_GAP_MS;
  t.true(await e.tick(), 'over the mark: a pass now');
  t.true((await e.lastPass())!.archive > 0);
  for (const j of (await e.lastPass())!.jobs) t.is((await lab.service.run(j)).state, 'done');
  // everything archivable is archived and the file system stays full (data the catalog does not hold)
  clock.t += HIGH_MARK_GAP_MS;
  t.true(await e.tick(), 'still over the mark: one more pass');
  t.is((await e.lastPass())!.archive, 0, 'it finds nothing left to archive');
  clock.t += HIGH_MARK_GAP_MS;
  t.false(await e.tick(), 'a pass that found nothing does not repeat every few minutes');
  clock.t = Date.parse((await e.lastPass())!.at) + 3600_000;
  t.true(await e.tick(), 'the interval pass comes as always');
  clock.t += HIGH_MARK_GAP_MS;
  t.false(await e.tick(), 'it found nothing either');
  // an item on disk again (the operator recalled one): the interval pass after it archives it, and
  // the high mark may start passes again
  const ep = (await lab.catalog.getPath(join(lab.media, 'Video/Show/S01/S01E1.mkv')))!.id;
  t.is((await lab.service.run((await lab.service.submit('recall', [ep])).id)).state, 'done');
  clock.t = Date.parse((await e.lastPass())!.at) + 3600_000;
  t.true(await e.tick());
  t.is((await e.lastPass())!.archive, 1);
  for (const j of (await e.lastPass())!.jobs) t.is((await lab.service.run(j)).state, 'done');
  clock.t += HIGH_MARK_GAP_MS;
  t.true(await e.tick(), 'over the mark after a pass that archived: the high mark starts one');
  clock.t = new Date(2030, 0, 10, 18, 0).getTime() + HIGH_MARK_GAP_MS;
  t.false(await e.tick(), 'over the mark, outside policy_window (10:00-18:00)');
  clock.t = new Date(2030, 0, 11, 10, 1).getTime();
  lab.config.policy = { ...lab.config.policy, interval: 0 };
  t.false(await e.tick(), 'policy_interval 0: only `tapedeck policy run`');
});

test('an automatic pass due while policy_window is closed (the server was down or busy scanning when it came due) waits for the window to open', async (t) => {
  const { e, clock } = await setup(t, { window: { start: 10 * 60, end: 18 * 60 } });
  clock.t = new Date(2030, 0, 10, 16, 30).getTime();
  t.true(await e.tick(), 'the first pass, inside the window');
  clock.t = new Date(2030, 0, 10, 18, 30).getTime();
  t.false(await e.tick(), 'due since 17:30, but the window closed at 18:00');
  t.is(e.nextPass(), new Date(2030, 0, 11, 10, 0).getTime(), 'the next pass is when the window opens');
  clock.t = new Date(2030, 0, 11, 10, 0).getTime();
  t.true(await e.tick());
});

test('the high mark starts no pass within the first minute after the server starts (the first scan runs)', async (t) => {
  const probe: FsProbe = async () => ({ key: 'fs1', sizeBytes: 100, usedBytes: 90, freeBytes: 10 });
  const { e, clock } = await setup(t, { highWatermark: { kind: 'percent', percent: 80 }, lowWatermark: { kind: 'percent', percent: 70 }, interval: 86400 }, probe);
  await e.start(3600_000);
  clock.t += 30_000;
  t.false(await e.tick(), 'over the mark, 30 s after the start');
  clock.t += 40_000;
  t.true(await e.tick(), 'the first pass, a minute after the start');
});
