// The catalog: one object store for the whole library, over a KVStore.
//
// Key spaces (see DESIGN.md §4; sorted keys make paging cheap):
//   o/<id>                               object JSON (canonical items `i…`, playlist records `l…`
//                                        (layout.ts) and containers)
//   c/<containerId>\0<sortKey>\0<childId> child index in default order (containers first,
//                                        then natural order), values empty
//   p/<origPath>                         scanner map: {id, size, mtime, gen, ...}; written only for new and changed files
//   b/<itemId>                           resume position (bookmarks.ts): kept across rescans and
//                                        tier moves, dropped with the item
//   a/<itemId>                           plays, last played, bytes served (policy/access.ts),
//                                        dropped with the item
//   x/...                                word index for Search (see words.ts)
//   meta/systemUpdateId, meta/uuid, meta/schemaVersion, meta/scanGen, meta/wordIndex, meta/musicIds (music-ids.ts), meta/sourceProtocolInfo (cms.ts: its answer and the SystemUpdateID it was made at)
//
// Browse pages come from a per-container ordinal list of child IDs built once
// from the c/ index (a key-only range scan) and cached until the container
// changes, so StartingIndex is an array index, never a scan per page. The lists
// are compact and bounded in bytes together (list_cache, id-lists.ts).
// Every change goes through apply(): one awaited, atomic batch that moves an
// item, its references, the container counts and the update IDs together.

import { EventEmitter } from 'node:events';
import type { BatchOp, KVStore } from './store.js';
import { prefixRange } from './store.js';
import type { CatalogObject, Location } from './types.js';
import { IdList, IdListCache } from './id-lists.js';
import { ROOT_ID } from './types.js';
import type { ContainerDef, Placement } from './layout.js';
import { FIXED, FIXED_BY_ID, LEGACY_NAME_KEY, parseRefId, placements, playlistRecordOf, REF_SEP, type NameKey } from './layout.js';
import { migrateMusicIds } from './music-ids.js';
import { countItem, emptyItemCounts, stampTimes, type CatalogTotals, type ItemCounts } from './item-counts.js';
import { Bookmarks, dropBookmarkOp } from './bookmarks.js';
import { memberArt } from './container-art.js';
import { ChangeLog } from './change-log.js';
import { exactWord, isSortedPosting, OVERFLOW, OVERFLOW_VALUE, postingPrefix, vocabPrefix, Vocabulary, WORD_INDEX_VERSION, wordOps, X, type WordField } from './words.js';

export const SCHEMA_VERSION = '1';
/** A `contains` fragment in more vocabulary words than this is not looked up word by word. */
const MAX_CONTAINING_WORDS = 512;
/** Key prefix of the access records (plays, bytes served) kept by src/policy/access.ts; dropped with the item. */
export const ACCESS_PREFIX = 'a/';
const SEP = '\u0000';
const O = 'o/';
const C = 'c/';
const P = 'p/';

export interface PathEntry {
  id: string;
  size: number;
  mtime: number;
  /** Scan generation (meta/scanGen) when written; no longer read: the full scan sweeps by directory listings. */
  gen: number;
  /** Disk copy removed after archiving: a missing file is not a deleted item. */
  archived?: boolean;
  /** The file could not be read (permissions): try again on the next scan. */
  denied?: boolean;
  /** Art was looked for (made, or none found): an unchanged file is not read again for it. */
  art?: boolean;
  /** Videos: signature of the sidecar subtitles last copied (names, sizes, mtimes); absent = none. */
  subs?: string;
}

export type { CatalogTotals } from './item-counts.js';

export interface ChangeEvent {
  systemUpdateId: number;
  /** [containerId, updateId] for every container whose children changed. */
  containers: [string, number][];
  /**
   * True when an item's resource (`res`: what ConnectionManager's SourceProtocolInfo is made
   * of) was added, removed or changed; false for changes of metadata, art or containers only.
   */
  resChanged: boolean;
}

export interface ApplyInput {
  upserts?: CatalogObject[];
  removes?: string[];
  /** Extra raw ops to commit in the same batch (e.g. scanner path entries). */
  extraOps?: BatchOp[];
}

/** Key range of the scanner map entries whose path starts with `prefix`, past `after` when given. */
function pathRange(prefix: string, after?: string) {
  const range = prefixRange(P + prefix);
  if (after !== undefined && P + after >= range.gte!) {
    delete range.gte;
    range.gt = P + after;
  }
  return range;
}

const childKey = (p: { containerId: string; sortKey: string; childId: string }) => C + p.containerId + SEP + p.sortKey + SEP + p.childId;

