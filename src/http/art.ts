// `GET|HEAD /art/tn/<objectId>.jpg` and `/art/sm/<objectId>.jpg`: the album art / thumbnail of
// an item or an album/artist container, from the data directory's art store. Items on tape are
// served the same way: their art was made while they were on disk, and no cartridge is touched.
// Art is always JPEG: `<id>.jpg` (the URL DIDL-Lite announces), `<id>.jpeg` or a bare `<id>`;
// any other extension (`.png`, ...) is 404, so the URL never names a format the bytes are not.

import type { Router } from '@koa/router';
import type { Catalog } from '../catalog/catalog.js';
import { ART_SUFFIX, type ArtSize, artContentFeatures, isValidArtId } from '../art/dlna.js';
import type { ContentStore } from '../util/content-store.js';
import { diskSource, mediaRoutes, type Resolver } from './delivery.js';

export function artResolver(catalog: Catalog, store: ContentStore, size: ArtSize): Resolver {
  const suffix = ART_SUFFIX[size];
  return async (id) => {
    const art = (await catalog.get(id))?.art;
    const f = art && (await store.file(art.key, suffix));
    return f ? diskSource(f.path, f.size, f.mtimeMs, 'image/jpeg', artContentFeatures(size), 'Interactive') : undefined;
  };
}

export function artRoutes(router: Router, catalog: Catalog, store: ContentStore): void {
  for (const size of ['tn', 'sm'] as const) {
    mediaRoutes(router, artResolver(catalog, store, size), { validId: isValidArtId, extensions: ['jpg', 'jpeg'] }, `/art/${size}/:name`);
  }
}
