// SortCriteria of UPnP ContentDirectory:1 (§2.5.6), and the natural order that Tapedeck
// uses everywhere titles are ordered (Browse default order, catalog index keys).
//
// SortCriteria: comma-separated `+prop` / `-prop` (ascending / descending). Leniency: a
// missing sign means ascending; whitespace around entries and after the sign is ignored;
// empty entries (`a,,b`, a trailing comma) are skipped; a repeated property keeps its first
// occurrence. An empty string means the default order. Unknown or unsortable properties
// and other garbage throw SortError (UPnP error 709).
//
// Natural order (naturalCompare / naturalSortKey), locale-independent and stable:
//  1. the string is made well-formed (a lone surrogate becomes U+FFFD, as UTF-8 encoding
//     would do) and lower-cased with String#toLowerCase (no locale tailoring);
//  2. control characters U+0000–U+001F are ignored, so a sort key never contains them and
//     '\u0000' can safely separate the parts of a composite key;
//  3. every maximal run of ASCII digits compares by its numeric value, whatever its length
//     (leading zeros are ignored: 'a007' and 'a7' are equal);
//  4. everything else compares by Unicode code point; a number compares to a non-digit
//     character like a digit would ('a1' < 'a_' because '1' < '_', 'a 1' < 'a1').
// Strings equal under these rules compare equal (callers break ties, e.g. by object ID).
// No article stripping ('The Beatles' sorts under T).
//
// naturalSortKey(s) maps s to a string whose plain code point order (= UTF-8 byte order,
// the order LevelDB keeps keys in) is exactly naturalCompare order. Digit runs become a
// length-prefixed form: significant digits d (zero = '0'), enc(d) = L + d when the length
// L <= 8, else '9' + enc(String(L)) + d, e.g. '7' -> '17', '10' -> '210',
// '123456789' -> '919123456789'. The key contains only the lower-cased text and these
// digits, so it is readable in a key dump.

import type { CatalogObject } from '../catalog/types.js';
import { lookupProperty, PROPERTIES, type PropertyDef, type PropValue } from './properties.js';

/** UPnP error 709: "Unsupported or invalid sort criteria". */
export class SortError extends Error {
  readonly code = 709;
  constructor(message: string) {
    super(message);
    this.name = 'SortError';
  }
}

export interface SortKey {
  /** Canonical property name. */
  prop: string;
  desc: boolean;
}

const SORTABLE = PROPERTIES.filter((d) => d.sortable)
  .map((d) => d.name)
  .join(', ');

function isWsOnly(s: string): boolean {
  return /^[ \t\n\v\f\r]*$/.test(s);
}

/** Parses SortCriteria. Throws SortError (code 709). */
export function parseSort(criteria: string): SortKey[] {
  if (typeof criteria !== 'string') throw new SortError('Invalid SortCriteria: not a string');
  const keys: SortKey[] = [];
  if (isWsOnly(criteria)) return keys;
  const seen = new Set<string>();
  let offset = 0;
  for (const part of criteria.split(',')) {
    const at = offset;
    offset += part.length + 1;
    let p = part.trim();
    if (p === '') continue;
    let desc = false;
    if (p[0] === '+' || p[0] === '-') {
      desc = p[0] === '-';
      p = p.slice(1).trim();
      if (p === '') throw new SortError(`Invalid SortCriteria: missing property after '${part.trim()}' at offset ${at}`);
    }
    const shown = p.length > 40 ? `${p.slice(0, 40)}…` : p;
    const def = lookupProperty(p);
    if (!def) throw new SortError(`Invalid SortCriteria: unknown property '${shown}' at offset ${at} (sortable: ${SORTABLE})`);
    if (!def.sortable) throw new SortError(`Invalid SortCriteria: property '${def.name}' is not sortable (sortable: ${SORTABLE})`);
    if (seen.has(def.name)) continue;
    seen.add(def.name);
    keys.push({ prop: def.name, desc });
  }
  return keys;
}

// ---------------------------------------------------------------------------------------
// Natural order

const DIGIT0 = 48;
const DIGIT9 = 57;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_G = /[\u0000-\u001f]+/g;
const LONE_SURROGATE_G = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

type WellFormed = { isWellFormed?: () => boolean; toWellFormed?: () => string };

