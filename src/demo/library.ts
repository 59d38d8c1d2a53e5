// The demo library: a small, fully generated media collection used when no
// media directory is configured. Pure JS, no network; deterministic output.
//
//   <dir>/Music/<Artist>/<Album>/<NN Title>.flac   12 tagged FLAC tracks (2 artists × 2 albums × 3)
//   <dir>/Pictures/<Year>/<Name>.jpg               JPEGs with EXIF DateTimeOriginal, plus one PNG
//   <dir>/Video/Counting Clock.avi                 MJPEG + PCM AVI, 5 s, with a sidecar SRT (Counting Clock.srt)
//   <dir>/Video/Test Pattern.mp4                   H.264/AAC, only with { ffmpeg } (optional)
//
// Idempotent: a manifest (.tapedeck-demo.json) records each file's size; files
// that exist with the recorded size are left alone, missing or different ones
// are (re)written (atomically: temp file + rename). Nothing else is touched.

import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeMjpegAvi } from './avi-writer.js';
import { encodeFlac } from './flac.js';
import { Canvas, circle, digit, encodeJpeg, encodePng, hsv, type RGBA, rgb, ring, roundRect, unpack } from './imagegen.js';
import { findFfprobe } from '../media/probe.js';

export const DEMO_VERSION = 1;
export const DEMO_MANIFEST = '.tapedeck-demo.json';

export interface DemoTrack {
  relPath: string;
  title: string;
  artist: string;
  albumArtist: string;
  album: string;
  genre: string;
  date: string; // YYYY-MM-DD
  trackNumber: number;
  discNumber: number;
  duration: number; // seconds
  sampleRate: number;
  channels: number;
}

export interface DemoPicture {
  relPath: string;
  title: string;
  width: number;
  height: number;
  /** ISO date the prober should report: EXIF DateTimeOriginal, or the file mtime for the PNG. */
  date: string;
  mime: 'image/jpeg' | 'image/png';
}

export interface DemoVideo {
  relPath: string;
  title: string;
  width: number;
  height: number;
  duration: number;
  fps: number;
  needsFfmpeg: boolean;
}

// --- the catalogue of the demo --------------------------------------------------

const TRACK_SECONDS = 4;
const SAMPLE_RATE = 44100;

type Wave = 'sine' | 'square' | 'saw';

interface AlbumSpec {
  artist: string;
  album: string;
  genre: string;
  date: string;
  wave: Wave;
  root: number; // MIDI note of the album's key
  titles: [string, string, string];
}

const ALBUMS: AlbumSpec[] = [
  { artist: 'The Sine Waves', album: 'First Light', genre: 'Ambient', date: '2019-04-12', wave: 'sine', root: 57, titles: ['Dawn', 'Morning Haze', 'Open Sky'] },
  { artist: 'The Sine Waves', album: 'Tidal', genre: 'Ambient', date: '2021-08-30', wave: 'sine', root: 62, titles: ['Low Tide', 'Undertow', 'Moonrise'] },
  { artist: 'Square Root', album: 'Eight Bit Garden', genre: 'Chiptune', date: '2020-02-29', wave: 'square', root: 60, titles: ['Pixel Bloom', 'Save Point', 'Bonus Round'] },
  { artist: 'Square Root', album: 'Overtones', genre: 'Electronic', date: '2023-11-03', wave: 'saw', root: 55, titles: ['Harmonic Drift', 'Resonance', 'Afterglow'] },
];

export const DEMO_TRACKS: DemoTrack[] = ALBUMS.flatMap((a) =>
  a.titles.map((title, i) => ({
    relPath: `Music/${a.artist}/${a.album}/${String(i + 1).padStart(2, '0')} ${title}.flac`,
    title,
    artist: a.artist,
    albumArtist: a.artist,
    album: a.album,
    genre: a.genre,
    date: a.date,
    trackNumber: i + 1,
    discNumber: 1,
    duration: TRACK_SECONDS,
    sampleRate: SAMPLE_RATE,
    channels: 2,
  })),
);

type Painter = (c: Canvas) => void;

interface PictureSpec extends DemoPicture {
  exifDate?: string; // EXIF form
  mtime?: Date;
  paint: Painter;
}

