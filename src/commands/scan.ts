// `tapedeck scan`: scan the media directories into the catalog and exit.

import type { Command } from 'commander';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { FlagValues } from '../config.js';
import { createLogger } from '../log.js';
import { Catalog } from '../catalog/catalog.js';
import { LevelStore } from '../catalog/store.js';
import { scan } from '../scanner/scanner.js';
import { ArtMaker } from '../art/maker.js';
import { subtitleStore } from '../media/subtitles.js';
import { createDemoLibrary } from '../demo/library.js';
import { RELATIVE_PATHS_HELP } from '../util/paths.js';
import { addSettingFlags, config, fail, progressLine } from './common.js';

export function registerScanCommand(program: Command): void {
  addSettingFlags(program.command('scan').description('scan the media directories into the catalog and exit'), ['media_dir', 'data_dir', 'log_level', 'scan_concurrency', 'ffprobe'])
    .option('--json', 'print a machine-readable result')
    .addHelpText('after', RELATIVE_PATHS_HELP)
    .action((opts: FlagValues & { json?: boolean }) => scanCommand(opts));
}

async function scanCommand(flags: FlagValues & { json?: boolean }): Promise<void> {
  const cfg = config(flags);
  // stdout is the result (and --json must be one JSON document): logs go to stderr
  const log = createLogger(cfg.logLevel === 'info' ? 'warn' : cfg.logLevel, 'tapedeck', { toStderr: true });
  await mkdir(cfg.dataDir, { recursive: true });
  const catalog = new Catalog(new LevelStore(join(cfg.dataDir, 'catalog')));
  try {
    await catalog.open();
  } catch (err) {
    fail(new Error(`${(err as Error).message} (is a Tapedeck server running on this data directory?)`));
  }
  let roots = cfg.mediaDirs;
  if (cfg.demo) {
    const demo = join(cfg.dataDir, 'demo');
    await createDemoLibrary(demo);
    roots = [demo];
  }
  const result = await scan(catalog, {
    roots,
    concurrency: cfg.scanConcurrency,
    ffprobe: cfg.ffprobe,
    art: cfg.art ? new ArtMaker({ dataDir: cfg.dataDir, log }) : undefined,
    subtitles: subtitleStore(cfg.dataDir),
    log,
    onProgress: (p) => progressLine(`scanning: ${p.seen} files, ${p.probed} read, ${p.unchanged} unchanged, ${p.rate} files/s`),
  });
  const totals = await catalog.totals();
  await catalog.close();
  progressLine(`scanned ${result.seen} files in ${(result.elapsedMs / 1000).toFixed(1)} s (${result.rate} files/s): ${result.probed} read, ${result.unchanged} unchanged, ${result.removed} removed, ${result.failed} unreadable`, true);
  if (flags.json) process.stdout.write(JSON.stringify({ scan: result, library: totals }) + '\n');
  else process.stdout.write(`library: ${totals.items} items (${totals.audio} audio, ${totals.video} video, ${totals.image} images)\n`);
}
