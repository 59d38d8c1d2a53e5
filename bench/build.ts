// Builds Tapedeck for the benchmark the way it is deployed: the sources compiled to
// JavaScript in dist/ beside a copy of the launcher bin/tapedeck (what systemd/install.sh
// puts under PREFIX and the units run), in bench/results/build/ (git-ignored) so the
// checkout's own dist/ is left alone. Incremental, so a second run only recompiles what
// changed. The compiled code finds package.json, devices/ and node_modules in the checkout.

import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO_ROOT, run } from '../test/helpers/lab.js';

export const BUILD_ROOT = join(REPO_ROOT, 'bench', 'results', 'build');

export interface Build {
  /** The launcher (PREFIX/bin/tapedeck of this build); run it with TAPEDECK_NODE set. */
  launcher: string;
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
          outDir: rel(join(BUILD_ROOT, 'dist')),
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
  const cli = join(BUILD_ROOT, 'dist', 'src', 'cli.js');
  if (!existsSync(cli)) throw new Error(`tsc produced no ${cli} (exit ${r.code}): ${(r.stdout + r.stderr).slice(0, 1500)}`);
  const launcher = join(BUILD_ROOT, 'bin', 'tapedeck');
  await mkdir(join(BUILD_ROOT, 'bin'), { recursive: true });
  await copyFile(join(REPO_ROOT, 'bin', 'tapedeck'), launcher);
  await chmod(launcher, 0o755);
  return { launcher, cli, ms: Date.now() - t0, ...(r.code !== 0 ? { diagnostics: (r.stdout + r.stderr).trim().slice(0, 2000) } : {}) };
}
