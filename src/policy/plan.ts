// The policy brain: one pure function from the state of the library (items with their
// tiers, sizes and access figures, disk usage, the archive pool) and the rules (settings)
// to a plan (which items to archive or recall, and why). No clock, no I/O: the same state
// gives the same plan, which is what makes `policy plan` and `policy run` agree and lets a
// trace-driven bench drive it with a simulated clock.
//
// Rules (DESIGN.md §8):
//   idle        archive_idle > 0: an item neither played nor changed (nor added) for that long
//   watermark   usage above the high mark: the coldest eligible items (least recently played
//               or added, then largest) until usage is at or below the low mark
//   promotion   an item on tape only, played promote_plays times within promote_window, is
//               recalled unless that pushes usage over the high mark; colder items are archived
//               first to make room ("make-room"), and a promotion that cannot fit is skipped
//   container   promote_container_plays > 0 and a high watermark: a container (album, season
//               folder) whose items with a tape copy were played that many times within
//               promote_window gets its remaining tape-only items recalled ("container-plays"), in
//               play order, under the same guard as a promotion, and never making room with
//               items of a container visited more often (visits: plays less than promote_visit_gap
//               apart are one, counted over VISIT_HISTORY_WINDOWS promote_windows), or as often and
//               played more often within the window (that recall is skipped instead: a hotter
//               container is not evicted for a colder one). While a container is hot its
//               items count as warm as its last play for the watermark and make-room (so a pass
//               does not archive the unplayed episodes of the season being watched).
//               It never costs a mount of its own: a full pass recalls only from cartridges
//               that are in a drive now or that the pass mounts anyway (its promotion recalls,
//               its archive writes), and makes room by writing colder items only to such a
//               cartridge (items with a verified tape copy, tier both, make room by a stub cut,
//               no write); the other items are listed as skipped (waitsFor) and wait for their
//               cartridge to be loaded, e.g. by the container's next play (the engine then runs
//               this rule for the one container, PlanScope, which makes room only with tier
//               both items and whose job reads only from a cartridge still in a drive).
//   premigrate  with the container rule and premigrate on: when a scope's bytes freeable by stub
//               cuts (eligible tier both items) fall under the watermark band (high - low), the
//               coldest eligible disk-only items are archived keeping their disk copies
//               (keepDisk, usage unchanged) until twice the band is freeable: what the make-room
//               of a promotion right after a play may take, without a mount.
// Eligible for archiving: a disk copy, size >= min_archive_size, no keep_on_disk glob matching.
// Collocation: the archive actions are ordered by container, in play order (disc, track,
// natural file name), so one job writes each container's items together on one cartridge.

import type { PolicyConfig } from '../config.js';
import type { Tier } from '../catalog/tier.js';
import { formatWatermark, globToRegExp, type Watermark } from './units.js';

export interface PolicyItem {
  id: string;
  title: string;
  /** Original path (absolute). */
  path: string;
  /** Path relative to its media directory (keep_on_disk globs match it). */
  relPath?: string;
  /** Canonical container (folder): the collocation group. */
  parentId: string;
  size: number;
  tier: Tier;
  /** Bytes the item holds on primary disk now (the file, or its stub). */
  diskBytes: number;
  /** Bytes it would hold on disk once archived (its head stub, estimated). */
  stubBytes: number;
  /** Key of the file system holding its disk copy or stub (percent watermarks). */
  fs?: string;
  added?: number;
  changed?: number;
  lastPlayed?: number;
  plays: number;
  /** Start times of recent plays (ms). */
  recent: number[];
  cartridge?: string;
  block?: number;
  discNumber?: number;
  trackNumber?: number;
}

export interface FsState {
  key: string;
  /** Media directories on it. */
  dirs: string[];
  sizeBytes: number;
  usedBytes: number;
  /** Bytes still writable (statfs bavail), when known: a promotion must fit in them. */
  freeBytes?: number;
}

export interface PoolCartridge {
  label: string;
  freeBytes: number;
}

