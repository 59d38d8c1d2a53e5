import test from 'ava';
import type { CatalogObject } from '../src/catalog/types.js';
import { getProperty, SEARCH_CAPABILITIES, SORT_CAPABILITIES, PROPERTIES } from '../src/upnp/properties.js';
import {
  compileSearch,
  compileSearchExpr,
  MAX_SEARCH_DEPTH,
  MAX_SEARCH_LENGTH,
  MAX_SEARCH_TERMS,
  parseSearch,
  SEARCH_LIMITS,
  SearchError,
  searchHints,
  type SearchExpr,
} from '../src/upnp/search.js';
import { prng as rng } from '../src/util/prng.js';
import { protocolInfo } from '../src/media/dlna.js';

// ---------------------------------------------------------------------------------------
// Fixtures

const track1: CatalogObject = {
  id: 't1',
  parentId: 'f-music',
  container: false,
  upnpClass: 'object.item.audioItem.musicTrack',
  title: 'Say "Hi" \\ ok',
  kind: 'audio',
  meta: {
    artist: 'Daft Punk',
    albumArtist: 'Various Artists',
    album: 'Discovery',
    genre: 'Electronic',
    date: '2001-03-12',
    trackNumber: 3,
  },
  res: { mime: 'audio/mpeg', size: 5_000_000, duration: 212.5, bitrate: 40_000, sampleFrequency: 44_100, nrAudioChannels: 2, dlnaProfile: 'MP3' },
};
const track2: CatalogObject = {
  id: 't2',
  parentId: 'f-music',
  container: false,
  upnpClass: 'object.item.audioItem.musicTrack',
  title: 'One More Time',
  kind: 'audio',
  meta: { artist: 'Daft Punk', album: 'Discovery', genre: 'Electronic', date: '2001', trackNumber: 1 },
  res: { mime: 'audio/flac', size: 30_000_000, duration: 320, sampleFrequency: 48_000, nrAudioChannels: 2 },
};
const track10: CatalogObject = {
  id: 't10',
  parentId: 'f-music',
  container: false,
  upnpClass: 'object.item.audioItem.musicTrack',
  title: 'Épilogue',
  kind: 'audio',
  meta: { artist: 'Air', album: 'Moon Safari', date: '1998-01-16', trackNumber: 10 },
  res: { mime: 'audio/mpeg', size: 9_000_000, duration: 301 },
};
const book: CatalogObject = {
  id: 'b1',
  parentId: 'f-books',
  container: false,
  upnpClass: 'object.item.audioItem.audioBook',
  title: 'Dune, part 1',
  kind: 'audio',
  meta: { creator: 'Frank Herbert', date: '2007-10-01' },
  res: { mime: 'audio/mp4', size: 200_000_000, duration: 36_000 },
};
const movie: CatalogObject = {
  id: 'm1',
  parentId: 'f-video',
  container: false,
  upnpClass: 'object.item.videoItem.movie',
  title: 'Blade Runner',
  kind: 'video',
  meta: { date: '1982-06-25', description: 'Replicants in the rain' },
  res: { mime: 'video/mp4', size: 4_000_000_000, duration: 7020, width: 1920, height: 1080, bitrate: 500_000 },
};
const photo: CatalogObject = {
  id: 'p1',
  parentId: 'f-photos',
  container: false,
  upnpClass: 'object.item.imageItem.photo',
  title: 'Beach',
  kind: 'image',
  meta: { date: '2021-05-01T10:00:00' },
  res: { mime: 'image/jpeg', size: 3_000_000, width: 4000, height: 3000 },
};
// A class that shares a string prefix with audioItem but is not derived from it.
const oddClass: CatalogObject = {
  id: 'x1',
  parentId: 'f-music',
  container: false,
  upnpClass: 'object.item.audioItemX',
  title: 'Odd',
};
const ref1: CatalogObject = {
  id: 'genre/electronic$t1',
  parentId: 'genre/electronic',
  container: false,
  upnpClass: 'object.item.audioItem.musicTrack',
  title: track1.title,
  refId: 't1',
  meta: track1.meta,
  res: track1.res,
};
const album: CatalogObject = {
  id: 'a1',
  parentId: 'albums',
  container: true,
  upnpClass: 'object.container.album.musicAlbum',
  title: 'Discovery',
  childCount: 14,
  searchable: true,
  meta: { artist: 'Daft Punk', genre: 'Electronic', date: '2001' },
};
const folder: CatalogObject = {
  id: 'f-music',
  parentId: '0',
  container: true,
  upnpClass: 'object.container.storageFolder',
  title: 'Music',
  childCount: 4,
  searchable: false,
};

const ALL_OBJECTS = [track1, track2, track10, book, movie, photo, oddClass, ref1, album, folder];
const ALL_IDS = ALL_OBJECTS.map((o) => o.id).sort();

function ids(criteria: string): string[] {
  const pred = compileSearch(criteria);
  return ALL_OBJECTS.filter(pred)
    .map((o) => o.id)
    .sort();
}
const sorted = (...xs: string[]) => [...xs].sort();

// ---------------------------------------------------------------------------------------
// Properties

