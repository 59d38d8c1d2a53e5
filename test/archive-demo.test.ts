// Demo mode: part of the demo library (the video and the first album) goes to
// the virtual tape with head stubs; the rest stays on disk.
import test from 'ava';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { createDemoLibrary } from '../src/media/demo.js';
import { scan } from '../src/scanner/scanner.js';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { ArchiveService } from '../src/archive/service.js';
import { archiveDemo, demoArchiveSet } from '../src/archive/demo.js';
import { stubFileOk } from '../src/archive/stubs.js';
import { readThroughCatalog } from './fixtures/archive/setup.js';

test('archiveDemo puts the video and the first album on tape, keeping stubs, and is idempotent', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-demo-arch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  const demo = join(data, 'demo');
  const { files } = await createDemoLibrary(demo);
  const contents = new Map(await Promise.all(files.map(async (f) => [f, await readFile(f)] as const)));
  const config = loadConfig({ env: {}, flags: { data, tapeTimeScale: '0', logLevel: 'silent' } });
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await scan(catalog, { roots: [demo], ffprobe: 'off' });
  const library = await VirtualTapeLibrary.open(config.tape.dir, { timeScale: 0, capacityBytes: config.tape.capacity });
  t.teardown(() => library.close());
  const service = new ArchiveService({ catalog, library, config, log: silentLogger });
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
      t.is(item.location!.stub!.ranges[0].start, 0);
      await t.throwsAsync(() => access(item.origPath!), undefined, `${rel} removed from disk`);
    }
    t.true((await readThroughCatalog({ library }, item)).equals(contents.get(item.origPath!)!), rel);
  }
  t.deepEqual((await service.tapeStatus()).cartridges.map((c) => [c.label, c.pool, c.items]), [['TD0001L9', true, want.size]]);
  t.is(await archiveDemo(service, catalog), undefined, 'nothing left to do');
});
