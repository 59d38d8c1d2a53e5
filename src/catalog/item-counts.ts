// What the catalog keeps on each canonical item besides its content: the counts of totals()
// by kind and tier, and the `added`/`changed` times apply() stamps.

import type { CatalogObject } from './types.js';

export type CatalogTotals = { items: number; audio: number; video: number; image: number; containers: number; onTapeOnly: number; onDiskAndTape: number };

export type ItemCounts = Omit<CatalogTotals, 'containers'>;

export function emptyItemCounts(): ItemCounts {
  return { items: 0, audio: 0, video: 0, image: 0, onTapeOnly: 0, onDiskAndTape: 0 };
}

/** Adds one canonical item to the counts of totals(). */
export function countItem(t: ItemCounts, i: CatalogObject): void {
  t.items++;
  if (i.kind) t[i.kind]++;
  if (i.location?.tape) i.location.disk ? t.onDiskAndTape++ : t.onTapeOnly++;
}

/**
 * `added` is set when an item first enters the catalog and carried over afterwards;
 * `changed` when its content (size or mtime) differs from the stored version. Items
 * stored before these were kept get none (so a rescan does not rewrite every item).
 */
export function stampTimes(item: CatalogObject, old: CatalogObject | undefined, now: () => number): void {
  if (!old) {
    item.added ??= now();
    return;
  }
  if (item.added === undefined && old.added !== undefined) item.added = old.added;
  const contentChanged = old.mtime !== item.mtime || old.res?.size !== item.res?.size;
  if (contentChanged) item.changed = now();
  else if (item.changed === undefined && old.changed !== undefined) item.changed = old.changed;
}
