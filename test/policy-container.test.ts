// Container promotion (promote_container_plays) on a real catalog and virtual tape library, with a
// fake clock: a season being watched from tape is recalled whole by one recall job at job
// priority right after the play that makes it hot (not below N plays, not with plays outside
// promote_window, not past the high watermark, not outside policy_window); a pass plans and runs
// the same rule (plan == run) and does not wait for the play's job; the status page and /metrics
// count it; a kill -9 in the middle of the recall leaves every item readable and the next pass
// finishes the work (the durable recall job).
import test from 'ava';
import { join } from 'node:path';
import { PolicyEngine } from '../src/policy/engine.js';
import { AccessTracker } from '../src/policy/access.js';
import { silentLogger } from '../src/log.js';
import { collectStatus } from '../src/http/status.js';
import { libraryStatus } from '../src/server-state.js';
import { ServerMetrics } from '../src/metrics.js';
import type { PolicyPlan } from '../src/policy/plan.js';
import { makeLab, readThroughCatalog, runCli, type Lab } from './fixtures/archive/setup.js';

const FILES: [string, number][] = [
  ['Video/Show/S01/S01E1.mkv', 80_000],
  ['Video/Show/S01/S01E2.mkv', 90_000],
  ['Video/Show/S01/S01E3.mkv', 70_000],
  ['Music/Band/Album/1 One.mp3', 50_000],
];
const DAY = 86400_000;
const EPS = ['S01E1', 'S01E2', 'S01E3'];

interface Setup {
  lab: Lab;
  e: PolicyEngine;
  access: AccessTracker;
  ep: string[];
  song: string;
  clock: { t: number };
}

async function setup(t: import('ava').ExecutionContext, rules: Partial<Lab['config']['policy']> = {}): Promise<Setup> {
  const lab = await makeLab({ files: FILES });
  t.teardown(() => lab.cleanup());
  const clock = { t: new Date(2030, 0, 10, 20, 0).getTime() };
  const now = () => clock.t;
  lab.config.policy = { ...lab.config.policy, minArchiveSize: 10_000, promoteContainerPlays: 2, highWatermark: { kind: 'bytes', bytes: 10_000_000 }, lowWatermark: { kind: 'bytes', bytes: 10_000_000 }, ...rules };
  const access = new AccessTracker({ store: lab.catalog.store, now });
  const e = new PolicyEngine({ catalog: lab.catalog, config: lab.config, archive: lab.service, readAccess: (ids) => access.read(ids), log: silentLogger, now, mediaDirs: [lab.media] });
  t.teardown(() => e.stop());
  const ep: string[] = [];
  for (const n of EPS) ep.push((await lab.catalog.getPath(join(lab.media, `Video/Show/S01/${n}.mkv`)))!.id);
  const song = (await lab.catalog.getPath(join(lab.media, 'Music/Band/Album/1 One.mp3')))!.id;
  // head stubs without the tail (which would hold these small files whole): a recall adds bytes to disk
  lab.config.headStubTail = 0;
  const job = await lab.service.run((await lab.service.submit('archive', ep)).id);
  t.is(job.state, 'done', job.reason);
  return { lab, e, access, ep, song, clock };
}

const tiers = async (lab: Lab, ids: string[]) => Promise.all(ids.map(async (id) => { const l = (await lab.catalog.get(id))!.location!; return l.disk && l.tape ? 'both' : l.disk ? 'disk' : 'tape'; }));

