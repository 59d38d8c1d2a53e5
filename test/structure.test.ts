// The shape of src/: no import cycles, no file over the size limit. The import graph comes from
// test/helpers/import-graph.ts (a reader of import/export lines; see why there, not madge or
// dependency-cruiser, in that file's comment); the fixtures check that it really finds cycles.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cyclePath, findCycles, readGraph, runtimeClosure, type ImportGraph } from './helpers/import-graph.js';

const ROOT = new URL('..', import.meta.url).pathname;
const SRC = join(ROOT, 'src');
const FIXTURES = join(ROOT, 'test/fixtures/import-graph');

/** Most lines of one src/ file (issue 12: one responsibility per file). */
export const MAX_LINES = 800;

/** Temporary exceptions to MAX_LINES, each with a cap it may not grow past (none left). */
export const TEMPORARY_SIZE_EXCEPTIONS: Record<string, number> = {};

/** Files over the limit (generated files, marked `@generated` on their first line, excepted). */
export function oversized(graph: ImportGraph, limit: number, exceptions: Record<string, number> = {}): string[] {
  const out: string[] = [];
  for (const [file, info] of graph) {
    if (info.generated) continue;
    const cap = exceptions[file] ?? limit;
    if (info.lines > cap) out.push(`${file}: ${info.lines} lines (limit ${cap})`);
  }
  return out;
}

/**
 * Tape modules the server process may load: the interface types, the settings, the timing model
 * and the on-tape format (archive jobs write it through the worker's remote library). Every
 * backend (virtual, scsi, their cartridges and locks, the factory in tape/index.ts) is the
 * staging worker's alone (ARCHITECTURE.md: the server never touches tape).
 */
export const SERVER_TAPE_MODULES = ['tape/types.ts', 'tape/settings.ts', 'tape/timing.ts', 'tape/format.ts', 'tape/tar.ts'];

/** What the staging worker may never load (ARCHITECTURE.md: the worker never speaks HTTP). */
export const WORKER_FORBIDDEN = {
  modules: /^(http|upnp|control|art)\/|^(server|tier|metrics|server-state)\.ts$/,
  packages: ['node:http', 'node:https', 'node:http2', 'node:dgram', 'koa', '@koa/router', 'node-ssdp', 'xml2js'],
};

export function serverTapeViolations(graph: ImportGraph, entry = 'server.ts'): string[] {
  return [...runtimeClosure(graph, entry).modules].filter((m) => m.startsWith('tape/') && !SERVER_TAPE_MODULES.includes(m)).sort();
}

export function workerHttpViolations(graph: ImportGraph, entry = 'staging/worker-main.ts'): string[] {
  const { modules, packages } = runtimeClosure(graph, entry);
  return [...[...modules].filter((m) => WORKER_FORBIDDEN.modules.test(m)), ...[...packages].filter((p) => WORKER_FORBIDDEN.packages.includes(p))].sort();
}

const describe = (graph: ImportGraph, cycles: string[][]) => cycles.map((c) => cyclePath(graph, c).join(' → ')).join('\n');

test('src/ has no import cycles (static, type-only and dynamic imports alike)', (t) => {
  const graph = readGraph(SRC);
  t.true(graph.size > 50, `read ${graph.size} files below src/`);
  const cycles = findCycles(graph);
  t.deepEqual(cycles, [], `import cycles in src/:\n${describe(graph, cycles)}`);
});

test(`no src/ file is over ${MAX_LINES} lines (tests and generated files excepted)`, (t) => {
  const graph = readGraph(SRC);
  t.deepEqual(oversized(graph, MAX_LINES, TEMPORARY_SIZE_EXCEPTIONS), []);
  for (const file of Object.keys(TEMPORARY_SIZE_EXCEPTIONS)) {
    t.true(graph.has(file), `the temporary exception for ${file} names a file that no longer exists: remove it`);
    t.true(graph.get(file)!.lines > MAX_LINES, `${file} is within ${MAX_LINES} lines now: remove its temporary exception`);
  }
});

/** Every .ts file below `dir` (relative paths joined to it). */
function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.split('/').includes('node_modules'))
    .map((f) => join(dir, f));
}

