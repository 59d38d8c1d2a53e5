// The running server's control socket beyond the tape commands (issue 13, defects 6 and 11):
// `tapedeck scan` while the server runs asks the server to scan (exit 0, same output; exit 3
// only when the catalog is held and nothing answers), the status page's rescan action is a
// real route (POST, same origin), and the status page shows paths relative to their media
// directory (absolute ones only on the local control socket). Loopback only, SSDP off.
import test from 'ava';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoLibrary } from '../src/demo/library.js';
import { ControlClient } from '../src/control/client.js';
import { Catalog } from '../src/catalog/catalog.js';
import { LevelStore } from '../src/catalog/store.js';
import { jsonLines, REPO_ROOT } from './helpers/lab.js';
import { itemAt, makeLab, runCli } from './fixtures/archive/setup.js';
import { readFile } from 'node:fs/promises';

type Line = Record<string, any>;

test('scan through a running server, the rescan route, and relative paths on the status page', async (t) => {
  t.timeout(180_000);
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-srvctl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { files } = await createDemoLibrary(join(dir, 'demo'));
  const tracks = files.filter((f) => f.endsWith('.flac'));
  const media = join(dir, 'media', 'Music Library');
  await mkdir(join(media, 'Album'), { recursive: true });
  await copyFile(tracks[0]!, join(media, 'Album', 'one.flac'));
  const conf = join(dir, 'empty.conf');
  await writeFile(conf, '');
  const data = join(dir, 'data');
  const port = 20000 + ((process.pid + 7919) % 20000);
  const env = { INIT_CWD: '', XDG_RUNTIME_DIR: dir };
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', conf, '--data', data, '--media', media, '--interface', 'lo', '--port', String(port), '--no-ssdp', '--tape-backend', 'none', '--rescan-interval', '0', '--no-watch'],
    { cwd: REPO_ROOT, stdio: 'pipe', env: { ...process.env, TAPEDECK_CONFIG: '', ...env } },
  );
  const srv = jsonLines<Line>(child);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await srv.waitFor((l) => l.scan?.done === true, 30_000, 'first scan');
  await srv.waitFor((l) => /control socket listening/.test(l.msg), 30_000, 'the control socket (without a tape tier too)');

  // `tapedeck scan` while the server runs: the server scans, exit 0, the same result
  await copyFile(tracks[1]!, join(media, 'Album', 'two.flac'));
  const scan = await runCli(['scan', '--data', data, '--json'], env);
  t.is(scan.code, 0, scan.err);
  const r = JSON.parse(scan.out);
  t.is(r.scan.seen, 2);
  t.is(r.scan.probed, 1);
  t.is(r.library.items, 2);
  t.regex(scan.err, /scanned 2 files/);
  // the tape commands reach the server too, which says it has no tape tier: exit 3
  const ls = await runCli(['tape', 'ls', '--data', data], env);
  t.is(ls.code, 3, ls.err);
  t.regex(ls.err, /tape tier is disabled/);

  // the status page's rescan action: POST, same origin
  const base = `http://127.0.0.1:${port}`;
  const post = (headers: Record<string, string>) => fetch(`${base}/status/rescan`, { method: 'POST', headers });
  const page = await (await fetch(`${base}/status.json`)).json();
  t.deepEqual(page.actions, ['rescan']);
  // the server's event services, by name, with their subscriptions (none here) and counters
  t.deepEqual(
    page.events.map((e: { service: string; subscriptions: number; sent: number }) => [e.service, e.subscriptions, e.sent]),
    [['ContentDirectory', 0, 0], ['ConnectionManager', 0, 0], ['X_MS_MediaReceiverRegistrar', 0, 0]],
  );
  t.regex(await (await fetch(`${base}/metrics`)).text(), /^tapedeck_gena_subscriptions\{service="ContentDirectory"\} 0$/m);
  t.is((await post({})).status, 403, 'without the action header');
  t.is((await post({ 'x-tapedeck-action': 'rescan', origin: 'http://evil.example' })).status, 403, 'from another origin');
  t.is((await post({ 'x-tapedeck-action': 'rescan', 'sec-fetch-site': 'cross-site' })).status, 403, 'cross-site');
  t.is((await fetch(`${base}/status/rescan`, { headers: { 'x-tapedeck-action': 'rescan' } })).status, 405, 'GET');
  // an unknown path is 404 whatever the method; a known path asked with another method is 405 with Allow
  for (const method of ['GET', 'POST', 'SUBSCRIBE', 'UNSUBSCRIBE', 'NOTIFY']) t.is((await fetch(`${base}/upnp/event/xyz`, { method })).status, 404, `${method} on an unknown path`);
  const wrong = await fetch(`${base}/upnp/cds.xml`, { method: 'SUBSCRIBE' });
  t.is(wrong.status, 405, 'SUBSCRIBE on a description');
  t.regex(wrong.headers.get('allow') ?? '', /\bGET\b/);
  await copyFile(tracks[2]!, join(media, 'three.flac'));
  const n = srv.lines.filter((l) => l.scan?.done).length;
  const ok = await post({ 'x-tapedeck-action': 'rescan', origin: base, 'sec-fetch-site': 'same-origin' });
  t.is(ok.status, 202);
  const rescanned = await srv.waitFor((l) => l.scan?.done === true && srv.lines.filter((x) => x.scan?.done).indexOf(l) >= n, 15_000, 'the rescan');
  t.is(rescanned.scan.seen, 3);

  // paths on the status page are relative to their media directory; absolute only on the socket
  const text = await (await fetch(`${base}/status.json`)).text();
  const html = await (await fetch(`${base}/`)).text();
  t.false(text.includes(dir), text);
  t.false(html.includes(dir));
  t.deepEqual(JSON.parse(text).server.mediaDirs, ['Music Library']);
  const full = (await new ControlClient(join(data, 'control.sock')).status()) as { server: { mediaDirs: string[] } };
  t.deepEqual(full.server.mediaDirs, [media]);

  child.kill('SIGTERM');
  t.is(await srv.exited(20_000), 0);

  // a catalog held by a process without a control socket: busy, exit 3
  const held = new Catalog(new LevelStore(join(data, 'catalog')));
  await held.open();
  try {
    const busy = await runCli(['scan', '--data', data], env);
    t.is(busy.code, 3, busy.err);
    t.regex(busy.err, /is busy: .*no control socket/);
  } finally {
    await held.close();
  }
});

