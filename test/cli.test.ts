// The command line as scripts use it: exit codes, messages, --json.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoLibrary } from '../src/demo/library.js';
import { normaliseTargets } from '../src/archive/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tapedeck-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function tapedeck(...args: string[]) {
  return tapedeckEnv({}, ...args);
}

function tapedeckEnv(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, TAPEDECK_CONFIG: '', INIT_CWD: '', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('a bad config file: clear message with file and line, exit 2, no stack trace', (t) => {
  const conf = join(dir, 'bad.conf');
  writeFileSync(conf, 'port = 8200\nfriendly_nme = x\n');
  const r = tapedeck('serve', '--config', conf, '--data', join(dir, 'd1'));
  t.is(r.code, 2);
  t.is(r.err.trim(), `tapedeck: ${conf}:2: unknown setting "friendly_nme" (did you mean "friendly_name"?)`);
  t.notRegex(r.err, /at .*\.ts:\d+/);
});

test('bad flags and values: exit 2 with a message', (t) => {
  const bad = tapedeck('serve', '--port', 'x', '--data', join(dir, 'd2'));
  t.is(bad.code, 2);
  t.regex(bad.err, /--port: bad value for port/);
  const unknown = tapedeck('serve', '--frobnicate');
  t.is(unknown.code, 2);
  t.regex(unknown.err, /unknown option '--frobnicate'/);
  const iface = tapedeck('serve', '--interface', 'nosuch0', '--data', join(dir, 'd3'), '--no-scan-on-start');
  t.is(iface.code, 2);
  t.regex(iface.err, /nosuch0/);
});

test('a mistyped --data: the commands that only read refuse a missing directory (exit 2, nothing created); a file as data directory is exit 2 for every command', (t) => {
  const missing = join(dir, 'no-such-data');
  for (const args of [['ls'], ['ls', '--json'], ['policy', 'plan'], ['jobs']]) {
    const r = tapedeck(...args, '--data', missing);
    t.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    t.regex(r.err, new RegExp(`^tapedeck: no data directory ${missing}: nothing is catalogued there \\(check --data`), args.join(' '));
    t.false(existsSync(missing), `${args.join(' ')} created the directory`);
  }
  const file = join(dir, 'not-a-dir');
  writeFileSync(file, 'x');
  for (const args of [['ls'], ['scan'], ['archive', 'i123'], ['serve', '--no-ssdp', '--port', '0', '--no-scan-on-start']]) {
    const r = tapedeck(...args, '--data', file);
    t.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    t.regex(r.err, new RegExp(`tapedeck: data directory ${file} is not a directory \\(check --data`), args.join(' '));
  }
});

test('jobs --items without a job ID is bad usage (exit 2), not a plain job list', (t) => {
  const r = tapedeck('jobs', '--items', '--data', join(dir, 'jobs-data'));
  t.is(r.code, 2, r.err);
  t.regex(r.err, /^tapedeck: --items lists the items of one job: give its ID/);
  t.is(r.out, '');
});

test('an unknown option: the error, the "did you mean" hint and one line pointing to --help, not the whole help', (t) => {
  const r = tapedeck('serve', '--medai');
  t.is(r.code, 2);
  const lines = r.err.trim().split('\n');
  t.deepEqual(lines, ["error: unknown option '--medai'", '(Did you mean --media?)', "(run 'tapedeck serve --help' for the list of options)"]);
  const sub = tapedeck('tape', 'ls', '--frob');
  t.is(sub.code, 2);
  t.regex(sub.err, /tapedeck tape ls --help/);
  t.notRegex(sub.err, /Usage:/);
});

test('scan --json scans a library and reports totals; a second scan reads nothing', async (t) => {
  const media = join(dir, 'media');
  await createDemoLibrary(media);
  const data = join(dir, 'scan-data');
  const first = tapedeck('scan', '--media', media, '--data', data, '--json');
  t.is(first.code, 0, first.err);
  const j = JSON.parse(first.out);
  t.true(j.scan.probed > 10);
  t.is(j.library.items, j.scan.probed);
  t.true(j.library.audio > 0 && j.library.image > 0 && j.library.video > 0);
  const second = JSON.parse(tapedeck('scan', '--media', media, '--data', data, '--json').out);
  t.is(second.scan.probed, 0);
  t.is(second.scan.unchanged, j.scan.seen);
  // a warning (a media directory inside another) goes to stderr; stdout stays one JSON document
  const warned = tapedeck('scan', '--media', media, '--media', join(media, 'Music'), '--data', data, '--json');
  t.is(warned.code, 0, warned.err);
  t.notThrows(() => JSON.parse(warned.out), warned.out);
  t.regex(warned.err, /is inside/);
});

test('relative paths are relative to INIT_CWD under npm (the checkout is the working directory there), else to the working directory', async (t) => {
  const caller = join(dir, 'caller');
  await createDemoLibrary(join(caller, 'lib'));
  // as `cd CALLER && npm --prefix CHECKOUT run tapedeck -- scan --media ./lib --data ./d` runs it
  const r = tapedeckEnv({ INIT_CWD: caller }, 'scan', '--media', './lib', '--data', './d', '--json');
  t.is(r.code, 0, r.err);
  t.true(JSON.parse(r.out).scan.probed > 0);
  t.true(existsSync(join(caller, 'd', 'catalog')));
  const cfg = JSON.parse(tapedeckEnv({ INIT_CWD: caller }, 'config', '--media', './lib', '--data', '../x').out);
  t.deepEqual(cfg.mediaDirs, [join(caller, 'lib')]);
  t.is(cfg.dataDir, join(dir, 'x'));
  // without INIT_CWD: the working directory
  t.is(JSON.parse(tapedeckEnv({}, 'config', '--data', './y').out).dataDir, join(process.cwd(), 'y'));
  // archive/recall targets
  const saved = process.env.INIT_CWD;
  process.env.INIT_CWD = caller;
  try {
    t.deepEqual(normaliseTargets(['./lib/a.flac', '../b', 'i123', '/abs']), [join(caller, 'lib/a.flac'), join(dir, 'b'), 'i123', '/abs']);
  } finally {
    if (saved === undefined) delete process.env.INIT_CWD;
    else process.env.INIT_CWD = saved;
  }
  t.deepEqual(normaliseTargets(['./c'], '/srv/media'), ['/srv/media/c']);
  // and the help says so
  for (const cmd of ['archive', 'recall', 'scan', 'ls']) t.regex(tapedeck(cmd, '--help').out, /relative[\s\S]*INIT_CWD/, cmd);
});

test('config prints the effective configuration', (t) => {
  const r = tapedeck('config', '--port', '9999', '--name', 'X', '--data', join(dir, 'd4'));
  t.is(r.code, 0);
  const c = JSON.parse(r.out);
  t.is(c.port, 9999);
  t.is(c.friendlyName, 'X');
});