export interface PolicyState {
  /** ms since epoch */
  now: number;
  items: PolicyItem[];
  filesystems: FsState[];
  pool: PoolCartridge[];
  /** Cartridges outside the library: nothing is recalled from or written to them. */
  offline?: string[];
  /** Items an unfinished job already archives or recalls: no rule plans them again. */
  pending?: string[];
  /**
   * Of `pending`, the items a recall job brings back: once it ends each weighs its whole size on
   * disk. One the catalog already shows on disk (the job committed it while the state was read)
   * weighs it already; without this it counted as an archive would.
   */
  recalling?: string[];
  /**
   * Cartridges in a drive now (the tape library's changer inventory, which the recall job checks
   * too): a pass's container-plays recalls read only from these and from the cartridges the pass
   * mounts for its other actions. Unknown = none.
   */
  loaded?: string[];
  /**
   * Key of the file system holding the head stubs (<data_dir>/stubs). Under a percent watermark a
   * stub weighs on that file system, not on its media directory's; unknown = the same.
   */
  stubFs?: string;
  /** Tape timing for the estimate: seconds per mount (robot + load + average locate) and bytes/s. */
  mountSeconds: number;
  rate: number;
}

export type PolicyRules = Pick<PolicyConfig, 'highWatermark' | 'lowWatermark' | 'archiveIdle' | 'minArchiveSize' | 'keepOnDisk' | 'promotePlays' | 'promoteWindow'> & Partial<Pick<PolicyConfig, 'promoteContainerPlays' | 'promoteVisitGap' | 'premigrate'>>;

export type ActionReason = 'idle' | 'watermark' | 'make-room' | 'promotion' | 'container-plays' | 'premigrate';

/**
 * A narrower pass (the engine's immediate container promotion after a play): only the
 * container-plays recalls of one container, and the make-room archives they need among items
 * that already have a tape copy (tier both: archiving one cuts its stub and mounts nothing); no
 * other rule. What does not fit so waits for the next full pass.
 */
export interface PlanScope {
  container: string;
}

export interface PlanAction {
  id: string;
  path: string;
  title: string;
  action: 'archive' | 'recall';
  reason: ActionReason;
  /** Human-readable why, with the figures. */
  detail: string;
  size: number;
  /** Bytes of disk freed (archive, negative for a recall). */
  diskDelta: number;
  idleDays: number | null;
  playsInWindow: number;
  lastPlayed: string | null;
  /** Usage scope ("catalog" or the file system's first media directory) and its usage before/after this action. */
  scope: string | null;
  usageBefore: number | null;
  usageAfter: number | null;
  /** Recall: cartridge read; archive: cartridge predicted to be written. */
  cartridge: string | null;
  /** Collocation group (container ID). */
  group: string;
  /** container-plays: plays within promote_window of the container's items with a tape copy. */
  containerPlays?: number;
  /**
   * A recall that fits under the high mark and in the free space only once the archives planned
   * before it (make-room) are done: its job runs after theirs. Without it the recall fits as the
   * disk is now (with the recalls before it that fit too), so it need not wait for any archive.
   */
  afterRoom?: true;
  /**
   * premigrate: an archive that keeps the disk copy (the item becomes tier both and weighs what
   * it did): a later make-room frees its bytes by a stub cut, with no mount.
   */
  keepDisk?: true;
}

export interface UsageReport {
  scope: string;
  kind: 'bytes' | 'percent';
  /** bytes, or percent of the file system */
  before: number;
  after: number;
  high: number;
  low: number;
  /** bytes of the file system (percent scopes) */
  totalBytes?: number;
  usedBytes: number;
}

export interface PolicyPlan {
  at: string;
  actions: PlanAction[];
  /**
   * Recalls left out, and why: the high watermark or the free space did not allow them, their
   * cartridge is offline, or (container-plays at a pass) their cartridge is neither in a drive nor
   * mounted by the pass for anything else, so they wait for the container's next play.
   */
  skipped: {
    id: string;
    path: string;
    action: 'recall';
    reason: string;
    /** A container-plays recall left out because its cartridge is not loaded: the engine recalls it when that cartridge is loaded. */
    waitsFor?: { cartridge: string; container: string };
  }[];
  usage: UsageReport[];
  /** Eligible archive candidates not chosen (for the status page). */
  candidates: number;
  /** Cartridges the pass reads (recalls) or writes (archives of items without a tape copy). */
  cartridges: string[];
  /** Of those, the ones not in a drive now (+1 when an archive needs a cartridge labelled first). */
  mounts: number;
  archiveBytes: number;
  recallBytes: number;
  /** Modelled seconds (at real tape timing). */
  estimateSeconds: number;
}

const DAY = 86400_000;
/** The history container visits are counted over, in promote_windows (promote_visit_gap). */
export const VISIT_HISTORY_WINDOWS = 4;
/** promote_visit_gap when the rules leave it out (seconds). */
const DEFAULT_VISIT_GAP = 4 * 3600;

