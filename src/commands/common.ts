// What every command file shares: the exit codes, the flags of the settings table, loading the
// configuration (a bad one is a message and exit code 2), fatal errors, and a progress line.
// Command files (commands/*.ts, archive/cli.ts, staging/cli.ts) import this; src/cli.ts only
// registers the commands.

import { Option, type Command } from 'commander';
import { ConfigError, loadConfig, SETTINGS, type Config, type FlagValues, type LoadOptions } from '../config.js';

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The settings that describe the tape library (every tape command and the stager take them). */
export const TAPE_LIBRARY_KEYS = [
  'data_dir',
  'log_level',
  'tape_backend',
  'tape_dir',
  'tape_time_scale',
  'tape_generation',
  'tape_drives',
  'tape_slots',
  'tape_block_size',
  'tape_capacity',
  'tape_changer',
  'tape_device',
];

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

/** One updating status line on a terminal; plain lines otherwise. */
export function progressLine(text: string, final = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}${final ? '\n' : ''}`);
  else if (final) process.stderr.write(text + '\n');
}
