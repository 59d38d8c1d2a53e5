// Ordered object-ID lists held between requests (a container's children in default order,
// the children in a non-default Browse order), compact and bounded in bytes.
//
// A list of N IDs is one string (the IDs joined by '\n'; a child ID that is a reference
// `<container>$<itemId>` into the list's own container is kept without that prefix) plus N+1
// offsets, instead of N strings each holding on to the key it was sliced from: about 20 bytes
// an item where an array of sliced keys took about 100. `list_cache` bounds the bytes of every
// list together (least recently used go first); a list larger than the whole bound is not
// kept, and its container is then read from the catalog's child index on every request.

import { LRUCache } from 'lru-cache';

const NL = '\n';
/** Marks an entry stored without its list's reference prefix. */
const REF = '\u0001';

export class IdList {
  private constructor(
    private readonly text: string,
    private readonly offsets: Uint32Array,
    private readonly prefix: string,
    /** Bytes per character of the text (V8 keeps a string of Latin-1 characters in one byte each). */
    private readonly charBytes: number,
  ) {}

  /** `prefix`: IDs starting with it are stored without it (the container's reference prefix). */
  static from(ids: readonly string[], prefix = ''): IdList {
    const offsets = new Uint32Array(ids.length + 1);
    const parts: string[] = new Array(ids.length);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const part = prefix && id.startsWith(prefix) ? REF + id.slice(prefix.length) : id;
      parts[i] = part;
      offsets[i] = at;
      at += part.length + 1;
    }
    offsets[ids.length] = at;
    // join copies the characters: the list holds none of the keys the IDs were sliced from
    const text = parts.join(NL);
    return new IdList(text, offsets, prefix, /[^\u0000-\u00ff]/.test(text) ? 2 : 1);
  }

  get length(): number {
    return this.offsets.length - 1;
  }

  at(i: number): string {
    const part = this.text.slice(this.offsets[i], this.offsets[i + 1] - 1);
    return part.charCodeAt(0) === 1 ? this.prefix + part.slice(1) : part;
  }

  /** IDs [start, end) (clamped, as Array#slice with non-negative bounds). */
  slice(start: number, end = this.length): string[] {
    const to = Math.min(end, this.length);
    const out: string[] = [];
    for (let i = Math.max(0, start); i < to; i++) out.push(this.at(i));
    return out;
  }

  /** Bytes held: the text, the offsets and the object headers. */
  get bytes(): number {
    return 128 + this.charBytes * this.text.length + this.offsets.byteLength + 2 * this.prefix.length;
  }
}

/**
 * Lists by key, each valid for a tag (e.g. the update ID of the container it was read at), least
 * recently used dropped first, at most `maxBytes` in all (0: none kept).
 */
export class IdListCache {
  private readonly lru?: LRUCache<string, { list: IdList; tag: number }>;

  constructor(readonly maxBytes: number) {
    if (maxBytes > 0) this.lru = new LRUCache<string, { list: IdList; tag: number }>({ maxSize: maxBytes, sizeCalculation: (e, k) => e.list.bytes + 2 * k.length + 64 });
  }

  /** The list kept under `key` for this tag (one kept for another tag is not returned). */
  get(key: string, tag: number): IdList | undefined {
    const e = this.lru?.get(key);
    return e && e.tag === tag ? e.list : undefined;
  }

  /** Keeps the list unless it alone is larger than the bound. */
  set(key: string, tag: number, list: IdList): void {
    if (this.lru && list.bytes + 2 * key.length + 64 <= this.maxBytes) this.lru.set(key, { list, tag });
  }

  delete(key: string): void {
    this.lru?.delete(key);
  }

  /** The list kept under `key` for tag `from` is kept for tag `to` (its IDs did not change); another tag's is left as it is. */
  retag(key: string, from: number, to: number): void {
    const e = this.lru?.peek(key);
    if (e && e.tag === from) e.tag = to;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }
}
