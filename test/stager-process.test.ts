// The staging worker as a process: its sandbox (file system and network), what
// happens when it dies mid-stream, the protocol handshake, and the external
// stager (`tapedeck stager --socket`).

import test from 'ava';
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { silentLogger } from '../src/log.js';
import { StagerClient } from '../src/staging/client.js';
import { StagingWorker } from '../src/staging/worker.js';
import { FrameDecoder, encodeFrame, PROTOCOL_VERSION } from '../src/staging/protocol.js';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { buildLibrary, fetchMedia, mediaServer, removeDir, sha256, tempDir, testConfig, type ArchivedItem } from './fixtures/staging/harness.js';

const MB = 1024 * 1024;
const QUICK = { robotMove: 0.02, load: 0.02, unload: 0.02, averageLocate: 0.02, locateOverhead: 0.005 };

async function spawned(size: number, flags: Record<string, unknown> = {}, timing = {}) {
  const dir = await tempDir();
  const items = await buildLibrary(dir, [{ id: 'item', size, label: 'TD0001L9' }]);
  const cfg = testConfig(dir, flags);
  const client = new StagerClient({
    config: cfg,
    log: silentLogger,
    tuning: { segmentSize: 64 * 1024, readAhead: 512 * 1024, maxChunk: 256 * 1024 },
    tapeTiming: { ...QUICK, ...timing },
    testHooks: true,
    backoffMs: [100, 500],
  });
  await client.start();
  const srv = await mediaServer(async (id) => (items.get(id) ? client.source(items.get(id)!.obj) : undefined));
  return {
    dir,
    item: items.get('item') as ArchivedItem,
    client,
    port: srv.port,
    async done() {
      await srv.close();
      await client.stop();
      await removeDir(dir);
    },
  };
}

test('sandbox: the worker cannot read outside its code, tape and cache directories', async (t) => {
  const r = await spawned(100_000);
  const outside = await tempDir('tapedeck-outside-');
  try {
    const st = await r.client.status();
    t.true(st.sandbox!.permission, `permission model active (${st.sandbox!.notes.join('; ')})`);
    t.true(st.sandbox!.write.every((p) => p.startsWith(r.dir)), 'writes only below the test directory (tape dir and cache)');
    const secret = join(outside, 'secret.txt');
    await writeFile(secret, 'not for the stager');
    for (const path of ['/etc/passwd', secret, join(r.dir, 'stubs', 'x')]) {
      const err = await t.throwsAsync(r.client.debug('readFile', { path }), undefined, path);
      t.is((err as { errno?: string }).errno, 'ERR_ACCESS_DENIED', path);
    }
    // the same hook reads what it is allowed to: the hook itself works
    await writeFile(join(r.dir, 'cache', 'probe.txt'), 'ok');
    t.deepEqual(await r.client.debug('readFile', { path: join(r.dir, 'cache', 'probe.txt') }), { bytes: 2 });
    t.truthy(await r.client.debug('readFile', { path: join(r.dir, 'vtl', 'library.json') }));
  } finally {
    await r.done();
    await removeDir(outside);
  }
});

