// `tapedeck scan`: scan the media directories into the catalog and exit; when a running
// server holds the catalog, the server scans (over its control socket), with the same output.
// Without a media directory (no --media, media_dir or TAPEDECK_MEDIA_DIR) and no server to ask,
// there is nothing to scan: bad configuration, exit 2. (Only `serve` makes the demo library; a
// scan command that built it into an operator's data directory surprised more than it helped.)

import type { Command } from 'commander';
import { join } from 'node:path';
import { makeDataDir } from '../util/data-dir.js';
import { existsSync } from 'node:fs';
import { ConfigError, type Config, type FlagValues } from '../config.js';
import type { ScanOptions, ScanProgress } from '../scanner/scanner.js';
import { answeringServer, ControlClient } from '../control/client.js';
import { SOCKET_NAME } from '../control/protocol.js';
import { EXIT_CODES, exitCodeOf, messageOf } from '../archive/errors.js';
import { createLogger } from '../log.js';
import { Catalog } from '../catalog/catalog.js';
import { LevelStore } from '../catalog/store.js';
import { scan, scanDeferredArt } from '../scanner/scanner.js';
import { ProbePool } from '../media/probe-pool.js';
import { ArtMaker } from '../art/maker.js';
import { subtitleStore } from '../media/subtitles.js';
import { RELATIVE_PATHS_HELP } from '../util/paths.js';
import { addSettingFlags, config, fail, progressLine } from './common.js';

export function registerScanCommand(program: Command): void {
  addSettingFlags(program.command('scan').description('scan the media directories into the catalog and exit'), ['media_dir', 'data_dir', 'log_level', 'scan_concurrency', 'scan_threads', 'ffprobe'])
    .option('--json', 'print a machine-readable result')
    .addHelpText('after', RELATIVE_PATHS_HELP)
    .action((opts: FlagValues & { json?: boolean }) => scanCommand(opts));
}

/** Why `tapedeck scan` without media directories has nothing to do (exit 2). */
export const NO_MEDIA_MESSAGE =
  'no media directories configured: give --media DIR (repeatable), media_dir in the config file or TAPEDECK_MEDIA_DIR (`tapedeck scan` does not make the demo library: `tapedeck serve` without media directories serves one)';

async function scanCommand(flags: FlagValues & { json?: boolean }): Promise<void> {
  const cfg = config(flags);
  // nothing to scan and no data directory, so no server there to ask: say so before making anything
  if (cfg.demo && !existsSync(cfg.dataDir)) fail(new ConfigError(NO_MEDIA_MESSAGE));
  // stdout is the result (and --json must be one JSON document): logs go to stderr
  const log = createLogger(cfg.logLevel === 'info' ? 'warn' : cfg.logLevel, 'tapedeck', { toStderr: true });
  await makeDataDir(cfg.dataDir);
  // a server that answers holds the catalog (opening it while the server reopens it would take it away): it scans
  if (await answeringServer(join(cfg.dataDir, SOCKET_NAME))) return scanInServer(cfg, flags, 'a running server holds it');
  if (cfg.demo && !existsSync(join(cfg.dataDir, 'catalog'))) fail(new ConfigError(NO_MEDIA_MESSAGE)); // no empty catalog made either
  const catalog = new Catalog(new LevelStore(join(cfg.dataDir, 'catalog'), { cacheBytes: cfg.catalogCache }));
  try {
    await catalog.open();
  } catch (err) {
    // a running server holds the catalog: it scans (its own media directories)
    if (/lock/i.test((err as Error).message)) return scanInServer(cfg, flags, (err as Error).message);
    fail(err);
  }
  // no server holds this catalog (the lock is ours): its media directories are ours to name
  if (cfg.demo) {
    await catalog.close();
    fail(new ConfigError(NO_MEDIA_MESSAGE));
  }
  const roots = cfg.mediaDirs;
  const pool = cfg.scanThreads > 0 ? new ProbePool(cfg.scanThreads) : undefined;
  const common = { roots, ffprobe: cfg.ffprobe, art: cfg.art ? new ArtMaker({ dataDir: cfg.dataDir, log }) : undefined, subtitles: subtitleStore(cfg.dataDir), log };
  const result = await scan(catalog, {
    ...common,
    pool,
    concurrency: cfg.scanConcurrency,
    // video frames (an ffmpeg each) after the walk, several at once: framePass
    deferFrames: true,
    onProgress: (p) => progressLine(`scanning: ${p.seen} files, ${p.probed} read, ${p.unchanged} unchanged, ${p.rate} files/s`),
  });
  await pool?.close();
  progressLine(scannedLine(result), true);
  const frames = result.framesDeferred ? await framePass(catalog, common, result.framesDeferred, cfg.scanThreads + 1) : undefined;
  const totals = await catalog.totals();
  await catalog.close();
  report(flags, result, totals, frames);
}

