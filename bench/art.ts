// What album art costs at scan time: cold scans of the 20,000-file bench library with art
// (embedded cover read in the prober's own parse, folder-art lookup, scaling to JPEG_TN and
// JPEG_SM with sharp, the content-addressed store) against the same scans with art off, in the
// same run, alternating which goes first. Two libraries: the plain bench library (no pictures:
// what looking for art costs) and the same tracks with an embedded 400×400 cover per album
// (2,000 distinct covers for 20,000 files: what making art costs). Goal: art ≤ +25% scan time.
//
//   npm run -s bench:art [-- --files N] [--rounds N]      JSON on stdout, progress on stderr
//
// In-process scans (the scanner the server and `tapedeck scan` run), LevelDB catalog in a fresh
// data directory per scan, files read once beforehand so no scan meets a cold page cache.

import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { ArtMaker } from '../src/art/maker.js';
import { Catalog } from '../src/catalog/catalog.js';
import { LevelStore } from '../src/catalog/store.js';
import { scan } from '../src/scanner/scanner.js';
import { ensureLibrary, warmFiles, type Library } from './library.js';

const { values } = parseArgs({ options: { files: { type: 'string' }, rounds: { type: 'string' } } });
const FILES = Number(values.files ?? 20_000);
const ROUNDS = Number(values.rounds ?? 2);
const log = (s: string) => process.stderr.write(s + '\n');

/** A 400×400 album cover: the album's colour with some grain, JPEG q85 (about 20-30 KB). */
function cover(albumNo: number): Promise<Buffer> {
  const hue = (albumNo * 47) % 360;
  const r = Math.round(128 + 100 * Math.cos((hue * Math.PI) / 180));
  const g = Math.round(128 + 100 * Math.cos(((hue - 120) * Math.PI) / 180));
  const b = Math.round(128 + 100 * Math.cos(((hue + 120) * Math.PI) / 180));
  const noise = sharp({ create: { width: 400, height: 400, channels: 3, background: { r: 0, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 128, sigma: 24 } } }).png();
  return noise
    .toBuffer()
    .then((n) => sharp({ create: { width: 400, height: 400, channels: 3, background: { r, g, b } } }).composite([{ input: n, blend: 'soft-light' }]).jpeg({ quality: 85 }).toBuffer());
}

interface Run {
  art: boolean;
  ms: number;
  filesPerSec: number;
  artFiles?: number;
  artBytes?: number;
  itemsWithArt?: number;
}

async function scanOnce(lib: Library, art: boolean): Promise<Run> {
  const data = await mkdtemp(join(tmpdir(), 'tapedeck-bench-art-'));
  try {
    const catalog = new Catalog(new LevelStore(join(data, 'catalog')));
    await catalog.open();
    const maker = art ? new ArtMaker({ dataDir: data }) : undefined;
    const r = await scan(catalog, { roots: [lib.dir], concurrency: 8, art: maker });
    if (r.seen !== lib.count || r.failed) throw new Error(`scan saw ${r.seen} of ${lib.count} files, ${r.failed} failed`);
    const run: Run = { art, ms: r.elapsedMs, filesPerSec: Math.round((r.seen * 1000) / r.elapsedMs) };
    if (maker) {
      const u = await maker.store.usage();
      run.artFiles = u.files;
      run.artBytes = u.bytes;
      run.itemsWithArt = (await catalog.items()).filter((i) => i.art).length;
    }
    await catalog.close();
    return run;
  } finally {
    await rm(data, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function measure(name: string, lib: Library) {
  await warmFiles(lib.dir);
  const runs: Run[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const art of round % 2 ? [true, false] : [false, true]) {
      const r = await scanOnce(lib, art);
      log(`${name} round ${round + 1}: art ${art ? 'on ' : 'off'} ${r.ms} ms (${r.filesPerSec} files/s)${r.artFiles !== undefined ? `, store ${r.artFiles} files ${(r.artBytes! / 1024 / 1024).toFixed(1)} MiB` : ''} (load ${loadavg()[0].toFixed(1)})`);
      runs.push(r);
    }
  }
  const off = median(runs.filter((r) => !r.art).map((r) => r.ms));
  const on = median(runs.filter((r) => r.art).map((r) => r.ms));
  const last = runs.filter((r) => r.art).pop()!;
  const ratio = Math.round((on / off) * 1000) / 1000;
  return {
    files: lib.count,
    libraryBytes: lib.bytes,
    scanMsArtOff: off,
    scanMsArtOn: on,
    ratio,
    goal: 'ratio <= 1.25',
    met: ratio <= 1.25,
    artStore: { files: last.artFiles, bytes: last.artBytes, itemsWithArt: last.itemsWithArt, bytesPerItem: last.itemsWithArt ? Math.round(last.artBytes! / last.itemsWithArt) : 0 },
    runs,
  };
}

const started = { loadavg: loadavg().map((x) => Math.round(x * 10) / 10), cpus: cpus().length, node: process.version };
const plain = await measure('plain', await ensureLibrary(FILES, log));
const covered = await measure('covers', await ensureLibrary(FILES, log, { covers: cover }));
process.stdout.write(JSON.stringify({ bench: 'art', environment: { ...started, loadavgEnd: loadavg().map((x) => Math.round(x * 10) / 10) }, plain, covers: covered }, null, 2) + '\n');
