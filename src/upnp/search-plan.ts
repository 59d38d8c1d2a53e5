// Which objects a SearchCriteria can match, from the catalog's word index (see
// catalog/words.ts), so Search reads those few objects instead of every one.
//
// candidates(expr) is a superset of the matches, or undefined when the index cannot
// narrow the expression (then every object is a candidate):
//   p = "v"          objects with a value of p's field equal to "v" (exact postings)
//   p contains "v"   objects having, for every word w of "v", a word containing w
//   a and b          the intersection of whatever a and b narrow
//   a or b           the union, when both narrow
// for p in dc:title, upnp:artist, upnp:albumArtist, dc:creator, upnp:album, upnp:genre.
// Everything else (other properties and operators, negations, constants without a
// word, fragments found in too many vocabulary words) does not narrow. The search predicate is applied to every candidate.
//
// The index work of one Search is bounded whatever the criteria (a SOAP body of 64 KiB can hold
// thousands of terms): a term repeated is looked up once, and after MAX_INDEX_LOOKUPS distinct
// lookups the remaining terms do not narrow (the predicate, applied to every candidate, decides).

import type { Catalog } from '../catalog/catalog.js';
import { words, type WordField } from '../catalog/words.js';
import type { SearchExpr } from './search.js';

const FIELD_OF: Record<string, WordField> = {
  'dc:title': 't',
  'upnp:artist': 'p',
  'upnp:albumArtist': 'p',
  'dc:creator': 'p',
  'upnp:album': 'a',
  'upnp:genre': 'g',
};

/** At most this many words of one constant are looked up (the longest: the most selective). */
const MAX_QUERY_WORDS = 4;

function intersect(a: Set<string>, b: Set<string>): Set<string> {
  const [small, big] = a.size <= b.size ? [a, b] : [b, a];
  const out = new Set<string>();
  for (const x of small) if (big.has(x)) out.add(x);
  return out;
}

async function relCandidates(catalog: Catalog, prop: string, op: string, value: string): Promise<Set<string> | undefined> {
  const field = FIELD_OF[prop];
  if (!field || (op !== '=' && op !== 'contains')) return undefined;
  if (op === '=') return catalog.valueCandidates(field, value);
  const ws = words(value)
    .sort((x, y) => y.length - x.length)
    .slice(0, MAX_QUERY_WORDS);
  if (ws.length === 0) return undefined;
  let acc: Set<string> | undefined;
  for (const w of ws) {
    const c = await catalog.wordCandidates(field, w);
    if (!c) continue; // too common a fragment to narrow by
    acc = acc ? intersect(acc, c) : c;
    if (acc.size === 0) break;
  }
  return acc;
}

/** Most distinct index lookups (terms) for one Search; real criteria use a handful. */
export const MAX_INDEX_LOOKUPS = 64;

/** The lookups of one Search: each distinct term once, at most MAX_INDEX_LOOKUPS of them. */
interface Lookups {
  memo: Map<string, Set<string> | undefined>;
  left: number;
}

/** IDs (canonical items and containers) the expression can match, or undefined: any object. */
export async function searchCandidates(catalog: Catalog, e: SearchExpr, lookups: Lookups = { memo: new Map(), left: MAX_INDEX_LOOKUPS }): Promise<Set<string> | undefined> {
  switch (e.type) {
    case 'rel': {
      const key = `${e.prop}\0${e.op}\0${e.value}`;
      if (lookups.memo.has(key)) return lookups.memo.get(key);
      if (!FIELD_OF[e.prop] || (e.op !== '=' && e.op !== 'contains') || lookups.left <= 0) return undefined;
      lookups.left--;
      const c = await relCandidates(catalog, e.prop, e.op, e.value);
      lookups.memo.set(key, c);
      return c;
    }
    case 'and': {
      let acc: Set<string> | undefined;
      for (const a of e.args) {
        const c = await searchCandidates(catalog, a, lookups);
        if (c) acc = acc ? intersect(acc, c) : c;
        if (acc?.size === 0) break;
      }
      return acc;
    }
    case 'or': {
      const out = new Set<string>();
      for (const a of e.args) {
        const c = await searchCandidates(catalog, a, lookups);
        if (!c) return undefined;
        for (const x of c) out.add(x);
      }
      return out;
    }
    default:
      return undefined;
  }
}
