// A disk file truncated by another program after it was catalogued: the media request answers
// 503 + Retry-After before any byte (never a Content-Length it cannot keep), and the server
// catalogues the file again, so the retry gets its new size. Loopback only, SSDP off.
import test from 'ava';
import http from 'node:http';
import { copyFile, mkdir, mkdtemp, rm, truncate, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TapedeckServer } from '../src/server.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { itemAt } from './fixtures/archive/setup.js';
import { settle } from './fixtures/staging/harness.js';

function get(port: number, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; length: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let length = 0;
        res.on('data', (c: Buffer) => (length += c.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, length }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

test('a file truncated since the scan: 503 + Retry-After, then the catalog learns its size and the retry gets the whole (shorter) file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-stale-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const media = join(dir, 'media');
  await mkdir(media);
  const file = join(media, 'tone.mp3');
  await copyFile(join(import.meta.dirname, 'fixtures/media/tone.mp3'), file);
  const conf = join(dir, 'empty.conf');
  await writeFile(conf, '');
  const flags = { config: conf, data: join(dir, 'data'), media: [media], interface: ['lo'], port: '0', ssdp: 'false', tapeBackend: 'none', rescanInterval: '0', watch: 'false', logLevel: 'silent' };
  const srv = new TapedeckServer(loadConfig({ flags, env: {} as NodeJS.ProcessEnv }), createLogger('silent'));
  await srv.start();
  try {
    await srv.ready;
    const item = await itemAt(srv.catalog, file);
    const full = (await stat(file)).size;
    t.is(item.location?.disk?.size, full);
    const half = Math.floor(full / 2);
    await truncate(file, half); // another program truncates the file; no watch, no periodic rescan
    const first = await get(srv.port, `/media/${item.id}`);
    t.is(first.status, 503);
    t.truthy(first.headers['retry-after']);
    let size: number | undefined;
    t.true(
      await settle(() => {
        void srv.catalog.get(item.id).then((o) => (size = o?.location?.disk?.size));
        return size === half;
      }, 30_000),
      `the catalog learnt the new size (${size})`,
    );
    const retry = await get(srv.port, `/media/${item.id}`);
    t.is(retry.status, 200);
    t.is(Number(retry.headers['content-length']), half);
    t.is(retry.length, half);
  } finally {
    await srv.stop();
  }
});
