// The tape settings of the configuration as a TapeLibraryConfig: one mapping for
// every process that opens the library (the staging worker, the operator CLI), so
// they agree on where state lives (the SCSI state file sits in tape_dir, which the
// stager's sandbox may write).
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { TapeLibraryConfig } from './index.js';
import type { TimingPreset } from './timing.js';

/** undefined when tape_backend = none. */
export function tapeLibraryConfig(cfg: Config, timing?: Partial<TimingPreset>): TapeLibraryConfig | undefined {
  const t = cfg.tape;
  if (t.backend === 'none') return undefined;
  if (t.backend === 'scsi') {
    if (!t.changer || t.devices.length === 0) throw new Error('tape_backend = scsi needs tape_changer and tape_device');
    return { backend: 'scsi', changer: t.changer, drives: t.devices.map((device) => ({ device })), blockSize: t.blockSize, statePath: join(t.dir, 'scsi-state.json') };
  }
  return {
    backend: 'virtual',
    dir: t.dir,
    timeScale: t.timeScale,
    generation: t.generation,
    drives: t.drives,
    slots: t.slots,
    blockSize: t.blockSize,
    capacityBytes: t.capacity,
    ...(timing ? { timing } : {}),
  };
}
