// Entry point of the staging worker process (started by the server's
// StagerClient, or by `tapedeck stager`), normally under Node's permission
// model and without network (sandbox.ts). Options come from the environment
// (options.ts). It serves the inherited socket on fd 3, or listens on a unix
// socket path. It exits when its connection to the server goes away (spawned
// mode) or on SIGTERM/SIGINT, releasing the tape library cleanly.

import { chmod } from 'node:fs/promises';
import { Socket } from 'node:net';
import { openTapeLibrary } from '../tape/index.js';
import type { TapeLibrary } from '../tape/types.js';
import { jsonLineLog, type WorkerLog } from './log.js';
import { OPTIONS_ENV, parseLaunchOptions } from './options.js';
import { StagingWorker } from './worker.js';

let log: WorkerLog = jsonLineLog('info');

async function main(): Promise<void> {
  const o = parseLaunchOptions(process.env[OPTIONS_ENV]);
  log = jsonLineLog(o.logLevel);
  let lib: TapeLibrary | undefined;
  let worker: StagingWorker | undefined;
  let stopping = false;
  const stop = async (code: number, why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'staging worker stopping');
    const force = setTimeout(() => process.exit(code), 15_000);
    force.unref();
    try {
      await worker?.close();
      await lib?.close();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'shutdown failed');
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0, 'SIGTERM'));
  process.on('SIGINT', () => void stop(0, 'SIGINT'));
  process.on('uncaughtException', (err) => {
    log.error({ err: err.message, stack: err.stack }, 'uncaught exception in the staging worker');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    log.error({ err: (err as Error)?.message ?? String(err) }, 'unhandled rejection in the staging worker');
  });

  lib = await openTapeLibrary(o.tape);
  worker = await StagingWorker.create({
    library: lib,
    cacheDir: o.cacheDir,
    cacheSize: o.cacheSize,
    admissionTimeoutMs: o.admissionTimeoutMs,
    idleUnloadMs: o.idleUnloadMs,
    ...(o.tuning ? { tuning: o.tuning } : {}),
    log,
    ...(o.testHooks ? { testHooks: true } : {}),
    ...(o.sandbox ? { sandbox: o.sandbox } : {}),
  });
  if (o.listen) {
    await worker.listen(o.listen);
    await chmod(o.listen, 0o660).catch((err: Error) => log.warn({ err: err.message }, 'cannot chmod the socket'));
    log.info({ socket: o.listen, pid: process.pid }, `staging worker listening on ${o.listen}`);
  } else {
    const sock = new Socket({ fd: 3, readable: true, writable: true });
    worker.attach(sock);
    sock.once('close', () => void stop(0, 'server connection closed'));
    log.debug({ pid: process.pid }, 'staging worker serving its server');
  }
}

main().catch((err: Error) => {
  log.error({ err: err.message }, `staging worker cannot start: ${err.message}`);
  process.exit(2);
});