test('a play that makes the container hot recalls the rest of it right away (one job, job priority); below N or outside the window it does not', async (t) => {
  const { lab, e, access, ep, song, clock } = await setup(t);
  access.notePlay(ep[0], '10.0.0.5');
  t.deepEqual(await e.onPlay(ep[0]), [], 'one play: below promote_container_plays 2');
  t.deepEqual((await e.plan()).actions, []);
  clock.t += 8 * DAY;
  access.notePlay(ep[1], '10.0.0.5');
  t.deepEqual(await e.onPlay(ep[1]), [], 'the first play is outside promote_window (7d) now');
  access.notePlay(song, '10.0.0.6');
  access.notePlay(song, '10.0.0.7');
  t.deepEqual(await e.onPlay(song), [], 'plays of an item without a tape copy start nothing');
  clock.t += 3600_000;
  access.notePlay(ep[1], '10.0.0.9');
  const queued = await e.onPlay(ep[1]);
  t.is(queued.length, 1, 'two plays within the window: one recall job, nothing to make room for');
  const job = queued[0];
  t.like(job!.opts, { origin: 'policy', rule: 'container-plays', trigger: 'play' });
  t.deepEqual((await lab.service.items(job!.id)).map((i) => i.id), ep, 'the whole season, in play order');
  // while it runs, a pass neither waits for it (no BUSY) nor plans its items again
  t.deepEqual((await e.plan()).actions, []);
  t.deepEqual(await e.onPlay(ep[1]), [], 'a second play does not queue the same items again');
  const { jobs } = await e.runPass('manual');
  t.deepEqual(jobs, []);
  const done = await lab.service.run(job!.id);
  t.is(done.state, 'done', done.reason);
  t.deepEqual(await tiers(lab, ep), ['both', 'both', 'both']);
  for (const id of ep) {
    const item = (await lab.catalog.get(id))!;
    t.true((await readThroughCatalog(lab, item)).equals(lab.files.get(item.origPath!)!));
  }
  const st = await e.status();
  t.is(st.promotions, 3);
  t.is(st.containerPromotions, 3);
  const provider = { server: () => ({ name: 'nas', version: '0', scanning: false }), library: () => libraryStatus(lab.catalog), policy: () => e.status() };
  t.like((await collectStatus(provider)).policy, { promotions: 3, containerPromotions: 3 });
  const text = await new ServerMetrics({ version: '0', status: provider }).scrape();
  t.regex(text, /^tapedeck_policy_container_promotions_total 3$/m);
  t.regex(text, /^tapedeck_policy_promotions_total 3$/m);
});

test('the immediate promotion stays under the high watermark and inside policy_window; the next pass (plan == run) does the rest', async (t) => {
  // disk: the song (50,000) + 3 stubs; room under the high mark for E1 only
  const { lab, e, access, ep, clock } = await setup(t, { window: { start: 22 * 60, end: 5 * 60 } });
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  t.deepEqual(await e.onPlay(ep[1]), [], 'policy_window (22:00-05:00) is closed at 20:00: left to the pass');
  const plan = await e.plan();
  t.deepEqual(plan.actions.map((a) => [a.id, a.action, a.reason, a.containerPlays]), ep.map((id) => [id, 'recall', 'container-plays', 2]));
  // a high mark with room for one episode only: the immediate promotion takes what fits
  clock.t = new Date(2030, 0, 10, 23, 0).getTime();
  const used = (await e.plan()).usage[0].before;
  lab.config.policy = { ...lab.config.policy, highWatermark: { kind: 'bytes', bytes: used + 85_000 }, lowWatermark: { kind: 'bytes', bytes: used + 85_000 } };
  const queued = await e.onPlay(ep[1]);
  t.is(queued.length, 1, 'the song has no tape copy: archiving it would write a cartridge, so it does not make room now');
  const job = queued[0];
  t.deepEqual((await lab.service.items(job!.id)).map((i) => i.id), [ep[0]]);
  t.is((await lab.service.run(job!.id)).state, 'done');
  t.deepEqual(await tiers(lab, ep), ['both', 'tape', 'tape']);
  t.true((await e.plan()).usage[0].before <= used + 85_000, 'under the high mark');
  // room for the rest: the pass plans it, and runs exactly that
  lab.config.policy = { ...lab.config.policy, highWatermark: { kind: 'bytes', bytes: 10_000_000 }, lowWatermark: { kind: 'bytes', bytes: 10_000_000 } };
  const next = await e.plan();
  t.deepEqual(next.actions.map((a) => [a.id, a.reason]), [[ep[1], 'container-plays'], [ep[2], 'container-plays']]);
  const { plan: ran, jobs } = await e.runPass('manual');
  t.deepEqual(ran.actions, next.actions, 'the run does what the plan printed');
  t.is(jobs.length, 1);
  t.like(jobs[0].opts, { origin: 'policy', rule: 'container-plays' });
  t.is(jobs[0].opts.trigger, undefined);
  t.deepEqual((await lab.service.items(jobs[0].id)).map((i) => i.id), [ep[1], ep[2]]);
  t.is((await lab.service.run(jobs[0].id)).state, 'done');
  t.deepEqual(await tiers(lab, ep), ['both', 'both', 'both']);
  t.like(await e.status(), { promotions: 3, containerPromotions: 3 });
});

