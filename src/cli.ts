#!/usr/bin/env node
// Command line: `tapedeck COMMAND ...`. This entry point only registers the commands; each lives
// in its own file (commands/, archive/cli.ts, staging/cli.ts) and takes the shared flag helpers
// from commands/common.ts. Flags come from the settings table in config.ts, so every setting
// has a flag and the README can list them.

import { Command } from 'commander';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { VERSION } from './version.js';
import { EXIT_USAGE, fail } from './commands/common.js';
import { registerServeCommand } from './commands/serve.js';
import { registerScanCommand } from './commands/scan.js';
import { registerConfigCommand } from './commands/config.js';
import { registerTapeCommands } from './archive/cli.js';
import { registerStagerCommand } from './staging/cli.js';
import { registerPolicyCommands } from './policy/cli.js';

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

  registerServeCommand(program);
  registerScanCommand(program);
  registerConfigCommand(program);
  registerTapeCommands(program);
  registerPolicyCommands(program);
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
