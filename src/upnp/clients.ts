// Client profiles: how to recognise a TV/player family from its request headers
// and which quirks it needs. Profiles are data (devices/clients/*.json, one file per
// family, documented in devices/clients/README.md); this module only loads,
// validates and matches them.
//
// Matching: profiles are tried in ascending `order` (then file name); the first
// whose `match` fits wins. A profile matches when ANY of its header regexes matches
// (`"mode": "all"` requires all of them). Regexes are case-insensitive. The one
// profile marked `"fallback": true` (generic.json) answers when nothing matches.
//
// Some clients identify themselves only on some requests (e.g. Samsung TVs send
// their User-Agent on SOAP calls but not always on media GETs), so a registry
// remembers the last specific profile seen per remote address for an hour and
// uses it when a later request from that address matches nothing.

import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import { attrs } from '../util/xml.js';
import { DEVICES_DIR } from '../util/paths.js';

export type HeaderBag = IncomingHttpHeaders | Record<string, string | string[] | undefined>;

/** Keys of the container/view aliases and feature-list entries (see README). */
export const VIEW_KEYS = [
  'root',
  'music',
  'music.all',
  'music.genres',
  'music.artists',
  'music.albums',
  'music.playlists',
  'music.folders',
  'video',
  'video.all',
  'video.folders',
  'image',
  'image.all',
  'image.date',
  'image.camera',
  'image.folders',
] as const;
export type ViewKey = (typeof VIEW_KEYS)[number];

/** Description fields a client family insists on (Xbox 360 only lists "Windows Media Player Sharing"). */
export interface DescriptionOverrides {
  manufacturer?: string;
  manufacturerURL?: string;
  modelName?: string;
  modelNumber?: string;
  modelURL?: string;
  modelDescription?: string;
  /** `%s` is replaced by the configured friendly name, e.g. "%s: 1" for Xbox 360. */
  friendlyNameFormat?: string;
  /**
   * Samsung: the server capabilities in `<sec:ProductCap>` / `<sec:X_ProductCap>`; a Samsung TV
   * asks for `getCaptionInfo.sec` / `getMediaInfo.sec` only from a server that lists them.
   */
  productCap?: string;
}

export interface ClientQuirks {
  /** Samsung X_GetFeatureList: upnp class → view key whose container ID is announced. */
  featureList?: Record<string, ViewKey>;
  /** Samsung: subtitles announced as `<sec:CaptionInfoEx sec:type="srt">` in DIDL-Lite. */
  captionInfoSec?: boolean;
  /** LG, BubbleUPnP, ...: subtitles announced as an extra `<res protocolInfo="http-get:*:text/srt:*">`. */
  captionRes?: boolean;
  /** Samsung: calls X_SetBookmark; the resume position goes back in `<sec:dcmInfo>BM=..`. */
  sendsBookmark?: boolean;
  /** Xbox/WMP: needs X_MS_MediaReceiverRegistrar to answer IsAuthorized/IsValidated with 1. */
  msRegistrar?: boolean;
  /** Client-side object IDs (Xbox/WMP "PlaysForSure" magic containers) → view key. */
  containerAliases?: Record<string, ViewKey>;
  /** Client sends a fixed SortCriteria that should not be honoured (or rejected). */
  ignoreSortCriteria?: boolean;
  /** Client asks for a transferMode.dlna.org the item does not support (Samsung: Interactive for video); serve it instead of 406. */
  lenientTransferMode?: boolean;
  /** MIME type rewrites applied before building protocolInfo (e.g. video/x-msvideo → video/avi). */
  mimeOverrides?: Record<string, string>;
  /** Extra namespace declarations on the DIDL-Lite root (prefix → URI). */
  didlNamespaces?: Record<string, string>;
  /** Device description fields shown to this client. */
  descriptionOverrides?: DescriptionOverrides;
}

export interface HeaderMatch {
  header: string; // lower-case header name
  regex: RegExp;
}

export interface ClientProfile {
  /** File base name, e.g. "samsung". */
  id: string;
  name: string;
  order: number;
  fallback: boolean;
  mode: 'any' | 'all';
  matchers: HeaderMatch[];
  quirks: ClientQuirks;
}

export class ClientProfileError extends Error {
  constructor(
    public file: string,
    message: string,
  ) {
    super(`client profile ${file}: ${message}`);
    this.name = 'ClientProfileError';
  }
}

