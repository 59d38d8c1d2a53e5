// PolicyEngine: runs the policy brain (plan.ts) against the live library. A pass gathers the
// state, plans, and submits the plan as the existing durable archive/recall jobs (verify
// before switch, stubs, resume after a crash: src/archive/), archives first (they make room)
// and recalls after. Automatic passes start every policy_interval inside policy_window; a
// manual pass (`tapedeck policy run`) ignores the window. The clock is injectable.
// A play of an item with a tape copy may also start a container promotion right away
// (onPlay: promote_container_plays), as a recall job at job priority that yields to playback
// and reads only from a cartridge in a drive; what does not fit waits for the next pass. A hot
// container whose tape-only items sit on a cartridge that is not in a drive waits for it: when
// any cartridge is loaded (onLoaded: the stager's mount event, for a play, a pre-stage or a job),
// the promotion of the containers waiting for it is tried again while it is in the drive.

import type { Catalog } from '../catalog/catalog.js';
import type { CatalogObject } from '../catalog/types.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { ArchiveService } from '../archive/service.js';
import { ArchiveError } from '../archive/errors.js';
import { isTerminal, type ItemPhase, type JobOptions, type JobRecord } from '../archive/jobs.js';
import { parseRefId } from '../catalog/layout.js';
import { tierOf } from '../catalog/tier.js';
import { playsWithin, type AccessRecord } from './access.js';
import { planPass, type PlanScope, type PolicyPlan, type UsageReport } from './plan.js';
import { localMinute, nextPassTime } from './schedule.js';
import { gatherState, realFsProbe, type FsProbe } from './state.js';
import { formatWindow, inWindow } from './units.js';

const LAST_PASS = 'policyLastPass';
const PROMOTIONS = 'policyPromotions';
const CONTAINER_PROMOTIONS = 'policyContainerPromotions';
/** Grace period after the server starts before the first automatic pass (the first scan runs). */
export const FIRST_PASS_DELAY_MS = 60_000;
const STATUS_PLAN_MS = 15_000;
/**
 * Shortest time from one pass to an automatic pass the high watermark starts (the jobs of the one
 * before take effect meanwhile), and between two looks at a SIZE mark (each reads the catalog).
 */
export const HIGH_MARK_GAP_MS = 5 * 60_000;
/** Hot containers remembered per cartridge for onLoaded (the oldest are forgotten past it; their next play tries again). */
const MAX_WAITING = 256;
/** Phases of a job's item that the catalog already shows (nothing left to move). */
const SETTLED = new Set<ItemPhase>(['committed', 'done', 'skipped', 'failed']);

export interface PassRecord {
  /** ISO time the pass started */
  at: string;
  trigger: 'auto' | 'manual';
  archive: number;
  recall: number;
  archiveBytes: number;
  recallBytes: number;
  jobs: string[];
}

export interface PassResult extends PassRecord {
  /** 'nothing to do', 'running', 'paused' (its jobs wait for policy_window), 'done' or 'failed' */
  result: 'nothing to do' | 'running' | 'paused' | 'done' | 'failed';
  reason?: string;
}

export interface PolicyStatus {
  /** ms of the next automatic pass (undefined: only manual passes) */
  nextPass?: number;
  window?: string;
  inWindow: boolean;
  interval: number;
  usage: UsageReport[];
  /** Planned actions of a pass now, and eligible archive candidates not chosen. */
  planned: { archive: number; recall: number };
  candidates: number;
  lastPass?: PassResult;
  /** Items recalled by promotion (completed, either rule), since the catalog was created. */
  promotions: number;
  /** Of those, items recalled by container promotion (promote_container_plays). */
  containerPromotions: number;
  passes: number;
}

export interface PolicyEngineOptions {
  catalog: Catalog;
  config: Config;
  /** Needed to run passes (not to plan). */
  archive?: ArchiveService;
  readAccess: (ids: string[]) => Promise<Map<string, AccessRecord>>;
  log: Logger;
  now?: () => number;
  minuteOf?: (ms: number) => number;
  fsProbe?: FsProbe;
  mediaDirs?: string[];
  /**
   * True while a scan runs (server): an automatic pass due meanwhile waits for its end (a later
   * tick): its plan would read every item of a catalog the scan is still writing (a first scan
   * of a large library outlasts FIRST_PASS_DELAY_MS on a slow NAS).
   */
  busy?: () => boolean;
}

