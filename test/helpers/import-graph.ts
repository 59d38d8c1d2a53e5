// The import graph of a TypeScript source tree, read from its import/export lines: which local
// modules each file imports (static, type-only and dynamic imports alike), which bare packages it
// imports, the import cycles (strongly connected components) and each file's length.
// Used by test/structure.test.ts; run directly for the figures: `tsx test/helpers/import-graph.ts [DIR]`.
//
// A small reader rather than madge or dependency-cruiser: src/ is plain ESM TypeScript whose local
// imports are all relative './x.js' specifiers, so ~100 lines cover it exactly (static, type-only,
// re-export and dynamic imports), the same pass gives file sizes and bare imports for the size and
// dependency checks, and it adds no dependency tree (madge pulls in a dozen resolver packages,
// dependency-cruiser the TypeScript compiler API plus its own config format) to keep up to date.
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ModuleInfo {
  /** Local modules imported, as paths relative to the root. */
  local: string[];
  /** Bare specifiers imported (packages and node: builtins). */
  bare: string[];
  /** Specifiers (local or bare) imported only through import(), never statically. */
  dynamicOnly: string[];
  /** Local modules and bare specifiers imported for types only (erased: not loaded at run time). */
  typeOnly: string[];
  lines: number;
  /** Marked `@generated` on its first line (exempt from the size limit). */
  generated: boolean;
}

export type ImportGraph = Map<string, ModuleInfo>;

/** Source text without comments (so an import in a comment is no edge); strings are kept. */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** Every module specifier the source imports or re-exports, static or dynamic. */
export function importSpecifiers(src: string): string[] {
  const { staticSpecs, dynamicSpecs } = specifiersByKind(src);
  return [...staticSpecs, ...dynamicSpecs];
}

/** `import type …`, `export type …`, or braces whose every name is marked `type`. */
function typeOnlyClause(typeKeyword: string | undefined, clause: string): boolean {
  if (typeKeyword) return true;
  const braces = /^\{([\s\S]*)\}$/.exec(clause.trim());
  if (!braces) return false;
  const names = braces[1]!.split(',').map((n) => n.trim()).filter(Boolean);
  return names.length > 0 && names.every((n) => n.startsWith('type '));
}

