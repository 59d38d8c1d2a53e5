// `tapedeck stager --socket PATH [--config FILE]`: the staging worker as its own
// service (tapedeck-stager.service), for servers configured with
// `stager = PATH`. It reads the configuration (the sandboxed worker cannot),
// then runs the worker under the same sandbox the server uses for a spawned
// worker (Node's permission model, a private network namespace when possible)
// listening on PATH, forwards SIGTERM/SIGINT to it and exits with its status.
// `--no-sandbox` runs the worker inside this process instead (debugging).

import { spawn } from 'node:child_process';
import { chmod, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { addSettingFlags, config, fail, TAPE_LIBRARY_KEYS } from '../commands/common.js';
import { createLogger } from '../log.js';
import type { FlagValues } from '../config.js';
import { openTapeLibrary } from '../tape/index.js';
import { launchOptions, OPTIONS_ENV, writablePaths } from './options.js';
import { workerCommand } from './sandbox.js';
import { StagingWorker } from './worker.js';

/** The settings the stager uses (its --help lists only these). */
const STAGER_KEYS = [...TAPE_LIBRARY_KEYS, 'cache_dir', 'cache_size', 'admission_timeout', 'drive_idle_unload'];

export function registerStagerCommand(program: Command): void {
  addSettingFlags(
    program
      .command('stager')
      .description('run the staging worker (tape library and staging cache) on a unix socket, for servers set up with an external stager (stager = PATH)'),
    STAGER_KEYS,
  )
    .requiredOption('--socket <PATH>', 'unix socket to listen on; the server connects to it (its `stager` setting)')
    .option('--no-sandbox', "run the worker in this process, without Node's permission model or a private network namespace (debugging)")
    .action((flags: FlagValues & { socket: string; sandbox?: boolean }) => runStager(flags));
}

/** True when something accepts connections on the socket path. */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolvePromise(true);
    });
    s.once('error', () => resolvePromise(false));
  });
}

async function prepareSocket(path: string): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
  if (await socketAlive(path)) throw new Error(`a stager is already listening on ${path}`);
  await rm(path, { force: true }); // stale socket of a stager that died
}

async function runStager(flags: FlagValues & { socket: string; sandbox?: boolean }): Promise<void> {
  // the stager never reads media directories (its systemd sandbox hides /home)
  const cfg = config(flags, { checkMediaDirs: false });
  const log = createLogger(cfg.logLevel, 'tapedeck-stager');
  const socket = resolve(flags.socket);
  let o;
  try {
    o = launchOptions(cfg, { listen: socket });
    await prepareSocket(socket);
  } catch (err) {
    fail(err);
  }
  if (flags.sandbox === false) {
    log.warn('running the staging worker without a sandbox (--no-sandbox)');
    const lib = await openTapeLibrary(o.tape);
    const worker = await StagingWorker.create({
      library: lib,
      cacheDir: o.cacheDir,
      cacheSize: o.cacheSize,
      admissionTimeoutMs: o.admissionTimeoutMs,
      idleUnloadMs: o.idleUnloadMs,
      log,
    });
    await worker.listen(socket);
    await chmod(socket, 0o660).catch(() => undefined);
    log.info({ socket, pid: process.pid }, `staging worker listening on ${socket}`);
    const stop = async () => {
      await worker.close();
      await lib.close();
      await rm(socket, { force: true });
      process.exit(0);
    };
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
    return;
  }
  const paths = writablePaths(o);
  paths.readWrite.push(dirname(socket)); // the worker creates the socket there
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (process.env.LANG) env.LANG = process.env.LANG;
  const cmd = await workerCommand(paths, env);
  o.sandbox = cmd.sandbox;
  for (const note of cmd.sandbox.notes) log.warn({ sandbox: note }, `staging worker sandbox: ${note}`);
  env[OPTIONS_ENV] = JSON.stringify(o);
  const child = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'inherit', 'inherit'], env, cwd: o.cacheDir });
  log.info({ pid: child.pid, socket, sandbox: { permission: cmd.sandbox.permission, netns: cmd.sandbox.netns } }, 'staging worker started');
  const forward = (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  process.on('SIGTERM', () => forward('SIGTERM'));
  process.on('SIGINT', () => forward('SIGINT'));
  child.once('error', (err) => fail(new Error(`cannot start the staging worker: ${err.message}`)));
  child.once('exit', (code, signal) => {
    void rm(socket, { force: true }).finally(() => {
      if (signal) log.warn({ signal }, `staging worker killed by ${signal}`);
      process.exit(code ?? 1);
    });
  });
}
