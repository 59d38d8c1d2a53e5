// Predictive pre-staging (DESIGN.md §8, "pre-staging by phase"), server side.
//
// The viewer's next step is predictable: after track k comes track k+1, after
// episode n episode n+1. When a client starts playing an archived item k, its
// cartridge is being loaded for it anyway; while it is in the drive, the first
// `seconds` of playback past the head stub of the next `items` items of the
// same container (play order = the container's default order: track number,
// episode order, natural file-name order) that live on that cartridge are read
// into the staging cache at prefetch priority (below every interactive read).
// Playing the album or season straight through then costs one mount and no
// wait between items. Items on another cartridge are left alone (a guess never
// costs a mount), and so are items with a disk copy.
//
// Browsing into a container (with `onBrowse`) whose archived items all sit on
// one cartridge inside the library pre-stages its first items the same way,
// which loads that cartridge ahead, before anything is played.
//
// Pre-staged bytes are ordinary cache segments: evictable (least recently used
// first) and never in place of pinned items (the cache never evicts those).
// One pass stages at most a quarter of the cache. Each item or container
// triggers at most once per `repeatMs`.

import type { Catalog } from '../catalog/catalog.js';
import type { CatalogObject, TapeLocation } from '../catalog/types.js';
import type { Logger } from '../log.js';
import type { ItemRef } from './protocol.js';
import { firstUncovered } from './source.js';

export interface PrestageHost {
  /**
   * Stage bytes [start, end) of an item at prefetch priority; false when no worker is connected.
   * `mount` false: only while its cartridge is loaded for something else (never a mount of its own).
   */
  prestage(item: ItemRef, start: number, end: number, mount?: boolean): boolean;
  /** Whether the cartridge is outside the library (false when unknown). */
  cartridgeOffline(label: string): Promise<boolean>;
}

export interface PrestageOptions {
  /** Next items staged after the one played (0 = off). */
  items: number;
  /** Seconds of playback staged past each item's head stub. */
  seconds: number;
  /** Browsing into a container of archived items on one cartridge loads it ahead. */
  onBrowse: boolean;
  /** Staging cache size: one pass stages at most a quarter of it. */
  cacheSize: number;
  /** Bytes staged when an item's bitrate is unknown. */
  unknownRateBytes?: number;
  /** One trigger per item/container within this time (default 10 min). */
  repeatMs?: number;
  now?: () => number;
}

export interface PrestageCounters {
  /** Plays and browses that staged something. */
  triggers: number;
  /** Items whose next minutes were requested. */
  items: number;
  /** Bytes requested (the worker reads what the cache does not hold yet). */
  bytes: number;
  /** Browses that loaded a cartridge ahead. */
  browseLoads: number;
}

const DEFAULT_UNKNOWN_RATE_BYTES = 32 * 1024 * 1024;
const MAX_REMEMBERED = 2000;

export class Prestager {
  readonly counters: PrestageCounters = { triggers: 0, items: 0, bytes: 0, browseLoads: 0 };
  private readonly seen = new Map<string, number>();
  private readonly now: () => number;

