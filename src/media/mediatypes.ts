// Which files are media, of what kind, and with what MIME type.
//
// The scanner calls mediaTypeOf() on every file name; `undefined` means "not
// media, skip it". The MIME types start from the `mime-types` database and are
// overridden where DLNA renderers expect something else than the IANA/Apache
// default (what established DLNA servers send).
//
// Also home of the codec-string convention used in Resource.videoCodec /
// Resource.audioCodec (see formatCodec/parseCodec below).

import { lookup } from 'mime-types';
import { extname } from 'node:path';
import type { MediaKind } from '../catalog/types.js';

export interface MediaType {
  kind: MediaKind;
  mime: string;
}

/**
 * Known media extensions. A value of `null` takes the MIME type from the
 * mime-types database; a string overrides it.
 */
const TABLE: Record<MediaKind, Record<string, string | null>> = {
  audio: {
    mp3: null, // audio/mpeg
    mp2: null, // audio/mpeg
    m4a: 'audio/mp4',
    m4b: 'audio/mp4',
    aac: 'audio/aac', // ADTS; the DLNA ADTS profile MIME (audio/vnd.dlna.adts) is only used with a PN
    flac: 'audio/flac', // mime-db says audio/x-flac; renderers accept audio/flac (RFC 9639)
    wav: 'audio/wav',
    ogg: 'audio/ogg',
    oga: 'audio/ogg',
    opus: 'audio/ogg',
    wma: null, // audio/x-ms-wma
    aif: 'audio/aiff',
    aiff: 'audio/aiff',
    aifc: 'audio/aiff',
    ape: 'audio/x-ape',
    wv: 'audio/x-wavpack',
    mka: 'audio/x-matroska',
    mpc: 'audio/x-musepack',
    dsf: 'audio/x-dsf',
    dff: 'audio/x-dff',
    ac3: 'audio/ac3',
    weba: 'audio/webm',
  },
  video: {
    mp4: null, // video/mp4
    m4v: 'video/mp4', // mime-db: video/x-m4v, which many TVs do not know
    mov: null, // video/quicktime
    mkv: 'video/x-matroska',
    webm: 'video/webm',
    avi: 'video/x-msvideo',
    divx: 'video/x-msvideo',
    wmv: null, // video/x-ms-wmv
    asf: null, // video/x-ms-asf
    mpg: 'video/mpeg',
    mpeg: 'video/mpeg',
    mpe: 'video/mpeg',
    m2v: 'video/mpeg',
    vob: 'video/mpeg', // mime-db: video/x-ms-vob; it is an MPEG-2 program stream
    ts: 'video/mpeg', // 188-byte packets: DLNA *_ISO profiles use video/mpeg
    m2ts: 'video/vnd.dlna.mpeg-tts', // 192-byte timestamped packets (BDAV/AVCHD)
    mts: 'video/vnd.dlna.mpeg-tts',
    '3gp': null, // video/3gpp
    '3g2': null, // video/3gpp2
    flv: null, // video/x-flv
    ogv: null, // video/ogg
  },
  image: {
    jpg: 'image/jpeg',
    jpeg: 'image/jpeg',
    jpe: 'image/jpeg',
    png: null,
    gif: null,
    bmp: null,
    webp: null,
    tif: 'image/tiff',
    tiff: 'image/tiff',
    heic: null,
    heif: null,
    avif: null,
  },
};

const BY_EXT = new Map<string, MediaType>();
for (const kind of Object.keys(TABLE) as MediaKind[]) {
  for (const [ext, override] of Object.entries(TABLE[kind])) {
    const mime = override ?? lookup(ext);
    if (!mime) throw new Error(`mediatypes: no MIME type known for .${ext}`);
    BY_EXT.set(ext, { kind, mime });
  }
}

/** Lower-case extension without the dot ('' when none). */
export function extensionOf(path: string): string {
  return extname(path).slice(1).toLowerCase();
}

/** Kind and MIME type of a media file by its extension; undefined for files that are not media. */
export function mediaTypeOf(path: string): MediaType | undefined {
  const ext = extensionOf(path);
  if (!ext) return undefined;
  const t = BY_EXT.get(ext);
  return t ? { ...t } : undefined;
}

