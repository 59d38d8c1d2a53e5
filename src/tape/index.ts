// Tape layer entry point: re-exports and one factory that opens the configured backend.

import { ScsiTapeLibrary, type ScsiLibraryOptions } from './scsi.js';
import { VirtualTapeLibrary, type VirtualLibraryOptions } from './virtual.js';
import type { TapeLibrary } from './types.js';

export * from './types.js';
export * from './format.js';
export { VirtualTapeLibrary, type VirtualLibraryOptions } from './virtual.js';
export { ScsiTapeLibrary, type ScsiLibraryOptions, type CommandRunner, type DeviceIO } from './scsi.js';
export { ScaledClock, LTO8, LTO9, PRESETS, type TapeClock, type TimingPreset } from './timing.js';

export type TapeLibraryConfig =
  | ({ backend: 'virtual'; dir: string } & VirtualLibraryOptions)
  | ({ backend: 'scsi' } & ScsiLibraryOptions);

/** Open the tape library described by `config` (virtual is the default backend). */
export async function openTapeLibrary(config: TapeLibraryConfig): Promise<TapeLibrary> {
  if (config.backend === 'scsi') {
    const { backend: _b, ...opts } = config;
    return new ScsiTapeLibrary(opts).init();
  }
  const { backend: _b, dir, ...opts } = config;
  return VirtualTapeLibrary.open(dir, opts);
}
