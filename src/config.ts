// Configuration: one table of settings is the single source of truth for the
// config file keys, the command-line flags, the environment variables, the
// defaults and the README's reference (test/config.test.ts checks the README
// against this table).
//
// Precedence: built-in defaults < config file < environment < flags.
// Config file: `key = value` lines, `#` comments, list settings may repeat.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { callerDir } from './util/paths.js';
import { parseCidr } from './util/net.js';
import { checkWindow, globToRegExp, parseDuration, parseWatermark, parseWindow, type DailyWindow, type Watermark } from './policy/units.js';

export type SettingType = 'string' | 'int' | 'number' | 'bool' | 'list' | 'enum' | 'size' | 'duration' | 'watermark' | 'window';

export interface Setting {
  key: string; // config file key
  flag: string; // long flag without dashes
  type: SettingType;
  default: string; // as documented (human-readable)
  description: string;
  values?: string[]; // enum values
  min?: number;
  max?: number;
  arg?: string; // flag argument name
  words?: string[]; // words accepted besides values of `type` (e.g. 'auto' for a number)
  /** Extra check of each value (list settings too): the reason it is bad, or undefined. */
  validate?: (value: string) => string | undefined;
}

/** Largest config file read (a few hundred lines is a big one). */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** Why an `allow` entry is not a subnet (checked with the ACL's own parser), or undefined. */
function cidrProblem(v: string): string | undefined {
  try {
    parseCidr(v);
    return undefined;
  } catch {
    return 'expected an IPv4 or IPv6 address or subnet, e.g. 192.168.1.0/24, 10.0.0.5 or fd00::/8';
  }
}

export const SETTINGS: Setting[] = [
  { key: 'media_dir', flag: 'media', type: 'list', arg: 'DIR', default: '(none: `serve` makes a demo library under the data directory; `scan` exits 2)', description: 'Media directory to serve; repeat for several.' },
  { key: 'data_dir', flag: 'data', type: 'string', arg: 'DIR', default: '$STATE_DIRECTORY, else ~/.local/share/tapedeck', description: 'Where the catalog, the device UUID and the demo library live.' },
  { key: 'port', flag: 'port', type: 'int', arg: 'N', min: 0, max: 65535, default: '8210', description: 'HTTP port for descriptions, control, events and media (0 picks a free port).' },
  { key: 'friendly_name', flag: 'name', type: 'string', arg: 'NAME', default: 'Tapedeck on <hostname>', description: 'Name shown on TVs and control points.' },
  { key: 'interface', flag: 'interface', type: 'list', arg: 'NAME', default: 'every up, non-loopback IPv4 interface that can multicast', description: 'Network interface to serve on (SSDP and HTTP); repeat for several.' },
  { key: 'allow', flag: 'allow', type: 'list', arg: 'CIDR', default: 'loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7) and link-local ranges', description: 'Client subnets allowed to use the server; others get 403 and their SSDP searches are ignored. Repeat for several.', validate: cidrProblem },
  { key: 'allowed_hosts', flag: 'allow-host', type: 'list', arg: 'NAME', default: '(none: IP addresses, localhost, the host name and <hostname>.local)', description: 'Extra host names clients may use in URLs of the server (the Host header), such as its DNS name or a reverse proxy\'s; a request naming any other host gets 403 (DNS-rebinding protection). IP addresses, localhost, this machine\'s host name and <hostname>.local always work; * accepts any name. Repeat for several.', validate: (v) => (/^(\*|[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*\.?)$/i.test(v) && v.length <= 253 ? undefined : 'not a host name (letters, digits, hyphens, dots) or *') },
  { key: 'log_level', flag: 'log-level', type: 'enum', arg: 'LEVEL', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', description: 'Log level; debug adds a request log.' },
  { key: 'scan_on_start', flag: 'scan-on-start', type: 'bool', default: 'true', description: 'Scan the media directories when the server starts (incremental).' },
  { key: 'rescan_interval', flag: 'rescan-interval', type: 'int', arg: 'S', min: 0, max: 604800, default: '900', description: 'Seconds between incremental rescans while the server runs, so new, changed and deleted files show up without a restart (0: only at start).' },
  { key: 'watch', flag: 'watch', type: 'bool', default: 'true', description: 'Watch the media directories (inotify) so added, changed, renamed and deleted files show up within seconds, without waiting for a rescan.' },
  { key: 'watch_limit', flag: 'watch-limit', type: 'int', arg: 'N', min: 0, max: 100000000, default: '0', description: 'Most directories to watch (0: as many as fs.inotify.max_user_watches allows); changes in directories beyond it show up at the periodic rescan.' },
  { key: 'ssdp', flag: 'ssdp', type: 'bool', default: 'true', description: 'Announce the server with SSDP (off: reachable only by its URL).' },
  { key: 'ssdp_interval', flag: 'ssdp-interval', type: 'int', arg: 'SECONDS', min: 5, max: 1700, default: '600', description: 'Re-advertisement period; max-age is 1800 s.' },
  { key: 'scan_concurrency', flag: 'scan-concurrency', type: 'int', arg: 'N', min: 1, max: 64, default: '8', description: 'Files whose metadata is read in parallel during a scan.' },
  { key: 'scan_threads', flag: 'scan-threads', type: 'int', arg: 'N', min: 0, max: 16, default: 'one less than the CPUs, at most 4', description: 'Worker threads that read tags and media headers during a scan, beside the main thread, which walks the directories and writes the catalog (0: everything in the main thread). They start with a scan and end a few seconds after it. `tapedeck scan` also makes the video frames after its walk with this many plus one ffmpeg at once.' },
  { key: 'catalog_cache', flag: 'catalog-cache', type: 'size', arg: 'BYTES', min: 0, max: 1073741824, default: '2M', description: 'Memory for the catalog database\'s cache of recently read blocks (the operating system\'s page cache holds the rest).' },
  { key: 'catalog_mapped', flag: 'catalog-mapped', type: 'size', arg: 'BYTES', min: 0, max: 1073741824, default: '0', description: 'Resident memory the catalog database\'s table files may take in the server where LevelDB maps them (it normally reads them with pread: see Memory in the README): it maps the files it reads and each page a request touched stays in the server\'s memory; when they grew past this (checked every 1.25 s, by the same looks as the idle trim), the database is closed and opened again (new requests wait while those in flight end: a pause of ~10-60 ms). 0 (the default): never between whole-catalog passes (scan, video frames, policy plan), after which it is always reopened. Off by default: at 100,000 items the reopens under a Browse load made paging slower (All Tracks p50 at the last 1,000 indexes 1.5x the first 1,000) and kept only ~7 MB less resident (bench/README.md).' },
  { key: 'search_cache', flag: 'search-cache', type: 'size', arg: 'BYTES', min: 0, max: 1073741824, default: '2M', description: 'Memory for the result lists of recent searches, so paging through one search does not run it again (0: off, every Search runs on the word index). Emptied once no request came for 5 s.' },
  { key: 'stream_buffers', flag: 'stream-buffers', type: 'size', arg: 'BYTES', min: 1048576, max: 4294967296, default: '64M', description: 'Memory for the read buffers of every media response together (up to two of 256 KiB-4 MiB each per response); past it, paused or stalled clients keep what they hold and new responses read in 64 KiB buffers, so many clients that do not read cannot take the server\'s memory.' },
  { key: 'didl_cache', flag: 'didl-cache', type: 'size', arg: 'BYTES', min: 0, max: 1073741824, default: '4M', description: 'Memory for the DIDL-Lite of recently browsed objects, kept ready per client type, address and Filter and dropped for the objects a library change touches (an item with its references, the containers whose counts changed), so Browse pages and metadata are answered without reading and serialising each object (0: off). Emptied once no request came for 5 s.' },
  { key: 'list_cache', flag: 'list-cache', type: 'size', arg: 'BYTES', min: 0, max: 1073741824, default: '8M', description: 'Memory for the child lists of recently browsed containers (their order, so a page of a large container is a slice, not a read of the whole container) and for the orders of recent sorted Browse requests; a list larger than this is read again for every page (the list of a 100,000-item container takes about 2 MiB).' },
  { key: 'ffprobe', flag: 'ffprobe', type: 'string', arg: 'PATH', default: 'ffprobe from PATH when present', description: 'ffprobe for the videos the built-in readers (MP4/MOV, Matroska/WebM, AVI) cannot read, such as MPEG program and transport streams; a few run at once. "off" disables it.' },
  { key: 'art', flag: 'art', type: 'bool', default: 'true', description: 'Make album art and thumbnails at scan time (embedded covers, folder art, a video frame through ffmpeg from PATH when present, images themselves), kept under <data_dir>/art. The server makes video frames right after its scan, a few videos at a time, so every item is browsable first; `tapedeck scan` makes them after its walk, scan_threads + 1 at once.' },
  // Tape tier
  { key: 'tape_backend', flag: 'tape-backend', type: 'enum', arg: 'KIND', values: ['virtual', 'scsi', 'none'], default: 'virtual', description: 'Tape library: the virtual library, a real SCSI library (mt-st + mtx), or none.' },
  { key: 'tape_dir', flag: 'tape-dir', type: 'string', arg: 'DIR', default: '<data_dir>/vtl', description: 'Virtual tape library directory (cartridge files, slots, drives).' },
  { key: 'tape_time_scale', flag: 'tape-time-scale', type: 'number', arg: 'X', min: 0, max: 1000, default: '0.02', description: 'Virtual library time factor: 1 = real LTO timing, 0.02 = a cold mount of ~80 s takes ~1.6 s, 0 = instant.' },
  { key: 'tape_generation', flag: 'tape-generation', type: 'enum', arg: 'GEN', values: ['LTO-9', 'LTO-8'], default: 'LTO-9', description: 'Virtual library drive/media generation (timing preset and label suffix).' },
  { key: 'tape_drives', flag: 'tape-drives', type: 'int', arg: 'N', min: 1, max: 64, default: '2', description: 'Virtual library: number of drives (set when the library is created).' },
  { key: 'tape_slots', flag: 'tape-slots', type: 'int', arg: 'N', min: 1, max: 10000, default: '16', description: 'Virtual library: storage slots (set when the library is created).' },
  { key: 'tape_block_size', flag: 'tape-block-size', type: 'size', arg: 'BYTES', min: 4096, max: 16777216, default: '256K', description: 'Virtual library: block size of new cartridges (multiple of 512).' },
  { key: 'tape_capacity', flag: 'tape-capacity', type: 'size', arg: 'BYTES', min: 1048576, default: '1G', description: 'Virtual library: capacity of new cartridges (LTO-9 is 18T).' },
  { key: 'tape_changer', flag: 'tape-changer', type: 'string', arg: 'DEV', default: '(none)', description: 'SCSI backend: changer device for mtx, e.g. /dev/sg3.' },
  { key: 'tape_device', flag: 'tape-device', type: 'list', arg: 'DEV', default: '(none)', description: 'SCSI backend: tape drive device, e.g. /dev/nst0; repeat in changer drive order.' },
  { key: 'head_stub_seconds', flag: 'head-stub-seconds', type: 'int', words: ['auto'], arg: 'S', min: 0, max: 86400, default: 'auto', description: 'Head stub kept on disk for archived media: S seconds of playback at the item\'s bitrate (plus the regions players probe), or auto: the worst time to the first tape byte at real LTO timing of tape_generation (unload, two robot moves, load, locate to the far end) with a 20% margin (209 s on LTO-9, 212 s on LTO-8), so a player never reaches the stub\'s end before tape bytes arrive.' },
  { key: 'head_stub_min', flag: 'head-stub-min', type: 'size', arg: 'BYTES', min: 0, default: '4M', description: 'Smallest head stub (used when the bitrate is unknown).' },
  { key: 'head_stub_tail', flag: 'head-stub-tail', type: 'size', arg: 'BYTES', min: 0, default: '4M', description: 'Bytes at the end of each archived media file kept with its head stub (ID3v1/APE tags, AVI idx1, indexes written at the end that players read first); 0 = none.' },
  { key: 'cache_dir', flag: 'cache-dir', type: 'string', arg: 'DIR', default: '$CACHE_DIRECTORY, else <data_dir>/cache', description: 'Staging cache of bytes read from tape.' },
  { key: 'cache_size', flag: 'cache-size', type: 'size', arg: 'BYTES', min: 16777216, default: '2G', description: 'Staging cache cap; least recently used segments are evicted (pinned items never).' },
  { key: 'stager', flag: 'stager', type: 'string', arg: 'MODE', default: 'spawn', description: '"spawn": the server starts and supervises its staging worker; a socket path: connect to an external stager (tapedeck-stager.service).' },
  { key: 'admission_timeout', flag: 'admission-timeout', type: 'int', arg: 'SECONDS', min: 1, max: 3600, default: '180', description: 'Longest a tape request waits for a drive before it gets 503 with Retry-After.' },
  { key: 'prestage_items', flag: 'prestage-items', type: 'int', arg: 'N', min: 0, max: 50, default: '3', description: 'Predictive pre-staging: when an archived item is played, the next N items of its container (play order) on the same cartridge get their first minutes past the head stub read into the staging cache while the cartridge is loaded, at prefetch priority (0 = off).' },
  { key: 'prestage_seconds', flag: 'prestage-seconds', type: 'int', arg: 'S', min: 1, max: 86400, default: '300', description: 'Seconds of playback (at the item\'s bitrate; 32 MiB when unknown) pre-staged past the head stub of each next item; one pass stages at most a quarter of cache_size.' },
  { key: 'prestage_on_browse', flag: 'prestage-on-browse', type: 'bool', default: 'true', description: 'Browsing into a container whose archived items all sit on one cartridge inside the library pre-stages its first prestage_items items, loading the cartridge ahead of the first play.' },
  // Storage policy (src/policy/)
  { key: 'disk_high_watermark', flag: 'disk-high-watermark', type: 'watermark', arg: 'SIZE|N%', default: '(off)', description: 'Above this, a policy pass archives the coldest eligible items until disk usage is at or below disk_low_watermark. SIZE (500M, 2T) bounds the bytes of media the catalog holds on primary disk, stubs included; N% is the used share of the file system holding each media directory.' },
  { key: 'disk_low_watermark', flag: 'disk-low-watermark', type: 'watermark', arg: 'SIZE|N%', default: 'disk_high_watermark', description: 'Where a pass that started above the high watermark stops archiving (same kind as the high watermark: both sizes or both percentages).' },
  { key: 'archive_idle', flag: 'archive-idle', type: 'duration', arg: 'DURATION', default: '0', description: 'Archive items neither played nor changed for this long (45s, 30m, 12h, 90d or seconds), even below the watermark; 0 = off (nothing moves unless the operator asks).' },
  { key: 'min_archive_size', flag: 'min-archive-size', type: 'size', arg: 'SIZE', min: 0, default: '16M', description: 'Items smaller than this are never archived by a policy pass (not worth a tape trip).' },
  { key: 'keep_on_disk', flag: 'keep-on-disk', type: 'list', arg: 'GLOB', default: '(none)', description: 'Items whose path relative to their media directory matches this glob are never archived by a policy pass, e.g. Music/** or *.jpg (a glob without / matches the file name at any depth); repeat for several.', validate: (v) => (globToRegExp(v) ? undefined : 'expected a glob relative to a media directory, e.g. Music/** or *.jpg') },
  { key: 'promote_plays', flag: 'promote-plays', type: 'int', arg: 'N', min: 0, max: 256, default: '0', description: 'Recall an item on tape to disk (it stays on tape too) once it was played this many times within promote_window, without pushing disk usage over the high watermark; 0 = off.' },
  { key: 'promote_container_plays', flag: 'promote-container-plays', type: 'int', arg: 'N', min: 0, max: 256, default: '2', description: 'Container promotion: once the items of a container (album, season folder) that have a tape copy were played this many times within promote_window, its remaining tape-only items are recalled to disk (tier both), under the same guard as promote_plays (never over the high watermark; colder items are archived first to make room). Recalled right away, at job priority while the cartridge is loaded for the play (or the next time it is loaded, for anything), when that fits under the high mark (and policy_window is open). A pass never mounts a cartridge (nor writes one to make room) only for these recalls: it takes them from cartridges in a drive or mounted for its other work, and the rest waits for the container\'s next play. Needs disk_high_watermark (without one it does nothing); 0 = off.' },
  { key: 'promote_window', flag: 'promote-window', type: 'duration', arg: 'DURATION', default: '7d', description: 'The window in which promote_plays plays must fall.' },
  { key: 'premigrate', flag: 'premigrate', type: 'bool', default: 'true', description: 'Premigration, with container promotion and a high watermark: when the bytes a head-stub cut could free without a mount (items with a verified tape copy, tier both) fall under the width of the watermark band (high minus low), a policy pass copies the coldest eligible disk-only items to tape, keeping their disk copies (tier both), until twice that width could be freed. A container promotion right after a play then makes room by cutting stubs instead of staying on tape (it never mounts a cartridge to write). Costs a write mount now and then and the tape bytes; false = off.' },
  { key: 'promote_visit_gap', flag: 'promote-visit-gap', type: 'duration', arg: 'DURATION', default: '4h', description: 'Container promotion: plays of one container less than this apart (one after the other) count as one visit, a viewing or listening session. A container promotion never makes room by archiving items of a container with more visits within four promote_windows (a container watched on several days is not evicted for one played in a single session); 0 = every play is a visit.' },
  { key: 'policy_window', flag: 'policy-window', type: 'window', arg: 'HH:MM-HH:MM', default: 'any time', description: 'Local time of day when automatic policy passes may start and mount tapes (may wrap midnight, e.g. 22:00-06:00; 00:00-24:00 = all day; a window that starts where it ends, e.g. 10:00-10:00, is an error). A pass still running when the window closes stops at its next safe point (end of a tar member, between items) and goes on when it opens again. Playback and `tapedeck policy run` are never restricted.' },
  { key: 'policy_interval', flag: 'policy-interval', type: 'duration', arg: 'DURATION', default: '1h', description: 'Time between automatic policy passes; 0 = never automatically, only `tapedeck policy run`.' },
  { key: 'drive_idle_unload', flag: 'drive-idle-unload', type: 'int', arg: 'SECONDS', min: 0, max: 86400, default: '300', description: 'Unload a cartridge whose drive has been idle this long (0 = never). A cartridge clients still play from is not idle: the time counts from the end of the playback of the bytes they fetched (from the item\'s bitrate), not from the last tape read. Nor is one a queued container-promotion recall will read from (until that job has run, 30 min at most).' },
];

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4 };

/** "256K", "1G", "2GiB", "500MB", "1048576" → bytes (K/M/G/T alone are binary). */
export function parseSize(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(n) ? n : undefined;
}

export interface Config {
  mediaDirs: string[];
  dataDir: string;
  port: number;
  friendlyName: string;
  interfaces: string[]; // empty = default interfaces
  allow: string[]; // empty = default subnets
  /** allowed_hosts: Host names accepted besides IP literals, localhost and the host name (http/host-check.ts). */
  allowedHosts: string[];
  logLevel: string;
  scanOnStart: boolean;
  rescanInterval: number;
  watch: boolean;
  watchLimit: number;
  ssdp: boolean;
  ssdpInterval: number;
  scanConcurrency: number;
  scanThreads: number;
  /** Bytes of LevelDB block cache of the catalog. */
  catalogCache: number;
  /** catalog_mapped: bytes of catalog table pages allowed to accumulate before the catalog is reopened (0: never). */
  catalogMapped: number;
  /** Bytes of search result lists kept (0: no result cache). */
  searchCache: number;
  /** Bytes of pre-serialised DIDL-Lite kept for Browse (0: none). */
  didlCache: number;
  /** stream_buffers: bytes of media read buffers of all responses together. */
  streamBuffers: number;
  /** Bytes of child and sorted ID lists kept between Browse requests (catalog/id-lists.ts). */
  listCache: number;
  ffprobe: string | undefined; // undefined = auto, 'off' = never
  art: boolean;
  tape: {
    backend: 'virtual' | 'scsi' | 'none';
    dir: string;
    timeScale: number;
    generation: 'LTO-9' | 'LTO-8';
    drives: number;
    slots: number;
    blockSize: number;
    capacity: number;
    changer?: string;
    devices: string[];
  };
  /** Seconds of playback in a head stub, or 'auto' (resolve with headStubSeconds() in archive/stub-seconds.ts). */
  headStubSeconds: number | 'auto';
  headStubMin: number;
  /** Bytes at the end of a file kept in its stub (head_stub_tail). */
  headStubTail: number;
  cacheDir: string;
  cacheSize: number;
  /** 'spawn' or the path of an external stager's socket. */
  stager: string;
  admissionTimeout: number;
  driveIdleUnload: number;
  prestageItems: number;
  prestageSeconds: number;
  prestageOnBrowse: boolean;
  policy: PolicyConfig;
  configFile?: string;
  /** true when no media directory was configured (demo library). */
  demo: boolean;
}

/** Storage-policy settings (see src/policy/). Durations in seconds. */
export interface PolicyConfig {
  /** Both set or both unset; the same kind. */
  highWatermark?: Watermark;
  lowWatermark?: Watermark;
  archiveIdle: number;
  minArchiveSize: number;
  keepOnDisk: string[];
  promotePlays: number;
  /** Container promotion (promote_container_plays); 0 = off. */
  promoteContainerPlays: number;
  promoteWindow: number;
  /** Plays of a container less than this apart (seconds) are one visit (promote_visit_gap). */
  promoteVisitGap: number;
  /** Premigration (premigrate): keep the watermark band's width releasable by stub cuts. */
  premigrate: boolean;
  window?: DailyWindow;
  interval: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const BY_KEY = new Map(SETTINGS.map((s) => [s.key, s]));

export const DEFAULT_CONFIG_FILE = '/etc/tapedeck/tapedeck.conf';

function closest(word: string, options: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const o of options) {
    const d = editDistance(word, o);
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

type Raw = Map<string, string[]>;

/** Where each value of a Raw came from ("FILE:LINE", "--flag", "environment VAR"), for errors found after merging. */
const ORIGINS = new WeakMap<Raw, Map<string, string[]>>();
function noteOrigin(raw: Raw, key: string, where: string): void {
  let m = ORIGINS.get(raw);
  if (!m) ORIGINS.set(raw, (m = new Map()));
  m.set(key, [...(m.get(key) ?? []), where]);
}

/** Validates one value of a setting; returns the normalised string. */
function check(s: Setting, value: string, where: string): string {
  const v = value.trim();
  const bad = (why: string) => new ConfigError(`${where}: bad value for ${s.key}: ${JSON.stringify(value)} (${why})`);
  if (s.words?.includes(v.toLowerCase())) return v.toLowerCase();
  switch (s.type) {
    case 'int': {
      if (!/^-?\d+$/.test(v)) throw bad(`expected a whole number${s.words ? ` or ${s.words.join(', ')}` : ''}`);
      const n = Number(v);
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) throw bad(`expected ${s.min}..${s.max}`);
      return v;
    }
    case 'number': {
      const n = Number(v);
      // decimal only: Number() would also take 0x10, 0b1, 1_000-like forms people do not mean
      if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v) || !Number.isFinite(n)) throw bad('expected a number');
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) throw bad(`expected ${s.min}..${s.max}`);
      return v;
    }
    case 'size': {
      const n = parseSize(v);
      if (n === undefined) throw bad('expected a size in bytes, e.g. 262144, 256K, 4M, 2G');
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) throw bad(`expected ${s.min}..${s.max ?? 'any'} bytes`);
      return String(n);
    }
    case 'duration': {
      const n = parseDuration(v);
      if (n === undefined) throw bad('expected a duration: 45s, 30m, 12h, 90d or seconds');
      return String(n);
    }
    case 'watermark': {
      if (!parseWatermark(v, parseSize)) throw bad('expected a size such as 500M or 2T, or a percentage of the file system such as 80%');
      return v;
    }
    case 'window': {
      const w = checkWindow(v);
      if ('error' in w) throw bad(w.error);
      return v;
    }
    case 'bool': {
      const l = v.toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(l)) return 'true';
      if (['false', 'no', 'off', '0'].includes(l)) return 'false';
      throw bad('expected true or false');
    }
    case 'enum':
      if (!s.values!.includes(v)) throw bad(`expected one of ${s.values!.join(', ')}`);
      return v;
    default: {
      if (v === '') throw bad('empty');
      const why = s.validate?.(v);
      if (why) throw bad(why);
      return v;
    }
  }
}

