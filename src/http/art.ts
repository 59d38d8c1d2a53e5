// `GET|HEAD /art/tn/<objectId>.jpg` and `/art/sm/<objectId>.jpg`: the album art / thumbnail of
// an item or an album/artist container, from the data directory's art store. Items on tape are
// served the same way: their art was made while they were on disk, and no cartridge is touched.

import { stat } from 'node:fs/promises';
import type { Router } from '@koa/router';
import type { Catalog } from '../catalog/catalog.js';
import { ART_SUFFIX, type ArtSize, artContentFeatures, isValidArtId } from '../art/dlna.js';
import type { ContentStore } from '../util/content-store.js';
import { isContentKey } from '../util/content-store.js';
import { diskSource, mediaRoutes, type Resolver } from './delivery.js';

export function artResolver(catalog: Catalog, store: ContentStore, size: ArtSize): Resolver {
  const suffix = ART_SUFFIX[size];
  return async (id) => {
    const art = (await catalog.get(id))?.art;
    if (!art || !isContentKey(art.key)) return undefined;
    const path = store.path(art.key, suffix);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    return diskSource(path, st.size, st.mtimeMs, 'image/jpeg', artContentFeatures(size), 'Interactive');
  };
}

export function artRoutes(router: Router, catalog: Catalog, store: ContentStore): void {
  for (const size of ['tn', 'sm'] as const) {
    mediaRoutes(router, artResolver(catalog, store, size), { validId: isValidArtId }, `/art/${size}/:name`);
  }
}
