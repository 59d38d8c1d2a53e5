// Issue 13, defects 1 and 2, at the level of the staging worker process (spawned,
// sandboxed, as the server runs it) behind the media route: a restart on a cache
// that holds a partial, unindexed segment, and cache write errors. Every response
// is checked byte for byte, or must be a 503, within a bounded time.

import test, { type ExecutionContext } from 'ava';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../src/log.js';
import { StagerClient, type StagerClientOptions } from '../src/staging/client.js';
import type { WorkerTuning } from '../src/staging/worker.js';
import { run } from './helpers/lab.js';
import { buildLibrary, fetchMedia, removeDir, serveThroughStager, tempDir, testConfig, type ArchivedItem, type ItemSpec, type MediaServer } from './fixtures/staging/harness.js';

const KB = 1024;
const SEG = 64 * KB;
/** A request that makes no progress for this long counts as a hang. */
const HANG_MS = 8000;

interface Worker {
  client: StagerClient;
  srv: MediaServer;
  port: number;
  stop(): Promise<void>;
}

async function startWorker(
  dir: string,
  items: Map<string, ArchivedItem>,
  tuning: Partial<WorkerTuning> = {},
  flags: Record<string, unknown> = {},
  more: Partial<StagerClientOptions> = {},
): Promise<Worker> {
  const client = new StagerClient({
    config: testConfig(dir, flags),
    log: silentLogger,
    tuning: { segmentSize: SEG, readAhead: SEG, maxChunk: 64 * KB, ...tuning },
    testHooks: true,
    backoffMs: [100, 1000],
    ...more,
  });
  const srv = await serveThroughStager(client, items);
  return {
    client,
    srv,
    port: srv.port,
    async stop() {
      await srv.close();
      await client.stop();
    },
  };
}

async function library(specs: ItemSpec[]): Promise<{ dir: string; items: Map<string, ArchivedItem> }> {
  const dir = await tempDir();
  return { dir, items: await buildLibrary(dir, specs) };
}

test('defect 1: restart on a cache holding a complete segment and a partial, unindexed one; the whole item then plays byte-exact', async (t) => {
  const { dir, items } = await library([{ id: 'movie', size: 6 * SEG + 12_345, label: 'TD0001L9' }]);
  const it = items.get('movie')!;
  const loc = it.obj.location!.tape!;
  t.not((loc.offset + 2 * SEG) % loc.blockSize, 0, 'precondition: segment 2 starts inside a tape block (the item is not block-aligned)');
  try {
    let w = await startWorker(dir, items);
    // bytes in segment 1 only: segment 1 completes, the block that straddles into segment 2 leaves it partial
    const part = await fetchMedia(w.port, 'movie', { range: `bytes=${SEG + 1000}-${SEG + 2000}`, timeoutMs: HANG_MS });
    t.is(part.status, 206);
    t.true(part.body.equals(it.data.subarray(SEG + 1000, SEG + 2001)));
    await w.stop();
    const files = await readdir(join(dir, 'cache', 'imovie'));
    t.true(files.includes('2') && (await stat(join(dir, 'cache', 'imovie', '2'))).size < SEG, `precondition: a partial segment 2 is on disk (${files.join(',')})`);

    w = await startWorker(dir, items);
    try {
      const full = await fetchMedia(w.port, 'movie', { timeoutMs: HANG_MS });
      t.false(full.timedOut ?? false, `no hang (got ${full.body.length} of ${it.data.length} bytes)`);
      t.is(full.status, 200);
      t.true(full.complete);
      t.true(full.body.equals(it.data), 'every byte');
      // and any range in the segment after the restart boundary
      const r2 = await fetchMedia(w.port, 'movie', { range: `bytes=${2 * SEG + 5}-${3 * SEG + 7}`, timeoutMs: HANG_MS });
      t.is(r2.status, 206);
      t.true(r2.body.equals(it.data.subarray(2 * SEG + 5, 3 * SEG + 8)));
    } finally {
      await w.stop();
    }
  } finally {
    await removeDir(dir);
  }
});

test('watchdog (last line of defence): a tape read that delivers nothing for stallMs answers 503, it does not hang', async (t) => {
  const { dir, items } = await library([{ id: 'slow', size: 3 * SEG, label: 'TD0001L9' }]);
  try {
    // a robot move of 6 s: the worker is busy (not stuck), but the response may not wait that long
    const w = await startWorker(dir, items, {}, { tapeTimeScale: '1' }, { stallMs: 1500, tapeTiming: { robotMove: 6 } });
    try {
      const f = await fetchMedia(w.port, 'slow', { timeoutMs: HANG_MS });
      t.false(f.timedOut ?? false);
      t.is(f.status, 503);
      t.truthy(f.headers['retry-after']);
      t.regex(f.body.toString(), /no byte of item slow arrived/);
      t.is(w.client.stats().stalledReads, 1);
    } finally {
      await w.stop();
    }
  } finally {
    await removeDir(dir);
  }
});

