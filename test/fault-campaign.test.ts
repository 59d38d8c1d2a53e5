// Fault campaign (issue 13): the real server and its real staging worker on
// loopback (no SSDP), at a small tape time scale. In rounds chosen by a seeded
// PRNG, archived items are played (whole or a range) and archive jobs run, while
// the worker or the server is killed with SIGKILL at a random moment. Every
// response must carry only correct bytes (complete, or cut by the kill, or a 503)
// and answer within the admission timeout; afterwards every item is byte-exact.
// Bounded: a fixed number of rounds, each request with a deadline.

import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prng } from '../src/util/prng.js';
import { fetchMedia, removeDir, tempDir, type Fetched } from './fixtures/staging/harness.js';
import { cli, itemPaths, pseudoRandom, startServer, type RealServer } from './fixtures/staging/real-server.js';

const SEED = 1313;
const ROUNDS = 6;
/** admission_timeout of the server under test (s); no request may wait longer for its answer. */
const ADMISSION_S = 8;
const SLACK_MS = 4000;
const FLAGS = ['--tape-time-scale', '0.02', '--admission-timeout', String(ADMISSION_S), '--tape-drives', '1'];
/** Slow clients (some plays): the kill lands mid-stream, with partial segments in the cache. */
const SLOW = 4_000_000;


function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('fault campaign: kill -9 of the worker and of the server during playback and archive jobs', async (t) => {
  t.timeout(300_000, 'about 60 s alone; more while the whole suite shares the CPU'); // bounded either way
  const rand = prng(SEED);
  const dir = await tempDir('tapedeck-campaign-');
  const data = join(dir, 'data');
  const media = join(dir, 'media');
  await mkdir(join(media, 'later'), { recursive: true });
  const files = new Map<string, Buffer>([
    ['alpha.mkv', pseudoRandom(9_000_000, 11)],
    ['beta.mkv', pseudoRandom(5_500_000, 12)],
    ['later/gamma.mkv', pseudoRandom(7_000_000, 13)],
    ['later/delta.mkv', pseudoRandom(6_000_000, 14)],
  ]);
  for (const [name, b] of files) await writeFile(join(media, name), b);
  const titleOf = (name: string) => name.replace(/^.*\//, '').replace(/\.mkv$/, '');

  const workers = new Set<number>();
  let srv: RealServer | undefined;
  const start = async () => {
    srv = await startServer(data, media, FLAGS);
    const w = srv.workerPid();
    if (w) workers.add(w);
    return srv;
  };
  const waitWorker = async (s: RealServer, not?: number) => {
    for (let i = 0; i < 200; i++) {
      const w = s.workerPid();
      if (w && w !== not && alive(w)) {
        workers.add(w);
        return w;
      }
      await sleep(100);
    }
    return undefined;
  };
  const stats = { complete: 0, cut: 0, unavailable: 0, workerKills: 0, serverKills: 0, archives: 0 };
  /** Checks a response: only correct bytes, an answer within the admission timeout. */
  const judge = (f: Fetched, name: string, from: number, what: string) => {
    const want = files.get(name)!;
    t.false(f.timedOut ?? false, `${what}: no hang`);
    t.true((f.firstByteMs ?? f.totalMs) <= ADMISSION_S * 1000 + SLACK_MS, `${what}: answered after ${Math.round(f.firstByteMs ?? f.totalMs)} ms (admission timeout ${ADMISSION_S} s)`);
    if (f.status === 503) {
      t.truthy(f.headers['retry-after'], `${what}: 503 with Retry-After`);
      stats.unavailable++;
      return;
    }
    if (f.status === 0) {
      stats.cut++; // the server died before the headers
      return;
    }
    t.true(f.status === 200 || f.status === 206, `${what}: status ${f.status}`);
    t.true(f.body.equals(want.subarray(from, from + f.body.length)), `${what}: the ${f.body.length} bytes sent are the original bytes`);
    if (f.complete) stats.complete++;
    else stats.cut++;
  };

  try {
    await start();
    t.is((await cli(data, ['tape', 'label'])).code, 0);
    const first = await cli(data, ['archive', join(media, 'alpha.mkv'), join(media, 'beta.mkv')]);
    t.is(first.code, 0, first.stderr);
    stats.archives++;
    let paths = await itemPaths(srv!.port);

    for (let round = 0; round < ROUNDS; round++) {
      const s = srv!;
      const victim = rand() < 0.5 ? 'worker' : 'server';
      const during = round % 3 === 2 ? 'archive' : 'playback';
      const delay = Math.floor(200 + rand() * 1800);
      const workerPid = await waitWorker(s);
      // playback: two clients, whole item or a random range
      const plays = ['alpha.mkv', 'beta.mkv'].map((name) => {
        const size = files.get(name)!.length;
        const whole = rand() < 0.4;
        const a = whole ? 0 : Math.floor(rand() * size);
        const b = whole ? size - 1 : Math.min(size - 1, a + Math.floor(rand() * 3_000_000));
        const id = paths.get(titleOf(name))!.slice('/media/'.length);
        const slow = rand() < 0.5;
        const timeoutMs = ADMISSION_S * 1000 + SLACK_MS + (slow ? ((b - a + 1) / SLOW) * 2000 : 0);
        return fetchMedia(s.port, id, { ...(whole ? {} : { range: `bytes=${a}-${b}` }), timeoutMs, ...(slow ? { bytesPerSec: SLOW } : {}) }).then((f) =>
          judge(f, name, a, `round ${round} ${name} ${whole ? 'whole' : `${a}-${b}`}${slow ? ' slow' : ''} (${victim} killed after ${delay} ms of ${during})`),
        );
      });
      // an archive job (its CLI may fail when the server dies; the job resumes on the next start)
      const job = during === 'archive' ? cli(data, ['archive', join(media, 'later')], 60_000).then(() => undefined) : Promise.resolve();
      if (during === 'archive') stats.archives++;
      await sleep(delay);
      if (victim === 'worker' && workerPid) {
        process.kill(workerPid, 'SIGKILL');
        stats.workerKills++;
      } else {
        await s.kill();
        stats.serverKills++;
      }
      await Promise.all(plays);
      await job;
      if (victim === 'server' || !workerPid) {
        await start();
        paths = await itemPaths(srv!.port);
      } else await waitWorker(s, workerPid);
    }

    // the jobs finish (resumed after the kills); a last archive run takes what a failed one left
    await cli(data, ['archive', join(media, 'later')], 60_000);
    paths = await itemPaths(srv!.port);
    for (const [name, want] of files) {
      const id = paths.get(titleOf(name))!.slice('/media/'.length);
      const f = await fetchMedia(srv!.port, id, { timeoutMs: 30_000 });
      t.is(f.status, 200, `${name}: final read`);
      t.true(f.complete && f.body.equals(want), `${name}: byte-exact after the campaign (${f.body.length} of ${want.length} bytes)`);
    }
    const jobs = JSON.parse((await cli(data, ['jobs', '--json'])).stdout) as { state: string }[];
    t.false(
      jobs.some((j) => j.state === 'running' || j.state === 'queued'),
      'no job left running',
    );
    t.true(stats.workerKills + stats.serverKills === ROUNDS);
    t.log(JSON.stringify(stats));
  } finally {
    await srv?.stop();
    // workers orphaned by a killed server stop by themselves once their connection is gone
    for (let i = 0; i < 100 && [...workers].some(alive); i++) await sleep(200);
    for (const w of workers) if (alive(w)) process.kill(w, 'SIGKILL');
    await removeDir(dir);
  }
});
