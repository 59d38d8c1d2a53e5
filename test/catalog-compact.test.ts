// The catalog is compacted after a full scan (issue 11, memory that does not grow with the
// library): LevelDB keeps every overwritten version until its own compactions reach it, and
// LevelDB 1.20 maps each table file it reads into the process for as long as the file lives,
// so what a scan rewrote stayed resident. After compact() the files hold the live data only,
// and the files it replaced are gone (and unmapped) even when an iterator was reading them.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { createDemoLibrary } from '../src/demo/library.js';
import { jsonLines, REPO_ROOT } from './helpers/lab.js';
import { tempDir, tempLevelStore } from './helpers/temp.js';

const tables = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.ldb'));
const bytes = (dir: string) => tables(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

test('LevelStore.compact leaves the live data only and drops the replaced tables, also those an iterator was reading', async (t) => {
  const { store, dir } = await tempLevelStore(t, 'tapedeck-compact-');
  // three versions of 20,000 entries: ~8 MB written, ~2.7 MB live (several table files)
  const pad = 'x'.repeat(120);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 20_000; i += 1000) {
      await store.batch(Array.from({ length: 1000 }, (_, j) => ({ type: 'put' as const, key: `k/${String(i + j).padStart(6, '0')}`, value: `${round}${pad}` })));
    }
  }
  const before = tables(dir);
  const sizeBefore = bytes(dir);
  t.true(before.length > 1, `tables before: ${before.join(',')}`);

  // an iterator open across the compaction pins the tables it reads
  const reading = store.entries({ gte: 'k/' })[Symbol.asyncIterator]();
  t.truthy((await reading.next()).value);
  await store.compact();
  await reading.return?.();
  await store.dropObsolete();

  const after = tables(dir);
  t.deepEqual(after.filter((f) => before.includes(f)), [], 'every table the compaction replaced is deleted');
  t.true(bytes(dir) < sizeBefore / 2, `${bytes(dir)} bytes after, ${sizeBefore} before`);
  if (existsSync('/proc/self/maps')) {
    const mapped = readFileSync('/proc/self/maps', 'utf8');
    t.deepEqual(before.filter((f) => mapped.includes(join(dir, f))), [], 'and no longer mapped into the process');
  }
  t.is((await store.get('k/000000'))?.[0], '2');
  t.is((await store.get('k/019999'))?.[0], '2');
  t.is((await store.keyList({ gte: 'k/', lt: 'k/\uffff' })).length, 20_000);
});

/**
 * LevelDB's LOG and LOG.old: every open of the database renames LOG to LOG.old, and the server
 * reopens the catalog right after the compaction (on a loaded machine before the test reads LOG).
 * In the restarted server's run both are that run's (its first open and at least one reopen).
 */
function leveldbLogs(data: string): string {
  const read = (name: string) => (existsSync(join(data, 'catalog', name)) ? readFileSync(join(data, 'catalog', name), 'utf8') : '');
  return read('LOG.old') + read('LOG');
}

