// Sidecar subtitles of a video: `<name>.srt`, `<name>.<LANG>.srt` (also .ass, .ssa, .vtt, .smi,
// .sub; any case) beside the file. The scanner copies each into the data directory's subtitle
// store (`<data_dir>/subtitles`, named by a hash of its bytes), so they are served by the video's
// object ID whether the video is on disk or on tape, and never from a path a request names.
// Like media files, a sidecar that is a symbolic link is not used: it could point anywhere the
// server may read (a link named Film.srt to /etc/passwd would be served to every client).

import { lstat, readdir } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { CatalogObject, SubtitleRef } from '../catalog/types.js';
import { ContentStore, contentKey } from '../util/content-store.js';
import { readRegularFile } from '../util/read-regular.js';

/** MIME type of each subtitle format (the type in protocolInfo and Content-Type). */
export const SUBTITLE_MIME: Record<string, string> = {
  srt: 'text/srt',
  ass: 'text/x-ass',
  ssa: 'text/x-ssa',
  vtt: 'text/vtt',
  smi: 'text/smi',
  sub: 'text/x-microdvd',
};

/** Largest subtitle file copied (bytes); a film's subtitles are well under 1 MiB. */
export const MAX_SUBTITLE_BYTES = 4 * 1024 * 1024;
/** Most subtitle files kept per video. */
export const MAX_SUBTITLES = 16;

const LANG_RE = /^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$/;

export function subtitleStore(dataDir: string): ContentStore {
  return new ContentStore(join(dataDir, 'subtitles'));
}

/** Sidecar subtitle files of `video` (absolute paths, with format and language), in a stable order. */
export async function findSidecars(video: string, names?: string[]): Promise<{ path: string; ext: string; lang?: string }[]> {
  const dir = dirname(video);
  const name = basename(video);
  const stem = name.slice(0, name.length - extname(name).length).toLowerCase();
  const out: { path: string; ext: string; lang?: string }[] = [];
  for (const n of names ?? (await readdir(dir).catch(() => [] as string[]))) {
    const ext = extname(n).slice(1).toLowerCase();
    if (!SUBTITLE_MIME[ext] || n.startsWith('.')) continue;
    const base = n.slice(0, n.length - ext.length - 1);
    const lower = base.toLowerCase();
    if (lower === stem) out.push({ path: join(dir, n), ext });
    else if (lower.startsWith(stem + '.')) {
      const lang = base.slice(stem.length + 1);
      if (LANG_RE.test(lang)) out.push({ path: join(dir, n), ext, lang });
    }
  }
  // the plain <name>.srt first, then by language; srt before other formats
  out.sort((a, b) => Number(!!a.lang) - Number(!!b.lang) || (a.lang ?? '').localeCompare(b.lang ?? '') || Number(a.ext !== 'srt') - Number(b.ext !== 'srt') || a.path.localeCompare(b.path));
  return out.slice(0, MAX_SUBTITLES);
}

/** Whether `path` has a subtitle file's extension (a possible sidecar of some video). */
export function isSubtitlePath(path: string): boolean {
  return SUBTITLE_MIME[extname(path).slice(1).toLowerCase()] !== undefined;
}

/**
 * The videos (absolute paths, files `isVideo` accepts) whose sidecar `sub` is or would be,
 * whether `sub` exists or was just deleted: a sidecar that comes, changes or goes changes them.
 */
export async function videosOfSidecar(sub: string, isVideo: (path: string) => boolean): Promise<string[]> {
  const dir = dirname(sub);
  const name = basename(sub);
  const out: string[] = [];
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    if (n.startsWith('.') || !isVideo(n)) continue;
    const video = join(dir, n);
    if ((await findSidecars(video, [name])).length) out.push(video);
  }
  return out;
}

