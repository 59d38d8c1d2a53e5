// ContentDirectory:1 service: Browse, Search, capabilities and update IDs over
// the catalog. Transport (SOAP parsing, faults) lives in soap.ts, XML of the
// results in didl.ts, the criteria grammars in search.ts and sort.ts.

import { LRUCache } from 'lru-cache';
import type { Catalog } from '../catalog/catalog.js';
import type { CatalogObject } from '../catalog/types.js';
import { ROOT_ID } from '../catalog/types.js';
import { placements, playlistRecordOf, REF_SEP, refId } from '../catalog/layout.js';
import { IdList } from '../catalog/id-lists.js';
import { protocolInfo } from '../media/dlna.js';
import { didlParts, type DidlOptions, type DidlParts, type ObjectRef } from './didl.js';
import { assemble, DidlCache, headOf, type CachedHead } from './didl-cache.js';
import { didlArt } from '../art/dlna.js';
import { captionsOf } from '../media/subtitles.js';
import { SEARCH_CAPABILITIES, SORT_CAPABILITIES } from './properties.js';
import { compileSearchExpr, parseSearch, SEARCH_LIMITS, searchHints, SearchError, type SearchExpr } from './search.js';
import { readsOnlyRecord, recordObject, searchCandidates, sortsOnRecord } from './search-plan.js';
import { sortedTitleSearch } from './search-sorted.js';
import { compileSort, firstSorted, parseSort, sortKeyer, SortError, type SortEntry, type SortKey } from './sort.js';
import type { SoapContext, SoapService } from './soap.js';
import type { ViewKey } from './clients.js';
import { resolveContainerAlias, samsungFeatureList } from './clients.js';
import { UpnpError, type SoapValue } from './soap.js';

export const CDS_TYPE = 'urn:schemas-upnp-org:service:ContentDirectory:1';

type Out = [string, SoapValue][];

/**
 * Most objects in one Browse or Search answer. RequestedCount 0 ("all") and anything larger is
 * answered with this many, NumberReturned and TotalMatches telling the client to page on (the
 * CDS allows fewer than requested; TVs page anyway): one answer's memory stays bounded however
 * big the container (20,000 children in one answer took +200 MB RSS).
 */
export const MAX_PAGE = 1000;

/** Children read at a time to sort a container (sortedChildren). */
export const SORT_CHUNK = 1000;

/** Longest CategoryType or RID X_SetBookmark takes. */
export const MAX_BOOKMARK_TAG = 256;

/**
 * X_SetBookmark's CategoryType and RID: Samsung's own bookkeeping, not used here. Servers type
 * them differently (ui4 in MiniDLNA's and our SCPD, string in UMS's; Gerbera reads them as text
 * and ignores them) and TVs send what their firmware does, so any short printable text is taken;
 * longer than MAX_BOOKMARK_TAG or holding control characters is 402 naming the argument.
 */
function samsungTag(args: Record<string, string>, name: string): void {
  const v = args[name];
  if (v === undefined) return;
  if (v.length > MAX_BOOKMARK_TAG || /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(v)) {
    throw new UpnpError(402, `${name} must be printable text of at most ${MAX_BOOKMARK_TAG} characters (got ${v.length} characters${v.length > MAX_BOOKMARK_TAG ? '' : ' with a control character'})`);
  }
}

/** RequestedCount, with 0 (all) and anything above MAX_PAGE answered with MAX_PAGE. */
function pageCount(args: Record<string, string>): number {
  const n = ui4(args, 'RequestedCount', 0);
  return n === 0 || n > MAX_PAGE ? MAX_PAGE : n;
}

function ui4(args: Record<string, string>, name: string, dflt?: number): number {
  const raw = args[name];
  if (raw === undefined || raw.trim() === '') {
    if (dflt !== undefined) return dflt;
    throw new UpnpError(402, `missing argument ${name}`);
  }
  const t = raw.trim();
  if (!/^\d+$/.test(t) || Number(t) > 0xffffffff) throw new UpnpError(402, `${name} must be an unsigned 32-bit integer, got ${JSON.stringify(raw)}`);
  return Number(t);
}

