// `tapedeck serve`: run the media server until SIGTERM/SIGINT (a second signal exits at once).

import type { Command } from 'commander';
import type { FlagValues } from '../config.js';
import { createLogger } from '../log.js';
import { StartAborted, TapedeckServer } from '../server.js';
import { RELATIVE_PATHS_HELP } from '../util/paths.js';
import { addSettingFlags, config, EXIT_FAILURE, fail } from './common.js';

export function registerServeCommand(program: Command): void {
  addSettingFlags(program.command('serve').description('run the media server (scan, SSDP, HTTP)')).addHelpText('after', RELATIVE_PATHS_HELP).action((opts: FlagValues) => serve(opts));
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
    if (err instanceof StartAborted) return; // a signal came during start: its stop() exits the process
    log.error({ err: (err as Error).message }, 'cannot start');
    await server.stop().catch(() => undefined);
    fail(err);
  }
}
