// Word index of the catalog: what Search uses instead of testing every object.
//
// Key spaces:
//   x/<field>/<word>\0<objectId>   posting: the object has <word> in <field>
//   x/t/<word>\0<seg>\0<objectId>  a dc:title word posting (the overflow word included): in the
//                                  default Search order, see "sorted title postings" below
//   x/<field>/=<value>\0<objectId> exact posting: a value of <field>, lower-cased, is <value>
//   x/v/<field>/<word>             vocabulary: <word> occurs (or occurred) in <field>; for dc:title
//                                  the value counts the word's postings per record class (below),
//                                  for the other fields it is empty
//
// Every dc:title posting (field t) of an object carries the object's record as its value:
// 'c' (container) or 'i' (item), its upnp:class, '\0', its dc:title. A standard class is
// written as one letter (its place in CLASS_CODES, from 'A'), any other as '~' and the class.
// With it a Search whose criteria and sort only read @id, upnp:class and dc:title is answered
// from the posting lists alone: the predicate runs on the record, the matches are counted and
// ordered, and only the returned page is read from o/. Such criteria narrow by dc:title terms
// only, so the other fields' postings have empty values (catalogs indexed before may still
// hold records there: nothing reads them). A title longer than MAX_RECORD_TITLE is left out
// of the record ('C' / 'I' instead of 'c' / 'i'): such an object is read and tested whole. A
// change of the record rewrites all of the object's title postings in the same batch as the
// object.
//
// Fields group the text properties SearchCriteria compares:
//   t  dc:title                                  (items and containers)
//   p  upnp:artist, upnp:albumArtist, dc:creator (the people of an item)
//   a  upnp:album
//   g  upnp:genre
// A word is a maximal run of letters, digits and combining marks of the text after foldText
// (util/fold.ts: NFKC and full case folding), the same folding the search matchers use. So an
// object whose property contains a constant has, for every word w of the folded constant, a word
// of its own that contains w (w cannot cross a separator); and an object whose property
// equals the constant has every such w as a whole word. The index therefore yields a
// superset of the matches; the search predicate is still applied to every candidate.
//
// `p = "v"` reads the exact postings of "v" (a value longer than MAX_VALUE is posted
// as the empty value, which every such query reads too). Words never contain '=', so
// the two kinds of posting cannot collide.
//
// An object with more than MAX_WORDS words in a field, or a word longer than MAX_WORD,
// is posted under the empty word instead (OVERFLOW): every query of that field takes
// those postings as candidates too, so bounded keys never cost a missed match.
//
// Sorted title postings: <seg> is '0' (container) or '1' (item) and the naturalSortKey of the
// title, so a word's list is in the default order of Search results (containers first, natural
// title, then ID: sort.ts defaultCompare) and a page of a one-word title Search is the head of
// the list; an object whose title is too long for a record or a key has seg '2' and sorts after
// the others (the reader orders those few itself).
//
// Title counts: the vocabulary entry of a dc:title word (x/v/t/ for the overflow word) holds, as
// JSON, how many postings of each record class (the record's container flag, lower-cased, and
// class code: 'iA' a music track) the word has, and under LONG how many of them are in seg '2', kept in the same batch as the postings (Vocabulary.countDelta, stage),
// so TotalMatches of a one-word title Search restricted by class is a sum of a few counts.
//
// The vocabulary only grows (an entry whose last posting went away is harmless: its
// range is empty); it is held in memory as one string per field, so a `contains` finds
// its words with indexOf over a few hundred kilobytes instead of a range scan.

import { naturalSortKey } from '../upnp/sort.js';
import { foldText } from '../util/fold.js';
import type { BatchOp } from './store.js';
import type { CatalogObject } from './types.js';

export const X = 'x/';
const XV = 'x/v/';
const SEP = '\u0000';

export type WordField = 't' | 'p' | 'a' | 'g';
export const WORD_FIELDS: readonly WordField[] = ['t', 'p', 'a', 'g'];

/** Index version: a catalog whose meta/wordIndex differs is re-indexed on open (5: words and exact values are foldText'ed). */
export const WORD_INDEX_VERSION = '5';

const WORD_RE = /[\p{L}\p{N}\p{M}]+/gu;

