// Structured, leveled logs: one JSON event per line on stdout, so journald keeps
// them whole. pino is used because it is fast and has no console noise.
//
// Under systemd (stdout is the journal stream named by $JOURNAL_STREAM) each line
// starts with its syslog priority, `<6>` for info, `<4>` for warn and so on, which
// journald strips and records (SyslogLevelPrefix=, on by default), so
// `journalctl -p warning -u tapedeck` shows the warnings and errors only.
import { fstatSync } from 'node:fs';
import { pino, type Logger } from 'pino';

export type { Logger };

/** syslog priority of a pino level number (10 trace … 60 fatal). */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2; // crit
  if (level >= 50) return 3; // err
  if (level >= 40) return 4; // warning
  if (level >= 30) return 6; // info
  return 7; // debug
}

/** Prefixes a serialized pino line (`{"level":30,…`) with `<priority>`. */
export function withPriority(line: string): string {
  const m = /^\{"level":(\d+)/.exec(line);
  return m ? `<${syslogPriority(Number(m[1]))}>${line}` : line;
}

/** Whether stdout is the journal stream systemd connected (JOURNAL_STREAM is "device:inode"). */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  try {
    const st = fstatSync(fd);
    return js === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/**
 * The server's logger: JSON lines on stdout. `toStderr` for commands whose stdout is their
 * result (e.g. `scan --json`).
 */
export function createLogger(level = 'info', name = 'tapedeck', opts: { toStderr?: boolean } = {}): Logger {
  const journal = stdoutIsJournal(process.env, opts.toStderr ? 2 : 1);
  const options = { name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, ...(journal ? { hooks: { streamWrite: withPriority } } : {}) };
  return opts.toStderr ? pino(options, pino.destination(2)) : pino(options);
}

/** A logger that writes nothing (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