test('getProperty maps UPnP names onto catalog fields', (t) => {
  t.is(getProperty(track1, '@id'), 't1');
  t.is(getProperty(track1, '@parentID'), 'f-music');
  t.is(getProperty(ref1, '@refID'), 't1');
  t.is(getProperty(track1, '@refID'), undefined);
  t.is(getProperty(track1, '@restricted'), '1');
  t.is(getProperty(album, '@searchable'), '1');
  t.is(getProperty(folder, '@searchable'), '0');
  t.is(getProperty(track1, '@searchable'), undefined);
  t.is(getProperty(album, '@childCount'), 14);
  t.is(getProperty(track1, '@childCount'), undefined);
  t.is(getProperty(track1, 'dc:title'), 'Say "Hi" \\ ok');
  t.is(getProperty(book, 'dc:creator'), 'Frank Herbert');
  t.is(getProperty(track2, 'dc:creator'), 'Daft Punk', 'creator falls back to the artist');
  t.is(getProperty(track1, 'dc:date'), '2001-03-12');
  t.is(getProperty(movie, 'dc:description'), 'Replicants in the rain');
  t.is(getProperty(track1, 'upnp:class'), 'object.item.audioItem.musicTrack');
  t.deepEqual(getProperty(track1, 'upnp:artist'), ['Daft Punk', 'Various Artists']);
  t.is(getProperty(track2, 'upnp:artist'), 'Daft Punk');
  t.is(getProperty(track1, 'upnp:albumArtist'), 'Various Artists');
  t.is(getProperty(track1, 'upnp:artist@role'), 'AlbumArtist');
  t.is(getProperty(track2, 'upnp:artist@role'), undefined);
  // DIDL-Lite writes no role="AlbumArtist" when the album artist is the performer: no role to match
  const selfAlbumArtist = { ...track2, meta: { ...track2.meta, albumArtist: track2.meta!.artist } };
  t.is(getProperty(selfAlbumArtist, 'upnp:artist@role'), undefined);
  t.is(getProperty(selfAlbumArtist, 'upnp:artist'), 'Daft Punk');
  t.is(getProperty(track1, 'upnp:album'), 'Discovery');
  t.is(getProperty(track1, 'upnp:genre'), 'Electronic');
  t.is(getProperty(track1, 'upnp:originalTrackNumber'), 3);
  t.is(getProperty(track1, 'res'), '/media/t1');
  t.is(getProperty(ref1, 'res'), '/media/t1', 'a reference points at its target');
  t.is(getProperty(album, 'res'), undefined);
  t.is(getProperty(track1, 'res@size'), 5_000_000);
  t.is(getProperty(track1, 'res@duration'), 212.5);
  t.is(getProperty(track1, 'res@bitrate'), 40_000);
  // the value DIDL-Lite writes (media/dlna.ts protocolInfo) and the short form
  t.deepEqual(getProperty(track1, 'res@protocolInfo'), [protocolInfo(track1.res!), 'http-get:*:audio/mpeg:DLNA.ORG_PN=MP3']);
  t.deepEqual(getProperty(track2, 'res@protocolInfo'), [protocolInfo(track2.res!), 'http-get:*:audio/flac:*']);
  t.is(getProperty(movie, 'res@resolution'), '1920x1080');
  t.is(getProperty(track1, 'res@resolution'), undefined);
  t.is(getProperty(track1, 'res@sampleFrequency'), 44_100);
  t.is(getProperty(track1, 'res@nrAudioChannels'), 2);
  t.is(getProperty(track1, 'no:such'), undefined);
  t.is(getProperty(track1, 'DC:TITLE'), track1.title, 'names are looked up case-insensitively');
});

test('capabilities list the supported properties, each usable in criteria', (t) => {
  const search = SEARCH_CAPABILITIES.split(',');
  const sort = SORT_CAPABILITIES.split(',');
  for (const p of ['@id', '@parentID', '@refID', 'dc:title', 'dc:creator', 'dc:date', 'upnp:class', 'upnp:artist', 'upnp:album', 'upnp:genre', 'upnp:originalTrackNumber', 'res', 'res@size', 'res@duration', 'res@protocolInfo']) {
    t.true(search.includes(p), p);
  }
  for (const p of ['dc:title', 'dc:date', 'dc:creator', 'upnp:artist', 'upnp:album', 'upnp:genre', 'upnp:originalTrackNumber', 'upnp:class', 'res@size', 'res@duration']) {
    t.true(sort.includes(p), p);
  }
  t.is(new Set(search).size, search.length, 'no duplicates');
  t.is(search.length, PROPERTIES.length);
  for (const p of search) t.notThrows(() => parseSearch(`${p} exists true`), p);
  t.false(/\s/.test(SEARCH_CAPABILITIES), 'no whitespace in the capability list');
});

// ---------------------------------------------------------------------------------------
// Match-all

test("'*', empty and blank criteria match everything", (t) => {
  for (const c of ['*', ' * ', '\t*\n', '', '   ']) {
    t.deepEqual(parseSearch(c), { type: 'all' }, JSON.stringify(c));
    t.deepEqual(ids(c), ALL_IDS);
  }
});

// ---------------------------------------------------------------------------------------
// Operators

test('= and != on text are case-insensitive', (t) => {
  t.deepEqual(ids('dc:title = "one more time"'), ['t2']);
  t.deepEqual(ids('dc:title = "ONE MORE TIME"'), ['t2']);
  t.deepEqual(ids('dc:title = "One More"'), []);
  t.deepEqual(ids('dc:title = "épilogue"'), ['t10'], 'non-ASCII lower-casing');
  t.deepEqual(ids('upnp:album != "discovery"'), ALL_IDS.filter((id) => !['t1', 't2', 'genre/electronic$t1'].includes(id)));
});

test('relational operators on text compare lower-cased strings', (t) => {
  t.deepEqual(ids('dc:title < "b"'), ids('dc:title < "B"'));
  // 'Beach' and 'Blade Runner' start with b (> "b"); nothing else is below "b".
  t.deepEqual(ids('dc:title < "b"'), []);
  t.deepEqual(ids('dc:title < "bf"'), ['p1']);
  t.deepEqual(ids('dc:title <= "BEACH"'), ['p1']);
  // (the album container a1 is titled Discovery but has no upnp:album)
  t.deepEqual(ids('upnp:album < "e"'), sorted('t1', 't2', 'genre/electronic$t1'));
  t.deepEqual(ids('upnp:album <= "discovery"'), sorted('t1', 't2', 'genre/electronic$t1'));
  t.deepEqual(ids('upnp:album > "discovery"'), ['t10']);
  t.deepEqual(ids('upnp:album >= "DISCOVERY"'), sorted('t1', 't2', 't10', 'genre/electronic$t1'));
});

