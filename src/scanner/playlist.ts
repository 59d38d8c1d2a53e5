// Playlist files (.m3u, .m3u8, .pls): parsing and resolution of their entries to catalogued items.
//
// Parsing is bounded (file size and entry count): a hostile or huge file costs at most
// MAX_PLAYLIST_BYTES of memory. Entries are paths relative to the playlist's folder or absolute,
// or file:// URLs; other URLs (http:// streams) are outside the library. #EXTINF (m3u) and TitleN
// (pls) titles are kept: the playlist shows its entries under the names its author gave them.

import { lstat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, normalize, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Catalog } from '../catalog/catalog.js';
import type { CatalogObject, PlaylistEntry } from '../catalog/types.js';
import { playlistIdForPath } from '../catalog/layout.js';
import { isInside } from '../util/inside.js';
import { readRegularFile } from '../util/read-regular.js';
import { capText } from '../util/text-cap.js';

export const PLAYLIST_EXTENSIONS = ['m3u', 'm3u8', 'pls'];
export const MAX_PLAYLIST_BYTES = 1024 * 1024;
export const MAX_PLAYLIST_ENTRIES = 10_000;

export function isPlaylistPath(path: string): boolean {
  return PLAYLIST_EXTENSIONS.includes(extname(path).slice(1).toLowerCase());
}

export interface RawEntry {
  /** As written in the file: a path or a URL. */
  target: string;
  title?: string;
}

/** Text of a playlist: UTF-8 (BOM stripped); a .m3u that is not valid UTF-8 is Latin-1, as the format began. */
export function decodePlaylist(buf: Buffer, path: string): string {
  let b = buf;
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
  if (extname(path).toLowerCase() === '.m3u') {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return b.toString('latin1');
    }
  }
  return b.toString('utf8');
}

/** Entries of an M3U/M3U8 text, in order (at most `max`). */
export function parseM3u(text: string, max = MAX_PLAYLIST_ENTRIES): RawEntry[] {
  const out: RawEntry[] = [];
  let title: string | undefined;
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) {
      const m = /^#EXTINF:[^,]*,(.*)$/i.exec(line);
      if (m) title = capText(m[1].trim()) || undefined;
      continue;
    }
    out.push(title ? { target: line, title } : { target: line });
    title = undefined;
    if (out.length >= max) break;
  }
  return out;
}

/** Entries of a PLS text ([playlist], FileN=, TitleN=), in N order (at most `max`). */
export function parsePls(text: string, max = MAX_PLAYLIST_ENTRIES): RawEntry[] {
  const files = new Map<number, string>();
  const titles = new Map<number, string>();
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const m = /^\s*(File|Title)(\d{1,9})\s*=(.*)$/i.exec(raw);
    if (!m) continue;
    const n = Number(m[2]);
    const v = m[3].trim();
    if (m[1].toLowerCase() === 'file') {
      if (files.size < max || files.has(n)) files.set(n, v);
    } else if (v) titles.set(n, capText(v));
  }
  return [...files.entries()]
    .filter(([, v]) => v)
    .sort((a, b) => a[0] - b[0])
    .map(([n, target]) => (titles.has(n) ? { target, title: titles.get(n)! } : { target }));
}

/** Absolute path an entry names, or undefined for a URL that is not a local file. */
export function entryPath(target: string, playlistPath: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    if (!/^file:\/\//i.test(target)) return undefined;
    try {
      return fileURLToPath(target);
    } catch {
      return undefined;
    }
  }
  const t = target.replace(/\\/g, '/'); // written on Windows
  return normalize(isAbsolute(t) ? t : resolve(dirname(playlistPath), t));
}

export interface ResolvedPlaylist {
  record: CatalogObject;
  listed: number;
  outside: number;
  missing: number;
  duplicates: number;
}

/**
 * Reads a playlist file and maps its entries to catalogued items (by the scanner map: an archived
 * item counts, its bytes are on tape). Entries outside the media directories and entries the
 * catalog does not hold are skipped and counted. Undefined when the file is too big.
 */
export async function resolvePlaylist(catalog: Catalog, path: string, root: string, roots: string[]): Promise<ResolvedPlaylist | undefined> {
  // one open(2) that follows no link and waits for no pipe (util/read-regular.ts): a pipe or a
  // link to a device put at the name since the walk would hold the scan or fill the memory
  const file = await readRegularFile(path, MAX_PLAYLIST_BYTES);
  if (!file) {
    const st = await lstat(path); // ENOENT: gone since the walk
    if (st.isFile() && st.size > MAX_PLAYLIST_BYTES) return undefined;
    throw new Error(`${path} is not a regular file (put there since the scan found it)`);
  }
  const text = decodePlaylist(file.data, path);
  const raw = extname(path).toLowerCase() === '.pls' ? parsePls(text) : parseM3u(text);
  let outside = 0;
  let missing = 0;
  let duplicates = 0;
  const wanted: { path: string; title?: string }[] = [];
  for (const e of raw) {
    const p = entryPath(e.target, path);
    if (!p || !roots.some((r) => isInside(r, p))) outside++;
    else wanted.push({ path: p, title: e.title });
  }
  const known = await catalog.getPaths(wanted.map((w) => w.path));
  const entries: PlaylistEntry[] = [];
  const seen = new Set<string>();
  wanted.forEach((w, i) => {
    const id = known[i]?.id;
    if (!id || !id.startsWith('i')) return void missing++;
    if (seen.has(id)) return void duplicates++; // one child per item: DIDL-Lite IDs are unique in a container
    seen.add(id);
    entries.push(w.title ? { id, title: w.title } : { id });
  });
  const title = basename(path, extname(path));
  const record: CatalogObject = {
    id: playlistIdForPath(path),
    parentId: '',
    container: false,
    upnpClass: 'object.container.playlistContainer',
    title,
    origPath: path,
    mediaRoot: root,
    relPath: relative(root, path),
    mtime: Math.trunc(file.mtimeMs),
    playlist: { entries },
  };
  return { record, listed: raw.length, outside, missing, duplicates };
}
