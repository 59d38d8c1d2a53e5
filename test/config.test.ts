import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfigText, SETTINGS, envVarOf } from '../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'tapedeck-cfg-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const noEnv = {} as NodeJS.ProcessEnv;

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('defaults without any configuration', (t) => {
  const c = loadConfig({ env: { HOME: '/home/x' } as NodeJS.ProcessEnv, flags: {} });
  t.is(c.port, 8210);
  t.deepEqual(c.mediaDirs, []);
  t.true(c.demo);
  t.is(c.dataDir, '/home/x/.local/share/tapedeck');
  t.true(c.ssdp);
  t.regex(c.friendlyName, /^Tapedeck on /);
});

test('systemd StateDirectory becomes the data directory', (t) => {
  const c = loadConfig({ env: { STATE_DIRECTORY: '/var/lib/tapedeck' } as NodeJS.ProcessEnv });
  t.is(c.dataDir, '/var/lib/tapedeck');
});

test('file < environment < flags, lists repeat', (t) => {
  const f = file('a.conf', `# comment\nport = 9000\nmedia_dir = ${dir}\nmedia_dir = ${dir}\nfriendly_name = "From File"\ninterface = eth7\n`);
  const fromFile = loadConfig({ flags: { config: f }, env: noEnv });
  t.is(fromFile.port, 9000);
  t.deepEqual(fromFile.mediaDirs, [dir, dir]);
  t.is(fromFile.friendlyName, 'From File');
  t.deepEqual(fromFile.interfaces, ['eth7']);
  t.false(fromFile.demo);
  const fromEnv = loadConfig({ flags: { config: f }, env: { TAPEDECK_PORT: '9100' } as NodeJS.ProcessEnv });
  t.is(fromEnv.port, 9100);
  const fromFlags = loadConfig({ flags: { config: f, port: '9200', name: 'Flag', ssdp: false }, env: { TAPEDECK_PORT: '9100' } as NodeJS.ProcessEnv });
  t.is(fromFlags.port, 9200);
  t.is(fromFlags.friendlyName, 'Flag');
  t.false(fromFlags.ssdp);
});

test('unknown key: file, line and a suggestion', (t) => {
  const f = file('b.conf', 'port = 1\n\nprot = 2\n');
  const err = t.throws(() => loadConfig({ flags: { config: f }, env: noEnv }), { instanceOf: ConfigError });
  t.is(err!.message, `${f}:3: unknown setting "prot" (did you mean "port"?)`);
});

test('bad values name the file and line', (t) => {
  for (const [text, re] of [
    ['port = 70000', /:1: bad value for port: "70000" \(expected 0\.\.65535\)/],
    ['port = eighty', /:1: bad value for port.*whole number/],
    ['log_level = loud', /:1: bad value for log_level.*one of fatal, error/],
    ['ssdp = maybe', /:1: bad value for ssdp.*true or false/],
    ['just words', /:1: expected "key = value"/],
    ['port = 1\nport = 2', /:2: port is set twice/],
  ] as const) {
    const f = file('c.conf', text);
    const err = t.throws(() => loadConfig({ flags: { config: f }, env: noEnv }), { instanceOf: ConfigError });
    t.regex(err!.message, re);
    t.true(err!.message.startsWith(f), 'names the file');
  }
});

test('a missing config file or media directory is a clear error', (t) => {
  t.throws(() => loadConfig({ flags: { config: join(dir, 'nope.conf') }, env: noEnv }), { message: /config file .*nope\.conf does not exist/ });
  t.throws(() => loadConfig({ flags: { media: ['/definitely/not/here'] }, env: noEnv }), { message: /media directory \/definitely\/not\/here does not exist/ });
  t.throws(() => loadConfig({ flags: { port: '-3' }, env: noEnv }), { message: /--port: bad value for port/ });
  t.throws(() => loadConfig({ env: { TAPEDECK_PORT: 'x' } as NodeJS.ProcessEnv }), { message: /environment TAPEDECK_PORT: bad value/ });
});

test('checks across settings still name where the value came from', (t) => {
  const f = file('x.conf', '# comment\ntape_block_size = 4097K\nmedia_dir = /definitely/not/here\n');
  t.throws(() => loadConfig({ flags: { config: f }, env: noEnv }), { message: `${f}:3: media directory /definitely/not/here does not exist` });
  const g = file('y.conf', 'friendly_name = x\ntape_block_size = 5000\n');
  t.throws(() => loadConfig({ flags: { config: g }, env: noEnv }), { message: `${g}:2: tape_block_size 5000 is not a multiple of 512` });
  t.throws(() => loadConfig({ flags: { config: g, tapeBlockSize: '6000' }, env: noEnv }), { message: '--tape-block-size: tape_block_size 6000 is not a multiple of 512' }, 'the flag wins, and is named');
  t.throws(() => loadConfig({ flags: { config: g }, env: { TAPEDECK_TAPE_BLOCK_SIZE: '5000' } as NodeJS.ProcessEnv }), { message: 'environment TAPEDECK_TAPE_BLOCK_SIZE: tape_block_size 5000 is not a multiple of 512' });
  const h = file('z.conf', 'media_dir = ' + dir + '\nmedia_dir = /not/here/either\n');
  t.throws(() => loadConfig({ flags: { config: h }, env: noEnv }), { message: `${h}:2: media directory /not/here/either does not exist` }, 'the second of a list');
  const k = file('k.conf', 'tape_backend = scsi\n');
  t.throws(() => loadConfig({ flags: { config: k }, env: noEnv }), { message: `${k}:1: tape_backend = scsi needs tape_changer and at least one tape_device` });
});