function required(args: Record<string, string>, name: string): string {
  const v = args[name];
  if (v === undefined) throw new UpnpError(402, `missing argument ${name}`);
  return v;
}

/** XML white space (space, tab, CR, LF) around a value. */
const XML_WS_EDGES = /^[ \t\r\n]+|[ \t\r\n]+$/g;

/**
 * A required ID or keyword argument (ObjectID, ContainerID, BrowseFlag) without the XML white
 * space around it: `<ObjectID> 0 </ObjectID>` (a pretty-printed request) names object 0, as
 * MiniDLNA and Gerbera take it; no ID or flag of ours starts or ends with white space.
 * Numbers (ui4) are trimmed too; Filter, SortCriteria and SearchCriteria are read as sent.
 */
function requiredToken(args: Record<string, string>, name: string): string {
  return required(args, name).replace(XML_WS_EDGES, '');
}

function sortOf(criteria: string) {
  try {
    return parseSort(criteria);
  } catch (err) {
    if (err instanceof SortError) throw new UpnpError(709, err.message);
    throw err;
  }
}

/** Our container for each view key that client profiles refer to (devices/clients). */
export const VIEWS: Partial<Record<ViewKey, string>> = {
  root: ROOT_ID,
  music: 'music',
  'music.all': 'music/all',
  'music.genres': 'music/genres',
  'music.artists': 'music/artists',
  'music.albums': 'music/albums',
  'music.folders': 'folders',
  video: 'video',
  'video.all': 'video/all',
  'video.folders': 'video',
  image: 'pictures',
  'image.all': 'pictures/all',
  'image.date': 'pictures/date',
  'image.folders': 'folders',
};

export interface ContentDirectoryOptions {
  /** Bytes of search result lists kept between requests (search_cache; default 2 MiB, 0 = off). */
  searchCacheBytes?: number;
  /** Bytes of pre-serialised DIDL-Lite kept per object (didl_cache; didl-cache.ts; default 4 MiB, 0 = off). */
  didlCacheBytes?: number;
  /** Called with every page of BrowseDirectChildren (predictive pre-staging: staging/prestage.ts). */
  onBrowse?(containerId: string, page: readonly ObjectRef[]): void;
}

export class ContentDirectory {
  private readonly onBrowse: ContentDirectoryOptions['onBrowse'];
  /**
   * Object IDs of the sorted results of recent searches, valid for one SystemUpdateID (cleared
   * when it changes) and bounded in bytes (an ID costs its UTF-16 length plus the array slot and
   * string header); a page is read from the catalog by ID. Undefined: search_cache = 0.
   */
  private searches?: LRUCache<string, string[]>;
  private searchesUpdateId = -1;
  /** Each object's DIDL-Lite, escaped, per client profile, base URL and Filter. */
  private heads: DidlCache;

  constructor(
    private catalog: Catalog,
    opts: ContentDirectoryOptions = {},
  ) {
    this.onBrowse = opts.onBrowse;
    this.heads = new DidlCache(opts.didlCacheBytes ?? 4 * 1024 ** 2, (generation) => catalog.changedSince(generation), (generation) => catalog.changesSeen(generation));
    const maxSize = opts.searchCacheBytes ?? 2 * 1024 ** 2;
    if (maxSize > 0) {
      this.searches = new LRUCache<string, string[]>({ maxSize, sizeCalculation: (ids, key) => ids.reduce((a, id) => a + 2 * id.length + 32, 64 + 2 * key.length) });
    }
  }

  /** Empties the DIDL-Lite and Search result caches (the server's idle trim: src/util/idle-trim.ts). */
  releaseCaches(): void {
    this.heads.clear();
    this.searches?.clear();
  }

  private mapId(id: string, ctx: SoapContext): string {
    return resolveContainerAlias(ctx.client, id, VIEWS);
  }

  private didlOptions(filter: string, ctx: SoapContext): DidlOptions {
    return { baseUrl: ctx.baseUrl, filter, protocolInfo, client: ctx.client, ...didlArt(ctx.baseUrl), captions: (o) => captionsOf(ctx.baseUrl, o) };
  }

