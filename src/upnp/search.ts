// SearchCriteria of UPnP ContentDirectory:1 (§2.5.5): parser, compiler and index hints.
//
//   searchCrit ::= searchExp | '*'
//   searchExp  ::= relExp | searchExp logOp searchExp | '(' searchExp ')'
//   logOp      ::= 'and' | 'or'                      ('and' binds tighter than 'or')
//   relExp     ::= property binOp quotedVal | property 'exists' ('true' | 'false')
//   binOp      ::= '=' | '!=' | '<' | '<=' | '>' | '>=' | 'contains' | 'doesNotContain' | 'derivedfrom'
//   quotedVal  ::= '"' ( any char except '"' and '\' | '\"' | '\\' )* '"'
//
// Leniency (what real clients send and most servers take):
// - whitespace is optional wherever the token boundary is unambiguous: `dc:title="x"`,
//   `(a="1")and(b="2")`, `x = "1"or y = "2"`;
// - keywords (and, or, contains, doesNotContain, derivedfrom, exists, true, false) and
//   property names are case-insensitive;
// - an empty (or all-whitespace) SearchCriteria means the same as '*';
// - derivedfrom ignores a trailing '.' in its class ("object.item." = "object.item").
// Everything else is rejected with SearchError (UPnP error 708) naming the offset of the
// offending token: unknown operators, unquoted or single-quoted values, unterminated
// strings, escapes other than \" and \\, missing operands, unbalanced parentheses,
// trailing tokens, exists without true/false, unknown properties, derivedfrom on anything
// but upnp:class, non-numeric constants compared with numeric properties.
//
// Semantics (documented here and pinned by test/search.test.ts):
// - text comparisons are case- and normalisation-insensitive (util/fold.ts foldText: NFKC and
//   full case folding, locale-independent, as the word index folds: "ÉTÉ" = "été", "ß" = "ss",
//   "e" + combining acute = "é"); classes and booleans compare lower-cased; object
//   IDs (@id, @parentID, @refID) compare exactly; numeric properties compare as numbers;
//   dc:date compares as an ISO 8601 string ('2021' < '2021-05-01' < '2022');
// - multi-valued properties (upnp:artist) match a positive operator (=, <, <=, >, >=,
//   contains, derivedfrom) when ANY value matches;
// - the negative operators are exact negations: `p != "v"` is `not (p = "v")` and
//   `p doesNotContain "v"` is `not (p contains "v")`. So they hold when NO value equals /
//   contains the constant, including when the property is missing;
// - a missing property never satisfies a positive operator;
// - `p exists true` holds when the object has at least one value for p.
// Nesting: parsing is iterative, so any number of redundant parentheses is fine; the
// resulting logical tree may be at most MAX_SEARCH_DEPTH and/or levels deep (real criteria
// use a handful), deeper trees are rejected rather than risking the stack.
// Size: parsing takes time linear in the criteria, but a Search tests each term against every
// candidate (the whole library when the index cannot narrow), so the ContentDirectory passes
// SEARCH_LIMITS: at most MAX_SEARCH_LENGTH characters and MAX_SEARCH_TERMS terms (relExps),
// beyond which the criteria are rejected (708) before any work. Real clients send a few hundred
// characters and a dozen terms at most; 60 KB of or-ed terms took ~1.7 s of CPU on 20k tracks.

import type { CatalogObject } from '../catalog/types.js';
import { foldText } from '../util/fold.js';
import { lookupProperty, type PropertyDef, type PropValue } from './properties.js';

/** UPnP error 708: "Unsupported or invalid search criteria". */
export class SearchError extends Error {
  readonly code = 708;
  /** 0-based offset in the criteria string of the offending token (length = end of input). */
  readonly position: number;
  constructor(message: string, position: number) {
    super(message);
    this.name = 'SearchError';
    this.position = position;
  }
}

export type RelOp = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type StringOp = 'contains' | 'doesNotContain' | 'derivedfrom';
export type BinOp = RelOp | StringOp;