const PICTURES: PictureSpec[] = [
  { relPath: 'Pictures/2018/Sunset Gradient.jpg', title: 'Sunset Gradient', width: 1920, height: 1080, date: '2018-07-14T19:42:10', exifDate: '2018:07:14 19:42:10', mime: 'image/jpeg', paint: paintSunset },
  { relPath: 'Pictures/2018/Winter Rings.jpg', title: 'Winter Rings', width: 1024, height: 768, date: '2018-12-24T16:05:00', exifDate: '2018:12:24 16:05:00', mime: 'image/jpeg', paint: paintRings },
  { relPath: 'Pictures/2019/Checkerboard.jpg', title: 'Checkerboard', width: 640, height: 480, date: '2019-03-03T10:15:30', exifDate: '2019:03:03 10:15:30', mime: 'image/jpeg', paint: paintChecker },
  { relPath: 'Pictures/2021/Colour Bars.jpg', title: 'Colour Bars', width: 480, height: 640, date: '2021-05-09T08:30:00', exifDate: '2021:05:09 08:30:00', mime: 'image/jpeg', paint: paintBars },
  { relPath: 'Pictures/2021/Aurora.jpg', title: 'Aurora', width: 960, height: 540, date: '2021-09-21T22:10:45', exifDate: '2021:09:21 22:10:45', mime: 'image/jpeg', paint: paintAurora },
  { relPath: 'Pictures/2023/Mosaic.jpg', title: 'Mosaic', width: 800, height: 600, date: '2023-01-01T00:00:01', exifDate: '2023:01:01 00:00:01', mime: 'image/jpeg', paint: paintMosaic },
  { relPath: 'Pictures/2023/Tiny Tile.jpg', title: 'Tiny Tile', width: 160, height: 120, date: '2023-06-15T12:30:00', exifDate: '2023:06:15 12:30:00', mime: 'image/jpeg', paint: paintMosaic },
  { relPath: 'Pictures/2017/Colour Wheel.png', title: 'Colour Wheel', width: 400, height: 400, date: '2017-06-01T12:00:00Z', mtime: new Date('2017-06-01T12:00:00Z'), mime: 'image/png', paint: paintWheel },
];

export const DEMO_PICTURES: DemoPicture[] = PICTURES.map(({ relPath, title, width, height, date, mime }) => ({ relPath, title, width, height, date, mime }));

const CLOCK = { width: 320, height: 240, fps: 10, seconds: 5, audioRate: 22050 };

export const DEMO_VIDEOS: DemoVideo[] = [
  { relPath: 'Video/Counting Clock.avi', title: 'Counting Clock', width: CLOCK.width, height: CLOCK.height, duration: CLOCK.seconds, fps: CLOCK.fps, needsFfmpeg: false },
  { relPath: 'Video/Test Pattern.mp4', title: 'Test Pattern', width: 640, height: 360, duration: 4, fps: 25, needsFfmpeg: true },
];

// --- audio synthesis --------------------------------------------------------------

const TABLE_SIZE = 2048;

/** One band-limited cycle of the waveform for a note of `freq` Hz (harmonics below 10 kHz). */
function wavetable(wave: Wave, freq: number): Float64Array {
  const t = new Float64Array(TABLE_SIZE);
  const maxH = Math.max(1, Math.floor(10000 / freq));
  for (let h = 1; h <= (wave === 'sine' ? 1 : maxH); h++) {
    let amp: number;
    if (wave === 'sine') amp = 1;
    else if (wave === 'square') amp = h % 2 ? 1 / h : 0;
    else amp = 1 / h;
    if (!amp) continue;
    for (let i = 0; i < TABLE_SIZE; i++) t[i] += amp * Math.sin((2 * Math.PI * h * i) / TABLE_SIZE);
  }
  let peak = 0;
  for (const v of t) peak = Math.max(peak, Math.abs(v));
  for (let i = 0; i < TABLE_SIZE; i++) t[i] /= peak;
  return t;
}

const PENTATONIC = [0, 2, 4, 7, 9, 12, 14, 16];

