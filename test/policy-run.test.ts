// Policy passes on a real catalog and virtual tape library: the run does exactly what the
// plan said, collocation puts each container's items together on one cartridge in play
// order, a pass killed (kill -9) in the middle leaves every item readable byte-exactly and
// the next pass finishes the work; the CLI (direct and through a server's control socket).
import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PolicyEngine } from '../src/policy/engine.js';
import { AccessTracker } from '../src/policy/access.js';
import { listItems } from '../src/policy/listing.js';
import { startControlServer } from '../src/control/server.js';
import { silentLogger } from '../src/log.js';
import { collectStatus } from '../src/http/status.js';
import { libraryStatus } from '../src/server-state.js';
import { ServerMetrics } from '../src/metrics.js';
import type { PolicyPlan } from '../src/policy/plan.js';
import type { JobRecord } from '../src/archive/jobs.js';
import { makeLab, readThroughCatalog, runCli, type Lab } from './fixtures/archive/setup.js';

const FILES: [string, number][] = [
  ['Music/Band/Album/10 Ten.mp3', 40_000],
  ['Video/Show/S01/S01E2.mkv', 90_000],
  ['Music/Band/Album/1 One.mp3', 50_000],
  ['Video/Show/S01/S01E10.mkv', 70_000],
  ['Music/Band/Album/2 Two.mp3', 30_000],
  ['Video/Show/S01/S01E1.mkv', 80_000],
  ['Pictures/2024/Keep.jpg', 60_000],
  ['Video/tiny.mkv', 2_000],
];
const DAY = 86400_000;

function engine(lab: Lab, now: () => number, rules: Partial<Lab['config']['policy']> = {}): PolicyEngine {
  lab.config.policy = { ...lab.config.policy, archiveIdle: 30 * 86400, minArchiveSize: 10_000, keepOnDisk: ['Pictures/**'], ...rules };
  const access = new AccessTracker({ store: lab.catalog.store, now });
  return new PolicyEngine({ catalog: lab.catalog, config: lab.config, archive: lab.service, readAccess: (ids) => access.read(ids), log: silentLogger, now, mediaDirs: [lab.media] });
}

async function assertAllReadable(t: import('ava').ExecutionContext, lab: Lab, when: string): Promise<void> {
  const items = await lab.catalog.items();
  t.is(items.length, lab.files.size, when);
  for (const item of items) t.true((await readThroughCatalog(lab, item)).equals(lab.files.get(item.origPath!)!), `${when}: ${item.relPath}`);
}

test('plan == run; collocation writes each container together, in play order, on one cartridge', async (t) => {
  const lab = await makeLab({ files: FILES, pool: 2 });
  t.teardown(() => lab.cleanup());
  const clock = Date.now() + 40 * DAY;
  const e = engine(lab, () => clock);
  const plan = await e.plan();
  // everything idle except the kept picture and the file under min_archive_size
  t.is(plan.actions.length, 6);
  t.true(plan.actions.every((a) => a.action === 'archive' && a.reason === 'idle' && a.idleDays === 40));
  const rel = plan.actions.map((a) => a.path.slice(lab.media.length + 1));
  const music = rel.filter((p) => p.startsWith('Music'));
  const show = rel.filter((p) => p.startsWith('Video'));
  t.deepEqual(music, ['Music/Band/Album/1 One.mp3', 'Music/Band/Album/2 Two.mp3', 'Music/Band/Album/10 Ten.mp3'], 'natural file-name order');
  t.deepEqual(show, ['Video/Show/S01/S01E1.mkv', 'Video/Show/S01/S01E2.mkv', 'Video/Show/S01/S01E10.mkv']);
  t.is(rel.indexOf(music[2]) - rel.indexOf(music[0]), 2, 'a container is contiguous');
  const { plan: ran, jobs } = await e.runPass('manual');
  t.deepEqual(ran.actions, plan.actions, 'the run does exactly what the plan printed');
  t.is(jobs.length, 1);
  t.deepEqual((await lab.service.items(jobs[0].id)).map((i) => i.id), plan.actions.map((a) => a.id));
  const done = await lab.service.run(jobs[0].id);
  t.is(done.state, 'done', done.reason);
  // on tape: one cartridge, one tape file per container, blocks rising in play order
  const locs = [];
  for (const a of plan.actions) locs.push({ a, tape: (await lab.catalog.get(a.id))!.location!.tape! });
  t.is(new Set(locs.map((l) => l.tape.label)).size, 1, 'one cartridge');
  for (const group of new Set(plan.actions.map((a) => a.group))) {
    const g = locs.filter((l) => l.a.group === group);
    t.is(new Set(g.map((l) => l.tape.tapeFile)).size, 1, 'one tar per container');
    const pos = g.map((l) => l.tape.block * 1e9 + l.tape.offset);
    t.deepEqual(pos, [...pos].sort((x, y) => x - y), 'play order on tape');
  }
  await assertAllReadable(t, lab, 'after the pass');
  t.deepEqual((await e.plan()).actions, [], 'the next pass has nothing left to do');
  t.like(await e.lastPass(), { trigger: 'manual', archive: 6, result: 'done' });
  await e.stop();
});

