// sharp (libvips, ~6 MB RSS) is loaded on the first picture the art maker scales, not when the
// server's modules load: a child process imports the server and makes an ArtMaker (no libvips
// mapped), then scales one picture (libvips mapped). Linux only: it reads /proc/self/maps.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './helpers/lab.js';

const run = promisify(execFile);

test('sharp is loaded on the first picture to scale, not at server start', async (t) => {
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
const art = new ArtMaker({ dataDir: ${JSON.stringify(join(dir, 'data'))} });
const before = vips();
const ref = await art.fromBytes(readFileSync(${JSON.stringify(join(REPO_ROOT, 'devices/icons/icon-120.png'))}), 'icon');
console.log(JSON.stringify({ before, after: vips(), tn: ref?.tn }));
`,
  );
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, timeout: 60_000 });
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { before: boolean; after: boolean; tn?: number[] };
  t.false(r.before, 'libvips mapped before any picture was scaled');
  t.deepEqual(r.tn, [120, 120]);
  t.true(r.after, 'scaling loaded libvips');
});
