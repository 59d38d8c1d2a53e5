// Options of a staging worker process, as the server hands them over (JSON in
// the TAPEDECK_STAGER_OPTIONS environment variable: the sandboxed worker cannot
// read the config file) and as `tapedeck stager` builds them from the config.

import { join } from 'node:path';
import type { Config } from '../config.js';
import type { TapeLibraryConfig } from '../tape/index.js';
import type { TimingPreset } from '../tape/timing.js';
import type { SandboxInfo } from './protocol.js';
import type { WorkerTuning } from './worker.js';
import { tapeLibraryConfig } from '../tape/settings.js';

export const OPTIONS_ENV = 'TAPEDECK_STAGER_OPTIONS';

export interface WorkerLaunchOptions {
  tape: TapeLibraryConfig;
  cacheDir: string;
  cacheSize: number;
  admissionTimeoutMs: number;
  idleUnloadMs: number;
  tuning?: Partial<WorkerTuning>;
  logLevel: string;
  testHooks?: boolean;
  /** Listen on this unix socket path; without it, serve the inherited socket on fd 3. */
  listen?: string;
  sandbox?: SandboxInfo;
}

export interface LaunchExtras {
  tuning?: Partial<WorkerTuning>;
  testHooks?: boolean;
  /** Override figures of the virtual library's timing model (tests, benchmarks). */
  tapeTiming?: Partial<TimingPreset>;
  listen?: string;
}

/** The tape library the configuration describes (for the worker to open). */
function requiredLibraryConfig(cfg: Config, timing?: Partial<TimingPreset>): TapeLibraryConfig {
  const lc = tapeLibraryConfig(cfg, timing);
  if (!lc) throw new Error('no tape library is configured (tape_backend = none)');
  return lc;
}

export function launchOptions(cfg: Config, extras: LaunchExtras = {}): WorkerLaunchOptions {
  const o: WorkerLaunchOptions = {
    tape: requiredLibraryConfig(cfg, extras.tapeTiming),
    cacheDir: cfg.cacheDir,
    cacheSize: cfg.cacheSize,
    admissionTimeoutMs: cfg.admissionTimeout * 1000,
    idleUnloadMs: cfg.driveIdleUnload * 1000,
    logLevel: cfg.logLevel,
  };
  if (extras.tuning) o.tuning = extras.tuning;
  if (extras.testHooks) o.testHooks = true;
  if (extras.listen) o.listen = extras.listen;
  return o;
}

/** Paths the worker must be able to write (and read). */
export function writablePaths(o: WorkerLaunchOptions): { readWrite: string[]; devices: string[]; childProcesses: boolean } {
  if (o.tape.backend === 'scsi') {
    const dirs = [o.cacheDir];
    if (o.tape.statePath) dirs.push(join(o.tape.statePath, '..'));
    return { readWrite: dirs, devices: [o.tape.changer, ...o.tape.drives.map((d) => d.device)], childProcesses: true };
  }
  return { readWrite: [o.tape.dir, o.cacheDir], devices: [], childProcesses: false };
}

export function parseLaunchOptions(text: string | undefined): WorkerLaunchOptions {
  if (!text) throw new Error(`${OPTIONS_ENV} is not set (the staging worker is started by the server or by \`tapedeck stager\`)`);
  let o: WorkerLaunchOptions;
  try {
    o = JSON.parse(text) as WorkerLaunchOptions;
  } catch {
    throw new Error(`${OPTIONS_ENV} is not valid JSON`);
  }
  const bad = (what: string) => new Error(`${OPTIONS_ENV}: ${what}`);
  if (!o || typeof o !== 'object') throw bad('not an object');
  if (!o.tape || (o.tape.backend !== 'virtual' && o.tape.backend !== 'scsi')) throw bad('tape.backend must be virtual or scsi');
  if (typeof o.cacheDir !== 'string' || !o.cacheDir) throw bad('cacheDir missing');
  for (const k of ['cacheSize', 'admissionTimeoutMs', 'idleUnloadMs'] as const) {
    if (typeof o[k] !== 'number' || !(o[k] >= 0)) throw bad(`${k} must be a number ≥ 0`);
  }
  if (typeof o.logLevel !== 'string') o.logLevel = 'info';
  return o;
}