export class PolicyEngine {
  private readonly now: () => number;
  private readonly minuteOf: (ms: number) => number;
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<unknown> = Promise.resolve();
  private readonly startedAt: number;
  private lastPassAt: number | undefined;
  private passes = 0;
  private promotionWrites: Promise<unknown> = Promise.resolve();
  /** The planned figures of status(), recomputed at most every STATUS_PLAN_MS (the status page polls every few seconds). */
  private statusPlan: { at: number; plan: Promise<PolicyPlan>; settled: boolean } | undefined;
  private readonly onJob = (j: JobRecord) => {
    if (j.kind !== 'recall' || j.opts.origin !== 'policy' || !isTerminal(j.state)) return;
    const n = Number(j.result?.recalled ?? 0);
    const add = async (key: string) => this.opts.catalog.setMeta(key, String(Number((await this.opts.catalog.getMeta(key)) ?? 0) + n));
    if (n > 0)
      this.promotionWrites = this.promotionWrites
        .then(async () => {
          await add(PROMOTIONS);
          if (j.opts.rule === 'container-plays') await add(CONTAINER_PROMOTIONS);
        })
        .catch(() => undefined);
  };
  /** Containers whose immediate promotion check (onPlay, onLoaded) is under way, and the check: stop() waits for them. */
  private readonly promoting = new Map<string, Promise<JobRecord[]>>();
  /** stop() began: no promotion starts or queues a job any more. */
  private stopping = false;
  /** The last container promotion's plan and submit: the next one plans after it (see promoteContainer). */
  private promotionTurn: Promise<void> = Promise.resolve();
  /** The catalog generation and time of the last look at a SIZE high mark (overHighMark). */
  private markLook: { gen: number; at: number } | undefined;
  /** The last pass found usage over the high mark and nothing to archive: the mark starts no pass before the interval's. */
  private markSpent = false;
  /** Hot containers with tape-only items, by the cartridges those are on (onLoaded); bounded. */
  private readonly waiting = new Map<string, Set<string>>();

  constructor(private readonly opts: PolicyEngineOptions) {
    this.now = opts.now ?? Date.now;
    this.minuteOf = opts.minuteOf ?? localMinute;
    this.startedAt = this.now();
    opts.archive?.on('job', this.onJob);
    // jobs of automatic passes keep to policy_window: stopped at a safe point when it closes
    opts.archive?.setHold((j) => (j.opts.window && !this.windowOpen() ? `outside policy_window ${formatWindow(this.rules.window!)}; resumes when it opens` : undefined));
  }

  /** Whether policy_window is open now (always, without one). */
  windowOpen(): boolean {
    return inWindow(this.rules.window, this.minuteOf(this.now()));
  }

  get rules() {
    return this.opts.config.policy;
  }

  /** What a pass would do now (changes nothing); with `only`, the immediate container promotion of onPlay. */
  async plan(only?: PlanScope): Promise<PolicyPlan> {
    const { catalog, config, readAccess, fsProbe, mediaDirs } = this.opts;
    const archive = this.opts.archive;
    const offline = archive ? async () => archive.offlineCartridges() : undefined;
    // the drives' contents, from the changer inventory the pass's loadedOnly recall job checks too
    const loaded = archive ? async () => archive.loadedCartridges() : undefined;
    // the unfinished jobs' items before and after the catalog is read: an item a job commits while
    // it is read is in the first (the catalog may show it either way), one a job queued meanwhile
    // takes in the second
    const before = await this.pendingJobItems();
    const state = await gatherState({ catalog, config, readAccess, now: this.now, fsProbe, mediaDirs, offline, loaded });
    // it read every item: the catalog's table pages it mapped leave the process once nothing
    // reads (LevelStore.reopen; not awaited, the plan does not wait for quiet)
    catalog.store.reopen?.().catch((err: Error) => this.opts.log.error({ err: err.message }, 'catalog could not be opened again'));
    const pending = new Map([...before, ...(await this.pendingJobItems())]);
    if (pending.size) state.pending = [...pending.keys()];
    const recalling = [...pending].filter(([, kind]) => kind === 'recall').map(([id]) => id);
    if (recalling.length) state.recalling = recalling;
    return planPass(state, this.rules, only);
  }

