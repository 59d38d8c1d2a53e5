// package.json against src/, both ways: every runtime dependency is imported by src/, and every
// package src/ imports is a runtime dependency (node: builtins excepted; test-only libraries are
// devDependencies). The import lines come from test/helpers/import-graph.ts.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageName, readGraph, type ImportGraph } from './helpers/import-graph.js';

const ROOT = new URL('..', import.meta.url).pathname;

/**
 * Packages src/ may import without being runtime dependencies, each with why. They must be
 * imported through import() only, so a built install that never takes that path never loads them.
 */
export const DEV_ONLY_IMPORTS: Record<string, string> = {
  // staging/sandbox.ts transpiles the worker's .ts sources when the server runs from a checkout
  // under tsx; an installed server runs the compiled dist/ and never reaches that import.
  typescript: 'staging/sandbox.ts compiles the staging worker only when running from TypeScript sources',
  // media/probe-pool.ts registers tsx's loader in its worker threads only when it runs from the
  // .ts sources (development, tests); the compiled pool starts the compiled worker.
  tsx: 'media/probe-pool.ts loads the .ts probe worker through tsx only when running from TypeScript sources',
};

export interface DependencyReport {
  /** Runtime dependencies no src/ file imports. */
  unused: string[];
  /** Packages src/ imports that are not runtime dependencies: "package (file, ...)". */
  undeclared: string[];
  /** Dev-only packages src/ imports statically: "package (file)". */
  staticDevOnly: string[];
}

export function checkDependencies(graph: ImportGraph, dependencies: Record<string, string>, devOnly: Record<string, string> = {}): DependencyReport {
  const used = new Map<string, string[]>();
  const staticDevOnly: string[] = [];
  for (const [file, info] of graph) {
    for (const spec of info.bare) {
      if (spec.startsWith('node:')) continue;
      const name = packageName(spec);
      (used.get(name) ?? used.set(name, []).get(name)!).push(file);
      if (name in devOnly && !info.dynamicOnly.includes(spec)) staticDevOnly.push(`${name} (${file})`);
    }
  }
  return {
    unused: Object.keys(dependencies).filter((d) => !used.has(d)).sort(),
    undeclared: [...used]
      .filter(([name]) => !(name in dependencies) && !(name in devOnly))
      .map(([name, files]) => `${name} (${files.join(', ')})`)
      .sort(),
    staticDevOnly,
  };
}

test('every runtime dependency is imported by src/, and every package src/ imports is one', (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const report = checkDependencies(readGraph(join(ROOT, 'src')), pkg.dependencies, DEV_ONLY_IMPORTS);
  t.deepEqual(report.unused, [], 'runtime dependencies nothing in src/ imports: remove them, or move test-only ones to devDependencies');
  t.deepEqual(report.undeclared, [], 'packages src/ imports that are not runtime dependencies (bare builtins must be written node:x)');
  t.deepEqual(report.staticDevOnly, [], 'dev-only packages must be imported through import() only');
  for (const name of Object.keys(DEV_ONLY_IMPORTS)) t.true(name in pkg.devDependencies, `${name} is listed as a dev-only import but is not a devDependency`);
});

test('negative control: the check reports an unused dependency, an undeclared import, a bare builtin and a static dev-only import', (t) => {
  const graph: ImportGraph = new Map([
    ['a.ts', { local: [], bare: ['koa', '@koa/router/lib', 'node:fs', 'fs'], dynamicOnly: [], typeOnly: [], lines: 1, generated: false }],
    ['b.ts', { local: [], bare: ['typescript', 'left-pad'], dynamicOnly: ['typescript'], typeOnly: [], lines: 1, generated: false }],
    ['c.ts', { local: [], bare: ['typescript'], dynamicOnly: [], typeOnly: [], lines: 1, generated: false }],
  ]);
  const report = checkDependencies(graph, { koa: '1', '@koa/router': '1', 'tar-stream': '1' }, { typescript: 'dev' });
  t.deepEqual(report.unused, ['tar-stream']);
  t.deepEqual(report.undeclared, ['fs (a.ts)', 'left-pad (b.ts)']);
  t.deepEqual(report.staticDevOnly, ['typescript (c.ts)']);
});
