// A pre-stage (prefetch priority) gives its drive to playback that waits for it as soon as it
// made progress, instead of reading its whole range first. One drive; the drive's reads are
// held at a gate until the playback request is queued, so the order is deterministic.

import test from 'ava';
import { join } from 'node:path';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { buildLibrary, fetchMedia, inProcessStager, removeDir, sha256, tempDir, settle } from './fixtures/staging/harness.js';

const KB = 1024;
const SEG = 64 * KB;

test('a pre-stage gives the drive to waiting playback after its first reads, then goes on', async (t) => {
  const dir = await tempDir();
  const items = await buildLibrary(dir, [
    { id: 'p', size: 16 * SEG, label: 'TD0001L9' },
    { id: 'q', size: 2 * SEG, label: 'TD0002L9' },
  ]);
  const vlib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { timeScale: 0 });
  t.is(vlib.drives.length, 1);
  const drive = vlib.drives[0]!;
  let open = false;
  const read = drive.readBlocks.bind(drive);
  (drive as { readBlocks: typeof drive.readBlocks }).readBlocks = async (n) => {
    while (!open) await new Promise((r) => setTimeout(r, 5));
    return read(n);
  };
  const rig = await inProcessStager(dir, vlib, items, { cacheSize: 64 << 20, admissionTimeoutMs: 30_000, tuning: { segmentSize: SEG, readAhead: 256 * KB, maxChunk: SEG } });
  const { worker, client } = rig;
  try {
    const p = items.get('p')!;
    // the pre-stage of the whole of p at prefetch priority (it may mount: a browse-ahead load)
    let prestagedAtPlayback = -1;
    worker.scheduler.on('admit', (e: { priority: string }) => {
      if (e.priority === 'interactive' && prestagedAtPlayback < 0) prestagedAtPlayback = worker.counters.prestagedBytes;
    });
    t.true(client.prestage({ id: 'p', tape: p.obj.location!.tape! }, 0, 16 * SEG, true));
    t.true(await settle(() => worker.counters.passes >= 1, 30_000, 10), 'the pre-stage holds the drive');
    const q = fetchMedia(rig.port, 'q', { timeoutMs: 20_000 });
    t.true(await settle(() => worker.scheduler.playbackWaiting(), 30_000, 10), 'playback waits for the only drive');
    open = true;
    const got = await q;
    t.true(got.complete);
    t.is(sha256(got.body), items.get('q')!.sha256);
    t.true(prestagedAtPlayback >= 0 && prestagedAtPlayback < 16 * SEG, `playback got the drive after ${prestagedAtPlayback} pre-staged bytes, not after all ${16 * SEG}`);
    t.true(worker.counters.prefetchYields >= 1);
    // the pre-stage goes on afterwards and completes
    t.true(await settle(() => worker.counters.prestagedBytes >= 16 * SEG && worker.reads.activeRequests() === 0, 10_000, 10), `pre-staged ${worker.counters.prestagedBytes}`);
  } finally {
    open = true;
    await rig.stop();
    await removeDir(dir);
  }
});
