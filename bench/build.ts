// Compiles Tapedeck's sources to JavaScript for the benchmark, the way it is deployed
// (systemd/install.sh runs the compiled dist/src/cli.js), into bench/results/build/
// (git-ignored) so the shared dist/ of the checkout is left alone. Incremental, so a
// second run only recompiles what changed.

import { existsSync, lstatSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO_ROOT, run } from '../test/helpers/lab.js';

export const BUILD_ROOT = join(REPO_ROOT, 'bench', 'results', 'build');

export interface Build {
  cli: string;
  ms: number;
  /** tsc diagnostics (the build still emits JavaScript when some file has type errors). */
  diagnostics?: string;
}

export async function buildCompiled(log: (s: string) => void): Promise<Build> {
  const t0 = Date.now();
  await mkdir(BUILD_ROOT, { recursive: true });
  const config = join(REPO_ROOT, 'bench', 'results', 'build-tsconfig.json');
  const rel = (p: string) => relative(join(REPO_ROOT, 'bench', 'results'), p);
  await writeFile(
    config,
    JSON.stringify(
      {
        extends: rel(join(REPO_ROOT, 'tsconfig.json')),
        compilerOptions: {
          outDir: rel(BUILD_ROOT),
          rootDir: rel(REPO_ROOT),
          sourceMap: true,
          incremental: true,
          tsBuildInfoFile: rel(join(BUILD_ROOT, '.tsbuildinfo')),
        },
        include: [rel(join(REPO_ROOT, 'src')) + '/**/*.ts'],
      },
      null,
      2,
    ),
  );
  log('compiling src/ to JavaScript (bench/results/build)');
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await run(process.execPath, [tsc, '-p', config], { timeoutMs: 300_000 });
  const cli = join(BUILD_ROOT, 'src', 'cli.js');
  if (!existsSync(cli)) throw new Error(`tsc produced no ${cli} (exit ${r.code}): ${(r.stdout + r.stderr).slice(0, 1500)}`);
  // Code that finds devices/ relative to its own file (two levels up from src/upnp) looks
  // in build/devices: point that at the checkout's devices/.
  const devices = join(BUILD_ROOT, 'devices');
  let linked = false;
  try {
    linked = lstatSync(devices).isSymbolicLink();
  } catch {
    // absent
  }
  if (!linked) {
    await rm(devices, { recursive: true, force: true });
    await symlink(join(REPO_ROOT, 'devices'), devices);
  }
  return { cli, ms: Date.now() - t0, ...(r.code !== 0 ? { diagnostics: (r.stdout + r.stderr).trim().slice(0, 2000) } : {}) };
}
