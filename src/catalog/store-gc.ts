// Garbage collection of the data directory's content stores (album art, subtitles): a store file
// that no catalogued object refers to any more is removed, so the stores do not grow without
// bound on a library that changes. Run after a full scan (src/scanner/scanner.ts).
//
// A file is kept while ANY object refers to its key (an album cover shared by many tracks stays
// until the last one goes), and items on tape keep theirs: they are catalogued with their art and
// subtitles like disk items. An album or artist container whose art no item has (a catalog from
// before apply() took it again when its track went) takes its art again from its tracks first. Files written after `before` (e.g. art an archive job made during the
// scan, not yet in the catalog) are kept; a later collection takes them if still unreferenced.

import type { Catalog } from './catalog.js';
import type { ContentStore } from '../util/content-store.js';

export interface GcResult {
  art: number;
  subtitles: number;
  bytes: number;
}

/** Removes unreferenced files of `art` and `subtitles` (either may be absent) older than `before` (ms). */
export async function collectStores(catalog: Catalog, stores: { art?: ContentStore; subtitles?: ContentStore }, before: number): Promise<GcResult> {
  const result: GcResult = { art: 0, subtitles: 0, bytes: 0 };
  if (!stores.art && !stores.subtitles) return result;
  // keys only (32 hex characters each): memory grows with distinct pictures, not with items
  const artKeys = new Set<string>();
  const subKeys = new Set<string>();
  const note = (o: { art?: { key: string }; subtitles?: { key: string }[] }) => {
    if (o.art) artKeys.add(o.art.key);
    for (const s of o.subtitles ?? []) subKeys.add(s.key);
  };
  for await (const o of catalog.eachItem()) note(o);
  for await (const o of catalog.playlistRecords()) note(o);
  // a container's art is one of its tracks': one no item has is stale (taken again, not kept)
  const stale: string[] = [];
  for await (const o of catalog.eachContainer()) {
    if (o.art && !artKeys.has(o.art.key)) stale.push(o.id);
    else note(o);
  }
  if (stale.length) {
    await catalog.refreshContainerArt(stale);
    for (const id of stale) note((await catalog.get(id)) ?? {});
  }
  const sweep = async (store: ContentStore, keys: Set<string>, kind: 'art' | 'subtitles') => {
    for await (const e of store.entries()) {
      if (keys.has(e.key) || e.mtimeMs >= before) continue;
      await store.remove(e.key, e.suffix);
      result[kind]++;
      result.bytes += e.size;
    }
  };
  if (stores.art) await sweep(stores.art, artKeys, 'art');
  if (stores.subtitles) await sweep(stores.subtitles, subKeys, 'subtitles');
  return result;
}
