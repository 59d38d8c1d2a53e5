// systemd/install.sh, staged with --destdir into scratch folders only: it must
// never touch this machine's /opt, /etc or /usr (every run below passes
// --destdir, which also turns off users, directories and systemctl).
// Dependencies are copied from the checkout's node_modules (offline, fast).
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const INSTALL = join(ROOT, 'systemd', 'install.sh');
const SD = join(ROOT, 'systemd');
const UNIT_DIR = 'usr/local/lib/systemd/system';
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const scratch: string[] = [];
function tempDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `tapedeck-install-${tag}-`));
  scratch.push(d);
  return d;
}
test.after.always(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

interface Run {
  status: number | null;
  out: string;
}

/** Runs the installer; a --destdir is mandatory here so nothing outside the scratch folder changes. */
function install(destdir: string, ...args: string[]): Run {
  if (!destdir.startsWith(tmpdir())) throw new Error(`refusing to run the installer outside ${tmpdir()}: ${destdir}`);
  const r = spawnSync('sh', [INSTALL, '--destdir', destdir, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function run(cmd: string, args: string[]): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180_000 }); // generous: release.sh packs the tree, which took over 30 s on a loaded 2-core machine (status null: killed)
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

// One full install up front (it builds dist/ if the sources changed since the last build);
// the tests below inspect it or work on copies made by further runs.
let D = '';
let first: Run;
test.before(() => {
  D = tempDir('main');
  first = install(D, '--no-start');
});

test.serial('a staged install lays out the application, the units and the entries', (t) => {
  t.is(first.status, 0, first.out);
  t.log(first.out.trim());
  const P = join(D, 'opt/tapedeck');
  for (const f of ['dist/src/cli.js', 'dist/src/server.js', 'package.json', 'package-lock.json', 'devices', 'node_modules/koa/package.json', 'node_modules/level/package.json', 'share/tapedeck/install-manifest', 'share/doc/tapedeck/systemd.md']) {
    t.true(existsSync(join(P, f)), `${f} is installed`);
  }
  // Production dependencies only; the compiled tests and benches stay out.
  for (const f of ['node_modules/typescript', 'node_modules/ava', 'node_modules/tsx', 'dist/test', 'dist/bench', 'src']) {
    t.false(existsSync(join(P, f)), `${f} is not installed`);
  }
  t.true((statSync(join(P, 'bin/tapedeck')).mode & 0o111) !== 0, 'the launcher is executable');
  const link = join(D, 'usr/local/bin/tapedeck');
  t.true(lstatSync(link).isSymbolicLink());
  t.is(readlinkSync(link), '/opt/tapedeck/bin/tapedeck', 'the link targets the final path, not the staging folder');

  for (const u of ['tapedeck.service', 'tapedeck-stager.service']) {
    const text = readFileSync(join(D, UNIT_DIR, u), 'utf8');
    t.is(text, readFileSync(join(SD, u), 'utf8'), `${u} is installed unchanged for the default prefix`);
  }
  t.is(readFileSync(join(D, 'usr/local/lib/sysusers.d/tapedeck.conf'), 'utf8'), readFileSync(join(SD, 'tapedeck.sysusers'), 'utf8'));
  t.is(readFileSync(join(D, 'usr/local/lib/tmpfiles.d/tapedeck.conf'), 'utf8'), readFileSync(join(SD, 'tapedeck.tmpfiles'), 'utf8'));
  t.is(readFileSync(join(D, 'usr/local/lib/modules-load.d/tapedeck.conf'), 'utf8'), readFileSync(join(SD, 'tapedeck.modules-load'), 'utf8'));
  t.regex(readFileSync(join(D, 'usr/local/lib/sysusers.d/tapedeck.conf'), 'utf8'), /^u tapedeck /m);
  t.regex(readFileSync(join(D, 'usr/local/lib/tmpfiles.d/tapedeck.conf'), 'utf8'), /^d\s+\/var\/lib\/tapedeck\s+0750 tapedeck tapedeck/m);

  t.is(readFileSync(join(D, 'etc/tapedeck/tapedeck.conf'), 'utf8'), readFileSync(join(SD, 'tapedeck.conf'), 'utf8'));
  // Staging creates no users and no state: the package does that through sysusers/tmpfiles.
  t.false(existsSync(join(D, 'var')), 'nothing under /var when staging');
  t.false(existsSync(join(D, 'etc/passwd')));
  t.regex(first.out, /ffprobe: (found at|not found)/, 'optional tools are reported');
});

test.serial('the installed launcher runs the CLI with only the production dependencies', (t) => {
  const bin = join(D, 'opt/tapedeck/bin/tapedeck');
  const v = run(bin, ['--version']);
  t.is(v.status, 0, v.out);
  t.is(v.out.trim(), VERSION);
  // `config` loads the settings through the whole CLI module graph (server, catalog, ...).
  const c = run(bin, ['config', '--config', join(D, 'etc/tapedeck/tapedeck.conf'), '--port', '8299']);
  t.is(c.status, 0, c.out);
  const cfg = JSON.parse(c.out) as { port: number; configFile: string };
  t.is(cfg.port, 8299);
  t.is(cfg.configFile, join(D, 'etc/tapedeck/tapedeck.conf'));
});

test.serial('the installed server starts from the installed tree alone and stops cleanly (loopback, no SSDP)', async (t) => {
  // Catches resources looked up relative to the sources rather than the installed tree.
  const data = tempDir('data');
  const media = join(data, 'media');
  mkdirSync(media);
  const child = spawn(join(D, 'opt/tapedeck/bin/tapedeck'), ['serve', '--config', join(D, 'etc/tapedeck/tapedeck.conf'), '--data', join(data, 'state'), '--media', media, '--port', '0', '--interface', 'lo', '--no-ssdp'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TAPEDECK_CONFIG: '' },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    // e.g. ENOENT when the install before failed: report it instead of crashing the worker
    child.once('error', (err) => {
      out += `\ncannot run the installed launcher: ${err.message}`;
      resolve(null);
    });
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "serving" line within 20 s:\n${out}`)), 20_000);
      const look = () => {
        const m = /"urls":\["(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout.on('data', look);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the installed server exited (${code}) before serving:\n${out}`));
      });
    });
    const res = await fetch(url + 'description.xml');
    t.is(res.status, 200);
    t.regex(await res.text(), /urn:schemas-upnp-org:device:MediaServer:1/);
  } finally {
    child.kill('SIGTERM');
  }
  t.is(await exited, 0, out);
  t.regex(out, /"msg":"stopped"/);
});