  /**
   * The items every unfinished archive or recall job (a pass's, a play's, an operator's) has still
   * to move: no rule plans them again, and the plan counts them on disk as they will be once the
   * job ends. A container promotion right after a play that saw only the play jobs' items planned
   * against the disk as it was before a pass's queued recalls, and together they went over the high
   * mark (the bench's disk usage before the daily pass, 25.9 % against 25 %). Items a job has
   * committed (or skipped, or failed) are in the catalog as they are.
   */
  private async pendingJobItems(): Promise<[string, 'archive' | 'recall'][]> {
    const archive = this.opts.archive;
    if (!archive) return [];
    const out: [string, 'archive' | 'recall'][] = [];
    for (const j of await archive.list()) {
      if ((j.kind !== 'archive' && j.kind !== 'recall') || isTerminal(j.state)) continue;
      // a keepDisk archive (premigration) leaves its items on disk: they weigh as a recall's do once it ends
      const kind = j.opts.keepDisk ? 'recall' : j.kind;
      for (const i of await archive.items(j.id)) if (!SETTLED.has(i.phase)) out.push([i.id, kind]);
    }
    return out;
  }

  /** Unfinished jobs of policy passes (not those a play started). */
  private async passJobs(): Promise<JobRecord[]> {
    return (await this.opts.archive?.list())?.filter((j) => j.opts.origin === 'policy' && j.opts.trigger !== 'play' && !isTerminal(j.state)) ?? [];
  }

  /**
   * A client started playing an item (the server's stream tracker, after the access tracker
   * counted the play). When the item has a tape copy and its container's items with one were
   * played promote_container_plays times within promote_window, the container's remaining
   * tape-only items that fit under the high watermark are recalled now: one recall job at job
   * priority (it yields to playback and finds the cartridge the play loaded), kept to
   * policy_window like a pass's jobs, after an archive job for the make-room items the plan
   * needs among those with a verified tape copy (cutting their stubs mounts nothing). The rest
   * (room only a tape write could make, window closed) waits for the next pass. Cheap unless the
   * container is hot: the full plan runs only then. Answers the jobs queued (archive first).
   */
  async onPlay(objectId: string): Promise<JobRecord[]> {
    if (!this.promotes()) return [];
    const item = await this.opts.catalog.get(parseRefId(objectId)?.itemId ?? objectId).catch(() => undefined);
    if (!item?.location?.tape) return [];
    return this.promoteContainer(item.parentId);
  }

  /**
   * A cartridge was loaded into a drive (the stager's mount event: for a play, a pre-stage or a
   * job). The containers waiting for it (hot, with tape-only items on it: their promotion right
   * after a play, or a pass, found it out of the drives) get their promotion now, as onPlay does:
   * a loadedOnly recall job that reads while it is in the drive. Answers the jobs queued.
   */
  async onLoaded(label: string): Promise<JobRecord[]> {
    const containers = this.waiting.get(label);
    if (!containers || !this.promotes()) return [];
    this.waiting.delete(label);
    const jobs: JobRecord[] = [];
    for (const c of containers) jobs.push(...(await this.promoteContainer(c)));
    return jobs;
  }

  private promotes(): boolean {
    const r = this.rules;
    return !!this.opts.archive && r.promoteContainerPlays > 0 && !!r.highWatermark && this.windowOpen();
  }

  /** Remembers that a hot container has tape-only items on these cartridges (onLoaded). */
  private wait(container: string, labels: Iterable<string>): void {
    for (const l of labels) {
      const set = this.waiting.get(l) ?? new Set<string>();
      set.delete(container); // newest last: the oldest is dropped first
      set.add(container);
      if (set.size > MAX_WAITING) set.delete(set.values().next().value!);
      this.waiting.set(l, set);
    }
  }

  private promoteContainer(container: string): Promise<JobRecord[]> {
    if (this.stopping || this.promoting.has(container)) return Promise.resolve([]);
    // never rejects: it logs and answers []
    const p = this.promoteContainerNow(container).finally(() => this.promoting.delete(container));
    this.promoting.set(container, p);
    return p;
  }