/** A short melody: 8 notes of half a second, chosen by a small deterministic sequence. */
export function synthTrack(albumIndex: number, trackIndex: number, seconds = TRACK_SECONDS, rate = SAMPLE_RATE): Int16Array {
  const a = ALBUMS[albumIndex];
  const n = Math.round(seconds * rate);
  const out = new Int16Array(n);
  const notes = 8;
  const noteLen = Math.floor(n / notes);
  let seed = 7 + albumIndex * 31 + trackIndex * 101;
  const tables = new Map<number, Float64Array>();
  for (let k = 0; k < notes; k++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const midi = k === notes - 1 ? a.root : a.root + PENTATONIC[seed % PENTATONIC.length]; // end on the root
    const freq = 440 * 2 ** ((midi - 69) / 12);
    let table = tables.get(midi);
    if (!table) {
      table = wavetable(a.wave, freq);
      tables.set(midi, table);
    }
    const start = k * noteLen;
    const len = k === notes - 1 ? n - start : noteLen;
    const step = (freq * TABLE_SIZE) / rate;
    const attack = Math.floor(rate * (a.wave === 'sine' ? 0.06 : 0.01));
    const release = Math.floor(rate * 0.03);
    const level = (a.wave === 'sine' ? 0.45 : 0.25) * 32767;
    const decayPerSample = Math.exp(-1.6 / len); // exponential decay over the note, applied incrementally
    let decay = 1;
    let phase = 0;
    for (let i = 0; i < len; i++) {
      const ramp = i < attack ? i / attack : len - i < release ? (len - i) / release : 1;
      const p = phase | 0;
      const frac = phase - p;
      const v = table[p] * (1 - frac) + table[(p + 1) & (TABLE_SIZE - 1)] * frac;
      out[start + i] = Math.round(v * ramp * decay * level);
      decay *= decayPerSample;
      phase += step;
      if (phase >= TABLE_SIZE) phase -= TABLE_SIZE;
    }
  }
  return out;
}

function makeTrack(albumIndex: number, trackIndex: number): Buffer {
  const a = ALBUMS[albumIndex];
  const t = DEMO_TRACKS[albumIndex * 3 + trackIndex];
  const pcm = synthTrack(albumIndex, trackIndex);
  return encodeFlac({
    sampleRate: SAMPLE_RATE,
    channels: 2,
    samples: [pcm, pcm],
    tags: {
      TITLE: t.title,
      ARTIST: a.artist,
      ALBUMARTIST: a.artist,
      ALBUM: a.album,
      GENRE: a.genre,
      DATE: a.date,
      TRACKNUMBER: t.trackNumber,
      TRACKTOTAL: a.titles.length,
      DISCNUMBER: 1,
      COMMENT: 'Generated by Tapedeck',
    },
    picture: { mime: 'image/jpeg', data: albumCover(albumIndex), width: 300, height: 300 },
  });
}

/** An album's embedded front cover: rings in the album's hue (the same bytes for its three tracks). */
function albumCover(albumIndex: number): Buffer {
  const hue = (albumIndex * 0.27 + 0.05) % 1;
  const c = new Canvas(300, 300, [...unpack(hsv(hue, 0.5, 0.35)), 255]);
  for (let i = 0; i < 4; i++) c.paint(ring(150, 150, 30 + i * 28, 10), [...unpack(hsv((hue + i * 0.08) % 1, 0.8, 0.95)), 255]);
  return encodeJpeg(c, 85);
}

// --- pictures -----------------------------------------------------------------------

function paintSunset(c: Canvas): void {
  const { width: w, height: h } = c;
  const horizon = h * 0.68;
  c.shade((x, y) => {
    if (y < horizon) {
      const t = y / horizon;
      return rgb(60 + 195 * t, 30 + 110 * t * t, 110 - 60 * t);
    }
    const t = (y - horizon) / (h - horizon);
    const wave = 0.5 + 0.5 * Math.sin(y * 0.35 + Math.sin(x * 0.01) * 3);
    return rgb(40 + 80 * (1 - t) * wave, 30 + 40 * (1 - t), 70 + 50 * t);
  });
  c.paint(circle(w * 0.5, horizon, h * 0.16), [255, 220, 120], { x0: w * 0.5 - h * 0.17, y0: horizon - h * 0.17, x1: w * 0.5 + h * 0.17, y1: horizon });
}

function paintRings(c: Canvas): void {
  const cx = c.width / 2;
  const cy = c.height / 2;
  const palette = Array.from({ length: 64 }, (_, band) => unpack(hsv(0.5 + band * 0.035, 0.55, 1)));
  c.shade((x, y) => {
    const r = Math.hypot(x - cx, y - cy);
    const [pr, pg, pb] = palette[Math.min(63, Math.floor(r / 32))];
    const v = 0.35 + 0.6 * (0.5 + 0.5 * Math.cos(r / 5));
    return rgb(pr * v, pg * v, pb * v);
  });
}