test('collocation across passes: the rest of a container goes to the cartridge already holding part of it, not the emptiest', async (t) => {
  const lab = await makeLab({ files: FILES, pool: 2 });
  t.teardown(() => lab.cleanup());
  const one = (await lab.catalog.getPath(join(lab.media, 'Music/Band/Album/1 One.mp3')))!.id;
  // an operator archive of one track: both cartridges are empty, TD0001L9 takes it
  const j1 = await lab.service.run((await lab.service.submit('archive', [one])).id);
  t.deepEqual(j1.result?.cartridges, ['TD0001L9']);
  // TD0002L9 is now the emptiest; the pass still puts the album's other tracks next to track 1
  const e = engine(lab, () => Date.now() + 40 * DAY, { keepOnDisk: ['Pictures/**', 'Video/**'] });
  const { plan, jobs } = await e.runPass('manual');
  t.is(plan.actions.length, 2);
  t.deepEqual(plan.actions.map((a) => a.cartridge), ['TD0001L9', 'TD0001L9'], 'the plan names the cartridge the job writes');
  t.deepEqual(plan.cartridges, ['TD0001L9']);
  const done = await lab.service.run(jobs[0].id);
  t.is(done.state, 'done', done.reason);
  t.deepEqual(done.result?.cartridges, ['TD0001L9']);
  for (const a of plan.actions) t.is((await lab.catalog.get(a.id))!.location!.tape!.label, 'TD0001L9');
  await e.stop();
});

