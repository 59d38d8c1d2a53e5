// Gathers the policy's input (PolicyState) from the catalog, the access records, the file
// systems of the media directories and the archive pool. Everything time- or machine-
// dependent is injectable (clock, statfs), so tests and the bench can drive it.

import { resolve } from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import type { CatalogObject } from '../catalog/types.js';
import type { Config } from '../config.js';
import { DEFAULT_TAIL, headBytes, stubBytes } from '../archive/stubs.js';
import { PoolStore } from '../archive/pool.js';
import { headStubSeconds } from '../archive/stub-seconds.js';
import { PRESETS } from '../tape/timing.js';
import type { AccessRecord } from './access.js';
import { itemSize, tierOf } from '../catalog/tier.js';
import { innermostRoot } from '../util/inside.js';
import { fsSpace, type FsSpace } from '../util/free-space.js';
import type { FsState, PolicyItem, PolicyState, PoolCartridge } from './plan.js';

/** Size and use of the file system holding a directory, and an identity to group directories by (free space when known). */
export type FsInfo = Omit<FsSpace, 'freeBytes'> & { freeBytes?: number };

export type FsProbe = (dir: string) => Promise<FsInfo>;

export const realFsProbe: FsProbe = fsSpace;

export interface StateSources {
  catalog: Catalog;
  config: Config;
  /** Access records of the given items (the server's tracker, with unflushed plays; or the store). */
  readAccess: (ids: string[]) => Promise<Map<string, AccessRecord>>;
  now: () => number;
  fsProbe?: FsProbe;
  /** Cartridges outside the library (the archive service's tape status), if known. */
  offline?: () => Promise<string[]>;
  /** Cartridges in a drive now (the archive service's changer inventory), if known. */
  loaded?: () => Promise<string[]>;
  /** Media directories (the server's, which may be the demo's). */
  mediaDirs?: string[];
}

/** Disk bytes an archived item keeps: its head stub (estimated as the archive job cuts it: head + tail). */
export function estimateStub(item: CatalogObject, size: number, cfg: Pick<Config, 'headStubSeconds' | 'headStubMin' | 'tape'> & { headStubTail?: number }): number {
  const head = headBytes(item.res, size, { headSeconds: headStubSeconds(cfg), headMin: cfg.headStubMin });
  return Math.min(size, head + Math.min(cfg.headStubTail ?? DEFAULT_TAIL, size));
}

/**
 * Items converted to PolicyItems at a time: the full objects of a large library are never all in
 * memory. Small enough that a chunk of parsed objects dies in V8's young generation: with 1,000
 * (~3 MB of objects held across the access read) every chunk was promoted to the old generation,
 * and a pass over 100,000 items took the server ~190 MB above its resident size (20 MB less
 * with 100 in a standalone pass; bench/README.md).
 */
const GATHER_CHUNK = 100;
/** The recent plays of an item that has none (shared: the plan only reads them). */
const NO_PLAYS: number[] = Object.freeze([]) as unknown as number[];

export async function gatherState(src: StateSources): Promise<PolicyState> {
  const { catalog, config } = src;
  const dirs = (src.mediaDirs ?? config.mediaDirs).map((d) => resolve(d));
  const probe = src.fsProbe ?? realFsProbe;
  const filesystems = new Map<string, FsState>();
  const fsOfDir = new Map<string, string>();
  for (const d of dirs) {
    const info = await probe(d).catch(() => undefined);
    if (!info) continue;
    fsOfDir.set(d, info.key);
    const f = filesystems.get(info.key);
    if (f) f.dirs.push(d);
    else filesystems.set(info.key, { key: info.key, dirs: [d], sizeBytes: info.sizeBytes, usedBytes: info.usedBytes, ...(info.freeBytes !== undefined ? { freeBytes: info.freeBytes } : {}) });
  }
  // head stubs are written under <data_dir>/stubs (stubPath), often on another file system
  const stubFs = (await probe(config.dataDir).catch(() => undefined))?.key;
  const fsOf = (item: CatalogObject) => {
    const path = item.origPath ?? item.location?.disk?.path;
    const root = item.mediaRoot ? resolve(item.mediaRoot) : path ? innermostRoot(dirs, path) : undefined;
    return root !== undefined ? fsOfDir.get(root) : undefined;
  };
  const now = src.now();
  const toPolicyItem = (item: CatalogObject, rec: AccessRecord | undefined): PolicyItem => {
    const l = item.location ?? {};
    const size = itemSize(item);
    const p: PolicyItem = {
      id: item.id,
      title: item.title,
      path: item.origPath ?? l.disk?.path ?? '',
      parentId: item.parentId,
      size,
      tier: tierOf(item.location),
      diskBytes: l.disk ? l.disk.size : l.stub ? stubBytes(l.stub) : 0,
      stubBytes: estimateStub(item, size, config),
      plays: rec?.plays ?? 0,
      recent: rec?.recent.length ? rec.recent : NO_PLAYS,
    };
    if (item.relPath !== undefined) p.relPath = item.relPath;
    const fs = fsOf(item);
    if (fs !== undefined) p.fs = fs;
    // an item catalogued before `added` was kept counts from its file's mtime
    const added = item.added ?? item.mtime;
    if (added !== undefined) p.added = Math.min(added, now);
    if (item.changed !== undefined) p.changed = item.changed;
    if (rec?.lastPlayed !== undefined) p.lastPlayed = rec.lastPlayed;
    if (l.tape) {
      p.cartridge = l.tape.label;
      p.block = l.tape.block;
    }
    if (item.meta?.discNumber !== undefined) p.discNumber = item.meta.discNumber;
    if (item.meta?.trackNumber !== undefined) p.trackNumber = item.meta.trackNumber;
    return p;
  };
  // items are read from the catalog as they are converted, a chunk (and its access records) at a time
  const policyItems: PolicyItem[] = [];
  let chunk: CatalogObject[] = [];
  const convert = async () => {
    const access = await src.readAccess(chunk.map((i) => i.id));
    for (const item of chunk) policyItems.push(toPolicyItem(item, access.get(item.id)));
    chunk = [];
  };
  for await (const item of catalog.eachItem()) {
    chunk.push(item);
    if (chunk.length >= GATHER_CHUNK) await convert();
  }
  await convert();
  const pool: PoolCartridge[] = [];
  for (const rec of await new PoolStore(catalog.store).list()) {
    if (!rec.pool || rec.full) continue;
    pool.push({ label: rec.label, freeBytes: rec.remainingBytes ?? (rec.capacityBytes !== undefined ? rec.capacityBytes - (rec.usedBytes ?? 0) : config.tape.capacity) });
  }
  const t = PRESETS[config.tape.generation];
  const offline = src.offline ? await src.offline().catch(() => [] as string[]) : [];
  const loaded = src.loaded ? await src.loaded().catch(() => [] as string[]) : [];
  return {
    now,
    items: policyItems,
    ...(offline.length ? { offline } : {}),
    ...(loaded.length ? { loaded } : {}),
    ...(stubFs !== undefined ? { stubFs } : {}),
    filesystems: [...filesystems.values()],
    pool,
    mountSeconds: t.robotMove + t.load + t.averageLocate,
    rate: t.rate,
  };
}
