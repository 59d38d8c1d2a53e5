// Resume positions (Samsung X_SetBookmark), one per canonical item, in their own key space
// `b/<itemId>` → {pos, at} of the catalog store. They are kept apart from the item object on
// purpose: a rescan rewrites a changed file's object, archive and recall rewrite its location,
// and none of them may forget where the viewer stopped. The ID of an item is derived from its
// original path, so a bookmark follows the item through every tier move. Removing an item from
// the catalog removes its bookmark in the same batch (Catalog.apply).

import type { BatchOp, KVStore } from './store.js';

export const BOOKMARK_PREFIX = 'b/';

export interface Bookmark {
  /** Resume position in whole seconds. */
  pos: number;
  /** When it was set (ms since epoch). */
  at: number;
}

export const bookmarkKey = (itemId: string): string => BOOKMARK_PREFIX + itemId;

/** Batch op that drops an item's bookmark (used when the item leaves the catalog). */
export const dropBookmarkOp = (itemId: string): BatchOp => ({ type: 'del', key: bookmarkKey(itemId) });

export class Bookmarks {
  constructor(private store: KVStore) {}

  /** Stores a resume position; 0 clears it (played from the start or to the end). */
  async set(itemId: string, pos: number, now = Date.now()): Promise<void> {
    if (!Number.isSafeInteger(pos) || pos < 0) throw new RangeError(`bookmark position must be a whole number of seconds >= 0, got ${pos}`);
    const op: BatchOp = pos === 0 ? dropBookmarkOp(itemId) : { type: 'put', key: bookmarkKey(itemId), value: JSON.stringify({ pos, at: now } satisfies Bookmark) };
    await this.store.batch([op]);
  }

  async get(itemId: string): Promise<Bookmark | undefined> {
    return (await this.getMany([itemId])).get(itemId);
  }

  /** Bookmarks of the given canonical item IDs (one read for a whole Browse page). */
  async getMany(itemIds: readonly string[]): Promise<Map<string, Bookmark>> {
    const out = new Map<string, Bookmark>();
    if (!itemIds.length) return out;
    const ids = [...new Set(itemIds)];
    const raw = await this.store.getMany(ids.map(bookmarkKey));
    raw.forEach((v, i) => {
      if (v === undefined) return;
      try {
        const b = JSON.parse(v) as Bookmark;
        if (Number.isSafeInteger(b.pos) && b.pos > 0) out.set(ids[i], b);
      } catch {
        // a damaged value is no bookmark
      }
    });
    return out;
  }
}