test('an automatic pass stops at a safe point when policy_window closes and goes on when it opens again; a manual pass ignores the window', async (t) => {
  const lab = await makeLab({ files: FILES });
  t.teardown(() => lab.cleanup());
  const day = new Date(Date.now() + 40 * DAY);
  let clock = new Date(day.getFullYear(), day.getMonth(), day.getDate(), 23, 0).getTime();
  const e = engine(lab, () => clock, { window: { start: 22 * 60, end: 5 * 60 } });
  clock += 2 * 60_000;
  t.true(await e.tick(), 'inside the window (22:00-05:00)');
  const [jobId] = (await e.lastPass())!.jobs;
  const job0 = (await lab.service.get(jobId))!;
  t.true(job0.opts.window, 'jobs of an automatic pass keep to the window');
  // the window closes while the first tar is being written
  const closeIt = (j: JobRecord) => {
    if (j.id === jobId && j.activity?.startsWith('writing')) clock = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1, 6, 0).getTime();
  };
  lab.service.on('job', closeIt);
  const paused = await lab.service.run(jobId);
  lab.service.off('job', closeIt);
  t.is(paused.state, 'queued', 'back in the queue, not failed or done');
  t.regex(paused.activity ?? '', /paused: outside policy_window 22:00-05:00/);
  t.is(paused.attempts, 0, 'a pause is not a crash (MAX_ATTEMPTS is not used up)');
  const batches = await lab.service.jobs.batches(jobId);
  t.is(batches.length, 1);
  t.is(batches[0].items.length, 1, 'the tar ended after its first item (the next safe point)');
  t.is(batches[0].phase, 'written', 'not verified outside the window: no more tape work');
  await assertAllReadable(t, lab, 'paused');
  t.like(await e.lastPass(), { trigger: 'auto', result: 'paused', reason: 'paused: outside policy_window 22:00-05:00; resumes when it opens' }, 'the status page and /metrics say so');
  // still outside: the runner does not take it up
  t.is((await lab.service.run(jobId)).state, 'queued');
  t.false(e.windowOpen());
  // the window opens again: the job goes on from its durable state and finishes
  clock = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1, 22, 30).getTime();
  t.false(await e.tick(), 'the next pass waits while the paused jobs go on');
  const done = await lab.service.run(jobId);
  t.is(done.state, 'done', done.reason);
  t.is(done.result?.archived, 6);
  await assertAllReadable(t, lab, 'after the pass');
  t.deepEqual((await e.plan()).actions, []);
  t.true(await e.tick(), 'and starts once they are done (not an interval later)');
  // a manual pass is not held by the window
  const e2 = engine(lab, () => clock, { window: { start: 22 * 60, end: 5 * 60 }, archiveIdle: 0, promotePlays: 1 });
  clock = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 2, 12, 0).getTime();
  const ep1 = (await lab.catalog.getPath(join(lab.media, 'Video/Show/S01/S01E1.mkv')))!.id;
  const access = new AccessTracker({ store: lab.catalog.store, now: () => clock });
  access.notePlay(ep1, '10.0.0.5');
  await access.stop();
  const { jobs } = await e2.runPass('manual');
  t.falsy(jobs[0].opts.window);
  t.is((await lab.service.run(jobs[0].id)).state, 'done');
  await e2.stop();
  await e.stop();
});

test('automatic passes: due after the interval and only inside policy_window; promotions are recalled and counted', async (t) => {
  const lab = await makeLab({ files: FILES });
  t.teardown(() => lab.cleanup());
  let clock = new Date(2030, 0, 10, 12, 0).getTime();
  const e = engine(lab, () => clock, { archiveIdle: 0, promotePlays: 2, promoteWindow: 7 * 86400, interval: 3600, window: { start: 22 * 60, end: 5 * 60 } });
  const ep = join(lab.media, 'Video/Show/S01/S01E1.mkv');
  const ep1 = (await lab.catalog.getPath(ep))!.id;
  await lab.service.run((await lab.service.submit('archive', [ep1])).id);
  const access = new AccessTracker({ store: lab.catalog.store, now: () => clock });
  access.notePlay(ep1, '10.0.0.5');
  clock += DAY;
  access.notePlay(ep1, '10.0.0.5');
  await access.stop();
  t.false(await e.tick(), 'outside the window');
  clock = new Date(2030, 0, 11, 22, 30).getTime() + 120_000;
  t.true(await e.tick(), 'inside the window (22:00-05:00)');
  const last = (await e.lastPass())!;
  t.like(last, { trigger: 'auto', recall: 1 });
  const job = await lab.service.run(last.jobs[0]);
  t.is(job.state, 'done', job.reason);
  const back = (await lab.catalog.get(ep1))!;
  t.truthy(back.location!.disk && back.location!.tape, 'promoted: tier both');
  clock += 10 * 60_000;
  t.false(await e.tick(), 'the next pass waits for the interval');
  const st = await e.status();
  t.is(st.promotions, 1);
  t.is(st.window, '22:00-05:00');
  t.true(st.inWindow);
  t.like(st.lastPass, { trigger: 'auto', recall: 1, result: 'done' });
  // the status page and /metrics show it
  const provider = { server: () => ({ name: 'nas', version: '0', scanning: false }), library: () => libraryStatus(lab.catalog), policy: () => e.status() };
  const snap = await collectStatus(provider);
  t.like(snap.policy, { promotions: 1, window: '22:00-05:00', lastPass: { result: 'done' } });
  const text = await new ServerMetrics({ version: '0', status: provider }).scrape();
  t.regex(text, /^tapedeck_policy_promotions_total 1$/m);
  t.regex(text, /^tapedeck_policy_window_open 1$/m);
  t.regex(text, /^tapedeck_policy_last_pass_result\{result="done"\} 1$/m);
  t.regex(text, /^tapedeck_policy_next_pass_timestamp_seconds \d+$/m);
  await e.stop();
});

