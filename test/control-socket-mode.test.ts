// The control socket is never connectable by other users, not even between bind(2) and chmod:
// it is created 0600 whatever the process umask.
import test from 'ava';
import net from 'node:net';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlServer } from '../src/control/server.js';

test('the control socket is 0600 from the moment it exists, with a permissive umask (0000)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-ctlmode-'));
  const socketPath = join(dir, 'control.sock');
  // the mode right after bind(2), before the server's chmod: read when listen() returns
  const origListen = net.Server.prototype.listen;
  let modeAtBind: number | undefined;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    const r = (origListen as (...a: unknown[]) => net.Server).apply(this, args);
    if (args[0] === socketPath) modeAtBind = statSync(socketPath).mode & 0o777;
    return r;
  } as typeof origListen;
  const umask = process.umask(0);
  let ctl: Awaited<ReturnType<typeof startControlServer>> | undefined;
  try {
    ctl = await startControlServer({ socketPath, archive: {} as never });
  } finally {
    net.Server.prototype.listen = origListen;
    process.umask(umask);
  }
  t.teardown(async () => {
    await ctl?.close();
    await rm(dir, { recursive: true, force: true });
  });
  t.is(modeAtBind, 0o600, `mode at bind ${modeAtBind?.toString(8)}`);
  t.is(statSync(socketPath).mode & 0o777, 0o600);
  const now = process.umask(umask); // reading it means setting it
  t.is(now, umask, 'the process umask is restored');
});