test('contains and doesNotContain are case-insensitive substring tests', (t) => {
  t.deepEqual(ids('dc:title contains "RUN"'), ['m1']);
  t.deepEqual(ids('dc:title contains ""'), ALL_IDS, 'empty substring matches every title');
  t.deepEqual(ids('dc:title doesNotContain "e"'), sorted('t1', 'x1', 'f-music', 'genre/electronic$t1'));
  const noE = ALL_OBJECTS.filter((o) => !o.title.toLowerCase().includes('e')).map((o) => o.id).sort();
  t.deepEqual(ids('dc:title doesNotContain "E"'), noE);
  t.true(noE.length > 0 && noE.length < ALL_IDS.length);
  t.deepEqual(ids('res@protocolInfo contains "audio/"'), sorted('t1', 't2', 't10', 'b1', 'genre/electronic$t1'));
  t.deepEqual(ids('res@protocolInfo contains "DLNA.ORG_PN=MP3"'), sorted('t1', 'genre/electronic$t1'));
  // the exact protocolInfo a client was shown in DIDL-Lite finds the item (it carries OP/CI/FLAGS)
  t.deepEqual(ids(`res@protocolInfo = "${protocolInfo(track2.res!)}"`), sorted('t2'));
  t.true(ids('res@protocolInfo contains "DLNA.ORG_OP=01"').includes('t2'));
  t.deepEqual(ids('res@protocolInfo = "http-get:*:audio/flac:*"'), sorted('t2'));
  t.deepEqual(ids('res@resolution contains "1080"'), ['m1']);
});

test('derivedfrom matches the class and its descendants on dot boundaries', (t) => {
  const audio = sorted('t1', 't2', 't10', 'b1', 'genre/electronic$t1');
  t.deepEqual(ids('upnp:class derivedfrom "object.item.audioItem"'), audio);
  t.deepEqual(ids('upnp:class derivedfrom "object.item.audio"'), [], 'no partial segment match');
  t.deepEqual(ids('upnp:class derivedfrom "object.item.audioItemX"'), ['x1']);
  t.deepEqual(ids('upnp:class derivedfrom "object.item.audioItem.musicTrack"'), sorted('t1', 't2', 't10', 'genre/electronic$t1'), 'a class derives from itself');
  t.deepEqual(ids('upnp:class derivedfrom "object.item"'), ALL_IDS.filter((id) => !['a1', 'f-music'].includes(id)));
  t.deepEqual(ids('upnp:class derivedfrom "object"'), ALL_IDS);
  t.deepEqual(ids('upnp:class derivedfrom "object.container"'), sorted('a1', 'f-music'));
  t.deepEqual(ids('upnp:class derivedfrom "OBJECT.ITEM.AUDIOITEM"'), audio, 'case-insensitive');
  t.deepEqual(ids('upnp:class derivedfrom "object.item.audioItem."'), audio, 'trailing dot tolerated');
  t.deepEqual(ids('upnp:class derivedfrom "object.item.audioItem.musicTrack.extra"'), []);
  t.deepEqual(ids('upnp:class derivedfrom "item"'), [], 'must be a prefix from the root');
  t.deepEqual(ids('upnp:class derivedfrom ""'), []);
  t.deepEqual(ids('upnp:class = "object.item.audioItem"'), [], '= is exact');
  t.deepEqual(ids('upnp:class = "Object.Item.VideoItem.Movie"'), ['m1']);
});

test('exists true / false', (t) => {
  t.deepEqual(ids('@refID exists true'), ['genre/electronic$t1']);
  t.deepEqual(ids('@refID exists false'), ALL_IDS.filter((id) => id !== 'genre/electronic$t1'));
  t.deepEqual(ids('res exists false'), sorted('x1', 'a1', 'f-music'));
  t.deepEqual(ids('upnp:artist exists TRUE'), sorted('t1', 't2', 't10', 'genre/electronic$t1', 'a1'));
  t.deepEqual(ids('@childCount exists true'), sorted('a1', 'f-music'));
  t.deepEqual(ids('res@resolution exists true'), sorted('m1', 'p1'));
});

test('numeric properties compare as numbers', (t) => {
  // As strings "9000000" > "30000000"; as numbers it is not.
  t.deepEqual(ids('res@size > "8000000"'), sorted('t2', 't10', 'b1', 'm1'));
  t.deepEqual(ids('res@size >= "5000000" and res@size <= "9000000"'), sorted('t1', 't10', 'genre/electronic$t1'));
  t.deepEqual(ids('res@size = "5000000"'), sorted('t1', 'genre/electronic$t1'));
  t.deepEqual(ids('res@size < "1e9"'.replace('1e9', '1000000000')), sorted('t1', 't2', 't10', 'b1', 'p1', 'genre/electronic$t1'));
  t.deepEqual(ids('upnp:originalTrackNumber < "10"'), sorted('t1', 't2', 'genre/electronic$t1'));
  t.deepEqual(ids('upnp:originalTrackNumber >= "10"'), ['t10']);
  t.deepEqual(ids('upnp:originalTrackNumber = "03"'), sorted('t1', 'genre/electronic$t1'), 'leading zero');
  t.deepEqual(ids('upnp:originalTrackNumber contains "1"'), sorted('t2', 't10'), 'contains works on the decimal form');
  t.deepEqual(ids('@childCount > "5"'), ['a1']);
  t.deepEqual(ids('res@bitrate >= "40000.0"'), sorted('t1', 'm1', 'genre/electronic$t1'));
  t.deepEqual(ids('res@sampleFrequency = "48000"'), ['t2']);
});

test('res@duration takes seconds or the DIDL H:MM:SS form', (t) => {
  t.deepEqual(ids('res@duration > "300"'), sorted('t2', 't10', 'b1', 'm1'));
  t.deepEqual(ids('res@duration > "0:05:00"'), sorted('t2', 't10', 'b1', 'm1'));
  t.deepEqual(ids('res@duration > "0:05:01.000"'), sorted('t2', 'b1', 'm1'));
  t.deepEqual(ids('res@duration = "0:03:32.5"'), sorted('t1', 'genre/electronic$t1'));
  t.deepEqual(ids('res@duration >= "1:57:00"'), sorted('b1', 'm1'));
  t.deepEqual(ids('res@duration < "5:20"'), sorted('t1', 't10', 'genre/electronic$t1'), 'MM:SS');
});

