// LevelDB's compactions inside a time window, from the database's own log (LOG, and LOG.old,
// which every open of the database leaves): what its background thread did while a load ran.
// The server's CPU from /proc counts that thread, so a figure whose window holds a compaction
// counts work that followed earlier writes (e.g. LevelDB merging a recent table into the bottom
// level once enough reads looked through it), not request work; the bench prints it beside the
// figure. LevelDB writes local time with microseconds: "2026/12/07-06:06:29.841422 7f2e97a1a6c0
// Compacted 1@1 + 10@2 files => 21620213 bytes".

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Compactions {
  /** Compactions that ended inside the window (memtable flushes to level 0 are not counted). */
  count: number;
  /** Bytes they wrote. */
  bytes: number;
}

const LINE = /^(\d{4})\/(\d\d)\/(\d\d)-(\d\d):(\d\d):(\d\d)\.(\d{6}) \S+ Compacted .* => (\d+) bytes$/;

/** The compactions of a LevelDB log text that ended in [fromMs, toMs] (epoch milliseconds, local time as LevelDB writes it). */
export function compactionsInLog(text: string, fromMs: number, toMs: number): Compactions {
  const out: Compactions = { count: 0, bytes: 0 };
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [y, mo, d, h, mi, s, us] = m.slice(1, 8).map(Number);
    const at = new Date(y, mo - 1, d, h, mi, s, Math.floor(us / 1000)).getTime();
    if (at < fromMs || at > toMs) continue;
    out.count++;
    out.bytes += Number(m[8]);
  }
  return out;
}

/** The compactions of the LevelDB database in `dir` that ended in the window (LOG.old and LOG; a missing file reads as empty). */
export function compactionsIn(dir: string, fromMs: number, toMs: number): Compactions {
  const read = (name: string) => {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch {
      return '';
    }
  };
  // a line is in one of them only: LOG.old is the log of the open before
  return compactionsInLog(read('LOG.old') + '\n' + read('LOG'), fromMs, toMs);
}
