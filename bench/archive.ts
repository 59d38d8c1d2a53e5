// Tape tier benchmark: archive and recall throughput compared with the virtual
// drive's native rate measured in the same run, and mounts/locates per recalled
// item for a batch recall spread over several cartridges. Prints JSON.
//
//   npm run bench:archive -- [--mib 192] [--files 24] [--scale 2] [--cartridges 3] [--keep-dir]
//
// The virtual library streams at the LTO-9 native rate (400 MB/s) divided by
// --scale (default 2: 200 MB/s of real time), so the tape, not the test machine's
// disk, should be the limit. Robot, load, unload and locate times are cut to a
// few modelled seconds (then scaled) so the run stays short; their modelled
// seconds are reported, and the "streaming" figures leave them out.
//
// native:   raw drive writes/reads of the same number of bytes in 4 MiB calls
// archive:  ArchiveService archive jobs (tar write + read-back verify + catalog
//           commit + stub + disk removal), spread over the cartridges
// recall:   one recall job of every item, targets shuffled

import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { LevelStore } from '../src/catalog/store.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { scan } from '../src/scanner/scanner.js';
import { UPNP_CLASS } from '../src/media/probe.js';
import { mediaTypeOf } from '../src/media/mediatypes.js';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { LTO9 } from '../src/tape/timing.js';
import type { TapeStats } from '../src/tape/types.js';
import { ArchiveService } from '../src/archive/service.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const MIB = 1024 * 1024;
const totalMib = arg('mib', 192);
const nFiles = Math.floor(arg('files', 24));
const scale = arg('scale', 2);
const nCarts = Math.floor(arg('cartridges', 3));
const keepDir = process.argv.includes('--keep-dir');
const BS = 256 * 1024;
const timing = { robotMove: 0.25, load: 0.25, unload: 0.25, averageLocate: 0.5, locateOverhead: 0.1 };
const MECHANICAL = ['robot', 'load', 'unload', 'locate', 'space', 'rewind'];