  /** Resume positions of a page's items, read (one getMany) only for clients that use them. */
  private async bookmarksOf(page: readonly ObjectRef[], ctx: SoapContext) {
    if (!ctx.client?.quirks.sendsBookmark) return undefined;
    return this.catalog.bookmarks.getMany(page.filter((o) => !o.container).map((o) => o.refId ?? o.id));
  }

  /**
   * The Result for the objects `ids` (in order; those `load` does not find are left out): each
   * object's DIDL-Lite from the cache, or serialised from what `load` reads and kept. Byte for
   * byte escText(didl(objects)).
   */
  private async renderIds(ids: string[], filter: string, ctx: SoapContext, load: (ids: string[]) => Promise<CatalogObject[]>): Promise<{ result: SoapValue; page: CachedHead[] }> {
    const generation = this.catalog.generation;
    const variant = this.heads.variant(generation, ctx.client, ctx.baseUrl, filter);
    let marks: Awaited<ReturnType<ContentDirectory['bookmarksOf']>>;
    // the serialiser is made only when an object is not cached or the client takes bookmarks
    let parts: DidlParts | undefined;
    const partsOf = () => (parts ??= didlParts({ ...this.didlOptions(filter, ctx), bookmark: (o) => marks?.get(o.refId ?? o.id)?.pos }));
    const heads: (CachedHead | undefined)[] = [];
    let missing: string[] | undefined;
    for (const id of ids) {
      const h = this.heads.get(variant, id);
      heads.push(h);
      if (!h) (missing ??= []).push(id);
    }
    if (missing) {
      const byId = new Map((await load(missing)).map((o) => [o.id, o]));
      ids.forEach((id, k) => {
        const o = heads[k] ? undefined : byId.get(id);
        if (!o) return;
        heads[k] = headOf(o, partsOf());
        this.heads.set(variant, generation, heads[k]!);
      });
    }
    const page = missing ? heads.filter((h): h is CachedHead => h !== undefined) : (heads as CachedHead[]);
    const root = (usesSec: boolean) => this.heads.root(ctx.client, usesSec);
    if (!ctx.client?.quirks.sendsBookmark) return { result: assemble(page, root), page };
    marks = await this.bookmarksOf(page, ctx);
    return { result: assemble(page, root, partsOf().bookmark), page };
  }

  /**
   * An object a client may name: a playlist file's record (`l…`, layout.ts) is the catalog's own
   * bookkeeping, never listed; its playlistContainers (`P…`, `playlists/…`) are what clients see.
   */
  private async object(id: string): Promise<CatalogObject | undefined> {
    const o = await this.catalog.get(id);
    return o && !(o.playlist && !o.container) ? o : undefined;
  }

  /** Samsung X_SetBookmark: the resume position of an item, kept in the catalog (0 clears it). */
  private async setBookmark(args: Record<string, string>): Promise<Out> {
    const id = requiredToken(args, 'ObjectID');
    const pos = ui4(args, 'PosSecond');
    samsungTag(args, 'CategoryType');
    samsungTag(args, 'RID');
    const obj = await this.object(id);
    if (!obj) throw new UpnpError(701, `no such object: ${id}`);
    if (obj.container) throw new UpnpError(402, `ObjectID must name an item, ${id} is a container`);
    await this.catalog.bookmarks.set(obj.refId ?? obj.id, pos);
    return [];
  }