test('right after the play, items with a tape copy (tier both) are archived first to make room: no tape write, then the recall', async (t) => {
  const { lab, e, access, ep, song, clock } = await setup(t);
  // the song is on disk and tape, and colder than the season (never played)
  t.is((await lab.service.run((await lab.service.submit('archive', [song], { keepDisk: true })).id)).state, 'done');
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  const plan = await e.plan();
  const used = plan.usage[0].before;
  const adds = plan.actions.filter((a) => a.action === 'recall').reduce((n, a) => n - a.diskDelta, 0);
  t.true(adds > 0);
  // a high mark 1 byte short of the whole season: only the song's disk copy going makes it fit
  lab.config.policy = { ...lab.config.policy, highWatermark: { kind: 'bytes', bytes: used + adds - 1 }, lowWatermark: { kind: 'bytes', bytes: used + adds - 1 } };
  clock.t += 60_000;
  const written = lab.library.stats().bytesWritten;
  const jobs = await e.onPlay(ep[1]);
  // what fits as the disk is now (E1, E2) is recalled first; E3 only after the room is made
  t.deepEqual(jobs.map((j) => [j.kind, j.opts.rule, j.opts.loadedOnly]), [['recall', 'container-plays', true], ['archive', undefined, undefined], ['recall', 'container-plays', true]]);
  for (const j of jobs) t.like(j.opts, { origin: 'policy', trigger: 'play' });
  t.deepEqual(await Promise.all(jobs.map(async (j) => (await lab.service.items(j.id)).map((i) => i.id))), [[ep[0], ep[1]], [song], [ep[2]]]);
  t.deepEqual(plan.actions.filter((a) => a.action === 'recall').map((a) => a.afterRoom), [undefined, undefined, undefined], 'the whole-season plan before the mark moved needed no room');
  for (const j of jobs) t.is((await lab.service.run(j.id)).state, 'done');
  t.deepEqual(await tiers(lab, [song, ...ep]), ['tape', 'both', 'both', 'both']);
  t.is(lab.library.stats().bytesWritten, written, 'nothing written to tape');
  t.true((await e.plan()).usage[0].before <= used + adds - 1, 'under the high mark');
});

test('the recall of what fits now does not wait behind the make-room archive: an idle unload during that archive\'s verify leaves only the rest on tape, and nothing is mounted', async (t) => {
  const { lab, e, access, ep, song, clock } = await setup(t);
  t.is((await lab.service.run((await lab.service.submit('archive', [song], { keepDisk: true })).id)).state, 'done');
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  const plan = await e.plan();
  const used = plan.usage[0].before;
  const adds = plan.actions.filter((a) => a.action === 'recall').reduce((n, a) => n - a.diskDelta, 0);
  lab.config.policy = { ...lab.config.policy, highWatermark: { kind: 'bytes', bytes: used + adds - 1 }, lowWatermark: { kind: 'bytes', bytes: used + adds - 1 } };
  clock.t += 60_000;
  const scoped = await e.plan({ container: (await lab.catalog.get(ep[0]))!.parentId });
  t.deepEqual(scoped.actions.map((a) => [a.id, a.action, a.afterRoom]), [[song, 'archive', undefined], [ep[0], 'recall', undefined], [ep[1], 'recall', undefined], [ep[2], 'recall', true]], 'E3 fits only once the song\'s stub is cut');
  const mounts = lab.library.stats().mounts;
  // the jobs run one at a time in queue order; the make-room archive is slow (it re-hashes the
  // song against its tape copy) and the drive's idle unload takes the cartridge meanwhile
  for (const j of await e.onPlay(ep[1])) {
    t.is((await lab.service.run(j.id)).state, 'done');
    if (j.kind === 'archive') for (const d of (await lab.library.changer.inventory()).drives) if (d.full) await lab.library.changer.unload(d.drive);
  }
  t.deepEqual(await tiers(lab, [song, ...ep]), ['tape', 'both', 'both', 'tape'], 'E1 and E2 were read while the play\'s cartridge was still in its drive');
  t.is(lab.library.stats().mounts, mounts, 'nothing mounted');
  t.true((await e.plan()).usage[0].before <= used + adds - 1, 'under the high mark');
});

