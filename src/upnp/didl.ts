// DIDL-Lite serializer (ContentDirectory:1 Browse/Search results). The hot path of
// Browse: plain string building, no DOM; every value goes through util/xml.ts, which
// escapes and drops XML-illegal characters, so one bad tag never breaks a page.
//
// Filter (CDS:1 §2.5.7): '*' (or a '*' anywhere in the list) → every property we
// have. Otherwise a comma-separated list of property names (case-insensitive) picks
// the optional ones; dc:title, upnp:class and the id/parentID/restricted attributes
// are always written. Decisions where clients differ from the letter of the spec:
//   - `res@size` (or any other `res@...`) without `res` still writes the res element:
//     a res attribute cannot exist without its element, and clients that list only
//     attributes expect the URL too (MiniDLNA/Gerbera behave the same). protocolInfo
//     is required on res, so it always comes with it.
//   - `@childCount` / `@searchable` (containers) and `@refID` (items) are optional
//     attributes: written only when listed or under '*'.
//   - `upnp:artist` covers the performer and the album artist
//     (`<upnp:artist role="AlbumArtist">`); `upnp:artist@role` alone also selects both.
//   - dc:creator falls back to the artist (as the search engine's property map does).
//   - dc:date is written as an xsd date: a bare year becomes YYYY-01-01 and a year and
//     month YYYY-MM-01, which TVs parse; anything that is not ISO 8601 is left out.

import { LRUCache } from 'lru-cache';
import type { CatalogObject, Resource } from '../catalog/types.js';
import { formatDuration } from '../media/dlna.js';
import { preferredCaption } from '../media/subtitles.js';
import { escAttr, escText } from '../util/xml.js';
import type { ClientProfile } from './clients.js';

/** res@duration form H+:MM:SS.mmm (shared with src/media/dlna.ts). */
export { formatDuration };

export const DIDL_NS = 'urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/';
export const DC_NS = 'http://purl.org/dc/elements/1.1/';
export const UPNP_NS = 'urn:schemas-upnp-org:metadata-1-0/upnp/';
export const DLNA_NS = 'urn:schemas-dlna-org:metadata-1-0/';
export const SEC_NS = 'http://www.sec.co.kr/';

/** What identifies an object of a page (a bookmark needs no more). */
export type ObjectRef = Pick<CatalogObject, 'id' | 'refId' | 'container'>;

export type AlbumArt = string | { url: string; profileId?: string };

export interface DidlOptions {
  /** http://host:port the client used. */
  baseUrl: string;
  /** The Filter argument: '*' or a comma-separated property list. */
  filter: string;
  /** protocolInfo of a resource (the 4 fields, DLNA flags included). */
  protocolInfo: (res: Resource) => string;
  /** Full URL of an item's resource; default `${baseUrl}/media/<id>.<ext>`. */
  resUrl?: (obj: CatalogObject) => string;
  /** Album art / thumbnail URL of an object, when it has one. */
  albumArtUrl?: (obj: CatalogObject) => AlbumArt | undefined;
  /** Thumbnail of an image or video item, announced as an extra `res` (JPEG_TN). */
  thumbnail?: (obj: CatalogObject) => { url: string; protocolInfo: string; width?: number; height?: number } | undefined;
  /**
   * Subtitles of a video item (URL, MIME type, format), announced as the client's profile says:
   * `captionRes` an extra `res` per subtitle, `captionInfoSec` one `sec:CaptionInfoEx` (SRT first, see preferredCaption).
   */
  captions?: (obj: CatalogObject) => { url: string; mime: string; type: string }[];
  /** Stored resume position in seconds (Samsung X_SetBookmark), when there is one. */
  bookmark?: (obj: ObjectRef) => number | undefined;
  client?: ClientProfile;
}

// ---------------------------------------------------------------------------
// Filter

/** A parsed Filter argument. Names are lower-cased. */
export interface DidlFilter {
  readonly all: boolean;
  readonly names: ReadonlySet<string>;
}

