import test from 'ava';
import { mkdir, mkdtemp, open, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeMjpegAvi } from '../src/demo/avi-writer.js';
import { createDemoLibrary } from '../src/demo/library.js';
import { Canvas, encodeJpeg, exifApp1 } from '../src/demo/imagegen.js';
import { formatCodec, mediaTypeOf, parseCodec } from '../src/media/mediatypes.js';
import { dropImplausible, exifDateToIso, findFfprobe, fromFfprobe, normaliseTagDate, probe, titleFromFileName } from '../src/media/probe.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'media');
const NO_FFPROBE = { ffprobe: false } as const;

let tmp: string;
let demo: string;

test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tapedeck-probe-'));
  demo = join(tmp, 'demo');
  await createDemoLibrary(demo);
});

test.after.always(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// --- byte builders for hand-made containers ------------------------------------------

const u8 = (...b: number[]) => Buffer.from(b);
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const zeros = (n: number) => Buffer.alloc(n);

function box(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(8 + body.length), Buffer.from(type, 'latin1'), body]);
}
const fullBox = (type: string, version: number, flags: number, ...parts: Buffer[]) => box(type, u8(version, (flags >> 16) & 255, (flags >> 8) & 255, flags & 255), ...parts);

interface Mp4Spec {
  mvhdVersion: 0 | 1;
  timescale: number;
  duration: number; // in timescale units
  width: number;
  height: number;
  avcProfile: number;
  avcLevel: number;
  channels: number;
  sampleRate: number;
  /** Sample entry type of the video track (default avc1). */
  videoFourcc?: string;
  /** Track header (display) size when it differs from the coded size in the sample entry. */
  displayWidth?: number;
  displayHeight?: number;
}

function moovBox(s: Mp4Spec): Buffer {
  const mvhd =
    s.mvhdVersion === 1
      ? fullBox('mvhd', 1, 0, u64(0), u64(0), u32(s.timescale), u64(s.duration), u32(0x10000), u16(0x100), zeros(10), zeros(36), zeros(24), u32(3))
      : fullBox('mvhd', 0, 0, u32(0), u32(0), u32(s.timescale), u32(s.duration), u32(0x10000), u16(0x100), zeros(10), zeros(36), zeros(24), u32(3));
  const tkhd = (w: number, h: number, id: number) =>
    fullBox('tkhd', 0, 3, u32(0), u32(0), u32(id), u32(0), u32(s.duration), zeros(8), u16(0), u16(0), u16(0), u16(0), zeros(36), u32(w * 65536), u32(h * 65536));
  const mdhd = (ts: number) => fullBox('mdhd', 0, 0, u32(0), u32(0), u32(ts), u32(Math.round((s.duration / s.timescale) * ts)), u16(0x55c4), u16(0));
  const hdlr = (type: string) => fullBox('hdlr', 0, 0, u32(0), Buffer.from(type, 'latin1'), zeros(12), u8(0));
  const avcC = box('avcC', u8(1, s.avcProfile, 0, s.avcLevel, 0xff, 0xe0, 0x00));
  const avc1 = box(s.videoFourcc ?? 'avc1', zeros(6), u16(1), zeros(16), u16(s.width), u16(s.height), u32(0x480000), u32(0x480000), u32(0), u16(1), zeros(32), u16(0x18), u16(0xffff), avcC);
  const video = box('trak', tkhd(s.displayWidth ?? s.width, s.displayHeight ?? s.height, 1), box('mdia', mdhd(90000), hdlr('vide'), box('minf', box('stbl', fullBox('stsd', 0, 0, u32(1), avc1)))));
  // AudioSpecificConfig: object type 2 (AAC-LC), frequency index 3 (48 kHz), channel configuration.
  const asc = u8(0x11, 0x80 | (s.channels << 3));
  const dsi = Buffer.concat([u8(0x05, asc.length), asc]);
  const dcd = Buffer.concat([u8(0x04, 13 + dsi.length, 0x40, 0x15, 0, 0, 0), u32(128000), u32(128000), dsi]);
  const es = Buffer.concat([u8(0x03, 3 + dcd.length + 3), u16(1), u8(0), dcd, u8(0x06, 1, 2)]);
  const mp4a = box('mp4a', zeros(6), u16(1), zeros(8), u16(2), u16(16), u16(0), u16(0), u32(s.sampleRate * 65536), fullBox('esds', 0, 0, es));
  const audio = box('trak', tkhd(0, 0, 2), box('mdia', mdhd(s.sampleRate), hdlr('soun'), box('minf', box('stbl', fullBox('stsd', 0, 0, u32(1), mp4a)))));
  return box('moov', mvhd, video, audio);
}

const ftyp = () => box('ftyp', Buffer.from('isom', 'latin1'), u32(512), Buffer.from('isomiso2avc1mp41', 'latin1'));

const SPEC: Mp4Spec = { mvhdVersion: 1, timescale: 1000, duration: 12345, width: 720, height: 576, avcProfile: 77, avcLevel: 30, channels: 2, sampleRate: 48000 };

/** EBML element with an 8-byte size field. */
function ebml(id: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const idBytes: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) idBytes.unshift(v & 0xff);
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(body.length) | (1n << 56n));
  return Buffer.concat([Buffer.from(idBytes), size, body]);
}
const ebmlUint = (id: number, n: number) => ebml(id, u64(n));
const ebmlFloat = (id: number, f: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(f);
  return ebml(id, b);
};
const ebmlStr = (id: number, s: string) => ebml(id, Buffer.from(s, 'utf8'));
const idBytes = (id: number) => {
  const out: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Buffer.from(out);
};