function containerObject(def: ContainerDef, updateId: number): CatalogObject {
  return {
    id: def.id,
    parentId: def.parentId,
    container: true,
    upnpClass: def.upnpClass,
    title: def.title,
    childCount: 0,
    searchable: true,
    sortKey: def.sortKey,
    updateId,
    ...(def.art ? { art: def.art } : {}),
  };
}

/** Default of list_cache: the child list of a 100,000-item container takes about 2 MiB. */
export const DEFAULT_LIST_CACHE_BYTES = 8 * 1024 ** 2;

export interface CatalogOptions {
  /** Bytes of ID lists kept between requests (list_cache): child lists here, sorted orders in cds.ts. */
  listCacheBytes?: number;
}

export class Catalog extends EventEmitter {
  private sysUpdateId = 0;
  /**
   * Child lists in default order (key: the container ID; an entry is valid for the update ID
   * it was read at) and other ID lists of the same budget (cds.ts: sorted Browse orders, keys
   * starting with NUL).
   */
  readonly lists: IdListCache;
  private writing: Promise<unknown> = Promise.resolve();
  /** Resume positions per canonical item (X_SetBookmark). */
  readonly bookmarks: Bookmarks;
  private vocab = new Vocabulary();
  private parentCache: Map<string, string> | undefined;
  private gen = 0;
  /** The IDs each generation changed (change-log.ts): what DIDL-Lite kept elsewhere must drop. */
  private readonly changes = new ChangeLog();

  /** Clock of `added`/`changed` (ms); tests and the policy bench set a fake one. */
  now: () => number = Date.now;

  constructor(
    readonly store: KVStore,
    opts: CatalogOptions = {},
  ) {
    super();
    this.bookmarks = new Bookmarks(store);
    this.lists = new IdListCache(opts.listCacheBytes ?? DEFAULT_LIST_CACHE_BYTES);
  }

  async open(): Promise<void> {
    await this.store.open();
    const schema = await this.store.get('meta/schemaVersion');
    if (schema !== undefined && schema !== SCHEMA_VERSION) {
      throw new Error(`catalog schema version ${schema} is not supported by this Tapedeck (expects ${SCHEMA_VERSION}); rescan into a new data directory`);
    }
    this.sysUpdateId = Number(await this.store.get('meta/systemUpdateId')) || 0;
    await this.openWordIndex();
    const existing = await this.store.getMany(FIXED.map((c) => O + c.id));
    const ops: BatchOp[] = [];
    const added = new Set<string>();
    FIXED.forEach((def, i) => {
      if (existing[i] !== undefined) return;
      const obj = containerObject(def, this.sysUpdateId);
      ops.push({ type: 'put', key: O + def.id, value: JSON.stringify(obj) });
      wordOps(def.id, undefined, obj, this.vocab, added, ops);
      if (def.parentId !== '-1') ops.push({ type: 'put', key: childKey({ containerId: def.parentId, sortKey: def.sortKey, childId: def.id }), value: '' });
    });
    if (ops.length) {
      // Fixed containers count their fixed children.
      const counts = new Map<string, number>();
      for (const def of FIXED) if (def.parentId !== '-1') counts.set(def.parentId, (counts.get(def.parentId) ?? 0) + 1);
      for (const op of ops) {
        if (op.type !== 'put' || !op.key.startsWith(O)) continue;
        const obj = JSON.parse(op.value) as CatalogObject;
        obj.childCount = counts.get(obj.id) ?? 0;
        op.value = JSON.stringify(obj);
      }
      ops.push({ type: 'put', key: 'meta/schemaVersion', value: SCHEMA_VERSION });
      const counted = this.vocab.stage(ops);
      await this.store.batch(ops);
      counted();
      for (const k of added) this.vocab.addKey(k);
    }
    // music container IDs of an older derivation (layout.ts MUSIC_ID_VERSION) move to the current one
    await migrateMusicIds(this.store, schema === undefined, childKey, (items) => this.applyNow({ upserts: items }, LEGACY_NAME_KEY));
  }

