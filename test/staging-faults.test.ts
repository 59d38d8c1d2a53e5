// Issue 13 against the real server and the real staging worker process (on
// loopback, no SSDP): a restart on a cache directory that holds a partial,
// unindexed segment (defect 1). Every response is checked byte for byte, or must
// be a 503, within a bounded time.

import test from 'ava';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prng } from '../src/util/prng.js';
import { fetchMedia, removeDir, tempDir } from './fixtures/staging/harness.js';
import { cli, itemPaths, startServer } from './fixtures/staging/real-server.js';

const MB = 1024 * 1024;
/** No request may wait longer than this (the server runs at tape time scale 0.02). */
const BOUND_MS = 30_000;

/** `size` bytes from a seeded PRNG. */
export function pseudoRandom(size: number, seed: number): Buffer {
  const r = prng(seed);
  const b = Buffer.allocUnsafe(size + 3);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(Math.floor(r() * 4294967296), i);
  return b.subarray(0, size);
}

async function setup(files: Record<string, number>): Promise<{ dir: string; data: string; media: string; content: Map<string, Buffer> }> {
  const dir = await tempDir('tapedeck-faults-');
  const data = join(dir, 'data');
  const media = join(dir, 'media');
  await mkdir(media, { recursive: true });
  const content = new Map<string, Buffer>();
  let seed = 1;
  for (const [name, size] of Object.entries(files)) {
    const b = pseudoRandom(size, seed++);
    await writeFile(join(media, name), b);
    content.set(name, b);
  }
  return { dir, data, media, content };
}

test.serial('defect 1, real server: SIGTERM with a partial unindexed segment in the cache, restart, the whole item plays byte-exact', async (t) => {
  const s = await setup({ 'big.mkv': 16_000_000 });
  const want = s.content.get('big.mkv')!;
  let srv = await startServer(s.data, s.media);
  try {
    t.is((await cli(s.data, ['tape', 'label'])).code, 0);
    const a = await cli(s.data, ['archive', join(s.media, 'big.mkv')]);
    t.is(a.code, 0, a.stderr);
    const path = (await itemPaths(srv.port)).get('big')!;
    t.truthy(path);
    const id = path.slice('/media/'.length);
    const r = await fetchMedia(srv.port, id, { range: 'bytes=5000000-5999999', timeoutMs: BOUND_MS });
    t.is(r.status, 206);
    t.true(r.body.equals(want.subarray(5_000_000, 6_000_000)));
    t.is(await srv.stop(), 0);

    // the condition of the report: segment 1 indexed, segment 2 partial and not in the index
    const cache = join(s.data, 'cache');
    const itemDir = (await readdir(cache)).find((n) => /^[ih]/.test(n))!;
    const journal = await readFile(join(cache, 'index.jsonl'), 'utf8');
    t.regex(journal, /"op":"add","d":"[^"]+","seg":1,/);
    t.notRegex(journal, /"seg":2,/);
    t.true((await stat(join(cache, itemDir, '2'))).size < 4 * MB, 'a partial segment 2 is on disk');

    srv = await startServer(s.data, s.media);
    const full = await fetchMedia(srv.port, id, { timeoutMs: BOUND_MS });
    t.false(full.timedOut ?? false, `no hang: ${full.body.length} of ${want.length} bytes before the client gave up`);
    t.is(full.status, 200);
    t.true(full.complete);
    t.true(full.body.equals(want), 'every byte');
    const tail = await fetchMedia(srv.port, id, { range: 'bytes=8388000-9000000', timeoutMs: BOUND_MS });
    t.is(tail.status, 206);
    t.true(tail.body.equals(want.subarray(8_388_000, 9_000_001)));
  } finally {
    await srv.kill();
    await removeDir(s.dir);
  }
});
