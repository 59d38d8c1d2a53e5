// The library layout a TV user expects (MiniDLNA-style):
//
//   0 (root)
//   ├─ music      Music: All Tracks, Artists → Albums → tracks, Albums, Genres
//   ├─ video      Video: All Video plus the folder tree of video
//   ├─ pictures   Pictures: All Pictures, By Date (year → month)
//   ├─ folders    Folders: the file-system tree of every media directory
//   └─ playlists  Playlists (only while there is one): every .m3u/.m3u8/.pls of the library
//
// Every item has exactly one canonical object (ID `i…`) whose parent is its
// folder container (`F…`). Everywhere else it appears as a reference whose ID is
// `<containerId>$<itemId>` and whose refID is the canonical ID; references are
// not stored, they are derived from the item (see placements()). A playlist file is a
// record `l<hash>` (never listed) whose placements are two playlistContainers with the same
// children, `P<hash>` in the file's folder and `playlists/<hash>` under Playlists; their children
// are references `<container>$<itemId>` in the file's order. All IDs are
// derived from stable identities (original path, artist/album/genre names,
// dates), never from where the bytes are now.

import * as crypto from 'node:crypto';
import { basename, dirname, relative, sep } from 'node:path';
import type { ArtRef, CatalogObject } from './types.js';
import { ROOT_ID } from './types.js';
import { naturalSortKey } from '../upnp/sort.js';
import { foldText } from '../util/fold.js';

export const REF_SEP = '$';

export interface ContainerDef {
  id: string;
  parentId: string;
  title: string;
  upnpClass: string;
  /** Sort key inside the parent (default order). */
  sortKey: string;
  /** Fixed containers exist even when empty. */
  fixed?: boolean;
  /** Album and artist containers: the art of an album track (the first seen with art keeps it). */
  art?: ArtRef;
}

export interface Placement {
  containerId: string;
  sortKey: string;
  /** ID of the child entry: the canonical ID or a reference ID. */
  childId: string;
}

const STORAGE_FOLDER = 'object.container.storageFolder';

export const FIXED: ContainerDef[] = [
  { id: ROOT_ID, parentId: '-1', title: 'root', upnpClass: STORAGE_FOLDER, sortKey: '', fixed: true },
  { id: 'music', parentId: ROOT_ID, title: 'Music', upnpClass: STORAGE_FOLDER, sortKey: '\u000101', fixed: true },
  { id: 'video', parentId: ROOT_ID, title: 'Video', upnpClass: STORAGE_FOLDER, sortKey: '\u000102', fixed: true },
  { id: 'pictures', parentId: ROOT_ID, title: 'Pictures', upnpClass: STORAGE_FOLDER, sortKey: '\u000103', fixed: true },
  { id: 'folders', parentId: ROOT_ID, title: 'Folders', upnpClass: STORAGE_FOLDER, sortKey: '\u000104', fixed: true },
  { id: 'music/all', parentId: 'music', title: 'All Tracks', upnpClass: STORAGE_FOLDER, sortKey: '\u000101', fixed: true },
  { id: 'music/artists', parentId: 'music', title: 'Artists', upnpClass: STORAGE_FOLDER, sortKey: '\u000102', fixed: true },
  { id: 'music/albums', parentId: 'music', title: 'Albums', upnpClass: STORAGE_FOLDER, sortKey: '\u000103', fixed: true },
  { id: 'music/genres', parentId: 'music', title: 'Genres', upnpClass: STORAGE_FOLDER, sortKey: '\u000104', fixed: true },
  { id: 'video/all', parentId: 'video', title: 'All Video', upnpClass: STORAGE_FOLDER, sortKey: '\u000101', fixed: true },
  { id: 'pictures/all', parentId: 'pictures', title: 'All Pictures', upnpClass: STORAGE_FOLDER, sortKey: '\u000101', fixed: true },
  { id: 'pictures/date', parentId: 'pictures', title: 'By Date', upnpClass: STORAGE_FOLDER, sortKey: '\u000102', fixed: true },
];