  /**
   * Loads the vocabulary; a catalog written before the word index (or by another index
   * version) is indexed now, in bounded batches, before anything is served from it.
   */
  private async openWordIndex(): Promise<void> {
    if ((await this.store.get('meta/wordIndex')) !== WORD_INDEX_VERSION) {
      let ops: BatchOp[] = [];
      const flush = async () => {
        const counted = this.vocab.stage(ops);
        await this.store.batch(ops);
        counted();
        ops = [];
      };
      for await (const k of this.store.keys(prefixRange(X))) {
        ops.push({ type: 'del', key: k });
        if (ops.length >= 5000) await flush();
      }
      await flush();
      const added = new Set<string>();
      for await (const [k, v] of this.store.entries(prefixRange(O))) {
        const obj = JSON.parse(v) as CatalogObject;
        if (!obj.playlist) wordOps(k.slice(O.length), undefined, obj, this.vocab, added, ops);
        if (ops.length >= 5000) {
          await flush();
          for (const a of added) this.vocab.addKey(a);
          added.clear();
        }
      }
      ops.push({ type: 'put', key: 'meta/wordIndex', value: WORD_INDEX_VERSION });
      await flush();
      for (const a of added) this.vocab.addKey(a);
      return;
    }
    for await (const [k, v] of this.store.entries(prefixRange(vocabPrefix))) this.vocab.addKey(k, v);
  }

  /** The objects posted under `word` in `field` (the index's exact-word lookup): ID → posting record (words.ts). */
  async wordPostings(field: WordField, word: string, into: Map<string, string> = new Map()): Promise<Map<string, string>> {
    return this.wordPostingsUnder(postingPrefix(field, word), !isSortedPosting(field, word), into);
  }

  /**
   * Postings whose key starts with `prefix`: ID (after the key's last NUL; IDs have none) →
   * record. `whole`: only keys that are the prefix and an ID (an exact value may contain a NUL,
   * so `=ab\0` also prefixes the posting of the value "ab\0cd").
   */
  /** dc:title words of the vocabulary that contain `part`. */
  titleWordsContaining(part: string): string[] {
    return this.vocab.containing('t', part);
  }

  /** Postings of a dc:title word per record class key (words.ts recordClassKey → count). */
  titleCounts(word: string): Record<string, number> {
    return this.vocab.titleCounts(word);
  }

  /**
   * Sorted title postings of `word` (words.ts) whose seg starts with `group` ('0' containers,
   * '1' items, '2' the long titles), in key order, after the key `after` when given, at most `limit`:
   * [key, ID, record].
   */
  async titlePostings(word: string, group: '0' | '1' | '2', limit: number, after?: string): Promise<[string, string, string][]> {
    const prefix = postingPrefix('t', word) + group;
    const range = after === undefined ? prefixRange(prefix, { limit }) : { gt: after, lt: prefix + '\uffff', limit };
    return (await this.store.entryList(range)).map(([k, v]) => [k, k.slice(k.lastIndexOf(SEP) + 1), v]);
  }

  private async wordPostingsUnder(prefix: string, whole: boolean, into: Map<string, string> = new Map()): Promise<Map<string, string>> {
    for (const [k, v] of await this.store.entryList(prefixRange(prefix))) {
      const j = k.lastIndexOf(SEP);
      if (!whole || j === prefix.length - 1) into.set(k.slice(j + 1), v);
    }
    return into;
  }

  /**
   * Candidates for a text property of `field` that contains `word`: every object posted
   * under a vocabulary word containing it, plus the objects too long to index word by
   * word (ID → posting record). A superset: the caller still matches. Undefined when more
   * than MAX_CONTAINING_WORDS vocabulary words contain it (then the index does not narrow).
   */
  async wordCandidates(field: WordField, word: string): Promise<Map<string, string> | undefined> {
    const ws = this.vocab.containing(field, word);
    // a fragment found in a large part of the vocabulary ("e") narrows nothing worth its reads
    if (ws.length > MAX_CONTAINING_WORDS) return undefined;
    const out = new Map<string, string>();
    for (const w of [...ws, OVERFLOW]) await this.wordPostings(field, w, out);
    return out;
  }

  /**
   * Every object with a non-empty value in `field` (ID → posting record): its exact postings,
   * one range read of as many entries as such values. The candidates of a `contains` whose
   * fragment narrows nothing (in too many vocabulary words, or no word at all).
   */
  async valuedCandidates(field: WordField): Promise<Map<string, string>> {
    return this.wordPostingsUnder(X + field + '/=', false);
  }

  /**
   * Every canonical item's dc:title posting record (ID → record, see words.ts): what a Search
   * whose criteria read only a record (class terms, @id) tests instead of reading every item.
   * One range read of the exact title postings, no object decoded. Only when it is known to be
   * every item: the item count of the current generation is known (a whole eachItem() pass at
   * it, e.g. the scan's art collection) and the items posted are that many; else undefined
   * (the caller reads every item, which makes the count known for the next time).
   */
  async itemRecords(): Promise<Map<string, string> | undefined> {
    const gen = this.gen;
    const known = this.itemCounts?.gen === gen ? this.itemCounts.counts.items : undefined;
    if (known === undefined) return undefined;
    const out = new Map<string, string>();
    for (const [id, rec] of await this.valuedCandidates('t')) if (id.charCodeAt(0) === 105 /* i */) out.set(id, rec);
    return gen === this.gen && out.size === known ? out : undefined;
  }

