// Durable jobs: IDs in creation order, events, the background runner, clean
// failure (in-process faults at every archive/recall point), interruption by
// stop() and resumption, crash-loop protection. Fault tests run serially: armed
// faults are process-wide.
import test from 'ava';
import { readdir, readFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { armFault, disarmFaults, FAULT_POINTS } from '../src/archive/faults.js';
import { newJobId, type JobRecord } from '../src/archive/jobs.js';
import { ArchiveService, MAX_ATTEMPTS } from '../src/archive/service.js';
import { stubPath } from '../src/archive/stubs.js';
import { silentLogger } from '../src/log.js';
import { fakeProbe, itemAt, makeLab, readThroughCatalog } from './fixtures/archive/setup.js';
import { scan } from '../src/scanner/scanner.js';
import { progressBytes } from '../src/archive/cli.js';
import { formatBytes } from '../src/util/units.js';
import { jobStatusOf } from '../src/tier.js';

const exists = (p: string) => access(p).then(() => true, () => false);

test('job IDs sort by creation time, also within one millisecond', (t) => {
  const ids = [newJobId(1000), newJobId(1000), newJobId(999), newJobId(5000)];
  t.deepEqual([...ids].sort(), ids);
  t.is(new Set(ids).size, 4);
});

test('the background runner runs queued jobs in order and reports progress events', async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  const events: JobRecord[] = [];
  lab.service.on('job', (j: JobRecord) => events.push(j));
  const paths = [...lab.files.keys()];
  const a = await lab.service.submit('archive', paths.slice(0, 4));
  const b = await lab.service.submit('archive', paths.slice(4));
  const finished = new Promise<void>((resolve) => {
    lab.service.on('job', (j: JobRecord) => {
      if (j.id === b.id && (j.state === 'done' || j.state === 'failed')) resolve();
    });
  });
  lab.service.start();
  await finished;
  await lab.service.stop();
  const list = await lab.service.list();
  t.deepEqual(list.map((j) => j.id), [a.id, b.id]);
  t.true(list.every((j) => j.state === 'done'));
  t.true(list[0].finished! <= list[1].started!, 'one job at a time');
  const states = events.filter((e) => e.id === a.id).map((e) => e.state);
  t.is(states[0], 'queued');
  t.true(states.includes('running'));
  t.is(states[states.length - 1], 'done');
  const last = events.filter((e) => e.id === a.id).pop()!;
  t.is(last.progress.itemsDone, 4);
  t.is(last.progress.bytesDone, last.progress.bytesTotal);
  t.true(last.progress.bytesTotal > 0);
});

test('job progress counts item bytes once: total = the items\' sizes, the archive\'s write and verify passes apart', async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  const itemBytes = [...lab.files.values()].reduce((n, b) => n + b.length, 0);
  const events: JobRecord[] = [];
  lab.service.on('job', (j: JobRecord) => events.push(structuredClone(j)));
  const job = await lab.service.submit('archive', [lab.media]);
  t.is(job.progress.bytesTotal, itemBytes);
  const done = await lab.service.run(job.id);
  t.is(done.state, 'done');
  t.is(done.progress.bytesTotal, itemBytes);
  t.is(done.progress.bytesDone, itemBytes);
  t.is(done.progress.bytesWritten, itemBytes);
  const mine = events.filter((e) => e.id === job.id);
  for (const e of mine) {
    t.true(e.progress.bytesDone <= e.progress.bytesTotal, `done ${e.progress.bytesDone} > total ${e.progress.bytesTotal}`);
    t.true((e.progress.bytesWritten ?? 0) <= e.progress.bytesTotal, `written ${e.progress.bytesWritten} > total ${e.progress.bytesTotal}`);
    t.true(e.progress.bytesDone <= (e.progress.bytesWritten ?? 0));
  }
  t.true(mine.some((e) => (e.progress.bytesWritten ?? 0) > e.progress.bytesDone), 'the write pass shows before the verify pass');
  // what people see: item bytes, binary units
  t.is(progressBytes(done), `${formatBytes(itemBytes)} of ${formatBytes(itemBytes)} written, ${formatBytes(itemBytes)} verified`);
  const st = jobStatusOf(done);
  t.deepEqual(st.progress, { done: itemBytes, total: itemBytes, unit: 'bytes', written: itemBytes });
  // a recall counts each item once too
  const recall = await lab.service.run((await lab.service.submit('recall', [lab.media])).id);
  t.is(recall.state, 'done');
  t.is(recall.progress.bytesTotal, itemBytes);
  t.is(recall.progress.bytesDone, itemBytes);
  t.is(progressBytes(recall), `${formatBytes(itemBytes)} of ${formatBytes(itemBytes)}`);
});

