// `tapedeck scan` scans the media directories the configuration names (--media, media_dir in the
// config file, TAPEDECK_MEDIA_DIR). With none and no server in that data directory to ask, it
// says "no media directories configured" and exits 2 (bad configuration), making nothing: it does
// not build the demo library into an operator's data directory and scan that.

import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeFlac } from '../src/demo/flac.js';
import { REPO_ROOT } from '../src/util/paths.js';
import { tempDir } from './helpers/temp.js';

function tapedeckScan(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const clean = { ...process.env };
    delete clean.TAPEDECK_MEDIA_DIR;
    delete clean.TAPEDECK_DATA_DIR;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'scan', '--json', '--scan-threads', '0', ...args], { cwd: REPO_ROOT, env: { ...clean, TAPEDECK_CONFIG: '', INIT_CWD: '', ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

async function oneTrack(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const samples = new Int16Array(800).map((_, i) => Math.round(3000 * Math.sin(i / 5)));
  await writeFile(join(dir, 'track.flac'), encodeFlac({ sampleRate: 8000, channels: 1, samples: [samples], tags: { TITLE: 'Track', ARTIST: 'A', ALBUM: 'B' } }));
  return dir;
}

test('tapedeck scan without media directories and without a server: exit 2 "no media directories configured", nothing made', async (t) => {
  t.timeout(120_000);
  const dir = await tempDir(t, 'tapedeck-scan-nomedia-');
  const data = join(dir, 'data');
  const fresh = await tapedeckScan(['--data', data]);
  t.is(fresh.code, 2, fresh.err);
  t.regex(fresh.err, /^tapedeck: no media directories configured: give --media DIR \(repeatable\), media_dir in the config file or TAPEDECK_MEDIA_DIR/);
  t.is(fresh.out, '');
  t.false(existsSync(data), 'no data directory made');
  const empty = join(dir, 'empty');
  await mkdir(empty);
  const inEmpty = await tapedeckScan(['--data', empty]);
  t.is(inEmpty.code, 2, inEmpty.err);
  t.deepEqual(await readdir(empty), [], 'no catalog made in an existing, empty data directory');

  // a data directory with a catalog already (scanned with --media before), no server running: exit 2 too, no demo library
  const media = await oneTrack(join(dir, 'media'));
  const first = await tapedeckScan(['--data', data, '--media', media]);
  t.is(first.code, 0, first.err);
  t.is(JSON.parse(first.out).library.items, 1);
  const again = await tapedeckScan(['--data', data]);
  t.is(again.code, 2, again.err);
  t.regex(again.err, /no media directories configured/);
  t.false((await readdir(data)).includes('demo'), 'no demo library built');

  // the media directories of the config file or the environment are scanned
  const conf = join(dir, 'tapedeck.conf');
  await writeFile(conf, `media_dir = ${media}\n`);
  const fromFile = await tapedeckScan(['--data', data, '--config', conf]);
  t.is(fromFile.code, 0, fromFile.err);
  t.is(JSON.parse(fromFile.out).library.items, 1);
  const fromEnv = await tapedeckScan(['--data', data], { TAPEDECK_MEDIA_DIR: media });
  t.is(fromEnv.code, 0, fromEnv.err);
  t.is(JSON.parse(fromEnv.out).library.items, 1);
});
