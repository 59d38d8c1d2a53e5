// Pre-serialised DIDL-Lite per object, so a Browse page or a BrowseMetadata answer is a join
// of strings: no store read, no JSON parse, no serialisation and no escaping per object.
//
// What is kept is each object's element head from didl.ts (DidlParts.head: the element without
// its bookmark and closing tag), already escaped for the SOAP Result, per "variant": the client
// profile (its quirks), the base URL the client used (it is in every URL) and the Filter. The
// bookmark (Samsung's resume position changes without the object changing) and the closing tag
// are added per request, the document's start tag too. The output is byte for byte what
// escText(didl(objects)) gives (test/didl-cache.test.ts).
//
// Invalidation: when the catalog's generation has moved on, the heads of the objects it changed
// are dropped (catalog.changedSince: items and playlist records by their ID, containers by
// theirs, container counts, art and update IDs included), in every variant; a reference
// (`music/all$i…`, a playlist entry, a Search result inside a container) shows its item's data,
// so it is dropped with its item (entries are indexed by the ID of the object they render:
// refId ?? id), and an entry of a playlist container also with the playlist's record (`l…`:
// the title the playlist gives the entry). When the catalog no longer knows what changed (too much since), or without a
// change source, the whole cache is dropped. Nothing stale is ever served: heads made from
// objects read while a change landed are not kept when another request already moved the
// cache on, and otherwise dropped with that change. Bounded in bytes (`didl_cache`, default
// 4 MiB; 0 = off).

import { LRUCache } from 'lru-cache';
import type { CatalogObject } from '../catalog/types.js';
import { parseRefId, playlistRecordOf } from '../catalog/layout.js';
import { escText, EscapedText } from '../util/xml.js';
import type { ClientProfile } from './clients.js';
import { closeTag, DIDL_END, didlRoot, type DidlParts, type ObjectRef } from './didl.js';

/** An object's element head, escaped for the SOAP Result (with what identifies the object). */
export interface CachedHead extends ObjectRef {
  /** Containers: their update ID (what BrowseMetadata answers with). */
  updateId?: number;
  xml: string;
  usesSec: boolean;
}

/** Filters longer than this are answered without the cache (clients send a few short ones). */
const MAX_FILTER = 1024;
/** Bytes of bookkeeping per entry besides the strings (LRU node, entry object, map slot, index slot). */
const ENTRY_OVERHEAD = 200;
const ESC_CLOSE_ITEM = escText(closeTag({ container: false }));
const ESC_CLOSE_CONTAINER = escText(closeTag({ container: true }));
const ESC_END = escText(DIDL_END);

/** The roots' key of requests without a client profile. */
const NO_CLIENT = {};

const bytesOf = (s: string) => (/[^\u0000-\u00ff]/.test(s) ? 2 : 1) * s.length;

/** IDs of the objects the catalog changed after a generation; undefined: not known (drop all). */
export type ChangesSince = (generation: number) => ReadonlySet<string> | undefined;

export class DidlCache {
  private readonly lru?: LRUCache<string, CachedHead>;
  private generation = -1;
  /** The ID of the object an entry renders (refId ?? id) → the entries' keys, in every variant. */
  private readonly bySource = new Map<string, Set<string>>();
  private readonly profiles = new WeakMap<ClientProfile, number>();
  private nextProfile = 1;
  private readonly roots = new WeakMap<object, [string, string]>();

  constructor(
    maxBytes: number,
    private readonly changesSince?: ChangesSince,
    /** Told the generation this cache caught up with (the catalog's change log forgets up to there). */
    private readonly changesSeen?: (generation: number) => void,
  ) {
    if (maxBytes > 0) {
      this.lru = new LRUCache<string, CachedHead>({
        maxSize: maxBytes,
        sizeCalculation: (h, key) => bytesOf(key) + bytesOf(h.xml) + ENTRY_OVERHEAD,
        dispose: (h, key) => this.unindex(h, key),
      });
    }
  }

  private unindex(h: CachedHead, key: string): void {
    for (const src of sourcesOf(h)) {
      const keys = this.bySource.get(src);
      if (keys?.delete(key) && keys.size === 0) this.bySource.delete(src);
    }
  }

