// mallocTrim() hands the C heap's free pages back (issue 11 item 2): a child process fragments
// glibc's heap (many small Buffers, every 16th kept), frees the rest, and its resident memory
// drops only with the trim. Memory figures from /proc, no timing.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mallocTrim } from '../src/util/malloc-trim.js';

const CHILD = `
import { readFileSync } from 'node:fs';
import { releaseMemory } from './src/util/release-memory.ts';
import { mallocTrim } from './src/util/malloc-trim.ts';
const anon = () => Number(/^RssAnon:\\s+(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
let blocks = Array.from({ length: 16000 }, () => Buffer.alloc(4000, 1));
const kept = blocks.filter((_, i) => i % 16 === 15);
blocks = undefined;
await new Promise((r) => setTimeout(r, 0));
releaseMemory();
releaseMemory();
const before = anon();
const trimmed = process.argv.includes('trim') ? mallocTrim() : false;
console.log(JSON.stringify({ before, after: anon(), trimmed, kept: kept.length }));
`;

function child(arg: string): { before: number; after: number; trimmed: boolean } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, arg], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    // one arena and glibc's default thresholds: the 4 KB blocks all come from the main heap
    env: { ...process.env, MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '131072' },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

test('mallocTrim gives back the free pages a fragmented C heap keeps', (t) => {
  if (!mallocTrim()) return t.pass('no koffi or no glibc malloc_trim here: nothing to test');
  const without = child('keep');
  const withTrim = child('trim');
  t.true(withTrim.trimmed);
  // ~64 MB of 4 KB blocks were freed; the kept ones pin every page of the heap without a trim
  t.true(without.before - without.after < 5, `without the trim: ${JSON.stringify(without)}`);
  t.true(withTrim.before - withTrim.after > 30, `with the trim: ${JSON.stringify(withTrim)}`);
});
