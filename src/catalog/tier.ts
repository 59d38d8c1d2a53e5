// Where an item's bytes are, and how many there are: the one answer the status page, /metrics,
// `tapedeck ls` and the storage policy all give.

import type { CatalogObject, Location } from './types.js';

/**
 * 'disk' (disk only), 'tape' (tape only, maybe with a head stub), 'both' (a disk copy and a tape
 * copy), 'none' (neither: an entry with no location, which nothing can serve or move).
 */
export type Tier = 'disk' | 'tape' | 'both' | 'none';

export function tierOf(loc: Location | undefined): Tier {
  const disk = !!loc?.disk;
  const tape = !!loc?.tape;
  return disk && tape ? 'both' : disk ? 'disk' : tape ? 'tape' : 'none';
}

/**
 * An item's size in bytes: what delivery serves (the disk copy as last seen, else the verified
 * tape copy), the scanned resource size only when neither is known.
 */
export function itemSize(item: Pick<CatalogObject, 'location' | 'res'>): number {
  const l = item.location;
  return l?.disk?.size ?? l?.tape?.size ?? item.res?.size ?? 0;
}