  async browse(args: Record<string, string>, ctx: SoapContext): Promise<Out> {
    const objectId = this.mapId(requiredToken(args, 'ObjectID'), ctx);
    const flag = requiredToken(args, 'BrowseFlag');
    const filter = args.Filter ?? '*';
    const start = ui4(args, 'StartingIndex', 0);
    const count = pageCount(args);
    const ignoreSort = Boolean(ctx.client?.quirks.ignoreSortCriteria);
    const sortCriteria = ignoreSort ? '' : (args.SortCriteria ?? '');
    const keys = sortOf(sortCriteria);
    if (flag !== 'BrowseMetadata' && flag !== 'BrowseDirectChildren') throw new UpnpError(402, `BrowseFlag must be BrowseMetadata or BrowseDirectChildren, got ${JSON.stringify(flag)}`);
    if (flag === 'BrowseMetadata') {
      const { result, page } = await this.renderIds([objectId], filter, ctx, async () => {
        const o = await this.object(objectId);
        return o ? [o] : [];
      });
      const obj = page[0];
      if (!obj) throw new UpnpError(701, `no such object: ${objectId}`);
      return [
        ['Result', result],
        ['NumberReturned', 1],
        ['TotalMatches', 1],
        ['UpdateID', obj.container ? (obj.updateId ?? this.catalog.systemUpdateId) : this.catalog.systemUpdateId],
      ];
    }
    const obj = await this.object(objectId);
    if (!obj) throw new UpnpError(701, `no such object: ${objectId}`);
    if (!obj.container) throw new UpnpError(710, `not a container: ${objectId}`);
    let ids: IdList;
    if (keys.length === 0) {
      ids = await this.catalog.childList(objectId);
    } else {
      // sorted ID lists for non-default orders share the catalog's list_cache with the child lists
      const cacheKey = `\u0000sort\u0000${objectId}\u0000${sortCriteria}`;
      const updateId = obj.updateId ?? 0;
      let sorted = this.catalog.lists.get(cacheKey, updateId);
      if (!sorted) {
        sorted = IdList.from(await this.sortedChildren(objectId, keys), objectId + REF_SEP);
        this.catalog.lists.set(cacheKey, updateId, sorted);
      }
      ids = sorted;
    }
    const total = ids.length;
    const end = Math.min(total, start + count);
    const pageIds = start < total ? ids.slice(start, end) : [];
    const { result, page } = await this.renderIds(pageIds, filter, ctx, (missing) => this.catalog.getMany(missing));
    this.onBrowse?.(objectId, page);
    return [
      ['Result', result],
      ['NumberReturned', page.length],
      ['TotalMatches', total],
      ['UpdateID', obj.updateId ?? this.catalog.systemUpdateId],
    ];
  }

  /**
   * A container's child IDs in the order of `keys`: the children are read SORT_CHUNK at a time
   * and only what the order reads of each is kept (sort.ts sortKeyer), so sorting All Tracks
   * holds a few values per track, not 20,000 objects (+66 MB RSS on the lab server).
   */
  private async sortedChildren(containerId: string, keys: SortKey[]): Promise<string[]> {
    const { entry, compare } = sortKeyer(keys);
    const childIds = await this.catalog.childIds(containerId);
    const entries: SortEntry[] = [];
    for (let k = 0; k < childIds.length; k += SORT_CHUNK) for (const o of await this.catalog.getMany(childIds.slice(k, k + SORT_CHUNK))) entries.push(entry(o));
    return entries.sort(compare).map((e) => e.id);
  }

