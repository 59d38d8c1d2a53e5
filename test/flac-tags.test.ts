// The FLAC fast path of the probe (src/media/flac.ts) gives exactly what music-metadata gives for
// the fields the probe reads, and leaves to music-metadata every file it is not sure of.
import test from 'ava';
import { parseBuffer } from 'music-metadata';
import { encodeFlac } from '../src/demo/flac.js';
import { readFlacTags } from '../src/media/flac.js';

const base = encodeFlac({ sampleRate: 44100, channels: 2, samples: [new Int16Array(4410).fill(100), new Int16Array(4410).fill(100)] });

/** `base` with its metadata blocks replaced: STREAMINFO, a Vorbis comment block of `comments` (none: no block), `extra` blocks. */
function flac(comments: string[] | undefined, opts: { extra?: [number, Buffer][]; tail?: Buffer; vendor?: string } = {}): Buffer {
  let pos = 4;
  let streamInfo: Buffer | undefined;
  for (let last = false; !last; ) {
    last = (base[pos] & 0x80) !== 0;
    const len = base.readUIntBE(pos + 1, 3);
    if ((base[pos] & 0x7f) === 0) streamInfo = base.subarray(pos + 4, pos + 4 + len);
    pos += 4 + len;
  }
  const blocks: [number, Buffer][] = [[0, streamInfo!]];
  if (comments) {
    const str = (s: string) => {
      const b = Buffer.from(s, 'utf8');
      const n = Buffer.alloc(4);
      n.writeUInt32LE(b.length);
      return Buffer.concat([n, b]);
    };
    const count = Buffer.alloc(4);
    count.writeUInt32LE(comments.length);
    blocks.push([4, Buffer.concat([str(opts.vendor ?? 'test'), count, ...comments.map(str)])]);
  }
  blocks.push(...(opts.extra ?? []));
  const parts: Buffer[] = [Buffer.from('fLaC')];
  blocks.forEach(([type, data], i) => {
    const h = Buffer.alloc(4);
    h.writeUIntBE(data.length, 1, 3);
    h[0] = type | (i === blocks.length - 1 ? 0x80 : 0);
    parts.push(h, data);
  });
  return Buffer.concat([...parts, base.subarray(pos), opts.tail ?? Buffer.alloc(0)]);
}

const FIELDS = ['title', 'artist', 'artists', 'albumartist', 'album', 'genre', 'date', 'originaldate', 'year', 'track', 'disk'] as const;
const FORMAT = ['codec', 'lossless', 'numberOfChannels', 'bitsPerSample', 'sampleRate', 'duration', 'bitrate'] as const;

async function same(t: import('ava').ExecutionContext, buf: Buffer, what: string): Promise<void> {
  const fast = readFlacTags(buf, buf.length, false);
  t.truthy(fast, `${what}: taken by the fast path`);
  const mm = await parseBuffer(buf, { mimeType: 'audio/flac', size: buf.length }, { duration: false, skipCovers: true });
  for (const k of FIELDS) t.deepEqual(fast?.common[k], mm.common[k] ?? undefined, `${what}: common.${k}`);
  for (const k of FORMAT) t.deepEqual(fast?.format[k], mm.format[k], `${what}: format.${k}`);
}

test('the fields the probe reads are music-metadata\'s', async (t) => {
  await same(t, base, 'the demo encoder\'s file');
  await same(t, flac(undefined), 'no comment block');
  await same(t, flac(['TITLE=Dawn', 'ARTIST=The Sine Waves', 'ALBUMARTIST=Various', 'ALBUM=First Light', 'GENRE=Ambient', 'DATE=2019-05-03', 'TRACKNUMBER=3/12', 'DISCNUMBER=2', 'TRACKTOTAL=12', 'ENCODER=x']), 'every mapped comment');
  await same(t, flac(['title=lower case keys', 'Artist=Mixed', 'date=1999']), 'keys in any case');
  await same(t, flac(['TITLE=Ünïcödé 東京 🎵', 'ARTIST=\uFEFFwith a BOM', 'ALBUM=']), 'UTF-8, a BOM, an empty value');
  await same(t, flac(['TITLE=a=b=c', 'DATE=unknown', 'TRACKNUMBER=x', 'DISCNUMBER=0/3']), 'odd values');
  await same(t, flac(['TITLE=padded'], { extra: [[1, Buffer.alloc(100)], [3, Buffer.alloc(18)]] }), 'padding and a seek table');
  await same(t, flac(['TITLE=cover skipped'], { extra: [[6, Buffer.alloc(64)]] }), 'a picture block when pictures are not asked for');
  const invalid = flac(['TITLE=x']);
  invalid[invalid.indexOf('TITLE=x') + 6] = 0xff; // not UTF-8
  await same(t, invalid, 'an invalid UTF-8 byte');
});

test('files it is not sure of are left to music-metadata', (t) => {
  const none = (buf: Buffer, what: string, pictures = false) => t.is(readFlacTags(buf, buf.length, pictures), undefined, what);
  none(flac(['ARTIST=One', 'ARTIST=Two']), 'a comment given twice (music-metadata joins artists)');
  none(flac(['ARTISTS=One']), 'a comment it does not map');
  none(flac(['ORIGINALDATE=1970']), 'an original date');
  none(flac(['METADATA_BLOCK_PICTURE=AAAA']), 'a picture in a comment');
  none(flac(['NOEQUALS']), 'a comment without "="');
  none(flac(['TITLE=x'], { extra: [[6, Buffer.alloc(64)]] }), 'a picture block when pictures are asked for', true);
  none(flac(['TITLE=x'], { extra: [[9, Buffer.alloc(8)]] }), 'an unknown block type');
  none(flac(['TITLE=x'], { tail: Buffer.concat([Buffer.from('TAG'), Buffer.alloc(125)]) }), 'an ID3v1 tag at the end');
  none(flac(['TITLE=x'], { tail: Buffer.concat([Buffer.from('APETAGEX'), Buffer.alloc(24)]) }), 'an APEv2 tag at the end');
  none(Buffer.concat([Buffer.from('ID3\x03\x00\x00\x00\x00\x00\x00'), base]), 'an ID3v2 tag before the marker');
  const cut = flac(['TITLE=x']);
  none(cut.subarray(0, 60), 'blocks past the end of the file');
  t.is(readFlacTags(cut, cut.length + 10, false), undefined, 'fewer bytes than the file has');
  const lying = flac(['TITLE=x']);
  lying.writeUInt32LE(99, lying.indexOf('test') + 4); // more comments than the block holds
  none(lying, 'a comment count past the block');
});