function scannedLine(result: ScanProgress): string {
  return `scanned ${result.seen} files in ${(result.elapsedMs / 1000).toFixed(1)} s (${result.rate} files/s): ${result.probed} read, ${result.unchanged} unchanged, ${result.removed} removed, ${result.failed} unreadable`;
}

type FramePass = { videos: number; concurrency: number; elapsedMs: number };

/**
 * The video frames the scan left (art through ffmpeg, the slow source): made after the walk, so
 * the tags of the whole library are read first, with `concurrency` ffmpeg runs at once (scan_threads
 * + 1: the cores the scan may use), where the scan made them one by one in the walk. The catalog
 * ends as before: every video with its frame art. Interrupted, the next scan makes what is left.
 */
async function framePass(catalog: Catalog, opts: ScanOptions, videos: number, concurrency: number): Promise<FramePass> {
  const started = Date.now();
  let last = 0;
  const r = await scanDeferredArt(catalog, {
    ...opts,
    concurrency,
    onVideo: (done) => {
      if (Date.now() - last < 500) return;
      last = Date.now();
      progressLine(`video frames: ${done} of ${videos}, ${concurrency} at once`);
    },
  });
  const pass = { videos: r.made, concurrency, elapsedMs: Date.now() - started };
  progressLine(`video frames: ${pass.videos} videos in ${(pass.elapsedMs / 1000).toFixed(1)} s, ${concurrency} at once`, true);
  return pass;
}

function report(flags: { json?: boolean }, result: ScanProgress, totals: Record<string, number>, frames?: FramePass): void {
  if (flags.json) process.stdout.write(JSON.stringify({ scan: result, ...(frames ? { frames } : {}), library: totals }) + '\n');
  else process.stdout.write(`library: ${totals.items} items (${totals.audio} audio, ${totals.video} video, ${totals.image} images)\n`);
}

/**
 * The catalog is held by a running server: ask it to scan over its control socket (same
 * progress line and result). Exit 3 only when nothing answers there (the catalog is busy).
 */
async function scanInServer(cfg: Config, flags: FlagValues & { json?: boolean }, lockMessage: string): Promise<void> {
  const sock = join(cfg.dataDir, SOCKET_NAME);
  const busy = (why: string) => {
    process.stderr.write(`tapedeck: the catalog in ${cfg.dataDir} is busy: ${lockMessage}; ${why}\n`);
    process.exit(EXIT_CODES.BUSY);
  };
  if (!existsSync(sock)) busy(`another process holds it and there is no control socket at ${sock}`);
  const client = new ControlClient(sock);
  try {
    await client.ping();
  } catch (err) {
    busy(messageOf(err));
  }
  if (cfg.mediaDirs.length) process.stderr.write(`tapedeck: a running server holds this catalog; it scans its own media directories (--media is not used)\n`);
  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write('\ntapedeck: no longer watching; the scan goes on in the server (its log says when it is done)\n');
    abort.abort();
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  try {
    const r = await client.scan((p) => progressLine(`scanning (server): ${p.seen} files, ${p.probed} read, ${p.unchanged} unchanged, ${p.rate} files/s`), abort.signal);
    progressLine(scannedLine(r.scan), true);
    report(flags, r.scan, r.library);
  } catch (err) {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write(`tapedeck: ${messageOf(err)}\n`);
    process.exit(exitCodeOf(err));
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}
