// Demo mode: part of the demo library (the video and the first album) goes to
// the virtual tape with head stubs; the rest stays on disk.
import test, { type ExecutionContext } from 'ava';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { createDemoLibrary } from '../src/demo/library.js';
import { scan } from '../src/scanner/scanner.js';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { ArchiveService } from '../src/archive/service.js';
import { archiveDemo, DEMO_STUB, demoArchiveSet } from '../src/demo/tape.js';
import { stubFileOk } from '../src/archive/stubs.js';
import { readThroughCatalog } from './fixtures/archive/setup.js';

/** The demo library scanned into a memory catalog, with a virtual library (no delays) and an archive service. */
async function demoLab(t: ExecutionContext) {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-demo-arch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  const demo = join(data, 'demo');
  const { files } = await createDemoLibrary(demo);
  const config = loadConfig({ env: {}, flags: { data, tapeTimeScale: '0', logLevel: 'silent' } });
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await scan(catalog, { roots: [demo], ffprobe: 'off' });
  const library = await VirtualTapeLibrary.open(config.tape.dir, { timeScale: 0, capacityBytes: config.tape.capacity });
  t.teardown(() => library.close());
  const service = new ArchiveService({ catalog, library, config, log: silentLogger });
  return { files, catalog, library, service };
}

test('archiveDemo puts the video and the first album on tape, keeping stubs, and is idempotent', async (t) => {
  const { files, catalog, library, service } = await demoLab(t);
  const contents = new Map(await Promise.all(files.map(async (f) => [f, await readFile(f)] as const)));
  const job = await archiveDemo(service, catalog);
  t.is(job?.state, 'done', job?.reason);
  const want = demoArchiveSet();
  t.is(job!.result!.archived, want.size);
  for (const item of await catalog.items()) {
    const rel = item.relPath!.split(sep).join('/');
    const archived = want.has(rel);
    t.is(!!item.location!.tape, archived, rel);
    t.is(!item.location!.disk, archived, rel);
    if (archived) {
      t.true(await stubFileOk(item.location!.stub!), `${rel} stub`);
      const stub = item.location!.stub!;
      const size = item.location!.tape!.size;
      t.is(stub.ranges[0].start, 0);
      t.is(stub.ranges[stub.ranges.length - 1].end, size, `${rel}: the tail (AVI index, tags) is in the stub`);
      const kept = stub.ranges.reduce((n, r) => n + r.end - r.start, 0);
      t.is(kept, DEMO_STUB.headMin! + DEMO_STUB.tailBytes!, `${rel}: head and tail only`);
      t.true(kept < size / 2, `${rel}: most of the file is only on tape, so playing it reads tape (stub ${kept} of ${size} bytes)`);
      await t.throwsAsync(() => access(item.origPath!), undefined, `${rel} removed from disk`);
    }
    t.true((await readThroughCatalog({ library }, item)).equals(contents.get(item.origPath!)!), rel);
  }
  t.deepEqual((await service.tapeStatus()).cartridges.map((c) => [c.label, c.pool, c.items]), [['TD0001L9', true, want.size]]);
  t.is(await archiveDemo(service, catalog), undefined, 'nothing left to do');
});

test('a job keeps its own stub sizes in its record; bad ones are refused before anything is queued', async (t) => {
  const { catalog, service } = await demoLab(t);
  await service.ensurePool();
  const id = (await catalog.items())[0].id;
  for (const bad of [{ headMin: -1 }, { tailBytes: Number.NaN }, { headSeconds: '5' as unknown as number }]) {
    const err = await t.throwsAsync(() => service.submit('archive', [id], { stub: bad }));
    t.regex(err!.message, /stub \w+ must be a non-negative number/);
  }
  t.deepEqual(await service.list(), [], 'nothing queued');
  const job = await service.submit('archive', [id], { stub: { headSeconds: 0, headMin: 1024, tailBytes: 0 } });
  t.deepEqual(job.opts, { stub: { headSeconds: 0, headMin: 1024, tailBytes: 0 } });
  const done = await service.run(job.id);
  t.is(done.state, 'done', done.reason);
  const stub = (await catalog.get(id))!.location!.stub!;
  t.deepEqual(stub.ranges, [{ start: 0, end: 1024 }], 'head of 1 KiB, no tail');
});
