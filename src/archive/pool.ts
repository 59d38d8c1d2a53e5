// The archive pool: cartridges labelled by Tapedeck, which archive jobs append to.
//
// Labelling a blank cartridge writes one small archive on it (tape files 0 and
// 1): a tar holding `.tapedeck/label.json` and its index. The tape thus says by
// itself that it belongs to a Tapedeck pool, and `tape import` of a labelled
// cartridge puts it back into the pool after a catalog loss. The catalog keeps
// one record per known cartridge under `tape/<label>` (pool membership and the
// last known used/free space, so choosing a cartridge never needs a mount).
//
// Every archive's tar starts with a metadata member `.tapedeck/archive-*.json`
// describing the catalog items that follow (original path, title, tags, resource),
// so a catalog can be rebuilt from tapes alone with the same object IDs.

import { Readable } from 'node:stream';
import type { BatchOp, KVStore } from '../catalog/store.js';
import { prefixRange } from '../catalog/store.js';
import type { CatalogObject } from '../catalog/types.js';
import { tarStreamSize, type ArchiveMember, type IndexEntry } from '../tape/format.js';

export const META_DIR = '.tapedeck/';
export const LABEL_MEMBER = '.tapedeck/label.json';
export const LABEL_OBJECT = 'tapedeck:label';
export const META_OBJECT = 'tapedeck:meta';

export interface CartridgeRecord {
  label: string;
  /** In the archive pool: archive jobs may append to it. */
  pool: boolean;
  labelled?: string;
  blockSize?: number;
  capacityBytes?: number;
  usedBytes?: number;
  remainingBytes?: number;
  /** End of medium was met. */
  full?: boolean;
  updated: string;
}

export interface LabelContent {
  format: 'tapedeck-label';
  version: 1;
  label: string;
  created: string;
}

export interface ArchiveMetaItem {
  objectId: string;
  origPath?: string;
  mediaRoot?: string;
  relPath?: string;
  title: string;
  upnpClass: string;
  kind?: CatalogObject['kind'];
  meta?: CatalogObject['meta'];
  res?: CatalogObject['res'];
  mtime?: number;
}

export interface ArchiveMeta {
  format: 'tapedeck-archive-meta';
  version: 1;
  job: string;
  batch: number;
  created: string;
  items: ArchiveMetaItem[];
}

const T = 'tape/';

export class PoolStore {
  constructor(private readonly store: KVStore) {}

  async get(label: string): Promise<CartridgeRecord | undefined> {
    const v = await this.store.get(T + label);
    return v === undefined ? undefined : (JSON.parse(v) as CartridgeRecord);
  }
  async list(): Promise<CartridgeRecord[]> {
    const out: CartridgeRecord[] = [];
    for await (const [, v] of this.store.entries(prefixRange(T))) out.push(JSON.parse(v) as CartridgeRecord);
    return out;
  }
  op(rec: CartridgeRecord): BatchOp {
    return { type: 'put', key: T + rec.label, value: JSON.stringify(rec) };
  }
  async put(rec: CartridgeRecord): Promise<void> {
    await this.store.batch([this.op({ ...rec, updated: new Date().toISOString() })]);
  }
}

export function bufferMember(objectId: string, path: string, data: Buffer, mtime = Date.now()): ArchiveMember {
  return { objectId, path, size: data.length, mtime, open: () => Readable.from([data]) };
}

export function labelMember(label: string, now = new Date()): ArchiveMember {
  const content: LabelContent = { format: 'tapedeck-label', version: 1, label, created: now.toISOString() };
  return bufferMember(LABEL_OBJECT, LABEL_MEMBER, Buffer.from(JSON.stringify(content, null, 2) + '\n'), now.getTime());
}

export function metaItemOf(item: CatalogObject): ArchiveMetaItem {
  const m: ArchiveMetaItem = { objectId: item.id, title: item.title, upnpClass: item.upnpClass };
  if (item.origPath !== undefined) m.origPath = item.origPath;
  if (item.mediaRoot !== undefined) m.mediaRoot = item.mediaRoot;
  if (item.relPath !== undefined) m.relPath = item.relPath;
  if (item.kind !== undefined) m.kind = item.kind;
  if (item.meta !== undefined) m.meta = item.meta;
  if (item.res !== undefined) m.res = item.res;
  if (item.mtime !== undefined) m.mtime = item.mtime;
  return m;
}

export function metaMember(jobId: string, batch: number, items: CatalogObject[], now = new Date()): ArchiveMember {
  const meta: ArchiveMeta = { format: 'tapedeck-archive-meta', version: 1, job: jobId, batch, created: now.toISOString(), items: items.map(metaItemOf) };
  return bufferMember(META_OBJECT, `${META_DIR}archive-${jobId}-${batch}.json`, Buffer.from(JSON.stringify(meta) + '\n'), now.getTime());
}

export const isMetaPath = (p: string) => p.startsWith(META_DIR);

/** Length of the JSON index entry of a member, with generous numbers. */
function indexEntryBytes(m: { objectId: string; path: string }): number {
  const e: IndexEntry = {
    objectId: m.objectId,
    path: m.path,
    size: 1e15,
    sha256: 'f'.repeat(64),
    label: 'XXXXXXL9',
    tapeFile: 1e9,
    firstBlock: 1e15,
    offset: 16777216,
    blockSize: 16777216,
    mtime: 1e11,
  };
  return Buffer.byteLength(JSON.stringify(e)) + 1;
}

/** Bytes an archive of `members` takes on a cartridge of block size bs: tar + index, block-padded. */
export function archiveBytes(members: readonly { objectId: string; path: string; size: number }[], bs: number): number {
  const tar = tarStreamSize(members, bs);
  const index = 600 + members.reduce((n, m) => n + indexEntryBytes(m), 0);
  return tar + Math.ceil(index / bs) * bs;
}
