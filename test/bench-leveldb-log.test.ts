// bench/leveldb-log.ts: the compactions of LevelDB's log inside a window (the bench prints them
// beside a load's CPU figure, which counts LevelDB's background thread).
import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compactionsIn, compactionsInLog } from '../bench/leveldb-log.js';
import { tempDir } from './helpers/temp.js';

// local time, as LevelDB writes it
const at = (h: number, m: number, s: number, ms = 0) => new Date(2026, 11, 7, h, m, s, ms).getTime();

const LOG = `2026/12/07-06:06:29.057853 7f2e97a1a6c0 Compacting 1@0 + 0@1 files
2026/12/07-06:06:29.067055 7f2e97a1a6c0 Compacted 1@0 + 0@1 files => 776052 bytes
2026/12/07-06:06:29.209139 7f2e97a1a6c0 Compacting 1@1 + 10@2 files
2026/12/07-06:06:29.841422 7f2e97a1a6c0 Compacted 1@1 + 10@2 files => 21620213 bytes
2026/12/07-06:06:29.841659 7f2e97a1a6c0 compacted to: files[ 0 1 41 0 0 0 0 ]
2026/12/07-06:06:30.001000 7f2e97a1a6c0 Level-0 table #699: 26866 bytes OK
2026/12/07-06:06:33.395797 7f2e97a1a6c0 Compacted 1@1 + 10@2 files => 20152866 bytes
`;

test('the compactions that ended inside the window, with the bytes they wrote (flushes and summaries not counted)', (t) => {
  t.deepEqual(compactionsInLog(LOG, at(6, 6, 29), at(6, 6, 30)), { count: 2, bytes: 776052 + 21620213 });
  t.deepEqual(compactionsInLog(LOG, at(6, 6, 29, 100), at(6, 6, 34)), { count: 2, bytes: 21620213 + 20152866 });
  t.deepEqual(compactionsInLog(LOG, at(6, 6, 34), at(6, 7, 0)), { count: 0, bytes: 0 });
  t.deepEqual(compactionsInLog('garbage\n\n', 0, Date.now()), { count: 0, bytes: 0 });
});

test('a database directory: LOG.old and LOG both read, missing ones as empty', async (t) => {
  const dir = await tempDir(t, 'tapedeck-ldblog-');
  t.deepEqual(compactionsIn(dir, 0, Date.now()), { count: 0, bytes: 0 });
  const lines = LOG.split('\n');
  await writeFile(join(dir, 'LOG.old'), lines.slice(0, 5).join('\n'));
  await writeFile(join(dir, 'LOG'), lines.slice(5).join('\n'));
  t.deepEqual(compactionsIn(dir, at(6, 6, 0), at(6, 7, 0)), { count: 3, bytes: 776052 + 21620213 + 20152866 });
  await mkdir(join(dir, 'sub'));
  t.deepEqual(compactionsIn(join(dir, 'sub'), 0, Date.now()), { count: 0, bytes: 0 });
});
