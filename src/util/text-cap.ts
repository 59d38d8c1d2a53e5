// Text from media files (tags, EXIF, container titles, playlist entry titles) is shown to clients
// in every DIDL-Lite answer that lists the object, its album, artist and genre containers
// included. A tag may hold megabytes (an ID3/Vorbis frame is bounded only by the tag read): one
// such file made every Browse page of All Tracks 1.6 MB and the Artists page 300 KB (QA probe).
// Values are kept to MAX_TEXT characters, cut on a code point boundary, with an ellipsis.

import type { ItemMeta } from '../catalog/types.js';

/** Most UTF-16 code units a catalogued text value keeps (titles, artist, album, ...). */
export const MAX_TEXT = 1024;

/** `s` cut to MAX_TEXT code units (never inside a surrogate pair), with '…' when cut. */
export function capText(s: string, max = MAX_TEXT): string {
  if (s.length <= max) return s;
  let end = max - 1;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // a high surrogate whose low half would be cut off
  return s.slice(0, end) + '…';
}

/** The text fields of item metadata, each capped (numbers kept as they are). */
export function capMeta(meta: ItemMeta): ItemMeta {
  let out: ItemMeta | undefined;
  for (const [k, v] of Object.entries(meta) as [keyof ItemMeta, unknown][]) {
    if (typeof v === 'string' && v.length > MAX_TEXT) (out ??= { ...meta })[k] = capText(v) as never;
  }
  return out ?? meta;
}
