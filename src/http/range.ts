// Parsing of the HTTP Range request header (RFC 9110 §14) for single byte ranges.
//
// Outcomes and what the caller does with them:
//   none           no Range header, or a Range header we deliberately ignore  -> 200, whole body
//   invalid        syntactically broken / unknown unit (RFC 9110 says ignore)  -> 200, whole body
//   range          one satisfiable byte range, `end` inclusive                  -> 206
//   unsatisfiable  syntactically fine but nothing of it overlaps the file       -> 416 `bytes */size`
//
// Choices (documented because the RFC leaves them to the server):
// - Several ranges (`bytes=0-1,5-6`) are ignored as a whole (`none`, i.e. 200 with the full
//   body), as nginx does past `max_ranges`. A 200 is always a correct answer to a Range request
//   (RFC 9110 §14.2: a server MAY ignore Range), whereas answering with only the first range
//   would hand clients that really wanted several parts a body they may not expect. DLNA
//   renderers send single ranges only. Empty list elements are skipped (`bytes=0-1,` is one
//   range), as the `#` list rule requires.
// - A suffix range on an empty file (`bytes=-5`, size 0) selects "the entire representation",
//   which is zero bytes and cannot be written as a Content-Range; it is answered as `none`
//   (200, empty body). Every other range on an empty file is unsatisfiable.
// - Whitespace around `=`, `,`, `-` and the numbers is tolerated; the unit is case-insensitive.

export type RangeResult =
  | { kind: 'none' }
  | { kind: 'range'; start: number; end: number /* inclusive */ }
  | { kind: 'unsatisfiable' }
  | { kind: 'invalid' };

const NONE: RangeResult = Object.freeze({ kind: 'none' });
const INVALID: RangeResult = Object.freeze({ kind: 'invalid' });
const UNSATISFIABLE: RangeResult = Object.freeze({ kind: 'unsatisfiable' });

/** Headers longer than this are not worth parsing (no sane client sends them). */
const MAX_HEADER_LENGTH = 1024;

const SPEC = /^[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/;

type Spec = { first: number; last: number | undefined } | { suffix: number };

function parseSpec(s: string): Spec | undefined {
  const m = SPEC.exec(s);
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined; // a bare "-"
  if (a === '') return { suffix: Number(b) };
  const first = Number(a);
  if (b === '') return { first, last: undefined };
  const last = Number(b);
  if (last < first) return undefined; // RFC 9110 §14.1.1: syntactically invalid
  return { first, last };
}

/**
 * Parses a Range header against a representation of `size` bytes.
 * Never throws; anything it does not understand is `invalid`.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return NONE;
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad representation size: ${size}`);
  if (header.length > MAX_HEADER_LENGTH) return INVALID;
  const eq = header.indexOf('=');
  if (eq < 0) return INVALID;
  const unit = header.slice(0, eq).trim().toLowerCase();
  if (unit !== 'bytes') return INVALID;

  const specs: Spec[] = [];
  for (const part of header.slice(eq + 1).split(',')) {
    if (part.trim() === '') continue; // empty list element
    const spec = parseSpec(part);
    if (!spec) return INVALID;
    specs.push(spec);
  }
  if (specs.length === 0) return INVALID;
  if (specs.length > 1) return NONE; // see the header comment: several ranges are ignored

  const spec = specs[0];
  if ('suffix' in spec) {
    if (spec.suffix === 0) return UNSATISFIABLE;
    if (size === 0) return NONE;
    const len = Math.min(spec.suffix, size);
    return { kind: 'range', start: size - len, end: size - 1 };
  }
  if (spec.first >= size) return UNSATISFIABLE;
  const end = spec.last === undefined ? size - 1 : Math.min(spec.last, size - 1);
  return { kind: 'range', start: spec.first, end };
}

/** `Content-Range` value of a satisfiable range. */
export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`;
}

/** `Content-Range` value of a 416 answer. */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`;
}
