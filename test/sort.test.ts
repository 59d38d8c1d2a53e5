import test from 'ava';
import type { CatalogObject } from '../src/catalog/types.js';
import { SORT_CAPABILITIES } from '../src/upnp/properties.js';
import { compileSort, defaultCompare, naturalCompare, naturalSortKey, parseSort, SortError } from '../src/upnp/sort.js';
import { prng as rng } from '../src/util/prng.js';

// ---------------------------------------------------------------------------------------
// Helpers


function shuffle<T>(xs: T[], r: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

function track(id: string, title: string, extra: Partial<CatalogObject> & { album?: string; artist?: string; track?: number; date?: string; size?: number } = {}): CatalogObject {
  const { album, artist, track: trackNumber, date, size, ...rest } = extra;
  return {
    id,
    parentId: 'p',
    container: false,
    upnpClass: 'object.item.audioItem.musicTrack',
    title,
    meta: { album, artist, trackNumber, date },
    res: size === undefined ? undefined : { mime: 'audio/mpeg', size },
    ...rest,
  };
}

// ---------------------------------------------------------------------------------------
// parseSort

test('parseSort reads signs, names and whitespace', (t) => {
  t.deepEqual(parseSort('+dc:title'), [{ prop: 'dc:title', desc: false }]);
  t.deepEqual(parseSort('-dc:date,+upnp:album'), [
    { prop: 'dc:date', desc: true },
    { prop: 'upnp:album', desc: false },
  ]);
  t.deepEqual(parseSort(' +upnp:album , -upnp:originalTrackNumber ,dc:title '), [
    { prop: 'upnp:album', desc: false },
    { prop: 'upnp:originalTrackNumber', desc: true },
    { prop: 'dc:title', desc: false },
  ]);
  t.deepEqual(parseSort('dc:title'), [{ prop: 'dc:title', desc: false }], 'no sign = ascending');
  t.deepEqual(parseSort('+ dc:title'), [{ prop: 'dc:title', desc: false }], 'space after the sign');
  t.deepEqual(parseSort('+UPNP:CLASS,-RES@SIZE'), [
    { prop: 'upnp:class', desc: false },
    { prop: 'res@size', desc: true },
  ], 'names come back canonical');
  t.deepEqual(parseSort('+dc:title,-dc:title'), [{ prop: 'dc:title', desc: false }], 'first occurrence wins');
  t.deepEqual(parseSort('+dc:title,'), [{ prop: 'dc:title', desc: false }], 'trailing comma');
  t.deepEqual(parseSort('+dc:title,,+dc:date'), [
    { prop: 'dc:title', desc: false },
    { prop: 'dc:date', desc: false },
  ]);
});

test('empty SortCriteria means default order', (t) => {
  for (const c of ['', '   ', '\t\n']) t.deepEqual(parseSort(c), []);
});

test('every advertised sort capability parses', (t) => {
  for (const p of SORT_CAPABILITIES.split(',')) {
    t.deepEqual(parseSort(`-${p}`), [{ prop: p, desc: true }]);
    t.notThrows(() => compileSort(parseSort(`+${p}`)));
  }
});

test('bad SortCriteria are rejected with SortError 709', (t) => {
  const bad = [
    '+upnp:foo',
    'title',
    '+',
    '-',
    '+dc:title,-',
    '++dc:title',
    '+-dc:title',
    '+dc:title desc',
    '+dc:title;-dc:date',
    'dc:title ASC',
    '%%%',
    '+res@protocolInfo', // known but not sortable
    '-@parentID',
    '+dc:description',
    '*',
    '"dc:title"',
    'x'.repeat(100_000),
  ];
  for (const c of bad) {
    const err = t.throws(() => parseSort(c), { instanceOf: SortError }, c.slice(0, 40));
    t.is(err?.code, 709);
    t.true((err?.message.length ?? 0) < 1000, 'message bounded');
  }
  t.regex(t.throws(() => parseSort('+upnp:foo'))!.message, /unknown property 'upnp:foo'/);
  t.regex(t.throws(() => parseSort('+res@protocolInfo'))!.message, /'res@protocolInfo' is not sortable/);
  t.regex(t.throws(() => parseSort('+'))!.message, /missing property/);
  t.throws(() => parseSort(undefined as unknown as string), { instanceOf: SortError });
  t.throws(() => compileSort([{ prop: 'upnp:foo', desc: false }]), { instanceOf: SortError });
  t.throws(() => compileSort([{ prop: 'res@protocolInfo', desc: false }]), { instanceOf: SortError });
});

// ---------------------------------------------------------------------------------------
// compileSort

const tracks = [
  track('a3', 'Track 10', { album: 'Alpha', track: 10, size: 9_000_000, date: '2001-05-01' }),
  track('a1', 'Track 2', { album: 'alpha', track: 2, size: 30_000_000, date: '2001' }),
  track('a2', 'track 1', { album: 'Alpha', track: 1, size: 100, date: '2000-12-31' }),
  track('b1', 'Intro', { album: 'Beta', track: 1, size: 5 }),
  track('n1', 'No Album', { size: 7 }),
  track('c1', 'Zed', { album: 'Gamma 10', track: 1 }),
  track('c2', 'Zed', { album: 'Gamma 9', track: 1 }),
];

function order(criteria: string, objs = tracks): string[] {
  return [...objs].sort(compileSort(parseSort(criteria))).map((o) => o.id);
}

test('multi-key sort: album then track number', (t) => {
  t.deepEqual(order('+upnp:album,+upnp:originalTrackNumber'), ['n1', 'a2', 'a1', 'a3', 'b1', 'c2', 'c1']);
});

test('descending keys; missing values first ascending, last descending', (t) => {
  t.deepEqual(order('+upnp:album,-upnp:originalTrackNumber'), ['n1', 'a3', 'a1', 'a2', 'b1', 'c2', 'c1']);
  t.deepEqual(order('-upnp:album,+upnp:originalTrackNumber'), ['c1', 'c2', 'b1', 'a2', 'a1', 'a3', 'n1']);
  t.deepEqual(order('+res@size'), ['c1', 'c2', 'b1', 'n1', 'a2', 'a3', 'a1'], 'missing size first, equal missing broken by title then id');
  t.deepEqual(order('-res@size'), ['a1', 'a3', 'a2', 'n1', 'b1', 'c1', 'c2'], 'missing last; ties still ascending title, id');
});

test('numbers sort numerically, text naturally, dates as ISO strings', (t) => {
  t.deepEqual(order('+upnp:originalTrackNumber').filter((id) => id.startsWith('a')), ['a2', 'a1', 'a3']);
  t.deepEqual(order('+dc:title'), ['b1', 'n1', 'a2', 'a1', 'a3', 'c1', 'c2']);
  t.deepEqual(order('-dc:title'), ['c1', 'c2', 'a3', 'a1', 'a2', 'n1', 'b1'], 'ties (Zed) stay ascending by id');
  t.deepEqual(order('+dc:date').filter((id) => id.startsWith('a')), ['a2', 'a1', 'a3'], "'2000-12-31' < '2001' < '2001-05-01'");
  t.deepEqual(order('+upnp:album').slice(-2), ['c2', 'c1'], "'Gamma 9' < 'Gamma 10'");
});

test('ties break by containers first, natural title, then @id', (t) => {
  const objs: CatalogObject[] = [
    { id: 'i2', parentId: 'p', container: false, upnpClass: 'object.item', title: 'Same' },
    { id: 'i1', parentId: 'p', container: false, upnpClass: 'object.item', title: 'same' },
    { id: 'c9', parentId: 'p', container: true, upnpClass: 'object.container.storageFolder', title: 'Zzz' },
    { id: 'i0', parentId: 'p', container: false, upnpClass: 'object.item', title: 'Item 10' },
    { id: 'i3', parentId: 'p', container: false, upnpClass: 'object.item', title: 'Item 9' },
    { id: 'c1', parentId: 'p', container: true, upnpClass: 'object.container.storageFolder', title: 'aaa' },
  ];
  const want = ['c1', 'c9', 'i3', 'i0', 'i1', 'i2'];
  t.deepEqual([...objs].sort(compileSort([])).map((o) => o.id), want);
  t.deepEqual([...objs].sort(defaultCompare).map((o) => o.id), want);
  // Sorting by a key every object shares falls back to the same order.
  t.deepEqual([...objs].sort(compileSort(parseSort('+upnp:genre'))).map((o) => o.id), want);
  t.deepEqual([...objs].sort(compileSort(parseSort('-upnp:genre'))).map((o) => o.id), want);
});

test('sorting is deterministic whatever the input order', (t) => {
  const r = rng(42);
  const objs: CatalogObject[] = [];
  for (let i = 0; i < 200; i++) {
    objs.push(track(`id${i}`, `Song ${Math.floor(r() * 20)}`, { album: r() < 0.2 ? undefined : `Album ${Math.floor(r() * 5)}`, track: Math.floor(r() * 4) || undefined, container: r() < 0.1 }));
  }
  for (const criteria of ['', '+upnp:album', '-upnp:album,+upnp:originalTrackNumber', '+dc:title', '-upnp:originalTrackNumber']) {
    const cmp = compileSort(parseSort(criteria));
    const first = [...objs].sort(cmp).map((o) => o.id);
    for (let k = 0; k < 5; k++) {
      t.deepEqual(shuffle(objs, r).sort(compileSort(parseSort(criteria))).map((o) => o.id), first, criteria);
    }
    // A total order: no two distinct objects compare equal, and it is antisymmetric.
    for (let i = 0; i < 50; i++) {
      const a = objs[Math.floor(r() * objs.length)];
      const b = objs[Math.floor(r() * objs.length)];
      t.true(sign(cmp(a, b)) === -sign(cmp(b, a)), 'antisymmetric');
      if (a !== b) t.not(cmp(a, b), 0);
    }
  }
});

test('multi-valued properties sort by their first value', (t) => {
  // x: upnp:artist = [Zappa (performer), Abba (album artist)]
  const x: CatalogObject = { ...track('x', 'X'), meta: { artist: 'Zappa', albumArtist: 'Abba' } };
  const y: CatalogObject = { ...track('y', 'Y'), meta: { artist: 'Moby' } };
  t.deepEqual([x, y].sort(compileSort(parseSort('+upnp:artist'))).map((o) => o.id), ['y', 'x']);
  t.deepEqual([x, y].sort(compileSort(parseSort('+upnp:albumArtist'))).map((o) => o.id), ['y', 'x'], 'y has none: first');
});

// ---------------------------------------------------------------------------------------
// Natural order

test('naturalCompare examples', (t) => {
  const lt = (a: string, b: string) => {
    t.is(sign(naturalCompare(a, b)), -1, `${JSON.stringify(a)} < ${JSON.stringify(b)}`);
    t.is(sign(naturalCompare(b, a)), 1, `${JSON.stringify(b)} > ${JSON.stringify(a)}`);
  };
  const eq = (a: string, b: string) => t.is(naturalCompare(a, b), 0, `${JSON.stringify(a)} = ${JSON.stringify(b)}`);
  lt('Track 2', 'Track 10');
  lt('track 9', 'Track 10');
  lt('a', 'B');
  lt('', 'a');
  lt('a', 'a1');
  lt('a1', 'a1b');
  lt('x9', 'x10');
  lt('x99999999', 'x100000000');
  lt('12345678901234567890', '123456789012345678901');
  lt('98765432109876543210', '98765432109876543211');
  lt('a0', 'a1');
  lt('1.9', '1.10');
  lt('a 1', 'a1'); // space before digits
  lt('a1', 'a_'); // digit before underscore, as in code point order
  lt('a-1', 'a1');
  lt('z', 'é'); // code point order, no locale tailoring
  lt('\uFFFF', '😀'); // astral above the BMP, as UTF-8 byte order has it
  lt('\uE000', '𝔸');
  eq('ABC', 'abc');
  eq('a007', 'a7');
  eq('0', '000');
  eq('Track\u00002', 'track2'); // control characters ignored
  eq('x\uD800', 'x\uFFFD'); // a lone surrogate behaves like U+FFFD
  eq('', '');
  t.deepEqual(['Track 10', 'track 1', 'Track 2', 'Track 1b', 'Track 01a'].sort(naturalCompare), ['track 1', 'Track 01a', 'Track 1b', 'Track 2', 'Track 10']);
});

test('naturalSortKey examples: readable, numbers length-prefixed, no control characters', (t) => {
  t.is(naturalSortKey('Track 7'), 'track 17');
  t.is(naturalSortKey('Track 10'), 'track 210');
  t.is(naturalSortKey('a007b'), 'a17b');
  t.is(naturalSortKey('0'), '10');
  t.is(naturalSortKey('000'), '10');
  t.is(naturalSortKey('123456789'), '919123456789');
  t.is(naturalSortKey('1234567890'), '92101234567890');
  t.is(naturalSortKey('The Beatles'), 'the beatles', 'no article stripping');
  t.is(naturalSortKey('x\u0000y\u001fz\tw'), 'xyzw');
  t.is(naturalSortKey(''), '');
  t.true(naturalSortKey('Track 2') < naturalSortKey('Track 10'));
  t.is(naturalSortKey('ABC'), naturalSortKey('abc'));
  // Composite keys joined with \u0000 keep each part's order.
  const ka = naturalSortKey('ab') + '\u0000' + 'id2';
  const kb = naturalSortKey('ab!') + '\u0000' + 'id1';
  t.true(ka < kb);
});

const PIECES = [
  'a', 'b', 'Z', 'x', 'The ', ' ', '  ', '-', '_', '.', '!', '/', '~', '0', '00', '007', '1', '2', '9', '10', '99',
  '100', '12345678', '123456789', '1234567890123', '99999999999999999999999', '000000000123', 'é', 'É', 'ß', 'İ',
  'ǅ', '日本', '😀', '𝔸', '\uE000', '\uFFFD', '\uFFEE', '\uD800', '\uDC00', '\u0000', '\u0001', '\t', '\n', 'Track ', 'track',
];

function randomString(r: () => number): string {
  const n = Math.floor(r() * 6);
  let s = '';
  for (let i = 0; i < n; i++) {
    if (r() < 0.2) s += String(Math.floor(r() * 10 ** Math.floor(r() * 12)));
    else s += PIECES[Math.floor(r() * PIECES.length)];
  }
  return s;
}

test('naturalSortKey byte order equals naturalCompare order (seeded random corpus)', (t) => {
  const r = rng(0x7a9ede);
  const corpus = Array.from({ length: 500 }, () => randomString(r));
  corpus.push('', '0', '00', 'a', 'A', 'a0', 'a00', 'a 0', '\uD800', '\uFFFD', '😀', '\uFFFF');
  const keys = corpus.map((s) => Buffer.from(naturalSortKey(s), 'utf8'));
  let mismatches = 0;
  let equalPairs = 0;
  for (let i = 0; i < corpus.length; i++) {
    for (let j = i + 1; j < corpus.length; j++) {
      const c = sign(naturalCompare(corpus[i], corpus[j]));
      const k = sign(Buffer.compare(keys[i], keys[j]));
      if (c !== k) {
        if (mismatches++ < 5) t.log('mismatch', JSON.stringify(corpus[i]), JSON.stringify(corpus[j]), c, k);
      }
      if (c === 0) equalPairs++;
      if (sign(naturalCompare(corpus[j], corpus[i])) !== -c) mismatches++;
    }
  }
  t.is(mismatches, 0);
  t.true(equalPairs > 0, 'the corpus exercises equal-under-the-rules pairs too');
  // Sorting by key and by naturalCompare yields the same sequence of keys.
  const byCompare = [...corpus].sort(naturalCompare).map(naturalSortKey);
  const byKey = corpus
    .map(naturalSortKey)
    .sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
  t.deepEqual(byCompare, byKey);
  // No key contains a control character.
  t.false(corpus.some((s) => /[\u0000-\u001f]/.test(naturalSortKey(s))));
});

test('naturalCompare is transitive on the random corpus', (t) => {
  const r = rng(99);
  const corpus = Array.from({ length: 200 }, () => randomString(r));
  const s = [...corpus].sort(naturalCompare);
  for (let i = 0; i + 1 < s.length; i++) t.true(naturalCompare(s[i], s[i + 1]) <= 0);
  for (let n = 0; n < 2000; n++) {
    const i = Math.floor(r() * s.length);
    const j = i + Math.floor(r() * (s.length - i));
    if (naturalCompare(s[i], s[j]) > 0) t.fail(`${JSON.stringify(s[i])} > ${JSON.stringify(s[j])}`);
  }
});
