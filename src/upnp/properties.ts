// UPnP ContentDirectory:1 property names (as used in SearchCriteria, SortCriteria and
// the Filter argument) mapped onto CatalogObject values.
//
// Every property has a comparison type that the search and sort engines follow:
// - 'string'  : case-insensitive text (dc:title, upnp:artist, ...)
// - 'date'    : dc:date, compared as an ISO 8601 string (case-insensitive), so
//               '2021' < '2021-05-01' < '2021-05-01T10:00:00' < '2022'
// - 'class'   : upnp:class, case-insensitive, the only property `derivedfrom` accepts
// - 'number'  : compared numerically (sizes, durations in seconds, track numbers, ...)
// - 'boolean' : '1' / '0' (a search constant of "true"/"false" is accepted too)
// - 'id'      : object IDs, opaque: compared exactly (case-sensitive)
//
// A value that is undefined, '' or a non-finite number counts as missing: the property
// does not exist on that object (it would not be written to DIDL-Lite either).

import type { CatalogObject } from '../catalog/types.js';
import { protocolInfo } from '../media/dlna.js';

export type PropValue = string | number;
export type PropResult = PropValue | PropValue[] | undefined;
export type PropType = 'string' | 'date' | 'class' | 'number' | 'boolean' | 'id';

export interface PropertyDef {
  /** Canonical spelling, e.g. 'upnp:originalTrackNumber'. */
  readonly name: string;
  readonly type: PropType;
  /** Can appear in SortCriteria. */
  readonly sortable: boolean;
  /** Raw value(s): a scalar, an array for multi-valued properties, or undefined when missing. */
  readonly get: (obj: CatalogObject) => PropResult;
}

function str(v: string | undefined): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : v;
}

function num(v: number | undefined): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * protocolInfo of an item's resource, two values: the one DIDL-Lite writes (DLNA.ORG_PN, OP,
 * CI and FLAGS in the 4th field), so a client can search for the value it was shown, and the
 * short `http-get:*:<mime>:*` (or `:DLNA.ORG_PN=<profile>` when one is known).
 */
export function protocolInfoOf(obj: CatalogObject): string[] | undefined {
  const res = obj.res;
  if (!res || !res.mime) return undefined;
  const fourth = res.dlnaProfile ? `DLNA.ORG_PN=${res.dlnaProfile}` : '*';
  return [protocolInfo(res), `http-get:*:${res.mime}:${fourth}`];
}

/** upnp:artist is multi-valued: the performer and the album artist (role="AlbumArtist"). */
function artists(obj: CatalogObject): PropResult {
  const a = str(obj.meta?.artist);
  const aa = str(obj.meta?.albumArtist);
  if (a === undefined) return aa;
  if (aa === undefined || aa === a) return a;
  return [a, aa];
}