test.serial('a second run keeps an edited config, refreshes an untouched one, and is otherwise idempotent', (t) => {
  const conf = join(D, 'etc/tapedeck/tapedeck.conf');
  const shipped = readFileSync(join(SD, 'tapedeck.conf'), 'utf8');

  // Untouched and current: left as it is.
  let r = install(D, '--no-start', '--no-build');
  t.is(r.status, 0, r.out);
  t.regex(r.out, /is the current default/);
  t.is(readFileSync(conf, 'utf8'), shipped);

  // Edited: kept; the new default goes beside it.
  const edited = shipped + 'media_dir = /srv/media\nfriendly_name = Living room\n';
  writeFileSync(conf, edited);
  r = install(D, '--no-start', '--no-build');
  t.is(r.status, 0, r.out);
  t.regex(r.out, /kept your edited configuration/);
  t.is(readFileSync(conf, 'utf8'), edited, 'the edited config is not overwritten');
  t.is(readFileSync(conf + '.dist', 'utf8'), shipped);

  // Untouched default of an older release: updated to the new default.
  const older = '# an older default\n#port = 8200\n';
  writeFileSync(join(D, 'opt/tapedeck/share/tapedeck/tapedeck.conf.default'), older);
  writeFileSync(conf, older);
  r = install(D, '--no-start', '--no-build');
  t.is(r.status, 0, r.out);
  t.regex(r.out, /updated the unedited configuration/);
  t.is(readFileSync(conf, 'utf8'), shipped);
  t.false(existsSync(join(D, 'opt/tapedeck/share/tapedeck/previous.conf')), 'no leftovers');
  t.true(existsSync(join(D, 'opt/tapedeck/dist/src/cli.js')), 'the upgraded tree is complete');
  t.deepEqual(
    readFileSync(join(D, 'opt/tapedeck/share/tapedeck/install-manifest'), 'utf8').split('\n').filter((l) => l.startsWith('/')).sort(),
    ['/usr/local/bin/tapedeck', `/${UNIT_DIR}/tapedeck-stager.service`, `/${UNIT_DIR}/tapedeck.service`, '/usr/local/lib/modules-load.d/tapedeck.conf', '/usr/local/lib/sysusers.d/tapedeck.conf', '/usr/local/lib/tmpfiles.d/tapedeck.conf'].sort(),
  );
});