export const FIXED_BY_ID = new Map(FIXED.map((c) => [c.id, c]));

/**
 * SHA-1 of a string: the one-shot crypto.hash() where Node has it (20.12+: no Hash object per
 * call, a quarter of the CPU; the scan makes several IDs per file), else a Hash.
 */
const sha1: (s: string) => Buffer =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (s) => (crypto as unknown as { hash(alg: string, data: string, enc: 'buffer'): Buffer }).hash('sha1', s, 'buffer')
    : (s) => crypto.createHash('sha1').update(s).digest();

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** Character codes of one ID, reused: the scan makes several IDs per file (one string each, no intermediate ones). */
const codes: number[] = [];

/** Short, URL- and XML-safe hash of a stable identity: the first `len` base32 digits of its SHA-1. */
export function shortHash(s: string, len = 13): string {
  const b = sha1(s);
  const n = Math.min(len, Math.floor((b.length * 8) / 5));
  codes.length = n;
  let bits = 0;
  let acc = 0;
  let i = 0;
  for (let k = 0; k < n; k++) {
    if (bits < 5) {
      acc = ((acc & 0xff) << 8) | b[i++];
      bits += 8;
    }
    codes[k] = BASE32.charCodeAt((acc >>> (bits - 5)) & 31);
    bits -= 5;
  }
  return String.fromCharCode.apply(null, codes);
}

export function itemIdForPath(origPath: string): string {
  return 'i' + shortHash(origPath);
}

const PLAYLIST_CLASS = 'object.container.playlistContainer';
const PLAYLISTS_DEF: ContainerDef = { id: 'playlists', parentId: ROOT_ID, title: 'Playlists', upnpClass: STORAGE_FOLDER, sortKey: '\u000105' };

/** ID of the record of a playlist file. */
export function playlistIdForPath(origPath: string): string {
  return 'l' + shortHash(origPath);
}

/** The playlist record behind a playlist container (`P<hash>` or `playlists/<hash>`), if it is one. */
export function playlistRecordOf(containerId: string): string | undefined {
  const m = /^(?:P|playlists\/)([a-z2-7]{13})$/.exec(containerId);
  return m ? 'l' + m[1] : undefined;
}

export function refId(containerId: string, itemId: string): string {
  return containerId + REF_SEP + itemId;
}

/** Splits a reference ID into container and canonical item ID, or undefined for other IDs. */
export function parseRefId(id: string): { containerId: string; itemId: string } | undefined {
  const i = id.lastIndexOf(REF_SEP);
  if (i <= 0) return undefined;
  const itemId = id.slice(i + 1);
  if (!itemId.startsWith('i')) return undefined;
  return { containerId: id.slice(0, i), itemId };
}

const pad = (n: number | undefined, w: number) => String(Math.max(0, Math.min(n ?? 0, 10 ** w - 1))).padStart(w, '0');
const containerKey = (title: string) => '0' + naturalSortKey(title);
const itemKey = (s: string) => '1' + s;
const titleKey = (o: CatalogObject) => naturalSortKey(o.title);

/**
 * Folder chains of recent directories: every item of a directory has the same chain, and a scan
 * places a directory's items one after the other (each placed twice per write: old and new), so
 * the hashes and sort keys of the chain are made once per directory, not per item. Bounded; the
 * definitions are only read (container objects are made from copies of them).
 */
const folderChains = new Map<string, { leaf: string; chain: readonly ContainerDef[] }>();
const FOLDER_CHAINS = 64;

function folderContainers(item: CatalogObject, idPrefix: string, topParent: string): { leaf: string; chain: readonly ContainerDef[] } {
  const root = item.mediaRoot!;
  const dir = dirname(item.origPath!);
  const key = idPrefix + '\u0000' + topParent + '\u0000' + root + '\u0000' + dir;
  let found = folderChains.get(key);
  if (!found) {
    if (folderChains.size >= FOLDER_CHAINS) folderChains.clear();
    found = folderChain(root, dir, idPrefix, topParent);
    folderChains.set(key, found);
  }
  return found;
}

