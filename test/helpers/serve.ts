// The real server on loopback (SSDP off, no tape tier) on a media directory, for tests that talk
// HTTP/SOAP to it; it is killed when the test ends.
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonLines, REPO_ROOT, type JsonLineProcess } from './lab.js';

type Line = Record<string, any>;

export async function serveMedia(t: ExecutionContext, media: string, extra: string[] = []): Promise<{ base: string; dir: string; srv: JsonLineProcess<Line> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-srv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'empty.conf'), '');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', join(dir, 'empty.conf'), '--data', join(dir, 'data'), '--media', media, '--interface', 'lo', '--port', '0', '--no-ssdp', '--tape-backend', 'none', '--rescan-interval', '0', '--no-watch', ...extra],
    { cwd: REPO_ROOT, stdio: 'pipe' },
  );
  const srv = jsonLines<Line>(child);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = (await srv.waitFor((l) => Array.isArray(l.urls), 30_000, 'serving line')).urls[0] as string;
  await srv.waitFor((l) => l.scan?.done === true, 60_000, 'first scan');
  return { base: url.replace(/\/$/, ''), dir, srv };
}