  /** Candidates for a text property of `field` equal (case-insensitively) to `value` (ID → posting record). */
  async valueCandidates(field: WordField, value: string): Promise<Map<string, string>> {
    const out = await this.wordPostings(field, exactWord(value));
    return this.wordPostings(field, OVERFLOW_VALUE, out);
  }

  /** Objects by ID (references resolved), in the order given; missing ones are left out. */
  async getMany(ids: string[]): Promise<CatalogObject[]> {
    return this.resolveMany(ids);
  }

  async close(): Promise<void> {
    await this.writing;
    await this.store.close();
  }

  get systemUpdateId(): number {
    return this.sysUpdateId;
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.store.get('meta/' + key);
  }
  async setMeta(key: string, value: string): Promise<void> {
    await this.store.batch([{ type: 'put', key: 'meta/' + key, value }]);
  }

  private async getRaw(id: string): Promise<CatalogObject | undefined> {
    const v = await this.store.get(O + id);
    return v === undefined ? undefined : (JSON.parse(v) as CatalogObject);
  }

  /** Any object by ID, references included. */
  async get(id: string): Promise<CatalogObject | undefined> {
    const ref = parseRefId(id);
    if (!ref) return this.getRaw(id);
    const item = await this.getRaw(ref.itemId);
    if (!item || item.container) return undefined;
    const playlist = playlistRecordOf(ref.containerId);
    if (playlist) {
      const entry = (await this.getRaw(playlist))?.playlist?.entries.find((e) => e.id === item.id);
      return entry ? { ...item, id, parentId: ref.containerId, refId: item.id, title: entry.title ?? item.title } : undefined;
    }
    if (!placements(item).placements.some((p) => p.childId === id)) return undefined;
    return { ...item, id, parentId: ref.containerId, refId: item.id };
  }

  /** Titles a playlist gives its entries (#EXTINF, TitleN), when `containerId` is a playlist container. */
  private async playlistTitles(containerId: string): Promise<Map<string, string> | undefined> {
    const rec = playlistRecordOf(containerId);
    if (!rec) return undefined;
    const entries = (await this.getRaw(rec))?.playlist?.entries ?? [];
    return new Map(entries.filter((e) => e.title).map((e) => [e.id, e.title!]));
  }

  private async resolveMany(ids: string[]): Promise<CatalogObject[]> {
    const canon = ids.map((id) => parseRefId(id)?.itemId ?? id);
    const raw = await this.store.getMany(canon.map((id) => O + id));
    // children of one playlist container carry the playlist's titles
    const first = ids.length ? parseRefId(ids[0]) : undefined;
    const titles = first ? await this.playlistTitles(first.containerId) : undefined;
    const out: CatalogObject[] = [];
    raw.forEach((v, i) => {
      if (v === undefined) return;
      const obj = JSON.parse(v) as CatalogObject;
      if (canon[i] !== ids[i]) {
        const containerId = parseRefId(ids[i])!.containerId;
        const title = titles && containerId === first!.containerId ? titles.get(obj.id) : undefined;
        out.push({ ...obj, id: ids[i], parentId: containerId, refId: obj.id, ...(title ? { title } : {}) });
      } else out.push(obj);
    });
    return out;
  }

  /** Child IDs of a container in default order (cached ordinal list, see childList). */
  async childIds(containerId: string): Promise<string[]> {
    return (await this.childList(containerId)).slice(0);
  }

  /** Child IDs of a container in default order, from the list cache or read from the c/ index. */
  async childList(containerId: string): Promise<IdList> {
    const container = await this.getRaw(containerId);
    if (!container?.container) return IdList.from([]);
    const updateId = container.updateId ?? 0;
    const cached = this.lists.get(containerId, updateId);
    if (cached) return cached;
    const ids = (await this.store.keyList(prefixRange(C + containerId + SEP))).map((k) => k.slice(k.lastIndexOf(SEP) + 1));
    const list = IdList.from(ids, containerId + REF_SEP);
    this.lists.set(containerId, updateId, list);
    return list;
  }

  /** A page of children in default order. */
  async children(containerId: string, start: number, count: number): Promise<{ objects: CatalogObject[]; total: number }> {
    const list = await this.childList(containerId);
    const end = count > 0 ? Math.min(list.length, start + count) : list.length;
    const page = start < list.length ? list.slice(start, end) : [];
    return { objects: await this.resolveMany(page), total: list.length };
  }

