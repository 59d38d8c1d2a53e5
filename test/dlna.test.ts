import test from 'ava';
import type { Resource } from '../src/catalog/types.js';
import {
  contentFeatures,
  dlnaFlags,
  dlnaProfile,
  FLAG_DLNA_V15,
  FLAG_HTTP_STALLING,
  FLAG_LOP_BYTES,
  FLAG_SENDER_PACED,
  FLAG_TM_BACKGROUND,
  FLAG_TM_INTERACTIVE,
  FLAG_TM_STREAMING,
  formatDuration,
  formatFlags,
  protocolInfo,
  transferModeFor,
} from '../src/media/dlna.js';

test('flag constants sit on the DLNA 1.5 bit positions', (t) => {
  t.is(FLAG_SENDER_PACED >>> 0, 0x80000000);
  t.is(FLAG_LOP_BYTES, 0x20000000);
  t.is(FLAG_TM_STREAMING, 0x01000000);
  t.is(FLAG_TM_INTERACTIVE, 0x00800000);
  t.is(FLAG_TM_BACKGROUND, 0x00400000);
  t.is(FLAG_HTTP_STALLING, 0x00200000);
  t.is(FLAG_DLNA_V15, 0x00100000);
});

test('formatFlags gives 32 hex digits: 8 of primary flags, 24 reserved zeros', (t) => {
  t.is(formatFlags(FLAG_TM_STREAMING | FLAG_TM_BACKGROUND | FLAG_HTTP_STALLING | FLAG_DLNA_V15), '01700000000000000000000000000000');
  t.is(formatFlags(FLAG_TM_INTERACTIVE | FLAG_TM_BACKGROUND | FLAG_DLNA_V15), '00D00000000000000000000000000000');
  t.is(formatFlags(FLAG_SENDER_PACED), '80000000000000000000000000000000');
  t.is(formatFlags(0).length, 32);
});

test('AV and image resources get their transfer-mode flags', (t) => {
  const audio: Resource = { mime: 'audio/flac', size: 1 };
  const video: Resource = { mime: 'video/x-matroska', size: 1 };
  const image: Resource = { mime: 'image/png', size: 1 };
  t.is(dlnaFlags(audio), 0x01700000);
  t.is(dlnaFlags(video), 0x01700000);
  t.is(dlnaFlags(image), 0x00d00000);
  t.is(transferModeFor(audio), 'Streaming');
  t.is(transferModeFor(video), 'Streaming');
  t.is(transferModeFor(image), 'Interactive');
  // Streaming and interactive are never both set.
  for (const r of [audio, video, image]) t.false(Boolean(dlnaFlags(r) & FLAG_TM_STREAMING) && Boolean(dlnaFlags(r) & FLAG_TM_INTERACTIVE));
});

test('protocolInfo: http-get, MIME, PN when one applies, OP=01, CI=0, flags', (t) => {
  const mp3: Resource = { mime: 'audio/mpeg', size: 100, audioCodec: 'mp3', sampleFrequency: 44100, nrAudioChannels: 2, bitrate: 16000 };
  t.is(protocolInfo(mp3), 'http-get:*:audio/mpeg:DLNA.ORG_PN=MP3;DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=01700000000000000000000000000000');
  const flac: Resource = { mime: 'audio/flac', size: 100, audioCodec: 'flac', sampleFrequency: 44100, nrAudioChannels: 2 };
  t.is(protocolInfo(flac), 'http-get:*:audio/flac:DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=01700000000000000000000000000000');
  const jpeg: Resource = { mime: 'image/jpeg', size: 100, width: 640, height: 480 };
  t.is(protocolInfo(jpeg), 'http-get:*:image/jpeg:DLNA.ORG_PN=JPEG_SM;DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=00D00000000000000000000000000000');
  t.is(contentFeatures(jpeg), protocolInfo(jpeg).split(':').slice(3).join(':'));
  // A profile already stored on the resource wins over re-deriving it.
  t.regex(protocolInfo({ ...jpeg, dlnaProfile: 'JPEG_TN' }), /DLNA\.ORG_PN=JPEG_TN;/);
  // Exactly four protocolInfo fields.
  t.is(protocolInfo(flac).split(':').length, 4);
});

interface Case {
  name: string;
  res: Resource;
  pn: string | undefined;
}