test('dc:date compares as ISO strings, so date ranges work', (t) => {
  t.deepEqual(ids('dc:date >= "2001-01-01" and dc:date < "2002-01-01"'), sorted('t1', 'genre/electronic$t1'));
  // A year-only date sorts before every date in that year, and after the previous year.
  t.deepEqual(ids('dc:date >= "2001" and dc:date < "2002"'), sorted('t1', 't2', 'a1', 'genre/electronic$t1'));
  t.deepEqual(ids('dc:date < "2000"'), sorted('t10', 'm1'));
  t.deepEqual(ids('dc:date > "2021-05-01"'), ['p1'], 'a date-time sorts after its date');
  t.deepEqual(ids('dc:date contains "-05-"'), ['p1']);
  t.deepEqual(ids('dc:date = "2001"'), sorted('t2', 'a1'));
  t.deepEqual(ids('dc:date exists false'), sorted('x1', 'f-music'));
});

test('boolean attributes accept 1/0/true/false', (t) => {
  t.deepEqual(ids('@searchable = "1"'), ['a1']);
  t.deepEqual(ids('@searchable = "true"'), ['a1']);
  t.deepEqual(ids('@searchable = "False"'), ['f-music']);
  t.deepEqual(ids('@restricted = "1"'), ALL_IDS);
  t.deepEqual(ids('@restricted != "1"'), []);
});

test('object IDs compare exactly (case-sensitive)', (t) => {
  t.deepEqual(ids('@id = "t1"'), ['t1']);
  t.deepEqual(ids('@id = "T1"'), []);
  t.deepEqual(ids('@parentID = "f-music"'), sorted('t1', 't2', 't10', 'x1'));
  t.deepEqual(ids('@refID = "t1"'), ['genre/electronic$t1']);
  t.deepEqual(ids('@id contains "$"'), ['genre/electronic$t1']);
});

test('multi-valued properties: any value for positive operators, none for negative ones', (t) => {
  // track1 has upnp:artist = Daft Punk and upnp:artist role=AlbumArtist = Various Artists.
  t.deepEqual(ids('upnp:artist = "Various Artists"'), sorted('t1', 'genre/electronic$t1'));
  t.deepEqual(ids('upnp:artist = "daft punk"'), sorted('t1', 't2', 'a1', 'genre/electronic$t1'));
  t.false(compileSearch('upnp:artist != "Daft Punk"')(track1), 'one value equals, so != is false');
  t.false(compileSearch('upnp:artist != "Various Artists"')(track1));
  t.true(compileSearch('upnp:artist != "Air"')(track1));
  t.true(compileSearch('upnp:artist contains "various"')(track1));
  t.false(compileSearch('upnp:artist doesNotContain "various"')(track1));
  t.true(compileSearch('upnp:artist doesNotContain "air"')(track1));
  t.true(compileSearch('upnp:artist > "e"')(track1), 'Various Artists > e although Daft Punk is not');
  t.deepEqual(ids('upnp:albumArtist = "various artists"'), sorted('t1', 'genre/electronic$t1'));
  t.deepEqual(ids('upnp:artist@role = "AlbumArtist"'), sorted('t1', 'genre/electronic$t1'));
});

test('missing properties: positive operators false, negations (!=, doesNotContain) true', (t) => {
  // photo has no upnp:album
  const p = (c: string) => compileSearch(c)(photo);
  for (const op of ['=', '<', '<=', '>', '>=', 'contains']) t.false(p(`upnp:album ${op} "x"`), op);
  t.true(p('upnp:album != "x"'));
  t.true(p('upnp:album doesNotContain "x"'));
  t.false(p('upnp:album exists true'));
  t.true(p('upnp:album exists false'));
  for (const op of ['=', '<', '<=', '>', '>=']) t.false(p(`upnp:originalTrackNumber ${op} "1"`), op);
  t.true(p('upnp:originalTrackNumber != "1"'));
  // != is exactly the negation of =, whatever the object.
  for (const o of ALL_OBJECTS) {
    t.is(compileSearch('upnp:genre != "electronic"')(o), !compileSearch('upnp:genre = "electronic"')(o), o.id);
  }
});

// ---------------------------------------------------------------------------------------
// Logic, precedence, parentheses

const A = 'dc:title = "Beach"';
const B = 'upnp:class derivedfrom "object.item.audioItem"';
const C = 'upnp:album = "Moon Safari"';

test("'and' binds tighter than 'or'", (t) => {
  t.deepEqual(parseSearch(`${A} or ${B} and ${C}`), parseSearch(`${A} or (${B} and ${C})`));
  t.notDeepEqual(parseSearch(`${A} or ${B} and ${C}`), parseSearch(`(${A} or ${B}) and ${C}`));
  t.deepEqual(ids(`${A} or ${B} and ${C}`), sorted('p1', 't10'));
  t.deepEqual(ids(`(${A} or ${B}) and ${C}`), ['t10']);
  t.deepEqual(ids(`${B} and ${C} or ${A}`), sorted('p1', 't10'));
  t.deepEqual(parseSearch(`${B} and ${C} or ${A}`), parseSearch(`(${B} and ${C}) or ${A}`));
});

test('and/or are case-insensitive and chains flatten into one node', (t) => {
  const e = parseSearch(`${A} OR ${B} Or ${C} or ${A}`);
  t.is(e.type, 'or');
  t.is((e as { args: SearchExpr[] }).args.length, 4);
  const f = parseSearch(`${A} AND (${B} aNd ${C})`);
  t.is(f.type, 'and');
  t.is((f as { args: SearchExpr[] }).args.length, 3);
});

test('parentheses: nesting, redundancy and whitespace tolerance', (t) => {
  t.deepEqual(ids(`((${B}) and ((${C})))`), ['t10']);
  t.deepEqual(ids(`(${B})and(${C})`), ['t10']);
  t.deepEqual(ids(`( ( ${A} ) or ( ( ${B} and ${C} ) ) )`), sorted('p1', 't10'));
  t.deepEqual(ids(`(${A} or (${B} and (${C} or (dc:title = "Odd"))))`), sorted('p1', 't10'));
  t.deepEqual(ids(`\n(\t${A}\r\n)\n`), ['p1']);
});