export type SearchExpr =
  | { type: 'all' }
  | { type: 'and'; args: SearchExpr[] }
  | { type: 'or'; args: SearchExpr[] }
  /** prop is the canonical property name, value the unescaped constant. */
  | { type: 'rel'; prop: string; op: BinOp; value: string }
  | { type: 'exists'; prop: string; exists: boolean };

/** Maximum depth of nested and/or nodes (after flattening `a and b and c` into one node). */
export const MAX_SEARCH_DEPTH = 256;

/** Most characters of SearchCriteria a Search takes (SEARCH_LIMITS). */
export const MAX_SEARCH_LENGTH = 4096;
/** Most terms (comparisons and exists tests) of SearchCriteria a Search takes (SEARCH_LIMITS). */
export const MAX_SEARCH_TERMS = 64;

/** Bounds of one criteria (parseSearch); unset: unbounded (the parse is linear either way). */
export interface SearchLimits {
  maxLength?: number;
  maxTerms?: number;
}

/** What the ContentDirectory's Search takes. */
export const SEARCH_LIMITS: Readonly<SearchLimits> = { maxLength: MAX_SEARCH_LENGTH, maxTerms: MAX_SEARCH_TERMS };

// ---------------------------------------------------------------------------------------
// Lexer

type Tok =
  | { k: 'lp' | 'rp' | 'eof'; pos: number; text: string }
  | { k: 'word' | 'sym' | 'str'; pos: number; text: string };

const SPACE = 32;
const TAB = 9;
const LF = 10;
const VT = 11;
const FF = 12;
const CR = 13;
const LPAREN = 40;
const RPAREN = 41;
const DQUOTE = 34;
const BACKSLASH = 92;
const EQ = 61;
const BANG = 33;
const LT = 60;
const GT = 62;

function isWs(c: number): boolean {
  return c === SPACE || c === TAB || c === LF || c === VT || c === FF || c === CR;
}
function isSym(c: number): boolean {
  return c === EQ || c === BANG || c === LT || c === GT;
}

function describe(src: string, pos: number): string {
  if (pos >= src.length) return 'at end of criteria';
  const snippet = src.slice(pos, pos + 24).replace(/[\u0000-\u001f]/g, ' ');
  return `at offset ${pos} (near "${snippet}${pos + 24 < src.length ? '…' : ''}")`;
}

function indexOrEnd(s: string, ch: string, from: number): number {
  const k = s.indexOf(ch, from);
  return k < 0 ? s.length : k;
}

class Lexer {
  private i = 0;
  private nextQuote = -1;
  private nextBackslash = -1;
  constructor(private readonly src: string) {}

  fail(message: string, pos: number): never {
    throw new SearchError(`Invalid SearchCriteria: ${message} ${describe(this.src, pos)}`, pos);
  }

