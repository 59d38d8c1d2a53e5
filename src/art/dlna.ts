// How album art and thumbnails are announced and served: DLNA's JPEG_TN (at most 160×160) and
// JPEG_SM (at most 640×480) profiles, one URL per object and size, `/art/<size>/<objectId>.jpg`
// (the object ID URI-encoded: container IDs hold `/`). The ID is only ever a catalog key.

import { join } from 'node:path';
import type { CatalogObject } from '../catalog/types.js';
import { dlnaFlags, formatFlags, DLNA_OP_BYTE_SEEK } from '../media/dlna.js';
import { ContentStore } from '../util/content-store.js';

/** The art store: `<data_dir>/art`. */
export function artStore(dataDir: string): ContentStore {
  return new ContentStore(join(dataDir, 'art'));
}

export type ArtSize = 'tn' | 'sm';
export const ART_PROFILE: Record<ArtSize, string> = { tn: 'JPEG_TN', sm: 'JPEG_SM' };
/** File name suffix of each size in the art store. */
export const ART_SUFFIX: Record<ArtSize, string> = { tn: 'tn.jpg', sm: 'sm.jpg' };

/** contentFeatures of a thumbnail: CI=1, it is converted from the original. */
export function artContentFeatures(size: ArtSize): string {
  const flags = formatFlags(dlnaFlags({ mime: 'image/jpeg', size: 0 }));
  return `DLNA.ORG_PN=${ART_PROFILE[size]};DLNA.ORG_OP=${DLNA_OP_BYTE_SEEK};DLNA.ORG_CI=1;DLNA.ORG_FLAGS=${flags}`;
}

export function artProtocolInfo(size: ArtSize): string {
  return `http-get:*:image/jpeg:${artContentFeatures(size)}`;
}

/** Object whose art an object shows: a reference shows its item's art. */
export function artObjectId(obj: CatalogObject): string {
  return obj.refId ?? obj.id;
}

export function artUrl(baseUrl: string, obj: CatalogObject, size: ArtSize): string {
  return `${baseUrl}/art/${size}/${encodeURIComponent(artObjectId(obj))}.jpg`;
}

/** IDs the art route takes: the media alphabet plus `/` (container IDs), no `..` segment. */
const ART_ID_RE = /^[A-Za-z0-9_~$@!+=:./-]{1,512}$/;
export function isValidArtId(id: string): boolean {
  return ART_ID_RE.test(id) && !id.split('/').some((s) => s === '.' || s === '..');
}

/** DIDL-Lite hooks: `upnp:albumArtURI` (JPEG_TN) of any object with art, and the extra JPEG_TN `res` of images and videos. */
export function didlArt(baseUrl: string) {
  return {
    albumArtUrl: (obj: CatalogObject) => (obj.art ? { url: artUrl(baseUrl, obj, 'tn'), profileId: ART_PROFILE.tn } : undefined),
    thumbnail: (obj: CatalogObject) =>
      obj.art ? { url: artUrl(baseUrl, obj, 'tn'), protocolInfo: artProtocolInfo('tn'), width: obj.art.tn[0], height: obj.art.tn[1] } : undefined,
  };
}
