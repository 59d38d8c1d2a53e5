// HEAD (and GET) of an archived item: leaves nothing behind when its client goes.

import test from 'ava';
import http from 'node:http';
import { join } from 'node:path';
import { silentLogger } from '../src/log.js';
import { StagerClient } from '../src/staging/client.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { mediaServer, removeDir, settle, tempDir, testConfig } from './fixtures/staging/harness.js';

function archived(id: string, label: string): CatalogObject {
  const size = 1 << 20;
  return {
    id,
    parentId: '0',
    title: id,
    container: false,
    res: { mime: 'video/x-matroska', size },
    location: { tape: { label, tapeFile: 0, block: 0, offset: 512, size, sha256: '0'.repeat(64), blockSize: 16384 } },
  } as CatalogObject;
}

/**
 * A `method` request of an archived item while no staging worker is there (a stager socket nobody
 * listens on: the request waits for one, up to connectWaitMs, long here); its client then leaves.
 */
async function clientLeavesWhileWaiting(t: import('ava').ExecutionContext, method: 'HEAD' | 'GET'): Promise<void> {
  const dir = await tempDir();
  const client = new StagerClient({ config: testConfig(dir, { stager: join(dir, 'nobody.sock') }), log: silentLogger, connectWaitMs: 600_000, backoffMs: [50, 200] });
  await client.start(0);
  const obj = archived('item', 'TD0001L9');
  let finished = 0;
  const srv = await mediaServer(async () => client.source(obj));
  const waiters = () => (client as unknown as { connWaiters: Set<unknown> }).connWaiters.size;
  try {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path: '/media/item', method });
    req.on('error', () => undefined);
    req.on('response', () => finished++);
    req.end();
    t.true(await settle(() => waiters() === 1), `the ${method} waits for the worker`);
    req.destroy();
    t.true(await settle(() => waiters() === 0), 'its wait (and its timer) ended with the client');
    t.is(finished, 0);
    t.deepEqual(srv.errors, [], 'no error answered to nobody');
    t.is(client.stats().rejected503, 0, 'no 503 counted for a client that left');
  } finally {
    await srv.close();
    await client.stop();
    await removeDir(dir);
  }
}

test('a HEAD waiting for the staging worker stops waiting when its client disconnects: the wait is released, nothing is answered', (t) => clientLeavesWhileWaiting(t, 'HEAD'));

test('a GET waiting for the staging worker stops waiting when its client disconnects: the wait is released, nothing is answered', (t) => clientLeavesWhileWaiting(t, 'GET'));