  async search(args: Record<string, string>, ctx: SoapContext): Promise<Out> {
    const containerId = this.mapId(requiredToken(args, 'ContainerID'), ctx);
    const criteria = required(args, 'SearchCriteria');
    const filter = args.Filter ?? '*';
    const start = ui4(args, 'StartingIndex', 0);
    const count = pageCount(args);
    const sortText = ctx.client?.quirks.ignoreSortCriteria ? '' : (args.SortCriteria ?? '');
    const keys = sortOf(sortText);
    let match: (o: CatalogObject) => boolean;
    let classPrefixes: string[] | undefined;
    let expr: SearchExpr;
    try {
      expr = parseSearch(criteria, SEARCH_LIMITS);
      match = compileSearchExpr(expr);
      classPrefixes = searchHints(expr).classPrefixes;
    } catch (err) {
      if (err instanceof SearchError) throw new UpnpError(708, err.message);
      throw err;
    }
    const container = await this.object(containerId);
    if (!container) throw new UpnpError(710, `no such container: ${containerId}`);
    if (!container.container) throw new UpnpError(710, `not a container: ${containerId}`);

    // Clients page through one search with the same criteria: the sorted result list is kept
    // (a few searches, until the library changes) so later pages cost a slice.
    const cacheKey = `${containerId}\u0000${criteria}\u0000${sortText}`;
    const updateId = this.catalog.systemUpdateId;
    if (updateId !== this.searchesUpdateId) {
      this.searches?.clear();
      this.searchesUpdateId = updateId;
    }
    const cached = this.searches?.get(cacheKey);
    let total: number;
    let pageIds: string[];
    /** Objects of the page already read (the others, records among them, are read if their DIDL-Lite is not cached). */
    let have: Map<string, CatalogObject> | undefined;
    // one title word and class terms, from the root, in the default order: a lookup of the
    // word's counts and the head of its sorted postings (search-sorted.ts), whatever its matches
    const sorted =
      !cached && containerId === ROOT_ID && keys.length === 0
        ? await sortedTitleSearch(this.catalog, expr, (o) => accepts(classPrefixes, o) && match(o), (o) => wants(classPrefixes, o) && match(o), start, count)
        : undefined;
    if (cached) {
      total = cached.length;
      const end = Math.min(total, start + count);
      pageIds = start < total ? cached.slice(start, end) : [];
    } else if (sorted) {
      total = sorted.total;
      pageIds = sorted.page.map((o) => o.id);
      have = new Map([...sorted.whole].map((o) => [o.id, o]));
    } else {
      const { hits, stubs } = await this.runSearch(containerId, expr, match, classPrefixes, keys);
      total = hits.length;
      const end = Math.min(total, start + count);
      const cmp = compileSort(keys);
      let page: CatalogObject[];
      if (this.searches) {
        hits.sort(cmp);
        // a result computed while the library changed is not kept
        if (updateId === this.catalog.systemUpdateId) this.searches.set(cacheKey, hits.map((o) => o.id));
        page = start < total ? hits.slice(start, end) : [];
      } else {
        page = start < total ? firstSorted(hits, cmp, end).slice(start) : [];
      }
      pageIds = page.map((o) => o.id);
      have = new Map(page.filter((o) => !stubs?.has(o)).map((o) => [o.id, o]));
    }
    // each object's DIDL-Lite as Browse keeps it (didl-cache.ts); one gone meanwhile is left out
    const { result, page } = await this.renderIds(pageIds, filter, ctx, async (missing) => {
      const read = missing.filter((id) => !have?.has(id));
      return [...missing.flatMap((id) => have?.get(id) ?? []), ...(read.length ? await this.catalog.getMany(read) : [])];
    });
    return [
      ['Result', result],
      ['NumberReturned', page.length],
      ['TotalMatches', total],
      ['UpdateID', container.updateId ?? this.catalog.systemUpdateId],
    ];
  }

  /**
   * The matches of a Search, in no order. Criteria and sort that read only what a posting record
   * holds (@id, upnp:class, dc:title: search-plan.ts), from the root, are answered from the
   * records of the index's candidates: those hits are record objects (in `stubs`), read by
   * the caller for the returned page only. Any other candidate is read and tested whole.
   */
  private async runSearch(containerId: string, expr: SearchExpr, match: (o: CatalogObject) => boolean, classPrefixes: string[] | undefined, keys: SortKey[]): Promise<{ hits: CatalogObject[]; stubs?: Set<CatalogObject> }> {
    const wantItems = wants(classPrefixes, { container: false });
    const wantContainers = wants(classPrefixes, { container: true });
    const results: CatalogObject[] = [];
    const inSubtree = containerId === ROOT_ID ? undefined : await this.subtree(containerId);
    const listed = inSubtree ? await this.playlistEntries(inSubtree) : undefined;

    const takeItem = (item: CatalogObject) => {
      if (!accepts(classPrefixes, item)) return;
      if (!match(item)) return;
      if (!inSubtree) {
        results.push(item);
        return;
      }
      // Inside a subtree an item is returned once, under the first of its placements there;
      // the entries of a playlist are placements of the playlist, not of the item.
      const p = placements(item).placements.find((pl) => inSubtree.has(pl.containerId));
      if (p) results.push(p.childId === item.id ? item : { ...item, id: p.childId, parentId: p.containerId, refId: item.id });
      else {
        const e = listed?.get(item.id);
        if (e) results.push({ ...item, id: refId(e.containerId, item.id), parentId: e.containerId, refId: item.id, ...(e.title ? { title: e.title } : {}) });
      }
    };
    const takeContainer = (c: CatalogObject) => {
      if (c.id === containerId || c.id === ROOT_ID) return;
      if (inSubtree && !inSubtree.has(c.id)) return;
      if (match(c)) results.push(c);
    };

    // The word index narrows most text criteria to a few candidates; otherwise every
    // object is read from the store (one pass, nothing kept).
    const onRecords = !inSubtree && readsOnlyRecord(expr) && sortsOnRecord(keys);
    // criteria the index does not narrow but that read only a record (class terms: "every
    // audio item"): every item's record answers when it is known to hold every item
    const candidates = (await searchCandidates(this.catalog, expr)) ?? (onRecords && !wantContainers ? await this.catalog.itemRecords() : undefined);
    let stubs: Set<CatalogObject> | undefined;
    if (candidates) {
      const fromRecords = onRecords;
      if (fromRecords) stubs = new Set();
      const ids: string[] = [];
      for (const [id, rec] of candidates) {
        if (!(id.startsWith('i') ? wantItems : wantContainers)) continue;
        const stub = fromRecords ? recordObject(id, rec) : undefined;
        if (!stub) {
          ids.push(id);
          continue;
        }
        stubs!.add(stub);
        (stub.container ? takeContainer : takeItem)(stub);
      }
      for (let k = 0; k < ids.length; k += 1000) {
        for (const o of await this.catalog.getMany(ids.slice(k, k + 1000))) (o.container ? takeContainer : takeItem)(o);
      }
    } else {
      if (wantItems) for await (const item of this.catalog.eachItem()) takeItem(item);
      if (wantContainers) for await (const c of this.catalog.eachContainer()) takeContainer(c);
    }
    return { hits: results, stubs };
  }

