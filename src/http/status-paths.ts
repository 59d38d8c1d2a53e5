// What the status page may say about where files are. Every allowed client can read the
// status page and status.json, so paths there are relative to their media directory
// ("music/Album/01.flac", the media directory shown by its name) and the server's own
// directories by their setting ("<data_dir>/stubs/…"); absolute paths only go to the local
// operator (the control socket's GET /v1/status, mode 0600).

import { basename } from 'node:path';

export interface PathRoot {
  /** Absolute directory. */
  path: string;
  /** What it is shown as. */
  name: string;
}

/** Roots for the media directories (by name; the same name twice gets " (2)"...) and the server's own directories. */
export function pathRoots(mediaDirs: string[], own: Record<string, string | undefined> = {}): PathRoot[] {
  const seen = new Map<string, number>();
  const roots: PathRoot[] = mediaDirs.map((d) => {
    const base = basename(d) || d;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return { path: d, name: n === 1 ? base : `${base} (${n})` };
  });
  for (const [name, path] of Object.entries(own)) if (path) roots.push({ path, name: `<${name}>` });
  // longest first, so a media directory inside the data directory (the demo) keeps its own name
  return roots.filter((r) => r.path.length > 1).sort((a, b) => b.path.length - a.path.length);
}

function relativeString(s: string, roots: PathRoot[]): string {
  if (!s.includes('/')) return s;
  let out = s;
  for (const r of roots) {
    let i = out.indexOf(r.path);
    while (i >= 0) {
      const end = i + r.path.length;
      const next = out[end];
      // whole path components only: /srv/music must not match /srv/musicals
      if (next === undefined || next === '/' || !/[\w.-]/.test(next)) {
        out = out.slice(0, i) + r.name + out.slice(end);
        i = out.indexOf(r.path, i + r.name.length);
      } else i = out.indexOf(r.path, end);
    }
  }
  return out;
}

/** A copy of a JSON value with every path under a root written relative to it. */
export function relativePaths<T>(value: T, roots: PathRoot[]): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return relativeString(v, roots);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) o[k] = walk(x);
      return o;
    }
    return v;
  };
  return walk(value) as T;
}