/**
 * Exports of `sources` whose name appears nowhere else: not in its own file beyond the
 * declaration, not in any of `users` (src/, test/, bench/). Such an export is dead code.
 */
export function deadExports(sources: Map<string, string>, users: Map<string, string>): string[] {
  const decl = /^export (?:declare )?(?:async )?(?:function\*?|const|let|class|interface|type|enum|abstract class) ([A-Za-z_$][\w$]*)/gm;
  const count = (text: string, name: string) => text.match(new RegExp(`(?<![\\w$])${name.replace(/\$/g, '\\$')}(?![\\w$])`, 'g'))?.length ?? 0;
  const out: string[] = [];
  for (const [file, text] of sources) {
    for (const m of text.matchAll(decl)) {
      const name = m[1]!;
      let n = count(text, name) - 1;
      for (const [other, t] of users) if (other !== file && n === 0) n += count(t, name);
      if (n === 0) out.push(`${file}: ${name}`);
    }
  }
  return out.sort();
}

test('every export of src/ is used (in its own file, src/, test/ or bench/): no dead exports', (t) => {
  const read = (files: string[]) => new Map(files.map((f) => [f.slice(ROOT.length), readFileSync(f, 'utf8')]));
  const sources = read(tsFiles(SRC));
  const users = new Map([...sources, ...read([...tsFiles(join(ROOT, 'test')), ...tsFiles(join(ROOT, 'bench'))])]);
  t.true(sources.size > 50);
  t.deepEqual(deadExports(sources, users), []);
});

test('negative control: the dead-export check finds an export nobody names, and not one used anywhere', (t) => {
  const sources = new Map([
    ['src/a.ts', 'export function unused(): void {}\nexport const usedHere = 1;\nconst x = usedHere;\nexport type Elsewhere = string;\nexport async function unusedToo$() {}\n'],
    ['src/b.ts', "import type { Elsewhere } from './a.js';\nexport class Used {}\n"],
  ]);
  const users = new Map([...sources, ['test/b.test.ts', 'new Used(); unusedish(); unused_x;']]);
  t.deepEqual(deadExports(sources, users), ['src/a.ts: unused', 'src/a.ts: unusedToo$']);
});

test('negative control: the checker finds a cycle through multi-line, type-only, re-export and dynamic imports', (t) => {
  const graph = readGraph(join(FIXTURES, 'cycle'));
  t.deepEqual(graph.get('a.ts')?.local, ['b.ts']);
  t.deepEqual(graph.get('b.ts')?.local, ['c.ts']);
  t.deepEqual(graph.get('c.ts')?.local, ['d.ts', 'a.ts']);
  t.deepEqual(graph.get('d.ts')?.local, [], 'an import inside a comment is no edge');
  t.deepEqual(graph.get('d.ts')?.bare, ['node:path']);
  const cycles = findCycles(graph);
  t.deepEqual(cycles, [['a.ts', 'b.ts', 'c.ts']]);
  t.deepEqual(cyclePath(graph, cycles[0]!), ['a.ts', 'b.ts', 'c.ts', 'a.ts']);
});

test('negative control: an acyclic graph (with a shared leaf and an index.ts import) has no cycle', (t) => {
  const graph = readGraph(join(FIXTURES, 'acyclic'));
  t.deepEqual(graph.get('a.ts')?.local, ['lib/index.ts', 'c.ts']);
  t.deepEqual(graph.get('c.ts')?.bare, ['node:process']);
  t.deepEqual(findCycles(graph), []);
  t.deepEqual(graph.get('t.ts')?.typeOnly, ['c.ts'], 'braces whose every name is `type`');
  t.deepEqual(graph.get('a.ts')?.typeOnly, [], 'imported for a value too: a runtime import');
});

test('negative control: the size check flags a long file and honours (only) its cap', (t) => {
  const graph: ImportGraph = new Map([
    ['long.ts', { local: [], bare: [], dynamicOnly: [], typeOnly: [], lines: 801, generated: false }],
    ['short.ts', { local: [], bare: [], dynamicOnly: [], typeOnly: [], lines: 800, generated: false }],
    ['gen.ts', { local: [], bare: [], dynamicOnly: [], typeOnly: [], lines: 5000, generated: true }],
  ]);
  t.deepEqual(oversized(graph, 800), ['long.ts: 801 lines (limit 800)']);
  t.deepEqual(oversized(graph, 800, { 'long.ts': 900 }), []);
  t.deepEqual(oversized(graph, 800, { 'long.ts': 700 }), ['long.ts: 801 lines (limit 700)']);
});