function paintChecker(c: Canvas): void {
  const dark = Array.from({ length: 16 }, (_, k) => hsv(k / 16, 0.7, 0.45));
  const light = Array.from({ length: 16 }, (_, k) => hsv(k / 16 + 0.5, 0.7, 0.95));
  c.shade((x, y) => {
    const cell = 40;
    const i = Math.floor(x / cell);
    const j = Math.floor(y / cell);
    return (i + j) % 2 === 0 ? dark[(i * 3 + j * 5) % 16] : light[(i * 3 + j * 5) % 16];
  });
}

function paintBars(c: Canvas): void {
  const bars = [0xc0c0c0, 0xc0c000, 0x00c0c0, 0x00c000, 0xc000c0, 0xc00000, 0x0000c0];
  c.shade((x, y) => {
    if (y > c.height * 0.75) {
      const t = x / c.width;
      return rgb(255 * t, 255 * t, 255 * t);
    }
    return bars[Math.min(bars.length - 1, Math.floor((x / c.width) * bars.length))];
  });
}

function paintAurora(c: Canvas): void {
  const { height: h } = c;
  c.shade((x, y) => {
    const band1 = Math.exp(-(((y - h * (0.35 + 0.1 * Math.sin(x / 90))) / (h * 0.08)) ** 2));
    const band2 = Math.exp(-(((y - h * (0.55 + 0.08 * Math.sin(x / 60 + 1))) / (h * 0.05)) ** 2));
    const sky = 1 - y / h;
    const star = ((Math.imul(x | 0, 73856093) ^ Math.imul(y | 0, 19349663)) >>> 0) % 1200 === 0 ? 200 : 0;
    return rgb(10 + 120 * band2 + star, 15 + 220 * band1 + 60 * band2 + star, 35 + 40 * sky + 80 * band1 + 150 * band2 + star);
  });
}

function paintMosaic(c: Canvas): void {
  const tiles = Array.from({ length: 24 }, (_, k) => hsv(k / 24, 0.6, 0.85));
  c.shade((x, y) => {
    const size = 50;
    const i = Math.floor(x / size);
    const j = Math.floor(y / size);
    const inset = Math.min(x % size, y % size, size - (x % size), size - (y % size));
    if (inset < 3) return 0xf5f0e6;
    return tiles[(i * 13 + j * 7) % 24];
  });
}

function paintWheel(c: Canvas): void {
  // Transparent background, hue wheel with a white hub.
  const cx = c.width / 2;
  const cy = c.height / 2;
  const r = c.width * 0.46;
  const data = c.data;
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const d = Math.hypot(dx, dy);
      const cover = Math.min(1, Math.max(0, r - d + 0.5));
      const [rr, gg, bb] = unpack(hsv(Math.atan2(dy, dx) / (2 * Math.PI) + 0.5, Math.min(1, d / r), 1));
      const i = (y * c.width + x) * 4;
      data[i] = rr;
      data[i + 1] = gg;
      data[i + 2] = bb;
      data[i + 3] = Math.round(cover * 255);
    }
  }
}

function makePicture(p: PictureSpec): Buffer {
  const c = new Canvas(p.width, p.height, [0, 0, 0, 0]);
  p.paint(c);
  if (p.mime === 'image/png') return encodePng(c, { alpha: true, text: { Title: p.title, Software: 'Tapedeck demo generator' } });
  return encodeJpeg(c, 85, {
    dateTimeOriginal: p.exifDate,
    make: 'Tapedeck',
    model: 'Demo Generator',
    software: 'Tapedeck',
    description: p.title,
    width: p.width,
    height: p.height,
  });
}

// --- video --------------------------------------------------------------------------