  /** Moves on to the catalog's `generation`: drops what changed since ours, or everything. */
  private catchUp(generation: number): void {
    const changed = this.generation < 0 ? undefined : this.changesSince?.(this.generation);
    if (!changed) {
      this.lru!.clear();
      this.bySource.clear();
    } else {
      for (const id of changed) {
        const keys = this.bySource.get(id);
        if (keys) for (const key of [...keys]) this.lru!.delete(key);
      }
    }
    this.generation = generation;
    this.changesSeen?.(generation);
  }

  /**
   * The document's start tag for a client, escaped (didl.ts didlRoot): it depends on the
   * client profile only, so it is made once per profile (profiles are loaded at start-up).
   */
  root(client: ClientProfile | undefined, usesSec: boolean): string {
    const key = client ?? NO_CLIENT;
    let r = this.roots.get(key);
    if (!r) this.roots.set(key, (r = [escText(didlRoot(client, false)), escText(didlRoot(client, true))]));
    return r[usesSec ? 1 : 0];
  }

  /**
   * Empties the cache (the server's idle trim: what a burst of requests filled goes back to the
   * system once they stopped; the next request renders its objects again).
   */
  clear(): void {
    if (!this.lru) return;
    this.lru.clear();
    this.bySource.clear();
  }

  /** Entries held and their bytes as counted against the bound (for tests and status). */
  get stats(): { entries: number; bytes: number } {
    return { entries: this.lru?.size ?? 0, bytes: this.lru?.calculatedSize ?? 0 };
  }

  /**
   * The key prefix of one client profile, base URL and Filter, or undefined when this request
   * is not cached (cache off, odd Filter). `generation` is the catalog's: a new one drops what
   * changed since the last (see the top).
   */
  variant(generation: number, client: ClientProfile | undefined, baseUrl: string, filter: string): string | undefined {
    if (!this.lru || filter.length > MAX_FILTER) return undefined;
    if (generation !== this.generation) this.catchUp(generation);
    let p = 0;
    if (client) {
      p = this.profiles.get(client) ?? 0;
      if (!p) this.profiles.set(client, (p = this.nextProfile++));
    }
    return `${p}\u0000${baseUrl}\u0000${filter}\u0000`;
  }

  get(variant: string | undefined, id: string): CachedHead | undefined {
    return variant === undefined ? undefined : this.lru!.get(variant + id);
  }

  /** Keeps a head made under `generation` (dropped when the catalog moved on meanwhile). */
  set(variant: string | undefined, generation: number, head: CachedHead): void {
    if (variant === undefined || generation !== this.generation) return;
    const key = variant + head.id;
    this.lru!.set(key, head);
    if (!this.lru!.has(key)) return; // larger than the whole budget: not kept
    for (const src of sourcesOf(head)) {
      let keys = this.bySource.get(src);
      if (!keys) this.bySource.set(src, (keys = new Set()));
      keys.add(key);
    }
  }
}

/** The catalog objects a head is made of: its object (a reference's item), and a playlist entry's record. */
function sourcesOf(h: CachedHead): string[] {
  if (h.refId === undefined) return [h.id];
  const ref = parseRefId(h.id);
  const record = ref && playlistRecordOf(ref.containerId);
  return record ? [h.refId, record] : [h.refId];
}

/** The cacheable head of one object under `parts`. */
export function headOf(obj: CatalogObject, parts: DidlParts): CachedHead {
  const h = parts.head(obj);
  return {
    id: obj.id,
    ...(obj.refId !== undefined ? { refId: obj.refId } : {}),
    container: obj.container,
    ...(obj.container ? { updateId: obj.updateId } : {}),
    xml: escText(h.xml),
    usesSec: h.usesSec,
  };
}

/**
 * The SOAP Result of a page: the document's start tag (`root`: escaped, e.g. DidlCache.root),
 * each head with its bookmark (`bookmark`: DidlParts.bookmark; none when the client sends
 * none) and closing tag, the end tag.
 */
export function assemble(heads: readonly CachedHead[], root: (usesSec: boolean) => string, bookmark?: DidlParts['bookmark']): EscapedText {
  let body = '';
  let usesSec = false;
  for (const h of heads) {
    const bm = h.container || !bookmark ? '' : bookmark(h);
    body += h.xml + (bm ? escText(bm) : '') + (h.container ? ESC_CLOSE_CONTAINER : ESC_CLOSE_ITEM);
    if (h.usesSec || bm) usesSec = true;
  }
  return new EscapedText(root(usesSec) + body + ESC_END);
}