/** Parses a config file's text. Errors name the file and line. */
export function parseConfigText(text: string, file: string): Raw {
  const raw: Raw = new Map();
  text.split(/\r?\n/).forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    const t = line.replace(/^\uFEFF/, '').trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) return;
    const eq = t.indexOf('=');
    if (eq < 0) throw new ConfigError(`${where}: expected "key = value", got ${JSON.stringify(t)}`);
    const key = t.slice(0, eq).trim();
    let value = t.slice(eq + 1).trim();
    if (/^".*"$/.test(value)) value = value.slice(1, -1);
    const s = BY_KEY.get(key);
    if (!s) {
      const hint = closest(key, [...BY_KEY.keys()]);
      throw new ConfigError(`${where}: unknown setting "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
    const v = check(s, value, where);
    if (s.type === 'list') raw.set(key, [...(raw.get(key) ?? []), v]);
    else if (raw.has(key)) throw new ConfigError(`${where}: ${key} is set twice`);
    else raw.set(key, [v]);
    noteOrigin(raw, key, where);
  });
  return raw;
}

function envName(s: Setting): string {
  return 'TAPEDECK_' + s.key.toUpperCase();
}

export function envVarOf(s: Setting): string {
  return envName(s);
}

/** Settings from the environment: TAPEDECK_<KEY>; lists are separated by commas. */
function fromEnv(env: NodeJS.ProcessEnv): Raw {
  const raw: Raw = new Map();
  for (const s of SETTINGS) {
    const v = env[envName(s)];
    if (v === undefined || v === '') continue;
    const where = `environment ${envName(s)}`;
    raw.set(s.key, s.type === 'list' ? v.split(',').map((x) => check(s, x, where)) : [check(s, v, where)]);
    raw.get(s.key)!.forEach(() => noteOrigin(raw, s.key, where));
  }
  return raw;
}

/** Flag values as commander parsed them: { media: [...], port: '8200', ... } keyed by camelCased flag. */
export type FlagValues = Record<string, unknown>;

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function fromFlags(flags: FlagValues): Raw {
  const raw: Raw = new Map();
  for (const s of SETTINGS) {
    const v = flags[camel(s.flag)];
    if (v === undefined) continue;
    const where = `--${s.flag}`;
    if (s.type === 'list') raw.set(s.key, (v as string[]).map((x) => check(s, String(x), where)));
    else raw.set(s.key, [check(s, String(v), where)]);
    raw.get(s.key)!.forEach(() => noteOrigin(raw, s.key, where));
  }
  return raw;
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STATE_DIRECTORY) return env.STATE_DIRECTORY.split(':')[0];
  const base = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(base, 'tapedeck');
}

export interface LoadOptions {
  flags?: FlagValues;
  env?: NodeJS.ProcessEnv;
  /** Explicit config file (from --config or TAPEDECK_CONFIG); a missing one is an error. */
  configFile?: string;
  /** Check that media directories exist (default true; the stager never reads them and may not see them). */
  checkMediaDirs?: boolean;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  // relative paths are relative to where the user ran the command (INIT_CWD under npm)
  const base = callerDir(env);
  let file = (flags.config as string | undefined) ?? opts.configFile ?? env.TAPEDECK_CONFIG;
  let fileRaw: Raw = new Map();
  if (file) {
    file = resolve(base, file);
    if (!existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
  } else if (existsSync(DEFAULT_CONFIG_FILE)) {
    file = DEFAULT_CONFIG_FILE;
  }
  if (file) {
    let text: string;
    try {
      // looked at before it is opened: a named pipe would block open(2), a device read forever
      const st = statSync(file);
      if (!st.isFile()) throw new ConfigError(`config file ${file} is not a regular file`);
      if (st.size > MAX_CONFIG_BYTES) throw new ConfigError(`config file ${file} is larger than 1 MiB (${st.size} bytes): not a Tapedeck configuration`);
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    fileRaw = parseConfigText(text, file);
  }
  const sources = [fileRaw, fromEnv(env), fromFlags(flags)];
  const merged: Raw = new Map(sources.flatMap((r) => [...r]));
  const one = (key: string) => merged.get(key)?.[0];
  const list = (key: string) => merged.get(key) ?? [];
  /** "FILE:LINE: ", "--flag: " or "environment VAR: " of the value that won, for checks across settings. */
  const at = (key: string, i = 0) => {
    const from = [...sources].reverse().find((r) => r.has(key));
    const where = from && ORIGINS.get(from)?.get(key)?.[i];
    return where ? `${where}: ` : '';
  };
  const mediaDirs = list('media_dir').map((d) => resolve(base, d));
  if (opts.checkMediaDirs !== false) {
    mediaDirs.forEach((d, i) => {
      if (!existsSync(d)) throw new ConfigError(`${at('media_dir', i)}media directory ${d} does not exist`);
    });
  }
  const ff = one('ffprobe');
  const dataDir = resolve(base, one('data_dir') ?? defaultDataDir(env));
  const blockSize = Number(one('tape_block_size') ?? 262144);
  if (blockSize % 512 !== 0) throw new ConfigError(`${at('tape_block_size')}tape_block_size ${blockSize} is not a multiple of 512`);
  const backend = (one('tape_backend') ?? 'virtual') as Config['tape']['backend'];
  const devices = list('tape_device');
  if (backend === 'scsi' && (devices.length === 0 || !one('tape_changer'))) throw new ConfigError(`${at('tape_backend')}tape_backend = scsi needs tape_changer and at least one tape_device`);
  const policy = policyConfig(one, list, at);
  return {
    mediaDirs,
    dataDir,
    port: Number(one('port') ?? 8210),
    friendlyName: one('friendly_name') ?? `Tapedeck on ${hostname()}`,
    interfaces: list('interface'),
    allow: list('allow'),
    allowedHosts: list('allowed_hosts'),
    logLevel: one('log_level') ?? 'info',
    scanOnStart: (one('scan_on_start') ?? 'true') === 'true',
    rescanInterval: Number(one('rescan_interval') ?? 900),
    watch: (one('watch') ?? 'true') === 'true',
    watchLimit: Number(one('watch_limit') ?? 0),
    ssdp: (one('ssdp') ?? 'true') === 'true',
    ssdpInterval: Number(one('ssdp_interval') ?? 600),
    scanConcurrency: Number(one('scan_concurrency') ?? 8),
    scanThreads: Number(one('scan_threads') ?? Math.min(4, availableParallelism() - 1)),
    catalogCache: Number(one('catalog_cache') ?? 2 * 1024 ** 2),
    catalogMapped: Number(one('catalog_mapped') ?? 0),
    searchCache: Number(one('search_cache') ?? 2 * 1024 ** 2),
    didlCache: Number(one('didl_cache') ?? 4 * 1024 ** 2),
    streamBuffers: Number(one('stream_buffers') ?? 64 * 1024 ** 2),
    listCache: Number(one('list_cache') ?? 8 * 1024 ** 2),
    ffprobe: ff,
    art: (one('art') ?? 'true') === 'true',
    tape: {
      backend,
      dir: resolve(base, one('tape_dir') ?? join(dataDir, 'vtl')),
      timeScale: Number(one('tape_time_scale') ?? 0.02),
      generation: (one('tape_generation') ?? 'LTO-9') as Config['tape']['generation'],
      drives: Number(one('tape_drives') ?? 2),
      slots: Number(one('tape_slots') ?? 16),
      blockSize,
      capacity: Number(one('tape_capacity') ?? 1024 ** 3),
      changer: one('tape_changer'),
      devices,
    },
    headStubSeconds: (one('head_stub_seconds') ?? 'auto') === 'auto' ? 'auto' : Number(one('head_stub_seconds')),
    headStubMin: Number(one('head_stub_min') ?? 4 * 1024 ** 2),
    headStubTail: Number(one('head_stub_tail') ?? 4 * 1024 ** 2),
    cacheDir: resolve(base, one('cache_dir') ?? (env.CACHE_DIRECTORY ? env.CACHE_DIRECTORY.split(':')[0] : join(dataDir, 'cache'))),
    cacheSize: Number(one('cache_size') ?? 2 * 1024 ** 3),
    stager: one('stager') ?? 'spawn',
    admissionTimeout: Number(one('admission_timeout') ?? 180),
    driveIdleUnload: Number(one('drive_idle_unload') ?? 300),
    prestageItems: Number(one('prestage_items') ?? 3),
    prestageSeconds: Number(one('prestage_seconds') ?? 300),
    prestageOnBrowse: (one('prestage_on_browse') ?? 'true') === 'true',
    policy,
    configFile: file,
    demo: mediaDirs.length === 0,
  };
}

function policyConfig(one: (k: string) => string | undefined, list: (k: string) => string[], at: (k: string) => string): PolicyConfig {
  const wm = (k: string) => {
    const v = one(k);
    return v === undefined ? undefined : parseWatermark(v, parseSize);
  };
  const high = wm('disk_high_watermark');
  let low = wm('disk_low_watermark');
  if (low && !high) throw new ConfigError(`${at('disk_low_watermark')}disk_low_watermark needs disk_high_watermark`);
  if (high && !low) low = high;
  if (high && low) {
    if (high.kind !== low.kind) throw new ConfigError(`${at('disk_low_watermark')}disk_low_watermark and disk_high_watermark must both be sizes or both percentages`);
    const h = high.kind === 'bytes' ? high.bytes : high.percent;
    const l = low.kind === 'bytes' ? low.bytes : (low as { percent: number }).percent;
    if (l > h) throw new ConfigError(`${at('disk_low_watermark')}disk_low_watermark (${one('disk_low_watermark')}) is above disk_high_watermark (${one('disk_high_watermark')})`);
  }
  const win = one('policy_window');
  return {
    ...(high ? { highWatermark: high, lowWatermark: low } : {}),
    archiveIdle: Number(one('archive_idle') ?? 0),
    minArchiveSize: Number(one('min_archive_size') ?? 16 * 1024 ** 2),
    keepOnDisk: list('keep_on_disk'),
    promotePlays: Number(one('promote_plays') ?? 0),
    promoteContainerPlays: Number(one('promote_container_plays') ?? 2),
    promoteWindow: Number(one('promote_window') ?? 7 * 86400),
    promoteVisitGap: Number(one('promote_visit_gap') ?? 4 * 3600),
    premigrate: (one('premigrate') ?? 'true') === 'true',
    ...(win ? { window: parseWindow(win) } : {}),
    interval: Number(one('policy_interval') ?? 3600),
  };
}

