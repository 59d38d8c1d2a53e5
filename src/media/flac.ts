// Fast path for the tags and stream info of a plain FLAC file held in memory (the scanner reads
// small files whole). music-metadata builds every tag format's case-insensitive mapping tables
// for each file it parses, which cost a probe worker about a third of its CPU on a library of
// FLAC files (and most of its garbage). This reads the few fields the probe uses, with exactly
// music-metadata's results, and only for files where that is simple to be sure of: the FLAC
// marker at offset 0 (no ID3v2 before it), well-formed metadata blocks, one Vorbis comment block
// whose comments are all known to this reader, no picture when pictures are asked for, no ID3v1
// or APEv2 tag at the end. Anything else answers undefined, and the caller asks music-metadata.

/** What probeAudio reads of music-metadata's IAudioMetadata, as music-metadata would set it. */
export interface FlacTags {
  common: {
    title?: string;
    artist?: string;
    artists?: string[];
    albumartist?: string;
    album?: string;
    genre?: string[];
    date?: string;
    originaldate?: string;
    year?: number;
    track: { no: number | null; of: number | null };
    disk: { no: number | null; of: number | null };
  };
  format: {
    codec?: string;
    lossless?: boolean;
    numberOfChannels?: number;
    bitsPerSample?: number;
    sampleRate?: number;
    duration?: number;
    bitrate?: number;
  };
}

const STREAMINFO = 0;
const VORBIS_COMMENT = 4;
const PICTURE = 6;
/** Blocks music-metadata skips without reading: padding, application, seek table, cue sheet. */
const SKIPPED = new Set([1, 2, 3, 5]);

/** Comments this reader maps (to the fields probeAudio reads); each may appear once. */
const MAPPED = new Set(['TITLE', 'ARTIST', 'ALBUMARTIST', 'ALBUM', 'GENRE', 'DATE', 'TRACKNUMBER', 'DISCNUMBER']);
/**
 * Comments music-metadata maps to fields probeAudio does not read (or to none): they change
 * nothing here. Any other comment (ARTISTS, ORIGINALDATE, STYLE, a picture, ...) leaves the file
 * to music-metadata.
 */
const IGNORED = new Set([
  'ENCODER',
  'VENDOR',
  'COMMENT',
  'DESCRIPTION',
  'TRACKTOTAL',
  'TOTALTRACKS',
  'DISCTOTAL',
  'TOTALDISCS',
  'COMPOSER',
  'COPYRIGHT',
  'LICENSE',
  'ISRC',
  'BPM',
  'REPLAYGAIN_TRACK_GAIN',
  'REPLAYGAIN_TRACK_PEAK',
  'REPLAYGAIN_ALBUM_GAIN',
  'REPLAYGAIN_ALBUM_PEAK',
]);

// music-metadata decodes Vorbis comments with a WHATWG TextDecoder (replacement characters, BOM dropped)
const utf8 = new TextDecoder('utf-8');

/** music-metadata's reading of a "n" or "n/m" track or disc number. */
function normalizeTrack(v: string): { no: number | null; of: number | null } {
  const split = v.split('/');
  return { no: Number.parseInt(split[0], 10) || null, of: Number.parseInt(split[1], 10) || null };
}

/**
 * Tags and stream info of the FLAC file in `buf` (the whole file, `size` bytes), or undefined when
 * this reader does not take it (see the top of the file). `pictures`: the caller wants embedded
 * pictures, which this reader does not read.
 */
export function readFlacTags(buf: Buffer, size: number, pictures: boolean): FlacTags | undefined {
  if (buf.length !== size || size < 8 || buf.toString('latin1', 0, 4) !== 'fLaC') return undefined;
  const out: FlacTags = { common: { track: { no: null, of: null }, disk: { no: null, of: null } }, format: {} };
  let pos = 4;
  let last = false;
  let comments: Buffer | undefined;
  while (!last) {
    if (pos + 4 > size) return undefined;
    last = (buf[pos] & 0x80) !== 0;
    const type = buf[pos] & 0x7f;
    const len = buf.readUIntBE(pos + 1, 3);
    pos += 4;
    if (pos + len > size) return undefined;
    if (type === STREAMINFO) {
      if (len !== 34 || out.format.codec) return undefined;
      const b12 = buf[pos + 12];
      const b13 = buf[pos + 13];
      out.format.codec = 'FLAC';
      out.format.lossless = true;
      out.format.numberOfChannels = ((b12 >> 1) & 0x07) + 1;
      out.format.bitsPerSample = (((b12 & 0x01) << 4) | (b13 >> 4)) + 1;
      out.format.sampleRate = buf.readUIntBE(pos + 10, 3) >> 4;
      // music-metadata's 36-bit reading, with its 32-bit shifts: (b13 & 0x0f) << 32 is b13 & 0x0f
      const totalSamples = (b13 & 0x0f) | (((buf[pos + 14] << 24) | (buf[pos + 15] << 16) | (buf[pos + 16] << 8) | buf[pos + 17]) >> 0);
      if (totalSamples > 0) out.format.duration = totalSamples / out.format.sampleRate;
    } else if (type === VORBIS_COMMENT) {
      if (comments) return undefined;
      comments = buf.subarray(pos, pos + len);
    } else if (type === PICTURE) {
      if (pictures) return undefined;
    } else if (!SKIPPED.has(type)) return undefined;
    pos += len;
  }
  // an ID3v1 or APEv2 tag at the end would add to the tags
  if (size >= 128 && buf.toString('latin1', size - 128, size - 125) === 'TAG') return undefined;
  if (buf.includes('APETAGEX', Math.max(0, size - 512), 'latin1')) return undefined;
  if (comments && !readComments(comments, out.common)) return undefined;
  if (out.format.duration) out.format.bitrate = (8 * (size - pos)) / out.format.duration;
  return out;
}

/** The Vorbis comments into `common` as music-metadata maps them; false for anything this reader does not take. */
function readComments(data: Buffer, common: FlacTags['common']): boolean {
  let at = 0;
  const string = (): string | undefined => {
    if (at + 4 > data.length) return undefined;
    const len = data.readUInt32LE(at);
    at += 4;
    if (at + len > data.length) return undefined;
    const s = utf8.decode(data.subarray(at, at + len));
    at += len;
    return s;
  };
  if (string() === undefined) return false; // vendor
  if (at + 4 > data.length) return false;
  const count = data.readUInt32LE(at);
  at += 4;
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const c = string();
    if (c === undefined) return false;
    const eq = c.indexOf('=');
    if (eq <= 0) return false;
    const key = c.substring(0, eq).toUpperCase();
    const value = c.substring(eq + 1);
    if (IGNORED.has(key)) continue;
    if (!MAPPED.has(key) || seen.has(key)) return false;
    seen.add(key);
    switch (key) {
      case 'TITLE':
        common.title = value;
        break;
      case 'ARTIST':
        common.artist = value;
        common.artists = [value];
        break;
      case 'ALBUMARTIST':
        common.albumartist = value;
        break;
      case 'ALBUM':
        common.album = value;
        break;
      case 'GENRE':
        common.genre = [value];
        break;
      case 'DATE': {
        const year = Number.parseInt(value.substr(0, 4), 10);
        if (!Number.isNaN(year)) common.year = year;
        common.date = value;
        break;
      }
      case 'TRACKNUMBER':
        common.track = normalizeTrack(value);
        break;
      case 'DISCNUMBER':
        common.disk = normalizeTrack(value);
        break;
    }
  }
  return true;
}