function clockFrame(i: number): Buffer {
  const { width: w, height: h, fps, seconds } = CLOCK;
  const t = i / fps;
  const c = new Canvas(w, h);
  const hue = t / seconds;
  let rowY = -1;
  let row: [number, number, number] = [0, 0, 0];
  c.shade((x, y) => {
    if (y !== rowY) {
      rowY = y;
      row = unpack(hsv(hue + (y / h) * 0.15, 0.55, 1));
    }
    const v = 0.35 + 0.25 * (x / w);
    return rgb(row[0] * v, row[1] * v, row[2] * v);
  });
  // Progress bar sweeping across the bottom, one pass per second.
  const frac = (i % fps) / fps;
  c.paint(roundRect(12, h - 30, 12 + (w - 24) * (frac + 1 / fps), h - 14, 6), [255, 255, 255, 230], { x0: 0, y0: h - 32, x1: w, y1: h - 12 });
  // Seconds and tenths as seven-segment digits: "S.T".
  const secs = Math.floor(t) % 10;
  const tenths = i % fps;
  const dw = 64;
  const dh = 120;
  const top = 40;
  const colour: RGBA = [255, 250, 235];
  const left = w / 2 - dw - 20;
  const right = w / 2 + 20;
  c.paint(digit(secs, left, top, dw, dh, 14), colour, { x0: left - 2, y0: top - 2, x1: left + dw + 2, y1: top + dh + 2 });
  c.paint(circle(w / 2, top + dh - 7, 7), colour, { x0: w / 2 - 10, y0: top + dh - 20, x1: w / 2 + 10, y1: top + dh + 5 });
  c.paint(digit(Math.min(9, Math.round((tenths * 10) / fps)), right, top, dw, dh, 14), colour, { x0: right - 2, y0: top - 2, x1: right + dw + 2, y1: top + dh + 2 });
  // A ring that fills once per clip.
  c.paint(ring(w - 30, 30, 16, 5), [255, 255, 255, 90], { x0: w - 60, y0: 0, x1: w, y1: 60 });
  const ang = (t / seconds) * 2 * Math.PI;
  c.paint(circle(w - 30 + 16 * Math.sin(ang), 30 - 16 * Math.cos(ang), 5), [255, 210, 90], { x0: w - 60, y0: 0, x1: w, y1: 60 });
  return encodeJpeg(c, 80);
}

function clockAudio(): Int16Array {
  const { audioRate, seconds } = CLOCK;
  const n = audioRate * seconds;
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / audioRate;
    const inSecond = t % 1;
    // A 100 ms beep at each full second, higher on the first.
    if (inSecond < 0.1) {
      const f = Math.floor(t) === 0 ? 1320 : 880;
      const env = Math.min(1, inSecond / 0.005) * Math.min(1, (0.1 - inSecond) / 0.01);
      pcm[i] = Math.round(Math.sin(2 * Math.PI * f * t) * env * 0.4 * 32767);
    }
  }
  return pcm;
}

function makeClockAvi(): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < CLOCK.fps * CLOCK.seconds; i++) frames.push(clockFrame(i));
  return writeMjpegAvi({
    width: CLOCK.width,
    height: CLOCK.height,
    fps: CLOCK.fps,
    frames,
    audio: { sampleRate: CLOCK.audioRate, channels: 1, pcm: clockAudio() },
    title: 'Counting Clock',
  });
}

function execFileP(bin: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, killSignal: 'SIGKILL', windowsHide: true }, (err) => (err ? reject(err) : resolve()));
  });
}

