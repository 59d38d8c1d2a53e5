// No loop without progress in the staging worker (issue 13, defect 1): a drive
// that keeps answering reads with nothing (no data, no mark) fails the request
// with a clear error instead of being asked again forever.

import test from 'ava';
import { join } from 'node:path';
import { silentLogger } from '../src/log.js';
import { StagerClient } from '../src/staging/client.js';
import { StagingWorker } from '../src/staging/worker.js';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { libraryWithDriveHook } from './fixtures/archive/setup.js';
import { buildLibrary, fetchMedia, mediaServer, removeDir, tempDir, testConfig } from './fixtures/staging/harness.js';

const KB = 1024;

test('a drive whose reads return nothing fails the request (502), it does not spin', async (t) => {
  const dir = await tempDir();
  const items = await buildLibrary(dir, [{ id: 'void', size: 300 * KB, label: 'TD0001L9' }]);
  const vlib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { timeScale: 0 });
  let reads = 0;
  const lib = libraryWithDriveHook(vlib, (_d, op) =>
    op === 'readBlocks'
      ? async () => {
          reads++;
          return { data: Buffer.alloc(0) };
        }
      : undefined,
  );
  const worker = await StagingWorker.create({
    library: lib,
    cacheDir: join(dir, 'cache'),
    cacheSize: 16 << 20,
    admissionTimeoutMs: 5000,
    idleUnloadMs: 0,
    tuning: { segmentSize: 64 * KB, readAhead: 256 * KB, maxChunk: 64 * KB },
  });
  const sock = join(dir, 'stager.sock');
  await worker.listen(sock);
  const client = new StagerClient({ config: { ...testConfig(dir), stager: sock }, log: silentLogger, backoffMs: [50, 200] });
  await client.start();
  const srv = await mediaServer(async (id) => (items.get(id) ? client.source(items.get(id)!.obj) : undefined));
  try {
    const f = await fetchMedia(srv.port, 'void', { timeoutMs: 8000 });
    t.false(f.timedOut ?? false, 'answered');
    t.is(f.status, 502);
    t.regex(f.body.toString(), /reads in a row returned no data/);
    t.true(reads <= 10, `the drive was asked ${reads} times`);
  } finally {
    await srv.close();
    await client.stop();
    await worker.close();
    await vlib.close();
    await removeDir(dir);
  }
});
