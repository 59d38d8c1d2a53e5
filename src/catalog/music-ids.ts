// Moving a catalog written with version 1 of the music container IDs (layout.ts
// MUSIC_ID_VERSION: artist/album/genre names lower-cased) to the current one (names folded as
// Search folds them, so one artist is one container whatever Unicode form its tags use).
//
// Only audio items with a name whose fold differs from its lower case move (ASCII names never
// do: their IDs stay); each batch of them goes through the catalog's apply() with their old
// placements computed the version-1 way, so references, counts, emptied and new containers change
// together, atomically. An item is moved only while its version-1 reference is still stored, so
// a move cut short (kill -9) is simply finished on the next open; the version is written last.

import type { KVStore } from './store.js';
import { prefixRange } from './store.js';
import type { CatalogObject } from './types.js';
import { LEGACY_NAME_KEY, MUSIC_ID_VERSION, musicIdsUnchanged, placements } from './layout.js';

const META = 'meta/musicIds';
const BATCH = 500;

/**
 * Brings the catalog's music container IDs to MUSIC_ID_VERSION. `moveLegacy` re-applies items
 * whose stored placements are version 1's. `fresh`: a new catalog (nothing to move). Returns how
 * many items moved.
 */
export async function migrateMusicIds(
  store: KVStore,
  fresh: boolean,
  childKey: (p: { containerId: string; sortKey: string; childId: string }) => string,
  moveLegacy: (items: CatalogObject[]) => Promise<unknown>,
): Promise<number> {
  if ((await store.get(META)) === MUSIC_ID_VERSION) return 0;
  let moved = 0;
  if (!fresh) {
    let batch: CatalogObject[] = [];
    const flush = async () => {
      if (!batch.length) return;
      // still stored under a version-1 container (not moved by an earlier, interrupted open)?
      const probes = batch.map((item) => {
        const now = new Set(placements(item).placements.map(childKey));
        return placements(item, LEGACY_NAME_KEY).placements.map(childKey).find((k) => !now.has(k))!;
      });
      const stored = await store.getMany(probes);
      const todo = batch.filter((_, i) => stored[i] !== undefined);
      if (todo.length) await moveLegacy(todo);
      moved += todo.length;
      batch = [];
    };
    for await (const [, v] of store.entries(prefixRange('o/i'))) {
      const item = JSON.parse(v) as CatalogObject;
      if (musicIdsUnchanged(item)) continue;
      batch.push(item);
      if (batch.length >= BATCH) await flush();
    }
    await flush();
  }
  await store.batch([{ type: 'put', key: META, value: MUSIC_ID_VERSION }]);
  return moved;
}