function specifiersByKind(src: string): { staticSpecs: string[]; dynamicSpecs: string[]; typeSpecs: Set<string> } {
  const code = stripComments(src);
  const staticSpecs: string[] = [];
  const runtime = new Set<string>();
  const typed = new Set<string>();
  // import x from 'm'; import { a } from 'm'; import type { T } from 'm'; export * from 'm'; export { a } from 'm'
  for (const m of code.matchAll(/^\s*(?:import|export)\s+(type\s+)?([^'";]*?)\bfrom\s*['"]([^'"]+)['"]/gm)) {
    staticSpecs.push(m[3]!);
    (typeOnlyClause(m[1], m[2]!) ? typed : runtime).add(m[3]!);
  }
  // import 'm' (side effect only)
  for (const m of code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) {
    staticSpecs.push(m[1]!);
    runtime.add(m[1]!);
  }
  // import('m')
  const dynamicSpecs = [...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
  for (const s of dynamicSpecs) runtime.add(s);
  return { staticSpecs, dynamicSpecs, typeSpecs: new Set([...typed].filter((s) => !runtime.has(s))) };
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The bare package name of a specifier: 'a/b' → 'a', '@s/a/b' → '@s/a'. */
export function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Reads every .ts file below root; local imports resolve './x.js' to './x.ts' (or './x/index.ts'). */
export function readGraph(root: string): ImportGraph {
  const files = tsFiles(root);
  const known = new Set(files.map((f) => relative(root, f)));
  const graph: ImportGraph = new Map();
  for (const file of files) {
    const src = readFileSync(file, 'utf8');
    const lines = src.split('\n');
    const info: ModuleInfo = { local: [], bare: [], dynamicOnly: [], typeOnly: [], lines: lines.length - (src.endsWith('\n') ? 1 : 0), generated: lines[0]!.includes('@generated') };
    const { staticSpecs, dynamicSpecs, typeSpecs } = specifiersByKind(src);
    info.dynamicOnly = [...new Set(dynamicSpecs.filter((s) => !staticSpecs.includes(s)))];
    for (const spec of [...staticSpecs, ...dynamicSpecs]) {
      if (!spec.startsWith('.')) {
        if (!info.bare.includes(spec)) info.bare.push(spec);
        if (typeSpecs.has(spec) && !info.typeOnly.includes(spec)) info.typeOnly.push(spec);
        continue;
      }
      const base = relative(root, resolve(dirname(file), spec));
      const stem = base.replace(/\.(js|ts)$/, '');
      const target = [`${stem}.ts`, join(stem, 'index.ts')].find((c) => known.has(c));
      if (!target) throw new Error(`${relative(root, file)}: import '${spec}' names no file below ${root}`);
      if (!info.local.includes(target)) info.local.push(target);
      if (typeSpecs.has(spec) && !info.typeOnly.includes(target)) info.typeOnly.push(target);
    }
    // a module imported both ways (by two specifiers) is a runtime import
    info.typeOnly = info.typeOnly.filter((t) => !runtimeSpecOf(t, staticSpecs, dynamicSpecs, typeSpecs, file, root));
    graph.set(relative(root, file), info);
  }
  return graph;
}

function runtimeSpecOf(target: string, staticSpecs: string[], dynamicSpecs: string[], typeSpecs: Set<string>, file: string, root: string): boolean {
  return [...staticSpecs, ...dynamicSpecs].some((spec) => {
    if (typeSpecs.has(spec)) return false;
    if (!spec.startsWith('.')) return spec === target;
    const stem = relative(root, resolve(dirname(file), spec)).replace(/\.(js|ts)$/, '');
    return target === `${stem}.ts` || target === join(stem, 'index.ts');
  });
}

/**
 * What loading `start` loads: the modules (and bare packages) reached over imports that are not
 * type-only, static or dynamic. Type-only imports are erased by the compiler and load nothing.
 */
export function runtimeClosure(graph: ImportGraph, start: string): { modules: Set<string>; packages: Set<string> } {
  const modules = new Set([start]);
  const packages = new Set<string>();
  const stack = [start];
  while (stack.length > 0) {
    const info = graph.get(stack.pop()!);
    if (!info) continue;
    for (const b of info.bare) if (!info.typeOnly.includes(b)) packages.add(b);
    for (const to of info.local) {
      if (info.typeOnly.includes(to) || modules.has(to)) continue;
      modules.add(to);
      stack.push(to);
    }
  }
  return { modules, packages };
}

/** The import cycles: every strongly connected component of more than one module (or a self-import), each sorted. */
export function findCycles(graph: ImportGraph): string[][] {
  // Tarjan's algorithm, iterative so a deep graph cannot overflow the stack.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  for (const start of [...graph.keys()].sort()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; next: number }> = [{ node: start, next: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edges = graph.get(frame.node)?.local ?? [];
      if (frame.next < edges.length) {
        const to = edges[frame.next++]!;
        if (!index.has(to)) {
          index.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, next: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        const selfImport = edges.includes(frame.node);
        if (component.length > 1 || selfImport) cycles.push(component.sort());
      }
    }
  }
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** One example path around a cycle (a → b → … → a), for a readable failure message. */
export function cyclePath(graph: ImportGraph, component: string[]): string[] {
  const inside = new Set(component);
  const start = component[0]!;
  // Breadth-first from start back to start, staying inside the component.
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const to of graph.get(node)?.local ?? []) {
      if (!inside.has(to)) continue;
      if (to === start) {
        const path = [start];
        for (let at = node; at !== start; at = prev.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!prev.has(to)) {
        prev.set(to, node);
        queue.push(to);
      }
    }
  }
  return component;
}

export function summary(graph: ImportGraph): { files: number; edges: number; cycles: string[][]; largest: [string, number] } {
  const cycles = findCycles(graph);
  let largest: [string, number] = ['', 0];
  let edges = 0;
  for (const [file, info] of graph) {
    edges += info.local.length;
    if (info.lines > largest[1]) largest = [file, info.lines];
  }
  return { files: graph.size, edges, cycles, largest };
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const root = resolve(process.argv[2] ?? 'src');
  const graph = readGraph(root);
  const s = summary(graph);
  console.log(`${s.files} files, ${s.edges} local import edges, ${s.cycles.length} cycles, largest ${s.largest[0]} (${s.largest[1]} lines)`);
  for (const c of s.cycles) console.log(`cycle (${c.length} files): ${cyclePath(graph, c).join(' → ')}   [${c.join(', ')}]`);
  const big = [...graph].filter(([, i]) => i.lines > 800).map(([f, i]) => `${f} (${i.lines})`);
  if (big.length) console.log(`over 800 lines: ${big.join(', ')}`);
}
