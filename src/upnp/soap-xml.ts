// Fast path of SOAP request parsing: a reader for the plain XML every control point sends
// (an optional XML declaration, elements with quoted attributes, text with the five named
// entities) that builds the very object xml2js would build with soap.ts's options
// (explicitArray, explicitCharkey '_', attrkey '$', emptyTag '', trim and normalize off).
//
// It never decides that a document is malformed: anything outside that subset (comments,
// CDATA, processing instructions past the declaration, numeric character references,
// non-ASCII names, names of Object.prototype, an element named _, control characters, CR, a mismatched tag, ...) returns undefined and the caller hands the text to xml2js, whose verdict and
// error messages stay the reference. test/soap-xml.test.ts checks both give the same object.
//
// Why: xml2js (sax) cost ~70 µs per Browse request, about as much as MiniDLNA's whole
// BrowseMetadata; this reader takes a few µs.

export type XNode = Record<string, unknown> & { $?: Record<string, string>; _?: string };

const NAME_START = new Uint8Array(128);
const NAME_CHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z_:]/.test(ch)) NAME_START[c] = 1;
  if (/[A-Za-z0-9_.:-]/.test(ch)) NAME_CHAR[c] = 1;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
// eslint-disable-next-line no-control-regex
const UNSUPPORTED_CHARS = /[\u0000-\u0008\u000B-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;
const XML_DECL = /^<\?xml(?:\s+[A-Za-z]+\s*=\s*(?:"[^"<&]*"|'[^'<&]*'))*\s*\?>/;
/** XML's white space (outside the root element, where sax judges). */
const WS = /^[ \t\n]*$/;
/** What xml2js counts as a blank text when it closes an element: JavaScript's \s (no-break space, U+2028, U+3000... too). */
const BLANK = /^\s*$/;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a;
}

/** Decodes the five named entities; undefined for any other `&` (left to xml2js). */
function decode(s: string): string | undefined {
  let amp = s.indexOf('&');
  if (amp < 0) return s;
  let out = '';
  let from = 0;
  while (amp >= 0) {
    const semi = s.indexOf(';', amp);
    if (semi < 0) return undefined;
    const ch = ENTITIES[s.slice(amp + 1, semi)];
    if (ch === undefined) return undefined;
    out += s.slice(from, amp) + ch;
    from = semi + 1;
    amp = s.indexOf('&', from);
  }
  return out + s.slice(from);
}

/** Names of Object.prototype (__proto__, constructor, toString...): xml2js reads those oddly, so it decides. */
const PROTO_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype));
/** Their first characters: most names are told apart without hashing them. */
const PROTO_FIRST = new Uint8Array(128);
for (const n of PROTO_NAMES) if (n.charCodeAt(0) < 128) PROTO_FIRST[n.charCodeAt(0)] = 1;
function inherited(name: string): boolean {
  const c = name.charCodeAt(0);
  return (c >= 128 || PROTO_FIRST[c] === 1) && PROTO_NAMES.has(name);
}

/** An element named like xml2js's text key: its children list and the text would share `_` (xml2js fails on it), so it decides. */
function charkey(name: string): boolean {
  return name === '_';
}

interface Open {
  name: string;
  obj: XNode;
  text: string;
  children: boolean;
  attrs: boolean;
}

/**
 * The xml2js object of `text` (root element as the only key), or undefined when the text
 * is not in the subset this reader knows (the caller then parses it with xml2js).
 */
