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

type Register = (program: Command) => void;

/**
 * The modules that register the commands, in the order `tapedeck --help` lists them, with the
 * top-level command names each registers. A command line that names one of them loads only
 * that module: `tapedeck serve` (what the service runs for its whole life) does not compile
 * and keep the stager's, the tape drivers' and the operator commands' code (47 modules with
 * cli-progress, ~3 MB less resident at 20,000 items; bench/README.md, "Where the server's
 * resident memory goes"). Anything else (no command, `help`, a typo) loads them all.
 */
const COMMANDS: { names: string[]; load: () => Promise<Register> }[] = [
  { names: ['serve'], load: async () => (await import('./commands/serve.js')).registerServeCommand },
  { names: ['scan'], load: async () => (await import('./commands/scan.js')).registerScanCommand },
  { names: ['config'], load: async () => (await import('./commands/config.js')).registerConfigCommand },
  { names: ['tape', 'archive', 'recall', 'jobs'], load: async () => (await import('./archive/cli.js')).registerTapeCommands },
  { names: ['ls', 'policy'], load: async () => (await import('./policy/cli.js')).registerPolicyCommands },
  { names: ['stager'], load: async () => (await import('./staging/cli.js')).registerStagerCommand },
];

/** Top-level command names, for tests (each must be registered by its entry in COMMANDS). */
export const COMMAND_NAMES: readonly string[] = COMMANDS.flatMap((c) => c.names);

/**
 * After a usage error (unknown option, missing argument), one line naming the command's
 * --help instead of the whole help text, so the error and its "did you mean" stay on screen.
 */
function pointToHelpAfterError(cmd: Command, path: string[] = []): void {
  const names = cmd.parent ? [...path, cmd.name()] : ['tapedeck'];
  cmd.showHelpAfterError(`(run '${names.join(' ')} --help' for the list of options)`);
  for (const sub of cmd.commands) pointToHelpAfterError(sub, names);
}

/**
 * The command line with every command registered, or, when `argv` names a command (its first
 * argument after node and the script), only the module of that command.
 */
export async function buildCli(argv?: readonly string[]): Promise<Command> {
  const program = new Command('tapedeck')
    .description('UPnP/DLNA media server for libraries that span disk and tape')
    .version(VERSION)
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    });

  const name = argv?.[2];
  const named = COMMANDS.find((c) => name !== undefined && c.names.includes(name));
  for (const register of await Promise.all((named ? [named] : COMMANDS).map((c) => c.load()))) register(program);
  pointToHelpAfterError(program);
  return program;
}

export function main(argv = process.argv): void {
  buildCli(argv)
    .then((program) => program.parseAsync(argv))
    .catch((err) => fail(err));
}

// Run when executed directly (launchers that import this module call main() themselves).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) main();
