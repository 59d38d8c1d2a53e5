// Temporary directories and LevelDB stores that a test's teardown removes.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStore } from '../../src/catalog/store.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A new directory under the system's temporary directory, removed with its contents at teardown. */
export async function tempDir(t: Teardown, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An open LevelStore in `<temp dir>/db` (`dir`), closed and removed at teardown. */
export async function tempLevelStore(t: Teardown, prefix: string): Promise<{ store: LevelStore; dir: string }> {
  const dir = join(await tempDir(t, prefix), 'db');
  const store = new LevelStore(dir);
  await store.open();
  t.teardown(() => store.close());
  return { store, dir };
}