function wellFormed(s: string): string {
  const w = s as unknown as WellFormed;
  if (w.isWellFormed && w.toWellFormed) return w.isWellFormed() ? s : w.toWellFormed();
  return s.replace(LONE_SURROGATE_G, '\uFFFD');
}

/** Steps 1 and 2 of the natural order: well-formed, lower case, no control characters. */
export function prepareNatural(s: string): string {
  let t = wellFormed(s).toLowerCase();
  if (CONTROL.test(t)) t = t.replace(CONTROL_G, '');
  return t;
}

/** Code unit -> a value whose order is code point order (surrogates above U+E000..U+FFFF). */
function cp(c: number): number {
  return c < 0xd800 ? c : c < 0xe000 ? c + 0x2000 : c - 0x800;
}

/** naturalCompare for strings that already went through prepareNatural. */
export function naturalComparePrepared(x: string, y: string): number {
  if (x === y) return 0;
  const n = x.length;
  const m = y.length;
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    const c = x.charCodeAt(i);
    const d = y.charCodeAt(j);
    if (c >= DIGIT0 && c <= DIGIT9 && d >= DIGIT0 && d <= DIGIT9) {
      // Both at a digit run: skip leading zeros, longer significant part is bigger.
      let a0 = i;
      while (a0 < n && x.charCodeAt(a0) === DIGIT0) a0++;
      let a1 = a0;
      while (a1 < n && isDigit(x.charCodeAt(a1))) a1++;
      let b0 = j;
      while (b0 < m && y.charCodeAt(b0) === DIGIT0) b0++;
      let b1 = b0;
      while (b1 < m && isDigit(y.charCodeAt(b1))) b1++;
      const la = a1 - a0;
      const lb = b1 - b0;
      if (la !== lb) return la < lb ? -1 : 1;
      for (let k = 0; k < la; k++) {
        const e = x.charCodeAt(a0 + k);
        const f = y.charCodeAt(b0 + k);
        if (e !== f) return e < f ? -1 : 1;
      }
      i = a1;
      j = b1;
      continue;
    }
    // A digit against a non-digit orders like the first character of the number's key
    // ('1'..'9') would: the same as any digit, since no non-digit lies between '0' and '9'.
    if (c !== d) return cp(c) < cp(d) ? -1 : 1;
    i++;
    j++;
  }
  const rx = n - i;
  const ry = m - j;
  return rx === ry ? 0 : rx < ry ? -1 : 1;
}

function isDigit(c: number): boolean {
  return c >= DIGIT0 && c <= DIGIT9;
}

/** Natural order: 'Track 2' < 'Track 10', case-insensitive, locale-independent (see top). */
export function naturalCompare(a: string, b: string): number {
  if (a === b) return 0;
  return naturalComparePrepared(prepareNatural(a), prepareNatural(b));
}

function encodeDigits(d: string): string {
  return d.length <= 8 ? String(d.length) + d : '9' + encodeDigits(String(d.length)) + d;
}

/**
 * A key whose plain code point / UTF-8 byte order equals naturalCompare order (see top);
 * never contains U+0000–U+001F.
 */
