// A stop of the staging client while its worker is saying hello: the worker must not be taken
// into use after the stop began. serve-stop-during-start met this under load ("staging worker N
// ready" logged after "shutting down"): the worker's hello arrived between the server's SIGTERM
// and the worker's exit, and the client logged it ready and kept the connection of a stopped
// client. The hello is held here (Connection.handshake wrapped) until stop() has begun, so the
// order is the same on any machine; real worker process, no network.

import test from 'ava';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { StagerClient } from '../src/staging/client.js';
import { Connection } from '../src/staging/connection.js';
import { removeDir, tempDir, testConfig } from './fixtures/staging/harness.js';

test.serial('stop() during the worker handshake: the worker is not logged ready nor used, stop() ends', async (t) => {
  await holdHello(t, (client) => client.stop());
});

// The server's stop() logs "shutting down" and calls beginStop() at once, but reaches the
// client's stop() only after SSDP, HTTP, the watch and the policy have stopped: a hello arriving
// in between was taken into use (serve-stop-during-start 'SIGTERM 200 ms', under load).
test.serial('beginStop() during the worker handshake: the worker is not taken into use nor restarted; stop() later ends', async (t) => {
  await holdHello(t, async (client) => {
    let restarts = 0;
    client.on('restart', () => restarts++);
    client.beginStop();
    return async () => {
      // the dropped worker exits by itself (it lost its connection); nothing is spawned after it
      await new Promise((r) => setTimeout(r, 300));
      t.is(restarts, 0, 'no worker restarted while the server stops');
      await client.stop();
    };
  });
});

/**
 * Starts a client whose worker's hello is held until `during` ran (stop() or beginStop(); it may
 * answer a finish step), then checks that nothing was logged ready after it and no connection is kept.
 */
async function holdHello(t: import('ava').ExecutionContext, during: (client: StagerClient) => Promise<unknown>): Promise<void> {
  t.timeout(120_000);
  const dir = await tempDir('tapedeck-stophello-');
  t.teardown(() => removeDir(dir));
  const lines: { msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as { msg: string });
      cb();
    },
  });
  let helloArrived!: () => void;
  const arrived = new Promise<void>((r) => (helloArrived = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const handshake = Connection.prototype.handshake;
  Connection.prototype.handshake = async function (this: Connection, ms: number) {
    const hello = await handshake.call(this, ms);
    helloArrived();
    await released;
    return hello;
  };
  t.teardown(() => {
    Connection.prototype.handshake = handshake;
  });
  const client = new StagerClient({ config: testConfig(dir), log: pino({ level: 'info' }, sink), backoffMs: [50, 100] });
  const started = client.start(90_000);
  await arrived; // the worker has said hello; the client has not taken it yet
  const stopping = during(client);
  lines.push({ msg: 'STOP' });
  release();
  const finish = await stopping;
  await started;
  t.false(client.connected, 'no worker connection taken after the stop began');
  if (typeof finish === 'function') await (finish as () => Promise<void>)();
  const msgs = lines.map((l) => l.msg);
  t.deepEqual(msgs.slice(msgs.indexOf('STOP')).filter((m) => /ready/.test(m)), [], msgs.join(' | '));
  t.false(client.connected, 'a stopped client has no worker connection');
}