test('the recall right after a play never mounts a cartridge: when the play\'s cartridge is no longer in a drive, its items wait for a later play (a pass mounts none for them either)', async (t) => {
  const { lab, e, access, ep } = await setup(t);
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  const [job] = await e.onPlay(ep[1]);
  t.like(job.opts, { trigger: 'play', loadedOnly: true });
  // the session ended and the idle unload took the cartridge before the job got to it
  for (const d of (await lab.library.changer.inventory()).drives) if (d.full) await lab.library.changer.unload(d.drive);
  const mounts = lab.library.stats().mounts;
  const done = await lab.service.run(job.id);
  t.is(done.state, 'done', done.reason);
  t.like(done.result, { recalled: 0, skipped: 3 });
  t.regex((await lab.service.items(job.id))[0].note ?? '', /no longer in a drive .*left to a later play of its container/);
  t.is(lab.library.stats().mounts, mounts, 'nothing mounted');
  t.deepEqual(await tiers(lab, ep), ['tape', 'tape', 'tape']);
  // the next pass leaves them to the next play of the season too (a pass mounts no cartridge only for them)
  const next = await e.plan();
  t.deepEqual(next.actions, []);
  t.deepEqual(next.skipped.map((s) => s.id), ep);
});

test('a promotion whose recall found the cartridge out of the drives goes when the cartridge is loaded again (the play reading on from tape, or any other mount), never mounting one itself', async (t) => {
  const { lab, e, access, ep } = await setup(t);
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  // the play starts from its stub (or pre-staged bytes) after the idle unload took the cartridge:
  // the job queued at its start finds no cartridge in a drive
  for (const d of (await lab.library.changer.inventory()).drives) if (d.full) await lab.library.changer.unload(d.drive);
  const [first] = await e.onPlay(ep[1]);
  t.like((await lab.service.run(first.id)).result, { recalled: 0, skipped: 3 });
  t.deepEqual(await e.onLoaded('TD0009L9'), [], 'another cartridge: nothing waits for it');
  // the play reads on past what it had and its cartridge is loaded for it
  await lab.library.mount('TD0001L9');
  const mounts = lab.library.stats().mounts;
  const jobs = await e.onLoaded('TD0001L9');
  t.is(jobs.length, 1);
  t.like(jobs[0], { kind: 'recall', opts: { origin: 'policy', rule: 'container-plays', trigger: 'play', loadedOnly: true } });
  t.deepEqual((await lab.service.items(jobs[0].id)).map((i) => i.id), ep);
  t.like((await lab.service.run(jobs[0].id)).result, { recalled: 3, skipped: 0 });
  t.is(lab.library.stats().mounts, mounts, 'read from the drive the play loaded');
  t.deepEqual(await tiers(lab, ep), ['both', 'both', 'both']);
  t.deepEqual(await e.onLoaded('TD0001L9'), [], 'nothing waits any more');
});

test('container recalls a pass left to a play go when their cartridge is loaded', async (t) => {
  const { lab, e, access, ep } = await setup(t);
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  for (const d of (await lab.library.changer.inventory()).drives) if (d.full) await lab.library.changer.unload(d.drive);
  const { plan, jobs } = await e.runPass('manual');
  t.deepEqual([plan.actions, jobs], [[], []]);
  t.deepEqual(plan.skipped.map((s) => s.waitsFor), ep.map(() => ({ cartridge: 'TD0001L9', container: plan.skipped[0].waitsFor!.container })));
  await lab.library.mount('TD0001L9'); // e.g. a play of another container on it, or a job
  const mounts = lab.library.stats().mounts;
  const queued = await e.onLoaded('TD0001L9');
  t.is(queued.length, 1);
  t.like((await lab.service.run(queued[0].id)).result, { recalled: 3, skipped: 0 });
  t.is(lab.library.stats().mounts, mounts);
  t.deepEqual(await tiers(lab, ep), ['both', 'both', 'both']);
});