/**
 * Visits of each container within the `historyMs` before `now`: its plays (of `items`) in time
 * order, a play less than `gapMs` after the one before it belonging to that one's visit (a viewing
 * session: three episodes back to back are one visit, three evenings three).
 */
export function containerVisits(items: Iterable<PolicyItem>, now: number, historyMs: number, gapMs: number): Map<string, number> {
  const times = new Map<string, number[]>();
  for (const i of items) {
    for (const t of i.recent) {
      if (t <= now - historyMs || t > now) continue;
      const ts = times.get(i.parentId);
      if (ts) ts.push(t);
      else times.set(i.parentId, [t]);
    }
  }
  const out = new Map<string, number>();
  for (const [c, ts] of times) {
    ts.sort((a, b) => a - b);
    let n = 0;
    let prev = -Infinity;
    for (const t of ts) {
      if (t - prev >= gapMs || gapMs <= 0) n++;
      prev = t;
    }
    out.set(c, n);
  }
  return out;
}

export const coldness = (i: PolicyItem) => i.lastPlayed ?? i.added ?? i.changed ?? 0;
const lastActivity = (i: PolicyItem) => Math.max(i.lastPlayed ?? 0, i.changed ?? 0, i.added ?? 0);

/** Natural order ("track 2" before "track 10"). */
const natural = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true, sensitivity: 'base' });

/** Play order inside a container: disc, track, then natural file name. */
export function playOrder(a: PolicyItem, b: PolicyItem): number {
  const big = Number.MAX_SAFE_INTEGER;
  return (a.discNumber ?? 1) - (b.discNumber ?? 1) || (a.trackNumber ?? big) - (b.trackNumber ?? big) || natural(a.path, b.path) || a.id.localeCompare(b.id);
}

interface Scope {
  name: string;
  mark: 'bytes' | 'percent';
  total: number;
  used: number;
  high: number;
  low: number;
  before: number;
}

function scopes(state: PolicyState, high: Watermark, low: Watermark): Map<string, Scope> {
  const out = new Map<string, Scope>();
  if (high.kind === 'bytes') {
    const used = state.items.reduce((n, i) => n + i.diskBytes, 0);
    out.set('catalog', { name: 'catalog', mark: 'bytes', total: 0, used, before: used, high: high.bytes, low: (low as { bytes: number }).bytes });
  } else {
    for (const fs of state.filesystems) {
      out.set(fs.key, {
        name: fs.dirs[0] ?? fs.key,
        mark: 'percent',
        total: fs.sizeBytes,
        used: fs.usedBytes,
        before: fs.usedBytes,
        high: (fs.sizeBytes * high.percent) / 100,
        low: (fs.sizeBytes * (low as { percent: number }).percent) / 100,
      });
    }
  }
  return out;
}

