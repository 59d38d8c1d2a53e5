// Word index of the catalog: what Search uses instead of testing every object.
//
// Key spaces:
//   x/<field>/<word>\0<objectId>   posting: the object has <word> in <field>
//   x/<field>/=<value>\0<objectId> exact posting: a value of <field>, lower-cased, is <value>
//   x/v/<field>/<word>             vocabulary: <word> occurs (or occurred) in <field> (value empty)
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
// A word is a maximal run of letters, digits and combining marks of the text after
// String#toLowerCase, the same lowering the search matchers use. So an object whose
// property contains a constant has, for every word w of the lowered constant, a word
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
// The vocabulary only grows (an entry whose last posting went away is harmless: its
// range is empty); it is held in memory as one string per field, so a `contains` finds
// its words with indexOf over a few hundred kilobytes instead of a range scan.

import type { BatchOp } from './store.js';
import type { CatalogObject } from './types.js';

export const X = 'x/';
const XV = 'x/v/';
const SEP = '\u0000';

export type WordField = 't' | 'p' | 'a' | 'g';
export const WORD_FIELDS: readonly WordField[] = ['t', 'p', 'a', 'g'];

/** Index version: a catalog whose meta/wordIndex differs is re-indexed on open. */
export const WORD_INDEX_VERSION = '3';

const WORD_RE = /[\p{L}\p{N}\p{M}]+/gu;

export const MAX_WORDS = 64;
export const MAX_WORD = 64;
export const MAX_VALUE = 200;
/** The posting word of an object whose field is too long to index word by word. */
export const OVERFLOW = '';

/** Words of a text, lower-cased as the search matchers lower it (deduplicated, in order). */
export function words(text: string | undefined): string[] {
  if (!text) return [];
  const m = text.toLowerCase().match(WORD_RE);
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
  const v = value.toLowerCase();
  return v.length > MAX_VALUE ? OVERFLOW_VALUE : '=' + v;
}

/** field → posting words of one object: its words and its exact values. */
export function objectWords(obj: CatalogObject | undefined): Map<WordField, Set<string>> {
  const out = new Map<WordField, Set<string>>();
  if (!obj) return out;
  for (const f of WORD_FIELDS) {
    const s = new Set<string>();
    const texts = fieldTexts(obj, f).filter((t): t is string => !!t);
    for (const t of texts) for (const w of words(t)) s.add(w);
    const posted = s.size > MAX_WORDS || [...s].some((w) => w.length > MAX_WORD) ? new Set([OVERFLOW]) : s;
    for (const t of texts) posted.add(exactWord(t));
    if (posted.size) out.set(f, posted);
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

export const postingKey = (f: WordField, word: string, id: string) => X + f + '/' + word + SEP + id;
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
  /** Parses a vocabulary key (from a scan of vocabPrefix) into the vocabulary. */
  addKey(key: string): void {
    const f = key.charAt(XV.length) as WordField;
    if (this.sets.has(f)) this.add(f, key.slice(XV.length + 2));
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
  // a new record (class or title changed) goes into every title posting, the kept ones too
  const rewrite = !old || rec !== postingRecord(old);
  for (const f of WORD_FIELDS) {
    const o = ow.get(f);
    const n = nw.get(f);
    if (o) for (const w of o) if (!n?.has(w)) ops.push({ type: 'del', key: postingKey(f, w, id) });
    if (n)
      for (const w of n) {
        if (o?.has(w) && (f !== 't' || !rewrite)) continue;
        ops.push({ type: 'put', key: postingKey(f, w, id), value: f === 't' ? rec! : '' });
        const vk = vocabKey(f, w);
        if (w !== OVERFLOW && w.charCodeAt(0) !== 61 /* = */ && !vocab.has(f, w) && !added.has(vk)) {
          added.add(vk);
          ops.push({ type: 'put', key: vk, value: '' });
        }
      }
  }
}