  /** Every child object of a container (for non-default sort orders). */
  async allChildren(containerId: string): Promise<CatalogObject[]> {
    return this.resolveMany(await this.childIds(containerId));
  }

  /** Every canonical item, read from the store as it is iterated (nothing is kept in memory). */
  async *eachItem(): AsyncIterable<CatalogObject> {
    const gen = this.gen;
    const t = emptyItemCounts();
    for await (const [, v] of this.store.entries(prefixRange(O + 'i'))) {
      const o = JSON.parse(v) as CatalogObject;
      countItem(t, o);
      yield o;
    }
    // a whole pass over an unchanged catalog (the scan's art collection, a Search without index
    // terms) leaves the item counts of totals(): no second read of every item for them
    if (gen === this.gen) this.itemCounts = { gen, counts: t };
  }

  /** Item counts of the last whole eachItem() pass and the generation it read. */
  private itemCounts: { gen: number; counts: ItemCounts } | undefined;

  /** Every canonical item, as an array (read from the store on every call). */
  async items(): Promise<CatalogObject[]> {
    const out: CatalogObject[] = [];
    for await (const o of this.eachItem()) out.push(o);
    return out;
  }

  /** Every playlist record (`l…`): few, read when the items they may list have changed. */
  async *playlistRecords(): AsyncIterable<CatalogObject> {
    for await (const [, v] of this.store.entries(prefixRange(O + 'l'))) yield JSON.parse(v) as CatalogObject;
  }

  /** Every container, read from the store as it is iterated. */
  async *eachContainer(): AsyncIterable<CatalogObject> {
    for await (const [, v] of this.store.entries({ gte: O, lt: O + 'i' })) yield JSON.parse(v) as CatalogObject;
    // items (`i…`) and playlist records (`l…`) are not containers
    for await (const [, v] of this.store.entries({ gt: O + 'i\uffff', lt: O + 'l' })) yield JSON.parse(v) as CatalogObject;
    for await (const [, v] of this.store.entries({ gt: O + 'l\uffff', lt: O + '\uffff' })) yield JSON.parse(v) as CatalogObject;
  }

  /** Every container, as an array. */
  async containers(): Promise<CatalogObject[]> {
    const out: CatalogObject[] = [];
    for await (const c of this.eachContainer()) out.push(c);
    return out;
  }

  /** Parent of every container (IDs only; cached until the next change). */
  async containerParentMap(): Promise<Map<string, string>> {
    if (this.parentCache) return this.parentCache;
    const m = new Map<string, string>();
    for await (const c of this.eachContainer()) m.set(c.id, c.parentId);
    this.parentCache = m;
    return m;
  }

  /** Counter bumped by every change (metadata, containers or locations), for caches of derived figures. */
  get generation(): number {
    return this.gen;
  }

  /**
   * IDs of the objects changed after generation `gen` (items and playlist records by their own
   * ID, not their references'; containers by theirs), or undefined when no longer known (then
   * anything may have changed). See change-log.ts.
   */
  changedSince(gen: number): Set<string> | undefined {
    return this.changes.since(gen, this.gen);
  }

  /** The (only) consumer of changedSince has caught up with `gen`: the change log forgets up to there. */
  changesSeen(gen: number): void {
    this.changes.forget(gen);
  }

  async getPath(path: string): Promise<PathEntry | undefined> {
    const v = await this.store.get(P + path);
    return v === undefined ? undefined : (JSON.parse(v) as PathEntry);
  }
  async getPaths(paths: string[]): Promise<(PathEntry | undefined)[]> {
    return (await this.store.getMany(paths.map((p) => P + p))).map((v) => (v === undefined ? undefined : (JSON.parse(v) as PathEntry)));
  }
  pathOp(path: string, entry: PathEntry | undefined): BatchOp {
    return entry ? { type: 'put', key: P + path, value: JSON.stringify(entry) } : { type: 'del', key: P + path };
  }
  /** Scanner map entries, every one or those whose path starts with `prefix` (a key range: no full scan); `after`: those past that path. */
  async *paths(prefix = '', after?: string): AsyncIterable<[string, PathEntry]> {
    for await (const [k, v] of this.store.entries(pathRange(prefix, after))) yield [k.slice(P.length), JSON.parse(v) as PathEntry];
  }
  /** The paths of paths() alone: keys only, no entry read or decoded. */
  async *pathNames(prefix = '', after?: string): AsyncIterable<string> {
    for await (const k of this.store.keys(pathRange(prefix, after))) yield k.slice(P.length);
  }

