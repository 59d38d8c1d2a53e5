// DLNA media profiles (DLNA.ORG_PN) and the protocolInfo / contentFeatures
// strings built from them.
//
// Profile policy: be right rather than exhaustive. A PN is only given when
// the container, MIME type, codecs (incl. profile/level where the profile
// restricts them) and resolution are known and fit the profile; a wrong PN
// makes renderers refuse content they would happily play without one.
// FLAC, Matroska, WebM, Ogg, AVI, WAV (RIFF, not raw L16) have no DLNA profile.

import type { Resource } from '../catalog/types.js';
import { parseCodec } from './mediatypes.js';

// --- DLNA.ORG_FLAGS -------------------------------------------------------------
// 32 hex digits = 128 bits; only the top 32 bits ("primary flags") are defined,
// the remaining 96 are reserved and sent as zeros. Bit numbers below count in
// that top 32-bit word (bit 31 = most significant).

/** bit 31: content is sent at its playback rate by the server (not for HTTP file serving). */
export const FLAG_SENDER_PACED = 1 << 31;
// bit 30 (lop-npt: limited random access, time based) is never set.
/** bit 29: limited random access, byte based (lsop). We offer full byte seeking instead (OP=01). */
export const FLAG_LOP_BYTES = 1 << 29;
// bits 28-25 (PlayContainer URI; s0 / sN increasing, i.e. growing content; RTSP pause) are never set.
/** bit 24: Streaming transfer mode: the client renders while receiving (audio/video). */
export const FLAG_TM_STREAMING = 1 << 24;
/** bit 23: Interactive transfer mode: the client renders once received (images). */
export const FLAG_TM_INTERACTIVE = 1 << 23;
/** bit 22: Background transfer mode: plain download (copying) is allowed. */
export const FLAG_TM_BACKGROUND = 1 << 22;
/** bit 21: HTTP connection stalling: a client may pause by stopping reading; the server keeps the connection. */
export const FLAG_HTTP_STALLING = 1 << 21;
/** bit 20: the server follows DLNA guidelines v1.5. */
export const FLAG_DLNA_V15 = 1 << 20;

/** Formats primary flags as the 32-hex-digit DLNA.ORG_FLAGS value. */
export function formatFlags(primary: number): string {
  return (primary >>> 0).toString(16).toUpperCase().padStart(8, '0') + '0'.repeat(24);
}

/** DLNA.ORG_OP: "ab", a = time-seek (TimeSeekRange.dlna.org) supported, b = byte seek (Range) supported. */
export const DLNA_OP_BYTE_SEEK = '01';
/** DLNA.ORG_CI: 0 = content is not converted (served as stored). */
export const DLNA_CI_ORIGINAL = '0';

export type TransferMode = 'Streaming' | 'Interactive';

function kindOf(res: Resource): 'audio' | 'video' | 'image' | undefined {
  const top = res.mime.split('/')[0].toLowerCase();
  return top === 'audio' || top === 'video' || top === 'image' ? top : undefined;
}

/** transferMode.dlna.org for the resource: Interactive for images, Streaming for audio/video. */
export function transferModeFor(res: Resource): TransferMode {
  return kindOf(res) === 'image' ? 'Interactive' : 'Streaming';
}

/**
 * Primary flags for the resource. Audio/video: streaming + background + HTTP
 * stalling (pausing by not reading is how HTTP players pause) + DLNA 1.5 =
 * 0x01700000. Images: interactive + background + DLNA 1.5 = 0x00D00000
 * (stalling is about pausing a stream; it means nothing for an image).
 */
export function dlnaFlags(res: Resource): number {
  if (transferModeFor(res) === 'Interactive') return (FLAG_TM_INTERACTIVE | FLAG_TM_BACKGROUND | FLAG_DLNA_V15) >>> 0;
  return (FLAG_TM_STREAMING | FLAG_TM_BACKGROUND | FLAG_HTTP_STALLING | FLAG_DLNA_V15) >>> 0;
}

/** 4th protocolInfo field, also the value of the contentFeatures.dlna.org header. */
export function contentFeatures(res: Resource): string {
  const pn = res.dlnaProfile ?? dlnaProfile(res);
  const parts: string[] = [];
  if (pn) parts.push(`DLNA.ORG_PN=${pn}`);
  parts.push(`DLNA.ORG_OP=${DLNA_OP_BYTE_SEEK}`, `DLNA.ORG_CI=${DLNA_CI_ORIGINAL}`, `DLNA.ORG_FLAGS=${formatFlags(dlnaFlags(res))}`);
  return parts.join(';');
}

