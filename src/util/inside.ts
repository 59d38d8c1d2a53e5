// Path containment, lexically (no file-system access: usable in the sandboxed worker too).
import { isAbsolute, relative, sep } from 'node:path';

/** True when `child` is `dir` or below it (a name that merely starts with `..`, like `..x`, is inside). */
export function isInside(dir: string, child: string): boolean {
  const rel = relative(dir, child);
  return rel === '' || (rel !== '..' && !rel.startsWith('..' + sep) && !isAbsolute(rel));
}

/** The innermost of `roots` that holds `path` (the longest one), or undefined. */
export function innermostRoot(roots: readonly string[], path: string): string | undefined {
  return roots.filter((r) => isInside(r, path)).sort((a, b) => b.length - a.length)[0];
}
