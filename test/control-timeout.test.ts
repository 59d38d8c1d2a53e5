// The CLI's control-socket client never hangs on a server that stopped answering (SIGSTOP, a stuck
// event loop): after a quiet spell it pings the server on a second connection, and a server that
// does not answer the ping ends the command (BUSY, exit 3) with a message saying so. A server that
// answers the ping is only busy: a slow reply, or a job whose progress lines come slowly, is
// waited for however long it takes.

import test from 'ava';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { ControlClient } from '../src/control/client.js';
import { ArchiveError, EXIT_CODES } from '../src/archive/errors.js';
import type { JobRecord } from '../src/archive/jobs.js';
import { tempDir } from './helpers/temp.js';

/** Rejects after `ms` so a test never hangs on what it checks (the defect being a hang). */
const bounded = <T>(p: Promise<T>, ms = 20_000): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still waiting after ${ms / 1000} s`)), ms).unref())]);

async function muteServer(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const socketPath = join(await tempDir(t, 'tapedeck-ctl-mute-'), 'control.sock');
  const held: Socket[] = [];
  const mute = createServer((s) => held.push(s)); // accepts and reads, never answers anything
  await new Promise<void>((r) => mute.listen(socketPath, r));
  t.teardown(() => {
    for (const s of held) s.destroy();
    mute.close();
  });
  return socketPath;
}

test('a server that takes a request and never answers: the command ends BUSY (exit 3) once a ping goes unanswered too', async (t) => {
  const socketPath = await muteServer(t);
  const client = new ControlClient(socketPath, { idleMs: 100, pingTimeoutMs: 200 });
  for (const call of [() => client.list(), () => client.policyRun(), () => client.status()]) {
    const err = await t.throwsAsync(bounded(call()));
    t.true(err instanceof ArchiveError && err.code === 'BUSY', String(err));
    t.is(EXIT_CODES.BUSY, 3);
    t.regex(err!.message, /stopped answering: nothing of its answer to (GET|POST) \/v1\/\S+ for \d+ s, and no answer to a ping within 0\.2 s \(is it stopped or stuck/);
  }
});

test('a job watch whose server goes silent ends BUSY and says the job is durable; a scan stream likewise', async (t) => {
  const socketPath = await muteServer(t);
  const client = new ControlClient(socketPath, { idleMs: 100, pingTimeoutMs: 200 });
  const err = await t.throwsAsync(bounded(client.watch('j7', () => undefined)));
  t.true(err instanceof ArchiveError && err.code === 'BUSY', String(err));
  t.regex(err!.message, /stopped answering.*Job j7 is durable: `tapedeck jobs j7` shows it/);
  const scanErr = await t.throwsAsync(bounded(client.scan(() => undefined)));
  t.true(scanErr instanceof ArchiveError && scanErr.code === 'BUSY', String(scanErr));
});

/** A control server that answers pings at once and holds its other answers as the test says. */
async function slowServer(t: { teardown(fn: () => unknown): void }, handle: (path: string, res: ServerResponse) => void): Promise<string> {
  const socketPath = join(await tempDir(t, 'tapedeck-ctl-slow-'), 'control.sock');
  const srv = createHttpServer((req, res) => {
    if (req.url === '/v1/ping') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ service: 'tapedeck', protocol: 1, pid: process.pid }));
      return;
    }
    handle(req.url ?? '', res);
  });
  await new Promise<void>((r) => srv.listen(socketPath, r));
  t.teardown(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return socketPath;
}

test('a server that answers pings is waited for: a reply quiet for many idle spells, and a job whose progress lines come slowly, are not cut', async (t) => {
  const job = (state: string, done: number): JobRecord => ({ id: 'j1', kind: 'recall', state, progress: { itemsDone: done, itemsTotal: 3 } }) as unknown as JobRecord;
  const socketPath = await slowServer(t, (path, res) => {
    if (path === '/v1/jobs') {
      setTimeout(() => res.end('[]'), 1500); // fifteen idle spells of 100 ms
      return;
    }
    // a watch: a line now, then quiet spells between progress lines, then the end
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(JSON.stringify(job('running', 0)) + '\n');
    let n = 0;
    const timer = setInterval(() => {
      n++;
      res.write(JSON.stringify(job(n === 3 ? 'done' : 'running', n)) + '\n');
      if (n === 3) {
        clearInterval(timer);
        res.end();
      }
    }, 500);
  });
  const client = new ControlClient(socketPath, { idleMs: 100, pingTimeoutMs: 10_000 });
  t.deepEqual(await bounded(client.list()), []);
  const seen: number[] = [];
  const last = await bounded(client.watch('j1', (j) => seen.push(j.progress.itemsDone)));
  t.is(last.state, 'done');
  t.deepEqual(seen, [0, 1, 2, 3]);
});
