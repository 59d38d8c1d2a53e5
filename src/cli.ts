#!/usr/bin/env node
// Command line: `tapedeck serve|scan|config ...`. Flags come from the settings
// table in config.ts, so every setting has a flag and the README can list them.

import { Command, Option } from 'commander';
import { join } from 'node:path';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { mkdir } from 'node:fs/promises';
import { ConfigError, loadConfig, SETTINGS, type Config, type FlagValues, type LoadOptions } from './config.js';
import { createLogger } from './log.js';
import { TapedeckServer, VERSION } from './server.js';
import { Catalog } from './catalog/catalog.js';
import { LevelStore } from './catalog/store.js';
import { scan } from './scanner/scanner.js';
import { createDemoLibrary } from './media/demo.js';
import { registerTapeCommands } from './archive/cli.js';
import { registerStagerCommand } from './staging/cli.js';
import { RELATIVE_PATHS_HELP } from './util/paths.js';

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

/** Adds the flags of the named settings (all when omitted) to a command. */
export function addSettingFlags(cmd: Command, keys?: string[]): Command {
  cmd.option('--config <FILE>', 'config file (default /etc/tapedeck/tapedeck.conf when it exists; env TAPEDECK_CONFIG)');
  for (const s of SETTINGS) {
    if (keys && !keys.includes(s.key)) continue;
    const desc = `${s.description} [config: ${s.key}; default: ${s.default}]`;
    if (s.type === 'list') cmd.addOption(new Option(`--${s.flag} <${s.arg}>`, desc).argParser(collect));
    else if (s.type === 'bool') {
      cmd.addOption(new Option(`--${s.flag}`, desc));
      cmd.addOption(new Option(`--no-${s.flag}`, `turn ${s.key} off`));
    } else cmd.addOption(new Option(`--${s.flag} <${s.arg}>`, desc));
  }
  return cmd;
}

export function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`tapedeck: ${err.message}\n`);
    process.exit(EXIT_USAGE);
  }
  process.stderr.write(`tapedeck: ${(err as Error).message ?? String(err)}\n`);
  process.exit(EXIT_FAILURE);
}

export function config(flags: FlagValues, opts: Omit<LoadOptions, 'flags'> = {}): Config {
  try {
    return loadConfig({ ...opts, flags });
  } catch (err) {
    fail(err);
  }
}

async function serve(flags: FlagValues): Promise<void> {
  const cfg = config(flags);
  const log = createLogger(cfg.logLevel);
  const server = new TapedeckServer(cfg, log);
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) {
      log.warn(`second ${sig}: exiting now`);
      process.exit(EXIT_FAILURE);
    }
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    server.stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err: err.message }, 'shutdown failed');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  try {
    await server.start();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'cannot start');
    await server.stop().catch(() => undefined);
    fail(err);
  }
}

/** One updating status line on a terminal; plain lines otherwise. */
export function progressLine(text: string, final = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}${final ? '\n' : ''}`);
  else if (final) process.stderr.write(text + '\n');
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
    log,
    onProgress: (p) => progressLine(`scanning: ${p.seen} files, ${p.probed} read, ${p.unchanged} unchanged, ${p.rate} files/s`),
  });
  const totals = await catalog.totals();
  await catalog.close();
  progressLine(`scanned ${result.seen} files in ${(result.elapsedMs / 1000).toFixed(1)} s (${result.rate} files/s): ${result.probed} read, ${result.unchanged} unchanged, ${result.removed} removed, ${result.failed} unreadable`, true);
  if (flags.json) process.stdout.write(JSON.stringify({ scan: result, library: totals }) + '\n');
  else process.stdout.write(`library: ${totals.items} items (${totals.audio} audio, ${totals.video} video, ${totals.image} images)\n`);
}

/**
 * After a usage error (unknown option, missing argument), one line naming the command's
 * --help instead of the whole help text, so the error and its "did you mean" stay on screen.
 */
function pointToHelpAfterError(cmd: Command, path: string[] = []): void {
  const names = cmd.parent ? [...path, cmd.name()] : ['tapedeck'];
  cmd.showHelpAfterError(`(run '${names.join(' ')} --help' for the list of options)`);
  for (const sub of cmd.commands) pointToHelpAfterError(sub, names);
}

export function buildCli(): Command {
  const program = new Command('tapedeck')
    .description('UPnP/DLNA media server for libraries that span disk and tape')
    .version(VERSION)
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    });

  addSettingFlags(program.command('serve').description('run the media server (scan, SSDP, HTTP)')).addHelpText('after', RELATIVE_PATHS_HELP).action((opts: FlagValues) => serve(opts));
  addSettingFlags(program.command('scan').description('scan the media directories into the catalog and exit'), ['media_dir', 'data_dir', 'log_level', 'scan_concurrency', 'ffprobe'])
    .option('--json', 'print a machine-readable result')
    .addHelpText('after', RELATIVE_PATHS_HELP)
    .action((opts: FlagValues & { json?: boolean }) => scanCommand(opts));
  addSettingFlags(program.command('config').description('print the effective configuration as JSON and exit')).action((opts: FlagValues) => {
    process.stdout.write(JSON.stringify(config(opts), null, 2) + '\n');
  });
  registerTapeCommands(program);
  registerStagerCommand(program);
  pointToHelpAfterError(program);
  return program;
}

export function main(argv = process.argv): void {
  buildCli()
    .parseAsync(argv)
    .catch((err) => fail(err));
}

// Run when executed directly (launchers that import this module call main() themselves).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) main();
