// The systemd packaging in systemd/: the units must verify cleanly and stay
// under their exposure targets (systemd-analyze security --offline=true), keep
// the directives the service needs to work, and the sysusers/tmpfiles entries
// must create what the units expect. The default config must match the
// settings table it is generated from.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText, SETTINGS } from '../src/config.js';
import { renderDefaultConfig } from '../scripts/gen-config.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SD = join(ROOT, 'systemd');
const SERVER = join(SD, 'tapedeck.service');
const STAGER = join(SD, 'tapedeck-stager.service');

/** Exposure targets from the issue (lower is safer; the Debian minidlna unit scores 9.2). */
const TARGETS: Record<string, number> = { 'tapedeck.service': 3.5, 'tapedeck-stager.service': 2.0 };

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const ANALYZE = which('systemd-analyze');
const isRoot = process.getuid?.() === 0;
const withAnalyze = ANALYZE ? test : test.skip;
const skipNote = ANALYZE ? '' : ' (skipped: systemd-analyze not found on this machine)';
if (!ANALYZE) console.warn('systemd.test.ts: systemd-analyze is not installed: the verify/security checks are skipped');

/** Minimal unit file reader: section -> key -> values (in order; repeated keys accumulate). */
function readUnit(file: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let cur: Map<string, string[]> | undefined;
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      cur = new Map();
      sections.set(sec[1], cur);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !cur) throw new Error(`${file}: cannot parse line ${JSON.stringify(raw)}`);
    const key = line.slice(0, eq).trim();
    cur.set(key, [...(cur.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

function values(unit: Map<string, Map<string, string[]>>, key: string, section = 'Service'): string[] {
  return unit.get(section)?.get(key) ?? [];
}
const last = (unit: Map<string, Map<string, string[]>>, key: string, section = 'Service') => values(unit, key, section).at(-1);

function exposure(file: string): { score: number; output: string } {
  // Exit status is non-zero above --threshold (default 100): read the score from the text.
  const r = spawnSync(ANALYZE!, ['security', '--offline=true', '--no-pager', file], { encoding: 'utf8' });
  const output = `${r.stdout}\n${r.stderr}`;
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(output);
  if (!m) throw new Error(`no exposure level in systemd-analyze output:\n${output}`);
  return { score: Number(m[1]), output };
}

for (const [name, target] of Object.entries(TARGETS)) {
  withAnalyze(`${name}: systemd-analyze security --offline exposure is at most ${target.toFixed(1)}${skipNote}`, (t) => {
    const { score, output } = exposure(join(SD, name));
    t.log(`${name}: exposure ${score} (target <= ${target})`);
    const open = output.split('\n').filter((l) => l.startsWith('✗'));
    t.true(score <= target, `${name} scores ${score}, above ${target}; exposed:\n${open.join('\n')}`);
  });
}

withAnalyze(`systemd-analyze verify reports nothing for either unit${skipNote}`, (t) => {
  // verify insists that ExecStart exists: substitute the prefix exactly as the
  // installer does, pointing at a stand-in tree that holds bin/tapedeck.
  const dir = mkdtempSync(join(tmpdir(), 'tapedeck-verify-'));
  try {
    const prefix = join(dir, 'prefix');
    mkdirSync(join(prefix, 'bin'), { recursive: true });
    copyFileSync(join(ROOT, 'bin', 'tapedeck'), join(prefix, 'bin', 'tapedeck'));
    chmodSync(join(prefix, 'bin', 'tapedeck'), 0o755);
    const files = [SERVER, STAGER].map((src) => {
      const dst = join(dir, src.split('/').at(-1)!);
      writeFileSync(dst, readFileSync(src, 'utf8').replaceAll('/opt/tapedeck', prefix));
      return dst;
    });
    const r = spawnSync(ANALYZE!, ['verify', '--man=no', ...files], { encoding: 'utf8' });
    // Other units on the machine may draw warnings of their own; ours must draw none.
    const ours = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /tapedeck/.test(l) && l.trim());
    t.deepEqual(ours, [], `systemd-analyze verify complained:\n${ours.join('\n')}`);
    t.is(r.status, 0, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the server unit keeps what the server needs: network families, multicast, files, ordered stop', (t) => {
  const u = readUnit(SERVER);
  t.is(last(u, 'ExecStart'), '/opt/tapedeck/bin/tapedeck serve --config /etc/tapedeck/tapedeck.conf');
  t.is(last(u, 'User'), 'tapedeck');
  t.is(last(u, 'Group'), 'tapedeck');
  t.is(last(u, 'StateDirectory'), 'tapedeck', 'STATE_DIRECTORY is the default data_dir');
  t.is(last(u, 'CacheDirectory'), 'tapedeck');
  t.deepEqual(values(u, 'ConfigurationDirectory'), [], 'ConfigurationDirectory= would make /etc/tapedeck writable');
  // os.networkInterfaces() needs netlink; SSDP and HTTP need inet; the stager socket needs unix.
  t.deepEqual(new Set(last(u, 'RestrictAddressFamilies')!.split(/\s+/)), new Set(['AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_NETLINK']));
  const allow = values(u, 'IPAddressAllow').join(' ').split(/\s+/);
  for (const a of ['localhost', 'link-local', 'multicast', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']) t.true(allow.includes(a), `IPAddressAllow lacks ${a}`);
  t.is(last(u, 'IPAddressDeny'), 'any');
  // V8's JIT needs W+X memory: MemoryDenyWriteExecute=yes would crash node.
  t.not(last(u, 'MemoryDenyWriteExecute'), 'yes');
  t.is(last(u, 'ProtectSystem'), 'strict');
  t.is(last(u, 'ProtectHome'), 'read-only', 'media under /home stay readable');
  t.is(last(u, 'PrivateDevices'), 'yes');
  t.is(last(u, 'CapabilityBoundingSet'), '');
  t.is(last(u, 'NoNewPrivileges'), 'yes');
  t.is(last(u, 'SystemCallErrorNumber'), 'EPERM', 'filtered calls fail instead of killing node');
  // Ordered stop: SIGTERM to the main process (byebye, then HTTP, then catalog), bounded.
  t.is(last(u, 'KillSignal'), 'SIGTERM');
  t.is(last(u, 'KillMode'), 'mixed');
  t.true(Number(last(u, 'TimeoutStopSec')) >= 5);
  t.is(last(u, 'Restart'), 'on-failure');
  t.is(last(u, 'RestartPreventExitStatus'), '2', 'a configuration error does not restart-loop');
  t.true(values(u, 'After', 'Unit').join(' ').includes('network-online.target'));
  t.true(values(u, 'After', 'Unit').join(' ').includes('tapedeck-stager.service'));
  t.is(last(u, 'WantedBy', 'Install'), 'multi-user.target');
});

test('the stager unit has no network, only tape devices, and writes only cache, library and socket', (t) => {
  const u = readUnit(STAGER);
  t.regex(last(u, 'ExecStart')!, /^\/opt\/tapedeck\/bin\/tapedeck stager --socket \/run\/tapedeck\/stager\.sock --config \/etc\/tapedeck\/tapedeck\.conf$/);
  t.is(last(u, 'User'), 'tapedeck');
  t.is(last(u, 'SupplementaryGroups'), 'tape');
  t.is(last(u, 'PrivateNetwork'), 'yes');
  t.is(last(u, 'RestrictAddressFamilies'), 'AF_UNIX');
  t.is(last(u, 'DevicePolicy'), 'closed');
  // DeviceAllow= takes no globs in paths: the driver classes cover /dev/nst*, /dev/st* and /dev/sg*.
  t.deepEqual(values(u, 'DeviceAllow').sort(), ['char-sg rw', 'char-st rw']);
  t.not(last(u, 'PrivateDevices'), 'yes', 'PrivateDevices=yes would hide the tape nodes');
  t.is(last(u, 'ProtectSystem'), 'strict');
  t.is(last(u, 'CacheDirectory'), 'tapedeck');
  t.is(last(u, 'StateDirectory'), 'tapedeck/vtl');
  t.is(last(u, 'RuntimeDirectory'), 'tapedeck');
  t.is(last(u, 'RuntimeDirectoryPreserve'), 'yes', 'the socket directory is shared with the server');
  t.deepEqual(values(u, 'ReadWritePaths'), [], 'writable paths come only from the *Directory= settings');
  t.not(last(u, 'MemoryDenyWriteExecute'), 'yes');
  t.is(last(u, 'Restart'), 'on-failure');
  t.is(last(u, 'WantedBy', 'Install'), 'tapedeck.service');
  const modules = readFileSync(join(SD, 'tapedeck.modules-load'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'));
  t.deepEqual(modules, ['st', 'sg'], 'the device classes exist before the stager starts');
});

const sysTools = Boolean(which('systemd-sysusers') && which('systemd-tmpfiles'));
(sysTools && isRoot ? test : test.skip)(
  `sysusers and tmpfiles entries create the tapedeck user (in group tape) and its directories${sysTools && isRoot ? '' : ' (skipped: needs root and systemd-sysusers/systemd-tmpfiles)'}`,
  (t) => {
    // --root confines both tools to a scratch tree: the machine's users and /var are untouched.
    const root = mkdtempSync(join(tmpdir(), 'tapedeck-sysroot-'));
    try {
      mkdirSync(join(root, 'etc'));
      execFileSync('systemd-sysusers', [`--root=${root}`, join(SD, 'tapedeck.sysusers')], { stdio: 'pipe' });
      const passwd = readFileSync(join(root, 'etc', 'passwd'), 'utf8');
      const group = readFileSync(join(root, 'etc', 'group'), 'utf8');
      const user = passwd.split('\n').find((l) => l.startsWith('tapedeck:'));
      t.truthy(user, passwd);
      const [, , uid, gid, , home, shell] = user!.split(':');
      t.true(Number(uid) < 1000, 'a system user');
      t.is(home, '/var/lib/tapedeck');
      t.regex(shell, /nologin$/);
      t.true(group.split('\n').some((l) => l === `tapedeck:x:${gid}:`), group);
      t.regex(group, /^tape:x:\d+:(.*,)?tapedeck(,.*)?$/m, 'tapedeck is a member of tape');

      execFileSync('systemd-tmpfiles', [`--root=${root}`, '--create', join(SD, 'tapedeck.tmpfiles')], { stdio: 'pipe' });
      for (const d of ['var/lib/tapedeck', 'var/lib/tapedeck/vtl', 'var/cache/tapedeck', 'run/tapedeck']) {
        const st = statSync(join(root, d));
        t.true(st.isDirectory(), d);
        t.is(st.mode & 0o7777, 0o750, `${d} mode`);
        t.is(st.uid, Number(uid), `${d} owner`);
        t.is(st.gid, Number(gid), `${d} group`);
      }
      t.is(statSync(join(root, 'etc/tapedeck')).mode & 0o7777, 0o755);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);

test('systemd/tapedeck.conf is the generated default config (run scripts/gen-config.ts after changing the settings table)', (t) => {
  const committed = readFileSync(join(SD, 'tapedeck.conf'), 'utf8');
  t.is(committed, renderDefaultConfig(), 'out of date: npx tsx scripts/gen-config.ts');
});

test('the default config sets nothing, lists every setting, and each line is valid once uncommented', (t) => {
  const text = readFileSync(join(SD, 'tapedeck.conf'), 'utf8');
  t.is(parseConfigText(text, 'tapedeck.conf').size, 0, 'every key is commented out');
  const uncommented = text
    .split('\n')
    .map((l) => (/^#[a-z_]+ = /.test(l) ? l.slice(1) : l))
    .join('\n');
  const parsed = parseConfigText(uncommented, 'uncommented');
  t.deepEqual([...parsed.keys()].sort(), SETTINGS.map((s) => s.key).sort());
  for (const s of SETTINGS) {
    t.true(text.includes(s.description.split(' ').slice(0, 4).join(' ')), `description of ${s.key}`);
    t.true(text.includes(`Default: ${s.default.split(' ')[0]}`), `default of ${s.key}`);
  }
});