const MKV_INFO = () => ebml(0x1549a966, ebmlUint(0x2ad7b1, 1_000_000), ebmlFloat(0x4489, 61234.5), ebmlStr(0x7ba9, 'Hand made'));
const MKV_TRACKS = () =>
  ebml(
    0x1654ae6b,
    ebml(0xae, ebmlUint(0xd7, 1), ebmlUint(0x83, 1), ebmlStr(0x86, 'V_MPEG4/ISO/AVC'), ebml(0x63a2, u8(1, 77, 0x40, 31, 0xff, 0xe0, 0)), ebml(0xe0, ebmlUint(0xb0, 1280), ebmlUint(0xba, 720))),
    ebml(0xae, ebmlUint(0xd7, 2), ebmlUint(0x83, 2), ebmlStr(0x86, 'A_AAC'), ebml(0x63a2, u8(0x11, 0x90)), ebml(0xe1, ebmlFloat(0xb5, 48000), ebmlUint(0x9f, 2))),
  );
const MKV_HEADER = () => ebml(0x1a45dfa3, ebmlStr(0x4282, 'matroska'), ebmlUint(0x4287, 4));
const UNKNOWN_SIZE = u8(0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/** Matroska with Info and Tracks after a cluster, found through the SeekHead. */
function mkvWithSeekHead(): Buffer {
  const cluster = ebml(0x1f43b675, ebmlUint(0xe7, 0), ebml(0xa3, zeros(5000)));
  const seekHead = (infoPos: number, tracksPos: number) =>
    ebml(0x114d9b74, ebml(0x4dbb, ebml(0x53ab, idBytes(0x1549a966)), ebmlUint(0x53ac, infoPos)), ebml(0x4dbb, ebml(0x53ab, idBytes(0x1654ae6b)), ebmlUint(0x53ac, tracksPos)));
  const headLen = seekHead(0, 0).length; // fixed-width fields: size does not depend on the values
  const infoPos = headLen + cluster.length;
  const tracksPos = infoPos + MKV_INFO().length;
  const segmentBody = Buffer.concat([seekHead(infoPos, tracksPos), cluster, MKV_INFO(), MKV_TRACKS()]);
  return Buffer.concat([MKV_HEADER(), idBytes(0x18538067), UNKNOWN_SIZE, segmentBody]);
}

async function put(name: string, data: Buffer): Promise<string> {
  const p = join(tmp, name);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, data);
  return p;
}

// --- media types and helpers --------------------------------------------------------------

test('mediaTypeOf: kinds and DLNA-friendly MIME types by extension', (t) => {
  t.deepEqual(mediaTypeOf('/m/a.MKV'), { kind: 'video', mime: 'video/x-matroska' });
  t.deepEqual(mediaTypeOf('x.flac'), { kind: 'audio', mime: 'audio/flac' });
  t.deepEqual(mediaTypeOf('x.m4a'), { kind: 'audio', mime: 'audio/mp4' });
  t.deepEqual(mediaTypeOf('x.mp3'), { kind: 'audio', mime: 'audio/mpeg' });
  t.deepEqual(mediaTypeOf('x.wav'), { kind: 'audio', mime: 'audio/wav' });
  t.deepEqual(mediaTypeOf('x.avi'), { kind: 'video', mime: 'video/x-msvideo' });
  t.deepEqual(mediaTypeOf('x.ts'), { kind: 'video', mime: 'video/mpeg' });
  t.deepEqual(mediaTypeOf('x.m2ts'), { kind: 'video', mime: 'video/vnd.dlna.mpeg-tts' });
  t.deepEqual(mediaTypeOf('x.m4v'), { kind: 'video', mime: 'video/mp4' });
  t.deepEqual(mediaTypeOf('x.mp4'), { kind: 'video', mime: 'video/mp4' });
  t.deepEqual(mediaTypeOf('x.jpeg'), { kind: 'image', mime: 'image/jpeg' });
  t.deepEqual(mediaTypeOf('x.png'), { kind: 'image', mime: 'image/png' });
  for (const p of ['notes.txt', 'cover.svg', 'list.m3u', 'README', 'archive.tar', 'x.nfo', 'dir/.hidden']) t.is(mediaTypeOf(p), undefined, p);
});

test('codec strings round-trip', (t) => {
  t.deepEqual(parseCodec('h264;profile=high;level=4.1'), { name: 'h264', profile: 'high', level: '4.1' });
  t.deepEqual(parseCodec('aac'), { name: 'aac' });
  t.is(parseCodec(undefined), undefined);
  t.is(formatCodec({ name: 'h264', profile: 'constrained baseline', level: '3' }), 'h264;profile=constrained baseline;level=3');
  t.deepEqual(parseCodec(formatCodec({ name: 'aac', profile: 'he' })), { name: 'aac', profile: 'he' });
});

test('titleFromFileName keeps names readable without over-normalising', (t) => {
  t.is(titleFromFileName('/x/01 - Song Name.mp3'), '01 - Song Name');
  t.is(titleFromFileName('/x/My_Holiday_Video.mkv'), 'My Holiday Video');
  t.is(titleFromFileName('/x/Already spaced_name.avi'), 'Already spaced_name');
  t.is(titleFromFileName('/x/Movie.2019.1080p.mkv'), 'Movie.2019.1080p');
  t.is(titleFromFileName('/x/.hidden.mp3'), '.hidden');
});