  /**
   * Counts of canonical items by kind: a read of every item, so kept until the next change (a
   * periodic rescan that changed nothing logs them again without reading 100,000 objects).
   */
  async totals(): Promise<CatalogTotals> {
    const kept = this.totalsKept;
    if (kept && kept.gen === this.gen) return { ...kept.totals };
    const gen = this.gen;
    const t = await this.countTotals();
    if (gen === this.gen) this.totalsKept = { gen, totals: t };
    return { ...t };
  }

  private totalsKept: { gen: number; totals: CatalogTotals } | undefined;

  private async countTotals(): Promise<CatalogTotals> {
    let containers = 0;
    for await (const k of this.store.keys({ gte: O, lt: O + 'i' })) if (k) containers++;
    for await (const k of this.store.keys({ gt: O + 'i\uffff', lt: O + '\uffff' })) if (k) containers++;
    let counts = this.itemCounts?.gen === this.gen ? this.itemCounts.counts : undefined;
    if (!counts) {
      counts = emptyItemCounts();
      for await (const i of this.eachItem()) countItem(counts, i);
    }
    const { items, audio, video, image, onTapeOnly, onDiskAndTape } = counts;
    return { items, audio, video, image, containers, onTapeOnly, onDiskAndTape };
  }

  /** Changes an item's location, and nothing else, in one batch. */
  async setLocation(id: string, location: Location, extraOps: BatchOp[] = []): Promise<void> {
    await this.serialize(async () => {
      const item = await this.getRaw(id);
      if (!item || item.container) throw new Error(`no such item: ${id}`);
      item.location = location;
      await this.store.batch([{ type: 'put', key: O + id, value: JSON.stringify(item) }, ...extraOps]);
      this.gen++;
      this.changes.record(this.gen, [id]);
    });
  }