  next(): Tok {
    const s = this.src;
    const n = s.length;
    let i = this.i;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i >= n) {
      this.i = i;
      return { k: 'eof', pos: n, text: '' };
    }
    const start = i;
    const c = s.charCodeAt(i);
    if (c === LPAREN || c === RPAREN) {
      this.i = i + 1;
      return { k: c === LPAREN ? 'lp' : 'rp', pos: start, text: s[start] };
    }
    if (c === DQUOTE) return this.quoted(start);
    if (isSym(c)) {
      while (i < n && isSym(s.charCodeAt(i))) i++;
      this.i = i;
      return { k: 'sym', pos: start, text: s.slice(start, i) };
    }
    while (i < n) {
      const d = s.charCodeAt(i);
      if (isWs(d) || d === LPAREN || d === RPAREN || d === DQUOTE || isSym(d)) break;
      i++;
    }
    this.i = i;
    return { k: 'word', pos: start, text: s.slice(start, i) };
  }

  private quoted(start: number): Tok {
    const s = this.src;
    const n = s.length;
    let i = start + 1;
    let out = '';
    let chunk = i;
    for (;;) {
      // Jump to the next quote or backslash. The positions are memoised across calls so a
      // criteria with many strings (or many escapes) is still scanned in linear time.
      if (this.nextQuote < i) this.nextQuote = indexOrEnd(s, '"', i);
      if (this.nextBackslash < i) this.nextBackslash = indexOrEnd(s, '\\', i);
      const q = this.nextQuote;
      const b = this.nextBackslash;
      if (q === n && b === n) this.fail('unterminated string', start);
      if (q < b) {
        out += s.slice(chunk, q);
        this.i = q + 1;
        return { k: 'str', pos: start, text: out };
      }
      const e = s.charCodeAt(b + 1);
      if (b + 1 >= n) this.fail('unterminated string (ends in a backslash)', start);
      if (e !== DQUOTE && e !== BACKSLASH) this.fail(`bad escape '\\${s[b + 1]}' (only \\" and \\\\ are allowed)`, b);
      out += s.slice(chunk, b) + s[b + 1];
      i = b + 2;
      chunk = i;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Parser (operator precedence with explicit stacks: no recursion, whatever the nesting)

const BIN_OPS = new Map<string, BinOp>([
  ['contains', 'contains'],
  ['doesnotcontain', 'doesNotContain'],
  ['derivedfrom', 'derivedfrom'],
]);
const REL_OPS = new Set<string>(['=', '!=', '<', '<=', '>', '>=']);

const ALL: SearchExpr = { type: 'all' };

type LogOp = { kind: 'and' | 'or' | 'lp'; pos: number };

function logOpOf(t: Tok): 'and' | 'or' | undefined {
  if (t.k !== 'word' || t.text.length > 3) return undefined;
  const w = t.text.toLowerCase();
  return w === 'and' || w === 'or' ? w : undefined;
}

function showTok(t: Tok): string {
  if (t.k === 'eof') return 'end of criteria';
  if (t.k === 'str') return 'a quoted string';
  const text = t.text.length > 30 ? `${t.text.slice(0, 30)}…` : t.text;
  return `'${text}'`;
}

/**
 * Parses SearchCriteria into an AST. Throws SearchError (code 708) on anything invalid, or
 * past `limits` (longer than maxLength characters, more than maxTerms terms).
 */
export function parseSearch(criteria: string, limits: SearchLimits = {}): SearchExpr {
  if (typeof criteria !== 'string') throw new SearchError('Invalid SearchCriteria: not a string', 0);
  if (limits.maxLength !== undefined && criteria.length > limits.maxLength) {
    throw new SearchError(`Invalid SearchCriteria: too long (${criteria.length} characters, at most ${limits.maxLength} are taken)`, limits.maxLength);
  }
  const maxTerms = limits.maxTerms ?? Infinity;
  let terms = 0;
  let a = 0;
  let b = criteria.length;
  while (a < b && isWs(criteria.charCodeAt(a))) a++;
  while (b > a && isWs(criteria.charCodeAt(b - 1))) b--;
  if (a === b) return ALL;
  if (b - a === 1 && criteria.charCodeAt(a) === 42 /* * */) return ALL;

  const lex = new Lexer(criteria);
  const operands: SearchExpr[] = [];
  const depths: number[] = [];
  const ops: LogOp[] = [];

  const reduce = (): void => {
    const op = ops.pop()!;
    const kind = op.kind as 'and' | 'or';
    const r = operands.pop()!;
    const l = operands.pop()!;
    const dr = depths.pop()!;
    const dl = depths.pop()!;
    const depth = Math.max(l.type === kind ? dl : dl + 1, r.type === kind ? dr : dr + 1);
    if (depth > MAX_SEARCH_DEPTH) {
      lex.fail(`expression nested too deeply (more than ${MAX_SEARCH_DEPTH} and/or levels)`, op.pos);
    }
    // Binary while parsing (O(1) per operator); flatten() makes chains n-ary at the end.
    // depth already counts a same-operator chain as one level, as it will be after flattening.
    const node: SearchExpr = { type: kind, args: [l, r] };
    operands.push(node);
    depths.push(depth);
  };

  let expectOperand = true;
  let prev: Tok = { k: 'eof', pos: 0, text: '' };
  for (let t = lex.next(); ; prev = t, t = lex.next()) {
    if (expectOperand) {
      if (t.k === 'lp') {
        ops.push({ kind: 'lp', pos: t.pos });
        continue;
      }
      if (t.k === 'word') {
        if (logOpOf(t)) lex.fail(`missing operand before '${t.text}'`, t.pos);
        if (t.text === '*') lex.fail(`'*' is only allowed as the whole criteria`, t.pos);
        if (++terms > maxTerms) lex.fail(`too many terms (at most ${maxTerms} comparisons are taken)`, t.pos);
        operands.push(parseRel(lex, t));
        depths.push(0);
        expectOperand = false;
        continue;
      }
      if (t.k === 'eof') lex.fail(`missing operand after ${showTok(prev)}`, t.pos);
      if (t.k === 'rp') lex.fail(ops.length && ops[ops.length - 1].kind === 'lp' ? 'empty parentheses' : `missing operand before ')'`, t.pos);
      lex.fail(`expected a property name or '(' but found ${showTok(t)}`, t.pos);
    } else {
      const lo = logOpOf(t);
      if (lo) {
        // 'and' binds tighter than 'or'; both are left-associative.
        while (ops.length) {
          const top = ops[ops.length - 1].kind;
          if (top === 'lp' || (lo === 'and' && top === 'or')) break;
          reduce();
        }
        ops.push({ kind: lo, pos: t.pos });
        expectOperand = true;
        continue;
      }
      if (t.k === 'rp') {
        while (ops.length && ops[ops.length - 1].kind !== 'lp') reduce();
        if (!ops.length) lex.fail(`unbalanced ')'`, t.pos);
        ops.pop();
        continue;
      }
      if (t.k === 'eof') {
        while (ops.length) {
          if (ops[ops.length - 1].kind === 'lp') lex.fail(`unbalanced '(' (never closed)`, ops[ops.length - 1].pos);
          reduce();
        }
        return flatten(operands[0]);
      }
      lex.fail(`expected 'and', 'or', ')' or the end but found ${showTok(t)}`, t.pos);
    }
  }
}

/**
 * Turns chains of one operator (`a and b and c`, however parenthesised) into one n-ary
 * node, keeping operand order. Iterative along a chain, recursive only where the operator
 * changes, which the depth limit bounds.
 */
function flatten(e: SearchExpr): SearchExpr {
  if (e.type !== 'and' && e.type !== 'or') return e;
  const args: SearchExpr[] = [];
  const stack: SearchExpr[] = [e];
  while (stack.length) {
    const x = stack.pop()!;
    if (x.type === e.type) {
      for (let k = x.args.length - 1; k >= 0; k--) stack.push(x.args[k]);
    } else {
      args.push(flatten(x));
    }
  }
  return { type: e.type, args };
}

function parseRel(lex: Lexer, propTok: Tok): SearchExpr {
  const def = lookupProperty(propTok.text);
  if (!def) lex.fail(`unknown or unsupported property '${propTok.text.slice(0, 40)}'`, propTok.pos);
  const opTok = lex.next();
  if (opTok.k === 'eof') lex.fail(`missing operator after property '${def.name}'`, opTok.pos);
  let op: BinOp | 'exists';
  if (opTok.k === 'sym') {
    if (!REL_OPS.has(opTok.text)) lex.fail(`unknown operator '${opTok.text}'`, opTok.pos);
    op = opTok.text as RelOp;
  } else if (opTok.k === 'word') {
    const w = opTok.text.toLowerCase();
    if (w === 'exists') op = 'exists';
    else {
      const so = BIN_OPS.get(w);
      if (!so) lex.fail(`unknown operator ${showTok(opTok)}`, opTok.pos);
      op = so;
    }
  } else {
    lex.fail(`missing operator after property '${def.name}', found ${showTok(opTok)}`, opTok.pos);
  }

  const valTok = lex.next();
  if (op === 'exists') {
    const w = valTok.k === 'word' ? valTok.text.toLowerCase() : '';
    if (w !== 'true' && w !== 'false') lex.fail(`'exists' needs true or false, found ${showTok(valTok)}`, valTok.pos);
    return { type: 'exists', prop: def.name, exists: w === 'true' };
  }
  if (valTok.k !== 'str') {
    const hint = valTok.k === 'word' && valTok.text.startsWith("'") ? ' (values take double quotes)' : '';
    lex.fail(`'${op}' needs a double-quoted value, found ${showTok(valTok)}${hint}`, valTok.pos);
  }
  const value = valTok.text;
  if (op === 'derivedfrom' && def.type !== 'class') {
    lex.fail(`'derivedfrom' only applies to upnp:class, not '${def.name}'`, opTok.pos);
  }
  if (isOrdering(op) || op === '=' || op === '!=') {
    if (def.type === 'number' && numberConstant(def, value) === undefined) {
      lex.fail(`'${def.name}' is numeric, "${value.slice(0, 40)}" is not a number`, valTok.pos);
    }
    if (def.type === 'boolean' && booleanConstant(value) === undefined) {
      lex.fail(`'${def.name}' is boolean, "${value.slice(0, 40)}" is not 1, 0, true or false`, valTok.pos);
    }
  }
  return { type: 'rel', prop: def.name, op, value };
}

function isOrdering(op: BinOp): boolean {
  return op === '<' || op === '<=' || op === '>' || op === '>=';
}

const NUMBER_RE = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)\s*$/;
// DIDL-Lite duration: H+:MM:SS[.F+]; MM:SS accepted too.
const DURATION_RE = /^\s*(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$/;

function numberConstant(def: PropertyDef, value: string): number | undefined {
  if (NUMBER_RE.test(value)) return Number(value);
  if (def.name === 'res@duration') {
    const m = DURATION_RE.exec(value);
    if (m) return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  }
  return undefined;
}

function booleanConstant(value: string): '1' | '0' | undefined {
  const v = value.trim().toLowerCase();
  if (v === '1' || v === 'true') return '1';
  if (v === '0' || v === 'false') return '0';
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Compiler: the AST becomes a tree of closures; constants are lowered/parsed once here.

type Pred = (obj: CatalogObject) => boolean;
type Match = (v: PropValue) => boolean;

function lower(v: PropValue): string {
  return typeof v === 'string' ? foldText(v) : String(v);
}

function textMatcher(op: BinOp, c: string): Match {
  switch (op) {
    case '=':
    case '!=':
      return (v) => v === c || lower(v) === c;
    case '<':
      return (v) => lower(v) < c;
    case '<=':
      return (v) => lower(v) <= c;
    case '>':
      return (v) => lower(v) > c;
    case '>=':
      return (v) => lower(v) >= c;
    case 'contains':
    case 'doesNotContain':
      return (v) => lower(v).includes(c);
    case 'derivedfrom': {
      const len = c.length;
      return (v) => {
        const s = lower(v);
        return s.length === len ? s === c : s.length > len && s.charCodeAt(len) === 46 && s.startsWith(c);
      };
    }
  }
}

function exactMatcher(op: BinOp, c: string): Match {
  switch (op) {
    case '=':
    case '!=':
      return (v) => String(v) === c;
    case '<':
      return (v) => String(v) < c;
    case '<=':
      return (v) => String(v) <= c;
    case '>':
      return (v) => String(v) > c;
    case '>=':
      return (v) => String(v) >= c;
    case 'contains':
    case 'doesNotContain':
      return (v) => String(v).includes(c);
    case 'derivedfrom':
      throw new SearchError(`Invalid SearchCriteria: 'derivedfrom' only applies to upnp:class`, 0);
  }
}

function numberMatcher(op: BinOp, def: PropertyDef, raw: string): Match {
  if (op === 'contains' || op === 'doesNotContain') {
    // Substring of the decimal form, e.g. originalTrackNumber contains "1".
    return (v) => String(v).includes(raw);
  }
  if (op === 'derivedfrom') throw new SearchError(`Invalid SearchCriteria: 'derivedfrom' only applies to upnp:class`, 0);
  const n = numberConstant(def, raw);
  if (n === undefined) throw new SearchError(`Invalid SearchCriteria: '${def.name}' is numeric, "${raw}" is not a number`, 0);
  switch (op) {
    case '=':
    case '!=':
      return (v) => v === n;
    case '<':
      return (v) => (v as number) < n;
    case '<=':
      return (v) => (v as number) <= n;
    case '>':
      return (v) => (v as number) > n;
    case '>=':
      return (v) => (v as number) >= n;
  }
}

function compileRel(prop: string, op: BinOp, value: string): Pred {
  const def = lookupProperty(prop);
  if (!def) throw new SearchError(`Invalid SearchCriteria: unknown or unsupported property '${prop}'`, 0);
  let m: Match;
  switch (def.type) {
    case 'number':
      m = numberMatcher(op, def, value);
      break;
    case 'id':
      m = exactMatcher(op, value);
      break;
    case 'boolean': {
      const b = op === 'contains' || op === 'doesNotContain' ? undefined : booleanConstant(value);
      m = textMatcher(op, b ?? value.toLowerCase());
      break;
    }
    case 'class': {
      let c = value.toLowerCase();
      if (op === 'derivedfrom') while (c.endsWith('.')) c = c.slice(0, -1);
      m = textMatcher(op, c);
      break;
    }
    default:
      m = textMatcher(op, foldText(value));
  }
  const get = def.get;
  const any: Pred = (obj) => {
    const v = get(obj);
    if (v === undefined) return false;
    if (typeof v !== 'object') return m(v);
    for (let i = 0; i < v.length; i++) if (m(v[i])) return true;
    return false;
  };
  return op === '!=' || op === 'doesNotContain' ? (obj) => !any(obj) : any;
}

function compileExpr(e: SearchExpr): Pred {
  switch (e.type) {
    case 'all':
      return () => true;
    case 'exists': {
      const def = lookupProperty(e.prop);
      if (!def) throw new SearchError(`Invalid SearchCriteria: unknown or unsupported property '${e.prop}'`, 0);
      const get = def.get;
      const has: Pred = (obj) => {
        const v = get(obj);
        return v !== undefined && (typeof v !== 'object' || v.length > 0);
      };
      return e.exists ? has : (obj) => !has(obj);
    }
    case 'rel':
      return compileRel(e.prop, e.op, e.value);
    case 'and': {
      const ps = e.args.map(compileExpr);
      if (ps.length === 1) return ps[0];
      if (ps.length === 2) {
        const [p, q] = ps;
        return (o) => p(o) && q(o);
      }
      if (ps.length === 3) {
        const [p, q, r] = ps;
        return (o) => p(o) && q(o) && r(o);
      }
      return (o) => {
        for (let i = 0; i < ps.length; i++) if (!ps[i](o)) return false;
        return true;
      };
    }
    case 'or': {
      const ps = e.args.map(compileExpr);
      if (ps.length === 1) return ps[0];
      if (ps.length === 2) {
        const [p, q] = ps;
        return (o) => p(o) || q(o);
      }
      if (ps.length === 3) {
        const [p, q, r] = ps;
        return (o) => p(o) || q(o) || r(o);
      }
      return (o) => {
        for (let i = 0; i < ps.length; i++) if (ps[i](o)) return true;
        return false;
      };
    }
  }
}

/** Compiles an AST (from parseSearch) into a predicate. */
export function compileSearchExpr(expr: SearchExpr): (obj: CatalogObject) => boolean {
  return compileExpr(expr);
}

/**
 * Parses once and returns a predicate to evaluate against many objects. All constants are
 * lowered / converted to numbers here, nothing is compiled per object.
 * Throws SearchError (code 708) for invalid criteria.
 */
export function compileSearch(criteria: string): (obj: CatalogObject) => boolean {
  return compileExpr(parseSearch(criteria));
}

// ---------------------------------------------------------------------------------------
// Index hints

/** Standard ContentDirectory:1 classes, to give hints in canonical (index) spelling. */
const KNOWN_CLASSES = [
  'object',
  'object.item',
  'object.item.imageItem',
  'object.item.imageItem.photo',
  'object.item.audioItem',
  'object.item.audioItem.musicTrack',
  'object.item.audioItem.audioBroadcast',
  'object.item.audioItem.audioBook',
  'object.item.videoItem',
  'object.item.videoItem.movie',
  'object.item.videoItem.videoBroadcast',
  'object.item.videoItem.musicVideoClip',
  'object.item.playlistItem',
  'object.item.textItem',
  'object.container',
  'object.container.person',
  'object.container.person.musicArtist',
  'object.container.playlistContainer',
  'object.container.album',
  'object.container.album.musicAlbum',
  'object.container.album.photoAlbum',
  'object.container.genre',
  'object.container.genre.musicGenre',
  'object.container.genre.movieGenre',
  'object.container.storageSystem',
  'object.container.storageVolume',
  'object.container.storageFolder',
];
const CANONICAL_CLASS = new Map(KNOWN_CLASSES.map((c) => [c.toLowerCase(), c]));

/**
 * The hint for a class constant: its longest prefix (on a dot boundary) that is a standard
 * class, in canonical spelling. Catalog indexes compare class names case-sensitively while
 * matching is case-insensitive, so a non-standard tail (whose proper case is unknown) is
 * dropped: the hint gets broader, never wrong. A constant that does not start with a
 * standard class is returned as given (trailing dots removed).
 */
function classHintOf(value: string): string {
  let c = value;
  while (c.endsWith('.')) c = c.slice(0, -1);
  const lc = c.toLowerCase();
  let cut = lc.length;
  while (cut > 0) {
    const known = CANONICAL_CLASS.get(lc.slice(0, cut));
    if (known) return known;
    cut = lc.lastIndexOf('.', cut - 1);
  }
  return c;
}

function derives(cls: string, prefix: string): boolean {
  const a = cls.toLowerCase();
  const p = prefix.toLowerCase();
  return a === p || (a.startsWith(p) && a.charCodeAt(p.length) === 46);
}

/** Removes prefixes that derive from another prefix of the set (keeps the broader one). */
function minimalUnion(list: string[]): string[] {
  const unique: string[] = [];
  for (const p of list) if (!unique.some((q) => q.toLowerCase() === p.toLowerCase())) unique.push(p);
  return unique.filter((p) => !unique.some((q) => q !== p && derives(p, q)));
}

/** Matches of `both` must derive from a prefix in a and one in b: keep the narrower of each pair. */
function intersect(a: string[], b: string[]): string[] {
  const out: string[] = [];
  for (const p of a) {
    for (const q of b) {
      if (derives(p, q)) out.push(p);
      else if (derives(q, p)) out.push(q);
    }
  }
  return minimalUnion(out);
}

function classHint(e: SearchExpr): string[] | undefined {
  switch (e.type) {
    case 'rel':
      if (e.prop === 'upnp:class' && (e.op === 'derivedfrom' || e.op === '=')) return [classHintOf(e.value)];
      return undefined;
    case 'and': {
      let acc: string[] | undefined;
      for (const x of e.args) {
        const h = classHint(x);
        if (h) acc = acc ? intersect(acc, h) : h;
      }
      return acc;
    }
    case 'or': {
      const all: string[] = [];
      for (const x of e.args) {
        const h = classHint(x);
        if (!h) return undefined;
        for (const p of h) all.push(p);
      }
      return minimalUnion(all);
    }
    default:
      return undefined;
  }
}

/**
 * What the expression tells about candidates, so the catalog can use a class index
 * instead of testing every object. classPrefixes: every object the expression can match
 * has a upnp:class equal to, or derived (on a dot boundary) from, one of these prefixes;
 * spelled canonically (`object.item.audioItem`) even when the client wrote another case
 * (non-standard class names are cut back to their standard ancestor, see classHintOf).
 * An empty array means nothing can match. classPrefixes is undefined when the expression
 * does not constrain the class (e.g. '*', `dc:title contains "x"`, `upnp:class != "..."`).
 * The hint only narrows: the compiled predicate must still be applied to the candidates.
 */
export function searchHints(expr: SearchExpr): { classPrefixes?: string[] } {
  const h = classHint(expr);
  return h ? { classPrefixes: h } : {};
}
