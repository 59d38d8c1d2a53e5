// Control socket: while a server (here: this test process) holds the catalog,
// the CLI sends its commands over <data>/control.sock and shows the same
// results, progress and exit codes as in direct mode.
import test from 'ava';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlServer } from '../src/control/server.js';
import { ControlClient } from '../src/control/client.js';
import { ArchiveError } from '../src/archive/errors.js';
import type { JobRecord } from '../src/archive/jobs.js';
import { itemAt, makeLab, runCli } from './fixtures/archive/setup.js';

test('the CLI goes through the control socket when the catalog is held by a server', async (t) => {
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  const socketPath = join(lab.data, 'control.sock');
  const ctl = await startControlServer({ socketPath, archive: lab.service });
  lab.service.start();
  t.teardown(async () => {
    await ctl.close();
    await lab.service.stop();
  });
  t.is((await stat(socketPath)).mode & 0o777, 0o600);
  const common = ['--data', lab.data, '--json'];

  const music = join(lab.media, 'Music');
  const [arch, ls, bad] = await Promise.all([
    runCli(['archive', music, ...common]),
    runCli(['tape', 'ls', ...common]),
    runCli(['archive', 'inosuchitem', ...common]),
  ]);
  t.is(arch.code, 0, arch.err);
  const job = JSON.parse(arch.out) as JobRecord;
  t.is(job.state, 'done');
  t.is(job.kind, 'archive');
  for (const path of lab.files.keys()) {
    const item = await itemAt(lab.catalog, path);
    t.is(!!item.location!.tape, path.startsWith(music + '/'), path);
  }
  t.is(ls.code, 0, ls.err);
  const status = JSON.parse(ls.out);
  t.is(status.backend, 'virtual');
  t.true(status.cartridges.some((c: { label: string; pool: boolean }) => c.label === 'TD0001L9' && c.pool));
  t.is(bad.code, 2);
  t.regex(bad.err, /unknown object ID: inosuchitem/);

  // Resource problems keep their exit code over the socket.
  const [jobs, exp] = await Promise.all([runCli(['jobs', ...common]), runCli(['tape', 'export', 'TD0001L9', ...common])]);
  t.is(jobs.code, 0, jobs.err);
  t.deepEqual((JSON.parse(jobs.out) as JobRecord[]).map((j) => j.id), [job.id]);
  t.is(exp.code, 0, exp.err);
  const rec = await runCli(['recall', music, ...common]);
  t.is(rec.code, 3, rec.err);
  t.regex(rec.err, /TD0001L9 is offline/);
  t.is(JSON.parse(rec.out).code, 'OFFLINE');
  const imp = await runCli(['tape', 'import', 'TD0001L9', ...common]);
  t.is(imp.code, 0, imp.err);
  const rec2 = await runCli(['recall', music, ...common]);
  t.is(rec2.code, 0, rec2.err);
  t.is(JSON.parse(rec2.out).result.recalled, 4);
});

test('the client: job progress streams as NDJSON until the job ends; errors keep their codes', async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  const socketPath = join(lab.data, 'control.sock');
  const ctl = await startControlServer({ socketPath, archive: lab.service });
  lab.service.start();
  t.teardown(async () => {
    await ctl.close();
    await lab.service.stop();
  });
  const client = new ControlClient(socketPath);
  t.is((await client.ping()).protocol, 1);
  const job = await client.submit('archive', [lab.media]);
  const seen: JobRecord[] = [];
  const done = await client.watch(job.id, (j) => seen.push(j));
  t.is(done.state, 'done');
  t.true(seen.length >= 2);
  t.is(seen[seen.length - 1].state, 'done');
  // A finished job: one record, then the stream ends.
  const again: JobRecord[] = [];
  t.is((await client.watch(job.id, (j) => again.push(j))).state, 'done');
  t.is(again.length, 1);
  const items = await client.items(job.id);
  t.is(items.length, lab.files.size);
  t.true(items.every((i) => i.phase === 'done'));
  const e1 = await t.throwsAsync(() => client.get('nope'));
  t.is((e1 as ArchiveError).code, 'NOT_FOUND');
  const e2 = await t.throwsAsync(() => client.submit('recall', ['/no/such/file.mp3']));
  t.is((e2 as ArchiveError).exitCode, 2);
  const e3 = await t.throwsAsync(() => client.request('POST', '/v1/jobs', { kind: 'archive', targets: 'x' }));
  t.is((e3 as ArchiveError).code, 'INVALID');
  const e4 = await t.throwsAsync(() => client.label(['bad']));
  t.is((e4 as ArchiveError).code, 'INVALID');
  // A second server on the same socket is refused; a stale socket file is replaced.
  await t.throwsAsync(() => startControlServer({ socketPath, archive: lab.service }), { message: /in use/ });
});

