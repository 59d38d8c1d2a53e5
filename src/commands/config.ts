// `tapedeck config`: print the effective configuration as JSON.

import type { Command } from 'commander';
import type { FlagValues } from '../config.js';
import { addSettingFlags, config } from './common.js';

export function registerConfigCommand(program: Command): void {
  addSettingFlags(program.command('config').description('print the effective configuration as JSON and exit')).action((opts: FlagValues) => {
    process.stdout.write(JSON.stringify(config(opts), null, 2) + '\n');
  });
}