test('date helpers', (t) => {
  t.is(normaliseTagDate('2019'), '2019');
  t.is(normaliseTagDate('2019-6-1'), '2019-06-01');
  t.is(normaliseTagDate('2019-06-01T12:30:00'), '2019-06-01');
  t.is(normaliseTagDate('2019-13-01'), '2019');
  t.is(normaliseTagDate('junk', 1999), '1999');
  t.is(normaliseTagDate(undefined), undefined);
  t.is(exifDateToIso('2018:07:14 19:42:10'), '2018-07-14T19:42:10');
  t.is(exifDateToIso('2018:07:14 19:42:10', '+02:00'), '2018-07-14T19:42:10+02:00');
  t.is(exifDateToIso('0000:00:00 00:00:00'), undefined);
  t.is(exifDateToIso('    :  :     :  :  '), undefined);
  t.is(exifDateToIso(42), undefined);
});

// --- generated demo files, one per kind ------------------------------------------------

test('audio: FLAC with Vorbis comments', async (t) => {
  const r = await probe(join(demo, 'Music/Square Root/Overtones/02 Resonance.flac'), NO_FFPROBE);
  t.truthy(r);
  t.is(r!.kind, 'audio');
  t.is(r!.upnpClass, 'object.item.audioItem.musicTrack');
  t.is(r!.title, 'Resonance');
  t.deepEqual(r!.meta, { artist: 'Square Root', albumArtist: 'Square Root', album: 'Overtones', genre: 'Electronic', date: '2023-11-03', trackNumber: 2, discNumber: 1, creator: 'Square Root' });
  t.is(r!.res.mime, 'audio/flac');
  t.is(r!.res.container, 'flac');
  t.is(r!.res.audioCodec, 'flac');
  t.is(r!.res.duration, 4);
  t.is(r!.res.sampleFrequency, 44100);
  t.is(r!.res.nrAudioChannels, 2);
  t.is(r!.res.bitsPerSample, 16);
  // bitrate is in BYTES per second: about size / duration for FLAC
  t.true(Math.abs(r!.res.bitrate! - r!.res.size / 4) < r!.res.size / 40);
  t.is(r!.res.dlnaProfile, undefined);
});

test('image: JPEG with EXIF DateTimeOriginal', async (t) => {
  const r = await probe(join(demo, 'Pictures/2018/Sunset Gradient.jpg'), NO_FFPROBE);
  t.is(r?.kind, 'image');
  t.is(r?.upnpClass, 'object.item.imageItem.photo');
  t.is(r?.title, 'Sunset Gradient');
  t.is(r?.meta.date, '2018-07-14T19:42:10');
  t.is(r?.res.width, 1920);
  t.is(r?.res.height, 1080);
  t.is(r?.res.mime, 'image/jpeg');
  t.is(r?.res.dlnaProfile, 'JPEG_LRG');
});

test('image: PNG without EXIF falls back to the file mtime', async (t) => {
  const r = await probe(join(demo, 'Pictures/2017/Colour Wheel.png'), NO_FFPROBE);
  t.is(r?.res.width, 400);
  t.is(r?.res.height, 400);
  t.is(r?.meta.date, '2017-06-01T12:00:00Z');
  t.is(r?.res.dlnaProfile, 'PNG_LRG');
});

test('image: zeroed EXIF date falls back to mtime', async (t) => {
  const c = new Canvas(32, 24, [200, 10, 10, 255]);
  const p = await put('zero-exif.jpg', encodeJpeg(c, 80, { dateTimeOriginal: '0000:00:00 00:00:00' }));
  const when = new Date('2011-02-03T04:05:06Z');
  await utimes(p, when, when);
  const r = await probe(p, NO_FFPROBE);
  t.is(r?.meta.date, '2011-02-03T04:05:06Z');
  t.is(r?.res.width, 32);
});

test('video: demo MJPEG AVI with the built-in reader', async (t) => {
  const r = await probe(join(demo, 'Video/Counting Clock.avi'), NO_FFPROBE);
  t.is(r?.kind, 'video');
  t.is(r?.upnpClass, 'object.item.videoItem.movie');
  t.is(r?.title, 'Counting Clock');
  t.is(r?.res.container, 'avi');
  t.is(r?.res.duration, 5);
  t.is(r?.res.width, 320);
  t.is(r?.res.height, 240);
  t.is(r?.res.videoCodec, 'mjpeg');
  t.is(r?.res.audioCodec, 'pcm_s16le');
  t.is(r?.res.sampleFrequency, 22050);
  t.is(r?.res.nrAudioChannels, 1);
  t.is(r?.res.bitrate, Math.round(r!.res.size / 5));
  t.deepEqual(r?.meta, {});
});

// --- committed real-world fixtures (see fixtures/media/make.sh) ------------------------------

test('audio: MP3 with ID3v2 tags, header-derived duration, PN MP3', async (t) => {
  const r = await probe(join(FIXTURES, 'tone.mp3'), NO_FFPROBE);
  t.is(r?.title, 'Tone A');
  t.like(r?.meta, { artist: 'Fixture Artist', album: 'Fixture Album', genre: 'Test', date: '2015', trackNumber: 7 });
  t.is(r?.res.audioCodec, 'mp3');
  t.is(r?.res.sampleFrequency, 44100);
  t.is(r?.res.bitrate, 8000); // 64 kbit/s
  t.true(Math.abs(r!.res.duration! - 1.045) < 0.03);
  t.is(r?.res.dlnaProfile, 'MP3');
});