/** Clients send the same few filters over and over; odd huge ones are not kept. */
const filterCache = new LRUCache<string, DidlFilter>({ max: 64 });

export function parseFilter(filter: string | undefined): DidlFilter {
  const key = filter ?? '*';
  const hit = filterCache.get(key);
  if (hit) return hit;
  const names = new Set<string>();
  let all = false;
  for (const part of key.split(',')) {
    const n = part.trim().toLowerCase();
    if (!n) continue;
    if (n === '*') all = true;
    names.add(n);
  }
  // An empty Filter means "no optional properties", not "everything".
  const f: DidlFilter = { all, names };
  if (key.length <= 1024) filterCache.set(key, f);
  return f;
}

interface Wants {
  childCount: boolean;
  searchable: boolean;
  refID: boolean;
  creator: boolean;
  date: boolean;
  description: boolean;
  artist: boolean;
  album: boolean;
  genre: boolean;
  track: boolean;
  disc: boolean;
  albumArt: boolean;
  res: boolean;
  resSize: boolean;
  resDuration: boolean;
  resBitrate: boolean;
  resSampleFrequency: boolean;
  resChannels: boolean;
  resResolution: boolean;
  resBitsPerSample: boolean;
  secCaption: boolean;
  secDcm: boolean;
}

const wantsCache = new WeakMap<DidlFilter, Wants>();

function wants(f: DidlFilter): Wants {
  const hit = wantsCache.get(f);
  if (hit) return hit;
  const has = (n: string) => f.all || f.names.has(n);
  let anyRes = f.all || f.names.has('res');
  for (const n of f.names) if (n.startsWith('res@')) anyRes = true;
  const w: Wants = {
    childCount: has('@childcount') || has('container@childcount'),
    searchable: has('@searchable') || has('container@searchable'),
    refID: has('@refid') || has('item@refid'),
    creator: has('dc:creator'),
    date: has('dc:date'),
    description: has('dc:description'),
    artist: has('upnp:artist') || has('upnp:artist@role'),
    album: has('upnp:album'),
    genre: has('upnp:genre'),
    track: has('upnp:originaltracknumber'),
    disc: has('upnp:originaldiscnumber'),
    albumArt: has('upnp:albumarturi') || has('upnp:albumarturi@dlna:profileid'),
    res: anyRes,
    resSize: has('res@size'),
    resDuration: has('res@duration'),
    resBitrate: has('res@bitrate'),
    resSampleFrequency: has('res@samplefrequency'),
    resChannels: has('res@nraudiochannels'),
    resResolution: has('res@resolution'),
    resBitsPerSample: has('res@bitspersample'),
    secCaption: has('sec:captioninfoex') || has('sec:captioninfo'),
    secDcm: has('sec:dcminfo'),
  };
  wantsCache.set(f, w);
  return w;
}

// ---------------------------------------------------------------------------
// Value formatting

const ISO_DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)?)?$/;

/** dc:date value (xsd date or dateTime) from an ISO 8601 string, or undefined. */
export function formatDate(date: string | undefined): string | undefined {
  if (!date) return undefined;
  const m = ISO_DATE.exec(date.trim());
  if (!m) return undefined;
  const [, y, mo, d, time] = m;
  if (mo && (Number(mo) < 1 || Number(mo) > 12)) return undefined;
  if (d && (Number(d) < 1 || Number(d) > 31)) return undefined;
  return `${y}-${mo ?? '01'}-${d ?? '01'}${time ?? ''}`;
}