const img = (mime: string, width: number, height: number): Resource => ({ mime, size: 1, width, height });
const mp4 = (v: string, a: string | undefined, width: number, height: number, ch = 2): Resource => ({
  mime: 'video/mp4',
  container: 'mp4',
  size: 1,
  width,
  height,
  videoCodec: v,
  audioCodec: a,
  nrAudioChannels: a ? ch : undefined,
  sampleFrequency: a ? 48000 : undefined,
});

const CASES: Case[] = [
  // Images: by pixel size; portrait images must fit the box too.
  { name: 'JPEG 160x120 → TN', res: img('image/jpeg', 160, 120), pn: 'JPEG_TN' },
  { name: 'JPEG 640x480 → SM', res: img('image/jpeg', 640, 480), pn: 'JPEG_SM' },
  { name: 'JPEG 480x640 portrait → MED', res: img('image/jpeg', 480, 640), pn: 'JPEG_MED' },
  { name: 'JPEG 1024x768 → MED', res: img('image/jpeg', 1024, 768), pn: 'JPEG_MED' },
  { name: 'JPEG 1025x768 → LRG', res: img('image/jpeg', 1025, 768), pn: 'JPEG_LRG' },
  { name: 'JPEG 4096x4096 → LRG', res: img('image/jpeg', 4096, 4096), pn: 'JPEG_LRG' },
  { name: 'JPEG 6000x4000 → none', res: img('image/jpeg', 6000, 4000), pn: undefined },
  { name: 'JPEG without size → none', res: { mime: 'image/jpeg', size: 1 }, pn: undefined },
  { name: 'PNG 120x120 → PNG_TN', res: img('image/png', 120, 120), pn: 'PNG_TN' },
  { name: 'PNG 400x400 → PNG_LRG', res: img('image/png', 400, 400), pn: 'PNG_LRG' },
  { name: 'GIF 800x600 → GIF_LRG', res: img('image/gif', 800, 600), pn: 'GIF_LRG' },
  { name: 'WebP → none', res: img('image/webp', 800, 600), pn: undefined },
  // Audio.
  { name: 'MP3 44.1k stereo 320k → MP3', res: { mime: 'audio/mpeg', size: 1, audioCodec: 'mp3', sampleFrequency: 44100, nrAudioChannels: 2, bitrate: 40000 }, pn: 'MP3' },
  { name: 'MP3 22.05k → MP3X', res: { mime: 'audio/mpeg', size: 1, audioCodec: 'mp3', sampleFrequency: 22050, nrAudioChannels: 1, bitrate: 8000 }, pn: 'MP3X' },
  { name: 'MP3 11.025k → none', res: { mime: 'audio/mpeg', size: 1, audioCodec: 'mp3', sampleFrequency: 11025, nrAudioChannels: 1 }, pn: undefined },
  { name: 'MP2 in audio/mpeg → none', res: { mime: 'audio/mpeg', size: 1, audioCodec: 'mp2', sampleFrequency: 48000, nrAudioChannels: 2 }, pn: undefined },
  { name: 'audio/L16 44.1k stereo → LPCM', res: { mime: 'audio/L16;rate=44100;channels=2', size: 1, sampleFrequency: 44100, nrAudioChannels: 2 }, pn: 'LPCM' },
  { name: 'WAV → none (RIFF, not raw L16)', res: { mime: 'audio/wav', size: 1, audioCodec: 'pcm_s16le', sampleFrequency: 44100, nrAudioChannels: 2, bitsPerSample: 16 }, pn: undefined },
  { name: 'FLAC → none', res: { mime: 'audio/flac', size: 1, audioCodec: 'flac', sampleFrequency: 44100, nrAudioChannels: 2 }, pn: undefined },
  { name: 'm4a AAC-LC 256k stereo → AAC_ISO_320', res: { mime: 'audio/mp4', container: 'mp4', size: 1, audioCodec: 'aac;profile=lc', sampleFrequency: 44100, nrAudioChannels: 2, bitrate: 32000 }, pn: 'AAC_ISO_320' },
  { name: 'm4a AAC-LC 448k stereo → AAC_ISO', res: { mime: 'audio/mp4', container: 'mp4', size: 1, audioCodec: 'aac;profile=lc', sampleFrequency: 48000, nrAudioChannels: 2, bitrate: 56000 }, pn: 'AAC_ISO' },
  { name: 'm4a AAC-LC 5.1 → AAC_MULT5_ISO', res: { mime: 'audio/mp4', container: 'mp4', size: 1, audioCodec: 'aac;profile=lc', sampleFrequency: 48000, nrAudioChannels: 6, bitrate: 80000 }, pn: 'AAC_MULT5_ISO' },
  { name: 'm4a HE-AAC 64k → HEAAC_L2_ISO', res: { mime: 'audio/mp4', container: 'mp4', size: 1, audioCodec: 'aac;profile=he', sampleFrequency: 44100, nrAudioChannels: 2, bitrate: 8000 }, pn: 'HEAAC_L2_ISO' },
  { name: 'm4a AAC, profile unknown → none', res: { mime: 'audio/mp4', container: 'mp4', size: 1, audioCodec: 'aac', sampleFrequency: 44100, nrAudioChannels: 2, bitrate: 16000 }, pn: undefined },
  { name: 'm4a ALAC → none', res: { mime: 'audio/mp4', container: 'mp4', size: 1, audioCodec: 'alac', sampleFrequency: 44100, nrAudioChannels: 2, bitrate: 100000 }, pn: undefined },
  { name: 'WMA v2 128k → WMABASE', res: { mime: 'audio/x-ms-wma', size: 1, audioCodec: 'wmav2', sampleFrequency: 44100, nrAudioChannels: 2, bitrate: 16000 }, pn: 'WMABASE' },
  { name: 'WMA v2 320k → WMAFULL', res: { mime: 'audio/x-ms-wma', size: 1, audioCodec: 'wmav2', sampleFrequency: 44100, nrAudioChannels: 2, bitrate: 40000 }, pn: 'WMAFULL' },
  { name: 'WMA Pro → none', res: { mime: 'audio/x-ms-wma', size: 1, audioCodec: 'wmapro', sampleFrequency: 48000, nrAudioChannels: 6, bitrate: 40000 }, pn: undefined },
  // Video.
  { name: 'MP4 H.264 Main SD L3 + AAC-LC stereo', res: mp4('h264;profile=main;level=3', 'aac;profile=lc', 720, 576), pn: 'AVC_MP4_MP_SD_AAC_MULT5' },
  { name: 'MP4 H.264 Constrained Baseline SD + AAC-LC', res: mp4('h264;profile=constrained baseline;level=3', 'aac;profile=lc', 640, 360), pn: 'AVC_MP4_MP_SD_AAC_MULT5' },
  { name: 'MP4 H.264 Main SD + AC-3', res: mp4('h264;profile=main;level=3', 'ac3', 720, 480, 6), pn: 'AVC_MP4_MP_SD_AC3' },
  { name: 'MP4 H.264 Main SD level 3.1 → none', res: mp4('h264;profile=main;level=3.1', 'aac;profile=lc', 720, 576), pn: undefined },
  { name: 'MP4 H.264 Main 720p L3.1 + AAC → MP_HD_720p', res: mp4('h264;profile=main;level=3.1', 'aac;profile=lc', 1280, 720), pn: 'AVC_MP4_MP_HD_720p_AAC' },
  { name: 'MP4 H.264 Main 1080 → none (1080i profile)', res: mp4('h264;profile=main;level=4', 'aac;profile=lc', 1920, 1080), pn: undefined },
  { name: 'MP4 H.264 High 1080p L4 + AAC → HP_HD', res: mp4('h264;profile=high;level=4', 'aac;profile=lc', 1920, 1080), pn: 'AVC_MP4_HP_HD_AAC' },
  { name: 'MP4 H.264 High 1080p L4.1 → none', res: mp4('h264;profile=high;level=4.1', 'aac;profile=lc', 1920, 1080), pn: undefined },
  { name: 'MP4 H.264 High SD size → none', res: mp4('h264;profile=high;level=3', 'aac;profile=lc', 640, 360), pn: undefined },
  { name: 'MP4 H.264 High 1080p, AAC 5.1 → none', res: mp4('h264;profile=high;level=4', 'aac;profile=lc', 1920, 1080, 6), pn: undefined },
  { name: 'MP4 H.264 without profile → none', res: mp4('h264', 'aac;profile=lc', 1280, 720), pn: undefined },
  { name: 'MP4 H.264 without audio → none', res: mp4('h264;profile=main;level=3', undefined, 720, 576), pn: undefined },
  { name: 'MP4 HEVC → none', res: mp4('hevc;profile=main;level=4', 'aac;profile=lc', 1920, 1080), pn: undefined },
  { name: 'MOV (video/quicktime) H.264 → none', res: { ...mp4('h264;profile=main;level=3', 'aac;profile=lc', 720, 576), mime: 'video/quicktime', container: 'mov' }, pn: undefined },
  { name: 'MKV H.264 → none', res: { ...mp4('h264;profile=high;level=4', 'aac;profile=lc', 1920, 1080), mime: 'video/x-matroska', container: 'mkv' }, pn: undefined },
  { name: 'AVI MJPEG → none', res: { mime: 'video/x-msvideo', container: 'avi', size: 1, width: 320, height: 240, videoCodec: 'mjpeg', audioCodec: 'pcm_s16le' }, pn: undefined },
  { name: 'MPEG-PS MPEG-2 720x576 + MP2 → PAL', res: { mime: 'video/mpeg', container: 'mpegps', size: 1, width: 720, height: 576, videoCodec: 'mpeg2video;profile=main', audioCodec: 'mp2' }, pn: 'MPEG_PS_PAL' },
  { name: 'MPEG-PS MPEG-2 720x480 + AC-3 → NTSC', res: { mime: 'video/mpeg', container: 'mpegps', size: 1, width: 720, height: 480, videoCodec: 'mpeg2video', audioCodec: 'ac3' }, pn: 'MPEG_PS_NTSC' },
  { name: 'MPEG-PS MPEG-2 1920x1080 → none', res: { mime: 'video/mpeg', container: 'mpegps', size: 1, width: 1920, height: 1080, videoCodec: 'mpeg2video', audioCodec: 'ac3' }, pn: undefined },
  { name: 'MPEG-PS with AAC audio → none', res: { mime: 'video/mpeg', container: 'mpegps', size: 1, width: 720, height: 576, videoCodec: 'mpeg2video', audioCodec: 'aac;profile=lc' }, pn: undefined },
  { name: 'TS MPEG-2 576 + MP2 → SD_EU_ISO', res: { mime: 'video/mpeg', container: 'mpegts', size: 1, width: 720, height: 576, videoCodec: 'mpeg2video', audioCodec: 'mp2' }, pn: 'MPEG_TS_SD_EU_ISO' },
  { name: 'TS MPEG-2 480 + AC-3 → SD_NA_ISO', res: { mime: 'video/mpeg', container: 'mpegts', size: 1, width: 704, height: 480, videoCodec: 'mpeg2video', audioCodec: 'ac3' }, pn: 'MPEG_TS_SD_NA_ISO' },
  { name: 'TS MPEG-2 1080 + AC-3 → HD_NA_ISO', res: { mime: 'video/mpeg', container: 'mpegts', size: 1, width: 1920, height: 1080, videoCodec: 'mpeg2video', audioCodec: 'ac3' }, pn: 'MPEG_TS_HD_NA_ISO' },
  { name: 'TS H.264 → none', res: { mime: 'video/mpeg', container: 'mpegts', size: 1, width: 1920, height: 1080, videoCodec: 'h264;profile=high;level=4', audioCodec: 'ac3' }, pn: undefined },
  { name: 'M2TS (192-byte packets) MPEG-2 → none', res: { mime: 'video/vnd.dlna.mpeg-tts', container: 'm2ts', size: 1, width: 1920, height: 1080, videoCodec: 'mpeg2video', audioCodec: 'ac3' }, pn: undefined },
  { name: 'video without codec info → none', res: { mime: 'video/mp4', container: 'mp4', size: 1 }, pn: undefined },
  { name: 'unknown top-level type → none', res: { mime: 'application/octet-stream', size: 1 }, pn: undefined },
];

for (const c of CASES) {
  test(`PN: ${c.name}`, (t) => {
    t.is(dlnaProfile(c.res), c.pn);
  });
}

test('formatDuration: H+:MM:SS.FFF', (t) => {
  t.is(formatDuration(205.123), '0:03:25.123');
  t.is(formatDuration(0), '0:00:00.000');
  t.is(formatDuration(4), '0:00:04.000');
  t.is(formatDuration(3600), '1:00:00.000');
  t.is(formatDuration(25 * 3600 + 61.5), '25:01:01.500');
  t.is(formatDuration(59.9996), '0:01:00.000'); // rounds to the millisecond first, never "0:00:60.000"
  t.is(formatDuration(0.0004), '0:00:00.000');
  t.is(formatDuration(Number.NaN), '0:00:00.000');
  t.is(formatDuration(-3), '0:00:00.000');
  t.is(formatDuration(Number.POSITIVE_INFINITY), '0:00:00.000');
});
