// Persistence of the virtual tape library: the layout of its directory, library.json (the fixed
// configuration, slot and drive contents, exported cartridges) read, checked and written
// atomically, the defaults and checks of a new library, and the lock file that keeps a second
// process out. The library (virtual.ts), its changer and its drives keep their state in memory
// and call writeLibraryFile after every change.
//
//   <dir>/library.json              configuration, slot contents, drive contents, exported cartridges
//   <dir>/cartridges/<LABEL>.tape   one file per cartridge (format: cartridge.ts)
//   <dir>/lock                      pid of the process that has the library open

import { open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRESETS } from './timing.js';
import { TapeError, type LtoGeneration } from './types.js';
import { isProcessAlive } from '../util/pid.js';

export interface LibraryConfig {
  slots: number;
  ieSlots: number;
  drives: number;
  generation: LtoGeneration;
  blockSize: number;
  capacityBytes: number;
}

export interface DriveState {
  label: string | null;
  sourceSlot: number | null;
  position: number;
}

export interface LibraryFile {
  format: 'tapedeck-virtual-library';
  version: 1;
  config: LibraryConfig;
  /** Index i = slot i+1; null when empty. */
  slots: (string | null)[];
  drives: DriveState[];
  offline: string[];
}

export const DEFAULTS: LibraryConfig = {
  slots: 16,
  ieSlots: 1,
  drives: 2,
  generation: 'LTO-9',
  blockSize: 256 * 1024,
  capacityBytes: 1024 ** 3,
};

export function validateSizes(blockSize: number, capacityBytes: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 512 || blockSize % 512 !== 0 || blockSize > 16 * 1024 * 1024) {
    throw new TapeError('INVALID', `block size must be a multiple of 512 between 512 and 16 MiB, got ${blockSize}`);
  }
  if (!Number.isFinite(capacityBytes) || capacityBytes < blockSize) {
    throw new TapeError('INVALID', `capacity must be at least one block, got ${capacityBytes}`);
  }
}

function positiveInt(v: number | undefined, dflt: number, name: string, min = 1): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min) throw new TapeError('INVALID', `${name} must be an integer ≥ ${min}, got ${v}`);
  return x;
}

/** library.json of a new library; `opts` as VirtualLibraryOptions (unset figures take DEFAULTS). */
export function newLibraryFile(opts: Partial<LibraryConfig>): LibraryFile {
  const generation = opts.generation ?? DEFAULTS.generation;
  if (!(generation in PRESETS)) throw new TapeError('INVALID', `unknown generation ${generation}`);
  const config: LibraryConfig = {
    slots: positiveInt(opts.slots, DEFAULTS.slots, 'slots'),
    ieSlots: positiveInt(opts.ieSlots, DEFAULTS.ieSlots, 'ieSlots', 0),
    drives: positiveInt(opts.drives, DEFAULTS.drives, 'drives'),
    generation,
    blockSize: opts.blockSize ?? DEFAULTS.blockSize,
    capacityBytes: opts.capacityBytes ?? DEFAULTS.capacityBytes,
  };
  validateSizes(config.blockSize, config.capacityBytes);
  return {
    format: 'tapedeck-virtual-library',
    version: 1,
    config,
    slots: Array.from({ length: config.slots }, () => null),
    drives: Array.from({ length: config.drives }, () => ({ label: null, sourceSlot: null, position: 0 })),
    offline: [],
  };
}

export function initialLabels(spec: number | string[] | undefined, config: LibraryConfig): string[] {
  if (spec === undefined) return [];
  if (Array.isArray(spec)) return spec;
  const n = positiveInt(spec, 0, 'cartridges', 0);
  if (n > config.slots) throw new TapeError('INVALID', `${n} cartridges do not fit in ${config.slots} slots`);
  const suffix = `L${config.generation.slice(4)}`;
  return Array.from({ length: n }, (_, i) => `TD${String(i + 1).padStart(4, '0')}${suffix}`);
}

function parseLibraryFile(text: string, dir: string): LibraryFile {
  let o: LibraryFile;
  try {
    o = JSON.parse(text) as LibraryFile;
  } catch (cause) {
    throw new TapeError('FORMAT', `${dir}/library.json is not valid JSON`, { cause });
  }
  const c = o?.config;
  if (
    o?.format !== 'tapedeck-virtual-library' ||
    !c ||
    !Array.isArray(o.slots) ||
    !Array.isArray(o.drives) ||
    !Array.isArray(o.offline) ||
    o.slots.length !== c.slots ||
    o.drives.length !== c.drives ||
    !(c.generation in PRESETS)
  ) {
    throw new TapeError('FORMAT', `${dir}/library.json is not a virtual tape library description`);
  }
  return o;
}

/** Takes <dir>/lock for this process (a stale lock of a dead process is taken over). */
export async function acquireLock(path: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid)) {
        throw new TapeError('BUSY', `virtual library is in use by process ${pid} (${path})`);
      }
      await rm(path, { force: true }); // stale lock
    }
  }
  throw new TapeError('BUSY', `cannot lock ${path}`);
}

/** library.json of the library in `realDir`, or undefined when there is none yet. */
export async function readLibraryFile(realDir: string, dir: string): Promise<LibraryFile | undefined> {
  try {
    return parseLibraryFile(await readFile(join(realDir, 'library.json'), 'utf8'), dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes library.json atomically (a temporary file renamed over it). Callers serialize writes. */
export async function writeLibraryFile(realDir: string, file: LibraryFile): Promise<void> {
  const tmp = join(realDir, 'library.json.tmp');
  await writeFile(tmp, JSON.stringify(file, null, 2) + '\n');
  await rename(tmp, join(realDir, 'library.json'));
}

/** Path of a cartridge's file in the library directory. */
export function cartridgeFile(realDir: string, label: string): string {
  return join(realDir, 'cartridges', `${label}.tape`);
}
