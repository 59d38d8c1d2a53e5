// Generated benchmark media: a library of small tagged FLAC tracks in folders of
// FOLDER_SIZE files (d000, d001, ...: the folder Browse workload pages through one of
// them; "All Music" holds every track on both servers), optionally a share of videos
// beside them as a real library has (MP4 and Matroska in folders v000, v001, ...), and
// one large WAV file for the streaming test. Both are cached under a stable temp path keyed by their
// parameters and a format version; a marker file written last says a set is complete.
//
// Tags are deterministic (seeded PRNG) and varied: `artists` artists × 5 albums ×
// 10 tracks, titles "<Adjective> <Noun>" from fixed word lists, 12 genres, years.
// Search queries (see searchQueries) are chosen from the same word lists, so the
// number of matches is known up front and the same on both servers.

import { createHash } from 'node:crypto';
import { open, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeFlac } from '../src/demo/flac.js';
import { prng } from './stats.js';

export const LIBRARY_VERSION = 2;

/** Tracks per folder of the generated library. */
export const FOLDER_SIZE = 2000;

export const folderName = (i: number) => 'd' + String(Math.floor(i / FOLDER_SIZE)).padStart(3, '0');

const ADJECTIVES = [
  'Silver', 'Broken', 'Golden', 'Quiet', 'Electric', 'Hidden', 'Burning', 'Frozen', 'Velvet', 'Distant',
  'Crimson', 'Hollow', 'Wild', 'Paper', 'Midnight', 'Neon', 'Falling', 'Empty', 'Bright', 'Lonely',
  'Restless', 'Sacred', 'Rusty', 'Gentle', 'Northern',
];
const NOUNS = [
  'River', 'Lantern', 'Highway', 'Garden', 'Mirror', 'Harbor', 'Thunder', 'Window', 'Meadow', 'Signal',
  'Engine', 'Canyon', 'Ocean', 'Feather', 'Station', 'Shadow', 'Compass', 'Orchard', 'Echo', 'Ladder',
  'Desert', 'Island', 'Candle', 'Bridge', 'Forest', 'Comet', 'Anchor', 'Valley', 'Tower', 'Whisper',
  'Circus', 'Glacier', 'Harvest', 'Spiral', 'Cathedral', 'Satellite', 'Rainfall', 'Lighthouse', 'Carousel', 'Avalanche',
];
const FIRST = ['Ada', 'Bruno', 'Clara', 'Dmitri', 'Elena', 'Felix', 'Greta', 'Hugo', 'Ines', 'Jonas', 'Kira', 'Luca', 'Mira', 'Nils', 'Olga', 'Pavel', 'Quinn', 'Rosa', 'Sven', 'Tara'];
const LAST = ['Abbott', 'Brandt', 'Castillo', 'Dvorak', 'Eriksen', 'Fontaine', 'Gallo', 'Hartmann', 'Ivanova', 'Jensen', 'Kowalski', 'Lindqvist', 'Moreau', 'Novak', 'Okafor', 'Petrov', 'Quiroga', 'Rossi', 'Santos', 'Takahashi'];
// Album names use their own words, so a title search matches tracks only.
const ALBUM_A = ['Night', 'Summer', 'Winter', 'City', 'Coastal', 'Morning', 'Late', 'Early', 'Lost', 'Open', 'Blue', 'Long'];
const ALBUM_B = ['Sessions', 'Tapes', 'Stories', 'Songs', 'Letters', 'Recordings', 'Hours', 'Days', 'Rooms', 'Roads'];
const GENRES = ['Rock', 'Jazz', 'Ambient', 'Folk', 'Electronic', 'Classical', 'Blues', 'Hip-Hop', 'Country', 'Reggae', 'Metal', 'Soul'];

const TRACKS_PER_ALBUM = 10;
const ALBUMS_PER_ARTIST = 5;

export interface Track {
  file: string; // path inside the library folder: <folder>/<name>
  title: string;
  artist: string;
  album: string;
  genre: string;
  year: number;
  trackNumber: number;
}

function artistName(i: number): string {
  const f = FIRST[i % FIRST.length];
  const l = LAST[Math.floor(i / FIRST.length) % LAST.length];
  const round = Math.floor(i / (FIRST.length * LAST.length));
  return round ? `${f} ${l} ${round + 1}` : `${f} ${l}`;
}

/** The track list of a library of `count` files (deterministic). */
export function trackList(count: number): Track[] {
  const rnd = prng(20_000 + count);
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
  const out: Track[] = [];
  for (let i = 0; i < count; i++) {
    const albumNo = Math.floor(i / TRACKS_PER_ALBUM);
    const artistNo = Math.floor(albumNo / ALBUMS_PER_ARTIST);
    const artist = artistName(artistNo);
    const k = albumNo % ALBUMS_PER_ARTIST; // distinct names for an artist's albums
    const album = `${ALBUM_A[(artistNo * 5 + k) % ALBUM_A.length]} ${ALBUM_B[(artistNo * 7 + k * 3) % ALBUM_B.length]}`;
    const title = `${pick(ADJECTIVES)} ${pick(NOUNS)}`;
    const trackNumber = (i % TRACKS_PER_ALBUM) + 1;
    out.push({
      file: `${folderName(i)}/${String(i).padStart(6, '0')} ${artist} - ${title}.flac`,
      title,
      artist,
      album,
      genre: GENRES[artistNo % GENRES.length],
      year: 1960 + (albumNo % 65),
      trackNumber,
    });
  }
  return out;
}

