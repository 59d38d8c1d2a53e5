// Policy passes of the benchmark, run once a day in the policy window (03:00).
//
// baseline: what a plain HSM does: above the high watermark, archive the least
// recently used items (never played first, then the largest) one by one until
// the low mark; fixed 4 MiB stubs; no promotion, no pre-staging.
//
// tapedeck: the real planner (src/policy/plan.ts) with the watermarks, promotion
// (promote_plays within promote_window, never over the high mark), container promotion at the
// daily pass and right after the play that makes a container hot (promote_container_plays,
// tapedeckOnPlay: the engine's one-container plan, reading only from a cartridge in a drive; the
// engine's retry when a waiting container's cartridge is loaded again is not modelled), the default
// min_archive_size (16M) and collocation; stubs are head_stub_seconds = auto;
// pre-staging is on (the real Prestager, see sim.ts).

import { planPass, type PlanScope, type PolicyItem, type PolicyState } from '../../src/policy/plan.js';
import type { TierModel } from './sim.js';

export interface Marks {
  high: number;
  low: number;
}

export async function baselinePass(m: TierModel, marks: Marks): Promise<void> {
  let disk = m.diskBytes();
  if (disk <= marks.high) return;
  const lib = m.lib;
  const cands = lib.items.filter((it) => m.state[it.n]!.disk).sort((a, b) => (m.state[a.n]!.lastPlayed ?? -1) - (m.state[b.n]!.lastPlayed ?? -1) || b.size - a.size || a.n - b.n);
  const out: number[] = [];
  for (const it of cands) {
    if (disk <= marks.low) break;
    out.push(it.n);
    disk -= it.size - Math.min(it.size, m.o.stubBytes(it));
  }
  await m.archive(out);
}

export interface PromoteRule {
  plays: number;
  windowS: number;
  /** promote_container_plays (0 = off). */
  containerPlays?: number;
  /** promote_visit_gap, seconds (undefined: the planner's default). */
  visitGapS?: number;
  /** premigrate (keepDisk archives keeping stub-cut room). */
  premigrate?: boolean;
}

/**
 * One pass of Tapedeck's real planner (src/policy/plan.ts, planPass: the code behind
 * `tapedeck policy plan/run`) over the model's state; its actions are applied in the
 * order it gives (collocated, play order).
 */
export async function tapedeckPass(m: TierModel, marks: Marks, promote: PromoteRule, only?: PlanScope): Promise<void> {
  const lib = m.lib;
  const label = (c: number) => `TD${String(c + 1).padStart(4, '0')}L9`;
  const items: PolicyItem[] = lib.items.map((it) => {
    const s = m.state[it.n]!;
    const c = lib.containers[it.container]!;
    return {
      id: m.ids[it.n]!,
      title: it.name,
      path: `/media/${c.dir}/${it.name}`,
      relPath: `${c.dir}/${it.name}`,
      parentId: `c${it.container}`,
      size: it.size,
      tier: s.disk ? (s.tape ? 'both' : 'disk') : 'tape',
      diskBytes: s.disk ? it.size : s.stub,
      stubBytes: Math.min(it.size, m.o.stubBytes(it)),
      added: 0,
      ...(s.lastPlayed !== undefined ? { lastPlayed: s.lastPlayed * 1000 } : {}),
      plays: s.plays.length,
      recent: s.plays.map((t) => t * 1000),
      ...(s.tape ? { cartridge: label(s.tape.cart) } : {}),
      trackNumber: it.k + 1,
    };
  });
  const p = m.o.preset;
  const state: PolicyState = {
    now: m.now * 1000,
    items,
    filesystems: [],
    loaded: m.loadedCartridges().map(label),
    pool: [...m.carts.map((c, i) => ({ label: label(i), freeBytes: m.o.cartridgeBytes - c.used })), { label: label(m.carts.length), freeBytes: m.o.cartridgeBytes }],
    mountSeconds: p.robotMove + p.load + p.averageLocate,
    rate: p.rate,
  };
  const plan = planPass(state, {
    highWatermark: { kind: 'bytes', bytes: marks.high },
    lowWatermark: { kind: 'bytes', bytes: marks.low },
    archiveIdle: 0,
    minArchiveSize: 16 * 1024 ** 2,
    keepOnDisk: [],
    promotePlays: promote.plays,
    promoteContainerPlays: promote.containerPlays ?? 0,
    promoteWindow: promote.windowS,
    ...(promote.visitGapS !== undefined ? { promoteVisitGap: promote.visitGapS } : {}),
    premigrate: promote.premigrate ?? false,
  }, only);
  const byId = new Map(m.ids.map((id, n) => [id, n]));
  let run: number[] = [];
  let kind: 'archive' | 'recall' | undefined;
  // premigration: archives that keep the disk copy
  const keep = new Set(plan.actions.filter((a) => a.keepDisk).map((a) => byId.get(a.id)!));
  const flush = async () => {
    if (kind === 'archive') await m.archive(run, keep);
    else if (kind === 'recall') await m.recall(run);
    run = [];
  };
  // a play's immediate container promotion (the engine's onPlay): its recall job reads only from a
  // cartridge still in a drive (loadedOnly), its make-room archives cut stubs of tier both items
  const loaded = new Set(m.loadedCartridges().map(label));
  for (const a of plan.actions) {
    if (only && a.action === 'recall' && !(a.cartridge && loaded.has(a.cartridge))) continue;
    if (a.action !== kind) {
      await flush();
      kind = a.action;
    }
    run.push(byId.get(a.id)!);
  }
  await flush();
}

/**
 * The engine's onPlay: a play of an item with a tape copy whose container's items with one were
 * played promote_container_plays times within promote_window plans that container's promotion
 * (PlanScope) and runs it at once, from the cartridge the play loaded. Containers waiting for
 * their cartridge's next load (onLoaded) are not modelled: they wait for their next play.
 */
export async function tapedeckOnPlay(m: TierModel, marks: Marks, promote: PromoteRule, item: number): Promise<void> {
  const rule = promote.containerPlays ?? 0;
  if (!rule || !m.state[item]!.tape) return;
  const c = m.lib.containers[m.lib.items[item]!.container]!;
  const since = m.now - promote.windowS;
  let plays = 0;
  let onTape = false;
  for (const n of c.items) {
    const s = m.state[n]!;
    if (!s.tape) continue;
    if (!s.disk) onTape = true;
    plays += s.plays.filter((t) => t > since && t <= m.now).length;
  }
  if (!onTape || plays < rule) return;
  await tapedeckPass(m, marks, promote, { container: `c${c.n}` });
}
