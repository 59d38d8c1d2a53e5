import test from 'ava';
import type { ExecutionContext } from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseStringPromise } from 'xml2js';
import type { CatalogObject, Resource } from '../src/catalog/types.js';
import { defaultResUrl, didl, extensionOf, formatDate, formatDuration, parseFilter } from '../src/upnp/didl.js';
import type { DidlOptions } from '../src/upnp/didl.js';
import { parseClientProfile } from '../src/upnp/clients.js';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'golden');

/** Compares with test/golden/<name>; UPDATE_GOLDEN=1 rewrites the file instead. */
function golden(t: ExecutionContext, name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.UPDATE_GOLDEN !== '1') t.fail(`golden file ${name} missing (run with UPDATE_GOLDEN=1 to create it)`);
    writeFileSync(file, actual);
    return;
  }
  t.is(actual, readFileSync(file, 'utf8'), `output differs from golden file ${name}`);
}

/** Pretty-prints by breaking after each element, so golden diffs stay readable. */
function lines(xml: string): string {
  return xml.replace(/></g, '>\n<') + '\n';
}

const BASE = 'http://192.168.1.10:8200';
const pi = (r: Resource) =>
  `http-get:*:${r.mime}:${r.dlnaProfile ? `DLNA.ORG_PN=${r.dlnaProfile};` : ''}DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=01700000000000000000000000000000`;
const opts = (o: Partial<DidlOptions> = {}): DidlOptions => ({ baseUrl: BASE, filter: '*', protocolInfo: pi, ...o });

const album: CatalogObject = {
  id: 'music/albums/4f2a',
  parentId: 'music/albums',
  container: true,
  upnpClass: 'object.container.album.musicAlbum',
  title: 'Kind of Blue',
  childCount: 5,
  searchable: true,
  meta: { artist: 'Miles Davis', genre: 'Jazz', date: '1959' },
};

const track: CatalogObject = {
  id: 'music/albums/4f2a/t1',
  parentId: 'music/albums/4f2a',
  container: false,
  upnpClass: 'object.item.audioItem.musicTrack',
  title: 'So What',
  refId: 'i1a2b3c',
  kind: 'audio',
  relPath: 'Jazz/Miles Davis/Kind of Blue/01 So What.FLAC',
  meta: {
    artist: 'Miles Davis',
    albumArtist: 'Miles Davis Sextet',
    album: 'Kind of Blue',
    genre: 'Jazz',
    date: '1959-08-17',
    trackNumber: 1,
    discNumber: 1,
    description: 'Modal jazz',
  },
  res: {
    mime: 'audio/flac',
    size: 61_234_567,
    duration: 562.345,
    bitrate: 108_765.4,
    sampleFrequency: 44100,
    nrAudioChannels: 2,
    bitsPerSample: 16,
    container: 'flac',
    audioCodec: 'flac',
  },
};

const video: CatalogObject = {
  id: 'v$42',
  parentId: 'video',
  container: false,
  upnpClass: 'object.item.videoItem.movie',
  title: 'Holiday 2019',
  kind: 'video',
  relPath: 'Movies/Holiday 2019.mkv',
  meta: { date: '2019-07-14T18:30:00Z' },
  res: {
    mime: 'video/x-matroska',
    size: 4_500_000_000,
    duration: 5423.5,
    bitrate: 829_000,
    sampleFrequency: 48000,
    nrAudioChannels: 6,
    width: 1920,
    height: 1080,
    videoCodec: 'h264',
    audioCodec: 'ac3',
  },
};

const photo: CatalogObject = {
  id: 'pictures/p9',
  parentId: 'pictures/all',
  container: false,
  upnpClass: 'object.item.imageItem.photo',
  title: 'Beach',
  kind: 'image',
  relPath: 'Photos/2020/IMG_0001.jpeg',
  meta: { date: '2020-06' },
  res: { mime: 'image/jpeg', size: 3_456_789, width: 4032, height: 3024, dlnaProfile: 'JPEG_LRG' },
};

