// Structured, leveled logs: one JSON event per line on stdout, so journald keeps
// them whole. pino is used because it is fast and has no console noise.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = 'info', name = 'tapedeck'): Logger {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that writes nothing (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