test('numbers are decimal: hex and other forms Number() would take are refused', (t) => {
  for (const v of ['0x10', '0b1', '1_0', 'Infinity', '.']) {
    t.throws(() => loadConfig({ flags: { tapeTimeScale: v }, env: noEnv }), { message: /--tape-time-scale: bad value for tape_time_scale/ }, v);
  }
  for (const [v, n] of [['0.5', 0.5], ['2', 2], ['1e-3', 0.001], ['.25', 0.25]] as const) t.is(loadConfig({ flags: { tapeTimeScale: v }, env: noEnv }).tape.timeScale, n);
});

test('parseConfigText ignores comments, blank lines and a BOM', (t) => {
  const raw = parseConfigText('\uFEFF# x\n; y\n\n  port = 5  \n', 'f');
  t.deepEqual(raw.get('port'), ['5']);
});

test('README documents every setting with its flag, key and env variable', (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const s of SETTINGS) {
    const row = readme.split('\n').find((l) => l.startsWith('|') && l.includes(`\`${s.key}\``));
    t.truthy(row, `README row for ${s.key}`);
    t.true(row!.includes(`--${s.flag}`), `README names --${s.flag}`);
    t.true(row!.includes(envVarOf(s)), `README names ${envVarOf(s)}`);
  }
});

test('tape and staging settings: sizes with units, derived directories, scsi needs devices', (t) => {
  const c = loadConfig({ flags: { data: '/srv/td', tapeBlockSize: '512K', cacheSize: '3G', tapeTimeScale: '0' }, env: noEnv });
  t.is(c.tape.blockSize, 512 * 1024);
  t.is(c.cacheSize, 3 * 1024 ** 3);
  t.is(c.tape.timeScale, 0);
  t.is(c.tape.dir, '/srv/td/vtl');
  t.is(c.cacheDir, '/srv/td/cache');
  t.is(c.tape.backend, 'virtual');
  t.is(loadConfig({ env: { CACHE_DIRECTORY: '/var/cache/tapedeck' } as NodeJS.ProcessEnv }).cacheDir, '/var/cache/tapedeck');
  t.throws(() => loadConfig({ flags: { tapeBlockSize: '1000' }, env: noEnv }), { message: /tape_block_size|expected 4096/ });
  t.throws(() => loadConfig({ flags: { tapeBlockSize: '5000' }, env: noEnv }), { message: /not a multiple of 512/ });
  t.throws(() => loadConfig({ flags: { cacheSize: 'lots' }, env: noEnv }), { message: /--cache-size: bad value for cache_size: "lots" \(expected a size/ });
  t.throws(() => loadConfig({ flags: { tapeBackend: 'scsi' }, env: noEnv }), { message: /needs tape_changer/ });
  t.throws(() => loadConfig({ flags: { tapeTimeScale: '-1' }, env: noEnv }), { message: /tape_time_scale/ });
});

test('the stager may load a configuration whose media directories it cannot see', (t) => {
  const c = loadConfig({ flags: { media: ['/hidden/from/stager'] }, env: noEnv, checkMediaDirs: false });
  t.deepEqual(c.mediaDirs, ['/hidden/from/stager']);
});

test('allow: a subnet that is not a CIDR is a configuration error naming where it came from', (t) => {
  // QA probe: `serve --allow 10.0.0.0/33` (or a typo like "10.0.0/8") passed the settings and
  // only failed when the server built its ACL, as exit 1 ("runtime failure") without the flag,
  // file or line; `tapedeck config` printed it as valid.
  for (const v of ['10.0.0.0/33', 'abc', '10.0.0.0/', '300.1.1.1/8', 'fe80::/200']) {
    t.throws(() => loadConfig({ flags: { allow: [v] }, env: noEnv }), { instanceOf: ConfigError, message: new RegExp(`^--allow: bad value for allow: "${v.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" \\(`) }, v);
  }
  const f = file('allow.conf', 'allow = 192.168.1.0/24\nallow = 10.1.2.0/40\n');
  t.throws(() => loadConfig({ flags: { config: f }, env: noEnv }), { instanceOf: ConfigError, message: new RegExp(`^${f}:2: bad value for allow: "10\\.1\\.2\\.0/40"`) });
  t.throws(() => loadConfig({ env: { TAPEDECK_ALLOW: '10.0.0.0/8,nope' } as NodeJS.ProcessEnv }), { message: /^environment TAPEDECK_ALLOW: bad value for allow: "nope"/ });
  for (const v of ['10.0.0.0/8', '192.168.1.5', 'fd00::/8', '::1', '0.0.0.0/0']) t.deepEqual(loadConfig({ flags: { allow: [v] }, env: noEnv }).allow, [v], v);
});

test('a config file that is not a regular file, or is huge, is a clear error, without reading it', (t) => {
  // QA probe: --config /dev/zero read until memory ran out; a named pipe with no writer hung the
  // command (and the server's start) forever
  const fifo = join(dir, 'fifo.conf');
  if (spawnSync('mkfifo', [fifo]).status === 0) {
    t.throws(() => loadConfig({ flags: { config: fifo }, env: noEnv }), { instanceOf: ConfigError, message: `config file ${fifo} is not a regular file` });
  }
  if (existsSync('/dev/zero')) t.throws(() => loadConfig({ flags: { config: '/dev/zero' }, env: noEnv }), { instanceOf: ConfigError, message: 'config file /dev/zero is not a regular file' });
  const big = file('big.conf', '# padding\n'.repeat(200_000));
  t.throws(() => loadConfig({ flags: { config: big }, env: noEnv }), { instanceOf: ConfigError, message: /^config file .*big\.conf is larger than 1 MiB \(2000000 bytes\)/ });
  t.is(loadConfig({ flags: { config: file('ok.conf', '# comments\n'.repeat(1000) + 'port = 8300\n') }, env: noEnv }).port, 8300);
});
