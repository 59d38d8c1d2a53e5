// The data directory and the staging cache are made private to the service user and its group
// (0750): the catalog names private media paths and bookmarks. One the admin made already keeps
// its mode.

import test from 'ava';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDataDir } from '../src/util/data-dir.js';
import { SegmentCache } from '../src/staging/cache.js';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { tempDir } from './helpers/temp.js';

const modeOf = async (p: string) => (await stat(p)).mode & 0o777;

test('makeDataDir makes a missing data directory and its missing parents 0750 (never readable by others)', async (t) => {
  const base = await tempDir(t, 'tapedeck-datamode-');
  const dir = join(base, 'a', 'data');
  const old = process.umask(0o022); // the usual umask, which made them 0755 before
  try {
    await makeDataDir(dir);
  } finally {
    process.umask(old);
  }
  t.is(await modeOf(dir), 0o750);
  t.is(await modeOf(join(base, 'a')), 0o750);
});

test('makeDataDir leaves the mode of an existing data directory as the admin set it', async (t) => {
  const dir = join(await tempDir(t, 'tapedeck-datamode-'), 'data');
  await mkdir(dir);
  await chmod(dir, 0o755);
  await makeDataDir(dir);
  t.is(await modeOf(dir), 0o755);
  await chmod(dir, 0o700);
  await makeDataDir(dir);
  t.is(await modeOf(dir), 0o700);
});

test('the staging cache directory it makes is 0750', async (t) => {
  const dir = join(await tempDir(t, 'tapedeck-datamode-'), 'cache');
  const old = process.umask(0o022);
  let c: SegmentCache;
  try {
    c = await SegmentCache.open({ dir, capacity: 4 * 4096, segmentSize: 4096 });
  } finally {
    process.umask(old);
  }
  t.teardown(() => c.close());
  t.is(await modeOf(dir), 0o750);
});

test('a virtual tape library directory it makes (tape_dir, outside the data directory too) is 0750', async (t) => {
  const dir = join(await tempDir(t, 'tapedeck-datamode-'), 'vtl');
  const old = process.umask(0o022);
  let lib: VirtualTapeLibrary;
  try {
    lib = await VirtualTapeLibrary.open(dir);
  } finally {
    process.umask(old);
  }
  t.teardown(() => lib.close());
  t.is(await modeOf(dir), 0o750);
  t.is(await modeOf(join(dir, 'cartridges')), 0o750);
});
