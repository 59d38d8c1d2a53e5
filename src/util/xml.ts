// Escaping XML serialisation for everything Tapedeck sends (DIDL-Lite, SOAP, GENA,
// descriptions). Strings are escaped and characters that are illegal in XML 1.0
// (C0 controls other than TAB/LF/CR, lone surrogates, U+FFFE/U+FFFF) are dropped,
// because a single bad tag byte in one file must never break a whole Browse reply.

// eslint-disable-next-line no-control-regex
const ILLEGAL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
// \r too: a parser would turn a literal CR into LF (end-of-line normalisation)
const TEXT_SPECIAL = /[&<>\r]/g;
const ATTR_SPECIAL = /[&<>"\r\n\t]/g;
const ENTITY: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  '\r': '&#13;',
  '\n': '&#10;',
  '\t': '&#9;',
};

/** Removes characters that XML 1.0 does not allow. */
export function stripIllegal(s: string): string {
  return s.replace(ILLEGAL, '');
}

/** Escapes element text. */
export function escText(value: unknown): string {
  return stripIllegal(String(value)).replace(TEXT_SPECIAL, (c) => ENTITY[c]);
}

/** Escapes an attribute value (for use inside double quotes). */
export function escAttr(value: unknown): string {
  return stripIllegal(String(value)).replace(ATTR_SPECIAL, (c) => ENTITY[c]);
}

/**
 * Text already escaped for element content (escText of something, or pieces of such joined):
 * writers that escape what they are given (soap.ts soapResponse) pass it through as it is.
 */
export class EscapedText {
  constructor(readonly text: string) {}
}

export type Attrs = Record<string, string | number | boolean | undefined | null>;

/** Serialises attributes, skipping undefined/null ones. */
export function attrs(a: Attrs | undefined): string {
  if (!a) return '';
  let out = '';
  for (const k in a) {
    const v = a[k];
    if (v === undefined || v === null) continue;
    out += ` ${k}="${escAttr(v)}"`;
  }
  return out;
}

/** `<name attrs>text</name>`; nothing at all when text is undefined/null. */
export function el(name: string, text: unknown, a?: Attrs): string {
  if (text === undefined || text === null) return '';
  return `<${name}${attrs(a)}>${escText(text)}</${name}>`;
}

/** `<name attrs>` + already serialised children + `</name>`. */
export function raw(name: string, inner: string, a?: Attrs): string {
  return `<${name}${attrs(a)}>${inner}</${name}>`;
}

export const XML_DECL = '<?xml version="1.0" encoding="utf-8"?>';
