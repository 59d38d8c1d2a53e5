// A Search whose cost does not grow with its number of matches: criteria made of one dc:title
// `contains` of a single word and terms on upnp:class only (`upnp:class derivedfrom
// "object.item.audioItem" and dc:title contains "river"`), from the root, in the default order,
// answering items only. Such a Search is answered from the word's sorted title postings and its
// counts (catalog/words.ts):
//   TotalMatches  the word's posting counts of the record classes the criteria accept (a class
//                 is tested on a stand-in object with that class and the word as its title), plus
//                 the matches among the overflow postings (objects with too many title words);
//   the page      the head of the word's item postings, in key order = the default order, merged
//                 with the few objects whose titles are too long for a key (seg '2') and the
//                 overflow matches, ordered by defaultCompare.
// A constant that is one word (no separator) is contained in a title exactly when one of the
// title's words contains it, so with exactly one vocabulary word containing it, its postings are
// the matches (minus what the class terms reject) and each object is posted once. Anything else
// (several vocabulary words contain the fragment, a container class accepted, many overflow
// postings, a page far down the list, a key whose order differs between the stores: a character
// at or above U+D800 in a title key) returns undefined and the caller takes the general path,
// which gives the same answer by reading every candidate.

import type { Catalog } from '../catalog/catalog.js';
import type { CatalogObject } from '../catalog/types.js';
import { classOfKey, LONG, OVERFLOW, words } from '../catalog/words.js';
import { recordObject } from './search-plan.js';
import type { SearchExpr } from './search.js';
import { defaultCompare, firstSorted } from './sort.js';
import { foldText } from '../util/fold.js';

/** Pages ending further down the list than this take the general path. */
export const MAX_SORTED_END = 5000;
/** Overflow postings, or long titles of the word, beyond this: the general path. */
const MAX_EXTRAS = 1000;
/** A key's title part with a character whose order differs between UTF-16 and UTF-8 (surrogates, U+E000-U+FFFF). */
const HIGH = /[\ud800-\uffff]/;

export interface SortedPage {
  total: number;
  /** The page, in order: record stand-ins (title, class, container flag) or whole objects. */
  page: CatalogObject[];
  /** Which of `page` are whole objects. */
  whole: Set<CatalogObject>;
}

/** The constant of the single dc:title contains term when the rest of `e` reads upnp:class only; else undefined. */
export function singleTitleWord(e: SearchExpr): string | undefined {
  const terms: SearchExpr[] = [];
  const flat = (x: SearchExpr): boolean => {
    if (x.type === 'and') return x.args.every(flat);
    terms.push(x);
    return x.type === 'rel' || x.type === 'exists';
  };
  if (!flat(e)) return undefined;
  let value: string | undefined;
  for (const t of terms) {
    if (t.type === 'rel' && t.prop === 'dc:title' && t.op === 'contains' && value === undefined) value = t.value;
    else if ((t.type !== 'rel' && t.type !== 'exists') || t.prop !== 'upnp:class') return undefined;
  }
  if (value === undefined) return undefined;
  const ws = words(value);
  return ws.length === 1 && ws[0] === foldText(value) ? value : undefined;
}

/**
 * The page [start, start + count) and TotalMatches of `e` from the root in the default order,
 * or undefined when this path cannot answer it exactly (see the top). `acceptItem`: whether an
 * item is a match (the class hint and the predicate, as the general path tests it);
 * `acceptContainer` the same for a container.
 */
export async function sortedTitleSearch(
  catalog: Catalog,
  e: SearchExpr,
  acceptItem: (o: CatalogObject) => boolean,
  acceptContainer: (o: CatalogObject) => boolean,
  start: number,
  count: number,
): Promise<SortedPage | undefined> {
  const end = start + count;
  if (count <= 0 || end > MAX_SORTED_END) return undefined;
  const value = singleTitleWord(e);
  if (value === undefined) return undefined;
  const ws = catalog.titleWordsContaining(foldText(value));
  if (ws.length > 1) return undefined;
  const word = ws[0];

  // TotalMatches of the word's postings: a count per record class the criteria accept
  let total = 0;
  if (word !== undefined) {
    for (const [ck, n] of Object.entries(catalog.titleCounts(word))) {
      if (ck === LONG) continue;
      const r = classOfKey(ck);
      if (!r) return undefined;
      const stand = { id: '', parentId: '', container: r.container, upnpClass: r.upnpClass, title: value };
      if (r.container) {
        if (acceptContainer(stand)) return undefined;
      } else if (acceptItem(stand)) total += n;
    }
  }

  // objects read whole: overflow postings (tested, and counted) and the word's long titles
  const whole = new Set<CatalogObject>();
  const extras: CatalogObject[] = [];
  const readWhole = async (entries: [string, string, string][], counted: boolean): Promise<boolean> => {
    const ids: string[] = [];
    for (const [, id, rec] of entries) {
      const stand = recordObject(id, rec);
      if (stand && !stand.container) {
        if (acceptItem(stand)) (extras.push(stand), counted || total++);
      } else ids.push(id);
    }
    for (const o of ids.length ? await catalog.getMany(ids) : []) {
      if (o.container) {
        if (acceptContainer(o)) return false;
      } else if (acceptItem(o)) {
        whole.add(o);
        extras.push(o);
        if (!counted) total++;
      }
    }
    return true;
  };
  const overflow = Object.entries(catalog.titleCounts(OVERFLOW)).reduce((a, [ck, n]) => a + (ck === LONG ? 0 : n), 0);
  if (overflow > MAX_EXTRAS) return undefined;
  if (overflow > 0)
    for (const group of ['0', '1', '2'] as const) {
      if (!(await readWhole(await catalog.titlePostings(OVERFLOW, group, MAX_EXTRAS + 1), false))) return undefined;
    }
  if (word === undefined) return { total, page: firstSorted(extras, defaultCompare, end).slice(start), whole };
  const long = catalog.titleCounts(word)[LONG] ?? 0;
  if (long > MAX_EXTRAS) return undefined;
  if (long > 0 && !(await readWhole(await catalog.titlePostings(word, '2', MAX_EXTRAS + 1), true))) return undefined;

  // the head of the word's item postings: already in the default order
  const head: CatalogObject[] = [];
  let after: string | undefined;
  let chunk = end + 16;
  while (head.length < end) {
    const got = await catalog.titlePostings(word, '1', chunk, after);
    for (const [key, id, rec] of got) {
      if (HIGH.test(key.slice(key.indexOf('\u0000')))) return undefined;
      const stand = recordObject(id, rec);
      if (!stand) return undefined;
      if (acceptItem(stand)) head.push(stand);
      if (head.length === end) break;
    }
    if (got.length < chunk) break;
    after = got[got.length - 1][0];
    chunk = Math.min(chunk * 2, 4096);
  }
  const all = extras.length ? firstSorted([...head, ...extras], defaultCompare, end) : head;
  return { total, page: all.slice(start, end), whole };
}
