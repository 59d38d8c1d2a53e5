// A media file swapped, after the walk, for a named pipe or a link (to a device, to a file outside
// the library): the prober and hashFile open it through util/read-regular.ts (one open(2) with
// O_NOFOLLOW|O_NONBLOCK and an fstat of that descriptor) and refuse it at once. QA review: their
// plain 'r' opens followed the link, and a pipe held a probe thread (and the scan) forever.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { probe } from '../src/media/probe.js';
import { scan } from '../src/scanner/scanner.js';
import { hashFile } from '../src/util/hash.js';

/** A short valid PCM WAV (`bytes` of silence). */
function wav(bytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + bytes, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(bytes, 40);
  return Buffer.concat([h, Buffer.alloc(bytes)]);
}

function dir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'td-probe-swap-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const NAMES = ['small.wav', 'large.wav', 'a.ogg', 'v.mp4', 'v.mkv', 'p.jpg', 'p.png'];
const known = (size: number) => ({ size, mtime: Date.now() });
/** `p` rejects with ELOOP (a link) or ENOTREG (not a regular file). */
async function refused(t: ExecutionContext, p: Promise<unknown>, what: string): Promise<void> {
  const err = await t.throwsAsync(p, undefined, what);
  t.regex(String((err as NodeJS.ErrnoException | undefined)?.code), /^(ELOOP|ENOTREG)$/, what);
}

test('a link swapped in at a media file name is not followed by the probe (every reader) nor by hashFile', async (t) => {
  const d = dir(t);
  const secret = join(d, 'outside.bin');
  writeFileSync(secret, wav(600 * 1024));
  for (const name of NAMES) {
    const p = join(d, name);
    symlinkSync(secret, p);
    for (const size of [1000, 600 * 1024]) {
      await refused(t, probe(p, { known: known(size), ffprobe: false }), `${name} (${size} bytes)`);
      await refused(t, probe(p, { known: known(size), ffprobe: false, blockingReads: true }), `${name} (${size} bytes, blocking)`);
    }
  }
  await refused(t, hashFile(join(d, 'small.wav')), 'hashFile');
  writeFileSync(join(d, 'real.wav'), wav(1000));
  t.is((await probe(join(d, 'real.wav'), { ffprobe: false }))?.kind, 'audio', 'a regular file is still probed');
  t.regex(await hashFile(join(d, 'real.wav')), /^[0-9a-f]{64}$/);
});

test('a named pipe swapped in at a media file name is refused at once by the probe and hashFile, not waited on', async (t) => {
  // Without the fix this test does not finish: the reads wait on the pipe (the test holds its
  // write side, so that teardown ends them) until ava's timeout.
  t.timeout(30_000);
  const d = dir(t);
  for (const name of NAMES) {
    const p = join(d, name);
    if (spawnSync('mkfifo', [p]).status !== 0) return t.pass('mkfifo not available');
    const w = openSync(p, constants.O_RDWR | constants.O_NONBLOCK);
    t.teardown(() => closeSync(w));
    for (const size of [1000, 600 * 1024]) {
      await refused(t, probe(p, { known: known(size), ffprobe: false }), name);
      await refused(t, probe(p, { known: known(size), ffprobe: false, blockingReads: true }), name);
    }
  }
  await refused(t, hashFile(join(d, 'small.wav')), 'hashFile');
});

test('a scan whose media files are swapped for a pipe or a link after the walk finishes, warning for each of them', async (t) => {
  t.timeout(30_000);
  const root = dir(t);
  const outside = join(dir(t), 'secret.wav');
  writeFileSync(outside, wav(1000));
  for (const name of ['keep.wav', 'pipe.wav', 'link.wav', 'big-link.wav']) writeFileSync(join(root, name), wav(name.startsWith('big') ? 600 * 1024 : 1000));
  const swaps: Record<string, () => void> = {
    [join(root, 'pipe.wav')]: () => {
      const p = join(root, 'pipe.wav');
      unlinkSync(p);
      if (spawnSync('mkfifo', [p]).status !== 0) return;
      const w = openSync(p, constants.O_RDWR | constants.O_NONBLOCK); // so a plain open would not block, only its reads
      t.teardown(() => closeSync(w));
    },
    [join(root, 'link.wav')]: () => (unlinkSync(join(root, 'link.wav')), symlinkSync(outside, join(root, 'link.wav'))),
    [join(root, 'big-link.wav')]: () => (unlinkSync(join(root, 'big-link.wav')), symlinkSync(outside, join(root, 'big-link.wav'))),
  };
  const c = new Catalog(new MemoryStore());
  await c.open();
  const warned: string[] = [];
  // the swap happens between the walk (which saw regular files) and the real probe
  const r = await scan(c, {
    roots: [root],
    probe: (path, f) => (swaps[path]?.(), probe(path, { ffprobe: false, known: f })),
    log: { warn: (o: { path?: string }, m?: string) => void (m === 'cannot read media file' && o.path && warned.push(o.path)) },
  });
  t.deepEqual(warned.sort(), Object.keys(swaps).sort());
  t.is(r.failed, 3);
  t.is(r.probed, 1, 'the regular file is catalogued');
  await c.close();
});