test('audio: m4a gets the AAC profile from the sample description', async (t) => {
  const r = await probe(join(FIXTURES, 'tone.m4a'), NO_FFPROBE);
  t.is(r?.title, 'Tone E');
  t.is(r?.meta.date, '2016-05-04');
  t.is(r?.res.audioCodec, 'aac;profile=lc');
  t.is(r?.res.nrAudioChannels, 2);
  t.is(r?.res.dlnaProfile, 'AAC_ISO_320');
});

test('audio: Ogg Vorbis and Opus: tags from the head, duration from the last page', async (t) => {
  const vorbis = await probe(join(FIXTURES, 'tone.ogg'), NO_FFPROBE);
  t.is(vorbis?.title, 'Ogg Tone');
  t.like(vorbis?.meta, { artist: 'Fixture Artist', genre: 'Test' });
  t.like(vorbis?.res, { mime: 'audio/ogg', container: 'ogg', audioCodec: 'vorbis', sampleFrequency: 44100 });
  t.true(Math.abs(vorbis!.res.duration! - 1.5) < 0.01, String(vorbis?.res.duration));
  const opus = await probe(join(FIXTURES, 'tone.opus'), NO_FFPROBE);
  t.is(opus?.title, 'Opus Tone');
  t.like(opus?.res, { mime: 'audio/ogg', audioCodec: 'opus' });
  t.true(Math.abs(opus!.res.duration! - 1.5) < 0.01, String(opus?.res.duration)); // pre-skip removed
  t.is(opus?.res.dlnaProfile, undefined);
});

test('video: real MP4 (moov at the end) with the built-in reader', async (t) => {
  const r = await probe(join(FIXTURES, 'clip-720p.mp4'), NO_FFPROBE);
  t.like(r?.res, {
    mime: 'video/mp4',
    container: 'mp4',
    width: 1280,
    height: 720,
    videoCodec: 'h264;profile=main;level=3.1',
    audioCodec: 'aac;profile=lc',
    sampleFrequency: 48000,
    nrAudioChannels: 2,
    dlnaProfile: 'AVC_MP4_MP_HD_720p_AAC',
  });
  t.true(Math.abs(r!.res.duration! - 1) < 0.05);
  t.is(r?.title, 'clip-720p');
});

test('video: real MKV and WebM with the built-in reader', async (t) => {
  const mkv = await probe(join(FIXTURES, 'clip.mkv'), NO_FFPROBE);
  t.like(mkv?.res, { mime: 'video/x-matroska', container: 'mkv', width: 320, height: 240, videoCodec: 'h264;profile=high;level=1.2', audioCodec: 'ac3', nrAudioChannels: 2, sampleFrequency: 48000 });
  t.true(Math.abs(mkv!.res.duration! - 1.024) < 0.01);
  t.is(mkv?.res.dlnaProfile, undefined);
  const webm = await probe(join(FIXTURES, 'clip.webm'), NO_FFPROBE);
  t.like(webm?.res, { mime: 'video/webm', container: 'webm', width: 320, height: 180, videoCodec: 'vp8', audioCodec: 'vorbis' });
  t.true(webm!.res.duration! > 0.9 && webm!.res.duration! < 1.1);
});

