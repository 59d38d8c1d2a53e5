// `tapedeck scan` (the command) with art on: the videos' frames (an ffmpeg each) are made after the
// walk, scan_threads + 1 at once, not one by one inside it; the catalog ends as before, every
// video with its frame art.
import test from 'ava';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { LevelStore, MemoryStore } from '../src/catalog/store.js';
import { ArtMaker } from '../src/art/maker.js';
import { probe } from '../src/media/probe.js';
import { scan, scanDeferredArt } from '../src/scanner/scanner.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import { findFfmpeg } from '../src/art/sources.js';
import { encodeFlac } from '../src/demo/flac.js';
import { REPO_ROOT } from '../src/util/paths.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'media');
const ffmpeg = await findFfmpeg();

/** Runs `tapedeck scan ... --json`; stdout is the result, stderr the progress lines. */
function tapedeckScan(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'scan', '--json', ...args], { cwd: REPO_ROOT, env: { ...process.env, TAPEDECK_CONFIG: '', INIT_CWD: '', ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/** A library of `n` videos (copies of the fixture clips, each its own file) and one track. */
async function library(dir: string, n: number): Promise<string[]> {
  const media = join(dir, 'media');
  await mkdir(join(media, 'Video'), { recursive: true });
  await mkdir(join(media, 'Music'), { recursive: true });
  const videos: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = join(media, 'Video', i % 2 ? `film ${i}.mp4` : `film ${i}.mkv`);
    await copyFile(join(FIXTURES, i % 2 ? 'clip-720p.mp4' : 'clip.mkv'), p);
    videos.push(p);
  }
  const samples = new Int16Array(800).map((_, i) => Math.round(3000 * Math.sin(i / 5)));
  await writeFile(join(media, 'Music', '01 Track.flac'), encodeFlac({ sampleRate: 8000, channels: 1, samples: [samples], tags: { TITLE: 'Track', ARTIST: 'Artist', ALBUM: 'Album', TRACKNUMBER: 1 } }));
  return videos;
}

async function artOf(data: string, videos: string[]) {
  const catalog = new Catalog(new LevelStore(join(data, 'catalog')));
  await catalog.open();
  try {
    return await Promise.all(videos.map(async (v) => (await catalog.get(itemIdForPath(v)))?.art));
  } finally {
    await catalog.close();
  }
}

(ffmpeg ? test : test.skip)('tapedeck scan makes every video its frame art with ffmpeg, after the walk; a rescan makes none again', async (t) => {
  t.timeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-scanframes-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const videos = await library(dir, 4);
  const data = join(dir, 'data');
  const r = await tapedeckScan(['--media', join(dir, 'media'), '--data', data, '--scan-threads', '1']);
  t.is(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  t.is(j.scan.seen, 5);
  t.is(j.scan.framesDeferred, 4, 'no frame made inside the walk');
  t.deepEqual([j.frames.videos, j.frames.concurrency], [4, 2]);
  t.is(j.library.video, 4);
  const lines = r.err.split('\n');
  const scanned = lines.findIndex((l) => l.startsWith('scanned 5 files'));
  const frames = lines.findIndex((l) => /^video frames: 4 videos in [\d.]+ s, 2 at once$/.test(l));
  t.true(scanned >= 0 && frames > scanned, r.err);
  const art = await artOf(data, videos);
  t.true(
    art.every((a) => a?.key),
    'every video has its frame art',
  );
  t.true((await readdir(join(data, 'art'), { recursive: true })).some((f) => String(f).endsWith('.jpg')));

  const again = await tapedeckScan(['--media', join(dir, 'media'), '--data', data]);
  t.is(again.code, 0, again.err);
  const k = JSON.parse(again.out);
  t.deepEqual([k.scan.probed, k.scan.framesDeferred, k.frames], [0, undefined, undefined]);
  t.deepEqual(await artOf(data, videos), art);
});
if (!ffmpeg) test('tapedeck scan with a real ffmpeg (skipped: ffmpeg is not on PATH; ./run test installs it)', (t) => t.pass());

test('tapedeck scan runs scan_threads + 1 ffmpeg at once for the frames (a stand-in ffmpeg that waits for a second run)', async (t) => {
  t.timeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-scanframes-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const videos = await library(dir, 4);
  // each run marks itself in flight and waits until two are (or it is the last of the four), then
  // notes how many were and answers a JPEG; one at a time would note 1 each, after the wait's bound
  // (8 s: below the 10 s the art maker gives ffmpeg)
  const bin = join(dir, 'bin');
  await mkdir(bin);
  const runs = join(dir, 'runs');
  await mkdir(runs);
  const jpeg = join(REPO_ROOT, 'devices', 'icons', 'icon-120.jpg');
  await writeFile(
    join(bin, 'ffmpeg'),
    `#!/bin/sh
mkdir '${runs}/run.'$$ '${runs}/started.'$$
n=0
while [ "$(ls -d '${runs}'/run.* | wc -l)" -lt 2 ] && [ "$(ls -d '${runs}'/started.* | wc -l)" -lt 4 ] && [ $n -lt 160 ]; do sleep 0.05; n=$((n+1)); done
ls -d '${runs}'/run.* | wc -l >> '${join(dir, 'seen')}'
cat '${jpeg}'
rmdir '${runs}/run.'$$
`,
    { mode: 0o755 },
  );
  const data = join(dir, 'data');
  const r = await tapedeckScan(['--media', join(dir, 'media'), '--data', data, '--scan-threads', '1', '--ffprobe', 'off'], { PATH: `${bin}:${process.env.PATH}` });
  t.is(r.code, 0, r.err);
  t.deepEqual(JSON.parse(r.out).frames, { videos: 4, concurrency: 2, elapsedMs: JSON.parse(r.out).frames.elapsedMs });
  const seen = (await readFile(join(dir, 'seen'), 'utf8')).trim().split('\n').map(Number);
  t.is(seen.length, 4, 'one ffmpeg run per video');
  t.is(Math.max(...seen), 2, `runs in flight together: ${seen.join(', ')}`);
  t.true((await artOf(data, videos)).every((a) => a?.key));
});

test("the frame pass takes a video's kind and duration from its item: the file is not read (probed) again", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-scanframes-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const videos = await library(dir, 2);
  const calls = join(dir, 'calls');
  const fake = join(dir, 'ffmpeg');
  await writeFile(fake, `#!/bin/sh\necho "$@" >> '${calls}'\ncat '${join(REPO_ROOT, 'devices', 'icons', 'icon-120.jpg')}'\n`, { mode: 0o755 });
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const probed: string[] = [];
  const counting = (p: string, known?: { size: number; mtime: number }) => {
    probed.push(p);
    return probe(p, { ffprobe: false, known });
  };
  const art = new ArtMaker({ dataDir: join(dir, 'data'), ffmpeg: fake });
  const opts = { roots: [join(dir, 'media')], art, probe: counting };
  const r = await scan(catalog, { ...opts, deferFrames: true });
  t.is(r.framesDeferred, 2);
  const before = probed.length;
  t.is((await scanDeferredArt(catalog, opts)).made, 2);
  t.is(probed.length, before, 'no probe in the frame pass');
  const ran = (await readFile(calls, 'utf8')).trim().split('\n');
  for (const v of videos) {
    const item = (await catalog.get(itemIdForPath(v)))!;
    t.truthy(item.art?.key, v);
    const at = (item.res!.duration! * 0.1).toFixed(3);
    t.true(
      ran.some((line) => line.includes(`-ss ${at} -i ${v} `)),
      `${v}: frame at 10% of its catalogued duration (${at} s): ${ran.join(' | ')}`,
    );
  }
});