/** Chain from the media root down to `dir`. */
function folderChain(root: string, dir: string, idPrefix: string, topParent: string): { leaf: string; chain: readonly ContainerDef[] } {
  const rel = relative(root, dir);
  const parts = rel === '' ? [] : rel.split(sep);
  const chain: ContainerDef[] = [];
  let parentId = topParent;
  let path = root;
  const rootTitle = basename(root) || root;
  const rootId = idPrefix + shortHash(root);
  chain.push({ id: rootId, parentId, title: rootTitle, upnpClass: STORAGE_FOLDER, sortKey: containerKey(rootTitle) + '\u0000' + root });
  parentId = rootId;
  for (const part of parts) {
    path = path + sep + part;
    const id = idPrefix + shortHash(path);
    chain.push({ id, parentId, title: part, upnpClass: STORAGE_FOLDER, sortKey: containerKey(part) });
    parentId = id;
  }
  return { leaf: parentId, chain };
}

/**
 * Version of how artist, album and genre container IDs are derived from their names (stored as
 * meta/musicIds; Catalog.open moves a catalog of an older version). 1: the name lower-cased, so
 * "Beyoncé" typed precomposed (NFC) and decomposed (NFD) made two artists; 2: the name folded
 * as Search folds it (util/fold.ts: NFKC and full case folding), one container whatever the
 * normal form. ASCII names fold to their lower case: their IDs are the same in both versions.
 */
export const MUSIC_ID_VERSION = '2';

/** Name → the identity its container ID hashes: the current fold, or version 1's lower case (only to move an old catalog). */
export type NameKey = (name: string) => string;
const foldName: NameKey = foldText;
export const LEGACY_NAME_KEY: NameKey = (s) => s.toLowerCase();

/** Whether an item's music container IDs are the same under version 1 and the current version (ASCII names always are). */
export function musicIdsUnchanged(item: CatalogObject): boolean {
  if (item.kind !== 'audio') return true;
  const names = [artistOf(item), albumOf(item), item.meta?.genre ?? ''];
  return names.every((n) => foldName(n) === LEGACY_NAME_KEY(n));
}

/**
 * Container IDs and sort keys made from names (artist, album, genre): a library repeats each name
 * over many tracks, and a scan places every track, so each is hashed once per name, not per
 * track. Bounded (cleared when full); the values are plain functions of the name.
 */
const byName = new Map<string, string>();
const BY_NAME = 4096;

function remembered(key: string, make: (key: string) => string): string {
  let v = byName.get(key);
  if (v === undefined) {
    if (byName.size >= BY_NAME) byName.clear();
    v = make(key);
    byName.set(key, v);
  }
  return v;
}

/** shortHash(s, 10) of a name-derived identity (artist, album, genre containers). */
const nameHash = (s: string) => remembered(s, hashOfName);
const hashOfName = (s: string) => shortHash(s, 10);
/** naturalSortKey of a name ('\u0001' keeps these keys apart from the hashes' inputs, which start with a word). */
const nameSortKey = (s: string) => remembered('\u0001' + s, sortKeyOfName);
const sortKeyOfName = (k: string) => naturalSortKey(k.slice(1));
const nameContainerKey = (s: string) => '0' + nameSortKey(s);

export function artistOf(item: CatalogObject): string {
  return item.meta?.albumArtist || item.meta?.artist || 'Unknown Artist';
}
export function albumOf(item: CatalogObject): string {
  return item.meta?.album || 'Unknown Album';
}

/** Canonical parent of an item: its folder in the Folders tree. */
export function canonicalParent(item: CatalogObject): string {
  return folderContainers(item, 'F', 'folders').leaf;
}

/**
 * Where an item appears: its canonical entry plus every reference, and the
 * containers those placements need (each with its own parent and sort key).
 */