test('ffprobe and the built-in readers agree', async (t) => {
  const ffprobe = await findFfprobe();
  if (!ffprobe) {
    t.log('ffprobe not on PATH: comparison skipped');
    t.pass();
    return;
  }
  const files = [join(FIXTURES, 'clip-720p.mp4'), join(FIXTURES, 'clip.mkv'), join(FIXTURES, 'clip.webm'), join(demo, 'Video/Counting Clock.avi')];
  for (const f of files) {
    const { stdout } = await run(ffprobe, ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', '--', f]);
    const j = JSON.parse(stdout);
    const a = fromFfprobe(j, 'unknown');
    const b = (await probe(f, NO_FFPROBE))!.res;
    t.is(a.width, b.width, f);
    t.is(a.height, b.height, f);
    // ffprobe adds profiles the headers do not carry (VP8 "0", MJPEG "baseline"): the rest agrees
    t.is(parseCodec(a.videoCodec)?.name, parseCodec(b.videoCodec)?.name, f);
    if (parseCodec(b.videoCodec)?.profile) t.is(a.videoCodec, b.videoCodec, f);
    t.is(a.audioCodec, b.audioCodec, f);
    t.is(a.sampleRate, b.sampleFrequency, f);
    t.is(a.channels, b.nrAudioChannels, f);
    t.true(Math.abs(a.duration! - b.duration!) < 0.06, f);
    // ffprobe's format bit rate is the file size over the duration
    t.true(Math.abs(Number(j.format.bit_rate) / 8 - b.bitrate!) <= Math.max(2, b.bitrate! * 0.01), f);
  }
});

test('a failing or missing ffprobe leaves what the built-in readers found', async (t) => {
  // an MP4 whose video sample entry the readers do not know: ffprobe would be asked, and fails
  const p = await put('fallback/odd-codec.mp4', Buffer.concat([ftyp(), moovBox({ ...SPEC, videoFourcc: 'zzzz', width: 0, height: 0 }), box('mdat', zeros(100))]));
  for (const bin of ['/bin/false', join(tmp, 'no-such-ffprobe')]) {
    const r = await probe(p, { ffprobe: bin });
    t.is(r?.res.duration, 12.345, bin);
    t.is(r?.res.audioCodec, 'aac;profile=lc', bin);
  }
});

/** A stand-in ffprobe: logs each call to `log` (one line per run), prints `json`, keeps `running` (a count of its runs under way). */
async function fakeFfprobe(name: string, json: object, sleepS = 0): Promise<{ bin: string; calls: () => Promise<string[]>; maxRunning: () => Promise<number> }> {
  const dir = join(tmp, 'fake', name);
  await mkdir(join(dir, 'running'), { recursive: true });
  const bin = join(dir, 'ffprobe');
  await writeFile(join(dir, 'out.json'), JSON.stringify(json));
  await writeFile(
    bin,
    `#!/bin/sh
for last; do :; done
echo "$last" >> '${dir}/calls'
touch '${dir}/running/'$$
ls '${dir}/running' | wc -l >> '${dir}/seen'
sleep ${sleepS}
rm -f '${dir}/running/'$$
cat '${dir}/out.json'
`,
    { mode: 0o755 },
  );
  const lines = async (f: string) => (await readFile(join(dir, f), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { bin, calls: () => lines('calls'), maxRunning: async () => Math.max(0, ...(await lines('seen')).map(Number)) };
}

const FF_JSON = {
  streams: [
    { codec_type: 'video', codec_name: 'mpeg2video', profile: 'Main', width: 720, height: 576 },
    { codec_type: 'audio', codec_name: 'mp2', sample_rate: '48000', channels: 2 },
  ],
  format: { duration: '42.5', bit_rate: '4000000', format_name: 'mpeg' },
};

test('MP4, MKV and AVI are read in-process: ffprobe is not run for them', async (t) => {
  const ff = await fakeFfprobe('unused', FF_JSON);
  const avi = await put('inproc/tiny.avi', writeMjpegAvi({ width: 16, height: 16, fps: 2, frames: Array(3).fill(encodeJpeg(new Canvas(16, 16, [0, 128, 255, 255]), 70)), audio: { sampleRate: 8000, channels: 1, pcm: new Int16Array(12000) } }));
  const expect: [string, object][] = [
    [join(FIXTURES, 'clip-720p.mp4'), { container: 'mp4', width: 1280, height: 720, videoCodec: 'h264;profile=main;level=3.1', audioCodec: 'aac;profile=lc', dlnaProfile: 'AVC_MP4_MP_HD_720p_AAC' }],
    [join(FIXTURES, 'clip.mkv'), { container: 'mkv', width: 320, height: 240, videoCodec: 'h264;profile=high;level=1.2', audioCodec: 'ac3' }],
    [join(FIXTURES, 'clip.webm'), { container: 'webm', width: 320, height: 180, videoCodec: 'vp8', audioCodec: 'vorbis' }],
    [avi, { container: 'avi', width: 16, height: 16, videoCodec: 'mjpeg', duration: 1.5 }],
  ];
  for (const [f, like] of expect) {
    const r = await probe(f, { ffprobe: ff.bin });
    t.like(r?.res, like, f);
    t.true(r!.res.duration! > 0 && r!.res.bitrate === Math.round(r!.res.size / r!.res.duration!), f);
  }
  t.deepEqual(await ff.calls(), []);
});

test('a video the built-in readers cannot read is probed by ffprobe', async (t) => {
  const ff = await fakeFfprobe('mpeg', FF_JSON);
  // MPEG program stream: no built-in reader
  const mpg = await put('ff/recording.mpg', Buffer.concat([u8(0, 0, 1, 0xba), zeros(4000)]));
  const r = await probe(mpg, { ffprobe: ff.bin });
  t.deepEqual(await ff.calls(), [mpg]);
  t.like(r?.res, { mime: 'video/mpeg', duration: 42.5, width: 720, height: 576, videoCodec: 'mpeg2video;profile=main', audioCodec: 'mp2', sampleFrequency: 48000, nrAudioChannels: 2, bitrate: 500000 });
  // an MP4 the reader only half understands (unknown video sample entry, no size): ffprobe fills it in
  const odd = await put('ff/odd-codec.mp4', Buffer.concat([ftyp(), moovBox({ ...SPEC, videoFourcc: 'zzzz', width: 0, height: 0 }), box('mdat', zeros(100))]));
  const r2 = await probe(odd, { ffprobe: ff.bin });
  t.is((await ff.calls()).length, 2);
  t.like(r2?.res, { container: 'mp4', width: 720, height: 576, videoCodec: 'mpeg2video;profile=main', duration: 42.5 });
  // without ffprobe: what the reader found
  const r3 = await probe(odd, NO_FFPROBE);
  t.like(r3?.res, { container: 'mp4', duration: 12.345, audioCodec: 'aac;profile=lc' });
  t.is(r3?.res.width, undefined);
});

test('ffprobe runs in parallel, at most a few at once', async (t) => {
  const ff = await fakeFfprobe('parallel', FF_JSON, 0.2);
  const files = await Promise.all(Array.from({ length: 8 }, (_, i) => put(`par/rec-${i}.mpg`, Buffer.concat([u8(0, 0, 1, 0xba), zeros(100 + i)]))));
  const rs = await Promise.all(files.map((f) => probe(f, { ffprobe: ff.bin })));
  t.true(rs.every((r) => r?.res.duration === 42.5));
  t.is((await ff.calls()).length, 8);
  t.true((await ff.maxRunning()) <= Math.max(2, availableParallelism()), `${await ff.maxRunning()} ffprobe runs at once`);
});

// --- hand-made containers ------------------------------------------------------------------

test('MP4: moov after a 64-bit mdat, version-1 mvhd', async (t) => {
  const mdat = Buffer.concat([u32(1), Buffer.from('mdat', 'latin1'), u64(16 + 1000), zeros(1000)]);
  const p = await put('hand/moov-at-end.mp4', Buffer.concat([ftyp(), mdat, moovBox(SPEC)]));
  const r = await probe(p, NO_FFPROBE);
  t.like(r?.res, {
    container: 'mp4',
    duration: 12.345,
    width: 720,
    height: 576,
    videoCodec: 'h264;profile=main;level=3',
    audioCodec: 'aac;profile=lc',
    sampleFrequency: 48000,
    nrAudioChannels: 2,
    dlnaProfile: 'AVC_MP4_MP_SD_AAC_MULT5',
  });
});

test('MP4: anamorphic video has its coded size, not the display size of the track header', async (t) => {
  const p = await put('hand/anamorphic.mp4', Buffer.concat([ftyp(), moovBox({ ...SPEC, displayWidth: 1024, displayHeight: 576 }), box('mdat', zeros(100))]));
  const r = await probe(p, NO_FFPROBE);
  t.like(r?.res, { width: 720, height: 576, dlnaProfile: 'AVC_MP4_MP_SD_AAC_MULT5' });
});

test('MP4: moov in front, version-0 mvhd, 5.1 audio', async (t) => {
  const spec: Mp4Spec = { ...SPEC, mvhdVersion: 0, timescale: 600, duration: 600 * 90, channels: 6, avcProfile: 100, avcLevel: 40, width: 1920, height: 1080 };
  const p = await put('hand/faststart.mp4', Buffer.concat([ftyp(), moovBox(spec), box('mdat', zeros(500))]));
  const r = await probe(p, NO_FFPROBE);
  t.like(r?.res, { duration: 90, width: 1920, height: 1080, videoCodec: 'h264;profile=high;level=4', nrAudioChannels: 6 });
  t.is(r?.res.dlnaProfile, undefined); // HP_HD wants stereo AAC
});

test('MP4: moov beyond 4 GiB in a sparse file is found without reading the mdat', async (t) => {
  const p = join(tmp, 'hand/sparse-5g.mp4');
  const head = Buffer.concat([ftyp(), u32(1), Buffer.from('mdat', 'latin1')]);
  const mdatSize = 5 * 1024 ** 3;
  const fh = await open(p, 'w');
  try {
    await fh.write(Buffer.concat([head, u64(mdatSize)]), 0, undefined, 0);
    const moovAt = head.length - 8 + mdatSize; // the mdat box starts at the ftyp's end
    await fh.write(moovBox(SPEC), 0, undefined, moovAt);
  } finally {
    await fh.close();
  }
  const r = await probe(p, NO_FFPROBE);
  t.is(r?.res.duration, 12.345);
  t.is(r?.res.width, 720);
  t.true(r!.res.size > mdatSize);
});

test('MKV: Info and Tracks behind a cluster are found through the SeekHead', async (t) => {
  const p = await put('hand/seekhead.mkv', mkvWithSeekHead());
  const r = await probe(p, NO_FFPROBE);
  t.like(r?.res, {
    container: 'mkv',
    width: 1280,
    height: 720,
    videoCodec: 'h264;profile=main;level=3.1',
    audioCodec: 'aac;profile=lc',
    sampleFrequency: 48000,
    nrAudioChannels: 2,
  });
  t.is(r?.res.duration, 61.2345);
  t.is(r?.title, 'seekhead'); // video titles come from file names
});

test('MKV: Info and Tracks in front, minimal EBML', async (t) => {
  const segment = Buffer.concat([MKV_INFO(), MKV_TRACKS(), ebml(0x1f43b675, ebmlUint(0xe7, 0))]);
  const p = await put('hand/front.webm', Buffer.concat([ebml(0x1a45dfa3, ebmlStr(0x4282, 'webm')), ebml(0x18538067, segment)]));
  const r = await probe(p, NO_FFPROBE);
  t.like(r?.res, { container: 'webm', width: 1280, height: 720, duration: 61.2345 });
});

test('AVI: written by the demo writer, read back', async (t) => {
  const frame = encodeJpeg(new Canvas(16, 16, [0, 128, 255, 255]), 70);
  const pcm = new Int16Array(8000 * 1.5);
  const p = await put('hand/tiny.avi', writeMjpegAvi({ width: 16, height: 16, fps: 2, frames: [frame, frame, frame], audio: { sampleRate: 8000, channels: 1, pcm } }));
  const r = await probe(p, NO_FFPROBE);
  t.like(r?.res, { container: 'avi', duration: 1.5, width: 16, height: 16, videoCodec: 'mjpeg', audioCodec: 'pcm_s16le', sampleFrequency: 8000, nrAudioChannels: 1, bitsPerSample: 16 });
});

test('a file the server may not read throws EACCES (the scanner retries it), whatever its kind', async (t) => {
  // root reads everything: a child process drops to nobody to see the refusal
  if (process.getuid?.() !== 0) return t.pass('skipped: needs root to switch to an unprivileged user');
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-denied-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { chmod } = await import('node:fs/promises');
  await chmod(dir, 0o755);
  const files = ['song.flac', 'clip.mp4', 'photo.jpg', 'capture.ts'];
  for (const f of files) await writeFile(join(dir, f), Buffer.alloc(4096, 0x47), { mode: 0o600 });
  const script = join(dir, 'denied.mts');
  await writeFile(
    script,
    `const { probe } = await import(${JSON.stringify(join(dirname(FIXTURES), '..', '..', 'src/media/probe.ts'))});
process.setgid(65534);
process.setuid(65534);
const out = {};
for (const f of ${JSON.stringify(files)}) {
  for (const known of [undefined, { size: 4096, mtime: 0 }]) {
    out[f + (known ? ' known' : '')] = await probe(${JSON.stringify(dir)} + '/' + f, { ffprobe: false, known }).then((r) => (r ? 'item' : 'undefined'), (e) => e.code);
  }
}
console.log(JSON.stringify(out));
`,
  );
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { cwd: join(dirname(FIXTURES), '..', '..'), timeout: 60_000 });
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, string>;
  for (const [k, v] of Object.entries(r)) t.is(v, 'EACCES', k);
});

test('a file gone since the walk stat\'ed it gives no item, whatever its kind', async (t) => {
  for (const name of ['song.flac', 'clip.mp4', 'photo.jpg', 'capture.ts', 'film.mkv']) {
    t.is(await probe(join(tmp, 'gone', name), { ffprobe: false, known: { size: 4096, mtime: Date.now() } }), undefined, name);
  }
});

// --- damaged and non-media files --------------------------------------------------------------

test('non-media, missing, empty and directory paths give undefined', async (t) => {
  t.is(await probe(await put('bad/notes.txt', Buffer.from('hello'))), undefined);
  t.is(await probe(join(tmp, 'bad/missing.mp3')), undefined);
  t.is(await probe(await put('bad/empty.flac', Buffer.alloc(0))), undefined);
  await mkdir(join(tmp, 'bad/folder.mp3'), { recursive: true });
  t.is(await probe(join(tmp, 'bad/folder.mp3')), undefined);
});

test('.ts: MPEG transport streams are video, TypeScript sources are not media', async (t) => {
  t.is(await probe(await put('ts/index.ts', Buffer.from("export const x: number = 1;\n".repeat(50))), NO_FFPROBE), undefined);
  const packet = (pid: number) => Buffer.concat([u8(0x47, (pid >> 8) & 0x1f, pid & 0xff, 0x10), Buffer.alloc(184, 0xff)]);
  const ts = Buffer.concat(Array.from({ length: 10 }, (_, i) => packet(i % 2 ? 0x100 : 0)));
  const r = await probe(await put('ts/capture.ts', ts), NO_FFPROBE);
  t.is(r?.kind, 'video');
  t.is(r?.res.mime, 'video/mpeg');
  t.is(r?.res.container, 'mpegts');
  // 192-byte packets (4-byte timestamp first) in .m2ts
  const m2ts = Buffer.concat(Array.from({ length: 10 }, () => Buffer.concat([zeros(4), packet(0)])));
  const r2 = await probe(await put('ts/capture.m2ts', m2ts), NO_FFPROBE);
  t.is(r2?.res.mime, 'video/vnd.dlna.mpeg-tts');
});

test('garbage with a media extension: name, MIME and size, nothing invented', async (t) => {
  const junk = Buffer.from('this is not an mp3 file at all. '.repeat(2048));
  for (const name of ['bad/junk.mp3', 'bad/junk.mp4', 'bad/junk.mkv', 'bad/junk.avi', 'bad/junk.jpg', 'bad/junk.flac', 'bad/junk.m4a']) {
    const p = await put(name, junk);
    const r = await probe(p, NO_FFPROBE);
    t.truthy(r, name);
    t.is(r!.title, 'junk', name);
    t.is(r!.res.size, junk.length, name);
    t.is(r!.res.mime, mediaTypeOf(name)!.mime, name);
    t.is(r!.res.duration, undefined, name);
    t.is(r!.res.width, undefined, name);
    t.is(r!.res.dlnaProfile, undefined, name);
  }
  // Same with ffprobe, when there is one: it fails on these and the fallback finds nothing either.
  const ffprobe = await findFfprobe();
  if (ffprobe) {
    const r = await probe(join(tmp, 'bad/junk.mp4'), { ffprobe });
    t.is(r?.res.duration, undefined);
  }
});

test('truncated files never throw and keep what is known', async (t) => {
  const flac = await readFile(join(demo, 'Music/The Sine Waves/First Light/01 Dawn.flac'));
  const cutTags = await put('cut/dawn-60.flac', flac.subarray(0, 60));
  const r1 = await probe(cutTags, NO_FFPROBE);
  t.is(r1?.kind, 'audio');
  t.is(r1?.title, 'dawn-60');
  const cutAudio = await put('cut/dawn-3000.flac', flac.subarray(0, 3000));
  const r2 = await probe(cutAudio, NO_FFPROBE);
  t.is(r2?.title, 'Dawn'); // the tags are complete
  t.is(r2?.res.sampleFrequency, 44100);

  const mp4 = Buffer.concat([ftyp(), box('mdat', zeros(100)), moovBox(SPEC)]);
  const r3 = await probe(await put('cut/half-moov.mp4', mp4.subarray(0, mp4.length - 200)), NO_FFPROBE);
  t.is(r3?.kind, 'video');
  t.is(r3?.res.duration, 12.345); // mvhd comes first in moov and survived
  const r4 = await probe(await put('cut/no-moov.mp4', mp4.subarray(0, 60)), NO_FFPROBE);
  t.is(r4?.res.duration, undefined);

  const mkv = mkvWithSeekHead();
  const r5 = await probe(await put('cut/seekhead-cut.mkv', mkv.subarray(0, mkv.length - 40)), NO_FFPROBE);
  t.is(r5?.res.duration, 61.2345); // Info intact
  t.is(r5?.res.width, 1280); // the video TrackEntry is complete
  t.is(r5?.res.audioCodec, undefined); // the audio TrackEntry was cut

  const jpg = await readFile(join(demo, 'Pictures/2019/Checkerboard.jpg'));
  const r6 = await probe(await put('cut/check.jpg', jpg.subarray(0, 300)), NO_FFPROBE);
  t.is(r6?.kind, 'image');
  t.truthy(r6?.meta.date);

  const avi = await readFile(join(demo, 'Video/Counting Clock.avi'));
  const r7 = await probe(await put('cut/clock.avi', avi.subarray(0, 100)), NO_FFPROBE);
  t.is(r7?.kind, 'video');
  t.is(r7?.res.size, 100);
});

test('EXIF writer output parses with the header the prober expects', (t) => {
  const seg = exifApp1({ dateTimeOriginal: '2020:02:02 20:20:20', make: 'M' });
  t.is(seg.readUInt16BE(0), 0xffe1);
  t.is(seg.readUInt16BE(2), seg.length - 2);
  t.is(seg.toString('latin1', 4, 10), 'Exif\0\0');
  t.is(seg.toString('latin1', 10, 12), 'II');
});

// Hostile sizes: tags and chunks that declare more than the file holds. The files are sparse
// (a few KB on disk). music-metadata once asked Node for a 4 GB read here, which aborts the
// whole process, and allocated every declared size.
const u32le = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

test('a WAV whose LIST chunk declares 3.75 GB probes without aborting the process', async (t) => {
  const path = join(tmp, 'hostile.wav');
  const L = 0xf0000000;
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(1, 0); // PCM
  fmt.writeUInt16LE(1, 2);
  fmt.writeUInt32LE(44100, 4);
  fmt.writeUInt32LE(88200, 8);
  fmt.writeUInt16LE(2, 12);
  fmt.writeUInt16LE(16, 14);
  await writeFile(path, Buffer.concat([Buffer.from('RIFF'), u32le(0xfffffff0), Buffer.from('WAVEfmt '), u32le(16), fmt, Buffer.from('LIST'), u32le(L), Buffer.from('INFOINAM'), u32le(L - 12), Buffer.from('x')]));
  await truncate(path, 52 + L + 1000);
  const r = await probe(path, { ffprobe: false });
  t.is(r?.kind, 'audio');
  t.is(r?.res.mime, 'audio/wav');
});

test('an MP3 whose ID3v2 frame declares 256 MB is probed without reading it', async (t) => {
  const path = join(tmp, 'hostile.mp3');
  const syncsafe = (n: number) => Buffer.from([(n >> 21) & 0x7f, (n >> 14) & 0x7f, (n >> 7) & 0x7f, n & 0x7f]);
  const frameLen = 0x0fffffe0;
  const frameSize = Buffer.alloc(4);
  frameSize.writeUInt32BE(frameLen);
  await writeFile(path, Buffer.concat([Buffer.from('ID3'), Buffer.from([3, 0, 0]), syncsafe(0x0ffffff0), Buffer.from('TXXX'), frameSize, Buffer.from([0, 0, 0])]));
  await truncate(path, 300 * 1024 * 1024);
  const before = process.memoryUsage().arrayBuffers;
  const r = await probe(path, { ffprobe: false });
  t.is(r?.kind, 'audio');
  t.true(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'no buffer of the declared size');
});

test('values no real media has are dropped, as if the file had not said', (t) => {
  const r = {
    kind: 'video' as const,
    upnpClass: 'object.item.videoItem.movie',
    title: 'x',
    meta: { trackNumber: 99_999_999_999, discNumber: 2 },
    res: { mime: 'video/mp4', size: 1000, duration: 2 ** 64, width: 18446744073709552000, height: 1080, bitrate: Number.NaN, sampleFrequency: 48000, nrAudioChannels: 2 },
  };
  dropImplausible(r);
  t.deepEqual(r.res, { mime: 'video/mp4', size: 1000, height: 1080, sampleFrequency: 48000, nrAudioChannels: 2 });
  t.deepEqual(r.meta, { discNumber: 2 });
});

test.serial('a few bytes of a PNG leave no file handle open', async (t) => {
  const path = join(tmp, 'stub.png');
  await writeFile(path, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d]));
  const { readdirSync } = await import('node:fs');
  const fds = () => readdirSync('/proc/self/fd').length;
  await probe(path, { ffprobe: false }); // warm-up: module-level handles
  const before = fds();
  for (let i = 0; i < 5; i++) await probe(path, { ffprobe: false });
  t.is(fds(), before);
});
