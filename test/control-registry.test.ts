// The registry of running servers ($XDG_RUNTIME_DIR/tapedeck, else $TMPDIR/tapedeck-<uid>):
// notes go only into a directory that is this user's own.

import test from 'ava';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerServer, registryDir, runningServers } from '../src/control/registry.js';

const dirs: string[] = [];
test.after.always(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function fixture() {
  const root = mkdtempSync(join(tmpdir(), 'tapedeck-registry-'));
  dirs.push(root);
  const env = { XDG_RUNTIME_DIR: join(root, 'run') };
  mkdirSync(env.XDG_RUNTIME_DIR, { mode: 0o700 });
  const data = join(root, 'data');
  mkdirSync(data);
  const socket = join(data, 'control.sock');
  writeFileSync(socket, ''); // stands in for the socket: runningServers checks that it exists
  const note = join(registryDir(env), createHash('sha256').update(socket).digest('hex').slice(0, 16) + '.json');
  return { root, env, data, socket, note };
}

test('a server notes itself in its own registry directory and is found there', async (t) => {
  const { env, data, socket, note } = fixture();
  const remove = await registerServer(socket, env);
  t.deepEqual(JSON.parse(readFileSync(note, 'utf8')), { pid: process.pid, dataDir: data, socket });
  t.deepEqual(await runningServers(env).then((l) => l.filter((s) => s.dataDir === data)), [{ pid: process.pid, dataDir: data, socket }]);
  await remove();
  t.deepEqual(await runningServers(env).then((l) => l.filter((s) => s.dataDir === data)), []);
});

test('a registry directory others may write to (made first by another user) is neither written through nor read', async (t) => {
  const { root, env, data, socket, note } = fixture();
  const dir = registryDir(env);
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  // a link planted at the note's (predictable) name: the server must not write through it
  const victim = join(root, 'victim');
  writeFileSync(victim, 'precious\n');
  symlinkSync(victim, note);
  const remove = await registerServer(socket, env);
  t.is(readFileSync(victim, 'utf8'), 'precious\n', 'nothing written through the planted link');
  await remove();
  // a note planted there is no running server
  rmSync(note);
  const other = join(root, 'elsewhere');
  mkdirSync(other);
  writeFileSync(join(other, 'control.sock'), '');
  writeFileSync(join(dir, 'planted.json'), JSON.stringify({ pid: process.pid, dataDir: other, socket: join(other, 'control.sock') }));
  t.deepEqual(await runningServers(env).then((l) => l.filter((s) => s.dataDir === other || s.dataDir === data)), []);
});

test('a registry directory owned by another user is not used (root only: needs chown)', async (t) => {
  if (process.getuid?.() !== 0) {
    t.log('skipped: needs root to give the directory to another user');
    t.pass();
    return;
  }
  const { root, env, socket, note } = fixture();
  const dir = registryDir(env);
  mkdirSync(dir, { mode: 0o755 });
  chownSync(dir, 65534, 65534);
  const victim = join(root, 'victim');
  writeFileSync(victim, 'precious\n');
  symlinkSync(victim, note);
  await (await registerServer(socket, env))();
  t.is(readFileSync(victim, 'utf8'), 'precious\n');
});