test('a pass never mounts a cartridge only for container-plays recalls: they wait for a play to load it (listed as skipped, plan == run), and ride on a cartridge in a drive', async (t) => {
  const { lab, e, access, ep, clock } = await setup(t);
  // the season is hot, but its cartridge left the drive (no play, no immediate promotion here)
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  for (const d of (await lab.library.changer.inventory()).drives) if (d.full) await lab.library.changer.unload(d.drive);
  clock.t += 60_000;
  const plan = await e.plan();
  t.deepEqual(plan.actions, [], 'nothing to do: the pass would mount TD0001L9 only for them');
  t.deepEqual(plan.skipped.map((s) => [s.id, s.action]), ep.map((id) => [id, 'recall']));
  t.regex(plan.skipped[0].reason, /its container was played 2 times within 7d, but its cartridge TD0001L9 is not in a drive and this pass mounts it for nothing else: waits for its cartridge to be loaded by a play/);
  const mounts = lab.library.stats().mounts;
  const { plan: ran, jobs } = await e.runPass('manual');
  t.deepEqual(ran.actions, plan.actions, 'the run does what the plan printed');
  t.deepEqual(ran.skipped, plan.skipped);
  t.deepEqual(jobs, []);
  t.is(lab.library.stats().mounts, mounts, 'nothing mounted');
  t.deepEqual(await tiers(lab, ep), ['tape', 'tape', 'tape']);
  // a play of the season loads the cartridge (its idle unload has not come yet): now the pass takes them, from that drive
  await lab.library.mount('TD0001L9');
  const loaded = await e.plan();
  t.deepEqual(loaded.actions.map((a) => [a.id, a.action, a.reason, a.cartridge]), ep.map((id) => [id, 'recall', 'container-plays', 'TD0001L9']));
  t.deepEqual(loaded.skipped, []);
  t.deepEqual([loaded.cartridges, loaded.mounts], [['TD0001L9'], 0]);
  const mounted = lab.library.stats().mounts;
  const second = await e.runPass('manual');
  t.deepEqual(second.plan.actions, loaded.actions, 'the run does what the plan printed');
  t.is(second.jobs.length, 1);
  t.like(second.jobs[0].opts, { origin: 'policy', rule: 'container-plays', loadedOnly: true });
  t.deepEqual((await lab.service.items(second.jobs[0].id)).map((i) => i.id), ep);
  const done = await lab.service.run(second.jobs[0].id);
  t.is(done.state, 'done', done.reason);
  t.like(done.result, { recalled: 3, skipped: 0 });
  t.is(lab.library.stats().mounts, mounted, 'read from the drive it was in');
  t.deepEqual(await tiers(lab, ep), ['both', 'both', 'both']);
});