// ---- defect 2: a cache on a file system that is full ----------------------------------------------

/** Fetches an item (or a range of it) and asserts: no hang, and every byte or a 503 with Retry-After. */
function checker(t: ExecutionContext, w: Worker, items: Map<string, ArchivedItem>) {
  return async (id: string, range?: [number, number]) => {
    const want = range ? items.get(id)!.data.subarray(range[0], range[1] + 1) : items.get(id)!.data;
    const f = await fetchMedia(w.port, id, { ...(range ? { range: `bytes=${range[0]}-${range[1]}` } : {}), timeoutMs: HANG_MS });
    const what = `${id} ${range ? range.join('-') : 'whole'}`;
    t.false(f.timedOut ?? false, `${what}: no hang (${f.body.length} bytes)`);
    if (f.status === 503) {
      t.truthy(f.headers['retry-after'], `${what}: 503 with Retry-After`);
      return;
    }
    t.is(f.status, range ? 206 : 200, what);
    t.true(f.complete, `${what}: not cut (${f.body.length} of ${want.length} bytes)`);
    t.true(f.body.equals(want), `${what}: every byte`);
  };
}

const isRoot = process.getuid?.() === 0;

/** A 1 MiB tmpfs at `dir` (root), or undefined when it cannot be mounted. */
async function tinyFs(dir: string): Promise<string | undefined> {
  if (!isRoot) return undefined;
  await mkdir(dir, { recursive: true });
  const r = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tapedeck-test', dir], { timeoutMs: 10_000 });
  return r.code === 0 ? dir : undefined;
}

async function unmount(dir: string): Promise<void> {
  await run('umount', ['-l', dir], { timeoutMs: 10_000 });
}

test('defect 2: a cache on a full file system never cuts or corrupts a response: every byte, or a 503', async (t) => {
  const { dir, items } = await library([
    { id: 'a', size: 3 * 1024 * KB + 333, label: 'TD0001L9' },
    { id: 'b', size: 1500 * KB, label: 'TD0001L9' },
    { id: 'c', size: 2 * 1024 * KB + 5, label: 'TD0002L9' },
  ]);
  const cacheDir = join(dir, 'tiny');
  const mounted = await tinyFs(cacheDir);
  t.teardown(async () => {
    if (mounted) await unmount(mounted);
    await removeDir(dir);
  });
  const w = await startWorker(dir, items, { readAhead: 4 * SEG }, { cacheDir });
  try {
    if (!mounted) {
      t.log(isRoot ? 'tmpfs mount failed: injecting ENOSPC instead' : 'not root: no tmpfs, injecting ENOSPC into cache writes instead');
      await w.client.debug('injectCacheError', { errno: 'ENOSPC', after: 700 * KB });
    }
    const check = checker(t, w, items);
    for (const id of ['a', 'b', 'c']) await check(id);
    // again (some segments are cached now, others are not), and ranges across segment boundaries
    for (const id of ['a', 'b', 'c']) await check(id);
    await check('a', [SEG - 10, 9 * SEG + 10]);
    await check('c', [5 * SEG + 7, 2 * 1024 * KB]);
    const st = await w.client.status();
    t.true(st.worker!.counters.cacheWriteErrors! >= 1, 'the write errors were seen');
    t.true(st.worker!.counters.uncachedReads! >= 1, 'bytes went straight from tape to the client');
  } finally {
    await w.stop();
  }
});

test('a failed sync of a finished cache segment never cuts or corrupts a response: readers told it was complete get every byte', async (t) => {
  const { dir, items } = await library([
    { id: 'a', size: 1024 * KB + 77, label: 'TD0001L9' },
    { id: 'b', size: 700 * KB, label: 'TD0001L9' },
  ]);
  t.teardown(() => removeDir(dir));
  const w = await startWorker(dir, items, { readAhead: 4 * SEG });
  try {
    // every segment sync fails: each segment is announced complete, then cannot be kept
    await w.client.debug('injectSyncError', { errno: 'EIO', count: 1000 });
    const check = checker(t, w, items);
    // two readers of the same item at once (one coalesces onto the other's segments), then again
    await Promise.all([check('a'), check('a', [SEG + 5, 9 * SEG])]);
    await Promise.all([check('b'), check('a')]);
    await check('b', [3 * SEG - 1, 5 * SEG + 1]);
    const st = await w.client.status();
    t.true(st.worker!.counters.cacheWriteErrors! >= 1, 'the sync errors count as cache write errors');
    t.is(st.worker!.counters.cacheSegments, 0, 'no segment whose sync failed is kept as cached');
  } finally {
    await w.stop();
  }
});