test('operators without surrounding whitespace are accepted', (t) => {
  t.deepEqual(ids('dc:title="Beach"'), ['p1']);
  t.deepEqual(ids('res@size>"8000000"and res@size<"10000000"'), ['t10']);
  t.deepEqual(ids('dc:title!="Beach"and @id="m1"'), ['m1']);
  t.deepEqual(ids('dc:title contains"beach"'), ['p1']);
  t.deepEqual(ids('dc:title="Beach"or dc:title="Odd"'), sorted('p1', 'x1'));
  t.deepEqual(ids('res@size>="3000000"and res@size<="3000000"'), ['p1']);
});

test('keywords and property names are case-insensitive', (t) => {
  t.deepEqual(ids('UPNP:CLASS DERIVEDFROM "object.item.imageItem"'), ['p1']);
  t.deepEqual(ids('dc:title CONTAINS "beach" AND @refid EXISTS FALSE'), ['p1']);
  t.deepEqual(ids('dc:title doesnotcontain "a" and res exists true'), ALL_OBJECTS.filter((o) => o.res && !o.title.toLowerCase().includes('a')).map((o) => o.id).sort());
});

test('escapes in quoted values', (t) => {
  const e = parseSearch('dc:title = "say \\"hi\\" \\\\ ok"');
  t.deepEqual(e, { type: 'rel', prop: 'dc:title', op: '=', value: 'say "hi" \\ ok' });
  t.deepEqual(ids('dc:title = "say \\"hi\\" \\\\ ok"'), sorted('t1', 'genre/electronic$t1'));
  t.deepEqual(ids('dc:title contains "\\""'), sorted('t1', 'genre/electronic$t1'));
  t.deepEqual(ids('dc:title contains "\\\\"'), sorted('t1', 'genre/electronic$t1'));
  t.deepEqual((parseSearch('dc:title = ""') as { value: string }).value, '');
  t.deepEqual((parseSearch('dc:title = "a and b or (c)"') as { value: string }).value, 'a and b or (c)', 'keywords inside strings are data');
  t.deepEqual((parseSearch('dc:title = "\\\\\\""') as { value: string }).value, '\\"');
});

// ---------------------------------------------------------------------------------------
// Real-world criteria

test('criteria sent by real clients parse and match', (t) => {
  const cases: [string, string[]][] = [
    // WMP / Xbox
    ['(upnp:class derivedfrom "object.item.audioItem" and @refID exists false)', sorted('t1', 't2', 't10', 'b1')],
    ['upnp:class derivedfrom "object.item.videoItem" and @refID exists false', ['m1']],
    ['(upnp:class = "object.container.album.musicAlbum")', ['a1']],
    ['upnp:class = "object.container.album.musicAlbum" and dc:title contains "disc"', ['a1']],
    ['(upnp:class = "object.container.person.musicArtist")', []],
    ['upnp:class derivedfrom "object.item.imageItem" and @refID exists false', ['p1']],
    // Kodi
    ['upnp:class derivedfrom "object.item.audioItem.musicTrack" and upnp:album = "Discovery"', sorted('t1', 't2', 'genre/electronic$t1')],
    ['(upnp:class derivedfrom "object.item.audioItem" and (dc:title contains "time" or upnp:artist contains "time" or upnp:album contains "time"))', ['t2']],
    // BubbleUPnP
    ['(upnp:class derivedfrom "object.item.audioItem") and (dc:title contains "more" or upnp:artist contains "more")', ['t2']],
    ['(dc:title contains "beach" or dc:creator contains "beach") and upnp:class derivedfrom "object.item"', ['p1']],
    // Samsung / LG TVs
    ['upnp:class derivedfrom "object.item.videoItem"', ['m1']],
    ['(upnp:class derivedfrom "object.item.videoItem" or upnp:class derivedfrom "object.item.imageItem")', sorted('m1', 'p1')],
    ['dc:title contains "runner" and upnp:class derivedfrom "object.item.videoItem.movie"', ['m1']],
    // Sony / others: genre and artist drilling
    ['upnp:class = "object.item.audioItem.musicTrack" and upnp:genre = "Electronic" and upnp:artist = "Daft Punk"', sorted('t1', 't2', 'genre/electronic$t1')],
    ['upnp:class derivedfrom "object.item.audioItem" and dc:date >= "2000-01-01" and dc:date <= "2001-12-31"', sorted('t1', 't2', 'genre/electronic$t1')],
    ['(dc:creator contains "herbert")', ['b1']],
  ];
  for (const [c, want] of cases) {
    t.deepEqual(ids(c), want, c);
    t.deepEqual(parseSearch(c, SEARCH_LIMITS), parseSearch(c), `within SEARCH_LIMITS: ${c}`);
  }
});