  /**
   * The items the playlist containers of a subtree list, each with the first of those
   * containers and the title the playlist gives it there (as Browse shows the entry).
   */
  private async playlistEntries(subtree: Set<string>): Promise<Map<string, { containerId: string; title?: string }>> {
    const out = new Map<string, { containerId: string; title?: string }>();
    for (const cid of subtree) {
      const rec = playlistRecordOf(cid);
      if (!rec) continue;
      for (const e of (await this.catalog.get(rec))?.playlist?.entries ?? []) if (!out.has(e.id)) out.set(e.id, { containerId: cid, title: e.title });
    }
    return out;
  }

  /** IDs of a container and every container below it. */
  private async subtree(rootId: string): Promise<Set<string>> {
    const parents = await this.catalog.containerParentMap();
    const kids = new Map<string, string[]>();
    for (const [id, parent] of parents) {
      const l = kids.get(parent);
      if (l) l.push(id);
      else kids.set(parent, [id]);
    }
    const out = new Set<string>([rootId]);
    const stack = [rootId];
    while (stack.length) for (const k of kids.get(stack.pop()!) ?? []) if (!out.has(k)) (out.add(k), stack.push(k));
    return out;
  }

  service(): SoapService {
    return {
      serviceType: CDS_TYPE,
      actions: {
        Browse: (a, ctx) => this.browse(a, ctx),
        Search: (a, ctx) => this.search(a, ctx),
        GetSearchCapabilities: async () => [['SearchCaps', SEARCH_CAPABILITIES]],
        GetSortCapabilities: async () => [['SortCaps', SORT_CAPABILITIES]],
        GetSystemUpdateID: async () => [['Id', this.catalog.systemUpdateId]],
        X_GetFeatureList: async (_a, ctx) => [['FeatureList', samsungFeatureList(ctx.client, VIEWS)]],
        X_SetBookmark: (a) => this.setBookmark(a),
      },
    };
  }
}

/** Whether the class hint of a Search lets its kind of object (item or container) be a result at all. */
function wants(classPrefixes: string[] | undefined, o: { container: boolean }): boolean {
  const kind = o.container ? 'object.container' : 'object.item';
  return !classPrefixes || classPrefixes.some((p) => kind.startsWith(p) || p.startsWith(kind));
}

/** Whether the class hint of a Search lets this item be a result (the predicate still decides). */
function accepts(classPrefixes: string[] | undefined, item: CatalogObject): boolean {
  return wants(classPrefixes, item) && (!classPrefixes || classPrefixes.some((p) => item.upnpClass.startsWith(p)));
}