  constructor(
    private readonly catalog: Catalog,
    private readonly host: PrestageHost,
    private readonly opts: PrestageOptions,
    private readonly log?: Logger,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** A client started fetching item `id` (media request). Never throws; the work runs in the background. */
  onPlay(id: string): Promise<void> {
    if (this.opts.items <= 0 || !this.once(`p\0${id}`)) return Promise.resolve();
    return this.afterPlay(id).catch((err: Error) => this.log?.debug({ item: id, err: err.message }, 'pre-stage after play failed'));
  }

  /** A client browsed the children of `containerId` (this page of them: IDs are enough, items are read again). Never throws. */
  onBrowse(containerId: string, page: readonly Pick<CatalogObject, 'id' | 'refId' | 'container'>[]): Promise<void> {
    if (!this.opts.onBrowse || this.opts.items <= 0 || !page.some((o) => !o.container) || !this.once(`b\0${containerId}`)) return Promise.resolve();
    return this.afterBrowse(page).catch((err: Error) => this.log?.debug({ container: containerId, err: err.message }, 'pre-stage after browse failed'));
  }

  private async afterPlay(id: string): Promise<void> {
    const played = await this.canonical(id);
    const tape = played && !played.location?.disk ? played.location?.tape : undefined;
    if (!played || !tape) return; // from disk: no cartridge is being loaded for this play
    const siblings = await this.catalog.childIds(played.parentId);
    const k = siblings.indexOf(played.id);
    if (k < 0) return;
    const next: CatalogObject[] = [];
    for (const sid of siblings.slice(k + 1)) {
      if (next.length >= this.opts.items) break;
      const o = await this.catalog.get(sid);
      if (o && !o.container) next.push(o);
    }
    // the play loads the cartridge: the pre-stage rides on that mount and never makes one itself
    // (a play that ended before the pre-stage got the drive, with its cartridge unloaded since)
    this.stage(
      next.filter((o) => archivedOn(o, tape.label)),
      false,
    );
  }

  private async afterBrowse(page: readonly Pick<CatalogObject, 'id' | 'refId' | 'container'>[]): Promise<void> {
    const items: CatalogObject[] = [];
    for (const o of page) {
      if (o.container) continue;
      const c = await this.canonical(o.refId ?? o.id);
      if (c) items.push(c);
    }
    const archived = items.filter((o) => archivedOn(o));
    const labels = new Set(archived.map((o) => o.location!.tape!.label));
    if (labels.size !== 1) return;
    const [label] = labels;
    if (await this.host.cartridgeOffline(label!)) return;
    if (this.stage(archived.slice(0, this.opts.items), true) > 0) this.counters.browseLoads++;
  }

  /** Requests the next minutes of each item; returns how many were requested. */
  private stage(items: CatalogObject[], mount: boolean): number {
    let budget = Math.floor(this.opts.cacheSize / 4);
    let n = 0;
    for (const o of items) {
      const tape = o.location!.tape!;
      const start = firstUncovered(0, tape.size, o.location?.stub?.ranges) ?? tape.size;
      const want = Math.min(this.bytesFor(o, tape), budget);
      const end = Math.min(tape.size, start + want);
      if (end <= start) continue;
      if (!this.host.prestage({ id: o.id, tape }, start, end, mount)) break;
      budget -= end - start;
      n++;
      this.counters.items++;
      this.counters.bytes += end - start;
    }
    if (n > 0) this.counters.triggers++;
    return n;
  }

  private bytesFor(o: CatalogObject, tape: TapeLocation): number {
    const res = o.res;
    let rate = res?.bitrate && res.bitrate > 0 ? res.bitrate : undefined;
    if (!rate && res?.duration && res.duration > 0) rate = tape.size / res.duration;
    return rate ? Math.ceil(rate * this.opts.seconds) : (this.opts.unknownRateBytes ?? DEFAULT_UNKNOWN_RATE_BYTES);
  }

  private async canonical(id: string): Promise<CatalogObject | undefined> {
    const o = await this.catalog.get(id);
    if (o?.refId) return this.catalog.get(o.refId);
    return o;
  }

  /** True the first time `key` is seen within repeatMs. */
  private once(key: string): boolean {
    const t = this.now();
    const last = this.seen.get(key);
    if (last !== undefined && t - last < (this.opts.repeatMs ?? 600_000)) return false;
    this.seen.set(key, t);
    if (this.seen.size > MAX_REMEMBERED) {
      for (const [k, at] of this.seen) if (t - at >= (this.opts.repeatMs ?? 600_000) || this.seen.size > MAX_REMEMBERED) this.seen.delete(k);
    }
    return true;
  }
}

/** Only on tape (no disk copy), optionally on one cartridge. */
function archivedOn(o: CatalogObject, label?: string): boolean {
  const loc = o.location;
  return !!loc?.tape && !loc.disk && (label === undefined || loc.tape.label === label);
}