/** Names, sizes and mtimes of a video's sidecars ('' when it has none): a change means copy them again. `names`: its directory's listing, when known. */
export async function sidecarSignature(video: string, names?: string[]): Promise<string> {
  const parts: string[] = [];
  for (const s of await findSidecars(video, names)) {
    const st = await lstat(s.path).catch(() => undefined);
    if (st?.isFile()) parts.push(`${basename(s.path)}:${st.size}:${Math.trunc(st.mtimeMs)}`);
  }
  return parts.length ? contentKey(parts.join('\n')) : '';
}

/**
 * Copies the sidecar subtitles of `video` into the store and returns their references (undefined
 * when there are none). Files over MAX_SUBTITLE_BYTES or that cannot be read are skipped.
 */
export async function storeSubtitles(store: ContentStore, video: string, log?: { warn(obj: object, msg?: string): void }): Promise<SubtitleRef[] | undefined> {
  const refs: SubtitleRef[] = [];
  for (const s of await findSidecars(video)) {
    const st = await lstat(s.path).catch(() => undefined);
    if (!st?.isFile()) continue;
    if (st.size > MAX_SUBTITLE_BYTES) {
      log?.warn({ path: s.path, size: st.size }, `subtitle file ${s.path} is larger than ${MAX_SUBTITLE_BYTES} bytes; not used`);
      continue;
    }
    // not readFile(path): a link put there since the lstat would be followed
    const data = (await readRegularFile(s.path, MAX_SUBTITLE_BYTES))?.data;
    if (!data) continue;
    const key = contentKey(data);
    if (!(await store.has(key, s.ext))) await store.put(key, s.ext, data);
    refs.push({ key, ext: s.ext, ...(s.lang ? { lang: s.lang } : {}) });
  }
  return refs.length ? refs : undefined;
}

// --- how subtitles are served and announced --------------------------------------------------

/** `/subtitles/<videoId>.<n>.<ext>`: the n-th subtitle of a video (a reference serves its item's). */
export function subtitleUrl(baseUrl: string, obj: CatalogObject, n: number): string | undefined {
  const s = obj.subtitles?.[n];
  return s ? `${baseUrl}/subtitles/${encodeURIComponent(obj.refId ?? obj.id)}.${n}.${s.ext}` : undefined;
}

export interface Caption {
  url: string;
  mime: string;
  /** Format name, as Samsung's sec:type wants it (srt, smi, ...). */
  type: string;
}

/** Every subtitle of a video, for DIDL-Lite (the order of `subtitles`). */
export function captionsOf(baseUrl: string, obj: CatalogObject): Caption[] {
  return (obj.subtitles ?? []).map((s, n) => ({ url: subtitleUrl(baseUrl, obj, n)!, mime: SUBTITLE_MIME[s.ext] ?? 'text/plain', type: s.ext }));
}

/** The one subtitle offered where only one fits (Samsung's CaptionInfo.sec): SRT first, then SAMI, then any. */
export function preferredCaption(captions: Caption[]): Caption | undefined {
  return captions.find((c) => c.type === 'srt') ?? captions.find((c) => c.type === 'smi') ?? captions[0];
}

/** `<id>.<n>.<ext>` (or `<id>.<n>`) of a subtitle URL → the video's ID, the subtitle's index and the extension asked for (lower case). */
export function parseSubtitleName(name: string): { id: string; n: number; ext?: string } | undefined {
  const m = /^(.+)\.(\d{1,2})(?:\.([A-Za-z][A-Za-z0-9]{0,7}))?$/.exec(name);
  return m ? { id: m[1], n: Number(m[2]), ...(m[3] ? { ext: m[3].toLowerCase() } : {}) } : undefined;
}

/**
 * The formats a stored subtitle of format `ext` is served as: its own, and WebVTT for SubRip
 * (converted on the fly, http/subtitles.ts). A URL with any other extension is 404.
 */
export function servedAs(ext: string, asked: string): 'as-is' | 'srt-to-vtt' | undefined {
  if (asked === ext) return 'as-is';
  if (ext === 'srt' && asked === 'vtt') return 'srt-to-vtt';
  return undefined;
}
