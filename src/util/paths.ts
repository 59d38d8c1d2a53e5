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
