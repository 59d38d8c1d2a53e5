import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stdoutIsJournal, syslogPriority, withPriority } from '../src/log.js';
import { REPO_ROOT } from './helpers/lab.js';

test('pino levels map to syslog priorities', (t) => {
  t.deepEqual([10, 20, 30, 40, 50, 60].map(syslogPriority), [7, 7, 6, 4, 3, 2]);
  t.is(withPriority('{"level":40,"msg":"x"}\n'), '<4>{"level":40,"msg":"x"}\n');
  t.is(withPriority('not a pino line\n'), 'not a pino line\n', 'anything else is left alone');
});

test('the journal is recognised by the device and inode JOURNAL_STREAM names, nothing else', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tapedeck-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'out');
  const fd = openSync(file, 'w');
  t.teardown(() => closeSync(fd));
  const st = statSync(file);
  t.true(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd));
  t.false(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1}` }, fd), 'another stream (e.g. stdout redirected by a child)');
  t.false(stdoutIsJournal({}, fd));
});

// The real logger in a child whose stdout is a file posing as the journal stream.
function logLines(journal: boolean): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'tapedeck-log-'));
  try {
    const file = join(dir, 'out');
    const fd = openSync(file, 'w');
    const st = statSync(file);
    const script = "import { createLogger } from './src/log.ts'; const l = createLogger('debug'); l.debug('d'); l.info('i'); l.warn('w'); l.error('e');";
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      stdio: ['ignore', fd, 'pipe'],
      env: { ...process.env, JOURNAL_STREAM: journal ? `${st.dev}:${st.ino}` : '' },
    });
    closeSync(fd);
    if (r.status !== 0) throw new Error(r.stderr.toString());
    return readFileSync(file, 'utf8').trim().split('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('under systemd every line carries its priority for journald; elsewhere lines are plain JSON', (t) => {
  const journal = logLines(true);
  t.deepEqual(journal.map((l) => l.slice(0, 3)), ['<7>', '<6>', '<4>', '<3>']);
  t.deepEqual(journal.map((l) => JSON.parse(l.slice(3)).msg), ['d', 'i', 'w', 'e'], 'the rest of the line is the JSON event');
  const plain = logLines(false);
  t.deepEqual(plain.map((l) => JSON.parse(l).msg), ['d', 'i', 'w', 'e']);
});