test('the server compacts the catalog after a full scan, and not after a restart whose rescan changed nothing (loopback, SSDP off)', async (t) => {
  t.timeout(180_000);
  const dir = await tempDir(t, 'tapedeck-compact-srv-');
  const { files } = await createDemoLibrary(join(dir, 'demo'));
  const media = join(dir, 'media');
  await mkdir(media, { recursive: true });
  for (const f of files.filter((x) => x.endsWith('.flac')).slice(0, 3)) await copyFile(f, join(media, f.split('/').pop()!));
  const conf = join(dir, 'empty.conf');
  await writeFile(conf, '');
  const data = join(dir, 'data');
  const env = { ...process.env, TAPEDECK_CONFIG: '', INIT_CWD: '', XDG_RUNTIME_DIR: dir };
  const serve = () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', conf, '--data', data, '--media', media, '--interface', 'lo', '--port', '0', '--no-ssdp', '--tape-backend', 'none', '--rescan-interval', '0', '--no-watch'],
      { cwd: REPO_ROOT, stdio: 'pipe', env },
    );
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return jsonLines<Record<string, any>>(child);
  };
  const srv = serve();
  const scanned = await srv.waitFor((l) => l.scan?.done === true, 60_000, 'first scan');
  t.is(scanned.scan.seen, 3);
  const compacted = await srv.waitFor((l) => l.catalog?.compactMs !== undefined, 60_000, 'the compaction after the scan');
  t.regex(compacted.msg, /^catalog compacted in \d+ ms$/);
  t.regex(leveldbLogs(data), /Manual compaction/, "LevelDB's own log shows it");
  // and then opened again (its table pages leave the process)
  const reopened = await srv.waitFor((l) => l.catalog?.reopenMs !== undefined, 60_000, 'the reopen after the compaction');
  t.is(reopened.catalog.after, 'scan');
  srv.child.kill('SIGTERM');
  t.is(await srv.exited(15_000), 0);

  // restarted on the same library: its rescan writes nothing, so there is nothing to compact
  const again = serve();
  const rescanned = await again.waitFor((l) => l.scan?.done === true, 60_000, 'the rescan at restart');
  t.deepEqual([rescanned.scan.unchanged, rescanned.scan.probed, rescanned.scan.written ?? 0], [3, 0, 0]);
  // a second rescan, asked over the control socket, runs after anything the first one queued
  const asked = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'scan', '--config', conf, '--data', data, '--json'], { cwd: REPO_ROOT, stdio: 'pipe', env });
  const answer = jsonLines<Record<string, any>>(asked);
  t.is(await answer.exited(60_000), 0, answer.stderr());
  t.is(answer.lines[0]?.scan?.unchanged, 3);
  // a rescan that wrote nothing still read every path entry: reopened after each
  t.true(again.lines.filter((l) => l.catalog?.reopenMs !== undefined).length >= 1);
  t.deepEqual(
    again.lines.filter((l) => l.catalog?.compactMs !== undefined),
    [],
    'no compaction after a rescan that changed nothing',
  );
  t.false(/Manual compaction/.test(leveldbLogs(data)), "LevelDB's log of this run has none");
  again.child.kill('SIGTERM');
  t.is(await again.exited(15_000), 0);
});

test('the server compacts the catalog after its video-frame pass, before the requests that follow read it (loopback, SSDP off)', async (t) => {
  // The pass rewrites every video with its art. Without a compaction after it, the table those
  // writes land in spans the whole key range and LevelDB merges it into the bottom level when
  // reads have looked through it often enough: ~20 MB rewritten at 100,000 items on the time of
  // the requests after the pass (issue 11 item 6: uncached Search CPU per request grew 1.6x).
  t.timeout(180_000);
  const dir = await tempDir(t, 'tapedeck-compact-frames-');
  const media = join(dir, 'media');
  await mkdir(media, { recursive: true });
  await copyFile(join(REPO_ROOT, 'test', 'fixtures', 'media', 'clip.mkv'), join(media, 'clip.mkv'));
  // a stand-in ffmpeg on PATH: the frame is a small JPEG whatever the video (no real decoder needed)
  const bin = join(dir, 'bin');
  await mkdir(bin);
  const frame = join(dir, 'frame.jpg');
  await writeFile(frame, await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 200, b: 0 } } }).jpeg().toBuffer());
  await writeFile(join(bin, 'ffmpeg'), `#!/bin/sh\ncat '${frame}'\n`, { mode: 0o755 });
  const conf = join(dir, 'empty.conf');
  await writeFile(conf, '');
  const data = join(dir, 'data');
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, TAPEDECK_CONFIG: '', INIT_CWD: '', XDG_RUNTIME_DIR: dir };
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', conf, '--data', data, '--media', media, '--interface', 'lo', '--port', '0', '--no-ssdp', '--tape-backend', 'none', '--rescan-interval', '0', '--no-watch', '--ffprobe', 'off'],
    { cwd: REPO_ROOT, stdio: 'pipe', env },
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const srv = jsonLines<Record<string, any>>(child);
  const made = await srv.waitFor((l) => l.art?.videos !== undefined, 120_000, 'the video-frame pass');
  t.is(made.art.videos, 1);
  const compactions = srv.lines.filter((l) => l.catalog?.compactMs !== undefined).map((l) => l.catalog.after);
  t.deepEqual(compactions, ['scan', 'video frames'], 'compacted after the scan and after the frame pass');
  const reopens = srv.lines.filter((l) => l.catalog?.reopenMs !== undefined).map((l) => l.catalog.after);
  t.is(reopens[reopens.length - 1], 'video frames', 'then opened again');
  child.kill('SIGTERM');
  t.is(await srv.exited(15_000), 0);
});