  private async promoteContainerNow(container: string): Promise<JobRecord[]> {
    const r = this.rules;
    const archive = this.opts.archive!;
    let release = () => undefined as void;
    try {
      const siblings = (await this.opts.catalog.allChildren(container)).filter((o) => o.location?.tape);
      const onTape = siblings.filter((o) => tierOf(o.location) === 'tape');
      if (!onTape.length) return [];
      const access = await this.opts.readAccess(siblings.map((o) => o.id));
      const plays = siblings.reduce((n, o) => n + playsWithin(access.get(o.id), this.now(), r.promoteWindow * 1000), 0);
      if (plays < r.promoteContainerPlays) return [];
      // the plan below reads the whole catalog (a second or more on a busy NAS) while the play's
      // read hold and drive_idle_unload run out: the cartridges stay loaded until the recall jobs,
      // which hold them themselves until they have run, are queued
      const labels = new Set(onTape.map((o) => o.location!.tape!.label));
      release = archive.holdCartridges([...labels]);
      // hot: whatever this attempt leaves on tape (its job finds a cartridge out of the drives, no room
      // yet, or items an unfinished job holds) is tried again when one of their cartridges is loaded
      this.wait(container, labels);
      return await this.inTurn(() => this.planPromotion(container, plays, onTape));
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message, container }, 'container promotion not started');
      return [];
    } finally {
      release();
    }
  }

  /**
   * One container promotion plans and queues its jobs at a time: each plan counts what the jobs
   * queued before it will add to disk (pending items), so two containers that get hot together
   * (two plays, a play and a load) never push usage over the high mark together, as two plans
   * made at once, both seeing the disk as it was, did.
   */
  private async inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.promotionTurn;
    let done!: () => void;
    this.promotionTurn = new Promise<void>((r) => (done = r));
    try {
      await before;
      return await fn();
    } finally {
      done();
    }
  }

  /** The plan of a hot container's promotion (one container) and its jobs, queued. */
  private async planPromotion(container: string, plays: number, onTape: CatalogObject[]): Promise<JobRecord[]> {
    const r = this.rules;
    const archive = this.opts.archive!;
    if (this.stopping) return [];
    const pending = new Set((await this.pendingJobItems()).map(([id]) => id));
    if (!onTape.some((o) => !pending.has(o.id))) return [];
    const plan = await this.plan({ container });
    if (this.stopping) return []; // the server stops: the next play after the restart tries again
    const recalls = plan.actions.filter((a) => a.action === 'recall' && a.reason === 'container-plays');
    const ids = recalls.map((a) => a.id);
    if (!ids.length) return [];
    const room = plan.actions.filter((a) => a.action === 'archive').map((a) => a.id);
    const common: JobOptions = { origin: 'policy', trigger: 'play', ...(r.window ? { window: true as const } : {}) };
    const recall = { ...common, rule: 'container-plays', loadedOnly: true } satisfies JobOptions;
    const jobs: JobRecord[] = [];
    // the service runs jobs one at a time in queue order. The recalls read only while the play's
    // cartridge is still in a drive (they never mount one), so what fits as the disk is now goes
    // first: it does not wait behind the make-room archive (which verifies each item against its
    // tape copy before it cuts the stub) while the drive's idle unload takes the cartridge. What
    // fits only once the room is made goes after the archive.
    const fits = recalls.filter((a) => !a.afterRoom).map((a) => a.id);
    const later = recalls.filter((a) => a.afterRoom).map((a) => a.id);
    if (fits.length) jobs.push(await archive.submit('recall', fits, recall));
    if (room.length) jobs.push(await archive.submit('archive', room, { ...common, collocate: true }));
    if (later.length) jobs.push(await archive.submit('recall', later, recall));
    this.statusPlan = undefined;
    this.opts.log.info({ policy: { container, plays, recall: ids.length, makeRoom: room.length, jobs: jobs.map((j) => j.id), skipped: plan.skipped.length } }, `container promotion: ${ids.length} item(s) of ${container} to recall (played ${plays} times within the window)${room.length ? `, ${room.length} with a tape copy archived to make room` : ''}`);
    return jobs;
  }

  /**
   * One pass now: plan, then submit the plan as jobs (archive, then recall). Returns once the
   * jobs are queued; they run in the archive service's job runner (or the caller runs them).
   * A pass whose jobs are still running refuses a second one (BUSY).
   */
  runPass(trigger: 'auto' | 'manual' = 'manual'): Promise<{ plan: PolicyPlan; jobs: JobRecord[] }> {
    const run = this.passing.then(() => this.passNow(trigger));
    this.passing = run.catch(() => undefined);
    return run;
  }

  private async passNow(trigger: 'auto' | 'manual'): Promise<{ plan: PolicyPlan; jobs: JobRecord[] }> {
    const archive = this.opts.archive;
    if (!archive) throw new ArchiveError('NO_LIBRARY', 'policy passes need the tape tier (tape_backend is none)');
    const active = await this.passJobs();
    if (active.length) throw new ArchiveError('BUSY', `a policy pass is still running (job${active.length > 1 ? 's' : ''} ${active.map((j) => j.id).join(', ')}); see \`tapedeck jobs\``);
    const plan = await this.plan();
    const jobs: JobRecord[] = [];
    const archives = plan.actions.filter((a) => a.action === 'archive');
    const recalls = plan.actions.filter((a) => a.action === 'recall');
    const window = trigger === 'auto' ? { window: true as const } : {};
    // premigration (keepDisk) goes in a job of its own after the archives: its items keep their disk copies
    const moved = archives.filter((a) => !a.keepDisk);
    const premigrated = archives.filter((a) => a.keepDisk);
    if (moved.length) jobs.push(await archive.submit('archive', moved.map((a) => a.id), { collocate: true, origin: 'policy', ...window }));
    if (premigrated.length) jobs.push(await archive.submit('archive', premigrated.map((a) => a.id), { collocate: true, keepDisk: true, origin: 'policy', ...window }));
    // one recall job per rule (counted apart); the second reads from the cartridges the jobs before
    // it loaded (or that were in a drive when the plan was made): it never mounts one itself, so a
    // cartridge that left its drive in between is not mounted for it (its items wait for a play)
    const promoted = recalls.filter((a) => a.reason !== 'container-plays');
    const containers = recalls.filter((a) => a.reason === 'container-plays');
    if (promoted.length) jobs.push(await archive.submit('recall', promoted.map((a) => a.id), { origin: 'policy', ...window }));
    if (containers.length) jobs.push(await archive.submit('recall', containers.map((a) => a.id), { origin: 'policy', rule: 'container-plays', loadedOnly: true, ...window } satisfies JobOptions));
    // container recalls left to a play of their container also go when anything loads their cartridge
    for (const sk of plan.skipped) if (sk.waitsFor) this.wait(sk.waitsFor.container, [sk.waitsFor.cartridge]);
    this.markSpent = plan.usage.some((u) => u.before > u.high) && archives.length === 0;
    const rec: PassRecord = { at: plan.at, trigger, archive: archives.length, recall: recalls.length, archiveBytes: plan.archiveBytes, recallBytes: plan.recallBytes, jobs: jobs.map((j) => j.id) };
    this.lastPassAt = this.now();
    this.passes++;
    this.statusPlan = undefined;
    await this.opts.catalog.setMeta(LAST_PASS, JSON.stringify(rec));
    this.opts.log.info({ policy: { trigger, archive: rec.archive, recall: rec.recall, jobs: rec.jobs, skipped: plan.skipped.length } }, `policy pass (${trigger}): ${rec.archive} to archive, ${rec.recall} to recall`);
    return { plan, jobs };
  }

  async lastPass(): Promise<PassResult | undefined> {
    const v = await this.opts.catalog.getMeta(LAST_PASS);
    if (!v) return undefined;
    const rec = JSON.parse(v) as PassRecord;
    if (rec.jobs.length === 0) return { ...rec, result: 'nothing to do' };
    const jobs = await Promise.all(rec.jobs.map((id) => this.opts.archive?.get(id)));
    const paused = jobs.find((j) => j?.state === 'queued' && j.activity?.startsWith('paused'));
    if (paused) return { ...rec, result: 'paused', reason: paused.activity };
    if (jobs.some((j) => j && !isTerminal(j.state))) return { ...rec, result: 'running' };
    const failed = jobs.find((j) => j?.state === 'failed');
    return failed ? { ...rec, result: 'failed', reason: failed.reason } : { ...rec, result: 'done' };
  }

  /** When the next automatic pass starts (undefined: policy_interval = 0). */
  nextPass(): number | undefined {
    return nextPassTime({ now: this.now(), lastPass: this.lastPassAt, interval: this.rules.interval, window: this.rules.window, notBefore: this.startedAt + FIRST_PASS_DELAY_MS }, this.minuteOf);
  }

  async status(): Promise<PolicyStatus> {
    const t = this.now();
    // Never a second plan while one is being made: each reads the whole catalog into memory, and
    // on a large library busy with a scan one takes longer than STATUS_PLAN_MS, so /metrics and
    // the status page (polled every few seconds) stacked them up (GBs at 100,000 items).
    let current = this.statusPlan;
    if (!current || (current.settled && (t - current.at > STATUS_PLAN_MS || t < current.at))) {
      const entry = { at: t, plan: this.plan(), settled: false };
      entry.plan.then(
        () => (entry.settled = true),
        () => (entry.settled = true),
      );
      this.statusPlan = current = entry;
    }
    const plan = await current.plan;
    const last = await this.lastPass();
    const w = this.rules.window;
    return {
      nextPass: this.nextPass(),
      ...(w ? { window: formatWindow(w) } : {}),
      inWindow: this.windowOpen(),
      interval: this.rules.interval,
      usage: plan.usage,
      planned: { archive: plan.actions.filter((a) => a.action === 'archive').length, recall: plan.actions.filter((a) => a.action === 'recall').length },
      candidates: plan.candidates,
      ...(last ? { lastPass: last } : {}),
      promotions: Number((await this.opts.catalog.getMeta(PROMOTIONS)) ?? 0),
      containerPromotions: Number((await this.opts.catalog.getMeta(CONTAINER_PROMOTIONS)) ?? 0),
      passes: this.passes,
    };
  }

  /** Automatic passes (server): checks every `tickMs` whether the next pass is due. */
  async start(tickMs = 30_000): Promise<void> {
    this.stopping = false;
    const last = await this.opts.catalog.getMeta(LAST_PASS).catch(() => undefined);
    if (last) this.lastPassAt = Date.parse((JSON.parse(last) as PassRecord).at);
    if (this.rules.interval <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.tick(), tickMs);
    this.timer.unref();
  }

  /** Runs an automatic pass when one is due (exposed for tests with a fake clock). */
  async tick(): Promise<boolean> {
    // jobs of an earlier pass paused when the window closed go on when it is open again
    if (this.windowOpen()) this.opts.archive?.poke();
    const next = this.nextPass();
    if (next === undefined || this.opts.busy?.()) return false;
    if (this.now() < next) {
      if (!(await this.overHighMark())) return false;
      this.opts.log.info({ policy: { nextPass: new Date(next).toISOString() } }, 'disk usage is above the high watermark: a policy pass before the interval is due');
    }
    // the previous pass's jobs still run (or wait for the window): the pass starts once they end
    const archive = this.opts.archive;
    if (archive && (await this.passJobs()).length) return false;
    try {
      await this.runPass('auto');
      return true;
    } catch (err) {
      // a pass still running, no tape tier...: try again at the next interval
      this.lastPassAt = this.now();
      this.opts.log.warn({ err: (err as Error).message }, 'policy pass not started');
      return false;
    }
  }

  /**
   * Whether disk usage is above the high watermark now, so an automatic pass starts before the
   * interval is due (a hierarchical storage manager reacts to its high mark: new files from a scan,
   * an operator's recall or other data on the file system can take usage over it between passes).
   * Not within HIGH_MARK_GAP_MS of the last pass, not outside policy_window, and not again after a
   * pass that found usage over the mark and nothing to archive (until the interval's pass). A
   * percent mark is the file systems' statfs (cheap, each tick); a SIZE mark counts the catalog's
   * bytes, i.e. a plan that reads every item: only when the catalog changed since the last look,
   * at most every HIGH_MARK_GAP_MS.
   */
  private async overHighMark(): Promise<boolean> {
    const high = this.rules.highWatermark;
    const t = this.now();
    // not before the first pass's grace period either (the first scan runs)
    if (!high || this.markSpent || !this.windowOpen() || t < this.startedAt + FIRST_PASS_DELAY_MS || (this.lastPassAt !== undefined && t - this.lastPassAt < HIGH_MARK_GAP_MS)) return false;
    if (high.kind === 'percent') {
      const probe = this.opts.fsProbe ?? realFsProbe;
      for (const dir of this.opts.mediaDirs ?? this.opts.config.mediaDirs) {
        const fs = await probe(dir).catch(() => undefined);
        if (fs && fs.sizeBytes > 0 && (fs.usedBytes / fs.sizeBytes) * 100 > high.percent) return true;
      }
      return false;
    }
    const gen = this.opts.catalog.generation;
    if (this.markLook && (this.markLook.gen === gen || t - this.markLook.at < HIGH_MARK_GAP_MS)) return false;
    this.markLook = { gen, at: t };
    const plan = await this.plan();
    return plan.usage.some((u) => u.before > u.high);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.waiting.clear(); // a mount event during shutdown starts nothing
    this.opts.archive?.off('job', this.onJob);
    this.opts.archive?.setHold(() => undefined);
    await this.passing;
    // a promotion under way (its catalog read, its plan) ends before the catalog closes, queueing nothing
    await Promise.all([...this.promoting.values()]);
    await this.promotionWrites;
  }
}