export const MAX_WORDS = 64;
export const MAX_WORD = 64;
export const MAX_VALUE = 200;
/** The posting word of an object whose field is too long to index word by word. */
export const OVERFLOW = '';

/** Words of a text, folded as the search matchers fold it (deduplicated, in order). */
export function words(text: string | undefined): string[] {
  if (!text) return [];
  const m = foldText(text).match(WORD_RE);
  return m ? [...new Set(m)] : [];
}

function fieldTexts(obj: CatalogObject, f: WordField): (string | undefined)[] {
  const m = obj.meta;
  switch (f) {
    case 't':
      return [obj.title];
    case 'p':
      return m ? [m.artist, m.albumArtist, m.creator] : [];
    case 'a':
      return [m?.album];
    case 'g':
      return [m?.genre];
  }
}

/** The exact-posting word of the values longer than MAX_VALUE. */
export const OVERFLOW_VALUE = '=';

/** The exact-posting word of a value (see the key spaces above). */
export function exactWord(value: string): string {
  const v = foldText(value);
  return v.length > MAX_VALUE ? OVERFLOW_VALUE : '=' + v;
}

/** field → posting words of one object: its words and its exact values. */
export function objectWords(obj: CatalogObject | undefined): Map<WordField, Set<string>> {
  const out = new Map<WordField, Set<string>>();
  if (!obj) return out;
  for (const f of WORD_FIELDS) {
    // each text folded once, for its words and for its exact value (exactWord); the scan posts
    // every new object: no intermediate sets or arrays per text
    let s: Set<string> | undefined;
    let long = false;
    let exact: string[] | undefined;
    for (const t of fieldTexts(obj, f)) {
      if (!t) continue;
      const v = foldText(t);
      const m = v.match(WORD_RE);
      if (m) {
        s ??= new Set<string>();
        for (const w of m) {
          s.add(w);
          if (w.length > MAX_WORD) long = true;
        }
      }
      (exact ??= []).push(v.length > MAX_VALUE ? OVERFLOW_VALUE : '=' + v);
    }
    if (!exact) continue;
    const posted = !s ? new Set<string>() : s.size > MAX_WORDS || long ? new Set([OVERFLOW]) : s;
    for (const e of exact) posted.add(e);
    out.set(f, posted);
  }
  return out;
}

/** Longest dc:title a posting's record holds (a longer one is read from the object). */
export const MAX_RECORD_TITLE = 256;

/** Classes a record writes as one letter ('A' + index). Part of the index format: append only (or change WORD_INDEX_VERSION). */
const CLASS_CODES = [
  'object.item.audioItem.musicTrack',
  'object.item.videoItem.movie',
  'object.item.imageItem.photo',
  'object.container.storageFolder',
  'object.container.person.musicArtist',
  'object.container.album.musicAlbum',
  'object.container.genre.musicGenre',
  'object.container.album.photoAlbum',
  'object.container.playlistContainer',
  'object.container',
  'object.item',
  'object.item.audioItem',
  'object.item.videoItem',
  'object.item.imageItem',
  'object.item.audioItem.audioBook',
  'object.item.audioItem.audioBroadcast',
  'object.item.videoItem.musicVideoClip',
  'object.item.videoItem.videoBroadcast',
  'object.item.textItem',
  'object.item.playlistItem',
  'object.container.person',
  'object.container.album',
  'object.container.genre',
  'object.container.genre.movieGenre',
  'object.container.storageVolume',
  'object.container.storageSystem',
];
const CODE_OF = new Map(CLASS_CODES.map((c, i) => [c, String.fromCharCode(65 + i)]));

/** The value of every posting of `obj` (see the key spaces above). */
export function postingRecord(obj: CatalogObject): string {
  const title = obj.title ?? '';
  const cls = CODE_OF.get(obj.upnpClass) ?? '~' + obj.upnpClass;
  return title.length <= MAX_RECORD_TITLE ? (obj.container ? 'c' : 'i') + cls + SEP + title : (obj.container ? 'C' : 'I') + cls + SEP;
}

/** What a posting's record tells of its object; title undefined: not held, read the object. */
export interface PostingRecord {
  container: boolean;
  upnpClass: string;
  title: string | undefined;
}

