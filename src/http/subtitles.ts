// `GET|HEAD /subtitles/<videoId>.<n>.<ext>`: a video's n-th sidecar subtitle, from the copy the
// scanner kept in the data directory (so a video on tape has its subtitles without a mount).
//
// The extension is part of the contract: `<ext>` is the stored format's (the URL DIDL-Lite
// announces), served byte for byte with that format's MIME type, or `vtt` for a stored SubRip
// file, which is converted to WebVTT on the fly (media/srt-vtt.ts) and served as text/vtt. Any
// other extension is 404: a .vtt (or .ass ...) URL never delivers bytes of another format.
// `<videoId>.<n>` without an extension still serves the stored file as it is.
//
// Conversions: one at a time for the whole process (a file is read and converted while no
// other is), of files up to MAX_SUBTITLE_BYTES, and the results kept in a small cache by
// content key (bounded in bytes), so a player's several requests (HEAD, ranges) convert once.

import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Router } from '@koa/router';
import type { Catalog } from '../catalog/catalog.js';
import { DLNA_OP_BYTE_SEEK, FLAG_DLNA_V15, FLAG_TM_BACKGROUND, FLAG_TM_INTERACTIVE, formatFlags } from '../media/dlna.js';
import { MAX_SUBTITLE_BYTES, parseSubtitleName, servedAs, SUBTITLE_MIME } from '../media/subtitles.js';
import { decodeSubtitleText, srtToVtt } from '../media/srt-vtt.js';
import type { ContentStore } from '../util/content-store.js';
import { diskSource, mediaRoutes, type MediaSource, type Resolver } from './delivery.js';

/** contentFeatures of a subtitle file: no DLNA profile; byte seek; interactive or background. */
export const SUBTITLE_FEATURES = `DLNA.ORG_OP=${DLNA_OP_BYTE_SEEK};DLNA.ORG_FLAGS=${formatFlags((FLAG_TM_INTERACTIVE | FLAG_TM_BACKGROUND | FLAG_DLNA_V15) >>> 0)}`;

/** Bytes of converted subtitles kept for the next request (a film's WebVTT is well under 200 KB). */
export const VTT_CACHE_BYTES = 4 * 1024 * 1024;

/** Converted WebVTT by the SRT's content key and mtime; least recently used first. */
class VttCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;
  private queue: Promise<unknown> = Promise.resolve();

  /** The WebVTT of the SRT at `path` (its store key `key`), converting it if needed, one conversion at a time. */
  get(key: string, path: string, size: number): Promise<Buffer | undefined> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return Promise.resolve(hit);
    }
    if (size > MAX_SUBTITLE_BYTES) return Promise.resolve(undefined);
    const run = this.queue.then(async () => {
      const again = this.entries.get(key); // converted by a request queued before this one
      if (again) return again;
      const srt = await readFile(path).catch(() => undefined);
      if (!srt || srt.length > MAX_SUBTITLE_BYTES) return undefined;
      const vtt = Buffer.from(srtToVtt(decodeSubtitleText(srt)), 'utf8');
      this.put(key, vtt);
      return vtt;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private put(key: string, vtt: Buffer): void {
    if (vtt.length > VTT_CACHE_BYTES) return;
    this.entries.set(key, vtt);
    this.bytes += vtt.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= VTT_CACHE_BYTES) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }
}

function bufferSource(body: Buffer, mtime: number, mime: string): MediaSource {
  return {
    size: body.length,
    mtime,
    mime,
    contentFeatures: SUBTITLE_FEATURES,
    transferMode: 'Interactive',
    tier: 'disk',
    open: (start, end) => Readable.from([body.subarray(start, end + 1)]),
    check: async () => {},
  };
}

export function subtitleResolver(catalog: Catalog, store: ContentStore): Resolver {
  const vtt = new VttCache();
  return async (name) => {
    const ref = parseSubtitleName(name);
    if (!ref) return undefined;
    const sub = (await catalog.get(ref.id))?.subtitles?.[ref.n];
    if (!sub || !SUBTITLE_MIME[sub.ext]) return undefined;
    const as = ref.ext === undefined ? 'as-is' : servedAs(sub.ext, ref.ext);
    if (!as) return undefined;
    const f = await store.file(sub.key, sub.ext);
    if (!f) return undefined;
    if (as === 'as-is') return diskSource(f.path, f.size, f.mtimeMs, SUBTITLE_MIME[sub.ext], SUBTITLE_FEATURES, 'Interactive');
    const body = await vtt.get(`${sub.key}:${f.mtimeMs}`, f.path, f.size);
    return body && bufferSource(body, f.mtimeMs, SUBTITLE_MIME.vtt!);
  };
}

export function subtitleRoutes(router: Router, catalog: Catalog, store: ContentStore): void {
  mediaRoutes(router, subtitleResolver(catalog, store), { extensionMatters: true }, '/subtitles/:name');
}
