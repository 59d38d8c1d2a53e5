// Discrete-event model of the tape tier for the policy benchmark: drives,
// cartridges, staging cache and playback, with the virtual library's timing model
// (src/tape/timing.ts: robot, load, unload, serpentine locate, streaming rate) at
// real LTO timing (scale 1). Time is simulated, so 60 days run in seconds.
//
// A play of an archived item is served like the real read path (staging/source.ts,
// reads.ts): the head stub and cached segments first; the tape part is requested
// at play start (a request's first tape pass is not held back by the read-ahead
// window). The play's cartridge stays in its drive until the play ends (the
// scheduler does not unload a cartridge a client streams from); a request for
// another cartridge waits for a free drive. Drives unload after drive_idle_unload
// seconds without use. Bytes read from tape land in
// the staging cache (write-through, LRU by bytes).
//
// The catalog, the head stub sizing and the pre-staging decisions are the real
// code: items live in a Catalog (locations kept in step with the model), stubs
// come from headBytes()/headStubSeconds(), and pre-stages are what
// staging/prestage.ts asks for after each play.

import type { Catalog } from '../../src/catalog/catalog.js';
import type { Location } from '../../src/catalog/types.js';
import { Prestager } from '../../src/staging/prestage.js';
import type { ItemRef } from '../../src/staging/protocol.js';
import { locateSeconds, longitudinalPosition, type TimingPreset } from '../../src/tape/timing.js';
import type { Library, ModelItem, Play } from './trace.js';

export interface SimOptions {
  preset: TimingPreset;
  drives: number;
  cartridgeBytes: number;
  idleUnloadS: number;
  cacheBytes: number;
  /** Head stub bytes of an item when it is archived. */
  stubBytes(it: ModelItem): number;
  prestage?: { items: number; seconds: number };
  /** Seconds from the trace start when counting starts (warm-up before). */
  countFrom: number;
}

export interface ItemState {
  disk: boolean;
  /** Tape copy: cartridge and byte position on it. */
  tape?: { cart: number; pos: number };
  stub: number;
  /** Bytes cached contiguously from the stub's end (exclusive end). */
  cachedTo: number;
  lastPlayed?: number;
  plays: number[];
}

interface Drive {
  cart: number | null;
  x: number;
  lastUsed: number;
  /** Reserved for plays of its cartridge until then. */
  heldUntil: number;
  /** Busy reading (pre-stages, policy jobs) until then. */
  busyUntil: number;
}

export interface Figures {
  plays: number;
  playsFromTape: number;
  firstByteNoWait: number;
  playbackSeconds: number;
  stallSeconds: number;
  startWaitSeconds: number;
  mounts: number;
  bytesRead: number;
  bytesWritten: number;
  prestages: number;
  prestagedBytes: number;
  archived: number;
  recalled: number;
  premigrated: number;
}

const zero = (): Figures => ({
  plays: 0,
  playsFromTape: 0,
  firstByteNoWait: 0,
  playbackSeconds: 0,
  stallSeconds: 0,
  startWaitSeconds: 0,
  mounts: 0,
  bytesRead: 0,
  bytesWritten: 0,
  prestages: 0,
  prestagedBytes: 0,
  archived: 0,
  recalled: 0,
  premigrated: 0,
});

export class TierModel {
  readonly state: ItemState[];
  readonly figures = zero();
  readonly drives: Drive[];
  readonly carts: { used: number }[] = [];
  private cacheUse = 0;
  /** Items with cached bytes, least recently used first (Map insertion order). */
  private readonly lru = new Map<number, number>();
  now = 0;
  private prestager: Prestager | undefined;
  private readonly byId = new Map<string, number>();

  constructor(
    readonly lib: Library,
    readonly ids: string[],
    readonly catalog: Catalog,
    readonly o: SimOptions,
  ) {
    this.state = lib.items.map(() => ({ disk: true, stub: 0, cachedTo: 0, plays: [] }));
    this.drives = Array.from({ length: o.drives }, () => ({ cart: null, x: 0, lastUsed: 0, heldUntil: 0, busyUntil: 0 }));
    ids.forEach((id, n) => this.byId.set(id, n));
    if (o.prestage && o.prestage.items > 0) {
      const host = { prestage: (ref: ItemRef, start: number, end: number) => this.prestage(ref, start, end), cartridgeOffline: async () => false };
      this.prestager = new Prestager(catalog, host, { items: o.prestage.items, seconds: o.prestage.seconds, onBrowse: false, cacheSize: o.cacheBytes, now: () => this.now * 1000 });
    }
  }

  private counting(): boolean {
    return this.now >= this.o.countFrom;
  }

