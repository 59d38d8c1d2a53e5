// The probe pool (src/media/probe-pool.ts): worker threads give what probe() gives in this
// thread, keep the error codes the scanner acts on, fall back to this thread when workers cannot
// start, and a scan through the pool catalogues the same items.
import test from 'ava';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { createDemoLibrary } from '../src/demo/library.js';
import { probe } from '../src/media/probe.js';
import { ProbePool } from '../src/media/probe-pool.js';
import { scan } from '../src/scanner/scanner.js';
import { REPO_ROOT } from '../src/util/paths.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'media');
let tmp: string;
let demo: string;

test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tapedeck-pool-'));
  demo = join(tmp, 'demo');
  await createDemoLibrary(demo);
  for (const f of ['tone.mp3', 'tone.m4a', 'tone.ogg', 'clip-720p.mp4', 'clip.mkv']) await copyFile(join(FIXTURES, f), join(demo, f));
});

test.after.always(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const files = () => ['Music/The Sine Waves/First Light/01 Dawn.flac', 'Video/Counting Clock.avi', 'tone.mp3', 'tone.m4a', 'tone.ogg', 'clip-720p.mp4', 'clip.mkv'].map((f) => join(demo, f));

/** Waits (bounded) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 60_000; !cond(); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > end) throw new Error(`not within 60 s: ${what}`);
}

test('worker threads give what probe() gives in this thread, embedded pictures included', async (t) => {
  const pool = new ProbePool(2);
  t.teardown(() => pool.close());
  const opts = { ffprobe: false as const, pictures: true };
  // until a worker has loaded, probes run in this thread; then in the workers
  t.truthy(await pool.probe(files()[0], opts));
  t.is(pool.running, 2);
  await until(() => pool.ready === 2, 'both workers ready');
  const got = await Promise.all(files().map((f) => pool.probe(f, opts)));
  t.is(pool.broken, undefined);
  for (const [i, f] of files().entries()) {
    const want = await probe(f, opts);
    t.truthy(want, f);
    // a picture comes back as a Uint8Array (structured clone), with the same bytes
    t.deepEqual({ ...got[i], picture: undefined }, { ...want, picture: undefined }, f);
    t.deepEqual(got[i]?.picture && Buffer.from(got[i]!.picture!.data), want?.picture && Buffer.from(want.picture.data), f);
  }
  t.is(await pool.probe(join(demo, 'gone.flac'), { ffprobe: false, known: { size: 10, mtime: 0 } }), undefined, 'a file gone since the walk');
  // a scan is over: the workers end now; the next probe starts one again
  t.true(pool.running > 0);
  await pool.release();
  t.is(pool.running, 0);
  t.deepEqual(await pool.probe(files()[2], { ffprobe: false }), await probe(files()[2], { ffprobe: false }));
  t.is(pool.running, 2, 'the next probe starts them again (it runs here meanwhile)');
});

test('workers that cannot start: every probe runs in this thread', async (t) => {
  const bad = join(tmp, 'bad-worker.mjs');
  await writeFile(bad, "throw new Error('no worker here');\n");
  const pool = new ProbePool(1, pathToFileURL(bad));
  t.teardown(() => pool.close());
  const got = await Promise.all(files().map((f) => pool.probe(f, { ffprobe: false })));
  await until(() => pool.broken !== undefined, 'the pool given up');
  t.regex(pool.broken ?? '', /cannot start/);
  for (const [i, f] of files().entries()) t.deepEqual(got[i], await probe(f, { ffprobe: false }), f);
  t.deepEqual(await pool.probe(files()[0], { ffprobe: false }), await probe(files()[0], { ffprobe: false }));
});

test('a scan through the pool catalogues what a scan in this thread does', async (t) => {
  const scanWith = async (pool?: ProbePool) => {
    const catalog = new Catalog(new MemoryStore());
    await catalog.open();
    const r = await scan(catalog, { roots: [demo], pool, ffprobe: 'off' });
    const items = (await catalog.items()).map((o) => JSON.stringify({ ...o, added: undefined, changed: undefined })).sort();
    return { r, items };
  };
  const pool = new ProbePool(2);
  t.teardown(() => pool.close());
  const a = await scanWith(pool);
  const b = await scanWith();
  t.is(a.r.failed, 0);
  t.is(a.r.probed, b.r.probed);
  t.true(a.items.length > 10);
  t.deepEqual(a.items, b.items);
});

test('the probes asked for in one turn go to a worker in one message, and their answers come back batched', async (t) => {
  // a worker that answers every request with the size of the message it came in
  const recorder = join(tmp, 'recording-worker.mjs');
  await writeFile(
    recorder,
    `import { parentPort } from 'node:worker_threads';
parentPort.postMessage({ ready: true });
parentPort.on('message', (reqs) => parentPort.postMessage(reqs.map((r) => ({ id: r.id, result: { title: String(reqs.length) } }))));
`,
  );
  const pool = new ProbePool(1, pathToFileURL(recorder));
  t.teardown(() => pool.close());
  await pool.probe(files()[0], { ffprobe: false }); // starts the worker (this one runs here)
  await until(() => pool.ready === 1, 'the worker ready');
  const got = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.probe(`/nowhere/${i}.flac`, { ffprobe: false })));
  t.deepEqual(
    got.map((r) => r?.title),
    Array(6).fill('6'),
  );
});

test('a worker reads small files with blocking calls and gives what probe() gives, errors included', async (t) => {
  for (const f of files()) t.deepEqual(await probe(f, { ffprobe: false, pictures: true, blockingReads: true }), await probe(f, { ffprobe: false, pictures: true }), f);
  // shorter than the walk saw (cut since): what is there is read
  const cut = join(tmp, 'cut.flac');
  await copyFile(files()[0], cut);
  const whole = await probe(cut, { ffprobe: false });
  const known = { size: (whole?.res.size ?? 0) + 100, mtime: 0 };
  t.is((await probe(cut, { ffprobe: false, blockingReads: true, known }))?.title, whole?.title);
  t.is(await probe(join(tmp, 'gone.flac'), { ffprobe: false, blockingReads: true, known }), undefined, 'gone since the walk');
  if (process.getuid?.() !== 0) {
    const locked = join(tmp, 'locked.flac');
    await copyFile(files()[0], locked);
    await (await import('node:fs/promises')).chmod(locked, 0);
    await t.throwsAsync(probe(locked, { ffprobe: false, blockingReads: true }), { code: 'EACCES' });
  }
});
