// Makes the art of one scanned item: finds its source (src/art/sources.ts), scales it once to
// JPEG_TN and JPEG_SM (src/art/scale.ts) and keeps both in `<data_dir>/art`, named by a hash of
// the source picture, so one album cover shared by every track is scaled and stored once.
//
// Bounded: pictures over MAX_PICTURE_BYTES are not read, decodes over MAX_INPUT_PIXELS are
// refused, ffmpeg gets `frameTimeoutMs` per file, and the in-memory caches are small LRUs.
// A broken or huge picture never fails the scan: the item is catalogued without art and the
// reason is logged once (per picture, and per file since the scanner does not retry it).

import { lstat, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { lazyImport } from '../util/lazy.js';
import type { ArtRef, ProbeResult } from '../catalog/types.js';
import { type ContentStore, contentKey } from '../util/content-store.js';
import { hashFile } from '../util/hash.js';
import { readRegularFile } from '../util/read-regular.js';
import { LRUCache } from 'lru-cache';
import { probe } from '../media/probe.js';
import { ART_SUFFIX, artStore } from './dlna.js';
// Pictures are scaled in a child process (src/art/scaler.ts), started with the first picture to
// scale and let go when idle: this process never loads sharp (libvips, its threads' malloc arenas).
import { artScaler } from './scaler.js';
import { type DirPictures, findFfmpeg, folderArtOf, listDirPictures, namedPicture, videoFrame } from './sources.js';

/** Loaded on first use (util/lazy.ts): only a check of stored art reads dimensions. */
const imageSizeLib = lazyImport(() => import('image-size'));

/** Largest picture file or embedded picture used as a source (bytes). */
export const MAX_PICTURE_BYTES = 16 * 1024 * 1024;
/** Largest image file scaled to its own thumbnail (bytes); libvips streams it from disk. */
export const MAX_IMAGE_BYTES = 256 * 1024 * 1024;

const TN_SUFFIX = ART_SUFFIX.tn;
const SM_SUFFIX = ART_SUFFIX.sm;

export interface ArtOptions {
  /** The data directory; the store is `<dataDir>/art`. */
  dataDir: string;
  /** ffmpeg binary for video frames: a path, false for none, undefined to look it up on PATH. */
  ffmpeg?: string | false;
  /** ffprobe for forFile()'s probe (as the scanner's setting: a path, 'off' or undefined). */
  ffprobe?: string;
  /** Longest ffmpeg may take for one frame (ms, default 10 s). */
  frameTimeoutMs?: number;
  log?: { warn(obj: object, msg?: string): void };
}

export class ArtMaker {
  readonly store: ContentStore;
  private dirs = new LRUCache<string, Promise<DirPictures>>({ max: 16 });
  /** Picture file (path, size, mtime) → its art, so a folder's cover is read once per scan. */
  private files = new LRUCache<string, Promise<ArtRef | undefined>>({ max: 256 });
  /** Content key → art being made or made (one scaling per key at a time). */
  private byKey = new LRUCache<string, Promise<ArtRef | undefined>>({ max: 1024 });
  private logged = new LRUCache<string, true>({ max: 4096 });
  private ffmpeg: Promise<string | undefined>;

  constructor(private opts: ArtOptions) {
    this.store = artStore(opts.dataDir);
    this.ffmpeg = opts.ffmpeg === false ? Promise.resolve(undefined) : opts.ffmpeg ? Promise.resolve(opts.ffmpeg) : findFfmpeg();
  }

  private warnOnce(what: string, obj: object, msg: string): void {
    if (this.logged.get(what)) return;
    this.logged.set(what, true);
    this.opts.log?.warn(obj, msg);
  }

  /** Forgets what was made: after store files were removed (src/catalog/store-gc.ts), nothing cached points at them. */
  forget(): void {
    this.byKey.clear();
    this.files.clear();
  }

  /** Art for the media file at `path`, probing it first (outside a scan: before archiving). */
  async forFile(path: string): Promise<ArtRef | undefined> {
    const ffprobe = this.opts.ffprobe === 'off' ? false : this.opts.ffprobe;
    const pr = await probe(path, { ffprobe, pictures: true });
    return pr ? this.forItem(path, pr) : undefined;
  }

  /**
   * Whether the art of this item would come from a video frame through ffmpeg (a video with no
   * picture named after it, ffmpeg at hand): the slow source, which a scan may leave for later.
   */
  async frameNeeded(path: string, pr: ProbeResult): Promise<boolean> {
    if (pr.kind !== 'video' || !(await this.ffmpeg)) return false;
    return !namedPicture(path, await this.pictures(dirname(path)));
  }

  /** Art for the item scanned from `path` (probed as `pr`), or undefined when it has none. */
  async forItem(path: string, pr: ProbeResult): Promise<ArtRef | undefined> {
    if (pr.kind === 'image') return this.fromImage(path, pr.res.size);
    if (pr.kind === 'audio') {
      if (pr.pictureSkipped) this.warnOnce(path, { path, reason: pr.pictureSkipped }, `embedded picture of ${path} skipped (${pr.pictureSkipped}); the file is catalogued without it`);
      if (pr.picture) {
        const art = await this.fromBytes(Buffer.from(pr.picture.data.buffer, pr.picture.data.byteOffset, pr.picture.data.byteLength), path);
        if (art) return art;
      }
      const folder = folderArtOf(path, await this.pictures(dirname(path)));
      return folder ? this.fromPictureFile(folder) : undefined;
    }
    // video
    const pics = await this.pictures(dirname(path));
    const named = namedPicture(path, pics);
    if (named) {
      const art = await this.fromPictureFile(named);
      if (art) return art;
    }
    const ffmpeg = await this.ffmpeg;
    if (ffmpeg) {
      const d = pr.res.duration;
      const frame = await videoFrame(ffmpeg, path, d && d > 0 ? d * 0.1 : 0, this.opts.frameTimeoutMs ?? 10_000);
      // a position past the last frame (a wrong duration) gives nothing: try the first frame
      const f = frame ?? (d && d > 0 ? await videoFrame(ffmpeg, path, 0, this.opts.frameTimeoutMs ?? 10_000) : undefined);
      if (f) {
        const art = await this.fromBytes(f, path);
        if (art) return art;
      }
    }
    const folder = folderArtOf(path, pics);
    return folder ? this.fromPictureFile(folder) : undefined;
  }

  private pictures(dir: string): Promise<DirPictures> {
    let p = this.dirs.get(dir);
    if (!p) {
      p = listDirPictures(dir);
      this.dirs.set(dir, p);
    }
    return p;
  }

  private async fromPictureFile(file: string): Promise<ArtRef | undefined> {
    // lstat: a symbolic link is not used (like media files), so a cover.jpg linked to any picture
    // the server may read does not end up served as art
    const st = await lstat(file).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    if (st.size > MAX_PICTURE_BYTES) {
      this.warnOnce(file, { file, size: st.size }, `picture ${file} is larger than ${MAX_PICTURE_BYTES} bytes; not used as art`);
      return undefined;
    }
    const id = `${file}\0${st.size}\0${st.mtimeMs}`;
    let p = this.files.get(id);
    if (!p) {
      // not readFile(file): a link put there since the lstat would be followed
      p = readRegularFile(file, MAX_PICTURE_BYTES).then(
        (b) => (b ? this.fromBytes(b.data, file) : undefined),
        () => undefined,
      );
      this.files.set(id, p);
    }
    return p;
  }

  private async fromImage(path: string, size: number): Promise<ArtRef | undefined> {
    if (size > MAX_IMAGE_BYTES) {
      this.warnOnce(path, { path, size }, `image ${path} is larger than ${MAX_IMAGE_BYTES} bytes; no thumbnail`);
      return undefined;
    }
    const key = (await hashFile(path).catch(() => undefined))?.slice(0, 32);
    return key ? this.make(key, path, path) : undefined;
  }

  /** Art from an encoded picture in memory (embedded cover, video frame, folder art file). */
  async fromBytes(bytes: Buffer, origin: string): Promise<ArtRef | undefined> {
    if (bytes.length === 0) return undefined;
    if (bytes.length > MAX_PICTURE_BYTES) {
      this.warnOnce(origin, { origin, size: bytes.length }, `picture of ${origin} is larger than ${MAX_PICTURE_BYTES} bytes; not used as art`);
      return undefined;
    }
    return this.make(contentKey(bytes), bytes, origin);
  }

  private make(key: string, source: Buffer | string, origin: string): Promise<ArtRef | undefined> {
    let p = this.byKey.get(key);
    if (!p) {
      p = this.makeNow(key, source, origin);
      this.byKey.set(key, p);
    }
    return p;
  }

  private async makeNow(key: string, source: Buffer | string, origin: string): Promise<ArtRef | undefined> {
    const known = await this.stored(key);
    if (known) return known;
    let scaled;
    try {
      scaled = await artScaler.scale(source);
    } catch (err) {
      this.warnOnce(`key:${key}`, { origin, err: (err as Error).message }, `picture of ${origin} cannot be decoded; no art for it`);
      return undefined;
    }
    // SM before TN: `stored()` takes a TN file as the sign that both are there
    await this.store.put(key, SM_SUFFIX, scaled.sm.data);
    await this.store.put(key, TN_SUFFIX, scaled.tn.data);
    return { key, tn: [scaled.tn.width, scaled.tn.height], sm: [scaled.sm.width, scaled.sm.height] };
  }

  /** Art already in the store (from an earlier scan), with its sizes read from the JPEG headers. */
  private async stored(key: string): Promise<ArtRef | undefined> {
    if (!(await this.store.has(key, TN_SUFFIX))) return undefined;
    try {
      const { imageSize } = await imageSizeLib();
      const tn = imageSize(await readFile(this.store.path(key, TN_SUFFIX)));
      const sm = imageSize(await readFile(this.store.path(key, SM_SUFFIX)));
      if (!tn.width || !tn.height || !sm.width || !sm.height) return undefined;
      return { key, tn: [tn.width, tn.height], sm: [sm.width, sm.height] };
    } catch {
      return undefined; // damaged: made again
    }
  }
}