export function naturalSortKey(s: string): string {
  const t = prepareNatural(s);
  const n = t.length;
  let out = '';
  let i = 0;
  while (i < n) {
    // Copy the text up to the next digit in one slice.
    let k = i;
    while (k < n && !isDigit(t.charCodeAt(k))) k++;
    if (k > i) out += t.slice(i, k);
    if (k >= n) break;
    let z = k;
    while (z < n && t.charCodeAt(z) === DIGIT0) z++;
    let e = z;
    while (e < n && isDigit(t.charCodeAt(e))) e++;
    out += encodeDigits(e > z ? t.slice(z, e) : '0');
    i = e;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Comparator

type Prepared = string | number | undefined;

/** What a sort reads of an object, prepared (sortKeyer): a few values instead of the object. */
export interface SortEntry {
  id: string;
  container: boolean;
  vals: Prepared[];
  title: string;
}

function prepareValue(def: PropertyDef, raw: PropValue | PropValue[] | undefined): Prepared {
  // Multi-valued properties sort by their first value (upnp:artist: the performer).
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined) return undefined;
  if (def.type === 'number') return typeof v === 'number' ? v : Number(v);
  if (def.type === 'id') return String(v);
  return prepareNatural(String(v));
}

function ordinal(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

/**
 * A comparator for the given sort keys. Numbers compare numerically, object IDs
 * ordinally, everything else (titles, names, dc:date, upnp:class) in natural order.
 * A missing value sorts first ascending and last descending. Ties, and the whole order
 * when keys is empty, are broken deterministically: containers first, then natural-order
 * title, then @id (ordinal). Throws SortError for unknown or unsortable properties.
 * The comparator caches each object's prepared values: compile one per request (it is
 * cheap) rather than keeping it while objects get modified.
 */
export function compileSort(keys: readonly SortKey[]): (a: CatalogObject, b: CatalogObject) => number {
  const { entry: prepare, compare } = sortKeyer(keys);
  // Values are prepared once per object and comparator (sorting calls compare n log n times).
  const cache = new WeakMap<CatalogObject, SortEntry>();
  const entry = (o: CatalogObject): SortEntry => {
    let e = cache.get(o);
    if (!e) cache.set(o, (e = prepare(o)));
    return e;
  };
  return (a, b) => (a === b ? 0 : compare(entry(a), entry(b)));
}

/**
 * compileSort in two steps: `entry` keeps what the order reads of an object (its ID, container
 * flag, prepared sort values and title), `compare` orders entries as compileSort orders their
 * objects. A large list is sorted from its entries without holding its objects (cds.ts).
 */
export function sortKeyer(keys: readonly SortKey[]): { entry: (o: CatalogObject) => SortEntry; compare: (a: SortEntry, b: SortEntry) => number } {
  const defs = keys.map((k) => {
    const def = lookupProperty(k.prop);
    if (!def) throw new SortError(`Invalid SortCriteria: unknown property '${k.prop}'`);
    if (!def.sortable) throw new SortError(`Invalid SortCriteria: property '${def.name}' is not sortable`);
    return { def, sign: k.desc ? -1 : 1 };
  });
  const entry = (o: CatalogObject): SortEntry => ({ id: o.id, container: o.container, vals: defs.map(({ def }) => prepareValue(def, def.get(o))), title: prepareNatural(o.title ?? '') });
  const compare = (ea: SortEntry, eb: SortEntry): number => {
    for (let k = 0; k < defs.length; k++) {
      const x = ea.vals[k];
      const y = eb.vals[k];
      let r: number;
      if (x === undefined || y === undefined) r = x === y ? 0 : x === undefined ? -1 : 1;
      else if (typeof x === 'number') r = x === y ? 0 : x < (y as number) ? -1 : 1;
      else if (defs[k].def.type === 'id') r = ordinal(x, y as string);
      else r = naturalComparePrepared(x, y as string);
      if (r !== 0) return r * defs[k].sign;
    }
    if (ea.container !== eb.container) return ea.container ? -1 : 1;
    const t = naturalComparePrepared(ea.title, eb.title);
    if (t !== 0) return t;
    return ordinal(ea.id, eb.id);
  };
  return { entry, compare };
}

/**
 * The first `n` of `items` in the order of `cmp` (a total order), as `items.sort(cmp).slice(0, n)`
 * would give, without sorting the rest: one comparison for most items when n is small (the
 * page of a Search among thousands of matches). `items` is left as it was.
 */
export function firstSorted<T>(items: readonly T[], cmp: (a: T, b: T) => number, n: number): T[] {
  if (n <= 0) return [];
  if (n * 4 >= items.length) return [...items].sort(cmp).slice(0, n);
  const best: T[] = [];
  for (const x of items) {
    if (best.length === n && cmp(x, best[n - 1]) >= 0) continue;
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp(best[mid], x) <= 0) lo = mid + 1;
      else hi = mid;
    }
    best.splice(lo, 0, x);
    if (best.length > n) best.pop();
  }
  return best;
}

/**
 * The default order (no SortCriteria): containers first, natural-order title, then @id.
 * Same order as compileSort([]) but without a per-object cache, so it is safe to keep
 * for the lifetime of the process.
 */
export function defaultCompare(a: CatalogObject, b: CatalogObject): number {
  if (a === b) return 0;
  if (a.container !== b.container) return a.container ? -1 : 1;
  const t = naturalCompare(a.title ?? '', b.title ?? '');
  if (t !== 0) return t;
  return ordinal(a.id, b.id);
}
