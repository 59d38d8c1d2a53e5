// A SIGTERM while `tapedeck serve` is still starting (catalog, staging worker spawn, control
// socket, HTTP listen, scan, watch) stops it in order and exits 0, like a stop after start.
// Before the fix, a stop while the staging worker was being prepared left the spawned worker
// unkilled and stop() waited for it forever; and start went on listening after "stopped".
// Real processes on loopback (SSDP off), a few signal delays, each wait bounded.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { jsonLines, REPO_ROOT } from './helpers/lab.js';

type Line = { msg?: string; urls?: unknown };

// after the first log line (the demo library is ready): the worker spawn window is the first ~50 ms
const DELAYS_MS = [0, 10, 20, 40, 80, 200, 600];
// what start() logs as it brings a part up: none may come after "shutting down"
const STARTED = [/^control socket listening/, /^serving "/, /^watching \d+ director/, /^staging worker \d+ ready/];

for (const delay of DELAYS_MS) {
  test.serial(`SIGTERM ${delay} ms into start: ordered stop, exit 0`, async (t) => {
    t.timeout(90_000);
    const dir = await mkdtemp(join(tmpdir(), 'tapedeck-stopstart-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'empty.conf'), '');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', join(dir, 'empty.conf'), '--data', join(dir, 'data'), '--cache-dir', join(dir, 'cache'), '--tape-dir', join(dir, 'tape'), '--interface', 'lo', '--port', '0', '--no-ssdp', '--tape-time-scale', '0'],
      { cwd: REPO_ROOT, stdio: 'pipe' },
    );
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const srv = jsonLines<Line>(child);
    await srv.waitFor(() => true, 60_000, 'the first log line');
    await sleep(delay);
    child.kill('SIGTERM');
    const code = await srv.exited(20_000); // a hang fails here (the teardown kills it)
    const msgs = srv.lines.map((l) => l.msg ?? '');
    t.is(code, 0, msgs.join(' | '));
    const down = msgs.indexOf('shutting down');
    t.true(down >= 0, 'the stop ran');
    t.is(msgs.at(-1), 'stopped');
    const late = msgs.slice(down).filter((m) => STARTED.some((re) => re.test(m)));
    t.deepEqual(late, [], 'nothing starts after the stop began');
  });
}