const mbps = (bytes: number, s: number) => Math.round((bytes / 1e6 / s) * 10) / 10;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function delta(a: TapeStats, b: TapeStats) {
  const mech = MECHANICAL.reduce((n, k) => n + ((b.seconds[k] ?? 0) - (a.seconds[k] ?? 0)), 0);
  const opSeconds: Record<string, number> = {};
  for (const k of Object.keys(b.seconds)) {
    const d = (b.seconds[k] ?? 0) - (a.seconds[k] ?? 0);
    if (d > 0) opSeconds[k] = round(d);
  }
  return { opSeconds, mounts: b.mounts - a.mounts, locates: b.locates - a.locates, spaces: b.spaces - a.spaces, bytesRead: b.bytesRead - a.bytesRead, bytesWritten: b.bytesWritten - a.bytesWritten, mechanicalSeconds: mech };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  return [r, Number(process.hrtime.bigint() - t0) / 1e9];
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-archive-'));
  try {
    const data = join(dir, 'data');
    const media = join(dir, 'media');
    // Files of varied sizes adding up to about totalMib.
    const weights = Array.from({ length: nFiles }, (_, i) => 1 + ((i * 7919) % 13));
    const wsum = weights.reduce((a, b) => a + b, 0);
    const sizes = weights.map((w) => Math.max(1, Math.floor((w / wsum) * totalMib * MIB)));
    const exts = ['mkv', 'mp4', 'flac', 'mp3'];
    let total = 0;
    for (let i = 0; i < nFiles; i++) {
      const p = join(media, `Set ${i % 4}`, `File ${String(i).padStart(3, '0')}.${exts[i % exts.length]}`);
      await mkdir(join(p, '..'), { recursive: true });
      await writeFile(p, randomBytes(sizes[i]));
      total += sizes[i];
    }
    // Head stubs as configured by default (120 s), with a 1 MiB minimum; items are "30-minute" media.
    const config = loadConfig({ env: {}, flags: { data, media: [media], tapeTimeScale: String(scale), headStubMin: '1M', logLevel: 'silent' } });
    // Setup (labelling the pool) without waiting; the measurements reopen the library with the time scale.
    let library = await VirtualTapeLibrary.open(config.tape.dir, {
      blockSize: BS,
      capacityBytes: Math.max(4 * 1024 ** 3, total * 4),
      drives: 2,
      slots: nCarts + 4,
      cartridges: nCarts + 1,
      timeScale: 0,
    });
    const catalog = new Catalog(new LevelStore(join(data, 'catalog')));
    await catalog.open();
    await scan(catalog, {
      roots: [media],
      probe: async (p) => {
        const t = mediaTypeOf(p)!;
        const size = (await stat(p)).size;
        return { kind: t.kind, upnpClass: UPNP_CLASS[t.kind], title: p, meta: {}, res: { mime: t.mime, size, duration: 1800, bitrate: Math.round(size / 1800) } };
      },
    });
    const labels = Array.from({ length: nCarts }, (_, i) => `TD${String(i + 1).padStart(4, '0')}L9`);
    await new ArchiveService({ catalog, library, config, log: silentLogger }).label(labels);
    for (const d of (await library.changer.inventory()).drives) if (d.full) await library.changer.unload(d.drive);
    await library.close();
    library = await VirtualTapeLibrary.open(config.tape.dir, { timeScale: scale, timing });
    const service = new ArchiveService({ catalog, library, config, log: silentLogger });

    // Native rate: the scratch cartridge, raw 4 MiB writes and reads of `total` bytes.
    const scratch = `TD${String(nCarts + 1).padStart(4, '0')}L9`;
    const drive = await library.mount(scratch);
    const buf = randomBytes(4 * MIB);
    const blocks = Math.ceil(total / BS);
    const [, wS] = await timed(async () => {
      for (let left = blocks; left > 0; ) {
        const n = Math.min(left, buf.length / BS);
        await drive.writeBlocks(buf.subarray(0, n * BS));
        left -= n;
      }
      await drive.writeFilemarks(1);
    });
    await drive.rewind();
    const [, rS] = await timed(async () => {
      for (;;) {
        const r = await drive.readBlocks(16);
        if (r.mark) break;
      }
    });
    await library.changer.unload(drive.index);
    const native = { modelledMBps: LTO9.rate / 1e6 / scale, writeMBps: mbps(blocks * BS, wS), readMBps: mbps(blocks * BS, rS) };

    // Archive: one job per cartridge share (each goes to the emptiest pool cartridge).
    const items = await catalog.items();
    const ids = items.map((i) => i.id).sort();
    const s0 = library.stats();
    let archiveWall = 0;
    for (let k = 0; k < nCarts; k++) {
      const part = ids.filter((_, i) => i % nCarts === k);
      const [job, s] = await timed(async () => service.run((await service.submit('archive', part)).id));
      if (job.state !== 'done') throw new Error(`archive failed: ${job.reason}`);
      archiveWall += s;
    }
    const s1 = library.stats();
    const a = delta(s0, s1);
    let stubBytes = 0;
    for (const n of await readdir(join(data, 'stubs'))) stubBytes += (await stat(join(data, 'stubs', n))).size;
    const archiveStreaming = archiveWall - a.mechanicalSeconds * scale;
    const archiveTapeBytes = a.bytesWritten + a.bytesRead; // tar written + read back
    const nativeMean = (native.writeMBps + native.readMBps) / 2;

    // Recall: every item, shuffled targets, drives emptied first.
    for (const d of (await library.changer.inventory()).drives) if (d.full) await library.changer.unload(d.drive);
    const shuffled = [...ids];
    let seed = 12345;
    for (let i = shuffled.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const j = seed % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    const s2 = library.stats();
    const [rjob, recallWall] = await timed(async () => service.run((await service.submit('recall', shuffled)).id));
    if (rjob.state !== 'done') throw new Error(`recall failed: ${rjob.reason}`);
    const r = delta(s2, library.stats());
    const recallStreaming = recallWall - r.mechanicalSeconds * scale;
    const cartridgesUsed = new Set((await catalog.items()).map((i) => i.location?.tape?.label)).size;

    const result = {
      bench: 'archive',
      setup: { files: nFiles, bytes: total, cartridges: nCarts, blockSize: BS, timeScale: scale, mechanicalTiming: timing },
      native,
      archive: {
        wallSeconds: round(archiveWall),
        mechanicalSeconds: round(a.mechanicalSeconds * scale),
        itemMBps: mbps(total, archiveWall),
        tapeMBps: mbps(archiveTapeBytes, archiveWall),
        streamingTapeMBps: mbps(archiveTapeBytes, archiveStreaming),
        ratioToNative: round(mbps(archiveTapeBytes, archiveWall) / nativeMean),
        streamingRatioToNative: round(mbps(archiveTapeBytes, archiveStreaming) / nativeMean),
        tapeBytesPerItemByte: round(archiveTapeBytes / total),
        stubBytesPerItemByte: round(stubBytes / total),
        mounts: a.mounts,
        modelledSecondsByOp: a.opSeconds,
      },
      recall: {
        items: ids.length,
        cartridges: cartridgesUsed,
        wallSeconds: round(recallWall),
        mechanicalSeconds: round(r.mechanicalSeconds * scale),
        itemMBps: mbps(total, recallWall),
        streamingMBps: mbps(r.bytesRead, recallStreaming),
        ratioToNative: round(mbps(total, recallWall) / native.readMBps),
        streamingRatioToNative: round(mbps(r.bytesRead, recallStreaming) / native.readMBps),
        tapeBytesReadPerItemByte: round(r.bytesRead / total),
        mounts: r.mounts,
        locates: r.locates,
        spaces: r.spaces,
        mountsPerItem: round(r.mounts / ids.length, 4),
        locatesPerItem: round(r.locates / ids.length, 4),
        modelledSecondsByOp: r.opSeconds,
      },
      definitions: {
        native: 'raw drive writeBlocks/readBlocks of the same byte count in 4 MiB calls, measured in this run',
        'archive.tapeMBps': '(tar bytes written + bytes read back for verification) / wall time',
        'archive.ratioToNative': 'archive.tapeMBps / mean(native write, native read)',
        'recall.ratioToNative': 'item bytes restored per second / native read',
        streaming: 'the same with the robot/load/unload/locate/space/rewind time (modelled seconds × time scale) left out',
      },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    await catalog.close();
    await library.close();
  } finally {
    if (keepDir) process.stderr.write(`kept ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:archive: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
