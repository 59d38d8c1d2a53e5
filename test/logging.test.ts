// What the server logs about the things an operator needs to know (issue 13, defect 7): an
// "http error" says which URL, item and client; a worker restart is one line; finished archive,
// recall and import jobs are info lines; a CLI interrupted while the server runs its job says
// that the job goes on. The real server, loopback only, SSDP off.
import test from 'ava';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoLibrary } from '../src/demo/library.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import { httpErrorLevel } from '../src/http/error-log.js';
import { ControlClient } from '../src/control/client.js';
import { jsonLines, REPO_ROOT } from './helpers/lab.js';
import { runCli } from './fixtures/archive/setup.js';

type Line = Record<string, any>;

test('log lines: http error context, one line per worker restart, finished jobs at info, an interrupted CLI says the job goes on', async (t) => {
  t.timeout(240_000);
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-logs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { files } = await createDemoLibrary(join(dir, 'demo'));
  const tracks = files.filter((f) => f.endsWith('.flac'));
  const media = join(dir, 'media');
  await mkdir(media);
  const kept = join(media, 'kept.flac');
  const gone = join(media, 'gone.flac');
  await copyFile(tracks[0]!, kept);
  await copyFile(tracks[1]!, gone);
  const conf = join(dir, 'empty.conf');
  await writeFile(conf, '');
  const data = join(dir, 'data');
  const port = 20000 + (process.pid % 20000);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', conf, '--data', data, '--media', media, '--interface', 'lo', '--port', String(port), '--no-ssdp', '--tape-time-scale', '0.05', '--head-stub-min', '16K', '--head-stub-seconds', '1'],
    { cwd: REPO_ROOT, stdio: 'pipe', env: { ...process.env, TAPEDECK_CONFIG: '' } },
  );
  const srv = jsonLines<Line>(child);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await srv.waitFor((l) => l.scan?.done === true, 30_000, 'first scan');
  const ready = await srv.waitFor((l) => /staging worker \d+ ready/.test(l.msg), 30_000, 'the staging worker');
  await srv.waitFor((l) => /control socket listening/.test(l.msg), 30_000, 'the control socket');

  // an http error names the URL, the item and the client
  await rm(gone);
  const goneId = itemIdForPath(gone);
  const res = await fetch(`http://127.0.0.1:${port}/media/${goneId}.flac`, { headers: { 'user-agent': 'LogTest/1.0' } });
  await res.arrayBuffer();
  const err = await srv.waitFor((l) => l.msg === 'http error', 10_000, 'the http error');
  t.is(err.level, 30, 'a 404 for a vanished file is an expected client error: info, not a warning');
  t.is(err.status, 404);
  t.is(err.url, `/media/${goneId}.flac`);
  t.is(err.item, goneId);
  t.is(err.client, '127.0.0.1');
  t.is(err.ua, 'LogTest/1.0');
  t.is(err.method, 'GET');

  const label = await runCli(['tape', 'label', 'TD0001L9', '--data', data], { INIT_CWD: '' });
  t.is(label.code, 0, label.err);

  // a CLI interrupted while the server runs its job says the job goes on; the job finishes
  const env = { INIT_CWD: '' };
  const cli = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'archive', kept, '--data', data], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TAPEDECK_CONFIG: '', ...env } });
  let cliErr = '';
  cli.stderr.on('data', (c: Buffer) => (cliErr += c.toString()));
  const cliExit = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (cli.exitCode === null && cli.signalCode === null) cli.kill('SIGKILL');
  });
  const control = new ControlClient(join(data, 'control.sock'));
  let jobId: string | undefined;
  for (let i = 0; i < 400 && !jobId; i++) {
    jobId = (await control.list()).find((j) => j.kind === 'archive' && j.state === 'running')?.id;
    if (!jobId) await new Promise((r) => setTimeout(r, 50));
  }
  t.truthy(jobId, `the archive job runs in the server: ${JSON.stringify(await control.list())}`);
  await new Promise((r) => setTimeout(r, 300)); // the CLI is watching by now
  cli.kill('SIGTERM');
  t.is(await cliExit, 130, cliErr);
  t.true(cliErr.includes(`archive job ${jobId} goes on in the server`), cliErr);
  t.notRegex(cliErr, /tapedeck: aborted/);
  const archived = await srv.waitFor((l) => l.job === jobId && /done/.test(l.msg), 60_000, 'the archive job done line');
  t.is(archived.level, 30);
  t.is(archived.kind, 'archive');
  t.is(archived.items, 1);

  // recall and import: info lines too
  const rec = await runCli(['recall', kept, '--data', data, '--json'], env);
  t.is(rec.code, 0, rec.err);
  const recId = JSON.parse(rec.out).id as string;
  const recalled = await srv.waitFor((l) => l.job === recId, 10_000, 'the recall job line');
  t.is(recalled.level, 30);
  t.regex(recalled.msg, /^recall job \S+ done: 1 item\(s\), \d+(\.\d+)? (B|KiB|MiB)$/);
  const imp = await runCli(['tape', 'import', 'TD0001L9', '--data', data, '--json'], env);
  t.is(imp.code, 0, imp.err);
  const impId = JSON.parse(imp.out).id as string;
  const imported = await srv.waitFor((l) => l.job === impId, 10_000, 'the import job line');
  t.is(imported.level, 30);
  t.regex(imported.msg, /^import job \S+ done: 1 cartridge\(s\)$/);

  // a worker restart is one warning, not two
  process.kill(ready.workerPid, 'SIGKILL');
  await srv.waitFor((l) => /staging worker \d+ ready/.test(l.msg) && l.workerPid !== ready.workerPid, 30_000, 'the restarted worker');
  const restartLines = srv.lines.filter((l) => l.level >= 40 && /worker/.test(l.msg) && /exit|restart/.test(l.msg));
  t.is(restartLines.length, 1, JSON.stringify(restartLines));

  child.kill('SIGTERM');
  t.is(await srv.exited(20_000), 0);
});

test('http error level: expected client errors (404, 406, 416 ...) at info, server faults at warn', (t) => {
  for (const status of [404, 406, 416, 400]) t.is(httpErrorLevel({ status }), 'info', String(status));
  t.is(httpErrorLevel({ statusCode: 416 }), 'info');
  for (const status of [500, 503]) t.is(httpErrorLevel({ status }), 'warn', String(status));
  t.is(httpErrorLevel(new Error('EIO: i/o error')), 'warn', 'an error without a status is a fault');
});
