// Where Tapedeck's own files are: the folder holding package.json (the checkout,
// or the install prefix when the compiled code runs from PREFIX/dist/src/...).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findUp(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) throw new Error(`cannot find Tapedeck's package.json above ${dir}`);
  }
}

export const REPO_ROOT = findUp(dirname(fileURLToPath(import.meta.url)));
export const DEVICES_DIR = join(REPO_ROOT, 'devices');

/**
 * The directory the user typed the command in, which relative paths on the command line
 * (`./clip.mp4`, `--media ./music`) are relative to: under `npm run` (or `npm --prefix
 * CHECKOUT run`) the working directory is the checkout and npm keeps the caller's one in
 * INIT_CWD; otherwise it is the working directory.
 */
export function callerDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.INIT_CWD || process.cwd();
}

/** Help text of the commands that take paths (`archive`, `recall`, `scan --media`...). */
export const RELATIVE_PATHS_HELP = `
Paths: absolute, or relative (./PATH, ../PATH, and the directories of --media, --data, --config...)
to the directory you ran the command in: under \`npm run\` or \`npm --prefix CHECKOUT run\` the
directory npm was started in (INIT_CWD), otherwise the working directory.`;
