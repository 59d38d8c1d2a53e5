import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import jpeg from 'jpeg-js';
import { createDemoLibrary, DEMO_MANIFEST, DEMO_PICTURES, DEMO_PLAYLIST, DEMO_SUBTITLE, DEMO_TRACKS, DEMO_VIDEOS } from '../src/demo/library.js';
import { findFfprobe, probe } from '../src/media/probe.js';

let tmp: string;
let dir: string;
let files: string[];

test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tapedeck-demo-'));
  dir = join(tmp, 'library');
  ({ files } = await createDemoLibrary(dir));
});

test.after.always(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function walk(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

test.serial('layout: Music/<Artist>/<Album>/<NN Title>.flac, Pictures/<Year>/, Video/', async (t) => {
  const rel = files.map((f) => relative(dir, f)).sort();
  const expected = [...DEMO_TRACKS.map((x) => x.relPath), ...DEMO_PICTURES.map((x) => x.relPath), ...DEMO_VIDEOS.filter((v) => !v.needsFfmpeg).map((x) => x.relPath), DEMO_SUBTITLE.relPath, DEMO_PLAYLIST.relPath].sort();
  t.deepEqual(rel, expected);
  t.is(DEMO_TRACKS.length, 12);
  t.is(new Set(DEMO_TRACKS.map((x) => x.artist)).size, 2);
  t.is(new Set(DEMO_TRACKS.map((x) => `${x.artist}/${x.album}`)).size, 4);
  t.true(new Set(DEMO_TRACKS.map((x) => x.genre)).size >= 2);
  for (const tr of DEMO_TRACKS) t.is(tr.relPath, `Music/${tr.artist}/${tr.album}/${String(tr.trackNumber).padStart(2, '0')} ${tr.title}.flac`);
  for (const p of DEMO_PICTURES) t.regex(p.relPath, new RegExp(`^Pictures/${p.date.slice(0, 4)}/`));
  t.true(new Set(DEMO_PICTURES.map((p) => p.date.slice(0, 7))).size >= 5, 'pictures spread over several years and months');
  // the playlist lists the first track of every album, relative to itself
  const m3u = await readFile(join(dir, DEMO_PLAYLIST.relPath), 'utf8');
  t.is(m3u.split('\n').filter((l) => l.startsWith('../Music/')).length, 4);
  t.is(m3u.split('\n').filter((l) => l.startsWith('#EXTINF:4,')).length, 4);
  // Nothing but the media files, the playlist and the manifest.
  const all = (await walk(dir)).map((f) => relative(dir, f)).sort();
  t.deepEqual(all, [...expected, DEMO_MANIFEST].sort());
});

test.serial('small: whole library under 10 MB', async (t) => {
  let total = 0;
  for (const f of files) total += (await stat(f)).size;
  t.true(total < 10 * 1024 * 1024, `total ${total}`);
  t.true(total > 500 * 1024, 'but not empty either');
});

test.serial('every track probes back with the tags written', async (t) => {
  for (const tr of DEMO_TRACKS) {
    const r = await probe(join(dir, tr.relPath), { ffprobe: false });
    t.truthy(r, tr.relPath);
    t.is(r!.kind, 'audio');
    t.is(r!.title, tr.title);
    t.deepEqual(r!.meta, {
      artist: tr.artist,
      albumArtist: tr.albumArtist,
      album: tr.album,
      genre: tr.genre,
      date: tr.date,
      trackNumber: tr.trackNumber,
      discNumber: tr.discNumber,
      creator: tr.artist,
    });
    t.is(r!.res.duration, tr.duration);
    t.is(r!.res.sampleFrequency, tr.sampleRate);
    t.is(r!.res.nrAudioChannels, tr.channels);
    t.is(r!.res.mime, 'audio/flac');
  }
});

test.serial('every picture probes back with its size and date', async (t) => {
  for (const p of DEMO_PICTURES) {
    const r = await probe(join(dir, p.relPath), { ffprobe: false });
    t.is(r?.kind, 'image', p.relPath);
    t.is(r?.title, p.title);
    t.is(r?.res.mime, p.mime);
    t.is(r?.res.width, p.width);
    t.is(r?.res.height, p.height);
    t.is(r?.meta.date, p.date, p.relPath);
    t.truthy(r?.res.dlnaProfile, p.relPath);
  }
});

test.serial('the JPEGs decode (independent decoder) to the stated size and colours', async (t) => {
  const p = DEMO_PICTURES.find((x) => x.relPath.endsWith('Colour Bars.jpg'))!;
  const img = jpeg.decode(await readFile(join(dir, p.relPath)), { useTArray: true });
  t.is(img.width, p.width);
  t.is(img.height, p.height);
  // Leftmost bar is light grey (192,192,192), the second yellow (192,192,0): sample their centres.
  const px = (x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 3));
  const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 12);
  t.true(near(px(30, 100), [192, 192, 192]), String(px(30, 100)));
  t.true(near(px(100, 100), [192, 192, 0]), String(px(100, 100)));
});

