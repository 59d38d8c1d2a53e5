// head_stub_seconds = auto: a head stub long enough to hide the worst time to
// the first tape byte (DESIGN.md §7-8, "stub sizing from physics").
//
// Worst case for a playback request at real LTO timing: every drive holds
// another cartridge, so the drive is unloaded (rewind included), the robot puts
// that cartridge back and fetches the wanted one, the drive loads it, and the
// item sits at the far end of the tape (a locate over the whole length):
//
//   unload + 2 · robot move + load + locate overhead + full pass
//
// LTO-9: 30 + 40 + 17 + 3 + 84 = 174 s; LTO-8: 24 + 40 + 15 + 3 + 94 = 176 s.
// A margin (×1.2, rounded up to whole seconds) covers the first block's read
// and the scheduling around it. A worst case measured on the library itself
// (real mounts are slower than the data sheet, e.g. a busy robot) replaces the
// model when it is longer.

import type { Config } from '../config.js';
import { fullPassSeconds, PRESETS, type TimingPreset } from '../tape/timing.js';

export const AUTO_STUB_MARGIN = 1.2;

/** Modelled worst seconds from a playback request to the first tape byte (see the header). */
export function worstFirstByteSeconds(p: TimingPreset): number {
  return p.unload + 2 * p.robotMove + p.load + p.locateOverhead + fullPassSeconds(p);
}

/** Seconds of playback a head stub keeps under `auto`: the worst wait for tape with its margin. */
export function autoHeadStubSeconds(p: TimingPreset, measuredWorstSeconds = 0): number {
  const worst = Math.max(worstFirstByteSeconds(p), Number.isFinite(measuredWorstSeconds) ? measuredWorstSeconds : 0);
  return Math.ceil(worst * AUTO_STUB_MARGIN);
}

/** The head stub seconds the configuration asks for (`auto` resolved from the library's drive timing). */
export function headStubSeconds(cfg: Pick<Config, 'headStubSeconds' | 'tape'>, measuredWorstSeconds = 0): number {
  if (cfg.headStubSeconds !== 'auto') return cfg.headStubSeconds;
  return autoHeadStubSeconds(PRESETS[cfg.tape.generation], measuredWorstSeconds);
}