test('sandbox: the worker has no network (private network namespace)', async (t) => {
  const r = await spawned(10_000);
  const seen: string[] = [];
  const server = createServer((s) => {
    seen.push(String(s.remoteAddress));
    s.destroy();
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as { port: number }).port;
  try {
    const st = await r.client.status();
    if (!st.sandbox!.netns) {
      t.log(`no network namespace on this machine: ${st.sandbox!.notes.join('; ')} (production: PrivateNetwork=yes in the stager unit)`);
      t.pass();
      return;
    }
    const err = await t.throwsAsync(r.client.debug('connect', { host: '127.0.0.1', port }));
    t.regex(String((err as { errno?: string }).errno), /ENETUNREACH|ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT/);
    await new Promise((res) => setTimeout(res, 100));
    t.deepEqual(seen, [], 'nothing reached the host');
  } finally {
    server.close();
    await r.done();
  }
});

test.serial('worker killed mid-stream: the response ends cleanly, the worker restarts, the next request works', async (t) => {
  // 4 MiB at 4 MB/s: the response is still streaming when the worker dies
  const r = await spawned(4 * MB, { tapeTimeScale: '1' }, { rate: 4e6 });
  try {
    const restarts: unknown[] = [];
    r.client.on('restart', (e) => restarts.push(e));
    const pid = r.client.pid!;
    t.truthy(pid);
    let killed = false;
    const f = await fetchMedia(r.port, 'item', {
      onData: (total) => {
        if (!killed && total >= 300_000) {
          killed = true;
          process.kill(pid, 'SIGKILL');
        }
      },
    });
    t.true(killed);
    t.is(f.status, 200);
    t.false(f.complete, 'the response did not pretend to be complete');
    t.true(f.body.length < r.item.data.length);
    t.true(f.body.equals(r.item.data.subarray(0, f.body.length)), `all ${f.body.length} bytes sent are the original bytes`);
    // restarted with backoff
    for (let i = 0; i < 100 && !(r.client.connected && r.client.pid !== pid); i++) await new Promise((res) => setTimeout(res, 50));
    t.true(r.client.connected);
    t.not(r.client.pid, pid);
    t.is(restarts.length, 1);
    t.is(r.client.stats().restarts, 1);
    const again = await fetchMedia(r.port, 'item', { range: 'bytes=1000000-1999999' });
    t.is(again.status, 206);
    t.true(again.body.equals(r.item.data.subarray(1_000_000, 2_000_000)));
    // segments completed before the crash survived it (the new worker reads no tape for them)
    const before = (await r.client.status()).worker!.counters.libBytesRead;
    const cached = await fetchMedia(r.port, 'item', { range: 'bytes=0-65535' });
    t.true(cached.body.equals(r.item.data.subarray(0, 65536)));
    t.is((await r.client.status()).worker!.counters.libBytesRead, before, 'served from the cache index that survived the kill');
  } finally {
    await r.done();
  }
});

test('while the worker is down, tape requests get 503 with Retry-After', async (t) => {
  const r = await spawned(100_000);
  try {
    await r.client.stop();
    const f = await fetchMedia(r.port, 'item');
    t.is(f.status, 503);
    t.truthy(f.headers['retry-after']);
    t.regex(f.body.toString(), /staging worker/);
  } finally {
    await r.done();
  }
});

test('protocol: hello first, version checked, malformed frames refused', async (t) => {
  const dir = await tempDir();
  const lib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { drives: 1, cartridges: 1, timeScale: 0 });
  const logged: { level: string; msg: string }[] = [];
  const log = {
    error: (_o: object, msg?: string) => logged.push({ level: 'error', msg: msg ?? '' }),
    warn: (_o: object, msg?: string) => logged.push({ level: 'warn', msg: msg ?? '' }),
    info: () => {},
    debug: () => {},
  };
  const worker = await StagingWorker.create({ library: lib, cacheDir: join(dir, 'cache'), cacheSize: 16 * MB, admissionTimeoutMs: 1000, idleUnloadMs: 0, log });
  const sock = join(dir, 's.sock');
  await worker.listen(sock);
  const talk = (frames: Buffer[]) =>
    new Promise<{ msgs: { t: string; version?: number; error?: { code: string; message: string } }[]; closed: boolean }>((resolve) => {
      const s = connect(sock);
      const d = new FrameDecoder();
      const msgs: { t: string }[] = [];
      s.on('data', (c: Buffer) => msgs.push(...d.push(c).map((f) => f.msg as { t: string })));
      s.on('connect', () => {
        for (const f of frames) s.write(f);
      });
      const t0 = setTimeout(() => {
        s.destroy();
        resolve({ msgs, closed: false });
      }, 1000);
      s.on('close', () => {
        clearTimeout(t0);
        resolve({ msgs, closed: true });
      });
    });
  try {
    const wrong = await talk(encodeFrame({ t: 'hello', version: 99, client: 'test' }));
    t.true(wrong.closed);
    t.true(
      logged.some((l) => l.level === 'error' && l.msg.includes('staging protocol version 99') && l.msg.includes(`this stager speaks version ${PROTOCOL_VERSION}`) && l.msg.includes('upgrade the server and the stager together')),
      `the stager logs the refusal with both versions: ${JSON.stringify(logged)}`,
    );
    t.is(wrong.msgs[0]!.t, 'error');
    t.regex(wrong.msgs[0]!.error!.message, new RegExp(`protocol version 99 is not supported \\(this stager speaks version ${PROTOCOL_VERSION}\\)`));
    const noHello = await talk(encodeFrame({ t: 'status', id: 1 }));
    t.true(noHello.closed);
    t.regex(noHello.msgs[0]!.error!.message, /hello first/);
    const garbage = Buffer.alloc(16, 0xff);
    const g = await talk([garbage]);
    t.true(g.closed);
    t.is(g.msgs[0]!.error!.code, 'PROTOCOL');
    const ok = await talk([...encodeFrame({ t: 'hello', version: PROTOCOL_VERSION, client: 'test' }), ...encodeFrame({ t: 'bogus', id: 5 }), ...encodeFrame({ t: 'debug', id: 6, op: 'readFile', path: '/etc/passwd' })]);
    t.is(ok.msgs[0]!.t, 'hello');
    t.is(ok.msgs[0]!.version, PROTOCOL_VERSION);
    t.regex(ok.msgs[1]!.error!.message, /unknown message type/);
    t.regex((ok.msgs[2] as { error?: { message: string } }).error!.message, /debug operations are disabled/, 'test hooks are off unless asked for');
    t.false(ok.closed, 'a bad message does not end a greeted connection');
  } finally {
    await worker.close();
    await lib.close();
    await removeDir(dir);
  }
});