/** Short container name for Resource.container, from the file extension. */
export function containerOf(path: string): string | undefined {
  const ext = extensionOf(path);
  const map: Record<string, string> = {
    mp3: 'mp3', mp2: 'mp2', m4a: 'mp4', m4b: 'mp4', mp4: 'mp4', m4v: 'mp4', '3gp': '3gp', '3g2': '3gp',
    mov: 'mov', aac: 'adts', flac: 'flac', wav: 'wav', ogg: 'ogg', oga: 'ogg', opus: 'ogg', ogv: 'ogg',
    wma: 'asf', wmv: 'asf', asf: 'asf', aif: 'aiff', aiff: 'aiff', aifc: 'aiff', ape: 'ape', wv: 'wavpack',
    mka: 'mkv', mkv: 'mkv', webm: 'webm', weba: 'webm', mpc: 'musepack', dsf: 'dsf', dff: 'dff', ac3: 'ac3',
    avi: 'avi', divx: 'avi', mpg: 'mpegps', mpeg: 'mpegps', mpe: 'mpegps', vob: 'mpegps', m2v: 'mpegvideo',
    ts: 'mpegts', m2ts: 'm2ts', mts: 'm2ts', flv: 'flv',
    jpg: 'jpeg', jpeg: 'jpeg', jpe: 'jpeg', png: 'png', gif: 'gif', bmp: 'bmp', webp: 'webp',
    tif: 'tiff', tiff: 'tiff', heic: 'heif', heif: 'heif', avif: 'avif',
  };
  return map[ext];
}

// ---------------------------------------------------------------------------
// Codec strings
//
// Resource.videoCodec / audioCodec hold `<name>[;profile=<p>][;level=<l>]`:
// `name` is the FFmpeg codec name (h264, hevc, mpeg2video, mpeg4, mjpeg, vp9,
// av1, aac, mp3, ac3, flac, pcm_s16le, wmav2 ...), `profile` a lower-case
// profile name ('high', 'main', 'constrained baseline', 'lc', 'he', 'hev2'),
// `level` the codec level as a decimal ('4.1'). DLNA profile selection needs
// profile and level; everything else can look at the name only.

export interface CodecInfo {
  name: string;
  profile?: string;
  level?: string;
}

export function formatCodec(c: CodecInfo): string {
  let s = c.name;
  if (c.profile) s += `;profile=${c.profile}`;
  if (c.level) s += `;level=${c.level}`;
  return s;
}

export function parseCodec(s: string | undefined): CodecInfo | undefined {
  if (!s) return undefined;
  const [name, ...params] = s.split(';');
  const out: CodecInfo = { name: name.trim().toLowerCase() };
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const k = p.slice(0, eq).trim().toLowerCase();
    const v = p.slice(eq + 1).trim();
    if (k === 'profile' && v) out.profile = v.toLowerCase();
    else if (k === 'level' && v) out.level = v;
  }
  return out;
}

/** H.264 profile_idc (+ constraint_set1 flag) → profile name as FFmpeg prints it, lower-cased. */
export function h264ProfileName(profileIdc: number, constraintFlags = 0): string | undefined {
  switch (profileIdc) {
    case 66:
      return constraintFlags & 0x40 ? 'constrained baseline' : 'baseline';
    case 77:
      return 'main';
    case 88:
      return 'extended';
    case 100:
      return 'high';
    case 110:
      return 'high 10';
    case 122:
      return 'high 4:2:2';
    case 244:
      return 'high 4:4:4 predictive';
    default:
      return undefined;
  }
}

/** H.264 level_idc → '3', '3.1', '4' ... (level_idc 9 is level 1b). */
export function h264LevelName(levelIdc: number): string | undefined {
  if (!levelIdc) return undefined;
  if (levelIdc === 9) return '1b';
  const major = Math.floor(levelIdc / 10);
  const minor = levelIdc % 10;
  return minor ? `${major}.${minor}` : String(major);
}

/** MPEG-4 audio object type (from an esds/AudioSpecificConfig) → AAC profile name. */
export function aacProfileName(objectType: number): string | undefined {
  switch (objectType) {
    case 1:
      return 'main';
    case 2:
      return 'lc';
    case 3:
      return 'ssr';
    case 4:
      return 'ltp';
    case 5:
      return 'he';
    case 29:
      return 'hev2';
    default:
      return undefined;
  }
}
