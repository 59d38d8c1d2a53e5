// Errors of the tape tier as operators and scripts see them. Every error has a
// code, and every code one exit status of the CLI:
//
//   2  bad input: unknown object ID / path / label, invalid request
//   3  resource problem: cartridge offline, no room in the archive pool,
//      no room on the disk a recall writes to, no free drive, tape library busy or not configured
//   1  anything else (I/O error, verification mismatch, ...)
//   130  interrupted: the job was left unfinished (the server following it went away); it resumes

import { isTapeError } from '../tape/types.js';

export type ArchiveErrorCode =
  | 'NOT_FOUND' // unknown object ID, path, container or cartridge label
  | 'INVALID' // malformed request
  | 'OFFLINE' // a cartridge that is needed is outside the library
  | 'NO_ROOM' // no cartridge of the archive pool has room
  | 'NO_SPACE' // the disk a recall writes to has not enough free space (or filled up: ENOSPC)
  | 'NO_DRIVE' // no drive can take the cartridge
  | 'BUSY' // tape library or catalog in use by another process
  | 'NO_LIBRARY' // no tape library configured
  | 'VERIFY' // read-back does not match
  | 'INTERRUPTED' // the CLI lost the server running its job (killed, stopped); the job is durable and resumes
  | 'FAILED'; // anything else

export const EXIT_CODES: Record<ArchiveErrorCode, number> = {
  NOT_FOUND: 2,
  INVALID: 2,
  OFFLINE: 3,
  NO_ROOM: 3,
  NO_SPACE: 3,
  NO_DRIVE: 3,
  BUSY: 3,
  NO_LIBRARY: 3,
  VERIFY: 1,
  INTERRUPTED: 130,
  FAILED: 1,
};

export class ArchiveError extends Error {
  readonly code: ArchiveErrorCode;
  readonly label?: string;
  constructor(code: ArchiveErrorCode, message: string, opts: { label?: string; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'ArchiveError';
    this.code = code;
    if (opts.label !== undefined) this.label = opts.label;
  }
  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

/** The code of any error: ArchiveError codes as they are, tape errors mapped. */
export function errorCode(err: unknown): ArchiveErrorCode {
  if (err instanceof ArchiveError) return err.code;
  if (isTapeError(err)) {
    switch (err.code) {
      case 'OFFLINE':
        return 'OFFLINE';
      case 'NOT_FOUND':
        return 'NOT_FOUND';
      case 'EOM':
        return 'NO_ROOM';
      case 'BUSY':
        return 'BUSY';
      case 'FULL':
        return 'NO_DRIVE';
      case 'INVALID':
        return 'INVALID';
      default:
        return 'FAILED';
    }
  }
  const code = (err as { code?: unknown })?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'NO_SPACE';
  if (typeof code === 'string' && code in EXIT_CODES) return code as ArchiveErrorCode;
  return 'FAILED';
}

export function exitCodeOf(err: unknown): number {
  return EXIT_CODES[errorCode(err)];
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