for (const point of FAULT_POINTS.filter((p) => p.startsWith('archive:') || p.startsWith('recall:'))) {
  test.serial(`an error at ${point} fails the job cleanly: every item readable, no stray files, and a new job succeeds`, async (t) => {
    const lab = await makeLab({ memory: true });
    t.teardown(() => lab.cleanup());
    t.teardown(() => disarmFaults());
    const kind = point.startsWith('archive:') ? 'archive' : 'recall';
    if (kind === 'recall') t.is((await lab.service.run((await lab.service.submit('archive', [lab.media])).id)).state, 'done');
    // Points passed once per batch fire at once; per-item points at the second item.
    const perBatch = ['archive:planned', 'archive:mid-write', 'archive:after-write', 'archive:written', 'archive:mid-verify', 'archive:verified'].includes(point);
    armFault(point, { mode: 'throw', hit: perBatch ? 1 : 2 });
    const job = await lab.service.run((await lab.service.submit(kind, [lab.media])).id);
    disarmFaults();
    t.is(job.state, 'failed');
    t.regex(job.reason!, new RegExp(`injected fault at ${point}`));
    for (const [path, b] of lab.files) {
      const item = await itemAt(lab.catalog, path);
      t.true((await readThroughCatalog(lab, item)).equals(b), item.relPath);
      const loc = item.location!;
      if (!loc.disk) t.true(await exists(loc.stub!.path));
      if (loc.disk && !loc.stub) t.false(await exists(stubPath(lab.data, item.id)), `${item.relPath}: no orphan stub`);
      if (loc.disk) t.true((await readFile(loc.disk.path)).equals(b));
    }
    const stray = (await readdir(join(lab.data, 'stubs')).catch(() => [] as string[])).filter((n) => n.endsWith('.tmp'));
    t.deepEqual(stray, []);
    const again = await lab.service.run((await lab.service.submit(kind, [lab.media])).id);
    t.is(again.state, 'done', again.reason);
    for (const [path, b] of lab.files) t.true((await readThroughCatalog(lab, await itemAt(lab.catalog, path))).equals(b));
  });
}

test('stop() interrupts a job at a safe point; it stays running and resume() finishes it', async (t) => {
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  const job = await lab.service.submit('archive', [lab.media]);
  let stopping: Promise<void> | undefined;
  lab.service.on('job', (j: JobRecord) => {
    if (!stopping && j.id === job.id && j.progress.itemsDone >= 2) stopping = lab.service.stop();
  });
  const r = await lab.service.run(job.id);
  await stopping;
  t.is(r.state, 'running');
  t.regex(r.activity ?? '', /interrupted/);
  t.true(r.progress.itemsDone < lab.files.size);
  for (const [path, b] of lab.files) t.true((await readThroughCatalog(lab, await itemAt(lab.catalog, path))).equals(b));
  const svc = new ArchiveService({ catalog: lab.catalog, library: lab.library, config: lab.config, log: silentLogger });
  await svc.resume();
  const done = (await svc.get(job.id))!;
  t.is(done.state, 'done', done.reason);
  t.is(done.attempts, 2);
  for (const item of await lab.catalog.items()) t.falsy(item.location!.disk);
});

test(`a job interrupted more than ${MAX_ATTEMPTS} times is failed instead of resumed`, async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  const job = await lab.service.submit('archive', [lab.media]);
  await lab.service.jobs.write([lab.service.jobs.jobOp({ ...job, state: 'running', attempts: MAX_ATTEMPTS })]);
  await lab.service.resume();
  const j = (await lab.service.get(job.id))!;
  t.is(j.state, 'failed');
  t.regex(j.reason!, /interrupted 5 times/);
  for (const [path] of lab.files) t.truthy((await itemAt(lab.catalog, path)).location!.disk);
});

test.serial('a file changed after its batch was planned is not archived (the catalog describes the old version)', async (t) => {
  const { writeFileSync, utimesSync } = await import('node:fs');
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  t.teardown(() => disarmFaults());
  const [path] = [...lab.files.keys()];
  const fresh = Buffer.from('a new version of the file');
  armFault('archive:planned', {
    fn: () => {
      writeFileSync(path, fresh);
      utimesSync(path, new Date(2030, 0, 1), new Date(2030, 0, 1));
    },
  });
  const job = await lab.service.run((await lab.service.submit('archive', [lab.media])).id);
  t.is(job.state, 'failed');
  t.is(job.result!.failed, 1);
  t.is(job.result!.archived, lab.files.size - 1);
  t.regex(job.reason!, /changed since it was scanned; rescan/);
  const item = await itemAt(lab.catalog, path);
  t.deepEqual(Object.keys(item.location!), ['disk']);
  t.true((await readFile(path)).equals(fresh));
  // After a rescan the new version is archived.
  await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe });
  const again = await lab.service.run((await lab.service.submit('archive', [path])).id);
  t.is(again.state, 'done', again.reason);
  t.true((await readThroughCatalog(lab, await itemAt(lab.catalog, path))).equals(fresh));
});