  /**
   * Takes the art of the given album/artist containers again from the tracks they have (store
   * GC: a container whose art no item has any more, e.g. kept by a catalog from before apply()
   * did this itself). One batch; containers whose art is right are left alone.
   */
  refreshContainerArt(ids: readonly string[]): Promise<ChangeEvent | undefined> {
    return this.serialize(async () => {
      const view = { ops: [], childPrefix: (cid: string) => C + cid + SEP, storedChildren: (cid: string) => this.childIds(cid), item: (id: string) => this.getRaw(id) };
      const updateId = this.sysUpdateId + 1;
      const ops: BatchOp[] = [];
      const containers: [string, number][] = [];
      for (const id of ids) {
        const obj = await this.getRaw(id);
        if (!obj?.container || !obj.art) continue;
        const art = await memberArt(id, view);
        if (art?.key === obj.art.key) continue;
        if (art) obj.art = art;
        else delete obj.art;
        obj.updateId = updateId;
        ops.push({ type: 'put', key: O + id, value: JSON.stringify(obj) });
        containers.push([id, updateId]);
      }
      if (!ops.length) return undefined;
      ops.push({ type: 'put', key: 'meta/systemUpdateId', value: String(updateId) });
      await this.store.batch(ops);
      this.sysUpdateId = updateId;
      this.gen++;
      this.changes.record(this.gen, containers.map(([cid]) => cid));
      for (const [cid] of containers) this.lists.delete(cid);
      const ev: ChangeEvent = { systemUpdateId: updateId, containers, resChanged: false };
      this.emit('change', ev);
      return ev;
    });
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn, fn);
    this.writing = run.catch(() => undefined);
    return run;
  }

  /**
   * Upserts and removes canonical items with all their references, container
   * counts, container creation/removal and update IDs, in one atomic batch.
   */
  apply(input: ApplyInput): Promise<ChangeEvent | undefined> {
    return this.serialize(() => this.applyNow(input));
  }

  /** `oldKey`: how the stored objects' music container IDs were derived (an older catalog being moved, music-ids.ts); `newKey`: only tests write an old catalog. */
  private async applyNow({ upserts: given = [], removes = [], extraOps = [] }: ApplyInput, oldKey?: NameKey, newKey?: NameKey): Promise<ChangeEvent | undefined> {
    this.vocab.discardPending(); // what a failed apply counted before it threw
    // one upsert per ID (the last): each is diffed against the stored object, so a second copy
    // in the same batch would add its references and counts twice
    const upserts = given.length > 1 ? [...new Map(given.map((o) => [o.id, o])).values()] : given;
    const ids = [...upserts.map((o) => o.id), ...removes];
    const olds = await this.store.getMany(ids.map((id) => O + id));
    const ops: BatchOp[] = [...extraOps];
    const delta = new Map<string, number>();
    const defs = new Map<string, ContainerDef>();
    /** Containers whose child keys change: their child lists are read again. */
    const relisted = new Set<string>();
    const bump = (cid: string, d: number) => {
      delta.set(cid, (delta.get(cid) ?? 0) + d);
      relisted.add(cid);
    };
    const changed = new Set<string>();
    const added = new Set<string>();
    /** Items and playlist records written or removed (containers: `loaded` below). */
    const touched: string[] = [];
    // album/artist containers whose art may have come from a track that leaves it or changes its art
    const artGone = new Map<string, Set<string>>();
    const artMayGo = (old: CatalogObject, oldContainers: ContainerDef[], item?: CatalogObject, newIds?: Set<string>) => {
      if (!old.art) return;
      for (const c of oldContainers) {
        if (!c.art || (item?.art?.key === old.art.key && newIds?.has(c.id))) continue;
        let keys = artGone.get(c.id);
        if (!keys) artGone.set(c.id, (keys = new Set()));
        keys.add(old.art.key);
      }
    };

    const diff = (oldP: Placement[], newP: Placement[]) => {
      if (!oldP.length) {
        // a new object (every object of a first scan): its placements' keys are all added
        const seen = new Set<string>();
        for (const p of newP) {
          const k = childKey(p);
          if (seen.has(k)) continue;
          seen.add(k);
          ops.push({ type: 'put', key: k, value: '' });
          bump(p.containerId, +1);
        }
        return;
      }
      const oldKeys = new Map(oldP.map((p) => [childKey(p), p]));
      const newKeys = new Map(newP.map((p) => [childKey(p), p]));
      for (const [k, p] of oldKeys) {
        if (newKeys.has(k)) continue;
        ops.push({ type: 'del', key: k });
        bump(p.containerId, -1);
      }
      for (const [k, p] of newKeys) {
        if (oldKeys.has(k)) continue;
        ops.push({ type: 'put', key: k, value: '' });
        bump(p.containerId, +1);
      }
    };

    let resChanged = false;
    upserts.forEach((item, i) => {
      if (item.container || !(item.id.startsWith('i') || (item.id.startsWith('l') && item.playlist))) throw new Error(`apply() takes canonical items and playlist records only, got ${item.id}`);
      const oldJson = olds[i];
      const old = oldJson === undefined ? undefined : (JSON.parse(oldJson) as CatalogObject);
      stampTimes(item, old, this.now);
      const np = placements(item, newKey);
      for (const c of np.containers) if (!defs.get(c.id)?.art) defs.set(c.id, c);
      const canonical = np.placements[0]; // none for a playlist without catalogued entries
      item.parentId = canonical?.containerId ?? '';
      const op = old ? placements(old, oldKey) : undefined;
      diff(op?.placements ?? [], np.placements);
      if (old && op) artMayGo(old, op.containers, item, new Set(np.containers.map((c) => c.id)));
      const json = JSON.stringify(item);
      if (json !== oldJson) {
        if (!resChanged && (!old || JSON.stringify(old.res) !== JSON.stringify(item.res))) resChanged = true;
        ops.push({ type: 'put', key: O + item.id, value: json });
        touched.push(item.id);
        if (!item.playlist) wordOps(item.id, old, item, this.vocab, added, ops); // a playlist record is never a result
        // Metadata changes show in every container the item appears in.
        for (const p of np.placements) changed.add(p.containerId);
      }
    });
    removes.forEach((id, j) => {
      const oldJson = olds[upserts.length + j];
      if (oldJson === undefined) return;
      const old = JSON.parse(oldJson) as CatalogObject;
      touched.push(id);
      if (old.res) resChanged = true;
      const op = placements(old);
      diff(op.placements, []);
      artMayGo(old, op.containers);
      ops.push({ type: 'del', key: O + id }, dropBookmarkOp(id), { type: 'del', key: ACCESS_PREFIX + id });
      if (!old.playlist) wordOps(id, old, undefined, this.vocab, added, ops);
    });

    if (ops.length === extraOps.length) {
      if (extraOps.length) await this.store.batch(extraOps);
      return undefined;
    }

    // Containers: apply count deltas, create what is new, drop non-fixed empties,
    // and propagate creations/removals to parents until nothing changes.
    const newUpdateId = this.sysUpdateId + 1;
    const loaded = new Map<string, CatalogObject | null>();
    /** Update IDs the loaded containers had (the tag of their child lists in `lists`). */
    const listTags = new Map<string, number>();
    const load = async (cid: string): Promise<CatalogObject | null> => {
      if (loaded.has(cid)) return loaded.get(cid)!;
      const o = (await this.getRaw(cid)) ?? null;
      loaded.set(cid, o);
      listTags.set(cid, o?.updateId ?? 0);
      return o;
    };
    for (const cid of delta.keys()) changed.add(cid);
    let pending = [...delta.keys()];
    while (pending.length) {
      const next: string[] = [];
      for (const cid of pending) {
        const d = delta.get(cid) ?? 0;
        delta.delete(cid);
        let obj = await load(cid);
        if (!obj) {
          if (d <= 0) continue;
          const def = defs.get(cid) ?? FIXED_BY_ID.get(cid);
          if (!def) throw new Error(`catalog: no definition for container ${cid}`);
          obj = containerObject(def, newUpdateId);
          wordOps(cid, undefined, obj, this.vocab, added, ops);
          loaded.set(cid, obj);
          ops.push({ type: 'put', key: childKey({ containerId: def.parentId, sortKey: def.sortKey, childId: cid }), value: '' });
          bump(def.parentId, +1);
          next.push(def.parentId);
          changed.add(def.parentId);
        }
        obj.childCount = (obj.childCount ?? 0) + d;
        obj.updateId = newUpdateId;
        if (obj.childCount <= 0 && !FIXED_BY_ID.has(cid)) {
          ops.push({ type: 'del', key: O + cid });
          wordOps(cid, obj, undefined, this.vocab, added, ops);
          ops.push({ type: 'del', key: childKey({ containerId: obj.parentId, sortKey: obj.sortKey ?? '', childId: cid }) });
          loaded.set(cid, null);
          bump(obj.parentId, -1);
          next.push(obj.parentId);
          changed.add(obj.parentId);
          changed.delete(cid);
        } else {
          ops.push({ type: 'put', key: O + cid, value: JSON.stringify(obj) });
        }
      }
      pending = [...new Set(next)].filter((c) => delta.has(c));
    }
    // Album and artist containers whose art left with a track take it again from the tracks they keep.
    if (artGone.size) {
      const upserted = new Map(upserts.map((o) => [o.id, o]));
      const removed = new Set(removes);
      const view = {
        ops,
        childPrefix: (cid: string) => C + cid + SEP,
        storedChildren: (cid: string) => this.childIds(cid),
        item: async (id: string) => (removed.has(id) ? undefined : (upserted.get(id) ?? (await this.getRaw(id)))),
      };
      for (const [cid, keys] of artGone) {
        const obj = await load(cid);
        if (!obj?.art || !keys.has(obj.art.key)) continue;
        const art = await memberArt(cid, view);
        if (art) obj.art = art;
        else delete obj.art;
        obj.updateId = newUpdateId;
        ops.push({ type: 'put', key: O + cid, value: JSON.stringify(obj) });
        changed.add(cid);
      }
    }
    // Album and artist containers without art take the art of a member that has some.
    for (const def of defs.values()) {
      if (!def.art) continue;
      const obj = await load(def.id);
      if (!obj || obj.art) continue;
      obj.art = def.art;
      obj.updateId = newUpdateId;
      ops.push({ type: 'put', key: O + def.id, value: JSON.stringify(obj) }); // a later put of a key wins in a batch
      changed.add(def.id);
    }
    // Containers whose members changed metadata only: bump their update IDs.
    for (const cid of changed) {
      if (loaded.has(cid)) continue;
      const obj = await load(cid);
      if (!obj) continue;
      obj.updateId = newUpdateId;
      ops.push({ type: 'put', key: O + cid, value: JSON.stringify(obj) });
    }
    ops.push({ type: 'put', key: 'meta/systemUpdateId', value: String(newUpdateId) });
    const counted = this.vocab.stage(ops);
    await this.store.batch(ops);
    counted();
    for (const k of added) this.vocab.addKey(k);
    this.sysUpdateId = newUpdateId;
    this.gen++;
    // every container written or removed was loaded (a few loaded and left as they were: harmless)
    this.changes.record(this.gen, [...touched, ...loaded.keys()]);
    this.parentCache = undefined;
    const containers: [string, number][] = [];
    for (const cid of changed) {
      // a child list whose keys did not change (metadata, art, locations of members) stays valid
      if (relisted.has(cid) || !listTags.has(cid)) this.lists.delete(cid);
      else this.lists.retag(cid, listTags.get(cid)!, newUpdateId);
      if (loaded.get(cid) !== null) containers.push([cid, newUpdateId]);
    }
    const ev: ChangeEvent = { systemUpdateId: newUpdateId, containers, resChanged };
    this.emit('change', ev);
    return ev;
  }
}

export { ROOT_ID };
