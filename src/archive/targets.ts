// What an operator names in `tapedeck archive|recall TARGET...`, resolved to
// canonical catalog item IDs: an item ID (canonical or a reference such as
// `music/all$i…`), a container ID (every item below it), or an absolute path
// (a file, or a directory: every item under it; `tape://LABEL/...` for items
// imported from tape). A playlist file (or its record ID) names the items it lists; a
// directory's playlist files add nothing (their entries may lie elsewhere).

import { resolve as resolvePath, sep } from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import type { CatalogObject } from '../catalog/types.js';
import { prefixRange } from '../catalog/store.js';
import { parseRefId } from '../catalog/layout.js';
import { ArchiveError } from './errors.js';

const isPathLike = (t: string) => t.startsWith('/') || t.startsWith('tape://');

/** Canonical item IDs of the targets, in order, without duplicates. Unknown targets: NOT_FOUND. */
export async function resolveTargets(catalog: Catalog, targets: string[]): Promise<string[]> {
  if (!Array.isArray(targets) || targets.length === 0) throw new ArchiveError('INVALID', 'nothing to do: name at least one object ID, container ID or path');
  const out = new Set<string>();
  for (const raw of targets) {
    if (typeof raw !== 'string' || raw === '') throw new ArchiveError('INVALID', `invalid target ${JSON.stringify(raw)}`);
    let found = false;
    if (isPathLike(raw)) found = await byPath(catalog, raw, out);
    else {
      const obj = await catalog.get(raw);
      if (obj?.playlist) {
        addEntries(obj, out);
        found = true;
      } else if (obj && !obj.container) {
        out.add(obj.refId ?? obj.id);
        found = true;
      } else if (obj?.container) {
        await below(catalog, obj.id, out);
        found = true;
      }
    }
    if (!found) throw new ArchiveError('NOT_FOUND', `unknown ${isPathLike(raw) ? 'path' : 'object ID'}: ${raw}`);
  }
  return [...out];
}

async function byPath(catalog: Catalog, raw: string, out: Set<string>): Promise<boolean> {
  const path = raw.startsWith('/') ? resolvePath(raw) : raw.replace(/\/+$/, '');
  const exact = await catalog.getPath(path);
  if (exact?.id) {
    const obj = exact.id.startsWith('l') ? await catalog.get(exact.id) : undefined;
    if (obj?.playlist) addEntries(obj, out); // a playlist file: the items it lists
    else out.add(exact.id);
    return true;
  }
  let found = false;
  // Items whose original path is the target or lies under it.
  const dir = path.endsWith(sep) || path.endsWith('/') ? path : path + (path.startsWith('tape://') ? '/' : sep);
  for await (const [, v] of catalog.store.entries(prefixRange('p/' + dir))) {
    const e = JSON.parse(v) as { id: string };
    // a playlist file in the folder is a record (l…), not an item: the items it lists may lie elsewhere
    if (e.id && !e.id.startsWith('l') && (await catalog.get(e.id))) {
      out.add(e.id);
      found = true;
    }
  }
  // Items without a scanner entry (imported from tape).
  for await (const item of catalog.eachItem()) {
    if (item.origPath && !item.playlist && (item.origPath === path || item.origPath.startsWith(dir))) {
      out.add(item.id);
      found = true;
    }
  }
  return found;
}

/** The canonical items a playlist record lists. */
function addEntries(playlist: CatalogObject, out: Set<string>): void {
  for (const e of playlist.playlist?.entries ?? []) out.add(parseRefId(e.id)?.itemId ?? e.id);
}

async function below(catalog: Catalog, containerId: string, out: Set<string>): Promise<void> {
  const stack = [containerId];
  const seen = new Set<string>();
  while (stack.length) {
    const cid = stack.pop()!;
    if (seen.has(cid)) continue;
    seen.add(cid);
    for (const child of await catalog.childIds(cid)) {
      const ref = parseRefId(child);
      if (ref) out.add(ref.itemId);
      else if (child.startsWith('i')) out.add(child);
      else stack.push(child);
    }
  }
}
