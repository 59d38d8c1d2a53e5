// Which objects a SearchCriteria can match, from the catalog's word index (see
// catalog/words.ts), so Search reads those few objects instead of every one.
//
// candidates(expr) is a superset of the matches (object ID → the posting record, words.ts),
// or undefined when the index cannot narrow the expression (then every object is a candidate):
//   p = "v"          objects with a value of p's field equal to "v" (exact postings)
//   p contains "v"   objects having, for every word w of "v", a word containing w; for
//                    dc:title, when no word of "v" narrows (none, or each in too many
//                    vocabulary words): every object with a title (its records answer)
//   a and b          the intersection of whatever a and b narrow (every titled object
//                    only when nothing narrower is there)
//   a or b           the union, when both narrow
// for p in dc:title, upnp:artist, upnp:albumArtist, dc:creator, upnp:album, upnp:genre.
// Everything else (other properties and operators, negations, a fragment of another field
// that narrows nothing) does not narrow. The search predicate is applied to every candidate.
//
// The index work of one Search is bounded whatever the criteria (a SOAP body of 64 KiB can hold
// thousands of terms): a term repeated is looked up once, and after MAX_INDEX_LOOKUPS distinct
// lookups the remaining terms do not narrow (the predicate, applied to every candidate, decides).

import type { Catalog } from '../catalog/catalog.js';
import type { CatalogObject } from '../catalog/types.js';
import { parseRecord, words, type WordField } from '../catalog/words.js';
import type { SearchExpr } from './search.js';
import type { SortKey } from './sort.js';

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

/** Candidate objects: ID → posting record. */
export type Candidates = Map<string, string>;

function intersect(a: Candidates, b: Candidates): Candidates {
  const [small, big] = a.size <= b.size ? [a, b] : [b, a];
  const out: Candidates = new Map();
  for (const [id, rec] of small) if (big.has(id)) out.set(id, rec);
  return out;
}

/**
 * Deferred candidates "every object with a title" (catalog.valuedCandidates('t')): what a
 * dc:title contains narrows to when its fragment narrows nothing by words. Read only when
 * nothing narrower is at hand: an `and` with a narrower term leaves it to the predicate. Not
 * offered for the other fields: their matches are read and tested whole, so a list as long as
 * the library saves nothing over a pass; a title is answered by the posting's record.
 */
const TITLED = Symbol('titled');
type Plan = Candidates | typeof TITLED | undefined;

async function relCandidates(catalog: Catalog, prop: string, op: string, value: string): Promise<Plan> {
  const field = FIELD_OF[prop];
  if (!field || (op !== '=' && op !== 'contains')) return undefined;
  if (op === '=') return catalog.valueCandidates(field, value);
  const ws = words(value)
    .sort((x, y) => y.length - x.length)
    .slice(0, MAX_QUERY_WORDS);
  let acc: Candidates | undefined;
  for (const w of ws) {
    const c = await catalog.wordCandidates(field, w);
    if (!c) continue; // too common a fragment to narrow by
    acc = acc ? intersect(acc, c) : c;
    if (acc.size === 0) break;
  }
  return acc ?? (field === 't' ? TITLED : undefined);
}

/** Most distinct index lookups (terms) for one Search; real criteria use a handful. */
export const MAX_INDEX_LOOKUPS = 64;

/** The lookups of one Search: each distinct term once, at most MAX_INDEX_LOOKUPS of them. */
interface Lookups {
  memo: Map<string, Plan>;
  left: number;
  titled?: Candidates;
}

async function resolve(catalog: Catalog, p: Plan, lookups: Lookups): Promise<Candidates | undefined> {
  if (p !== TITLED) return p;
  return (lookups.titled ??= await catalog.valuedCandidates('t'));
}

/** IDs (canonical items and containers) the expression can match, or undefined: any object. */
export async function searchCandidates(catalog: Catalog, e: SearchExpr): Promise<Candidates | undefined> {
  const lookups: Lookups = { memo: new Map(), left: MAX_INDEX_LOOKUPS };
  return resolve(catalog, await plan(catalog, e, lookups), lookups);
}

async function plan(catalog: Catalog, e: SearchExpr, lookups: Lookups): Promise<Plan> {
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
      let acc: Candidates | undefined;
      let titled = false;
      for (const a of e.args) {
        const c = await plan(catalog, a, lookups);
        if (c === TITLED) titled = true;
        else if (c) acc = acc ? intersect(acc, c) : c;
        if (acc?.size === 0) break;
      }
      return acc ?? (titled ? TITLED : undefined);
    }
    case 'or': {
      const out: Candidates = new Map();
      for (const a of e.args) {
        const c = await resolve(catalog, await plan(catalog, a, lookups), lookups);
        if (!c) return undefined;
        for (const [id, rec] of c) out.set(id, rec);
      }
      return out;
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Answers from the posting records alone

/** The properties a posting record holds (words.ts): the object's ID, class and title. */
const RECORD_PROPS = new Set(['@id', 'upnp:class', 'dc:title']);

/** Whether the expression reads only what a posting record holds (then a record can be tested instead of the object). */
export function readsOnlyRecord(e: SearchExpr): boolean {
  switch (e.type) {
    case 'all':
      return true;
    case 'and':
    case 'or':
      return e.args.every(readsOnlyRecord);
    default:
      return RECORD_PROPS.has(e.prop);
  }
}

/** Whether a sort reads only what a posting record holds. */
export function sortsOnRecord(keys: readonly SortKey[]): boolean {
  return keys.every((k) => RECORD_PROPS.has(k.prop));
}

/**
 * The object a posting record stands for: ID, container flag, class and title, which is all
 * that predicates and sorts of the record's properties read (a canonical object has no refId,
 * so neither has this). Undefined when the record lacks the title (too long) or is missing.
 */
export function recordObject(id: string, value: string): CatalogObject | undefined {
  const r = parseRecord(value);
  if (!r || r.title === undefined) return undefined;
  return { id, parentId: '', container: r.container, upnpClass: r.upnpClass, title: r.title };
}