test('the server never loads a tape backend; the staging worker never loads HTTP, UPnP or SSDP code', (t) => {
  const graph = readGraph(SRC);
  t.true(graph.has('server.ts') && graph.has('staging/worker-main.ts'));
  t.deepEqual(serverTapeViolations(graph), [], 'tape modules the server loads (reach tape only through the staging worker: staging/client.ts)');
  t.deepEqual(workerHttpViolations(graph), [], 'modules or packages the staging worker loads that speak HTTP/UPnP/SSDP');
  t.true(runtimeClosure(graph, 'staging/worker-main.ts').modules.has('tape/virtual.ts'), 'the worker does load the tape backends');
});

test('negative control: the invariant checks follow runtime imports and ignore type-only ones', (t) => {
  const m = (local: string[], typeOnly: string[] = [], bare: string[] = []) => ({ local, bare, dynamicOnly: [], typeOnly, lines: 1, generated: false });
  const graph: ImportGraph = new Map([
    ['server.ts', m(['tier.ts', 'staging/options.ts'])],
    ['tier.ts', m(['tape/format.ts'])],
    ['staging/options.ts', m(['tape/index.ts'], ['tape/index.ts'])],
    ['tape/index.ts', m(['tape/virtual.ts'])],
    ['tape/virtual.ts', m([])],
    ['tape/format.ts', m([])],
    ['staging/worker-main.ts', m(['staging/log.ts'], [], ['node:net'])],
    ['staging/log.ts', m([], [], ['node:http'])],
  ]);
  t.deepEqual(serverTapeViolations(graph), [], 'a type-only import of tape/index.ts loads nothing');
  graph.set('tier.ts', m(['tape/format.ts', 'tape/index.ts']));
  t.deepEqual(serverTapeViolations(graph), ['tape/index.ts', 'tape/virtual.ts']);
  t.deepEqual(workerHttpViolations(graph), ['node:http']);
  graph.set('staging/log.ts', m(['http/status.ts']));
  graph.set('http/status.ts', m([]));
  t.deepEqual(workerHttpViolations(graph), ['http/status.ts']);
});

test('negative control: the reader tells type-only imports from runtime ones', (t) => {
  const graph = readGraph(join(FIXTURES, 'cycle'));
  t.deepEqual(graph.get('b.ts')?.typeOnly, ['c.ts'], 'import type');
  t.deepEqual(graph.get('a.ts')?.typeOnly, []);
  t.deepEqual([...runtimeClosure(graph, 'a.ts').modules].sort(), ['a.ts', 'b.ts'], 'a → b is runtime, b → c type-only');
  t.deepEqual([...runtimeClosure(graph, 'c.ts').modules].sort(), ['a.ts', 'b.ts', 'c.ts', 'd.ts'], 'export * and import() are runtime');
  t.deepEqual([...runtimeClosure(graph, 'c.ts').packages], ['node:path']);
});

/** The top level the design card fixes (plus the lock file and .gitignore that go with package.json). */
export const TOP_LEVEL = ['.ci', '.gitignore', 'ARCHITECTURE.md', 'README.md', 'bench', 'bin', 'devices', 'package-lock.json', 'package.json', 'run', 'src', 'systemd', 'test', 'tsconfig.json'];

test('the tracked top level is the one the design card fixes', (t) => {
  let files: string;
  try {
    files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
  } catch (err) {
    t.log(`skipped: not a git checkout or no git (${(err as Error).message.split('\n')[0]})`);
    t.pass();
    return;
  }
  const top = [...new Set(files.split('\0').filter(Boolean).map((f) => f.split('/')[0]!))].sort();
  t.deepEqual(top.filter((n) => !TOP_LEVEL.includes(n)), [], 'top-level entries outside the design card (put generators in src/ or bench/)');
  t.true(top.includes('ARCHITECTURE.md') && top.includes('src'));
});