test.serial('an unknown path names the catalog searched and a running server that uses another one', async (t) => {
  // registry of running servers in a directory of this test only
  const runtime = await mkdtemp(join(tmpdir(), 'tapedeck-run-'));
  const saved = process.env.XDG_RUNTIME_DIR;
  process.env.XDG_RUNTIME_DIR = runtime;
  t.teardown(async () => {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
    await rm(runtime, { recursive: true, force: true });
  });
  const env = { XDG_RUNTIME_DIR: runtime };
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  const other = join(lab.dir, 'other-data');
  // a stale entry (a server killed with -9) is ignored
  await mkdir(join(runtime, 'tapedeck'), { recursive: true });
  await writeFile(join(runtime, 'tapedeck', 'stale.json'), JSON.stringify({ pid: 2 ** 22 + 7, dataDir: '/nowhere', socket: '/nowhere/control.sock' }));

  const alone = await runCli(['archive', '/srv/nosuch/clip.mp4', '--data', other], env);
  t.is(alone.code, 2, alone.err);
  t.regex(alone.err, /^tapedeck: unknown path: \/srv\/nosuch\/clip\.mp4\n/);
  t.true(alone.err.includes(`searched the catalog in data directory ${other}\n`), alone.err);
  t.regex(alone.err, /no running server found/);
  t.notRegex(alone.err, /nowhere/);

  const ctl = await startControlServer({ socketPath: join(lab.data, 'control.sock'), archive: lab.service });
  t.teardown(() => ctl.close());
  const elsewhere = await runCli(['recall', '/srv/nosuch/clip.mp4', '--data', other], env);
  t.is(elsewhere.code, 2, elsewhere.err);
  t.true(elsewhere.err.includes(`searched the catalog in data directory ${other}\n`), elsewhere.err);
  t.true(elsewhere.err.includes(`a running server (pid ${process.pid}) uses another catalog, in ${lab.data}: add --data ${lab.data}`), elsewhere.err);
  const viaServer = await runCli(['archive', 'inosuchitem', '--data', lab.data], env);
  t.is(viaServer.code, 2, viaServer.err);
  t.regex(viaServer.err, /^tapedeck: unknown object ID: inosuchitem\n/);
  t.true(viaServer.err.includes(`searched the catalog in data directory ${lab.data} (held by the running server)`), viaServer.err);
  t.regex(viaServer.err, /no other running server found/);
  await ctl.close();
  t.deepEqual(await readdir(join(runtime, 'tapedeck')), [], 'closing removes the entry (and the reader removed the stale one)');
});

test('the client: a server that goes away after the connection was made, before it answers, is INTERRUPTED (the job resumes), not "cannot reach"', async (t) => {
  const { createServer } = await import('node:net');
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-ctl-gone-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'control.sock');
  // takes the request, then dies without a byte of answer (as a server killed -9 at that moment)
  const srv = createServer((sock) => sock.once('data', () => sock.destroy()));
  await new Promise<void>((res) => srv.listen(socketPath, res));
  t.teardown(() => new Promise<void>((res) => srv.close(() => res())));
  const err = await t.throwsAsync(new ControlClient(socketPath).watch('j1', () => undefined), { instanceOf: ArchiveError });
  t.is((err as ArchiveError).code, 'INTERRUPTED', err!.message);
  t.regex(err!.message, /the server went away while job j1 was unfinished: the control connection broke\. The job is durable/);
  // the job as submit answered it: the message names its kind although no line of the watch came
  const submitted = { id: 'j1', kind: 'recall', state: 'queued', progress: { itemsDone: 0, itemsTotal: 1 } } as unknown as JobRecord;
  const named = await t.throwsAsync(new ControlClient(socketPath).watch('j1', () => undefined, undefined, submitted), { instanceOf: ArchiveError });
  t.regex(named!.message, /the server went away while recall job j1 was unfinished \(queued, 0 of 1 item\(s\) done\): the control connection broke/);
  // nothing listening at all: that is "cannot reach" (BUSY), as before
  const none = await t.throwsAsync(new ControlClient(join(dir, 'nobody.sock')).watch('j1', () => undefined), { instanceOf: ArchiveError });
  t.is((none as ArchiveError).code, 'BUSY');
  t.regex(none!.message, /cannot reach the server's control socket/);
});

