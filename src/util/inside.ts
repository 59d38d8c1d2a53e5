// Path containment, lexically (no file-system access: usable in the sandboxed worker too).
import { relative, sep } from 'node:path';

/** True when `child` is `dir` or below it. */
export function isInside(dir: string, child: string): boolean {
  const rel = relative(dir, child);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== '..');
}
