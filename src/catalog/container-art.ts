// The art of album and artist containers once tracks leave them or change their art.
//
// A container takes the art of the first member track that has some (catalog.ts, apply); when
// the track that art came from is removed, changes its cover or moves to another album, the
// container's art is taken again from the tracks it still has (none with art: no art), in the
// same batch, so a container never keeps a cover only a removed track had (and the store's
// garbage collection, store-gc.ts, can then drop that cover).

import type { BatchOp } from './store.js';
import type { ArtRef, CatalogObject } from './types.js';
import { parseRefId } from './layout.js';

export interface BatchView {
  /** Child IDs of a container as stored, before the batch (in default order). */
  storedChildren(containerId: string): Promise<string[]>;
  /** A canonical item as the batch leaves it: undefined when removed or absent. */
  item(id: string): Promise<CatalogObject | undefined>;
  /** The batch's ops (child index puts and deletes are read from them). */
  ops: readonly BatchOp[];
  /** Prefix of a container's child index keys. */
  childPrefix(containerId: string): string;
}

/** Child IDs after the batch: stored ones minus deleted, plus added (at the end). */
function childrenAfter(stored: string[], ops: readonly BatchOp[], prefix: string): string[] {
  const del = new Set<string>();
  const put: string[] = [];
  for (const op of ops) {
    if (!op.key.startsWith(prefix)) continue;
    const id = op.key.slice(op.key.lastIndexOf('\u0000') + 1);
    if (op.type === 'del') del.add(id);
    else put.push(id);
  }
  const out = stored.filter((id) => !del.has(id));
  const have = new Set(out);
  for (const id of put) if (!have.has(id)) out.push(id), have.add(id);
  return out;
}

/**
 * The art of the first member track (in child order; an artist's through its albums) that has
 * some after the batch, or undefined. Reads stop at the first track with art.
 */
export async function memberArt(containerId: string, view: BatchView, depth = 0): Promise<ArtRef | undefined> {
  const kids = childrenAfter(await view.storedChildren(containerId), view.ops, view.childPrefix(containerId));
  for (const kid of kids) {
    const ref = parseRefId(kid);
    if (ref) {
      const art = (await view.item(ref.itemId))?.art;
      if (art) return art;
    } else if (depth < 2) {
      const art = await memberArt(kid, view, depth + 1);
      if (art) return art;
    }
  }
  return undefined;
}