test('a control request with a malformed percent-escape in its path is the caller\'s error (400 INVALID, logged at info), not a server failure', async (t) => {
  const { request } = await import('node:http');
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-ctl-uri-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'control.sock');
  const logged: { level: string; msg: string }[] = [];
  const at = (level: string) => (_o: object, msg: string) => logged.push({ level, msg });
  const log = { warn: at('warn'), info: at('info') } as unknown as import('../src/log.js').Logger;
  const ctl = await startControlServer({ socketPath, log });
  t.teardown(() => ctl.close());
  const get = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ socketPath, path, method: 'GET' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  for (const path of ['/v1/%E0', '/v1/jobs/%E0%A4%A/items', '/v1/%']) {
    const r = await get(path);
    t.is(r.status, 400, `${path}: ${r.body}`);
    t.is(JSON.parse(r.body).error.code, 'INVALID', path);
    t.regex(JSON.parse(r.body).error.message, /malformed percent-encoding/);
  }
  t.is((await get('/v1/nope')).status, 404);
  t.deepEqual(logged.map((l) => l.level), ['info', 'info', 'info', 'info'], 'refused requests are not warnings');
});

test('a command goes to the server that answers at the control socket without opening the catalog, even when LevelDB lock is free (the server reopening it)', async (t) => {
  // a server closes and opens its catalog after scans (LevelStore.reopen): a command that opened
  // the catalog in that moment took it away from the server (and found the tape library busy: exit 3)
  const data = await mkdtemp(join(tmpdir(), 'tapedeck-answering-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const { openBackend } = await import('../src/archive/cli.js');
  const { answeringServer } = await import('../src/control/client.js');
  const { loadConfig } = await import('../src/config.js');
  const cfg = loadConfig({ env: {}, flags: { data, tapeTimeScale: '0' }, checkMediaDirs: false });
  const socketPath = join(data, 'control.sock');
  // a stale socket file (a killed server) answers nothing: the command opens the catalog itself
  await writeFile(socketPath, '');
  t.is(await answeringServer(socketPath), undefined);
  const direct = await openBackend(cfg, { libraryOptional: true });
  t.is(direct.mode, 'direct');
  await direct.close();
  await rm(socketPath);
  const ctl = await startControlServer({ socketPath });
  t.teardown(() => ctl.close());
  const b = await openBackend(cfg, { libraryOptional: true });
  t.teardown(() => b.close());
  t.is(b.mode, 'server');
});

test('a server that takes the control connection and never answers (stopped, stuck) is not waited for forever: the ping says BUSY', async (t) => {
  const { createServer } = await import('node:net');
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-mute-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'control.sock');
  const held: import('node:net').Socket[] = [];
  const mute = createServer((s) => held.push(s)); // accepts, reads nothing, answers nothing
  await new Promise<void>((r) => mute.listen(socketPath, r));
  t.teardown(() => {
    for (const s of held) s.destroy();
    mute.close();
  });
  // bounded here too: without the ping's timeout the ping never ends
  const bound = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the ping still waits after 60 s')), 60_000).unref());
  const err = await t.throwsAsync(Promise.race([new ControlClient(socketPath).ping(200), bound]));
  t.true(err instanceof ArchiveError && err.code === 'BUSY', String(err));
  t.regex(err!.message, /no answer within 0\.2 s/);
});