test('container-plays recalls ride on a cartridge the pass mounts anyway (its archive writes): plan == run, one mount in all', async (t) => {
  const { lab, e, access, ep, song, clock } = await setup(t);
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  for (const d of (await lab.library.changer.inventory()).drives) if (d.full) await lab.library.changer.unload(d.drive);
  clock.t += 60_000;
  t.deepEqual((await e.plan()).actions, [], 'alone, they wait for a play');
  // archive_idle: the song (never played, added years before the clock) is written to TD0001L9, the season's cartridge
  lab.config.policy = { ...lab.config.policy, archiveIdle: 30 * 86400 };
  const plan = await e.plan();
  t.deepEqual(plan.actions.map((a) => [a.id, a.action, a.reason, a.cartridge]), [[song, 'archive', 'idle', 'TD0001L9'], ...ep.map((id) => [id, 'recall', 'container-plays', 'TD0001L9'])]);
  t.deepEqual(plan.skipped, []);
  t.deepEqual([plan.cartridges, plan.mounts], [['TD0001L9'], 1]);
  const mounts = lab.library.stats().mounts;
  const { plan: ran, jobs } = await e.runPass('manual');
  t.deepEqual(ran.actions, plan.actions, 'the run does what the plan printed');
  t.deepEqual(jobs.map((j) => [j.kind, j.opts.rule, j.opts.loadedOnly]), [['archive', undefined, undefined], ['recall', 'container-plays', true]]);
  for (const j of jobs) t.is((await lab.service.run(j.id)).state, 'done');
  t.like((await lab.service.get(jobs[1].id))!.result, { recalled: 3, skipped: 0 });
  t.is(lab.library.stats().mounts, mounts + 1, 'the archive write\'s mount only');
  t.deepEqual(await tiers(lab, [song, ...ep]), ['tape', 'both', 'both', 'both']);
});

test('kill -9 in the middle of a container promotion: every item still plays byte-exactly, the next pass finishes it', async (t) => {
  const lab = await makeLab({ files: FILES });
  t.teardown(() => lab.cleanup());
  const ep: string[] = [];
  for (const n of EPS) ep.push((await lab.catalog.getPath(join(lab.media, `Video/Show/S01/${n}.mkv`)))!.id);
  t.is((await lab.service.run((await lab.service.submit('archive', ep)).id)).state, 'done');
  const access = new AccessTracker({ store: lab.catalog.store });
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  await access.stop();
  await lab.close();
  const flags = ['--data', lab.data, '--media', lab.media, '--tape-time-scale', '0', '--head-stub-min', '16384', '--head-stub-seconds', '10', '--disk-high-watermark', '10M', '--promote-container-plays', '2', '--json'];
  const planned = await runCli(['policy', 'plan', ...flags]);
  t.is(planned.code, 0, planned.err);
  t.deepEqual((JSON.parse(planned.out) as PolicyPlan).actions.map((a) => [a.id, a.reason]), ep.map((id) => [id, 'container-plays']));
  const r = await runCli(['policy', 'run', ...flags], { TAPEDECK_FAULT: 'recall:renamed', TAPEDECK_FAULT_MODE: 'kill', TAPEDECK_FAULT_HIT: '2' });
  t.is(r.signal, 'SIGKILL', r.err);
  await lab.reopen();
  const check = async (when: string) => {
    for (const id of ep) {
      const item = (await lab.catalog.get(id))!;
      t.true((await readThroughCatalog(lab, item)).equals(lab.files.get(item.origPath!)!), `${when}: ${item.relPath}`);
    }
  };
  await check('after the crash');
  const back = (await tiers(lab, ep)).filter((x) => x === 'both').length;
  t.true(back < 3, `part of the recall was done (${back})`);
  await lab.close();
  const next = await runCli(['policy', 'run', ...flags]);
  t.is(next.code, 0, next.err);
  await lab.reopen();
  await check('after the next pass');
  t.deepEqual(await tiers(lab, ep), ['both', 'both', 'both']);
});

/**
 * Two archived seasons (Show and Other, three episodes each) and an engine whose high (= low) mark
 * leaves room under it for one of them only. `rules`: more policy settings; `readAccess`: the
 * engine's access read, made from the tracker (default: the tracker's own).
 */
