// `GET|HEAD /subtitles/<videoId>.<n>.<ext>`: a video's n-th sidecar subtitle, from the copy the
// scanner kept in the data directory (so a video on tape has its subtitles without a mount).

import { stat } from 'node:fs/promises';
import type { Router } from '@koa/router';
import type { Catalog } from '../catalog/catalog.js';
import { DLNA_OP_BYTE_SEEK, FLAG_DLNA_V15, FLAG_TM_BACKGROUND, FLAG_TM_INTERACTIVE, formatFlags } from '../media/dlna.js';
import { parseSubtitleName, SUBTITLE_MIME } from '../media/subtitles.js';
import { isContentKey, type ContentStore } from '../util/content-store.js';
import { diskSource, mediaRoutes, type Resolver } from './delivery.js';

/** contentFeatures of a subtitle file: no DLNA profile; byte seek; interactive or background. */
export const SUBTITLE_FEATURES = `DLNA.ORG_OP=${DLNA_OP_BYTE_SEEK};DLNA.ORG_FLAGS=${formatFlags((FLAG_TM_INTERACTIVE | FLAG_TM_BACKGROUND | FLAG_DLNA_V15) >>> 0)}`;

export function subtitleResolver(catalog: Catalog, store: ContentStore): Resolver {
  return async (name) => {
    const ref = parseSubtitleName(name);
    if (!ref) return undefined;
    const sub = (await catalog.get(ref.id))?.subtitles?.[ref.n];
    if (!sub || !isContentKey(sub.key) || !SUBTITLE_MIME[sub.ext]) return undefined;
    const path = store.path(sub.key, sub.ext);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    return diskSource(path, st.size, st.mtimeMs, SUBTITLE_MIME[sub.ext], SUBTITLE_FEATURES, 'Interactive');
  };
}

export function subtitleRoutes(router: Router, catalog: Catalog, store: ContentStore): void {
  mediaRoutes(router, subtitleResolver(catalog, store), {}, '/subtitles/:name');
}
