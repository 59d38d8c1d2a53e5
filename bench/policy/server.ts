// One Tapedeck server of the policy benchmark: the real TapedeckServer (catalog in LevelDB,
// access tracking, policy engine, archive/recall jobs, HTTP delivery) with its staging worker
// spawned as `serve` spawns it, on loopback with SSDP off. Started by bench/policy.ts as its
// own process (like `tapedeck serve`) with the settings as flags in BENCH_POLICY_SERVER (JSON).
//
// Time compression (see bench/policy.ts): a few figures must be set below what the settings
// table accepts (a 300 s drive_idle_unload compressed 4,000× is 75 ms), so this runner sets
// them on the loaded config, and hands the virtual library a tape rate scaled like the bytes
// (ServerHooks.tapeTiming). Prints one JSON line {ready, url, socket} once the first scan
// is done; stops on SIGTERM.

import { join } from 'node:path';
import { loadConfig, type FlagValues } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { TapedeckServer } from '../../src/server.js';
import { SOCKET_NAME } from '../../src/control/protocol.js';
import type { TimingPreset } from '../../src/tape/timing.js';
import type { WorkerTuning } from '../../src/staging/worker.js';

export interface ServerSpec {
  flags: FlagValues;
  /** Figures set on the loaded config (seconds and bytes, already compressed). */
  overrides: { cacheSize?: number; driveIdleUnload?: number; admissionTimeout?: number; promoteWindow?: number; promoteVisitGap?: number };
  tapeTiming?: Partial<TimingPreset>;
  stagerTuning?: Partial<WorkerTuning>;
  playbackTimeScale?: number;
}

const spec = JSON.parse(process.env.BENCH_POLICY_SERVER ?? '{}') as ServerSpec;
const cfg = loadConfig({ env: {}, flags: spec.flags });
const o = spec.overrides ?? {};
if (o.cacheSize !== undefined) cfg.cacheSize = o.cacheSize;
if (o.driveIdleUnload !== undefined) cfg.driveIdleUnload = o.driveIdleUnload;
if (o.admissionTimeout !== undefined) cfg.admissionTimeout = o.admissionTimeout;
if (o.promoteWindow !== undefined) cfg.policy.promoteWindow = o.promoteWindow;
if (o.promoteVisitGap !== undefined) cfg.policy.promoteVisitGap = o.promoteVisitGap;
const server = new TapedeckServer(cfg, createLogger(cfg.logLevel), { ...(spec.tapeTiming ? { tapeTiming: spec.tapeTiming } : {}), ...(spec.stagerTuning ? { stagerTuning: spec.stagerTuning } : {}), ...(spec.playbackTimeScale ? { playbackTimeScale: spec.playbackTimeScale } : {}) });
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  server.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
try {
  await server.start();
  await server.ready;
  process.stdout.write(JSON.stringify({ ready: true, url: server.urls()[0], socket: join(cfg.dataDir, SOCKET_NAME), pid: process.pid }) + '\n');
} catch (err) {
  process.stderr.write(`bench policy server: ${(err as Error).stack ?? String(err)}\n`);
  await server.stop().catch(() => undefined);
  process.exit(1);
}