test.serial('--uninstall removes the installed files but keeps config, catalog and cache; --purge removes those too', (t) => {
  const catalog = join(D, 'var/lib/tapedeck/catalog/CURRENT');
  const segment = join(D, 'var/cache/tapedeck/seg-0001');
  mkdirSync(dirname(catalog), { recursive: true });
  mkdirSync(dirname(segment), { recursive: true });
  writeFileSync(catalog, 'MANIFEST-000001\n');
  writeFileSync(segment, 'bytes');
  const conf = join(D, 'etc/tapedeck/tapedeck.conf');
  const confText = readFileSync(conf, 'utf8');

  let r = install(D, '--uninstall');
  t.is(r.status, 0, r.out);
  for (const f of ['opt/tapedeck', 'usr/local/bin/tapedeck', `${UNIT_DIR}/tapedeck.service`, `${UNIT_DIR}/tapedeck-stager.service`, 'usr/local/lib/sysusers.d/tapedeck.conf', 'usr/local/lib/tmpfiles.d/tapedeck.conf', 'usr/local/lib/modules-load.d/tapedeck.conf']) {
    t.false(existsSync(join(D, f)), `${f} is removed`);
  }
  t.is(readFileSync(catalog, 'utf8'), 'MANIFEST-000001\n', 'the catalog is kept');
  t.is(readFileSync(segment, 'utf8'), 'bytes', 'the cache is kept');
  t.is(readFileSync(conf, 'utf8'), confText, 'the config is kept');
  t.regex(r.out, /kept \(remove with --uninstall --purge\)/);

  r = install(D, '--uninstall', '--purge');
  t.is(r.status, 0, r.out);
  for (const f of ['etc/tapedeck', 'var/lib/tapedeck', 'var/cache/tapedeck']) t.false(existsSync(join(D, f)), `${f} is purged`);
});

test('--prefix moves the tree and the units follow it', (t) => {
  const d = tempDir('prefix');
  const r = install(d, '--prefix', '/srv/apps/tapedeck', '--no-start', '--no-build', '--bindir', '/usr/bin', '--systemd-libdir', '/usr/lib');
  t.is(r.status, 0, r.out);
  t.true(existsSync(join(d, 'srv/apps/tapedeck/dist/src/cli.js')));
  t.false(existsSync(join(d, 'opt')));
  const unit = readFileSync(join(d, 'usr/lib/systemd/system/tapedeck.service'), 'utf8');
  t.regex(unit, /^ExecStart=\/srv\/apps\/tapedeck\/bin\/tapedeck serve /m);
  t.notRegex(unit, /\/opt\/tapedeck/);
  t.regex(readFileSync(join(d, 'usr/lib/systemd/system/tapedeck-stager.service'), 'utf8'), /^ExecStart=\/srv\/apps\/tapedeck\/bin\/tapedeck stager /m);
  t.is(readlinkSync(join(d, 'usr/bin/tapedeck')), '/srv/apps/tapedeck/bin/tapedeck');
  t.true(existsSync(join(d, 'usr/lib/sysusers.d/tapedeck.conf')));
  const v = run(join(d, 'srv/apps/tapedeck/bin/tapedeck'), ['--version']);
  t.is(v.out.trim(), VERSION, v.out);
  const u = install(d, '--prefix', '/srv/apps/tapedeck', '--bindir', '/usr/bin', '--systemd-libdir', '/usr/lib', '--uninstall');
  t.is(u.status, 0, u.out);
  t.false(existsSync(join(d, 'srv/apps/tapedeck')));
  t.false(existsSync(join(d, 'usr/bin/tapedeck')));
});