const QUIRK_KINDS: Record<keyof ClientQuirks, 'bool' | 'viewMap' | 'stringMap' | 'description'> = {
  featureList: 'viewMap',
  captionInfoSec: 'bool',
  captionRes: 'bool',
  sendsBookmark: 'bool',
  msRegistrar: 'bool',
  containerAliases: 'viewMap',
  ignoreSortCriteria: 'bool',
  lenientTransferMode: 'bool',
  mimeOverrides: 'stringMap',
  didlNamespaces: 'stringMap',
  descriptionOverrides: 'description',
};
const DESCRIPTION_KEYS = new Set<string>([
  'manufacturer',
  'manufacturerURL',
  'modelName',
  'modelNumber',
  'modelURL',
  'modelDescription',
  'friendlyNameFormat',
  'productCap',
]);
const TOP_KEYS = new Set(['name', 'order', 'fallback', 'match', 'quirks', 'comment', 'examples']);
const VIEW_KEY_SET = new Set<string>(VIEW_KEYS);
const HEADER_NAME = /^[a-z0-9][a-z0-9-]*$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkStringMap(file: string, where: string, v: unknown, values?: Set<string>): Record<string, string> {
  if (!isPlainObject(v)) throw new ClientProfileError(file, `${where} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string' || val === '') throw new ClientProfileError(file, `${where}.${k} must be a non-empty string`);
    if (values && !values.has(val)) {
      throw new ClientProfileError(file, `${where}.${k}: unknown view key "${val}" (known: ${[...values].join(', ')})`);
    }
    out[k] = val;
  }
  return out;
}

function checkQuirks(file: string, q: unknown): ClientQuirks {
  if (q === undefined) return {};
  if (!isPlainObject(q)) throw new ClientProfileError(file, '"quirks" must be an object');
  const out: Record<string, unknown> = {};
  for (const [name, val] of Object.entries(q)) {
    const kind = QUIRK_KINDS[name as keyof ClientQuirks];
    if (!kind) {
      throw new ClientProfileError(file, `unknown quirk "${name}" (known: ${Object.keys(QUIRK_KINDS).join(', ')})`);
    }
    const where = `quirks.${name}`;
    switch (kind) {
      case 'bool':
        if (typeof val !== 'boolean') throw new ClientProfileError(file, `${where} must be true or false`);
        out[name] = val;
        break;
      case 'viewMap':
        out[name] = checkStringMap(file, where, val, VIEW_KEY_SET);
        break;
      case 'stringMap':
        out[name] = checkStringMap(file, where, val);
        break;
      case 'description': {
        const m = checkStringMap(file, where, val);
        for (const k of Object.keys(m)) {
          if (!DESCRIPTION_KEYS.has(k)) throw new ClientProfileError(file, `${where}: unknown field "${k}"`);
        }
        if (m.friendlyNameFormat !== undefined && !m.friendlyNameFormat.includes('%s')) {
          throw new ClientProfileError(file, `${where}.friendlyNameFormat must contain %s`);
        }
        out[name] = m;
        break;
      }
    }
  }
  return out as ClientQuirks;
}

/** Validates one parsed profile file; `id` is the file's base name. */
export function parseClientProfile(file: string, json: unknown): ClientProfile {
  if (!isPlainObject(json)) throw new ClientProfileError(file, 'must be a JSON object');
  for (const k of Object.keys(json)) {
    if (!TOP_KEYS.has(k)) throw new ClientProfileError(file, `unknown field "${k}"`);
  }
  const { name, order, fallback = false, match, quirks } = json;
  if (typeof name !== 'string' || !name.trim()) throw new ClientProfileError(file, '"name" must be a non-empty string');
  if (typeof order !== 'number' || !Number.isInteger(order)) throw new ClientProfileError(file, '"order" must be an integer');
  if (typeof fallback !== 'boolean') throw new ClientProfileError(file, '"fallback" must be true or false');
  const matchers: HeaderMatch[] = [];
  let mode: 'any' | 'all' = 'any';
  if (fallback) {
    if (match !== undefined) throw new ClientProfileError(file, 'the fallback profile must not have "match"');
  } else {
    if (!isPlainObject(match)) throw new ClientProfileError(file, '"match" must be an object with "headers"');
    for (const k of Object.keys(match)) {
      if (k !== 'headers' && k !== 'mode') throw new ClientProfileError(file, `match: unknown field "${k}"`);
    }
    if (match.mode !== undefined) {
      if (match.mode !== 'any' && match.mode !== 'all') throw new ClientProfileError(file, 'match.mode must be "any" or "all"');
      mode = match.mode;
    }
    const headers = match.headers;
    if (!isPlainObject(headers) || Object.keys(headers).length === 0) {
      throw new ClientProfileError(file, 'match.headers must be a non-empty object of header → regex');
    }
    for (const [h, src] of Object.entries(headers)) {
      const header = h.toLowerCase();
      if (!HEADER_NAME.test(header)) throw new ClientProfileError(file, `match.headers: bad header name "${h}"`);
      if (typeof src !== 'string' || src === '') throw new ClientProfileError(file, `match.headers.${h} must be a non-empty regex string`);
      let regex: RegExp;
      try {
        regex = new RegExp(src, 'i');
      } catch (e) {
        throw new ClientProfileError(file, `match.headers.${h}: bad regex ${JSON.stringify(src)}: ${(e as Error).message}`);
      }
      matchers.push({ header, regex });
    }
  }
  const id = basename(file).replace(/\.json$/i, '');
  return { id, name: name.trim(), order, fallback, mode, matchers, quirks: checkQuirks(file, quirks) };
}

function headerValue(headers: HeaderBag, name: string): string | undefined {
  let v = (headers as Record<string, string | string[] | undefined>)[name];
  if (v === undefined) {
    // Tolerate bags whose keys were not lower-cased by Node.
    for (const k of Object.keys(headers)) {
      if (k.toLowerCase() === name) {
        v = (headers as Record<string, string | string[] | undefined>)[k];
        break;
      }
    }
  }
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : String(v);
}

/** Whether a (non-fallback) profile matches the given request headers. */
export function profileMatches(p: ClientProfile, headers: HeaderBag): boolean {
  if (p.fallback || p.matchers.length === 0) return false;
  const test = (m: HeaderMatch) => {
    const v = headerValue(headers, m.header);
    return v !== undefined && m.regex.test(v);
  };
  return p.mode === 'all' ? p.matchers.every(test) : p.matchers.some(test);
}

const BUILTIN_FALLBACK: ClientProfile = {
  id: 'generic',
  name: 'Generic UPnP client',
  order: Number.MAX_SAFE_INTEGER,
  fallback: true,
  mode: 'any',
  matchers: [],
  quirks: {},
};

const CACHE_TTL_MS = 60 * 60 * 1000;
const CACHE_MAX = 512;
/** Header-value verdicts kept (the oldest goes first; at most ~64 KiB) and the longest key kept (longer header values are matched every time). */
const VERDICTS_MAX = 64;
const VERDICT_KEY_MAX = 512;

export class ClientRegistry {
  readonly profiles: readonly ClientProfile[];
  readonly fallback: ClientProfile;
  private byAddress = new Map<string, { profile: ClientProfile; at: number }>();
  /** The headers any profile matches on. */
  private readonly matchHeaders: string[];
  /** firstMatch's verdicts by those headers' values (null: none matched), oldest first. */
  private readonly verdicts = new Map<string, ClientProfile | null>();

  constructor(profiles: ClientProfile[], private now: () => number = Date.now) {
    const fallbacks = profiles.filter((p) => p.fallback);
    if (fallbacks.length > 1) {
      throw new ClientProfileError(fallbacks[1].id + '.json', `more than one fallback profile (${fallbacks.map((p) => p.id).join(', ')})`);
    }
    this.fallback = fallbacks[0] ?? BUILTIN_FALLBACK;
    this.profiles = profiles
      .filter((p) => !p.fallback)
      .sort((a, b) => a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.matchHeaders = [...new Set(this.profiles.flatMap((p) => p.matchers.map((m) => m.header)))];
  }

  /** Loads and validates every *.json in `dir` (synchronously, once, at start-up). */
  static load(dir: string, now?: () => number): ClientRegistry {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.toLowerCase().endsWith('.json')).sort();
    } catch (e) {
      throw new Error(`cannot read client profiles directory ${dir}: ${(e as Error).message}`);
    }
    const profiles: ClientProfile[] = [];
    for (const n of names) {
      const file = join(dir, n);
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(file, 'utf8'));
      } catch (e) {
        throw new ClientProfileError(file, `bad JSON: ${(e as Error).message}`);
      }
      profiles.push(parseClientProfile(file, json));
    }
    return new ClientRegistry(profiles, now);
  }

  /** First matching profile; else the profile last seen from this address; else the fallback. */
  detect(headers: HeaderBag, remoteAddress?: string): ClientProfile {
    const p = this.firstMatch(headers);
    if (p) {
      if (remoteAddress) this.remember(remoteAddress, p);
      return p;
    }
    if (remoteAddress) {
      const hit = this.byAddress.get(remoteAddress);
      if (hit) {
        if (this.now() - hit.at <= CACHE_TTL_MS) return hit.profile;
        this.byAddress.delete(remoteAddress);
      }
    }
    return this.fallback;
  }

  /**
   * The first profile whose headers match. Which one depends only on the values of the headers
   * the profiles look at, so the verdict is kept per such values (a TV sends the same ones with
   * every request): a few Map entries instead of a regex per profile per request.
   */
  private firstMatch(headers: HeaderBag): ClientProfile | undefined {
    let key = '';
    for (const h of this.matchHeaders) {
      const v = headerValue(headers, h);
      key += v === undefined ? '-' : `+${v.length}:${v}`;
    }
    const hit = this.verdicts.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const p = this.profiles.find((q) => profileMatches(q, headers));
    if (key.length <= VERDICT_KEY_MAX) {
      if (this.verdicts.size >= VERDICTS_MAX) this.verdicts.delete(this.verdicts.keys().next().value!);
      this.verdicts.set(key, p ?? null);
    }
    return p;
  }

  /** Verdicts kept (for tests). */
  get verdictCount(): number {
    return this.verdicts.size;
  }

  private remember(addr: string, profile: ClientProfile): void {
    this.byAddress.delete(addr);
    this.byAddress.set(addr, { profile, at: this.now() });
    if (this.byAddress.size > CACHE_MAX) {
      const oldest = this.byAddress.keys().next().value;
      if (oldest !== undefined) this.byAddress.delete(oldest);
    }
  }
}

/** devices/clients beside package.json (in a checkout and in an installed tree alike). */
export function defaultClientsDir(): string {
  return join(DEVICES_DIR, 'clients');
}

let defaultRegistry: ClientRegistry | undefined;

/** The registry loaded from devices/clients on first use. */
export function defaultClientRegistry(): ClientRegistry {
  defaultRegistry ??= ClientRegistry.load(defaultClientsDir());
  return defaultRegistry;
}

/** Detects the client family with the default profiles (devices/clients). */
export function detectClient(headers: HeaderBag, remoteAddress?: string): ClientProfile {
  return defaultClientRegistry().detect(headers, remoteAddress);
}

/**
 * Maps a client-side object ID through the profile's `containerAliases`
 * (e.g. Xbox asks for "7" meaning all albums). `views` resolves view keys to the
 * catalog's real container IDs; IDs without an alias, or whose view the catalog
 * does not have, come back unchanged.
 */
export function resolveContainerAlias(
  client: ClientProfile | undefined,
  objectId: string,
  views: Partial<Record<ViewKey, string>>,
): string {
  const key = client?.quirks.containerAliases?.[objectId];
  if (!key) return objectId;
  return views[key] ?? objectId;
}

/**
 * The FeatureList value of Samsung's X_GetFeatureList answer (samsung.com_BASICVIEW:
 * which container holds each media class). Entries whose view the catalog lacks
 * are left out. The caller passes this string as an out-argument; soapResponse
 * escapes it like any other value.
 */
export function samsungFeatureList(
  client: ClientProfile | undefined,
  views: Partial<Record<ViewKey, string>>,
): string {
  const map = client?.quirks.featureList ?? DEFAULT_FEATURE_LIST;
  let inner = '';
  for (const [type, key] of Object.entries(map)) {
    const id = views[key];
    if (id === undefined) continue;
    inner += `<container${attrs({ id, type })}/>`;
  }
  return (
    '<Features xmlns="urn:schemas-upnp-org:av:avs" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
    ' xsi:schemaLocation="urn:schemas-upnp-org:av:avs http://www.upnp.org/schemas/av/avs.xsd">' +
    `<Feature name="samsung.com_BASICVIEW" version="1">${inner}</Feature></Features>`
  );
}

const DEFAULT_FEATURE_LIST: Record<string, ViewKey> = {
  'object.item.audioItem': 'music',
  'object.item.videoItem': 'video',
  'object.item.imageItem': 'image',
};