  private add(k: keyof Figures, v: number): void {
    if (this.counting()) this.figures[k] += v;
  }

  /** Bytes the catalog holds on primary disk (stubs included). */
  diskBytes(): number {
    let n = 0;
    this.state.forEach((s, i) => (n += s.disk ? this.lib.items[i]!.size : s.stub));
    return n;
  }

  // ---- playback ------------------------------------------------------------------------------

  async play(p: Play): Promise<void> {
    this.now = p.at;
    const it = this.lib.items[p.item]!;
    const s = this.state[p.item]!;
    s.lastPlayed = p.at;
    s.plays.push(p.at);
    if (s.plays.length > 50) s.plays.shift();
    this.add('plays', 1);
    this.add('playbackSeconds', p.seconds);
    const endByte = Math.min(it.size, Math.ceil(p.offset + p.seconds * it.rate));
    if (s.disk || !s.tape) {
      this.add('firstByteNoWait', 1);
      return;
    }
    const o = p.offset;
    let cov = o;
    if (o < s.stub) cov = Math.max(s.stub, s.cachedTo);
    else if (o < s.cachedTo) cov = s.cachedTo;
    if (s.cachedTo > s.stub) this.touchCache(p.item);
    if (cov >= endByte) {
      this.add('firstByteNoWait', 1);
      return;
    }
    this.add('playsFromTape', 1);
    const firstWait = cov === o;
    if (!firstWait) this.add('firstByteNoWait', 1);
    // the tape part is asked for at once (a request's first pass is not held back by the read-ahead window)
    const tReq = p.at;
    const ready = this.serve(tReq, s.tape.cart, s.tape.pos + cov, p.at + p.seconds);
    let delay = 0;
    if (firstWait) {
      delay = ready - p.at;
      this.add('startWaitSeconds', delay);
    } else {
      const need = p.at + (cov - o) / it.rate;
      delay = Math.max(0, ready - need);
      this.add('stallSeconds', delay);
    }
    // the drive stays with this play's cartridge until the play ends
    const d = this.drives.find((x) => x.cart === s.tape!.cart)!;
    d.heldUntil = Math.max(d.heldUntil, p.at + delay + p.seconds);
    d.lastUsed = Math.max(d.lastUsed, p.at + delay + p.seconds);
    this.add('bytesRead', endByte - cov);
    if (o <= s.cachedTo || o <= s.stub) this.cache(p.item, endByte);
    // predictive pre-staging: the real Prestager decides, while this cartridge is loaded
    if (this.prestager) await this.prestager.onPlay(this.ids[p.item]!);
  }

  /** Time the first byte at `pos` of cartridge `cart` is read, for a request at `t`; the play holds the drive until `holdUntil`. */
  private serve(t: number, cart: number, pos: number, holdUntil: number): number {
    const p = this.o.preset;
    this.idleUnloads(t);
    const x = this.xOf(pos);
    let d = this.drives.find((dr) => dr.cart === cart);
    let ready: number;
    if (d) {
      const start = Math.max(t, d.busyUntil);
      ready = start + locateSeconds(p, d.x, x);
    } else {
      // the drive free first (now, or when its play ends); among free ones an empty one, then the least recently used
      const free = (dr: Drive) => Math.max(t, dr.heldUntil, dr.busyUntil);
      d = [...this.drives].sort((a, b) => free(a) - free(b) || Number(a.cart !== null) - Number(b.cart !== null) || a.lastUsed - b.lastUsed)[0]!;
      const start = free(d);
      const swap = d.cart !== null ? p.unload + p.robotMove : 0;
      ready = start + swap + p.robotMove + p.load + locateSeconds(p, 0, x);
      d.cart = cart;
      d.heldUntil = 0;
      this.add('mounts', 1);
    }
    d.x = x;
    d.lastUsed = Math.max(d.lastUsed, ready, holdUntil);
    return ready;
  }

  /** Cartridges in a drive now (after the idle unloads due). */
  loadedCartridges(): number[] {
    this.idleUnloads(this.now);
    return this.drives.map((d) => d.cart).filter((c): c is number => c !== null);
  }

  private idleUnloads(t: number): void {
    for (const d of this.drives) {
      if (d.cart !== null && Math.max(d.lastUsed, d.heldUntil, d.busyUntil) + this.o.idleUnloadS <= t) d.cart = null;
    }
  }

  private xOf(pos: number): number {
    const bs = 256 * 1024;
    return longitudinalPosition(Math.floor(pos / bs), bs, this.o.cartridgeBytes, this.o.preset.wraps);
  }

  // ---- staging cache -------------------------------------------------------------------------