export function readSimpleXml(text: string): Record<string, XNode | string> | undefined {
  if (UNSUPPORTED_CHARS.test(text)) return undefined; // CR too: XML's end-of-line handling
  let i = 0;
  const n = text.length;
  if (text.startsWith('<?')) {
    const m = XML_DECL.exec(text);
    if (!m) return undefined;
    i = m[0].length;
  }
  const stack: Open[] = [];
  let result: Record<string, XNode | string> | undefined;
  while (i < n) {
    const lt = text.indexOf('<', i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    if (chunk) {
      if (chunk.includes(']]>')) return undefined;
      const top = stack[stack.length - 1];
      if (!top) {
        if (!WS.test(chunk)) return undefined;
      } else {
        const t = decode(chunk);
        if (t === undefined) return undefined;
        top.text += t;
      }
    }
    if (lt < 0) break;
    if (result) return undefined; // a second root element
    i = lt + 1;
    const c0 = text.charCodeAt(i);
    if (c0 === 0x2f) {
      // end tag
      const start = i + 1;
      let j = start;
      while (j < n && text.charCodeAt(j) < 128 && NAME_CHAR[text.charCodeAt(j)]) j++;
      const name = text.slice(start, j);
      while (j < n && isWs(text.charCodeAt(j))) j++;
      if (text.charCodeAt(j) !== 0x3e) return undefined;
      const top = stack.pop();
      if (!top || top.name !== name) return undefined;
      i = j + 1;
      const value = close(top);
      const parent = stack[stack.length - 1];
      if (parent) {
        push(parent, name, value);
      } else {
        result = {};
        result[name] = value;
      }
      continue;
    }
    if (c0 >= 128 || !NAME_START[c0]) return undefined; // comments, CDATA, PIs, DTDs, odd names
    let j = i + 1;
    while (j < n && text.charCodeAt(j) < 128 && NAME_CHAR[text.charCodeAt(j)]) j++;
    const name = text.slice(i, j);
    if (inherited(name) || charkey(name)) return undefined;
    // `_` (the text) is set when the element closes with text: never deleted, so the object keeps its fast shape
    const obj: XNode = {};
    let attrs = false;
    for (;;) {
      const before = j;
      while (j < n && isWs(text.charCodeAt(j))) j++;
      const c = text.charCodeAt(j);
      if (c === 0x3e || c === 0x2f) break;
      if (j === before || c >= 128 || !NAME_START[c]) return undefined;
      const a0 = j;
      while (j < n && text.charCodeAt(j) < 128 && NAME_CHAR[text.charCodeAt(j)]) j++;
      const attr = text.slice(a0, j);
      while (j < n && isWs(text.charCodeAt(j))) j++;
      if (text.charCodeAt(j) !== 0x3d) return undefined;
      j++;
      while (j < n && isWs(text.charCodeAt(j))) j++;
      const q = text.charCodeAt(j);
      if (q !== 0x22 && q !== 0x27) return undefined;
      const end = text.indexOf(q === 0x22 ? '"' : "'", j + 1);
      if (end < 0) return undefined;
      const raw = text.slice(j + 1, end);
      if (raw.includes('<') || raw.includes('\t') || raw.includes('\n')) return undefined;
      const value = decode(raw);
      if (value === undefined) return undefined;
      if (!obj.$) obj.$ = {};
      if (inherited(attr) || Object.prototype.hasOwnProperty.call(obj.$, attr)) return undefined;
      obj.$[attr] = value;
      attrs = true;
      j = end + 1;
    }
    const open: Open = { name, obj, text: '', children: false, attrs };
    const parent = stack[stack.length - 1];
    if (parent) parent.children = true;
    if (text.charCodeAt(j) === 0x2f) {
      if (text.charCodeAt(j + 1) !== 0x3e) return undefined;
      i = j + 2;
      const value = close(open);
      if (parent) push(parent, name, value);
      else {
        result = {};
        result[name] = value;
      }
      continue;
    }
    i = j + 1;
    stack.push(open);
  }
  if (stack.length || !result) return undefined;
  return result;
}

/** What xml2js makes of a closed element (its text is every text chunk directly inside it). */
function close(e: Open): XNode | string {
  if (!BLANK.test(e.text)) {
    e.obj._ = e.text;
    return e.obj;
  }
  // neither attributes nor children: the element is its (blank) text, as xml2js's emptyTag ''
  return e.children || e.attrs ? e.obj : e.text;
}

function push(parent: Open, name: string, value: XNode | string): void {
  const o = parent.obj as Record<string, unknown>;
  const list = o[name] as unknown[] | undefined; // never an inherited name (see inherited())
  if (list) list.push(value);
  else o[name] = [value];
}
