// The configured tape library: cfg.tape → openTapeLibrary's options.

import type { Config } from '../config.js';
import { openTapeLibrary } from '../tape/index.js';
import { emptyCounters, type TapeLibrary } from '../tape/types.js';
import { ArchiveError } from './errors.js';
import { tapeLibraryConfig } from '../tape/settings.js';

/** Options for openTapeLibrary from the configuration; undefined when tape_backend = none. */
export { tapeLibraryConfig };

/** Open the configured library; NO_LIBRARY when tape_backend = none, BUSY when another process holds it. */
export async function openConfiguredLibrary(cfg: Config): Promise<TapeLibrary> {
  const lc = tapeLibraryConfig(cfg);
  if (!lc) throw new ArchiveError('NO_LIBRARY', 'no tape library is configured (tape_backend = none)');
  try {
    return await openTapeLibrary(lc);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'BUSY') throw new ArchiveError('BUSY', `cannot open the tape library: ${(err as Error).message}`, { cause: err });
    throw err;
  }
}

/**
 * A stand-in when the tape library cannot be opened: everything that needs it
 * fails with `err`, while job listings still work.
 */
export function unavailableLibrary(err: Error): TapeLibrary {
  const fail = async (): Promise<never> => {
    throw err;
  };
  return {
    kind: 'virtual',
    drives: [],
    changer: { inventory: fail, find: fail, load: fail, unload: fail, exportCartridge: fail, importCartridge: fail },
    mount: fail,
    stats: () => ({ ...emptyCounters(), seconds: {} }),
    close: async () => undefined,
  };
}
