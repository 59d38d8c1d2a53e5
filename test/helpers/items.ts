// Synthetic catalog items for tests that need objects without scanning files: an item of a
// kind at a path below a media root, with the class, MIME type and disk location a scan gives.

import { itemIdForPath } from '../../src/catalog/layout.js';
import type { CatalogObject, MediaKind } from '../../src/catalog/types.js';

const CLASSES: Record<MediaKind, string> = { audio: 'object.item.audioItem.musicTrack', video: 'object.item.videoItem.movie', image: 'object.item.imageItem.photo' };

export interface TestItemOptions {
  /** Media root the path is below (default `/lib`). */
  root?: string;
  /** Resource MIME type (default by kind: audio/mpeg, video/mp4, image/jpeg). */
  mime?: string;
  meta?: CatalogObject['meta'];
  /** Resource fields beyond mime and size; `size` here is also the file's size (default 1000). */
  res?: Partial<CatalogObject['res']>;
  /** Any other field of the object (art, subtitles, ...). */
  extra?: Partial<CatalogObject>;
}

/** A catalog item for `root/rel`, not yet attached to a container (parentId ''). */
export function testItem(rel: string, kind: MediaKind, title: string, o: TestItemOptions = {}): CatalogObject {
  const root = o.root ?? '/lib';
  const path = `${root}/${rel}`;
  const size = o.res?.size ?? 1000;
  const mime = o.mime ?? { audio: 'audio/mpeg', video: 'video/mp4', image: 'image/jpeg' }[kind];
  return {
    id: itemIdForPath(path),
    parentId: '',
    container: false,
    upnpClass: CLASSES[kind],
    title,
    kind,
    meta: o.meta ?? {},
    res: { mime, ...o.res, size },
    location: { disk: { path, size, mtime: 1 } },
    origPath: path,
    mediaRoot: root,
    relPath: rel,
    ...o.extra,
  };
}