test('SEARCH_LIMITS: longer criteria or more terms are a SearchError naming the limit, checked before the work', (t) => {
  const terms = (n: number) => Array.from({ length: n }, (_, i) => (i % 3 ? `dc:title contains "w${i}"` : `(@refID exists false and upnp:genre = "g${i}")`)).join(' or ');
  const count = (e: SearchExpr): number => (e.type === 'and' || e.type === 'or' ? e.args.reduce((a, x) => a + count(x), 0) : 1);
  let n = 1;
  while (count(parseSearch(terms(n))) < MAX_SEARCH_TERMS) n++;
  t.is(count(parseSearch(terms(n), SEARCH_LIMITS)), MAX_SEARCH_TERMS, 'exists tests count as terms');
  const many = t.throws(() => parseSearch(terms(n + 1), SEARCH_LIMITS), { instanceOf: SearchError });
  t.regex(many!.message, /too many terms \(at most 64 comparisons/);
  const before = terms(n + 1).slice(0, many!.position);
  t.is(count(parseSearch(before.replace(/ or \(?$/, ''))), MAX_SEARCH_TERMS, 'the position is the first term past the limit');
  const long = 'dc:title = "' + 'x'.repeat(MAX_SEARCH_LENGTH - 13) + '"';
  t.is(long.length, MAX_SEARCH_LENGTH);
  t.deepEqual(parseSearch(long, SEARCH_LIMITS), parseSearch(long));
  const err = t.throws(() => parseSearch(long + ' ', SEARCH_LIMITS), { instanceOf: SearchError });
  t.regex(err!.message, /too long \(4097 characters, at most 4096/);
  // garbage past the length is not even lexed: the error is the length, not the syntax
  t.regex(t.throws(() => parseSearch('"'.repeat(100_000), SEARCH_LIMITS))!.message, /too long/);
  // without limits (the parser alone) the same input parses
  t.notThrows(() => parseSearch(terms(200)));
});

// ---------------------------------------------------------------------------------------
// Index hints

test('searchHints gives the classes an expression requires', (t) => {
  const h = (c: string) => searchHints(parseSearch(c)).classPrefixes;
  t.deepEqual(h('upnp:class derivedfrom "object.item.audioItem"'), ['object.item.audioItem']);
  t.deepEqual(h('(upnp:class derivedfrom "object.item.audioItem" and @refID exists false)'), ['object.item.audioItem']);
  t.deepEqual(h('upnp:class = "object.container.album.musicAlbum" and dc:title contains "x"'), ['object.container.album.musicAlbum']);
  t.deepEqual(h('upnp:class derivedfrom "OBJECT.ITEM.VIDEOITEM"'), ['object.item.videoItem'], 'canonical spelling');
  t.deepEqual(h('upnp:class derivedfrom "object.item.audioItem."'), ['object.item.audioItem']);
  t.deepEqual(h('upnp:class derivedfrom "object.item.videoItem" or upnp:class derivedfrom "object.item.imageItem"'), ['object.item.videoItem', 'object.item.imageItem']);
  t.deepEqual(h('upnp:class derivedfrom "object.item" or upnp:class derivedfrom "object.item.imageItem"'), ['object.item'], 'narrower alternatives fold into the broader');
  t.deepEqual(h('upnp:class derivedfrom "object.item" and upnp:class derivedfrom "object.item.audioItem"'), ['object.item.audioItem'], 'AND keeps the narrower');
  t.deepEqual(h('upnp:class derivedfrom "object.item.audioItem" and upnp:class derivedfrom "object.item.videoItem"'), [], 'contradiction: nothing matches');
  t.deepEqual(h('upnp:class derivedfrom "object.item.audioItem" and (upnp:class = "object.item.audioItem.musicTrack" or upnp:class = "object.item.videoItem")'), ['object.item.audioItem.musicTrack']);
  t.deepEqual(h('upnp:class derivedfrom "object.vendor.thing"'), ['object'], 'non-standard classes widen to their standard ancestor');
  t.deepEqual(h('upnp:class = "OBJECT.ITEM.AUDIOITEM.MyTrack"'), ['object.item.audioItem'], 'whose case is known');
  t.deepEqual(h('upnp:class derivedfrom "vendor.thing"'), ['vendor.thing'], 'outside the standard tree: as given');
  t.is(h('*'), undefined);
  t.is(h('dc:title contains "x"'), undefined);
  t.is(h('upnp:class != "object.item.audioItem"'), undefined);
  t.is(h('upnp:class derivedfrom "object.item.audioItem" or dc:title = "x"'), undefined, 'an unconstrained alternative');
  t.is(h('upnp:class exists true'), undefined);
});

test('searchHints never excludes a match (checked on the fixtures)', (t) => {
  const criteria = [
    'upnp:class derivedfrom "object.item.audioItem" and @refID exists false',
    'upnp:class = "object.item.audioItem.musicTrack" or upnp:class derivedfrom "object.container"',
    '(upnp:class derivedfrom "OBJECT.ITEM" and dc:title contains "e") or upnp:class = "object.container.storageFolder"',
    'upnp:class derivedfrom "object.item.audioItem" and upnp:class derivedfrom "object.item.audioItem.audioBook"',
  ];
  for (const c of criteria) {
    const prefixes = searchHints(parseSearch(c)).classPrefixes!;
    t.truthy(prefixes, c);
    const pred = compileSearch(c);
    for (const o of ALL_OBJECTS.filter(pred)) {
      t.true(prefixes.some((p) => o.upnpClass === p || o.upnpClass.startsWith(p + '.')), `${c} / ${o.id}`);
    }
  }
});

// ---------------------------------------------------------------------------------------
// Malformed criteria

const MALFORMED: string[] = [
  'dc:title',                                   // missing operator
  'dc:title =',                                 // missing value
  'dc:title = x',                               // unquoted value
  "dc:title = 'x'",                             // single quotes
  'dc:title == "x"',                            // unknown operator
  'dc:title => "x"',                            // unknown operator
  'dc:title <> "x"',                            // unknown operator
  'dc:title like "x"',                          // unknown word operator
  'dc:title = "x',                              // unterminated string
  'dc:title = "x\\',                            // unterminated after backslash
  'dc:title = "a\\nb"',                         // bad escape
  'dc:title = "x" and',                         // missing operand
  'and dc:title = "x"',                         // missing operand
  'dc:title = "x" or or dc:title = "y"',        // missing operand
  '(dc:title = "x"',                            // unbalanced (
  'dc:title = "x")',                            // unbalanced )
  '()',                                         // empty parens
  '( )and dc:title="x"',                        // empty parens
  'dc:title = "x" dc:title = "y"',              // trailing tokens
  'dc:title = "x" "y"',                         // trailing string
  '@refID exists maybe',                        // exists needs boolean
  '@refID exists "false"',                      // quoted boolean
  '@refID exists',                              // exists without value
  'upnp:foo = "x"',                             // unknown property
  'title = "x"',                                // unknown property (no namespace)
  'dc:title derivedfrom "object"',              // derivedfrom on non-class
  'res@size > "big"',                           // non-numeric constant
  'res@duration < "1:2:3:4"',                   // bad duration
  '@searchable = "yes"',                        // bad boolean
  '* and dc:title = "x"',                       // '*' inside an expression
  '**',                                         // not '*'
  'dc:title = "x" and not dc:title = "y"',      // no 'not' in the grammar
  '"x" = dc:title',                             // value first
  'dc:title = "x" (',                           // trailing paren
  ')(',                                         // garbage
  'dc:title ! = "x"',                           // split operator
  'dc:title ="x" anD',                          // dangling keyword
  '=',                                          // operator only
  'dc:title contains',                          // missing value after word operator
  'dc:title = "x" or (dc:title = "y" and (@id = "z")',  // one paren short
  'dc:title = "x" \u00a0and dc:title = "y"',   // no-break space is not whitespace
];

test(`at least 25 malformed criteria are rejected with SearchError 708`, (t) => {
  t.true(MALFORMED.length >= 25);
  for (const c of MALFORMED) {
    const err = t.throws(() => parseSearch(c), { instanceOf: SearchError }, c);
    t.is(err?.code, 708, c);
    t.true(typeof err?.position === 'number' && err.position >= 0 && err.position <= c.length, c);
    t.regex(err?.message ?? '', /offset \d+|end of criteria/, c);
    t.throws(() => compileSearch(c), { instanceOf: SearchError }, c);
  }
});

test('error positions point at the offending token', (t) => {
  const pos = (c: string) => {
    try {
      parseSearch(c);
    } catch (e) {
      return (e as SearchError).position;
    }
    return -1;
  };
  t.is(pos('dc:title => "x"'), 9);
  t.is(pos('dc:title = "x'), 11);
  t.is(pos('dc:title = "a\\qb"'), 13);
  t.is(pos('dc:title = "x") '), 14);
  t.is(pos('  (dc:title = "x"'), 2);
  t.is(pos('dc:title = "x" and upnp:foo = "y"'), 19);
  t.is(pos('dc:title = "x" and'), 18);
  t.is(pos('@refID exists yes'), 14);
  const e = t.throws(() => parseSearch('dc:title => "x"'), { instanceOf: SearchError });
  t.regex(e!.message, /unknown operator '=>'/);
  t.regex(t.throws(() => parseSearch('upnp:foo = "x"'))!.message, /unknown or unsupported property 'upnp:foo'/);
  t.regex(t.throws(() => parseSearch('dc:title = "x'))!.message, /unterminated string/);
  t.regex(t.throws(() => parseSearch('(dc:title = "x"'))!.message, /unbalanced '\('/);
  t.regex(t.throws(() => parseSearch('dc:title = "x")'))!.message, /unbalanced '\)'/);
  t.regex(t.throws(() => parseSearch('@refID exists 1'))!.message, /true or false/);
});

test('non-string input is a SearchError, not a TypeError', (t) => {
  t.throws(() => parseSearch(undefined as unknown as string), { instanceOf: SearchError });
  t.throws(() => parseSearch(42 as unknown as string), { instanceOf: SearchError });
});

// ---------------------------------------------------------------------------------------
// Pathological input: linear time, no stack overflow, only SearchError

test('100k-character pathological inputs are handled', (t) => {
  const N = 100_000;
  const inputs = [
    'dc:title = "' + 'a'.repeat(N), // unterminated huge string
    'dc:title = "' + '\\"'.repeat(N / 2), // escapes, unterminated
    '('.repeat(N), // never closed
    ')'.repeat(N),
    '('.repeat(N / 2) + 'dc:title = "x"' + ')'.repeat(N / 2 - 1), // one short
    'dc:title = "x" ' + 'and '.repeat(N / 4),
    'x'.repeat(N), // one huge unknown word
    '='.repeat(N), // one huge operator
    'dc:title = "x" ' + '"y" '.repeat(N / 4), // trailing garbage
  ];
  for (const c of inputs) {
    const err = t.throws(() => compileSearch(c), { instanceOf: SearchError }, c.slice(0, 30));
    t.true(err!.message.length < 400, 'message stays short');
  }
  // Valid and huge: a long string constant and a 100k-char disjunction.
  t.deepEqual(ids('dc:title = "' + 'a'.repeat(N) + '"'), []);
  const big = Array.from({ length: 5000 }, (_, i) => `dc:title = "t${i}"`).join(' or ') + ' or dc:title = "Beach"';
  t.true(big.length > N);
  t.deepEqual(ids(big), ['p1']);
  const e = parseSearch(big);
  t.is(e.type, 'or');
  t.is((e as { args: SearchExpr[] }).args.length, 5001);
});

test('10k nested parentheses: redundant ones parse, deep logic is rejected cleanly', (t) => {
  const D = 10_000;
  // Redundant parentheses add no depth to the tree.
  t.deepEqual(ids('('.repeat(D) + 'dc:title = "Beach"' + ')'.repeat(D)), ['p1']);
  // a or (b and (c or (d and ...))): a tree 10k levels deep.
  let s = 'dc:title = "Beach"';
  for (let i = 0; i < D; i++) s = `dc:title = "n${i}" ${i % 2 ? 'or' : 'and'} (${s})`;
  const err = t.throws(() => compileSearch(s), { instanceOf: SearchError });
  t.regex(err!.message, /nested too deeply/);
  // a or (b or (c or ...)): 10k levels of parentheses, but one flat 'or' node.
  let same = 'dc:title = "Beach"';
  for (let i = 0; i < D; i++) same = `dc:title = "n${i}" or (${same})`;
  const flat = parseSearch(same) as { type: string; args: SearchExpr[] };
  t.is(flat.type, 'or');
  t.is(flat.args.length, D + 1);
  t.deepEqual(flat.args[0], { type: 'rel', prop: 'dc:title', op: '=', value: `n${D - 1}` }, 'operand order kept');
  t.deepEqual(flat.args[D], { type: 'rel', prop: 'dc:title', op: '=', value: 'Beach' });
  t.deepEqual(ids(same), ['p1']);
});

test('the depth limit is exact and deep trees within it evaluate correctly', (t) => {
  // k alternating levels: ((((Beach or n0) and n1) or n2) and n3) ... : a tree k deep.
  const build = (k: number) => {
    let s = 'dc:title = "Beach"';
    for (let i = 0; i < k; i++) s = `(${s}) ${i % 2 ? 'and' : 'or'} dc:title contains "n${i}"`;
    return s;
  };
  const reference = (k: number, title: string) => {
    let v = title === 'Beach';
    for (let i = 0; i < k; i++) v = i % 2 ? v && title.includes(`n${i}`) : v || title.includes(`n${i}`);
    return v;
  };
  t.throws(() => parseSearch(build(MAX_SEARCH_DEPTH + 1)), { instanceOf: SearchError, message: /nested too deeply/ });
  const pred = compileSearch(build(MAX_SEARCH_DEPTH));
  const titles = ['Beach', 'n254', 'n1 n3 n5', 'x', Array.from({ length: MAX_SEARCH_DEPTH }, (_, i) => `n${i}`).join(' ')];
  for (const title of titles) {
    const o: CatalogObject = { id: title, parentId: '0', container: false, upnpClass: 'object.item', title };
    t.is(pred(o), reference(MAX_SEARCH_DEPTH, title), title);
  }
  t.true(titles.some((x) => reference(MAX_SEARCH_DEPTH, x)), 'the reference is not trivially false');
});

// ---------------------------------------------------------------------------------------
// Property-based checks (fixed seed)


type Tree = { leaf: string; pred: (o: CatalogObject) => boolean } | { op: 'and' | 'or'; l: Tree; r: Tree };

const LEAVES: { leaf: string; pred: (o: CatalogObject) => boolean }[] = [
  { leaf: 'dc:title contains "e"', pred: (o) => o.title.toLowerCase().includes('e') },
  { leaf: 'upnp:class derivedfrom "object.item.audioItem"', pred: (o) => o.upnpClass.startsWith('object.item.audioItem.') },
  { leaf: 'res@size > "5000000"', pred: (o) => (o.res?.size ?? -1) > 5_000_000 },
  { leaf: '@refID exists false', pred: (o) => o.refId === undefined },
  { leaf: 'upnp:album != "Discovery"', pred: (o) => o.meta?.album !== 'Discovery' },
  { leaf: 'dc:date < "2001"', pred: (o) => o.meta?.date !== undefined && o.meta.date < '2001' },
  { leaf: '@childCount >= "10"', pred: (o) => o.container && (o.childCount ?? 0) >= 10 },
];

function genTree(r: () => number, depth: number): Tree {
  if (depth <= 0 || r() < 0.3) return LEAVES[Math.floor(r() * LEAVES.length)];
  return { op: r() < 0.5 ? 'and' : 'or', l: genTree(r, depth - 1), r: genTree(r, depth - 1) };
}

function evalTree(tr: Tree, o: CatalogObject): boolean {
  if ('leaf' in tr) return tr.pred(o);
  return tr.op === 'and' ? evalTree(tr.l, o) && evalTree(tr.r, o) : evalTree(tr.l, o) || evalTree(tr.r, o);
}

const WS = [' ', '  ', '\t', '\n', ' \r\n '];
function render(tr: Tree, r: () => number, parentOp?: 'and' | 'or'): string {
  const ws = () => WS[Math.floor(r() * WS.length)];
  let s: string;
  let needParens = false;
  if ('leaf' in tr) s = tr.leaf;
  else {
    const kw = r() < 0.2 ? tr.op.toUpperCase() : tr.op;
    s = render(tr.l, r, tr.op) + ws() + kw + ws() + render(tr.r, r, tr.op);
    // Parentheses are required only for an 'or' under an 'and' (both are associative);
    // elsewhere they are added at random, redundantly.
    needParens = parentOp === 'and' && tr.op === 'or';
  }
  if (needParens || r() < 0.25) s = '(' + (r() < 0.5 ? ws() : '') + s + (r() < 0.5 ? ws() : '') + ')';
  return s;
}

test('random well-formed expressions evaluate like a reference evaluator (precedence, parens)', (t) => {
  const r = rng(20240611);
  for (let i = 0; i < 400; i++) {
    const tree = genTree(r, 5);
    const text = render(tree, r);
    const pred = compileSearch(text);
    for (const o of ALL_OBJECTS) {
      if (pred(o) !== evalTree(tree, o)) {
        t.fail(`${text} on ${o.id}`);
        return;
      }
    }
  }
  t.pass();
});

test('random token soup: every input parses or throws SearchError', (t) => {
  const r = rng(7);
  const vocab = ['dc:title', 'upnp:class', 'res@size', '@refID', 'and', 'or', 'AND', '(', ')', '=', '!=', '<', '>=', 'contains', 'derivedfrom', 'exists', 'true', 'false', '"x"', '"\\"q\\""', '"5"', '*', '"', '\\', '!', 'doesNotContain', ' ', '', '\t', 'upnp:foo', "'"];
  let parsed = 0;
  for (let i = 0; i < 3000; i++) {
    const n = 1 + Math.floor(r() * 12);
    let s = '';
    for (let k = 0; k < n; k++) s += vocab[Math.floor(r() * vocab.length)] + (r() < 0.7 ? ' ' : '');
    try {
      const p = compileSearch(s);
      for (const o of ALL_OBJECTS) p(o);
      parsed++;
    } catch (e) {
      if (!(e instanceof SearchError) || e.code !== 708) {
        t.fail(`${JSON.stringify(s)} threw ${String(e)}`);
        return;
      }
    }
  }
  t.log(`${parsed} of 3000 random inputs were valid`);
  t.pass();
});

test('compileSearchExpr evaluates a hand-built AST', (t) => {
  const e: SearchExpr = {
    type: 'or',
    args: [
      { type: 'rel', prop: 'dc:title', op: '=', value: 'beach' },
      { type: 'and', args: [{ type: 'exists', prop: '@refID', exists: true }, { type: 'rel', prop: 'res@size', op: '<', value: '6000000' }] },
    ],
  };
  t.deepEqual(ALL_OBJECTS.filter(compileSearchExpr(e)).map((o) => o.id).sort(), sorted('p1', 'genre/electronic$t1'));
});