/** res@protocolInfo: `http-get:*:<mime>:<contentFeatures>`. */
export function protocolInfo(res: Resource): string {
  return `http-get:*:${res.mime}:${contentFeatures(res)}`;
}

/** UPnP duration form H+:MM:SS.FFF (res@duration). */
export function formatDuration(seconds: number): string {
  const totalMs = Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1000) : 0;
  const ms = totalMs % 1000;
  const totalS = Math.floor(totalMs / 1000);
  const s = totalS % 60;
  const m = Math.floor(totalS / 60) % 60;
  const h = Math.floor(totalS / 3600);
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(ms).padStart(3, '0')}`;
}

// --- profile selection ------------------------------------------------------------

const fits = (res: Resource, w: number, h: number): boolean => res.width !== undefined && res.height !== undefined && res.width <= w && res.height <= h;

function mimeBase(res: Resource): string {
  return res.mime.split(';')[0].trim().toLowerCase();
}

/** The DLNA.ORG_PN value that applies to the resource, or undefined when none is known to apply. */
export function dlnaProfile(res: Resource): string | undefined {
  switch (kindOf(res)) {
    case 'image':
      return imageProfile(res);
    case 'audio':
      return audioProfile(res);
    case 'video':
      return videoProfile(res);
    default:
      return undefined;
  }
}

function imageProfile(res: Resource): string | undefined {
  const mime = mimeBase(res);
  if (res.width === undefined || res.height === undefined || res.width <= 0 || res.height <= 0) return undefined;
  if (mime === 'image/jpeg') {
    if (fits(res, 160, 160)) return 'JPEG_TN';
    if (fits(res, 640, 480)) return 'JPEG_SM';
    if (fits(res, 1024, 768)) return 'JPEG_MED';
    if (fits(res, 4096, 4096)) return 'JPEG_LRG';
    return undefined;
  }
  if (mime === 'image/png') {
    if (fits(res, 160, 160)) return 'PNG_TN';
    if (fits(res, 4096, 4096)) return 'PNG_LRG';
    return undefined;
  }
  if (mime === 'image/gif') return fits(res, 1600, 1200) ? 'GIF_LRG' : undefined;
  return undefined;
}

function audioProfile(res: Resource): string | undefined {
  const mime = mimeBase(res);
  const codec = parseCodec(res.audioCodec);
  const rate = res.sampleFrequency;
  const ch = res.nrAudioChannels;
  const kbps = res.bitrate !== undefined ? (res.bitrate * 8) / 1000 : undefined;

  // Raw big-endian 16-bit PCM (audio/L16;rate=..;channels=..): the LPCM profile.
  if (mime === 'audio/l16') {
    if ((rate === 44100 || rate === 48000) && (ch === 1 || ch === 2)) return 'LPCM';
    return undefined;
  }
  if (mime === 'audio/mpeg' && codec?.name === 'mp3') {
    if (ch !== undefined && ch > 2) return undefined;
    if (rate === 32000 || rate === 44100 || rate === 48000) return kbps === undefined || kbps <= 320 ? 'MP3' : undefined;
    if (rate === 16000 || rate === 22050 || rate === 24000) return 'MP3X';
    return undefined;
  }
  if (mime === 'audio/mp4' && res.container === 'mp4' && codec?.name === 'aac' && rate !== undefined && rate <= 48000 && ch !== undefined) {
    if (codec.profile === 'lc') {
      if (ch <= 2 && kbps !== undefined && kbps <= 320) return 'AAC_ISO_320';
      if (ch <= 2 && kbps !== undefined && kbps <= 576) return 'AAC_ISO';
      if (ch <= 6 && kbps !== undefined && kbps <= 1440) return 'AAC_MULT5_ISO';
      return undefined;
    }
    if (codec.profile === 'he' || codec.profile === 'hev2') {
      if (ch <= 2 && kbps !== undefined && kbps <= 128) return 'HEAAC_L2_ISO';
      return undefined;
    }
    return undefined;
  }
  if ((mime === 'audio/x-ms-wma' || mime === 'audio/x-ms-asf') && codec?.name === 'wmav2' && rate !== undefined && rate <= 48000) {
    if (ch === undefined || ch > 2 || kbps === undefined) return undefined;
    if (kbps <= 193) return 'WMABASE';
    if (kbps <= 385) return 'WMAFULL';
    return undefined;
  }
  return undefined;
}

/** True when the H.264 stream decodes with a Main-profile decoder (Main, or Constrained Baseline). */
function isMainCompatible(profile: string | undefined): boolean {
  return profile === 'main' || profile === 'constrained baseline';
}

/** Known level ≤ max (an unknown level never qualifies). */
function levelAtMost(level: string | undefined, max: number): boolean {
  if (!level) return false;
  if (level === '1b') return true;
  const n = Number(level);
  return Number.isFinite(n) && n <= max;
}

function videoProfile(res: Resource): string | undefined {
  const mime = mimeBase(res);
  const v = parseCodec(res.videoCodec);
  const a = parseCodec(res.audioCodec);
  if (!v || res.width === undefined || res.height === undefined) return undefined;

  // H.264 in MP4.
  if (mime === 'video/mp4' && res.container === 'mp4' && v.name === 'h264') {
    if (!a) return undefined; // AV profiles describe both streams
    const aacLc = a.name === 'aac' && a.profile === 'lc';
    const ch = res.nrAudioChannels;
    const sd = fits(res, 720, 576);
    if (isMainCompatible(v.profile) && sd && levelAtMost(v.level, 3)) {
      if (aacLc && ch !== undefined && ch <= 6) return 'AVC_MP4_MP_SD_AAC_MULT5';
      if (a.name === 'ac3') return 'AVC_MP4_MP_SD_AC3';
      if (a.name === 'mp3') return 'AVC_MP4_MP_SD_MPEG1_L3';
      return undefined;
    }
    const stereoAac = aacLc && ch !== undefined && ch <= 2;
    if (v.profile === 'main' && stereoAac) {
      // Main-profile 1080 lines: the DLNA profile is for 1080i, and we cannot tell interlacing here.
      if (res.width === 1280 && res.height === 720 && levelAtMost(v.level, 3.1)) return 'AVC_MP4_MP_HD_720p_AAC';
      return undefined;
    }
    // High profile: only for the usual HD frame sizes (the profile's resolution list; SD-sized High streams get no PN).
    const hdSize = (res.height === 1080 && (res.width === 1920 || res.width === 1440)) || (res.height === 720 && res.width === 1280);
    if (v.profile === 'high' && stereoAac && hdSize && levelAtMost(v.level, 4)) return 'AVC_MP4_HP_HD_AAC';
    return undefined;
  }

  // MPEG-2 video in an MPEG-2 program stream (DVD-like): PAL or NTSC by frame height.
  if (mime === 'video/mpeg' && res.container === 'mpegps' && v.name === 'mpeg2video') {
    if (a && !['mp2', 'ac3', 'pcm_dvd', 'pcm_s16be', 'mp1'].includes(a.name)) return undefined;
    const w = res.width;
    if (res.height === 576 && [720, 704, 544, 480, 352].includes(w)) return 'MPEG_PS_PAL';
    if (res.height === 288 && w === 352) return 'MPEG_PS_PAL';
    if (res.height === 480 && [720, 704, 640, 544, 480, 352].includes(w)) return 'MPEG_PS_NTSC';
    if (res.height === 240 && w === 352) return 'MPEG_PS_NTSC';
    return undefined;
  }

  // MPEG-2 video in a 188-byte transport stream (.ts): the *_ISO profiles (no timestamp field).
  if (mime === 'video/mpeg' && res.container === 'mpegts' && v.name === 'mpeg2video' && a) {
    const sd576 = res.height === 576 && res.width <= 720;
    const sd480 = res.height === 480 && res.width <= 720;
    const hd = (res.height === 1080 && (res.width === 1920 || res.width === 1440)) || (res.height === 720 && res.width === 1280);
    if (sd576 && (a.name === 'mp2' || a.name === 'ac3')) return 'MPEG_TS_SD_EU_ISO';
    if (sd480 && a.name === 'ac3') return 'MPEG_TS_SD_NA_ISO';
    if (hd && a.name === 'ac3') return 'MPEG_TS_HD_NA_ISO';
    return undefined;
  }
  return undefined;
}

/**
 * Samsung's `MediaInfo.sec` answer to `getMediaInfo.sec: 1`: `SEC_Duration=<ms>;` (as MiniDLNA,
 * Serviio and PS3 Media Server send it; its players show and seek by it), undefined when the
 * duration is unknown.
 */
export function secMediaInfo(durationS: number | undefined): string | undefined {
  return durationS !== undefined && Number.isFinite(durationS) && durationS > 0 ? `SEC_Duration=${Math.round(durationS * 1000)};` : undefined;
}