export function planPass(state: PolicyState, rules: PolicyRules, only?: PlanScope): PolicyPlan {
  const now = state.now;
  const keep = rules.keepOnDisk.map((g) => globToRegExp(g)).filter((r): r is RegExp => !!r);
  const inWindow = (i: PolicyItem) => i.recent.filter((t) => t > now - rules.promoteWindow * 1000 && t <= now).length;
  const pending = new Set(state.pending ?? []);
  const eligible = (i: PolicyItem) => !pending.has(i.id) && (i.tier === 'disk' || i.tier === 'both') && i.size >= rules.minArchiveSize && !keep.some((re) => re.test((i.relPath ?? i.path).split('\\').join('/')));
  const high = rules.highWatermark;
  const low = rules.lowWatermark ?? high;
  const sc = high && low ? scopes(state, high, low) : new Map<string, Scope>();
  const scopeOf = (i: PolicyItem) => (high?.kind === 'bytes' ? sc.get('catalog') : i.fs !== undefined ? sc.get(i.fs) : undefined);
  // What an item weighs on its scope: a SIZE mark counts stubs; a percent mark counts them only
  // when the stubs live on the item's own file system.
  const stubHere = (i: PolicyItem) => high?.kind !== 'percent' || state.stubFs === undefined || state.stubFs === i.fs;
  const weight = (i: PolicyItem) => (i.tier === 'tape' && !stubHere(i) ? 0 : i.diskBytes);
  const kept = (i: PolicyItem) => (stubHere(i) ? i.stubBytes : 0);
  /** Disk bytes a stub cut of `i` would free (none when its stub would weigh as much). */
  const freed = (i: PolicyItem) => (weight(i) > kept(i) ? weight(i) - kept(i) : 0);
  // items an unfinished job recalls (or archives) weigh on their scope as they will once it ends:
  // two containers promoted one after the other never together push usage over the high mark
  const recalling = new Set(state.recalling ?? []);
  for (const i of state.items) {
    if (!pending.has(i.id)) continue;
    const s = scopeOf(i);
    if (s) s.used += i.tier === 'tape' ? i.size - weight(i) : recalling.has(i.id) ? 0 : kept(i) - weight(i);
  }
  // where each scope starts once those jobs end: the actions' usage figures run on from it
  const startUsed = new Map([...sc.values()].map((s) => [s, s.used]));
  // container promotion: plays within the window of each container's items with a tape copy
  const containerRule = (rules.promoteContainerPlays ?? 0) > 0 && !!high;
  const containerPlays = new Map<string, { plays: number; last: number }>();
  if (containerRule) {
    for (const i of state.items) {
      if (i.tier !== 'tape' && i.tier !== 'both') continue;
      const n = inWindow(i);
      if (!n) continue;
      const c = containerPlays.get(i.parentId) ?? { plays: 0, last: 0 };
      c.plays += n;
      c.last = Math.max(c.last, i.lastPlayed ?? 0);
      containerPlays.set(i.parentId, c);
    }
    for (const [k, c] of containerPlays) if (c.plays < rules.promoteContainerPlays!) containerPlays.delete(k);
  }
  // visits of the containers with a tape copy over VISIT_HISTORY_WINDOWS promote_windows (make-room spares the more visited)
  const historyMs = VISIT_HISTORY_WINDOWS * rules.promoteWindow * 1000;
  const visits = containerRule ? containerVisits(state.items.filter((i) => i.tier === 'tape' || i.tier === 'both'), now, historyMs, (rules.promoteVisitGap ?? DEFAULT_VISIT_GAP) * 1000) : new Map<string, number>();
  /** Coldness, with the items of a hot container as warm as its last play. */
  const heat = (i: PolicyItem) => Math.max(coldness(i), containerPlays.get(i.parentId)?.last ?? 0);
  const chosen = new Map<string, PlanAction>();
  const order: PlanAction[] = [];
  const byIdAll = new Map(state.items.map((i) => [i.id, i]));
  const writes = cartridgeWriter(state, byIdAll);
  const fsName = (key: string | undefined) => state.filesystems.find((f) => f.key === key)?.dirs[0] ?? key ?? '?';

  const act = (i: PolicyItem, action: 'archive' | 'recall', reason: ActionReason, detail: string): PlanAction => {
    const s = scopeOf(i);
    const delta = reason === 'premigrate' ? 0 : action === 'archive' ? weight(i) - kept(i) : -(i.size - weight(i));
    const before = s ? s.used : null;
    if (s) s.used -= delta;
    const a: PlanAction = {
      id: i.id,
      path: i.path,
      title: i.title,
      action,
      reason,
      detail,
      size: i.size,
      diskDelta: delta,
      idleDays: Math.floor((now - lastActivity(i)) / DAY),
      playsInWindow: inWindow(i),
      lastPlayed: i.lastPlayed !== undefined ? new Date(i.lastPlayed).toISOString() : null,
      scope: s?.name ?? null,
      usageBefore: s && before !== null ? report(s, before) : null,
      usageAfter: s ? report(s, s.used) : null,
      cartridge: action === 'recall' ? i.cartridge ?? null : null,
      group: i.parentId,
    };
    if (reason === 'premigrate') a.keepDisk = true;
    chosen.set(i.id, a);
    order.push(a);
    return a;
  };
  const undo = (a: PlanAction, i: PolicyItem) => {
    const s = scopeOf(i);
    if (s) s.used += a.diskDelta;
    chosen.delete(a.id);
    order.splice(order.indexOf(a), 1);
  };

  // 1. idle
  if (rules.archiveIdle > 0 && !only) {
    for (const i of state.items) {
      if (!eligible(i)) continue;
      const idle = now - lastActivity(i);
      if (idle >= rules.archiveIdle * 1000) act(i, 'archive', 'idle', `not played or changed for ${fmtAge(idle)} (archive_idle ${fmtDuration(rules.archiveIdle)})`);
    }
  }
  // 2. watermark: coldest first, then largest
  const coldFirst = state.items.filter(eligible).sort((a, b) => heat(a) - heat(b) || b.size - a.size || a.id.localeCompare(b.id));
  for (const s of sc.values()) {
    if (s.used <= s.high || only) continue;
    for (const i of coldFirst) {
      if (s.used <= s.low) break;
      if (chosen.has(i.id) || scopeOf(i) !== s || weight(i) <= kept(i)) continue;
      act(i, 'archive', 'watermark', `coldest eligible (last ${heat(i) > coldness(i) ? 'played in its container' : i.lastPlayed !== undefined ? 'played' : 'added'} ${new Date(heat(i)).toISOString().slice(0, 10)}) while disk usage is above the low watermark (${s.mark === 'percent' ? `${report(s, s.low)}%` : `${Math.round(s.low)} bytes`})`);
    }
  }
  // 3. promotion
  const skipped: PolicyPlan['skipped'] = [];
  // Free space per file system as the pass goes: archives (they run first) free their disk bytes
  // there, recalls take their whole size (the recall job's own check, before it mounts: the head
  // stub goes only once the file is in place); a promotion that does not fit is skipped.
  const free = new Map(state.filesystems.filter((f) => f.freeBytes !== undefined).map((f) => [f.key, f.freeBytes!]));
  const freeAfterArchives = () => {
    const m = new Map(free);
    for (const a of order) {
      const i = byIdAll.get(a.id)!;
      if (a.action === 'archive' && i.fs !== undefined && m.has(i.fs)) m.set(i.fs, m.get(i.fs)! + i.diskBytes - (state.stubFs === undefined || state.stubFs === i.fs ? i.stubBytes : 0));
      if (a.action === 'recall' && i.fs !== undefined && m.has(i.fs)) m.set(i.fs, m.get(i.fs)! - i.size);
    }
    return m;
  };
  const offline = new Set(state.offline ?? []);
  /**
   * Recalls `i` (reason and figures in `why`) unless that pushes usage over the high mark (then
   * colder items `roomFrom` accepts make room first, colder meaning colder than `warmth`) or does not
   * fit in its file system's free space: then it is listed as skipped and nothing changes.
   */
  const promote = (i: PolicyItem, reason: 'promotion' | 'container-plays', why: string, detail: string, warmth: number, roomFrom: (c: PolicyItem) => boolean, refuse?: (made: PlanAction[]) => string | undefined): PlanAction | undefined => {
    if (i.cartridge && offline.has(i.cartridge)) {
      skipped.push({ id: i.id, path: i.path, action: 'recall', reason: `${why}, but its cartridge ${i.cartridge} is offline (import it with \`tapedeck tape import ${i.cartridge}\`)` });
      return undefined;
    }
    const s = scopeOf(i);
    const need = i.size - weight(i);
    const made: PlanAction[] = [];
    // a container promotion never evicts a container visited more often over the visit history,
    // nor one visited as often and played more often within the window (it would come back through
    // a play mount and evict this one in turn). A container watched on several evenings is thus
    // not evicted for one binged in a single session: plays alone (before the visits) counted a
    // one-off session of three episodes as hot as a season watched every few days, and such
    // promotions evicted each other (bench:policy: 137 promotions of 49 containers in 67 days).
    // Ties evict: sparing them too (1ae4d66) kept more containers on tape in bench:policy
    // (promotions 855 -> 711, sessions from tape 128 -> 141, mounts 0.509x -> 0.56x of the baseline)
    const mine = reason === 'container-plays' ? containerPlays.get(i.parentId)?.plays : undefined;
    const myVisits = visits.get(i.parentId) ?? 0;
    const asHot = (c: PolicyItem) => {
      if (mine === undefined) return false;
      const v = visits.get(c.parentId) ?? 0;
      return v > myVisits || (v === myVisits && (containerPlays.get(c.parentId)?.plays ?? 0) > mine);
    };
    let spared = 0;
    if (s && s.used + need > s.high) {
      for (const c of coldFirst) {
        if (s.used + need <= s.high) break;
        if (!roomFrom(c) || chosen.has(c.id) || scopeOf(c) !== s || heat(c) >= warmth || c.parentId === (reason === 'container-plays' ? i.parentId : undefined) || weight(c) <= kept(c)) continue;
        if (asHot(c)) {
          spared++;
          continue;
        }
        made.push(act(c, 'archive', 'make-room', `colder than ${reason === 'container-plays' ? `the container of ${i.title}` : i.title}, archived to make room for its ${reason === 'container-plays' ? `container promotion under the high watermark (visits within ${fmtDuration(historyMs / 1000)}: ${visits.get(c.parentId) ?? 0}, the promoted container's ${myVisits})` : 'promotion under the high watermark'}`));
      }
      if (s.used + need > s.high) {
        for (const m of made.reverse()) undo(m, byIdAll.get(m.id)!);
        const reasonText = spared
          ? `${why}, but recalling it would add ${need} bytes to disk and push disk usage over the high watermark (${formatWatermark(high!)}), and making room would archive items of a container visited more often within ${fmtDuration(historyMs / 1000)} (its container: ${myVisits} visit(s)), or as often and played more often within ${fmtDuration(rules.promoteWindow)} (${spared} item(s) spared): not promoted rather than evicting a hotter container`
          : `${why}, but recalling it would add ${need} bytes to disk (${i.size} minus the ${weight(i)} its head stub already holds) and push disk usage over the high watermark (${formatWatermark(high!)}) and no colder item ${only ? 'with a tape copy (archived now without a mount) ' : ''}can make room${only ? '; the next pass may' : ''}`;
        skipped.push({ id: i.id, path: i.path, action: 'recall', reason: reasonText });
        return undefined;
      }
    }
    const no = refuse?.(made);
    if (no) {
      for (const m of made.reverse()) undo(m, byIdAll.get(m.id)!);
      skipped.push({ id: i.id, path: i.path, action: 'recall', reason: `${why}, but ${no}` });
      return undefined;
    }
    const room = i.fs !== undefined ? freeAfterArchives().get(i.fs) : undefined;
    if (room !== undefined && i.size > room) {
      for (const m of made.reverse()) undo(m, byIdAll.get(m.id)!);
      skipped.push({ id: i.id, path: i.path, action: 'recall', reason: `${why}, but recalling it needs ${i.size} bytes of free space and its file system (${fsName(i.fs)}) has ${Math.max(0, room)}` });
      return undefined;
    }
    const roomBefore = made.length > 0 || order.some((a) => a.action === 'archive');
    const a = act(i, 'recall', reason, detail);
    if (roomBefore) a.afterRoom = true;
    return a;
  };
  if (rules.promotePlays > 0 && !only) {
    const hot = state.items
      .filter((i) => i.tier === 'tape' && !chosen.has(i.id) && !pending.has(i.id) && inWindow(i) >= rules.promotePlays)
      .sort((a, b) => inWindow(b) - inWindow(a) || (b.lastPlayed ?? 0) - (a.lastPlayed ?? 0) || a.id.localeCompare(b.id));
    for (const i of hot) {
      const why = `played ${inWindow(i)} times within ${fmtDuration(rules.promoteWindow)}`;
      promote(i, 'promotion', why, `${why} (promote_plays ${rules.promotePlays})`, heat(i), () => true);
    }
  }
  // a one-container plan (right after a play) makes room only with items that have a verified tape
  // copy (tier both): archiving those cuts a stub and mounts nothing
  const makeRoomNow = (c: PolicyItem) => !only || c.tier === 'both';
  // 4. container promotion: hottest container first (most plays, then most recent), items in play order
  if (containerRule) {
    // A pass never mounts a cartridge only for these recalls (nor writes one only to make room for
    // them): they read from cartridges in a drive now or mounted by the pass anyway (its archive
    // writes, its promotion recalls); the others wait for the container's next play, which loads
    // the cartridge and recalls them right away (the engine's one-container plan). That plan is
    // not held to this: its job itself reads only from a cartridge still in a drive.
    const anyway = new Set<string | null>(state.loaded ?? []);
    if (!only) {
      for (const a of order) if (a.action === 'recall' && a.cartridge) anyway.add(a.cartridge);
      for (const l of writes(collocated(order, byIdAll)).values()) anyway.add(l);
    }
    const newMounts = (made: PlanAction[]): string | undefined => {
      if (!made.some((m) => byIdAll.get(m.id)!.tier === 'disk')) return undefined;
      const extra = [...new Set(writes(collocated(order, byIdAll)).values())].filter((l) => !anyway.has(l));
      return extra.length ? `the colder items that would make room for it have no tape copy, and writing them would mount ${extra.map((l) => l ?? 'a cartridge still to be labelled').join(', ')} for nothing else (it waits for the container's next play or a pass that writes anyway)` : undefined;
    };
    const groups = [...containerPlays].filter(([k]) => !only || k === only.container).sort((a, b) => b[1].plays - a[1].plays || b[1].last - a[1].last || a[0].localeCompare(b[0]));
    const rest = new Map<string, PolicyItem[]>();
    for (const i of state.items) if (i.tier === 'tape' && containerPlays.has(i.parentId) && !chosen.has(i.id) && !pending.has(i.id)) rest.set(i.parentId, [...(rest.get(i.parentId) ?? []), i]);
    for (const [container, c] of groups) {
      for (const i of (rest.get(container) ?? []).sort(playOrder)) {
        const why = `its container was played ${c.plays} times within ${fmtDuration(rules.promoteWindow)}`;
        if (!only && i.cartridge && !offline.has(i.cartridge) && !anyway.has(i.cartridge)) {
          skipped.push({ id: i.id, path: i.path, action: 'recall', reason: `${why}, but its cartridge ${i.cartridge} is not in a drive and this pass mounts it for nothing else: waits for its cartridge to be loaded by a play (or anything else that loads it) and is recalled then`, waitsFor: { cartridge: i.cartridge, container } });
          continue;
        }
        const a = promote(i, 'container-plays', why, `${why} (promote_container_plays ${rules.promoteContainerPlays})`, c.last, makeRoomNow, only ? undefined : newMounts);
        if (a) a.containerPlays = c.plays;
      }
    }
  }

  // 5. premigration (with container promotion on): the make-room of a container promotion right
  // after a play (PlanScope) can only cut stubs of items with a verified tape copy (tier both), and
  // a full pass writes disk-only items only to a cartridge it mounts anyway; with none left, a hot
  // container stays on tape while cold disk-only items (e.g. the episodes of seasons nobody watches
  // that the first pass left on disk) hold the disk. So when the bytes a stub cut could free in a
  // scope (eligible tier both items, colder than nothing: all of them) fall under the width of the
  // watermark band (high - low), the pass copies the coldest eligible disk-only items to tape,
  // keeping their disk copies (an archive job with keepDisk), until twice that width is releasable:
  // one write mount now and then instead of a hot container left on tape (bench:policy --model).
  if (containerRule && rules.premigrate && !only) {
    for (const s of sc.values()) {
      const band = s.high - s.low;
      if (band <= 0) continue;
      let releasable = 0;
      for (const i of coldFirst) if (i.tier === 'both' && !chosen.has(i.id) && scopeOf(i) === s) releasable += freed(i);
      if (releasable >= band) continue;
      for (const i of coldFirst) {
        if (releasable >= 2 * band) break;
        if (i.tier !== 'disk' || chosen.has(i.id) || scopeOf(i) !== s || freed(i) <= 0) continue;
        act(i, 'archive', 'premigrate', `coldest disk-only item (last ${heat(i) > coldness(i) ? 'played in its container' : i.lastPlayed !== undefined ? 'played' : 'added'} ${new Date(heat(i)).toISOString().slice(0, 10)}) copied to tape, its disk copy kept, while the bytes a stub cut could free without a mount are under the watermark band (${s.mark === 'percent' ? `${report(s, band)}%` : `${Math.round(band)} bytes`})`);
        releasable += freed(i);
      }
    }
  }

  // Collocation: archives grouped by container in play order (groups in the order first chosen), then recalls by cartridge and block.
  const byId = byIdAll;
  const archives = collocated(order, byId);
  const recalls = order.filter((a) => a.action === 'recall').sort((a, b) => (a.cartridge ?? '').localeCompare(b.cartridge ?? '') || (byId.get(a.id)!.block ?? 0) - (byId.get(b.id)!.block ?? 0));
  // each action's usage before/after in the order the jobs run (collocation reordered the archives
  // chosen coldest first), so the figures a plan prints run down (archives) and up (recalls) in turn
  const running = new Map(startUsed);
  for (const a of [...archives, ...recalls]) {
    const s = scopeOf(byId.get(a.id)!);
    if (!s) continue;
    const before = running.get(s)!;
    running.set(s, before - a.diskDelta);
    a.usageBefore = report(s, before);
    a.usageAfter = report(s, before - a.diskDelta);
  }
  const archiveBytes = archives.reduce((n, a) => n + a.size, 0);
  const recallBytes = recalls.reduce((n, a) => n + a.size, 0);
  const written = writes(archives);
  // an item with a verified tape copy is not written again (the archive job reuses the copy): its own cartridge
  for (const a of archives) a.cartridge = written.has(a.id) ? written.get(a.id)! : byId.get(a.id)!.cartridge ?? null;
  const cartridges = [...new Set([...archives.filter((a) => written.has(a.id)), ...recalls].map((a) => a.cartridge).filter((l): l is string => !!l))];
  const inDrive = new Set(state.loaded ?? []);
  // an archive without a pool cartridge that has room needs one labelled first (the job says NO_ROOM)
  const mounts = cartridges.filter((l) => !inDrive.has(l)).length + ([...written.values()].some((l) => !l) ? 1 : 0);
  const usage = [...sc.values()].map((s) => ({ scope: s.name, kind: s.mark, before: report(s, s.before), after: report(s, s.used), high: report(s, s.high), low: report(s, s.low), usedBytes: s.used, ...(s.mark === 'percent' ? { totalBytes: s.total } : {}) }));
  const chosenIds = new Set(chosen.keys());
  return {
    at: new Date(now).toISOString(),
    actions: [...archives, ...recalls],
    skipped,
    usage,
    candidates: coldFirst.filter((i) => !chosenIds.has(i.id)).length,
    cartridges,
    mounts,
    archiveBytes,
    recallBytes,
    // archive: write + read back to verify; recall: read
    estimateSeconds: Math.round(mounts * state.mountSeconds + (2 * archiveBytes + recallBytes) / state.rate),
  };
}

/** Archive actions grouped by container (groups in the order first chosen), each in play order: one job writes a container together. */
function collocated(actions: PlanAction[], byId: Map<string, PolicyItem>): PlanAction[] {
  const archives = actions.filter((a) => a.action === 'archive');
  const groupRank = new Map<string, number>();
  archives.forEach((a) => groupRank.has(a.group) || groupRank.set(a.group, groupRank.size));
  return archives.sort((a, b) => groupRank.get(a.group)! - groupRank.get(b.group)! || playOrder(byId.get(a.id)!, byId.get(b.id)!));
}

/**
 * The cartridge each archive (in collocation order) would be written to, as archive-job.ts chooses
 * them for a collocated job: a container goes whole to the cartridge already holding most of its
 * items, else to the previous batch's, else to the one with most room (null: none has room, one
 * must be labelled first). Items with a tape copy (tier both) are not in it: the job reuses their
 * verified copy and writes nothing.
 */
function cartridgeWriter(state: PolicyState, byId: Map<string, PolicyItem>): (archives: PlanAction[]) => Map<string, string | null> {
  const held = new Map<string, Map<string, number>>();
  for (const i of state.items) {
    if (!i.cartridge) continue;
    const m = held.get(i.parentId) ?? new Map<string, number>();
    m.set(i.cartridge, (m.get(i.cartridge) ?? 0) + 1);
    held.set(i.parentId, m);
  }
  return (archives) => {
    const toWrite = archives.filter((a) => byId.get(a.id)?.tier === 'disk');
    const out = new Map<string, string | null>();
    const room = new Map(state.pool.filter((c) => !(state.offline ?? []).includes(c.label)).map((c) => [c.label, c.freeBytes]));
    const byRoom = () => [...room].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    let prev: string | undefined;
    for (let k = 0; k < toWrite.length; ) {
      const group = toWrite.slice(k).filter((a) => a.group === toWrite[k].group);
      const bytes = group.reduce((n, a) => n + a.size, 0);
      const fits = byRoom().filter(([, free]) => free >= bytes);
      const home = [...(held.get(toWrite[k].group) ?? [])].filter(([l]) => fits.some(([f]) => f === l)).sort((a, b) => b[1] - a[1])[0]?.[0];
      const label = home ?? fits.find(([l]) => l === prev)?.[0] ?? fits[0]?.[0] ?? byRoom()[0]?.[0] ?? null;
      for (const a of group) out.set(a.id, label);
      if (label) room.set(label, (room.get(label) ?? 0) - bytes);
      prev = label ?? undefined;
      k += group.length;
    }
    return out;
  };
}

function report(s: Scope, bytes: number): number {
  return s.mark === 'percent' ? Math.round((bytes / Math.max(1, s.total)) * 1000) / 10 : Math.round(bytes);
}

/** "95 days", "5 h", "12 min", "40 s" */
export function fmtAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s >= 86400) return `${Math.floor(s / 86400)} days`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h`;
  if (s >= 60) return `${Math.floor(s / 60)} min`;
  return `${s} s`;
}

export function fmtDuration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