async function twoSeasons(
  t: import('ava').ExecutionContext,
  rules: Partial<Lab['config']['policy']> = {},
  readAccess: (access: AccessTracker) => (ids: string[]) => ReturnType<AccessTracker['read']> = (access) => (i) => access.read(i),
) {
  const files: [string, number][] = [...FILES.slice(0, 3), ['Video/Other/S01/O1.mkv', 80_000], ['Video/Other/S01/O2.mkv', 90_000], ['Video/Other/S01/O3.mkv', 70_000]];
  const lab = await makeLab({ files });
  t.teardown(() => lab.cleanup());
  const clock = { t: new Date(2030, 0, 10, 20, 0).getTime() };
  const now = () => clock.t;
  lab.config.headStubTail = 0;
  const ids = async (dir: string, names: string[]) => Promise.all(names.map(async (n) => (await lab.catalog.getPath(join(lab.media, dir, n)))!.id));
  const show = await ids('Video/Show/S01', ['S01E1.mkv', 'S01E2.mkv', 'S01E3.mkv']);
  const other = await ids('Video/Other/S01', ['O1.mkv', 'O2.mkv', 'O3.mkv']);
  t.is((await lab.service.run((await lab.service.submit('archive', [...show, ...other])).id)).state, 'done');
  const access = new AccessTracker({ store: lab.catalog.store, now });
  lab.config.policy = { ...lab.config.policy, minArchiveSize: 10_000, promoteContainerPlays: 2, highWatermark: { kind: 'bytes', bytes: 10_000_000 }, lowWatermark: { kind: 'bytes', bytes: 10_000_000 }, ...rules };
  const e = new PolicyEngine({ catalog: lab.catalog, config: lab.config, archive: lab.service, readAccess: readAccess(access), log: silentLogger, now, mediaDirs: [lab.media] });
  t.teardown(() => e.stop());
  // room under the high mark for one of the two seasons only
  const used = (await e.plan()).usage[0]!.before;
  const high = used + 240_000 - 3 * 4096 + 10_000;
  lab.config.policy = { ...lab.config.policy, highWatermark: { kind: 'bytes', bytes: high }, lowWatermark: { kind: 'bytes', bytes: high } };
  return { lab, e, access, show, other, high, clock };
}

test('two containers that get hot at the same moment are planned one after the other: together they never push usage over the high mark', async (t) => {
  const { lab, e, access, show, other, high } = await twoSeasons(t);
  for (const id of [show[0]!, show[1]!, other[0]!, other[1]!]) access.notePlay(id, '10.0.0.5');
  const [a, b] = await Promise.all([e.onPlay(show[1]!), e.onPlay(other[1]!)]);
  for (const j of [...a!, ...b!]) t.is((await lab.service.run(j.id)).state, 'done');
  const after = (await e.plan()).usage[0]!.before;
  t.true(after <= high, `usage ${after} after both promotions, high mark ${high}`);
  const seasons = [await tiers(lab, show), await tiers(lab, other)].map((x) => x.join());
  t.deepEqual(seasons.sort(), ['both,both,both', 'tape,tape,tape'], 'the promotion planned first took the room, the other found none');
});

test('a container promotion right after a play counts the recalls a pass (or an operator) queued and has not run yet: together they never push usage over the high mark', async (t) => {
  const { lab, e, access, show, other, high, clock } = await twoSeasons(t, { promotePlays: 1 });
  // a pass promotes the show (each episode played once, promote_plays 1); its recall job is queued, not run yet
  for (const id of show) access.notePlay(id, '10.0.0.5');
  const { jobs: passJobs } = await e.runPass('manual');
  t.deepEqual((await Promise.all(passJobs.map((j) => lab.service.items(j.id)))).flat().map((i) => i.id).sort(), [...show].sort());
  // meanwhile the other season gets hot: its promotion must see the show's recall as disk already taken
  clock.t += 60_000;
  for (const id of [other[0]!, other[1]!]) access.notePlay(id, '10.0.0.6');
  const queued = await e.onPlay(other[1]!);
  for (const j of [...passJobs, ...queued]) t.is((await lab.service.run(j.id)).state, 'done');
  const after = (await e.plan()).usage[0]!.before;
  t.true(after <= high, `usage ${after} after the pass's recall and the play's promotion, high mark ${high}`);
  t.deepEqual(await tiers(lab, show), ['both', 'both', 'both']);
});

