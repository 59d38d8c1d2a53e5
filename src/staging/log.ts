// Logging inside the staging worker. The worker must not need node_modules (its
// sandbox grants read access to its own code only), so it does not use pino:
// it writes pino-compatible JSON lines to stdout, which the supervising server
// parses and re-logs through its own logger (client.ts). In the external
// stager (`tapedeck stager`) a pino logger is passed in instead.

/** The subset of pino's Logger the worker uses. */
export interface WorkerLog {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** JSON lines on a writable stream, pino's field names (level numbers, msg, time). */
export function jsonLineLog(level: string, write: (line: string) => void = (l) => process.stdout.write(l)): WorkerLog {
  const min = LEVELS[level] ?? 30;
  const emit = (lvl: number) => (obj: object, msg?: string) => {
    if (lvl < min) return;
    let line: string;
    try {
      line = JSON.stringify({ level: lvl, time: new Date().toISOString(), pid: process.pid, name: 'tapedeck-stager', ...obj, ...(msg !== undefined ? { msg } : {}) });
    } catch {
      line = JSON.stringify({ level: lvl, time: new Date().toISOString(), pid: process.pid, name: 'tapedeck-stager', msg: msg ?? '(unserializable log record)' });
    }
    write(line + '\n');
  };
  return { error: emit(50), warn: emit(40), info: emit(30), debug: emit(20) };
}

export const nullLog: WorkerLog = { error() {}, warn() {}, info() {}, debug() {} };

export function levelName(n: number): 'error' | 'warn' | 'info' | 'debug' {
  if (n >= 50) return 'error';
  if (n >= 40) return 'warn';
  if (n >= 30) return 'info';
  return 'debug';
}
