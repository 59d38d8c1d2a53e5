// A client that took every byte of an archived item at once (a large buffer, or the server's
// read-ahead) still plays it for the item's duration: its cartridge counts as in use until
// then (read holdMs), so the next item of the album or season on it needs no mount. A client
// that leaves early holds nothing. In-process worker, virtual library, fake clock.

import test from 'ava';
import { join } from 'node:path';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { buildLibrary, fetchMedia, inProcessStager, removeDir, tempDir, type ItemSpec, settle } from './fixtures/staging/harness.js';

const KB = 1024;
const LABEL = 'TD0001L9';

async function inProcess(specs: ItemSpec[], bitrate: number | undefined, playbackTimeScale?: number) {
  const dir = await tempDir();
  const items = await buildLibrary(dir, specs);
  for (const it of items.values()) if (bitrate) it.obj.res!.bitrate = bitrate;
  let clock = 1_000_000;
  const vlib = await VirtualTapeLibrary.open(join(dir, 'vtl'), { timeScale: 0 });
  const s = await inProcessStager(dir, vlib, items, {
    cacheSize: 128 << 20,
    tuning: { segmentSize: 64 * KB, readAhead: 256 * KB, maxChunk: 64 * KB },
    now: () => clock,
    ...(playbackTimeScale ? { playbackTimeScale } : {}),
  });
  return {
    items,
    worker: s.worker,
    port: s.port,
    advance: (ms: number) => (clock += ms),
    async done() {
      await s.stop();
      await removeDir(dir);
    },
  };
}

test('a client that took a whole item keeps its cartridge in use until the item has played (bitrate), not longer', async (t) => {
  // 512 KiB at 1 KiB/s: 512 s of playback
  const r = await inProcess([{ id: 'a', size: 512 * KB, label: LABEL }], 1024);
  try {
    const f = await fetchMedia(r.port, 'a');
    t.true(f.complete && f.body.equals(r.items.get('a')!.data));
    t.true(await settle(() => r.worker.reads.activeRequests() === 0), 'the request ended');
    t.true(r.worker.reads.streaming(LABEL), 'played for 512 s from now: in use');
    r.advance(500_000);
    t.true(r.worker.reads.streaming(LABEL), 'still playing after 500 s');
    r.advance(13_000);
    t.false(r.worker.reads.streaming(LABEL), 'played out after 513 s');
  } finally {
    await r.done();
  }
});

test('no hold without a known playback rate, nor for a client that left before taking every byte', async (t) => {
  const r = await inProcess([{ id: 'a', size: 512 * KB, label: LABEL }], undefined);
  try {
    const f = await fetchMedia(r.port, 'a');
    t.true(f.complete);
    t.true(await settle(() => r.worker.reads.activeRequests() === 0));
    t.false(r.worker.reads.streaming(LABEL), 'rate unknown: nothing held');
  } finally {
    await r.done();
  }
  // 32 MiB: far more than socket buffers hold, so the server cannot have taken every byte
  const q = await inProcess([{ id: 'b', size: 32 * 1024 * KB, label: LABEL }], 1024);
  try {
    const f = await fetchMedia(q.port, 'b', { onData: (n, req) => n >= 64 * KB && req.destroy() });
    t.false(f.complete && f.body.length === 32 * 1024 * KB);
    t.true(await settle(() => q.worker.reads.activeRequests() === 0), 'the request ended');
    t.false(q.worker.reads.streaming(LABEL), 'the client left: nothing held');
  } finally {
    await q.done();
  }
});

test('a time-compressed server (playbackTimeScale) holds for the compressed playback time', async (t) => {
  // 512 s of playback at 1/4: 128 s
  const r = await inProcess([{ id: 'a', size: 512 * KB, label: LABEL }], 1024, 0.25);
  try {
    t.true((await fetchMedia(r.port, 'a')).complete);
    t.true(await settle(() => r.worker.reads.activeRequests() === 0));
    r.advance(120_000);
    t.true(r.worker.reads.streaming(LABEL));
    r.advance(10_000);
    t.false(r.worker.reads.streaming(LABEL));
  } finally {
    await r.done();
  }
});