export interface SearchQuery {
  name: string;
  criteria: string;
  /** Matches expected on a correct server (items only; both criteria select audio items or titles of items). */
  expected: number;
}

/**
 * Criteria both servers understand (MiniDLNA translates a subset of the grammar to SQL:
 * dc:title, dc:creator, upnp:class derivedfrom, contains, =, and). Expected counts come
 * from the track list.
 */
export function searchQueries(tracks: Track[], videos: string[] = []): SearchQuery[] {
  const word = 'Lantern';
  const artist = tracks[Math.floor(tracks.length / 2)].artist;
  // a video has no title tag: both servers title it by its file name without the extension
  const titles = [...tracks.map((t) => t.title), ...videos.map((v) => basename(v).replace(/\.[^.]+$/, ''))];
  return [
    {
      name: 'title-contains',
      criteria: `dc:title contains "${word.toLowerCase()}"`,
      expected: titles.filter((t) => t.toLowerCase().includes(word.toLowerCase())).length,
    },
    {
      name: 'class-and-creator',
      criteria: `upnp:class derivedfrom "object.item.audioItem" and dc:creator = "${artist}"`,
      expected: tracks.filter((t) => t.artist === artist).length,
    },
  ];
}

export interface Library {
  dir: string; // the media folder holding the tracks and videos (give it to both servers)
  count: number; // tracks
  /** Paths of the videos inside `dir` (none unless asked for). */
  videos: string[];
  /** Every media file of the library: tracks + videos. */
  files: number;
  bytes: number;
  tracks: Track[];
  generatedMs: number; // 0 when reused from the cache
}

export function benchRoot(): string {
  return process.env.TAPEDECK_BENCH_DIR || join(tmpdir(), 'tapedeck-bench');
}

async function readMarker(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Samples of a short tone; the pitch depends on the track so files differ. */
function tone(i: number, samples: number, rate: number): Int16Array {
  const f = 220 + (i % 97) * 7;
  const s = new Int16Array(samples);
  for (let n = 0; n < samples; n++) s[n] = Math.round(6000 * Math.sin((2 * Math.PI * f * n) / rate) * (1 - n / samples));
  return s;
}

export interface LibraryOptions {
  /**
   * Embed a front cover in every track: one 400×400 JPEG per album (the same bytes for its
   * 10 tracks, as taggers write them), so a scan with art finds 1 distinct cover per 10 files.
   */
  covers?: (albumNo: number) => Promise<Buffer>;
  /**
   * Videos beside the tracks, as a share of the track count (a real library: 0.025 gives 500
   * videos next to 20,000 tracks). They are copies of the real clips in test/fixtures/media
   * (H.264 + AAC in MP4 with its moov at the end, H.264 + AC-3 in Matroska), alternating,
   * each under its own name; neither server dedupes by content, so each costs a full probe.
   */
  videoShare?: number;
}

/** The real clips the bench videos are copied from (made by test/fixtures/media/make.sh). */
const VIDEO_SEEDS = ['clip-720p.mp4', 'clip.mkv'].map((n) => join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'media', n));

/** Videos per folder (v000, v001, ...). */
const VIDEO_FOLDER_SIZE = 250;

/** The video file list of a library (deterministic): <folder>/<name>.<mp4|mkv>. */
export function videoList(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const ext = VIDEO_SEEDS[i % VIDEO_SEEDS.length].endsWith('.mkv') ? 'mkv' : 'mp4';
    const folder = 'v' + String(Math.floor(i / VIDEO_FOLDER_SIZE)).padStart(3, '0');
    out.push(`${folder}/${String(i).padStart(5, '0')} ${ADJECTIVES[i % ADJECTIVES.length]} Holiday ${NOUNS[Math.floor(i / ADJECTIVES.length) % NOUNS.length]}.${ext}`);
  }
  return out;
}