  private cache(n: number, to: number): void {
    const s = this.state[n]!;
    const from = Math.max(s.stub, s.cachedTo);
    if (to <= from) return;
    this.cacheUse += to - from;
    s.cachedTo = to;
    this.touchCache(n);
    for (const [victim] of this.lru) {
      if (this.cacheUse <= this.o.cacheBytes) break;
      if (victim === n) continue;
      this.dropCache(victim);
    }
  }

  private dropCache(n: number): void {
    const s = this.state[n]!;
    if (s.cachedTo > s.stub) this.cacheUse -= s.cachedTo - s.stub;
    s.cachedTo = 0;
    this.lru.delete(n);
  }

  private touchCache(n: number): void {
    this.lru.delete(n);
    this.lru.set(n, this.now);
  }

  /** PrestageHost.prestage: read [start, end) of an item on the loaded cartridge into the cache. */
  private prestage(ref: ItemRef, start: number, end: number): boolean {
    const n = this.byId.get(ref.id);
    if (n === undefined) return false;
    const s = this.state[n]!;
    if (!s.tape || s.disk) return false;
    const from = Math.max(start, s.cachedTo, s.stub);
    if (end <= from || start > Math.max(s.stub, s.cachedTo)) return true;
    const d = this.drives.find((x) => x.cart === s.tape!.cart);
    if (!d) return true; // the cartridge is gone: nothing read (never a mount for a guess)
    const p = this.o.preset;
    const x = this.xOf(s.tape.pos + from);
    d.busyUntil = Math.max(d.busyUntil, this.now) + locateSeconds(p, d.x, x) + (end - from) / p.rate;
    d.x = this.xOf(s.tape.pos + end);
    this.add('prestages', 1);
    this.add('prestagedBytes', end - from);
    this.add('bytesRead', end - from);
    this.cache(n, end);
    return true;
  }

  // ---- policy moves --------------------------------------------------------------------------

  /** Archives items in the given order (appended to cartridges in that order); their disk copies go, except those of `keepDisk` (premigration: tier both). */
  async archive(items: number[], keepDisk: ReadonlySet<number> = new Set()): Promise<void> {
    const touched = new Set<number>();
    for (const n of items) {
      const s = this.state[n]!;
      const it = this.lib.items[n]!;
      if (!s.disk) continue;
      if (!s.tape) {
        let c = this.carts.length - 1;
        if (c < 0 || this.carts[c]!.used + it.size > this.o.cartridgeBytes) {
          this.carts.push({ used: 0 });
          c++;
        }
        s.tape = { cart: c, pos: this.carts[c]!.used };
        this.carts[c]!.used += it.size;
        touched.add(c);
        this.add('bytesWritten', it.size);
        this.add('bytesRead', it.size); // verify before switch: read back
      }
      if (keepDisk.has(n)) {
        this.add('premigrated', 1);
        await this.sync(n);
        continue;
      }
      s.disk = false;
      s.stub = Math.min(it.size, this.o.stubBytes(it));
      s.cachedTo = 0;
      this.lru.delete(n);
      this.add('archived', 1);
      await this.sync(n);
    }
    this.add('mounts', touched.size);
  }

  /** Recalls items to disk (the tape copy stays: tier both). */
  async recall(items: number[]): Promise<void> {
    const touched = new Set<number>();
    for (const n of items) {
      const s = this.state[n]!;
      if (s.disk || !s.tape) continue;
      touched.add(s.tape.cart);
      this.add('bytesRead', this.lib.items[n]!.size);
      s.disk = true;
      s.stub = 0;
      this.dropCache(n);
      this.add('recalled', 1);
      await this.sync(n);
    }
    // a cartridge already in a drive costs no mount
    for (const c of touched) if (!this.drives.some((d) => d.cart === c)) this.add('mounts', 1);
  }

  /** The catalog's location of item n, as the model has it (what the Prestager reads). */
  private async sync(n: number): Promise<void> {
    const s = this.state[n]!;
    const it = this.lib.items[n]!;
    const loc: Location = {};
    if (s.disk) loc.disk = { path: `/model/${n}`, size: it.size, mtime: 0 };
    if (s.tape) {
      const bs = 256 * 1024;
      loc.tape = { label: `TD${String(s.tape.cart + 1).padStart(4, '0')}L9`, tapeFile: 0, block: Math.floor(s.tape.pos / bs), offset: s.tape.pos % bs, size: it.size, sha256: '0'.repeat(64), blockSize: bs };
      if (!s.disk) loc.stub = { path: `/model/${n}.stub`, ranges: s.stub > 0 ? [{ start: 0, end: s.stub }] : [] };
    }
    await this.catalog.setLocation(this.ids[n]!, loc);
  }
}