test.serial('the video probes back', async (t) => {
  const v = DEMO_VIDEOS[0];
  const r = await probe(join(dir, v.relPath), { ffprobe: false });
  t.like(r, { kind: 'video', title: v.title });
  t.like(r?.res, { width: v.width, height: v.height, duration: v.duration, videoCodec: 'mjpeg', container: 'avi' });
});

function run(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? 1 : 0, stdout, stderr });
    });
  });
}

test.serial('ffmpeg decodes the files without errors (CRC-checked FLAC, AVI frames)', async (t) => {
  const ffprobe = await findFfprobe();
  const ffmpeg = ffprobe ? join(dirname(ffprobe), 'ffmpeg') : undefined;
  if (!ffprobe || !ffmpeg || !(await stat(ffmpeg).catch(() => undefined))) {
    t.log('ffmpeg/ffprobe not on PATH: decoder check skipped');
    t.pass();
    return;
  }
  // One track per album (one per waveform), every picture, the video.
  const checked = files.filter((f) => !f.endsWith('.m3u8') && !f.endsWith('.srt') && (!f.endsWith('.flac') || /\/01 [^/]+\.flac$/.test(f)));
  t.is(checked.length, 4 + DEMO_PICTURES.length + 1);
  for (const f of checked) {
    const r = await run(ffmpeg, ['-nostdin', '-v', 'error', '-err_detect', 'crccheck+bitstream+explode', '-i', f, '-f', 'null', '-']);
    t.is(r.code, 0, `${f}: ${r.stderr}`);
    t.is(r.stderr.trim(), '', f);
  }
  const avi = join(dir, DEMO_VIDEOS[0].relPath);
  const r = await run(ffprobe, ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,nb_read_frames', '-of', 'json', avi]);
  const streams = JSON.parse(r.stdout).streams as { codec_name: string; nb_read_frames: string }[];
  t.is(streams.find((s) => s.codec_name === 'mjpeg')?.nb_read_frames, String(DEMO_VIDEOS[0].fps * DEMO_VIDEOS[0].duration));
  t.truthy(streams.find((s) => s.codec_name === 'pcm_s16le'));
});

test.serial('idempotent: a second run rewrites nothing', async (t) => {
  const before = new Map<string, { mtimeMs: number; ino: number }>();
  for (const f of [...files, join(dir, DEMO_MANIFEST)]) {
    const s = await stat(f);
    before.set(f, { mtimeMs: s.mtimeMs, ino: s.ino });
  }
  const again = await createDemoLibrary(dir);
  t.deepEqual(again.files, files);
  for (const [f, s] of before) {
    const now = await stat(f);
    t.is(now.ino, s.ino, f);
    t.is(now.mtimeMs, s.mtimeMs, f);
  }
});

test.serial('repair: missing or damaged files come back byte for byte, others stay', async (t) => {
  const gone = join(dir, DEMO_TRACKS[4].relPath);
  const cut = join(dir, DEMO_PICTURES[2].relPath);
  const kept = join(dir, DEMO_TRACKS[0].relPath);
  const goneHash = await sha(gone);
  const cutHash = await sha(cut);
  const keptIno = (await stat(kept)).ino;
  await unlink(gone);
  await truncate(cut, 100);
  const again = await createDemoLibrary(dir);
  t.deepEqual(again.files, files);
  t.is(await sha(gone), goneHash);
  t.is(await sha(cut), cutHash);
  t.is((await stat(kept)).ino, keptIno);
});

test.serial('a lost manifest is rebuilt; generation is deterministic', async (t) => {
  const sample = join(dir, DEMO_PICTURES[0].relPath);
  const hash = await sha(sample);
  await writeFile(join(dir, DEMO_MANIFEST), 'not json');
  await createDemoLibrary(dir);
  t.is(await sha(sample), hash);
  const manifest = JSON.parse(await readFile(join(dir, DEMO_MANIFEST), 'utf8'));
  t.is(Object.keys(manifest.files).length, files.length);
});
