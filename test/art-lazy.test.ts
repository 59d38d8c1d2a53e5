// The server never loads sharp (libvips, ~14 MB RSS and its threads' malloc arenas): pictures
// are scaled in a child process (src/art/scaler.ts) that exits when idle and when the server
// dies. Linux only: these read /proc.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ArtScaler } from '../src/art/scaler.js';
import { REPO_ROOT } from './helpers/lab.js';

const run = promisify(execFile);
const ICON = join(REPO_ROOT, 'devices/icons/icon-120.png');
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

/** Polls until `pid` is gone (generous bound: this is about leaks, not speed). */
async function gone(pid: number, ms = 30_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !alive(pid);
}

test('the server process never maps libvips: art is scaled in a child process', async (t) => {
  if (!existsSync('/proc/self/maps')) return t.pass('skipped: no /proc/self/maps (not Linux)');
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-artlazy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'probe.mts');
  await writeFile(
    script,
    `import { readFileSync } from 'node:fs';
const vips = () => readFileSync('/proc/self/maps', 'utf8').includes('libvips');
await import(${JSON.stringify(join(REPO_ROOT, 'src/server.ts'))});
const { ArtMaker } = await import(${JSON.stringify(join(REPO_ROOT, 'src/art/maker.ts'))});
const { artScaler } = await import(${JSON.stringify(join(REPO_ROOT, 'src/art/scaler.ts'))});
const art = new ArtMaker({ dataDir: ${JSON.stringify(join(dir, 'data'))} });
const before = vips();
const ref = await art.fromBytes(readFileSync(${JSON.stringify(ICON)}), 'icon');
const pid = artScaler.pid;
const childVips = pid ? readFileSync('/proc/' + pid + '/maps', 'utf8').includes('libvips') : false;
console.log(JSON.stringify({ before, after: vips(), childVips, tn: ref?.tn, sm: ref?.sm }));
`,
  );
  // the script ends by itself: an idle scaler keeps no process alive
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, timeout: 60_000 });
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { before: boolean; after: boolean; childVips: boolean; tn?: number[]; sm?: number[] };
  t.false(r.before, 'libvips mapped before any picture was scaled');
  t.deepEqual(r.tn, [120, 120]);
  t.deepEqual(r.sm, [120, 120]);
  t.false(r.after, 'scaling loaded libvips into the server process');
  t.true(r.childVips, 'the child scaled it');
});

test('the scaling child exits when idle, and a new one starts for the next picture', async (t) => {
  if (!existsSync('/proc/self/maps')) return t.pass('skipped: no /proc (not Linux)');
  const scaler = new ArtScaler(200);
  t.teardown(() => scaler.close());
  const icon = readFileSync(ICON);
  const a = await scaler.scale(icon);
  const first = scaler.pid!;
  t.truthy(first);
  t.deepEqual([a.tn.width, a.tn.height], [120, 120]);
  t.true(await gone(first), 'idle child still running');
  t.is(scaler.pid, undefined);
  const b = await scaler.scale(icon);
  t.true(b.tn.data.equals(a.tn.data), 'same output from the new child');
  t.not(scaler.pid, first);
});

test('a broken picture fails with an error from the child; the child keeps serving', async (t) => {
  const scaler = new ArtScaler();
  t.teardown(() => scaler.close());
  await t.throwsAsync(scaler.scale(Buffer.from('not a picture at all')));
  const r = await scaler.scale(readFileSync(ICON));
  t.deepEqual([r.sm.width, r.sm.height], [120, 120]);
});

test('the scaling child does not outlive a server killed with SIGKILL', async (t) => {
  if (!existsSync('/proc/self/maps')) return t.pass('skipped: no /proc (not Linux)');
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-artkill-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'parent.mts');
  await writeFile(
    script,
    `import { readFileSync } from 'node:fs';
const { ArtScaler } = await import(${JSON.stringify(join(REPO_ROOT, 'src/art/scaler.ts'))});
const s = new ArtScaler(3_600_000);
await s.scale(readFileSync(${JSON.stringify(ICON)}));
console.log(s.pid);
setInterval(() => {}, 1000);
`,
  );
  const parent = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => parent.kill('SIGKILL'));
  const child = await new Promise<number>((resolve, reject) => {
    let out = '';
    parent.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    parent.on('exit', (code) => reject(new Error(`parent exited (${code}) before scaling`)));
  });
  t.true(alive(child), 'the child runs while the parent waits');
  parent.kill('SIGKILL');
  t.true(await gone(child), 'the child outlived its parent');
});