const DEFS: PropertyDef[] = [
  { name: '@id', type: 'id', sortable: true, get: (o) => str(o.id) },
  { name: '@parentID', type: 'id', sortable: false, get: (o) => str(o.parentId) },
  { name: '@refID', type: 'id', sortable: false, get: (o) => str(o.refId) },
  // Tapedeck never lets clients modify the tree.
  { name: '@restricted', type: 'boolean', sortable: false, get: () => '1' },
  // Containers only; absent on items (the attribute does not exist on <item>).
  {
    name: '@searchable',
    type: 'boolean',
    sortable: false,
    get: (o) => (o.container ? (o.searchable ? '1' : '0') : undefined),
  },
  { name: '@childCount', type: 'number', sortable: true, get: (o) => (o.container ? num(o.childCount) : undefined) },
  { name: 'dc:title', type: 'string', sortable: true, get: (o) => str(o.title) },
  // Like most servers, dc:creator falls back to the artist when no creator tag exists.
  { name: 'dc:creator', type: 'string', sortable: true, get: (o) => str(o.meta?.creator) ?? str(o.meta?.artist) },
  { name: 'dc:date', type: 'date', sortable: true, get: (o) => str(o.meta?.date) },
  { name: 'dc:description', type: 'string', sortable: false, get: (o) => str(o.meta?.description) },
  { name: 'upnp:class', type: 'class', sortable: true, get: (o) => str(o.upnpClass) },
  { name: 'upnp:artist', type: 'string', sortable: true, get: artists },
  // The role attribute of upnp:artist: only the album artist carries one, and DIDL-Lite writes
  // it only when the album artist differs from the performer (otherwise one plain upnp:artist).
  {
    name: 'upnp:artist@role',
    type: 'string',
    sortable: false,
    get: (o) => {
      const aa = str(o.meta?.albumArtist);
      return aa !== undefined && aa !== str(o.meta?.artist) ? 'AlbumArtist' : undefined;
    },
  },
  // Not a CDS:1 property name, but clients use it; same value as upnp:artist@role="AlbumArtist".
  { name: 'upnp:albumArtist', type: 'string', sortable: true, get: (o) => str(o.meta?.albumArtist) },
  { name: 'upnp:album', type: 'string', sortable: true, get: (o) => str(o.meta?.album) },
  { name: 'upnp:genre', type: 'string', sortable: true, get: (o) => str(o.meta?.genre) },
  { name: 'upnp:originalTrackNumber', type: 'number', sortable: true, get: (o) => num(o.meta?.trackNumber) },
  { name: 'upnp:originalDiscNumber', type: 'number', sortable: true, get: (o) => num(o.meta?.discNumber) },
  // The host-independent start of the resource URL: the DIDL writer emits
  // scheme://host:port/media/<id>.<ext> (a reference uses its target's id). In practice
  // clients only ask `res exists true`; `res contains "/media/<id>"` works too.
  { name: 'res', type: 'string', sortable: false, get: (o) => (o.res ? `/media/${encodeURIComponent(o.refId ?? o.id)}` : undefined) },
  { name: 'res@protocolInfo', type: 'string', sortable: false, get: protocolInfoOf },
  { name: 'res@size', type: 'number', sortable: true, get: (o) => num(o.res?.size) },
  // Seconds. Search constants may be written as H+:MM:SS[.F+] (the DIDL form) or as seconds.
  { name: 'res@duration', type: 'number', sortable: true, get: (o) => num(o.res?.duration) },
  // Bytes per second, as UPnP defines it.
  { name: 'res@bitrate', type: 'number', sortable: true, get: (o) => num(o.res?.bitrate) },
  {
    name: 'res@resolution',
    type: 'string',
    sortable: false,
    get: (o) => {
      const w = num(o.res?.width);
      const h = num(o.res?.height);
      return w !== undefined && h !== undefined ? `${w}x${h}` : undefined;
    },
  },
  { name: 'res@sampleFrequency', type: 'number', sortable: true, get: (o) => num(o.res?.sampleFrequency) },
  { name: 'res@nrAudioChannels', type: 'number', sortable: true, get: (o) => num(o.res?.nrAudioChannels) },
  { name: 'res@bitsPerSample', type: 'number', sortable: true, get: (o) => num(o.res?.bitsPerSample) },
];

// Lookup is case-insensitive: property names are XML names and therefore case-sensitive,
// but some clients spell them loosely (`@refid`, `upnp:Class`) and there is no ambiguity.
const BY_NAME = new Map<string, PropertyDef>(DEFS.map((d) => [d.name.toLowerCase(), d]));

/** The definition of a property, or undefined when Tapedeck does not support it. */
export function lookupProperty(name: string): PropertyDef | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/** All supported properties, in a stable order. */
export const PROPERTIES: readonly PropertyDef[] = DEFS;

/**
 * Value(s) of a property on an object: a scalar, an array for multi-valued properties
 * (e.g. upnp:artist when performer and album artist differ), or undefined when the object
 * does not have it or the property is unknown.
 */
export function getProperty(obj: CatalogObject, name: string): PropResult {
  const def = lookupProperty(name);
  return def ? def.get(obj) : undefined;
}

/** GetSearchCapabilities: every property SearchCriteria may use. */
export const SEARCH_CAPABILITIES: string = DEFS.map((d) => d.name).join(',');

/** GetSortCapabilities: every property SortCriteria may use. */
export const SORT_CAPABILITIES: string = DEFS.filter((d) => d.sortable)
  .map((d) => d.name)
  .join(',');
