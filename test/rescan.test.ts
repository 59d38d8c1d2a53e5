// The running server notices new, changed and deleted files without a restart: an incremental
// rescan every rescan_interval seconds. Loopback only, SSDP off.
import test from 'ava';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoLibrary } from '../src/demo/library.js';
import { jsonLines, REPO_ROOT } from './helpers/lab.js';

type Line = Record<string, any>;

test('files added and deleted while the server runs show up within the rescan interval', async (t) => {
  t.timeout(60_000);
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-rescan-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const demo = join(dir, 'demo');
  const { files } = await createDemoLibrary(demo);
  const tracks = files.filter((f) => f.endsWith('.flac'));
  const media = join(dir, 'media');
  await mkdir(media);
  await copyFile(tracks[0]!, join(media, 'one.flac'));
  const conf = join(dir, 'empty.conf');
  await writeFile(conf, '');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', conf, '--data', join(dir, 'data'), '--media', media, '--interface', 'lo', '--port', '0', '--no-ssdp', '--tape-backend', 'none', '--rescan-interval', '1'],
    { cwd: REPO_ROOT, stdio: 'pipe' },
  );
  const srv = jsonLines<Line>(child);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const scans = () => srv.lines.filter((l) => l.scan?.done);
  await srv.waitFor((l) => l.scan?.done === true, 30_000, 'first scan');
  t.is(scans()[0]!.scan.probed, 1);

  await copyFile(tracks[1]!, join(media, 'two.flac'));
  const added = await srv.waitFor((l) => l.scan?.done === true && l.scan.probed === 1 && l.scan.seen === 2, 15_000, 'a rescan that finds the new file');
  t.is(added.scan.removed, 0);
  await rm(join(media, 'one.flac'));
  const removed = await srv.waitFor((l) => l.scan?.done === true && l.scan.removed === 1, 15_000, 'a rescan that drops the deleted file');
  t.is(removed.scan.seen, 1);
  // and a rescan with nothing new reads nothing
  const n = scans().length;
  const quiet = await srv.waitFor((l) => l.scan?.done === true && scans().indexOf(l) >= n, 15_000, 'a quiet rescan');
  t.deepEqual([quiet.scan.probed, quiet.scan.removed, quiet.scan.unchanged], [0, 0, 1]);

  child.kill('SIGTERM');
  t.is(await srv.exited(15_000), 0);
});