const MIME_EXT: Record<string, string> = {
  'audio/mpeg': 'mp3',
  'audio/mp3': 'mp3',
  'audio/mp4': 'm4a',
  'audio/x-m4a': 'm4a',
  'audio/aac': 'aac',
  'audio/flac': 'flac',
  'audio/x-flac': 'flac',
  'audio/ogg': 'ogg',
  'audio/opus': 'opus',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'audio/L16': 'pcm',
  'audio/x-ms-wma': 'wma',
  'audio/x-aiff': 'aif',
  'audio/x-dsf': 'dsf',
  'video/mp4': 'mp4',
  'video/x-m4v': 'm4v',
  'video/x-matroska': 'mkv',
  'video/webm': 'webm',
  'video/x-msvideo': 'avi',
  'video/avi': 'avi',
  'video/mpeg': 'mpg',
  'video/mp2t': 'ts',
  'video/vnd.dlna.mpeg-tts': 'ts',
  'video/quicktime': 'mov',
  'video/x-ms-wmv': 'wmv',
  'video/x-flv': 'flv',
  'video/3gpp': '3gp',
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'image/bmp': 'bmp',
  'image/tiff': 'tif',
  'image/heic': 'heic',
};

const EXT_OK = /^[a-z0-9]{1,8}$/;

/** File extension for an item's URL: from its relPath, else from its MIME type. */
export function extensionOf(obj: CatalogObject): string {
  const p = obj.relPath;
  if (p) {
    const slash = p.lastIndexOf('/');
    const dot = p.lastIndexOf('.');
    if (dot > slash + 1) {
      const ext = p.slice(dot + 1).toLowerCase();
      if (EXT_OK.test(ext)) return ext;
    }
  }
  const mime = obj.res?.mime?.split(';')[0].trim().toLowerCase();
  if (mime) {
    const e = MIME_EXT[mime] ?? MIME_EXT[obj.res!.mime];
    if (e) return e;
    const sub = mime.slice(mime.indexOf('/') + 1).replace(/^x-/, '');
    if (EXT_OK.test(sub)) return sub;
  }
  return 'bin';
}

/** Default resource URL: one per canonical item, with an extension TVs like. */
export function defaultResUrl(baseUrl: string, obj: CatalogObject): string {
  return `${baseUrl}/media/${encodeURIComponent(obj.refId ?? obj.id)}.${extensionOf(obj)}`;
}

function nonNeg(n: number | undefined): n is number {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0;
}

// ---------------------------------------------------------------------------
// Serialisation

function textEl(name: string, v: string | number | undefined): string {
  if (v === undefined || v === '') return '';
  return `<${name}>${escText(v)}</${name}>`;
}

interface Ctx {
  o: DidlOptions;
  w: Wants;
  mimeOverrides?: Record<string, string>;
  secCaption: boolean;
  captionRes: boolean;
  dcm: boolean;
  usesSec: boolean;
}

function commonMeta(obj: CatalogObject, c: Ctx): string {
  const m = obj.meta;
  const w = c.w;
  let s = '';
  if (m) {
    if (w.creator) s += textEl('dc:creator', m.creator || m.artist || undefined);
    if (w.date) s += textEl('dc:date', formatDate(m.date));
    if (w.description) s += textEl('dc:description', m.description);
    if (w.artist) {
      if (m.artist) s += textEl('upnp:artist', m.artist);
      if (m.albumArtist && m.albumArtist !== m.artist) s += `<upnp:artist role="AlbumArtist">${escText(m.albumArtist)}</upnp:artist>`;
    }
    if (w.album) s += textEl('upnp:album', m.album);
    if (w.genre) s += textEl('upnp:genre', m.genre);
    if (w.track && nonNeg(m.trackNumber) && m.trackNumber > 0) s += `<upnp:originalTrackNumber>${Math.trunc(m.trackNumber)}</upnp:originalTrackNumber>`;
    if (w.disc && nonNeg(m.discNumber) && m.discNumber > 0) s += `<upnp:originalDiscNumber>${Math.trunc(m.discNumber)}</upnp:originalDiscNumber>`;
  }
  if (w.albumArt && c.o.albumArtUrl) {
    const art = c.o.albumArtUrl(obj);
    if (art) {
      const url = typeof art === 'string' ? art : art.url;
      const profile = typeof art === 'string' ? undefined : art.profileId;
      if (url) {
        s += profile
          ? `<upnp:albumArtURI dlna:profileID="${escAttr(profile)}">${escText(url)}</upnp:albumArtURI>`
          : `<upnp:albumArtURI>${escText(url)}</upnp:albumArtURI>`;
      }
    }
  }
  return s;
}