test('container: every attribute and property under *', (t) => {
  const xml = didl([album], opts());
  golden(t, 'didl-container.xml', lines(xml));
  t.regex(xml, /<container id="music\/albums\/4f2a" parentID="music\/albums" restricted="1" searchable="1" childCount="5">/);
  t.notRegex(xml, /<res/);
});

test('music track with all fields', (t) => {
  const xml = didl([track], opts({ albumArtUrl: () => ({ url: `${BASE}/art/i1a2b3c.jpg`, profileId: 'JPEG_TN' }) }));
  golden(t, 'didl-music-track.xml', lines(xml));
  t.true(xml.includes('refID="i1a2b3c"'));
  // The URL names the canonical item and keeps the file's extension (lower-cased).
  t.true(xml.includes(`>${BASE}/media/i1a2b3c.flac</res>`));
  t.true(xml.includes('duration="0:09:22.345"'));
  t.true(xml.includes('bitrate="108765"'));
  t.true(xml.includes('<upnp:artist role="AlbumArtist">Miles Davis Sextet</upnp:artist>'));
  t.true(xml.includes('<dc:creator>Miles Davis</dc:creator>'), 'creator falls back to the artist');
});

test('video item', (t) => {
  const xml = didl([video], opts());
  golden(t, 'didl-video.xml', lines(xml));
  t.true(xml.includes('resolution="1920x1080"'));
  t.true(xml.includes('size="4500000000"'));
  t.true(xml.includes(`>${BASE}/media/v%2442.mkv</res>`), 'IDs are URL-encoded');
  t.true(xml.includes('<dc:date>2019-07-14T18:30:00Z</dc:date>'));
});

test('photo item', (t) => {
  const xml = didl([photo], opts());
  golden(t, 'didl-photo.xml', lines(xml));
  t.true(xml.includes('protocolInfo="http-get:*:image/jpeg:DLNA.ORG_PN=JPEG_LRG;'));
  t.true(xml.includes('<dc:date>2020-06-01</dc:date>'));
  t.true(xml.includes(`${BASE}/media/pictures%2Fp9.jpeg</res>`));
  t.notRegex(xml, /albumArtURI/, 'no art, no albumArtURI');
});

test('filter dc:title,res@size: only the listed optional properties', (t) => {
  const xml = didl([track], opts({ filter: 'dc:title,res@size' }));
  golden(t, 'didl-filtered.xml', lines(xml));
  t.true(xml.includes(`<res protocolInfo="${pi(track.res!)}" size="61234567">`));
  for (const absent of ['duration=', 'bitrate=', 'upnp:artist', 'dc:creator', 'upnp:album', 'dc:date', 'refID=', 'upnp:genre']) {
    t.false(xml.includes(absent), `${absent} must be filtered out`);
  }
  t.true(xml.includes('<upnp:class>object.item.audioItem.musicTrack</upnp:class>'), 'upnp:class is always present');
});

test('filter: empty list keeps only required properties; names are case-insensitive; * in a list means all', (t) => {
  const bare = didl([track, album], opts({ filter: '' }));
  t.false(bare.includes('<res'));
  t.false(bare.includes('childCount'));
  t.false(bare.includes('searchable'));
  t.true(bare.includes('<dc:title>So What</dc:title>'));
  const some = didl([album, track], opts({ filter: '@childCount, UPNP:Artist ,res' }));
  t.true(some.includes('childCount="5"'));
  t.false(some.includes('searchable='));
  t.true(some.includes('<upnp:artist>Miles Davis</upnp:artist>'));
  t.true(some.includes(`<res protocolInfo="${pi(track.res!)}">`), 'res alone: protocolInfo only');
  t.is(didl([track], opts({ filter: 'dc:title,*' })), didl([track], opts({ filter: '*' })));
  t.is(parseFilter('a,b'), parseFilter('a,b'), 'parsed filters are cached');
});

test('filter: res@duration without res still writes res (documented choice)', (t) => {
  const xml = didl([track], opts({ filter: 'res@duration' }));
  t.regex(xml, /<res protocolInfo="[^"]+" duration="0:09:22.345">http/);
});

