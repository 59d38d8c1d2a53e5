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
// Invalidation: the whole cache is dropped when the catalog's generation changes (every change
// of any object, container counts and update IDs included), so nothing stale is ever served;
// heads made from objects read while a change landed are not kept. Bounded in bytes
// (`didl_cache`, default 4 MiB; 0 = off).

import { LRUCache } from 'lru-cache';
import type { CatalogObject } from '../catalog/types.js';
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
/** Bytes of bookkeeping per entry besides the strings (LRU node, entry object, map slot). */
const ENTRY_OVERHEAD = 160;
const ESC_CLOSE_ITEM = escText(closeTag({ container: false }));
const ESC_CLOSE_CONTAINER = escText(closeTag({ container: true }));
const ESC_END = escText(DIDL_END);

/** The roots' key of requests without a client profile. */
const NO_CLIENT = {};

const bytesOf = (s: string) => (/[^\u0000-\u00ff]/.test(s) ? 2 : 1) * s.length;

export class DidlCache {
  private readonly lru?: LRUCache<string, CachedHead>;
  private generation = -1;
  private readonly profiles = new WeakMap<ClientProfile, number>();
  private nextProfile = 1;
  private readonly roots = new WeakMap<object, [string, string]>();

  constructor(maxBytes: number) {
    if (maxBytes > 0) {
      this.lru = new LRUCache<string, CachedHead>({ maxSize: maxBytes, sizeCalculation: (h, key) => bytesOf(key) + bytesOf(h.xml) + ENTRY_OVERHEAD });
    }
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

  /** Entries held and their bytes as counted against the bound (for tests and status). */
  get stats(): { entries: number; bytes: number } {
    return { entries: this.lru?.size ?? 0, bytes: this.lru?.calculatedSize ?? 0 };
  }

  /**
   * The key prefix of one client profile, base URL and Filter, or undefined when this request
   * is not cached (cache off, odd Filter). `generation` is the catalog's: a new one drops all.
   */
  variant(generation: number, client: ClientProfile | undefined, baseUrl: string, filter: string): string | undefined {
    if (!this.lru || filter.length > MAX_FILTER) return undefined;
    if (generation !== this.generation) {
      this.lru.clear();
      this.generation = generation;
    }
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
    this.lru!.set(variant + head.id, head);
  }
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