function resElement(obj: CatalogObject, res: Resource, c: Ctx): string {
  const w = c.w;
  const o = c.o;
  const override = c.mimeOverrides?.[res.mime];
  const r = override ? { ...res, mime: override } : res;
  let a = ` protocolInfo="${escAttr(o.protocolInfo(r))}"`;
  if (w.resSize && nonNeg(res.size)) a += ` size="${Math.trunc(res.size)}"`;
  if (w.resDuration && nonNeg(res.duration) && res.duration > 0) a += ` duration="${formatDuration(res.duration)}"`;
  if (w.resBitrate && nonNeg(res.bitrate) && res.bitrate > 0) a += ` bitrate="${Math.round(res.bitrate)}"`;
  if (w.resSampleFrequency && nonNeg(res.sampleFrequency) && res.sampleFrequency > 0) a += ` sampleFrequency="${Math.round(res.sampleFrequency)}"`;
  if (w.resChannels && nonNeg(res.nrAudioChannels) && res.nrAudioChannels > 0) a += ` nrAudioChannels="${Math.trunc(res.nrAudioChannels)}"`;
  if (w.resResolution && nonNeg(res.width) && nonNeg(res.height) && res.width > 0 && res.height > 0) {
    a += ` resolution="${Math.trunc(res.width)}x${Math.trunc(res.height)}"`;
  }
  if (w.resBitsPerSample && nonNeg(res.bitsPerSample) && res.bitsPerSample > 0) a += ` bitsPerSample="${Math.trunc(res.bitsPerSample)}"`;
  const url = o.resUrl ? o.resUrl(obj) : defaultResUrl(o.baseUrl, obj);
  return `<res${a}>${escText(url)}</res>`;
}

/** An item's element up to its bookmark and closing tag. */
function item(obj: CatalogObject, c: Ctx): string {
  const w = c.w;
  let s = `<item id="${escAttr(obj.id)}" parentID="${escAttr(obj.parentId)}" restricted="1"`;
  if (w.refID && obj.refId) s += ` refID="${escAttr(obj.refId)}"`;
  s += `><dc:title>${escText(obj.title ?? '')}</dc:title><upnp:class>${escText(obj.upnpClass)}</upnp:class>`;
  s += commonMeta(obj, c);
  if (w.res && obj.res) s += resElement(obj, obj.res, c);
  const isVideo = obj.kind === 'video' || obj.upnpClass.startsWith('object.item.videoItem');
  if (w.res && c.o.thumbnail && (isVideo || obj.kind === 'image' || obj.upnpClass.startsWith('object.item.imageItem'))) {
    const t = c.o.thumbnail(obj);
    if (t) {
      const resolution = w.resResolution && t.width && t.height ? ` resolution="${Math.trunc(t.width)}x${Math.trunc(t.height)}"` : '';
      s += `<res protocolInfo="${escAttr(t.protocolInfo)}"${resolution}>${escText(t.url)}</res>`;
    }
  }
  if (isVideo && (c.captionRes || c.secCaption) && c.o.captions) {
    const caps = c.o.captions(obj);
    if (c.captionRes && w.res) for (const cap of caps) s += `<res protocolInfo="http-get:*:${escAttr(cap.mime)}:*">${escText(cap.url)}</res>`;
    if (c.secCaption && w.secCaption && caps.length) {
      const cap = preferredCaption(caps)!;
      s += `<sec:CaptionInfoEx sec:type="${escAttr(cap.type)}">${escText(cap.url)}</sec:CaptionInfoEx>`;
      c.usesSec = true;
    }
  }
  return s;
}

/** Samsung's resume position (`sec:dcmInfo`), the last thing inside an item; '' when there is none to write. */
function bookmarkXml(obj: ObjectRef, c: Ctx): string {
  if (obj.container || !c.dcm || !c.w.secDcm || !c.o.bookmark) return '';
  const bm = c.o.bookmark(obj);
  return nonNeg(bm) && bm > 0 ? `<sec:dcmInfo>BM=${Math.trunc(bm)}</sec:dcmInfo>` : '';
}