test('illegal control characters are dropped and <&>" escaped; output stays well-formed', async (t) => {
  const nasty: CatalogObject = {
    ...track,
    id: 'x<&>"1',
    refId: undefined,
    title: 'A\u0000B\u0007C\u001F <&> "q" \'s\uFFFE\uD800 ok',
    meta: { artist: 'AC\u0001/DC & <Friends>', album: ']]> "cdata" end' },
  };
  const xml = didl([nasty], opts());
  golden(t, 'didl-illegal-chars.xml', lines(xml));
  t.false(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(xml));
  const doc = await parseStringPromise(xml);
  const it = doc['DIDL-Lite'].item[0];
  t.is(it['dc:title'][0], 'ABC <&> "q" \'s ok');
  t.is(it['upnp:artist'][0], 'AC/DC & <Friends>');
  t.is(it['upnp:album'][0], ']]> "cdata" end');
  t.is(it.$.id, 'x<&>"1');
  t.is(it.res[0]._, `${BASE}/media/x%3C%26%3E%221.flac`);
});

test('several objects in order, root namespaces present, parses with xml2js', async (t) => {
  const xml = didl([album, track, video, photo], opts());
  t.true(
    xml.startsWith(
      '<DIDL-Lite xmlns="urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:upnp="urn:schemas-upnp-org:metadata-1-0/upnp/" xmlns:dlna="urn:schemas-dlna-org:metadata-1-0/">',
    ),
  );
  const doc = await parseStringPromise(xml);
  t.is(doc['DIDL-Lite'].container.length, 1);
  t.deepEqual(
    doc['DIDL-Lite'].item.map((i: { $: { id: string } }) => i.$.id),
    [track.id, video.id, photo.id],
  );
  t.is(didl([], opts()), '<DIDL-Lite xmlns="urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:upnp="urn:schemas-upnp-org:metadata-1-0/upnp/" xmlns:dlna="urn:schemas-dlna-org:metadata-1-0/"></DIDL-Lite>');
});

test('resUrl hook overrides the default URL; missing optional values are simply absent', (t) => {
  const xml = didl([{ ...track, meta: undefined, res: { mime: 'audio/mpeg', size: 10 } }], opts({ resUrl: (o) => `http://h/x/${o.id}` }));
  t.true(xml.includes('>http://h/x/music/albums/4f2a/t1</res>'));
  t.true(xml.includes('size="10"'));
  t.false(xml.includes('duration='));
  t.false(xml.includes('dc:creator'));
});

test('client quirks: Samsung sec namespace, captions and bookmarks; Xbox MIME override; captionRes', async (t) => {
  const samsung = parseClientProfile('samsung.json', {
    name: 'Samsung',
    order: 1,
    match: { headers: { 'user-agent': 'SEC_HHP' } },
    quirks: { captionInfoSec: true, sendsBookmark: true, didlNamespaces: { sec: 'http://www.sec.co.kr/' } },
  });
  const o = opts({ client: samsung, captions: () => [{ url: `${BASE}/captions/v.srt`, mime: 'text/srt', type: 'srt' }], bookmark: () => 125.7 });
  const xml = didl([video], o);
  t.true(xml.includes(' xmlns:sec="http://www.sec.co.kr/"'));
  t.true(xml.includes(`<sec:CaptionInfoEx sec:type="srt">${BASE}/captions/v.srt</sec:CaptionInfoEx>`));
  t.true(xml.includes('<sec:dcmInfo>BM=125</sec:dcmInfo>'));
  await t.notThrowsAsync(parseStringPromise(xml));

  // sec:* written without the profile declaring the namespace: declared anyway.
  const bare = parseClientProfile('s2.json', { name: 'S', order: 1, match: { headers: { 'user-agent': 'x' } }, quirks: { captionInfoSec: true } });
  const xml2 = didl([video], { ...o, client: bare });
  t.true(xml2.includes(' xmlns:sec="http://www.sec.co.kr/"'));
  await t.notThrowsAsync(parseStringPromise(xml2));

  const generic = didl([video], opts({ captions: () => [{ url: `${BASE}/captions/v.srt`, mime: 'text/srt', type: 'srt' }], bookmark: () => 5 }));
  t.false(generic.includes('sec:'), 'no quirks for the generic client');
  t.false(generic.includes('text/srt'));

  const lg = parseClientProfile('lg.json', { name: 'LG', order: 1, match: { headers: { 'user-agent': 'LGE' } }, quirks: { captionRes: true } });
  t.true(didl([video], opts({ client: lg, captions: () => [{ url: 'http://h/c.srt', mime: 'text/srt', type: 'srt' }] })).includes('<res protocolInfo="http-get:*:text/srt:*">http://h/c.srt</res>'));
  t.false(didl([track], opts({ client: lg, captions: () => [{ url: 'http://h/c.srt', mime: 'text/srt', type: 'srt' }] })).includes('text/srt'), 'captions only for video');

  const xbox = parseClientProfile('xbox.json', {
    name: 'Xbox',
    order: 1,
    match: { headers: { 'user-agent': 'Xbox' } },
    quirks: { mimeOverrides: { 'video/x-msvideo': 'video/avi' } },
  });
  const avi: CatalogObject = { ...video, relPath: 'a.avi', res: { mime: 'video/x-msvideo', size: 1 } };
  t.true(didl([avi], opts({ client: xbox })).includes('protocolInfo="http-get:*:video/avi:'));
  t.true(didl([avi], opts()).includes('protocolInfo="http-get:*:video/x-msvideo:'));
});