/** Creates (or reuses) a library of `count` tagged FLAC files (and `videoShare` videos) in one folder. */
export async function ensureLibrary(count: number, log: (s: string) => void, opts: LibraryOptions = {}): Promise<Library> {
  const videos = videoList(Math.round(count * (opts.videoShare ?? 0)));
  const base = join(benchRoot(), `library-v${LIBRARY_VERSION}-n${count}${opts.covers ? '-covers' : ''}${videos.length ? `-video${videos.length}` : ''}`);
  const dir = join(base, 'music');
  const markerPath = join(base, 'complete.json');
  const tracks = trackList(count);
  const files = count + videos.length;
  const marker = await readMarker(markerPath);
  if (marker && marker.count === count && marker.videos === videos.length) {
    const names = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
    if (names.filter((n) => /\.(flac|mp4|mkv)$/.test(n)).length === files) {
      return { dir, count, videos, files, bytes: Number(marker.bytes), tracks, generatedMs: 0 };
    }
  }
  log(`generating ${count} tagged FLAC files${videos.length ? ` and ${videos.length} videos` : ''} in ${dir}`);
  const t0 = Date.now();
  await rm(base, { recursive: true, force: true });
  for (let f = 0; f * FOLDER_SIZE < count; f++) await mkdir(join(dir, folderName(f * FOLDER_SIZE)), { recursive: true });
  const rate = 8000;
  let bytes = 0;
  let next = 0;
  const covers = new Map<number, Promise<Buffer>>();
  const cover = (albumNo: number) => {
    let c = covers.get(albumNo);
    if (!c) {
      c = opts.covers!(albumNo);
      covers.set(albumNo, c);
      covers.delete(albumNo - 64); // workers are at most a few albums apart
    }
    return c;
  };
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const t = tracks[i];
      const picture = opts.covers ? { mime: 'image/jpeg', data: await cover(Math.floor(i / TRACKS_PER_ALBUM)) } : undefined;
      const flac = encodeFlac({
        ...(picture ? { picture } : {}),
        sampleRate: rate,
        channels: 1,
        samples: [tone(i, 800, rate)], // 0.1 s
        blockSize: 1024,
        vendor: 'Tapedeck bench generator',
        tags: {
          TITLE: t.title,
          ARTIST: t.artist,
          ALBUMARTIST: t.artist,
          ALBUM: t.album,
          GENRE: t.genre,
          DATE: String(t.year),
          TRACKNUMBER: t.trackNumber,
          DISCNUMBER: 1,
        },
      });
      bytes += flac.length;
      await writeFile(join(dir, t.file), flac);
      if ((i + 1) % 5000 === 0) log(`  ${i + 1}/${count} files`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const seeds = await Promise.all(VIDEO_SEEDS.map((p) => readFile(p)));
  for (const [i, v] of videos.entries()) {
    await mkdir(join(dir, dirname(v)), { recursive: true });
    const seed = seeds[i % seeds.length];
    await writeFile(join(dir, v), seed);
    bytes += seed.length;
  }
  await writeFile(markerPath, JSON.stringify({ version: LIBRARY_VERSION, count, videos: videos.length, bytes }));
  return { dir, count, videos, files, bytes, tracks, generatedMs: Date.now() - t0 };
}

export interface BigFile {
  dir: string; // a media folder holding only this file
  path: string;
  bytes: number;
  sha256: string;
}

/** RIFF/WAVE header for 16-bit stereo PCM at 44.1 kHz with `dataBytes` of samples. */
function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(2, 22);
  h.writeUInt32LE(44100, 24);
  h.writeUInt32LE(44100 * 4, 28);
  h.writeUInt16LE(4, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/**
 * Creates (or reuses) one WAV file of exactly `bytes` bytes (header + pseudo-random PCM,
 * i.e. valid, noisy audio that both servers index from its header alone).
 */
export async function ensureBigFile(bytes: number, log: (s: string) => void): Promise<BigFile> {
  if (bytes < 1024 || bytes > 4 * 1024 ** 3 - 64) throw new Error(`big file size ${bytes} out of range (1 KiB .. 4 GiB)`);
  const base = join(benchRoot(), `bigfile-v${LIBRARY_VERSION}-${bytes}`);
  const dir = join(base, 'media');
  const path = join(dir, 'Big Stream.wav');
  const markerPath = join(base, 'complete.json');
  const marker = await readMarker(markerPath);
  const st = await stat(path).catch(() => undefined);
  if (marker && st?.size === bytes && typeof marker.sha256 === 'string') return { dir, path, bytes, sha256: marker.sha256 };
  log(`generating a ${(bytes / 1024 ** 2).toFixed(0)} MiB WAV file at ${path}`);
  await rm(base, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const dataBytes = (bytes - 44) & ~3;
  if (dataBytes + 44 !== bytes) throw new Error(`big file size ${bytes} must be 44 + a multiple of 4`);
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    const head = wavHeader(dataBytes);
    hash.update(head);
    await fh.write(head);
    const rnd = prng(0xb16f11e);
    const chunk = Buffer.alloc(8 * 1024 * 1024);
    const words = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length / 4);
    let left = dataBytes;
    while (left > 0) {
      for (let i = 0; i < words.length; i++) words[i] = (rnd() * 4294967296) >>> 0;
      const n = Math.min(left, chunk.length);
      const part = chunk.subarray(0, n);
      hash.update(part);
      await fh.write(part);
      left -= n;
    }
  } finally {
    await fh.close();
  }
  const sha256 = hash.digest('hex');
  await writeFile(markerPath, JSON.stringify({ version: LIBRARY_VERSION, bytes, sha256 }));
  return { dir, path, bytes, sha256 };
}

/** Reads every file once so neither server's scan pays for a cold page cache. */
export async function warmFiles(dir: string): Promise<void> {
  const names = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => join(d.parentPath ?? d.path, d.name).slice(dir.length + 1));
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < names.length; i = next++) await readFile(join(dir, names[i])).catch(() => undefined);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}
