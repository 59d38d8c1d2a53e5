// Crash tests: the real CLI is killed (SIGKILL, like kill -9) at every phase
// point of archive and recall. Right after the crash, and again after the
// service resumed the job, every item's bytes read through its catalog location
// (disk; or stub + tape) must equal the original file's.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FAULT_POINTS } from '../src/archive/faults.js';
import { stubFileOk } from '../src/archive/stubs.js';
import { DEFAULT_FILES, makeLab, readThroughCatalog, type Lab } from './fixtures/archive/setup.js';

// One file larger than a drive write (1 MiB), so 'mid-write' really is in the middle.
const FILES: [string, number][] = [...DEFAULT_FILES.filter(([p]) => p !== 'Video/Holiday.mkv'), ['Video/Holiday.mkv', 1_500_000]];

function cli(lab: Lab, args: string[], fault: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', ...args, '--data', lab.data, '--tape-time-scale', '0', '--head-stub-min', '16384', '--head-stub-seconds', '10', '--json'],
      { env: { ...process.env, TAPEDECK_CONFIG: '', TAPEDECK_FAULT: fault, TAPEDECK_FAULT_MODE: 'kill' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, err });
    });
  });
}

/** Every item readable in full from what the catalog says; disk and stub locations point at real files. */
async function assertReadable(t: import('ava').ExecutionContext, lab: Lab, when: string): Promise<void> {
  const items = await lab.catalog.items();
  t.is(items.length, lab.files.size, `${when}: every item still in the catalog`);
  for (const item of items) {
    const want = lab.files.get(item.origPath!)!;
    const loc = item.location ?? {};
    t.true(!!loc.disk || !!loc.tape, `${when}: ${item.relPath} has a location`);
    if (loc.disk) t.is((await stat(loc.disk.path)).size, want.length, `${when}: ${item.relPath} disk copy`);
    if (loc.stub && !loc.disk) t.true(await stubFileOk(loc.stub), `${when}: ${item.relPath} stub file`);
    const got = await readThroughCatalog(lab, item);
    t.true(got.equals(want), `${when}: ${item.relPath} bytes`);
  }
}

async function noTempFiles(t: import('ava').ExecutionContext, lab: Lab): Promise<void> {
  const stubs = await readdir(join(lab.data, 'stubs')).catch(() => [] as string[]);
  t.deepEqual(stubs.filter((n) => n.endsWith('.tmp')), [], 'no temp stub files');
  const walk = async (d: string): Promise<string[]> => {
    const out: string[] = [];
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) out.push(...(await walk(join(d, e.name))));
      else if (e.name.endsWith('.tapedeck-recall')) out.push(join(d, e.name));
    }
    return out;
  };
  t.deepEqual(await walk(lab.media), [], 'no recall temp files');
}

for (const point of FAULT_POINTS.filter((p) => p.startsWith('archive:'))) {
  test(`archive killed at ${point}: catalog consistent, resume finishes the job`, async (t) => {
    const lab = await makeLab({ files: FILES });
    t.teardown(() => lab.cleanup());
    await lab.close();
    const r = await cli(lab, ['archive', lab.media], point);
    t.is(r.signal, 'SIGKILL', `child was killed at the fault point (code ${r.code}): ${r.err}`);
    await lab.reopen();
    await assertReadable(t, lab, 'after the crash');
    const [job] = await lab.service.list();
    t.is(job.state, 'running');
    await lab.service.resume();
    const done = (await lab.service.get(job.id))!;
    t.is(done.state, 'done', done.reason);
    t.is(done.attempts, 2);
    for (const item of await lab.catalog.items()) {
      t.falsy(item.location!.disk, `${item.relPath} archived`);
      t.truthy(item.location!.tape);
      t.truthy(item.location!.stub);
    }
    await assertReadable(t, lab, 'after resume');
    await noTempFiles(t, lab);
  });
}

for (const point of FAULT_POINTS.filter((p) => p.startsWith('recall:'))) {
  test(`recall killed at ${point}: catalog consistent, resume finishes the job`, async (t) => {
    const lab = await makeLab({ files: FILES });
    t.teardown(() => lab.cleanup());
    const a = await lab.service.run((await lab.service.submit('archive', [lab.media])).id);
    t.is(a.state, 'done', a.reason);
    await lab.close();
    const r = await cli(lab, ['recall', 'folders'], point);
    t.is(r.signal, 'SIGKILL', `child was killed at the fault point (code ${r.code}): ${r.err}`);
    await lab.reopen();
    await assertReadable(t, lab, 'after the crash');
    const recall = (await lab.service.list()).find((j) => j.kind === 'recall')!;
    t.is(recall.state, 'running');
    await lab.service.resume();
    const done = (await lab.service.get(recall.id))!;
    t.is(done.state, 'done', done.reason);
    for (const item of await lab.catalog.items()) {
      t.is(item.location!.disk?.path, item.origPath, `${item.relPath} on disk`);
      t.falsy(item.location!.stub);
      t.is((await lab.catalog.getPath(item.origPath!))?.archived, false);
    }
    await assertReadable(t, lab, 'after resume');
    await noTempFiles(t, lab);
  });
}