/** A container's element without its closing tag. */
function container(obj: CatalogObject, c: Ctx): string {
  const w = c.w;
  let s = `<container id="${escAttr(obj.id)}" parentID="${escAttr(obj.parentId)}" restricted="1"`;
  if (w.searchable) s += ` searchable="${obj.searchable ? 1 : 0}"`;
  if (w.childCount && nonNeg(obj.childCount)) s += ` childCount="${Math.trunc(obj.childCount)}"`;
  s += `><dc:title>${escText(obj.title ?? '')}</dc:title><upnp:class>${escText(obj.upnpClass)}</upnp:class>`;
  return s + commonMeta(obj, c);
}

const NS_PREFIX = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const BASE_PREFIXES = new Set(['dc', 'upnp', 'dlna', 'xml', 'xmlns']);

/**
 * DIDL-Lite in pieces, for one set of options: each object's element without its closing
 * tag (`head`, what depends on the object and the options only), the bookmark that goes
 * before an item's closing tag (`bookmark`: it changes without the object changing), the
 * closing tag, and the document's start tag (`root`: the sec namespace only when an
 * object used it). didl() is these pieces joined; didl-cache.ts keeps heads between requests.
 */
export interface DidlParts {
  head(obj: CatalogObject): { xml: string; usesSec: boolean };
  bookmark(obj: ObjectRef): string;
  root(usesSec: boolean): string;
}

export const DIDL_END = '</DIDL-Lite>';

/** Closing tag of an object's element. */
export function closeTag(obj: { container?: boolean }): string {
  return obj.container ? '</container>' : '</item>';
}

export function didlParts(opts: DidlOptions): DidlParts {
  const q = opts.client?.quirks;
  const c: Ctx = {
    o: opts,
    w: wants(parseFilter(opts.filter)),
    mimeOverrides: q?.mimeOverrides,
    secCaption: !!q?.captionInfoSec,
    captionRes: !!q?.captionRes,
    dcm: !!q?.sendsBookmark,
    usesSec: false,
  };
  return {
    head(obj) {
      c.usesSec = false;
      const xml = obj.container ? container(obj, c) : item(obj, c);
      return { xml, usesSec: c.usesSec };
    },
    bookmark: (obj) => bookmarkXml(obj, c),
    root: (usesSec) => didlRoot(opts.client, usesSec),
  };
}

/**
 * The document's start tag for a client (its quirks' extra namespaces), with the sec namespace
 * when an object used it. Depends on nothing else, so didl-cache.ts keeps it per client.
 */
export function didlRoot(client: ClientProfile | undefined, usesSec: boolean): string {
  const q = client?.quirks;
  let root = `<DIDL-Lite xmlns="${DIDL_NS}" xmlns:dc="${DC_NS}" xmlns:upnp="${UPNP_NS}" xmlns:dlna="${DLNA_NS}"`;
  let secDeclared = false;
  if (q?.didlNamespaces) {
    for (const [prefix, uri] of Object.entries(q.didlNamespaces)) {
      if (!NS_PREFIX.test(prefix) || BASE_PREFIXES.has(prefix)) continue;
      root += ` xmlns:${prefix}="${escAttr(uri)}"`;
      if (prefix === 'sec') secDeclared = true;
    }
  }
  if (usesSec && !secDeclared) root += ` xmlns:sec="${SEC_NS}"`;
  return root + '>';
}

/** A complete DIDL-Lite document for the given objects (in order). */
export function didl(objects: readonly CatalogObject[], opts: DidlOptions): string {
  const parts = didlParts(opts);
  let body = '';
  let usesSec = false;
  for (const obj of objects) {
    const h = parts.head(obj);
    const bm = parts.bookmark(obj);
    body += h.xml + bm + closeTag(obj);
    if (h.usesSec || bm) usesSec = true;
  }
  return parts.root(usesSec) + body + DIDL_END;
}