/** ffmpeg next to ffprobe, or on PATH. */
async function findFfmpeg(): Promise<string | undefined> {
  const probe = await findFfprobe();
  if (probe) {
    const p = join(dirname(probe), process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg');
    try {
      await stat(p);
      return p;
    } catch {
      // not next to ffprobe
    }
  }
  return undefined;
}

async function makeTestPatternMp4(ffmpeg: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-demo-'));
  const out = join(dir, 'pattern.mp4');
  try {
    await execFileP(
      ffmpeg,
      [
        '-nostdin', '-v', 'error', '-y',
        '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=4',
        '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=48000:duration=4',
        '-c:v', 'libx264', '-profile:v', 'main', '-level:v', '3.0', '-pix_fmt', 'yuv420p', '-preset', 'veryfast',
        '-c:a', 'aac', '-ac', '2', '-b:a', '128k',
        '-metadata', 'title=Test Pattern', '-movflags', '+faststart', '-bitexact',
        out,
      ],
      60_000,
    );
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// --- orchestration ------------------------------------------------------------------

export interface DemoOptions {
  /** Also render an H.264/AAC MP4 with ffmpeg: true = ffmpeg found next to ffprobe on PATH, or its path. Default false. */
  ffmpeg?: boolean | string;
}

interface Manifest {
  version: number;
  files: Record<string, number>; // relPath → size
}

/**
 * A playlist of the demo: the first track of every album (one of them ends up on tape), by paths
 * relative to the playlist, with #EXTINF titles, so the Playlists container has something to show.
 */
export const DEMO_PLAYLIST = {
  relPath: 'Playlists/Demo Mix.m3u8',
  tracks: ALBUMS.map((_, ai) => DEMO_TRACKS[ai * 3]),
};

function makePlaylist(): Buffer {
  const lines = ['#EXTM3U'];
  for (const tr of DEMO_PLAYLIST.tracks) lines.push(`#EXTINF:${tr.duration},${tr.artist} - ${tr.title}`, `../${tr.relPath}`);
  return Buffer.from(lines.join('\n') + '\n');
}

/** Sidecar subtitles of the clock video: one cue per second, so subtitles show in the demo. */
export const DEMO_SUBTITLE = { relPath: 'Video/Counting Clock.srt' };

function makeClockSrt(): Buffer {
  const t = (s: number) => `00:00:0${s},000`;
  const cues = Array.from({ length: CLOCK.seconds }, (_, i) => `${i + 1}\n${t(i)} --> ${t(i + 1)}\nSecond ${i + 1}\n`);
  return Buffer.from(cues.join('\n'));
}

interface Job {
  rel: string;
  make: () => Buffer | Promise<Buffer>;
  mtime?: Date;
}

async function readManifest(dir: string): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, DEMO_MANIFEST), 'utf8')) as Manifest;
    if (m.version !== DEMO_VERSION || typeof m.files !== 'object' || !m.files) return undefined;
    return m;
  } catch {
    return undefined;
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

async function writeAtomic(path: string, data: Buffer, mtime?: Date): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, data);
  if (mtime) await utimes(tmp, mtime, mtime);
  await rename(tmp, path);
}

/**
 * Creates (or completes) the demo library under `dir` and returns the absolute
 * paths of its media files, sorted.
 */
export async function createDemoLibrary(dir: string, opts: DemoOptions = {}): Promise<{ files: string[] }> {
  const jobs: Job[] = [];
  ALBUMS.forEach((_, ai) => {
    for (let ti = 0; ti < 3; ti++) jobs.push({ rel: DEMO_TRACKS[ai * 3 + ti].relPath, make: () => makeTrack(ai, ti) });
  });
  for (const p of PICTURES) jobs.push({ rel: p.relPath, make: () => makePicture(p), mtime: p.mtime });
  jobs.push({ rel: DEMO_VIDEOS[0].relPath, make: makeClockAvi });
  jobs.push({ rel: DEMO_SUBTITLE.relPath, make: makeClockSrt });
  jobs.push({ rel: DEMO_PLAYLIST.relPath, make: makePlaylist });
  if (opts.ffmpeg) {
    const bin = typeof opts.ffmpeg === 'string' ? opts.ffmpeg : await findFfmpeg();
    if (bin) jobs.push({ rel: DEMO_VIDEOS[1].relPath, make: () => makeTestPatternMp4(bin) });
  }

  await mkdir(dir, { recursive: true });
  const manifest = await readManifest(dir);
  const files: Record<string, number> = { ...(manifest?.files ?? {}) };
  let changed = !manifest;
  for (const job of jobs) {
    const abs = join(dir, job.rel);
    const recorded = manifest?.files[job.rel];
    const actual = await sizeOf(abs);
    if (recorded !== undefined && actual === recorded) continue;
    let data: Buffer;
    try {
      data = await job.make();
    } catch (err) {
      if (job.rel === DEMO_VIDEOS[1].relPath) continue; // optional ffmpeg output: skip when ffmpeg fails
      throw err;
    }
    await writeAtomic(abs, data, job.mtime);
    files[job.rel] = data.length;
    changed = true;
  }
  // Files of this version that are in the manifest (e.g. the optional MP4) and still present count too.
  const present: string[] = [];
  for (const [rel, size] of Object.entries(files)) {
    if ((await sizeOf(join(dir, rel))) === size) present.push(rel);
    else delete files[rel];
  }
  if (changed || Object.keys(files).length !== Object.keys(manifest?.files ?? {}).length) {
    await writeAtomic(join(dir, DEMO_MANIFEST), Buffer.from(`${JSON.stringify({ version: DEMO_VERSION, files }, null, 2)}\n`));
  }
  return { files: present.map((rel) => join(dir, rel)).sort() };
}