test('formatDuration: H:MM:SS.mmm', (t) => {
  const cases: [number, string][] = [
    [0, '0:00:00.000'],
    [0.0004, '0:00:00.000'],
    [0.0005, '0:00:00.001'],
    [1.5, '0:00:01.500'],
    [59.9996, '0:01:00.000'],
    [61.02, '0:01:01.020'],
    [3599.999, '0:59:59.999'],
    [3600, '1:00:00.000'],
    [36_000 + 5 * 60 + 7.25, '10:05:07.250'],
    [-3, '0:00:00.000'],
    [NaN, '0:00:00.000'],
  ];
  for (const [s, want] of cases) t.is(formatDuration(s), want, `formatDuration(${s})`);
});

test('formatDate: xsd dates from ISO 8601, junk dropped', (t) => {
  t.is(formatDate('1959'), '1959-01-01');
  t.is(formatDate('2020-06'), '2020-06-01');
  t.is(formatDate('2020-06-15'), '2020-06-15');
  t.is(formatDate('2020-06-15T10:00:00+02:00'), '2020-06-15T10:00:00+02:00');
  t.is(formatDate('2020-13-01'), undefined);
  t.is(formatDate('June 2020'), undefined);
  t.is(formatDate(''), undefined);
  t.is(formatDate(undefined), undefined);
});

test('extensionOf: relPath first, then MIME', (t) => {
  const o = (relPath: string | undefined, mime: string): CatalogObject => ({
    id: '1',
    parentId: '0',
    container: false,
    upnpClass: 'object.item',
    title: 't',
    relPath,
    res: { mime, size: 1 },
  });
  t.is(extensionOf(o('a/b/Song.MP3', 'audio/mpeg')), 'mp3');
  t.is(extensionOf(o(undefined, 'audio/mpeg')), 'mp3');
  t.is(extensionOf(o('noext', 'video/x-matroska')), 'mkv');
  t.is(extensionOf(o('dir.with.dot/noext', 'image/jpeg')), 'jpg');
  t.is(extensionOf(o('.hidden', 'audio/x-flac')), 'flac');
  t.is(extensionOf(o('weird.ext with space', 'application/octet-stream')), 'bin');
  t.is(extensionOf(o(undefined, 'audio/x-thing')), 'thing');
  t.is(extensionOf(o(undefined, 'audio/x-something-long')), 'bin');
  t.is(defaultResUrl('http://h:1', { ...o('x.ogg', 'audio/ogg'), id: 'a/b', refId: 'c d' }), 'http://h:1/media/c%20d.ogg');
});