export function placements(item: CatalogObject, musicKey: NameKey = foldName): { placements: Placement[]; containers: ContainerDef[] } {
  const out: Placement[] = [];
  const containers: ContainerDef[] = [];
  const folders = folderContainers(item, 'F', 'folders');
  containers.push(...folders.chain);
  if (item.playlist) {
    // a playlist with no catalogued entry has no placement: it is not shown
    const h = item.id.slice(1);
    const ids = ['P' + h, 'playlists/' + h];
    const key = containerKey(item.title);
    containers.push(
      { id: ids[0], parentId: folders.leaf, title: item.title, upnpClass: PLAYLIST_CLASS, sortKey: key },
      PLAYLISTS_DEF,
      { id: ids[1], parentId: 'playlists', title: item.title, upnpClass: PLAYLIST_CLASS, sortKey: key + '\u0000' + (item.origPath ?? '') },
    );
    for (const cid of ids) item.playlist.entries.forEach((e, i) => out.push({ containerId: cid, sortKey: itemKey(pad(i, 6)), childId: refId(cid, e.id) }));
    return { placements: out, containers };
  }
  const nameKey = titleKey(item);
  out.push({ containerId: folders.leaf, sortKey: itemKey(nameKey), childId: item.id });
  const ref = (containerId: string, sortKey: string) => out.push({ containerId, sortKey: itemKey(sortKey), childId: refId(containerId, item.id) });

  if (item.kind === 'audio') {
    const artist = artistOf(item);
    const album = albumOf(item);
    const m = item.meta ?? {};
    const trackKey = pad(m.discNumber, 3) + pad(m.trackNumber, 5) + nameKey;
    ref('music/all', nameKey);
    const artistKey = musicKey(artist);
    const albumKey = musicKey(album);
    const artistId = 'music/artists/' + nameHash('artist\u0000' + artistKey);
    const artistAlbumId = artistId + '/' + nameHash('album\u0000' + albumKey);
    const art = item.art ? { art: item.art } : {};
    containers.push(
      { id: artistId, parentId: 'music/artists', title: artist, upnpClass: 'object.container.person.musicArtist', sortKey: nameContainerKey(artist), ...art },
      { id: artistAlbumId, parentId: artistId, title: album, upnpClass: 'object.container.album.musicAlbum', sortKey: nameContainerKey(album), ...art },
    );
    ref(artistAlbumId, trackKey);
    const albumId = 'music/albums/' + nameHash('album\u0000' + artistKey + '\u0000' + albumKey);
    containers.push({ id: albumId, parentId: 'music/albums', title: album, upnpClass: 'object.container.album.musicAlbum', sortKey: nameContainerKey(album) + '\u0000' + nameSortKey(artist), ...art });
    ref(albumId, trackKey);
    if (m.genre) {
      const genreId = 'music/genres/' + nameHash('genre\u0000' + musicKey(m.genre));
      containers.push({ id: genreId, parentId: 'music/genres', title: m.genre, upnpClass: 'object.container.genre.musicGenre', sortKey: nameContainerKey(m.genre) });
      ref(genreId, nameSortKey(artist) + '\u0000' + nameSortKey(album) + '\u0000' + trackKey);
    }
  } else if (item.kind === 'video') {
    ref('video/all', nameKey);
    const vf = folderContainers(item, 'V', 'video');
    containers.push(...vf.chain);
    ref(vf.leaf, nameKey);
  } else if (item.kind === 'image') {
    const date = item.meta?.date ?? '';
    ref('pictures/all', date + '\u0000' + nameKey);
    const m = /^(\d{4})-(\d{2})/.exec(date) ?? /^(\d{4})/.exec(date);
    if (m) {
      const year = m[1];
      const yearId = 'pictures/date/' + year;
      containers.push({ id: yearId, parentId: 'pictures/date', title: year, upnpClass: 'object.container.album.photoAlbum', sortKey: containerKey(year) });
      let leaf = yearId;
      if (m[2]) {
        const ym = `${year}-${m[2]}`;
        leaf = 'pictures/date/' + ym;
        containers.push({ id: leaf, parentId: yearId, title: ym, upnpClass: 'object.container.album.photoAlbum', sortKey: containerKey(ym) });
      }
      ref(leaf, date + '\u0000' + nameKey);
    }
  }
  return { placements: out, containers };
}
