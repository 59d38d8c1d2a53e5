// Shared data model of the catalog. Everything that protocol layers (DIDL-Lite,
// ContentDirectory, HTTP delivery) and storage layers (scanner, tape, staging)
// exchange about a library object is described here.
//
// Rule: an object's ID and URL never depend on where its bytes live. Where the
// bytes are is the `location` field and nothing else.

export type MediaKind = 'audio' | 'video' | 'image';

/** Bytes on primary disk. */
export interface DiskLocation {
  path: string; // absolute path of the file
  size: number;
  mtime: number; // ms since epoch
}

/** Bytes on a tape cartridge (see DESIGN.md §5). */
export interface TapeLocation {
  label: string; // cartridge barcode, e.g. TD0001L9
  tapeFile: number; // tape file number holding the tar stream
  block: number; // logical block address of the block holding the first data byte
  offset: number; // byte offset of the first data byte within that block
  size: number;
  sha256: string;
  blockSize: number;
}

/** A half-open byte range [start, end). */
export interface ByteRange {
  start: number;
  end: number;
}

/** Parts of an archived file kept on disk so probing and playback start never wait for tape. */
export interface StubLocation {
  path: string; // file holding the stub ranges back to back, in order
  ranges: ByteRange[]; // ranges of the original file, sorted, non-overlapping
}

export interface Location {
  disk?: DiskLocation;
  tape?: TapeLocation;
  stub?: StubLocation;
}

/** Technical description of an item's single resource. */
export interface Resource {
  mime: string;
  size: number;
  duration?: number; // seconds (float)
  bitrate?: number; // BYTES per second, as UPnP res@bitrate wants
  sampleFrequency?: number; // Hz
  nrAudioChannels?: number;
  bitsPerSample?: number;
  width?: number;
  height?: number;
  dlnaProfile?: string; // DLNA.ORG_PN value, when one applies
  container?: string; // e.g. 'mp4', 'mkv', 'mp3', 'flac', 'jpeg'
  videoCodec?: string;
  audioCodec?: string;
}

/** Descriptive metadata of an item (DIDL-Lite dc:/upnp: properties). */
export interface ItemMeta {
  artist?: string;
  albumArtist?: string;
  album?: string;
  genre?: string;
  creator?: string;
  date?: string; // ISO 8601: YYYY, YYYY-MM-DD or full date-time
  trackNumber?: number;
  discNumber?: number;
  description?: string;
}

/** What the media prober returns for one file. */
export interface ProbeResult {
  kind: MediaKind;
  upnpClass: string; // object.item.audioItem.musicTrack, object.item.videoItem.movie, object.item.imageItem.photo
  title: string;
  meta: ItemMeta;
  res: Resource;
  /**
   * Transient (never stored): the embedded cover picture of an audio file, when the prober was
   * asked for pictures, or why it was skipped (too large, unreadable).
   */
  picture?: { data: Uint8Array; format?: string };
  pictureSkipped?: string;
}

/**
 * Album art / thumbnail of an object, made once at scan time (src/art/): `key` names the pair of
 * JPEGs in the data directory's art store (a hash of the source picture, so an album cover
 * shared by every track is stored once), with the pixel size of each.
 */
export interface ArtRef {
  key: string;
  tn: [number, number]; // JPEG_TN, at most 160×160
  sm: [number, number]; // JPEG_SM, at most 640×480
}

/** One entry of a playlist: a catalogued item, and the title the playlist gives it (#EXTINF, TitleN). */
export interface PlaylistEntry {
  id: string;
  title?: string;
}

/** A video's sidecar subtitle, copied at scan time into `<data_dir>/subtitles` (src/media/subtitles.ts). */
export interface SubtitleRef {
  key: string; // content hash of the file
  ext: string; // srt, ass, ssa, vtt, smi, sub
  lang?: string; // from `<name>.<lang>.<ext>`
}

export interface CatalogObject {
  id: string;
  parentId: string; // '-1' for the root container
  container: boolean;
  upnpClass: string;
  title: string;
  /** Containers: number of children (kept by the catalog). */
  childCount?: number;
  /** Containers: whether Search is allowed below it. */
  searchable?: boolean;
  /** Items that appear in a virtual container are references: refId is the canonical item's ID. */
  refId?: string;
  /** Items: */
  kind?: MediaKind;
  meta?: ItemMeta;
  res?: Resource;
  location?: Location;
  /** Items: absolute path the file had when scanned (its identity: survives tier moves). */
  origPath?: string;
  /** Items: the configured media directory the file was found under. */
  mediaRoot?: string;
  /** Items: path relative to mediaRoot. */
  relPath?: string;
  /** Items: file modification time (ms) when scanned. */
  mtime?: number;
  /** Items, album and artist containers: album art / thumbnail (kept on disk, also for items on tape). */
  art?: ArtRef;
  /** Video items: sidecar subtitles (kept on disk, also for items on tape). */
  subtitles?: SubtitleRef[];
  /** Items: when the catalog first saw the item (ms; kept by the catalog, absent on items catalogued before it was kept). */
  added?: number;
  /** Items: when the catalog last saw the item's content change (new size or mtime; ms; kept by the catalog). */
  changed?: number;
  /** Containers: sort key of this container inside its parent (catalog-internal). */
  sortKey?: string;
  /**
   * Playlist records (ID `l…`, one per .m3u/.m3u8/.pls file, never listed themselves): the items
   * the file lists. They place a playlistContainer in the file's folder and under Playlists.
   */
  playlist?: { entries: PlaylistEntry[] };
  /** Last time this object (or, for containers, its child list) changed: a counter, see ContainerUpdateIDs. */
  updateId?: number;
}

export const ROOT_ID = '0';