/** Parses a posting value; undefined when it holds no record (an empty value). */
export function parseRecord(v: string): PostingRecord | undefined {
  const k = v.indexOf(SEP);
  if (k < 2) return undefined;
  const upnpClass = v.charCodeAt(1) === 126 /* ~ */ ? v.slice(2, k) : CLASS_CODES[v.charCodeAt(1) - 65];
  if (upnpClass === undefined) return undefined;
  const flag = v.charCodeAt(0);
  const full = flag === 105 /* i */ || flag === 99; /* c */
  return { container: flag === 99 || flag === 67 /* C */, upnpClass, title: full ? v.slice(k + 1) : undefined };
}

/** Longest natural sort key a title posting's key holds (a longer title's postings take seg '2'). */
export const MAX_SORT_KEY = 512;

/** Whether the postings of `word` in `f` are sorted title postings (every dc:title word but the exact values). */
export const isSortedPosting = (f: WordField, word: string) => f === 't' && word.charCodeAt(0) !== 61; /* = */

/** The <seg> of an object's sorted title postings (see above). */
export function titleSortSeg(obj: CatalogObject): string {
  const title = obj.title ?? '';
  if (title.length > MAX_RECORD_TITLE) return '2';
  const k = naturalSortKey(title);
  return k.length > MAX_SORT_KEY ? '2' : (obj.container ? '0' : '1') + k;
}

/** The count key of a word's postings in seg '2' (titles too long for a key), beside its class keys. */
export const LONG = 'L';

/** The count key of a record: its container flag (lower-cased) and class code, e.g. 'iA'. */
export function recordClassKey(rec: string): string {
  const k = rec.indexOf(SEP);
  return rec.charAt(0).toLowerCase() + rec.slice(1, k);
}

/** The class of a count key (recordClassKey) as a record without title tells it. */
export function classOfKey(key: string): PostingRecord | undefined {
  return parseRecord(key.charAt(0).toUpperCase() + key.slice(1) + SEP);
}

/** Key of a posting; `seg` (titleSortSeg) is needed for sorted title postings only. */
export const postingKey = (f: WordField, word: string, id: string, seg = '') => X + f + '/' + word + SEP + (isSortedPosting(f, word) ? seg + SEP : '') + id;
export const postingPrefix = (f: WordField, word: string) => X + f + '/' + word + SEP;
export const vocabKey = (f: WordField, word: string) => XV + f + '/' + word;
export const vocabPrefix = XV;

/** In-memory vocabulary per field: a joined string searched with indexOf. */
export class Vocabulary {
  private sets = new Map<WordField, Set<string>>(WORD_FIELDS.map((f) => [f, new Set<string>()]));
  private joined = new Map<WordField, string>();

  has(f: WordField, w: string): boolean {
    return this.sets.get(f)!.has(w);
  }
  add(f: WordField, w: string): void {
    const s = this.sets.get(f)!;
    if (s.has(w)) return;
    s.add(w);
    this.joined.delete(f);
  }
  /** Every vocabulary word of the field that contains `part`. */
  containing(f: WordField, part: string): string[] {
    let j = this.joined.get(f);
    if (j === undefined) {
      j = '\n' + [...this.sets.get(f)!].join('\n') + '\n';
      this.joined.set(f, j);
    }
    const out: string[] = [];
    let from = 0;
    for (;;) {
      const k = j.indexOf(part, from);
      if (k < 0) break;
      const a = j.lastIndexOf('\n', k) + 1;
      const b = j.indexOf('\n', k + part.length);
      out.push(j.slice(a, b));
      from = b;
    }
    return out;
  }
  /** Parses a vocabulary key (from a scan of vocabPrefix) into the vocabulary, with its value when read. */
  addKey(key: string, value = ''): void {
    const f = key.charAt(XV.length) as WordField;
    if (!this.sets.has(f)) return;
    const w = key.slice(XV.length + 2);
    if (w !== OVERFLOW) this.add(f, w); // the overflow word's entry holds its counts only
    if (f === 't' && value) this.counts.set(w, value);
  }

  /** dc:title word → its postings per record class (JSON of recordClassKey → count), committed. */
  private counts = new Map<string, string>();
  /** Changes of the counts in the batch being built: word → class key → delta. */
  private pending = new Map<string, Map<string, number>>();

