// The launcher bin/tapedeck (what systemd/install.sh installs and the units run): the Node.js
// memory flags and the malloc arena count it runs the CLI with (README, "Memory").
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const prefix = mkdtempSync(join(tmpdir(), 'tapedeck-launcher-'));
test.after.always(() => rmSync(prefix, { recursive: true, force: true }));

function runLauncher(env: Record<string, string> = {}): { args: string[]; arenas: string } {
  mkdirSync(join(prefix, 'bin'), { recursive: true });
  mkdirSync(join(prefix, 'dist/src'), { recursive: true });
  copyFileSync(new URL('../bin/tapedeck', import.meta.url), join(prefix, 'bin/tapedeck'));
  writeFileSync(join(prefix, 'dist/src/cli.js'), '');
  // a stand-in for node that prints what it was given
  const fake = join(prefix, 'fake-node');
  writeFileSync(fake, '#!/bin/sh\nprintf "%s\\n" "MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX MALLOC_MMAP_THRESHOLD_=$MALLOC_MMAP_THRESHOLD_" "$@"\n');
  chmodSync(fake, 0o755);
  const out = execFileSync('/bin/sh', [join(prefix, 'bin/tapedeck'), 'serve', '--no-ssdp'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TAPEDECK_NODE: fake, ...env }, encoding: 'utf8' });
  const [arenas, ...args] = out.trim().split('\n');
  return { args, arenas };
}

test('the launcher runs the CLI with small semi-spaces, a capped heap growth, two malloc arenas and a 32 KiB mmap threshold', (t) => {
  const { args, arenas } = runLauncher();
  t.is(arenas, 'MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=32768');
  t.deepEqual(args, ['--max-semi-space-size=4', '--heap-growing-percent=50', join(prefix, 'dist/src/cli.js'), 'serve', '--no-ssdp']);
});

test('TAPEDECK_NODE_FLAGS come after the launcher flags (so they win); MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_ can be set', (t) => {
  const { args, arenas } = runLauncher({ TAPEDECK_NODE_FLAGS: '--heap-growing-percent=100 --cpu-prof', MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '131072' });
  t.is(arenas, 'MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=131072');
  t.deepEqual(args.slice(0, 4), ['--max-semi-space-size=4', '--heap-growing-percent=50', '--heap-growing-percent=100', '--cpu-prof']);
});

test('this Node.js accepts the launcher flags', (t) => {
  t.notThrows(() => execFileSync(process.execPath, ['--max-semi-space-size=4', '--heap-growing-percent=50', '-e', '0']));
});