test('a recall job that commits its items while the next promotion reads the catalog is still counted: the two promotions never push usage over the high mark together', async (t) => {
  // the show's recall job runs (and commits) while the other season's plan reads the catalog:
  // after the plan has read the items (as they were, on tape), before it asks for the unfinished jobs
  let during: (() => Promise<void>) | undefined;
  const { lab, e, access, show, other, high, clock } = await twoSeasons(t, {}, (access) => async (i: string[]) => {
    if (during && i.length > 3) {
      const f = during;
      during = undefined;
      await f();
    }
    return access.read(i);
  });
  for (const id of [show[0]!, show[1]!]) access.notePlay(id, '10.0.0.5');
  const first = await e.onPlay(show[1]!);
  t.is(first.length, 1);
  clock.t += 60_000;
  for (const id of [other[0]!, other[1]!]) access.notePlay(id, '10.0.0.6');
  during = async () => {
    for (const j of first) t.is((await lab.service.run(j.id)).state, 'done');
  };
  const second = await e.onPlay(other[1]!);
  t.true(during === undefined, 'the show\'s recall ran in the middle of the plan');
  for (const j of second) t.is((await lab.service.run(j.id)).state, 'done');
  const after = (await e.plan()).usage[0]!.before;
  t.true(after <= high, `usage ${after} after both promotions, high mark ${high}`);
  t.deepEqual(await tiers(lab, show), ['both', 'both', 'both']);
});

test('stop() waits for a container promotion under way and it queues nothing after: the catalog closes after it, the next play after the restart tries again', async (t) => {
  const { lab, access, ep, clock } = await setup(t);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let reads = 0;
  const e = new PolicyEngine({
    catalog: lab.catalog,
    config: lab.config,
    archive: lab.service,
    readAccess: async (ids) => {
      reads++;
      await gate; // the promotion's access read is under way when the server stops
      return access.read(ids);
    },
    log: silentLogger,
    now: () => clock.t,
    mediaDirs: [lab.media],
  });
  access.notePlay(ep[0], '10.0.0.5');
  access.notePlay(ep[1], '10.0.0.5');
  const promotion = e.onPlay(ep[1]);
  while (reads === 0) await new Promise((r) => setImmediate(r));
  let stopped = false;
  const stopping = e.stop().then(() => (stopped = true));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  t.false(stopped, 'stop() does not end while the promotion still reads');
  open();
  await stopping;
  t.deepEqual(await promotion, [], 'the promotion that went on after stop() began queued no job');
  t.deepEqual((await lab.service.list()).filter((j) => j.kind === 'recall'), [], 'no recall job in the queue');
  t.deepEqual(await e.onPlay(ep[1]), [], 'a play after stop() starts nothing');
});

test('premigration: a pass whose stub cuts could free less than the watermark band copies the coldest disk-only item to tape keeping its disk copy (keepDisk archive job, plan == run); while the job is queued it weighs as it will', async (t) => {
  // marks 10,000,000 / 9,950,000 bytes: a band of 50,000; the season is on tape, the song (50,000 bytes) only on disk
  const { lab, e, song } = await setup(t, { lowWatermark: { kind: 'bytes', bytes: 9_950_000 } });
  const plan = await e.plan();
  t.deepEqual(plan.actions.map((a) => [a.id, a.action, a.reason, a.keepDisk, a.diskDelta]), [[song, 'archive', 'premigrate', true, 0]]);
  t.is(plan.usage[0].after, plan.usage[0].before, 'usage unchanged');
  const { plan: ran, jobs } = await e.runPass('manual');
  t.deepEqual(ran.actions, plan.actions, 'the run does what the plan printed');
  t.deepEqual(jobs.map((j) => [j.kind, j.opts.keepDisk, j.opts.collocate]), [['archive', true, true]]);
  // queued: not planned again, and it stays on disk in the figures (not counted as a stub)
  const queued = await e.plan();
  t.deepEqual(queued.actions, []);
  t.is(queued.usage[0].after, plan.usage[0].after, 'the queued copy keeps its disk bytes in the figures');
  t.is((await lab.service.run(jobs[0].id)).state, 'done');
  t.deepEqual(await tiers(lab, [song]), ['both']);
  t.deepEqual((await e.plan()).actions, [], 'nothing disk-only left to copy');
});

test('premigrate false: the same pass copies nothing', async (t) => {
  const { e } = await setup(t, { lowWatermark: { kind: 'bytes', bytes: 9_950_000 }, premigrate: false });
  t.deepEqual((await e.plan()).actions, []);
});