test('a CLI following a recall whose server is killed -9 says the server went away and that the job resumes (exit 130); the next start finishes it', async (t) => {
  t.timeout(180_000);
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  const [path, content] = [...lab.files].find(([, b]) => b.length > 100_000)!;
  const item = await itemAt(lab.catalog, path);
  t.is((await lab.service.run((await lab.service.submit('archive', [item.id])).id)).state, 'done');
  await lab.close();
  const env = { INIT_CWD: '', XDG_RUNTIME_DIR: lab.dir };
  const port = 20000 + ((process.pid + 104_729) % 20000);
  // the server kills itself (SIGKILL, like kill -9) in the middle of restoring the item
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--data', lab.data, '--media', lab.media, '--interface', 'lo', '--port', String(port), '--no-ssdp', '--no-scan-on-start', '--no-watch', '--rescan-interval', '0', '--tape-time-scale', '0'],
    { cwd: REPO_ROOT, stdio: 'pipe', env: { ...process.env, TAPEDECK_CONFIG: '', TAPEDECK_FAULT: 'recall:mid-restore', TAPEDECK_FAULT_MODE: 'kill', ...env } },
  );
  const srv = jsonLines<Line>(child);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
  await srv.waitFor((l) => /control socket listening/.test(l.msg), 60_000, 'the control socket');
  const r = await runCli(['recall', item.id, '--data', lab.data], { ...env, TAPEDECK_FAULT: '' });
  t.is(await exited, 'SIGKILL', 'the server was killed at the fault point');
  t.is(r.code, 130, r.err);
  t.regex(r.err, /the server went away while recall job \S+ was unfinished .*: the control connection broke\. The job is durable: it resumes when the server starts again \(`tapedeck jobs \S+` shows it\)/);
  t.notRegex(r.err, /^tapedeck: aborted$/m);
  // the next start resumes the job and finishes it (once the orphaned staging worker has noticed
  // its server is gone, exited and freed the tape library)
  for (let i = 0; ; i++) {
    try {
      await lab.reopen();
      break;
    } catch (err) {
      await lab.catalog?.close().catch(() => undefined);
      if (i >= 100 || !/in use by process/.test(String(err))) throw err;
      await new Promise((res) => setTimeout(res, 200));
    }
  }
  const [job] = (await lab.service.list()).filter((j) => j.kind === 'recall');
  t.is(job.state, 'running', 'left running by the kill');
  await lab.service.resume();
  t.is((await lab.service.get(job.id))!.state, 'done');
  t.true((await readFile(path)).equals(content));
});