  /** Postings of a dc:title word per record class key (empty when it has none). */
  titleCounts(w: string): Record<string, number> {
    const j = this.counts.get(w);
    return j ? (JSON.parse(j) as Record<string, number>) : {};
  }

  /** One posting of `w` (dc:title) of class key `ck` more (+1) or less (-1) in the batch being built. */
  countDelta(w: string, ck: string, d: number): void {
    let m = this.pending.get(w);
    if (!m) this.pending.set(w, (m = new Map()));
    m.set(ck, (m.get(ck) ?? 0) + d);
  }

  /** Forgets the count changes of a batch that was never staged (its write failed half-way). */
  discardPending(): void {
    this.pending = new Map();
  }

  /**
   * Adds the vocabulary entries of the counts changed since the last stage to `ops` (a later put
   * of a key wins in a batch) and returns what makes them current once the batch is stored; a
   * batch that fails leaves the counts as they were.
   */
  stage(ops: BatchOp[]): () => void {
    const next = new Map<string, string>();
    for (const [w, m] of this.pending) {
      const c = this.titleCounts(w);
      for (const [ck, d] of m) {
        const n = (c[ck] ?? 0) + d;
        if (n > 0) c[ck] = n;
        else delete c[ck];
      }
      const j = JSON.stringify(c);
      next.set(w, j);
      ops.push({ type: 'put', key: vocabKey('t', w), value: j });
    }
    this.pending = new Map();
    return () => {
      for (const [w, j] of next) this.counts.set(w, j);
    };
  }
}

/**
 * Batch ops that move an object's postings from `old` to `next` (either may be
 * undefined: a new or a removed object). Words the vocabulary lacks are put too and
 * collected in `added`; the caller adds them to the vocabulary once the batch is stored.
 */
export function wordOps(id: string, old: CatalogObject | undefined, next: CatalogObject | undefined, vocab: Vocabulary, added: Set<string>, ops: BatchOp[]): void {
  const ow = objectWords(old);
  const nw = objectWords(next);
  const rec = next && postingRecord(next);
  const oldRec = old && postingRecord(old);
  // a new record (class or title changed) goes into every title posting, the kept ones too
  const rewrite = !old || rec !== oldRec;
  const oSeg = old ? titleSortSeg(old) : '';
  const nSeg = next ? titleSortSeg(next) : '';
  const oCk = oldRec && recordClassKey(oldRec);
  const nCk = rec && recordClassKey(rec);
  // what each title word of the object adds to its counts: its record class and, in seg '2', LONG
  const oCounts = oCk === undefined ? [] : oSeg === '2' ? [oCk, LONG] : [oCk];
  const nCounts = nCk === undefined ? [] : nSeg === '2' ? [nCk, LONG] : [nCk];
  const recount = oCounts.join() !== nCounts.join();
  for (const f of WORD_FIELDS) {
    const o = ow.get(f);
    const n = nw.get(f);
    if (o)
      for (const w of o) {
        const counted = f === 't' && w.charCodeAt(0) !== 61; /* = */
        const ok = postingKey(f, w, id, oSeg);
        const kept = n?.has(w);
        if (kept && postingKey(f, w, id, nSeg) === ok) {
          if (counted && recount) for (const ck of oCounts) vocab.countDelta(w, ck, -1);
          continue;
        }
        ops.push({ type: 'del', key: ok });
        if (counted && (!kept || recount)) for (const ck of oCounts) vocab.countDelta(w, ck, -1);
      }
    if (n)
      for (const w of n) {
        const counted = f === 't' && w.charCodeAt(0) !== 61; /* = */
        const nk = postingKey(f, w, id, nSeg);
        const kept = o?.has(w);
        if (counted && (!kept || recount)) for (const ck of nCounts) vocab.countDelta(w, ck, +1);
        if (kept && (f !== 't' || (!rewrite && nk === postingKey(f, w, id, oSeg)))) continue;
        ops.push({ type: 'put', key: nk, value: f === 't' ? rec! : '' });
        if (kept || w === OVERFLOW || w.charCodeAt(0) === 61 /* = */ || vocab.has(f, w)) continue;
        const vk = vocabKey(f, w);
        if (!added.has(vk)) {
          added.add(vk);
          ops.push({ type: 'put', key: vk, value: '' });
        }
      }
  }
}