test('an external stager of the previous release (protocol version 1) is refused with an error that names both versions', async (t) => {
  const dir = await tempDir();
  const sock = join(dir, 'old-stager.sock');
  // what a version-1 stager answers a hello of another version, word for word
  const oldStager = createServer((s) => {
    const d = new FrameDecoder();
    s.on('data', (c: Buffer) => {
      for (const f of d.push(c)) {
        const m = f.msg as { t: string; version?: number };
        if (m.t !== 'hello' || m.version === 1) continue;
        for (const b of encodeFrame({ t: 'error', id: 0, error: { code: 'PROTOCOL', message: `protocol version ${m.version} is not supported (this stager speaks version 1)` } })) s.write(b);
        s.end();
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((res) => oldStager.listen(sock, res));
  const lines: { level: number; msg: string; stagerProtocol?: number; serverProtocol?: number }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  const client = new StagerClient({ config: testConfig(dir, { stager: sock }), log: pino({ level: 'debug' }, sink), backoffMs: [50, 100] });
  try {
    await client.start(500).catch(() => undefined);
    for (let i = 0; i < 100 && !lines.some((l) => l.level === 50); i++) await new Promise((res) => setTimeout(res, 20));
    t.false(client.connected);
    const err = lines.find((l) => l.level === 50);
    t.truthy(err, `an error is logged: ${JSON.stringify(lines)}`);
    t.regex(err!.msg, /the stager speaks protocol version 1, this server version 2; upgrade the server and the stager together/);
    t.is(err!.stagerProtocol, 1);
    t.is(err!.serverProtocol, PROTOCOL_VERSION);
    await new Promise((res) => setTimeout(res, 300));
    t.is(lines.filter((l) => l.level === 50).length, 1, 'once, not at every retry');
  } finally {
    await client.stop();
    await new Promise((res) => oldStager.close(res));
    await removeDir(dir);
  }
});

test.serial('external stager: `tapedeck stager --socket` serves a server configured with stager = PATH', async (t) => {
  const dir = await tempDir();
  const items = await buildLibrary(dir, [{ id: 'ext', size: 500_000, label: 'TD0001L9' }]);
  const sock = join(dir, 'stager.sock');
  const cli = join(process.cwd(), 'src', 'cli.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'stager', '--socket', sock, '--data', dir, '--tape-time-scale', '0', '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TAPEDECK_CONFIG: '' },
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  try {
    for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((res) => setTimeout(res, 50));
    t.true(existsSync(sock), `socket created (${out})`);
    const client = new StagerClient({ config: testConfig(dir, { stager: sock }), log: silentLogger, backoffMs: [100, 500] });
    await client.start(10_000);
    t.true(client.connected);
    t.is(client.mode, 'socket');
    const srv = await mediaServer(async (id) => (items.get(id) ? client.source(items.get(id)!.obj) : undefined));
    const f = await fetchMedia(srv.port, 'ext');
    t.is(sha256(f.body), items.get('ext')!.sha256);
    const st = await client.status();
    t.true(st.sandbox?.permission ?? false, 'the external stager runs its worker sandboxed too');
    await srv.close();
    await client.stop();
    child.kill('SIGTERM');
    t.is(await exited, 0);
    t.false(existsSync(sock), 'socket removed on exit');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await removeDir(dir);
  }
});