test('a release tarball installs with nothing but node: no build, no npm', (t) => {
  const d = tempDir('release');
  const mk = run('sh', [join(SD, 'release.sh'), '--out', d, '--no-build']);
  t.is(mk.status, 0, mk.out);
  const tarball = mk.out.trim().split('\n').at(-1)!;
  t.regex(tarball, new RegExp(`/tapedeck-${VERSION.replaceAll('.', '\\.')}-linux-${process.arch}\\.tar\\.gz$`));
  t.is(run('tar', ['-C', d, '-xzf', tarball]).status, 0);
  const tree = join(d, `tapedeck-${VERSION}-linux-${process.arch}`);
  t.false(existsSync(join(tree, 'src')), 'no sources in the tarball');
  t.false(existsSync(join(tree, 'node_modules/typescript')), 'no build tools in the tarball');
  t.true(existsSync(join(tree, 'systemd/install.sh')));
  const dest = join(d, 'root');
  const r = spawnSync('sh', [join(tree, 'systemd/install.sh'), '--destdir', dest, '--no-start'], { encoding: 'utf8', timeout: 120_000 });
  const out = `${r.stdout}${r.stderr}`;
  t.is(r.status, 0, out);
  t.notRegex(out, /building|npm ci/, 'neither a build nor npm');
  t.regex(out, /copied \d+ production packages/);
  const v = run(join(dest, 'opt/tapedeck/bin/tapedeck'), ['--version']);
  t.is(v.out.trim(), VERSION, v.out);
});

test('the installer refuses a prefix it does not own and bad options, and deletes nothing', (t) => {
  const d = tempDir('refuse');
  const foreign = join(d, 'opt/other');
  mkdirSync(foreign, { recursive: true });
  writeFileSync(join(foreign, 'precious'), 'keep me');
  for (const args of [['--prefix', '/opt/other', '--no-build'], ['--prefix', '/opt/other', '--uninstall']]) {
    const r = install(d, ...args);
    t.not(r.status, 0, r.out);
    t.regex(r.out, /not installed by this script/);
    t.is(readFileSync(join(foreign, 'precious'), 'utf8'), 'keep me');
  }
  // A `tapedeck` command that is not our link survives install and uninstall.
  mkdirSync(join(d, 'usr/local/bin'), { recursive: true });
  writeFileSync(join(d, 'usr/local/bin/tapedeck'), '#!/bin/sh\necho mine\n');
  let r = install(d, '--no-start', '--no-build');
  t.is(r.status, 0, r.out);
  t.regex(r.out, /exists and is not a link: left alone/);
  r = install(d, '--uninstall');
  t.is(r.status, 0, r.out);
  t.is(readFileSync(join(d, 'usr/local/bin/tapedeck'), 'utf8'), '#!/bin/sh\necho mine\n');
  t.false(existsSync(join(d, 'opt/tapedeck')));

  r = install(d, '--prefix', '/usr');
  t.not(r.status, 0);
  t.regex(r.out, /directory of its own/);
  r = install(d, '--prefix', 'relative/path');
  t.not(r.status, 0);
  t.regex(r.out, /absolute path/);
  r = install(d, '--purge');
  t.not(r.status, 0);
  t.regex(r.out, /--purge only goes with --uninstall/);
  r = install(d, '--frobnicate');
  t.is(r.status, 1);
  t.regex(r.out, /unknown option: --frobnicate/);
  const h = run('sh', [INSTALL, '--help']);
  t.is(h.status, 0);
  t.regex(h.out, /--destdir DIR/);
  t.regex(h.out, /--uninstall/);
});
