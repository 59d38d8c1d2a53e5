// `GET|HEAD /subtitles/<videoId>.<n>.<ext>`: a video's n-th sidecar subtitle, from the copy the
// scanner kept in the data directory (so a video on tape has its subtitles without a mount).

import type { Router } from '@koa/router';
import type { Catalog } from '../catalog/catalog.js';
import { DLNA_OP_BYTE_SEEK, FLAG_DLNA_V15, FLAG_TM_BACKGROUND, FLAG_TM_INTERACTIVE, formatFlags } from '../media/dlna.js';
import { parseSubtitleName, SUBTITLE_MIME } from '../media/subtitles.js';
import type { ContentStore } from '../util/content-store.js';
import { diskSource, mediaRoutes, type Resolver } from './delivery.js';

/** contentFeatures of a subtitle file: no DLNA profile; byte seek; interactive or background. */
export const SUBTITLE_FEATURES = `DLNA.ORG_OP=${DLNA_OP_BYTE_SEEK};DLNA.ORG_FLAGS=${formatFlags((FLAG_TM_INTERACTIVE | FLAG_TM_BACKGROUND | FLAG_DLNA_V15) >>> 0)}`;

export function subtitleResolver(catalog: Catalog, store: ContentStore): Resolver {
  return async (name) => {
    const ref = parseSubtitleName(name);
    if (!ref) return undefined;
    const sub = (await catalog.get(ref.id))?.subtitles?.[ref.n];
    if (!sub || !SUBTITLE_MIME[sub.ext]) return undefined;
    const f = await store.file(sub.key, sub.ext);
    return f ? diskSource(f.path, f.size, f.mtimeMs, SUBTITLE_MIME[sub.ext], SUBTITLE_FEATURES, 'Interactive') : undefined;
  };
}

export function subtitleRoutes(router: Router, catalog: Catalog, store: ContentStore): void {
  mediaRoutes(router, subtitleResolver(catalog, store), {}, '/subtitles/:name');
}