function cliKilled(lab: Lab, args: string[], fault: string, hit: string): Promise<{ signal: NodeJS.Signals | null; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      env: { ...process.env, TAPEDECK_CONFIG: '', TAPEDECK_FAULT: fault, TAPEDECK_FAULT_MODE: 'kill', TAPEDECK_FAULT_HIT: hit },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve({ signal, err });
    });
  });
}

test('kill -9 in the middle of a policy pass: every item still plays byte-exactly, the next pass finishes the work', async (t) => {
  const lab = await makeLab({ files: FILES });
  t.teardown(() => lab.cleanup());
  await lab.close();
  const flags = ['--data', lab.data, '--media', lab.media, '--tape-time-scale', '0', '--head-stub-min', '16384', '--head-stub-seconds', '10', '--archive-idle', '1s', '--min-archive-size', '10000', '--keep-on-disk', 'Pictures/**', '--json'];
  await new Promise((r) => setTimeout(r, 1100));
  const planned = await runCli(['policy', 'plan', ...flags]);
  t.is(planned.code, 0, planned.err);
  const plan = JSON.parse(planned.out) as PolicyPlan;
  t.is(plan.actions.length, 6);
  const r = await cliKilled(lab, ['policy', 'run', ...flags], 'archive:committed', '3');
  t.is(r.signal, 'SIGKILL', r.err);
  await lab.reopen();
  await assertAllReadable(t, lab, 'after the crash');
  const moved = (await lab.catalog.items()).filter((i) => !i.location?.disk).length;
  t.true(moved > 0 && moved < 6, `part of the pass was done (${moved})`);
  await lab.close();
  const next = await runCli(['policy', 'run', ...flags]);
  t.is(next.code, 0, next.err);
  await lab.reopen();
  await assertAllReadable(t, lab, 'after the next pass');
  const onDisk = (await lab.catalog.items()).filter((i) => i.location?.disk).map((i) => i.relPath).sort();
  t.deepEqual(onDisk, ['Pictures/2024/Keep.jpg', 'Video/tiny.mkv']);
});

