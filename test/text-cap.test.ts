// Text values from media files are kept to MAX_TEXT characters in the catalog (util/text-cap.ts):
// one file with a megabyte tag made every Browse page listing it (All Tracks, Artists) megabytes.
import test from 'ava';
import { itemFromProbe } from '../src/scanner/scanner.js';
import { parseM3u, parsePls } from '../src/scanner/playlist.js';
import { capText, MAX_TEXT } from '../src/util/text-cap.js';

test('capText: short values unchanged; long ones cut to MAX_TEXT with an ellipsis, never inside a surrogate pair', (t) => {
  t.is(capText('Dawn'), 'Dawn');
  const exact = 'x'.repeat(MAX_TEXT);
  t.is(capText(exact), exact);
  const cut = capText('y'.repeat(MAX_TEXT + 1));
  t.is(cut.length, MAX_TEXT);
  t.true(cut.endsWith('…'));
  // a pair of UTF-16 units (🎵) straddling the cut is dropped whole
  for (let pad = 0; pad < 4; pad++) {
    const s = capText('a'.repeat(MAX_TEXT - 3 + pad) + '🎵'.repeat(10));
    t.true(s.length <= MAX_TEXT);
    t.notThrows(() => encodeURIComponent(s), 'no lone surrogate');
  }
});

test('a scanned item keeps at most MAX_TEXT characters of its title and each text tag', (t) => {
  const huge = 'T'.repeat(1_000_000);
  const item = itemFromProbe(
    { path: '/m/a.flac', root: '/m', size: 10, mtime: 1 } as never,
    {
      kind: 'audio',
      upnpClass: 'object.item.audioItem.musicTrack',
      title: huge,
      meta: { artist: 'A'.repeat(300_000), album: 'Short', genre: 'G'.repeat(5000), trackNumber: 3 },
      res: { mime: 'audio/flac', size: 10 },
    },
  );
  t.is(item.title.length, MAX_TEXT);
  t.is(item.meta!.artist!.length, MAX_TEXT);
  t.is(item.meta!.genre!.length, MAX_TEXT);
  t.is(item.meta!.album, 'Short');
  t.is(item.meta!.trackNumber, 3);
});

test('playlist entry titles (#EXTINF, PLS TitleN) are capped too', (t) => {
  const long = 'E'.repeat(200_000);
  t.is(parseM3u(`#EXTM3U\n#EXTINF:4,${long}\na.flac\n`)[0].title!.length, MAX_TEXT);
  t.is(parsePls(`[playlist]\nFile1=a.flac\nTitle1=${long}\n`)[0].title!.length, MAX_TEXT);
  t.is(parseM3u('#EXTINF:4,Short\na.flac\n')[0].title, 'Short');
});