test('ls and policy plan/run go through the control socket when a server holds the catalog', async (t) => {
  const lab = await makeLab({ files: FILES });
  t.teardown(() => lab.cleanup());
  const e = engine(lab, () => Date.now() + 40 * DAY);
  const access = new AccessTracker({ store: lab.catalog.store });
  const socketPath = join(lab.data, 'control.sock');
  const ctl = await startControlServer({
    socketPath,
    archive: lab.service,
    policy: { items: (q) => listItems(lab.catalog, (ids) => access.read(ids), q as never), plan: () => e.plan(), run: () => e.runPass('manual') },
  });
  lab.service.start();
  t.teardown(async () => {
    await ctl.close();
    await e.stop();
    await lab.service.stop();
  });
  const common = ['--data', lab.data, '--json'];
  const ls = await runCli(['ls', join(lab.media, 'Music'), '--sort', 'title', ...common]);
  t.is(ls.code, 0, ls.err);
  t.deepEqual((JSON.parse(ls.out) as { title: string; tier: string }[]).map((r) => [r.title, r.tier]), [['1 One', 'disk'], ['2 Two', 'disk'], ['10 Ten', 'disk']]);
  t.is((await runCli(['ls', '--tier', 'cloud', ...common])).code, 2);
  t.is((await runCli(['ls', '/no/such/path', ...common])).code, 2);
  const plan = JSON.parse((await runCli(['policy', 'plan', ...common])).out) as PolicyPlan;
  // policy flags on the command line do not change the server's plan: the operator is told so
  const flagged = await runCli(['policy', 'plan', '--archive-idle', '1s', '--min-archive-size', '0', ...common]);
  t.is(flagged.code, 0, flagged.err);
  t.regex(flagged.err, /running server .*own policy settings \(--archive-idle, --min-archive-size not used\)/);
  t.deepEqual((JSON.parse(flagged.out) as PolicyPlan).actions.map((a) => a.id), plan.actions.map((a) => a.id));
  t.notRegex((await runCli(['policy', 'plan', ...common])).err, /not used/);
  const run = await runCli(['policy', 'run', ...common]);
  t.is(run.code, 0, run.err);
  const res = JSON.parse(run.out) as { plan: PolicyPlan; jobs: JobRecord[] };
  t.deepEqual(res.plan.actions.map((a) => a.id), plan.actions.map((a) => a.id));
  t.is(res.jobs[0].state, 'done');
  const text = await runCli(['ls', '--tier', 'tape', '--data', lab.data]);
  t.regex(text.out, /tape +0 +- .*TD0001L9@\d+/);
  // the policy's jobs are marked as such in 'tapedeck jobs' (list and detail), as the README says
  t.regex((await runCli(['jobs', '--data', lab.data])).out, new RegExp(`${res.jobs[0].id} .* items .*origin: policy`));
  t.regex((await runCli(['jobs', res.jobs[0].id, '--data', lab.data])).out, /origin: policy/);
});

test('status() never starts a second plan while one is being made (each reads the whole catalog; /metrics polls it)', async (t) => {
  const lab = await makeLab({ files: FILES });
  t.teardown(() => lab.cleanup());
  let clock = Date.now();
  const e = engine(lab, () => clock, { interval: 0 });
  const real = e.plan.bind(e);
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  e.plan = async () => {
    calls++;
    await gate;
    return real();
  };
  const first = e.status();
  clock += 60_000; // long past the status plan's age: a slow plan on a busy large library
  const second = e.status();
  clock += 60_000;
  const third = e.status();
  t.is(calls, 1, 'one plan in flight, shared');
  release();
  const [a, b, c] = await Promise.all([first, second, third]);
  t.deepEqual(b.planned, a.planned);
  t.deepEqual(c.planned, a.planned);
  clock += 60_000;
  await e.status();
  t.is(calls, 2, 'a settled plan older than its age is made again');
});


test('an automatic pass due while a scan runs waits for the scan to end (busy), then runs at the next tick', async (t) => {
  const lab = await makeLab({ files: FILES });
  t.teardown(() => lab.cleanup());
  let clock = Date.now() + 40 * DAY;
  let scanning = true;
  lab.config.policy = { ...lab.config.policy, archiveIdle: 0, interval: 3600 };
  const access = new AccessTracker({ store: lab.catalog.store, now: () => clock });
  const e = new PolicyEngine({ catalog: lab.catalog, config: lab.config, archive: lab.service, readAccess: (ids) => access.read(ids), log: silentLogger, now: () => clock, mediaDirs: [lab.media], busy: () => scanning });
  clock += 120_000; // past the first pass's grace after start
  t.false(await e.tick(), 'due, but a scan runs');
  t.is(await e.lastPass(), undefined);
  scanning = false;
  t.true(await e.tick(), 'the scan is over: the pass runs');
  t.like(await e.lastPass(), { trigger: 'auto' });
  await e.stop();
  await access.stop();
});
