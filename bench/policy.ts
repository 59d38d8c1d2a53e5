// Policy benchmark (issue 9): a trace-driven run of the tape tier over 60 simulated days on
// the real code, time-compressed: Tapedeck's tiering against a plain HSM baseline on the same
// trace, in the same run, each in its own real server process. JSON on stdout (also
// bench/results/policy.json), a table on stderr.
//
//   npm run -s bench:policy -- [--days 60] [--warmup 7] [--compress 4000] [--albums 400]
//        [--seasons 70] [--sessions 40] [--zipf 1.0] [--seed 9] [--drives 2]
//        [--cartridge-gib 200] [--cache-gib 2] [--segment-mib 128] [--container-plays 2] [--visit-gap 14400] [--premigrate 1]
//        [--quick] [--model] [--keep-dir]
//
// What runs: per strategy, the real server (bench/policy/server.ts: TapedeckServer with its
// LevelDB catalog, access tracking, policy engine, durable archive/recall jobs, HTTP delivery,
// head stubs) on loopback with SSDP off, and its real staging worker process (spawned and
// sandboxed as `serve` does it) owning a virtual tape library (src/tape/virtual*.ts) and the
// staging cache. The bench plays the trace (bench/policy/trace.ts: albums and series seasons,
// Zipf popularity) against both servers at once over HTTP (bench/policy/player.ts), one
// loopback address per viewing session, and runs a policy pass in both every simulated day
// at 03:00 (policy/real.ts). Tapedeck has promote_plays 2 and promote_container_plays
// --container-plays (default 2: the rest of a season or album being played from tape comes back
// to disk right after the play that makes it hot); the baseline has neither. `--model` runs the
// old discrete-event model instead (seconds).
//
// Time compression by C (--compress, default 4,000):
//   - the virtual library runs with tape_time_scale = 1/C (a 80 s cold mount takes 20 ms);
//   - every item is a WAV file of 1/C of its modelled bytes whose byte rate is 1/C of the
//     modelled one (so the server's probe reads the modelled duration); the tape rate is
//     scaled by 1/C too (ServerHooks.tapeTiming), so block positions, locates and streaming
//     times are those of the modelled library, and in real time every byte rate (tape,
//     playback) is the modelled one;
//   - byte settings are divided by C (cache 2 GiB, head_stub_min and head_stub_tail 4 MiB,
//     min_archive_size 16M, cartridge 200 GiB, the watermarks), time settings too
//     (drive_idle_unload 300 s, admission_timeout 180 s, promote_window 7 d, promote_visit_gap 4 h); the block size
//     is the smallest the library takes, 4 KiB (16 MiB modelled at C = 4,000);
//   - a cache segment (and a drive read) is --segment-mib modelled MiB (default 128: 32 KiB
//     real), not 4 MiB: every segment costs real, uncompressed work (file create, write,
//     fdatasync, announce, the server's open and read), a few ms that are C times longer in
//     modelled time; at 4 KiB segments (16 MiB modelled) that work alone took longer than the
//     playback of the segment (see the bench README); the read-ahead is four segments (the
//     worker caps it at a quarter of the cache): 12 modelled minutes of video, 180 ms real;
//   - the trace's clock runs C times faster than real time.
// Measured waits (time to first byte, stalls) are converted back to scale-1 seconds (× C).
// Where the error lies: timer resolution and scheduling latency. At C = 4,000 one ms of real
// time is 4 s of modelled time; a cold mount is 20 ms, an auto head stub of a video 52 ms of
// playback. The run reports the lateness of its own event loop and the first-byte times of
// plays served from disk (the floor every wait includes). Kernel socket buffers are not
// scaled: a player's buffer is what the socket holds (MBs, i.e. whole items at 1/C).
//
// Figures (counted after the warm-up days): share of plays whose first byte did not wait for
// tape (a play waited when its item was on tape, its start lay past the head stub, and its
// first byte took longer than the wait floor); share of playback time stalled (start waits
// of those plays plus stalls after the first byte, scale 1); mounts per day and bytes moved
// per day (tape reads + writes, verify read-back included, from /metrics, × C).

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { headBytes } from '../src/archive/stubs.js';
import { autoHeadStubSeconds } from '../src/archive/stub-seconds.js';
import { LTO9 } from '../src/tape/timing.js';
import type { JobRecord } from '../src/archive/jobs.js';
import { DEFAULT_TRACE, makeLibrary, makeTrace, type Library, type Play } from './policy/trace.js';
import { runModel } from './policy/model.js';
import { goalsOf, report, type StrategyFigures } from './policy/report.js';
import { BenchServer, type Marks, type TierInfo } from './policy/real.js';
import { play, sessionAddress, type PlayOutcome } from './policy/player.js';
import { writeWav } from './policy/wav.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const DAY = 86400;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`--${name} needs a non-negative number\n`);
    process.exit(2);
  }
  return v;
}

const quick = process.argv.includes('--quick');
const opts = {
  ...DEFAULT_TRACE,
  seed: arg('seed', DEFAULT_TRACE.seed),
  albums: arg('albums', quick ? 60 : DEFAULT_TRACE.albums),
  seasons: arg('seasons', quick ? 12 : DEFAULT_TRACE.seasons),
  sessionsPerDay: arg('sessions', quick ? 15 : DEFAULT_TRACE.sessionsPerDay),
  zipf: arg('zipf', DEFAULT_TRACE.zipf),
};
const model = process.argv.includes('--model');
const days = arg('days', quick ? 7 : 60);
const warmup = arg('warmup', quick ? 2 : model ? 14 : 7);
const drives = arg('drives', 2);
const cartridgeBytes = arg('cartridge-gib', 200) * GiB;
const C = arg('compress', 4000);
const cacheBytes = arg('cache-gib', 2) * GiB;
/** Real bytes of a cache segment and of a drive read: --segment-mib modelled, in whole 4 KiB blocks. */
const SEGMENT = 4096 * Math.max(1, Math.round((arg('segment-mib', 128) * MiB) / C / 4096));
const keepDir = process.argv.includes('--keep-dir');
/** Tapedeck's promote_container_plays (0 = off; the baseline never has it). */
const containerPlays = arg('container-plays', 2);
/** Tapedeck's promote_visit_gap, modelled seconds (--visit-gap, default 4 h = the setting's default; 0 = every play is a visit). */
const visitGap = arg('visit-gap', 4 * 3600);
/** Tapedeck's premigrate (--premigrate 0 = off; default on, the setting's default). */
const premigrate = arg('premigrate', 1) > 0;

if (model) {
  const doc = await runModel({ trace: opts, days, warmup, drives, cartridgeBytes, containerPlays, visitGapS: visitGap, premigrate });
  await report(doc as Parameters<typeof report>[0]);
  process.exit(0);
}

type Name = 'tapedeck' | 'baseline';
const NAMES: Name[] = ['tapedeck', 'baseline'];
const autoSeconds = autoHeadStubSeconds(LTO9);
/** Real ms of `s` modelled seconds. */
const realMs = (s: number) => (s * 1000) / C;
/** A first byte slower than this (real ms) waited for tape (when it could: item on tape, start past the stub). */
const WAIT_FLOOR_MS = Math.max(3, realMs(10));

interface FileItem {
  id?: string;
  path: string;
  /** Real file size and byte rate (bytes per modelled second). */
  size: number;
  rate: number;
}

async function writeLibrary(lib: Library, media: string): Promise<FileItem[]> {
  const out: FileItem[] = [];
  for (const c of lib.containers) {
    await mkdir(join(media, c.dir), { recursive: true });
    for (const n of c.items) {
      const it = lib.items[n]!;
      const path = join(media, c.dir, it.name.replace(/\.[^.]+$/, '.wav'));
      const rate = Math.max(1, Math.round(it.rate / C));
      const size = await writeWav(path, rate, it.seconds);
      out[n] = { path, size, rate };
    }
  }
  return out;
}

function spec(name: Name, dir: string, media: string, marks: Marks) {
  const ours = name === 'tapedeck';
  const b = (x: number) => String(Math.max(1, Math.round(x / C)));
  return {
    flags: {
      data: join(dir, 'data'),
      media: [media],
      interface: ['lo'],
      port: '0',
      ssdp: false,
      watch: false,
      rescanInterval: '0',
      art: false,
      ffprobe: 'off',
      logLevel: 'warn',
      tapeBackend: 'virtual',
      tapeTimeScale: String(1 / C),
      tapeDrives: String(drives),
      tapeSlots: '64',
      tapeBlockSize: '4096',
      tapeCapacity: b(cartridgeBytes),
      policyInterval: '0',
      diskHighWatermark: String(marks.high),
      diskLowWatermark: String(marks.low),
      headStubSeconds: ours ? 'auto' : '0',
      headStubMin: b(4 * MiB),
      headStubTail: ours ? b(4 * MiB) : '0',
      minArchiveSize: ours ? b(16 * MiB) : '0',
      promotePlays: ours ? '2' : '0',
      promoteContainerPlays: ours ? String(containerPlays) : '0',
      premigrate: ours && premigrate,
      prestageItems: ours ? '3' : '0',
      prestageSeconds: '300',
      prestageOnBrowse: false,
    },
    // admission_timeout is not compressed below 1 s real: scheduling latency on a shared machine
    // reaches tens of ms, and a 45 ms timeout would fail requests a real drive serves in time
    overrides: { cacheSize: Math.round(cacheBytes / C), driveIdleUnload: 300 / C, admissionTimeout: Math.max(1, 180 / C), promoteWindow: (7 * DAY) / C, promoteVisitGap: visitGap / C },
    tapeTiming: { rate: LTO9.rate / C },
    // the players play C times faster than the probed durations say: a read's hold (how long its
    // client plays the bytes, which keeps the cartridge loaded) is scaled the same way
    playbackTimeScale: 1 / C,
    // segment and drive read: see SEGMENT and the header. A job's drive lease is
    // not compressed (2 s real): the gaps between a job's tape operations are server work
    // (hashing, catalog, stubs) that runs at real speed, and a lease given back mid-job lets
    // the idle unload take the cartridge from under the job (see the bench README).
    stagerTuning: { segmentSize: SEGMENT, readAhead: 4 * SEGMENT, maxChunk: SEGMENT, jobIdleReleaseMs: 2000 },
  };
}

interface PlayRecord {
  p: Play;
  counted: boolean;
  onTape: boolean;
  pastStub: boolean;
  out: PlayOutcome;
}

class Strategy {
  server!: BenchServer;
  tiers = new Map<string, TierInfo>();
  records: PlayRecord[] = [];
  archived = 0;
  recalled = 0;
  /** Items a pass copied to tape keeping their disk copies (premigration: keepDisk archive jobs). */
  premigrated = 0;
  passErrors: string[] = [];
  metrics0: Record<string, number> = {};
  metrics1: Record<string, number> = {};
  /** Disk usage the watermarks judge (real bytes, from /metrics), sampled before each counted pass. */
  usageSamples: number[] = [];
  passing: Promise<void> = Promise.resolve();
  constructor(
    readonly name: Name,
    readonly files: FileItem[],
  ) {}

  head(f: FileItem): number {
    return headBytes({ bitrate: f.rate }, f.size, { headSeconds: this.name === 'tapedeck' ? autoSeconds : 0, headMin: Math.round((4 * MiB) / C) });
  }

  /** A pass now; its jobs run in the server; tiers are refreshed once they finish. */
  pass(marks: Marks, counting: boolean): Promise<void> {
    const run = this.passing.then(async () => {
      let jobs: JobRecord[] = [];
      if (counting) {
        const u = (await this.server.metrics().catch(() => ({}) as Record<string, number>))['tapedeck_policy_disk_usage{scope="catalog",unit="bytes"}'];
        if (u !== undefined) this.usageSamples.push(u);
      }
      try {
        jobs = await this.server.pass(marks, (i) => this.head({ path: i.path, size: i.size, rate: this.files.find((f) => f.id === i.id)?.rate ?? 0 }));
      } catch (err) {
        this.passErrors.push((err as Error).message);
        return;
      }
      for (const j of jobs) if (counting) (j.kind === 'archive' ? (j.opts.keepDisk ? (this.premigrated += j.targets.length) : (this.archived += j.targets.length)) : (this.recalled += j.targets.length));
      this.passErrors.push(...(await this.server.waitJobs(jobs)));
      this.tiers = await this.server.tiers();
    });
    this.passing = run;
    return run;
  }

  async play(p: Play, counted: boolean): Promise<void> {
    const f = this.files[p.item]!;
    const start = Math.min(f.size - 1, 44 + Math.floor(p.offset / C));
    const end = Math.min(f.size, Math.ceil(start + p.seconds * f.rate));
    const t = this.tiers.get(f.id!);
    const onTape = t?.tier === 'tape';
    const pastStub = start >= this.head(f);
    const out = await play({ host: this.server.host, port: this.server.port, id: f.id!, start, end: Math.max(end, start + 1), rate: (f.rate * C) / 1000, localAddress: sessionAddress(p.session), retryMs: realMs(10), giveUpMs: realMs(7200) });
    this.records.push({ p, counted, onTape, pastStub, out });
  }

  /** Sessions that played something from tape, and the most tape plays one session made (of the counted plays). */
  tapeSessions(rs: PlayRecord[]): { sessions: number; maxTapePlays: number } {
    const n = new Map<number, number>();
    for (const r of rs) if (r.onTape) n.set(r.p.session, (n.get(r.p.session) ?? 0) + 1);
    return { sessions: n.size, maxTapePlays: Math.max(0, ...n.values()) };
  }

  figures() {
    const rs = this.records.filter((r) => r.counted);
    let noWait = 0;
    let stallS = 0;
    let startWaitS = 0;
    let playbackS = 0;
    let fromTape = 0;
    const diskTtfb: number[] = [];
    for (const r of rs) {
      playbackS += r.p.seconds;
      if (r.onTape) fromTape++;
      const waited = r.onTape && r.pastStub && !(r.out.ttfbMs <= WAIT_FLOOR_MS);
      if (waited) startWaitS += ((Number.isFinite(r.out.ttfbMs) ? r.out.ttfbMs : realMs(7200)) * C) / 1000;
      else noWait++;
      stallS += (r.out.stallMs * C) / 1000;
      if (!r.onTape && Number.isFinite(r.out.ttfbMs)) diskTtfb.push(r.out.ttfbMs);
    }
    diskTtfb.sort((a, b) => a - b);
    const q = (x: number) => (diskTtfb.length ? Math.round(diskTtfb[Math.min(diskTtfb.length - 1, Math.floor(x * diskTtfb.length))]! * 100) / 100 : null);
    const d = (k: string) => (this.metrics1[k] ?? 0) - (this.metrics0[k] ?? 0);
    return {
      plays: rs.length,
      playsFromTape: fromTape,
      firstByteNoWaitShare: rs.length ? noWait / rs.length : 1,
      stalledShare: playbackS ? (stallS + startWaitS) / playbackS : 0,
      stallSeconds: Math.round(stallS),
      startWaitSeconds: Math.round(startWaitS),
      playbackHours: Math.round(playbackS / 3600),
      mountsPerDay: d('tapedeck_tape_mounts_total') / days,
      // mounts by cause over the counted days: the stager's own by the priority of the read that
      // asked (playback, pre-stage), the rest are the archive/recall jobs' (policy passes, promotions)
      mounts: {
        total: d('tapedeck_tape_mounts_total'),
        play: d('tapedeck_stager_mounts_total{priority="interactive"}'),
        prestage: d('tapedeck_stager_mounts_total{priority="prefetch"}'),
        job: d('tapedeck_tape_mounts_total') - d('tapedeck_stager_mounts_total{priority="interactive"}') - d('tapedeck_stager_mounts_total{priority="prefetch"}'),
        playSessions: this.tapeSessions(rs),
      },
      // where the worker's time went, summed, in modelled seconds (real × C)
      deliveryModelledS: {
        admissionWait: Math.round(d('tapedeck_stager_queue_wait_seconds_sum') * C),
        // the same, split: playback reads vs pre-stages (the sum above counts both)
        playDriveWait: Math.round(d('tapedeck_stager_drive_wait_seconds_total{priority="interactive"}') * C),
        prestageDriveWait: Math.round(d('tapedeck_stager_drive_wait_seconds_total{priority="prefetch"}') * C),
        cacheRoomWait: Math.round(d('tapedeck_stager_cache_room_wait_seconds_total') * C),
        segmentSync: Math.round(d('tapedeck_stager_sync_seconds_total') * C),
        commitDelay: Math.round(d('tapedeck_stager_commit_delay_seconds_total') * C),
      },
      bytesMovedPerDay: Math.round(((d('tapedeck_tape_bytes_read_total') + d('tapedeck_tape_bytes_written_total')) * C) / days),
      bytesReadPerDay: Math.round((d('tapedeck_tape_bytes_read_total') * C) / days),
      bytesWrittenPerDay: Math.round((d('tapedeck_tape_bytes_written_total') * C) / days),
      containerPromotions: d('tapedeck_policy_container_promotions_total'),
      // at the daily pass (before it runs: the day's recalls are in), modelled bytes
      diskUsageBeforePass: { max: Math.max(0, ...this.usageSamples) * C, mean: Math.round((this.usageSamples.reduce((n, u) => n + u, 0) / Math.max(1, this.usageSamples.length)) * C) },
      prestages: d('tapedeck_prestages_total'),
      prestagedBytes: d('tapedeck_prestaged_bytes_total') * C,
      archived: this.archived,
      recalled: this.recalled,
      premigrated: this.premigrated,
      failedPlays: rs.filter((r) => r.out.failed).length,
      busyAnswers: rs.reduce((n, r) => n + r.out.busy, 0),
      diskFirstByteMs: { p50: q(0.5), p99: q(0.99) },
      passErrors: this.passErrors.slice(0, 10),
      worstPlays: rs
        .map((r) => ({ r, cost: (r.out.stallMs + (r.onTape && r.pastStub && !(r.out.ttfbMs <= WAIT_FLOOR_MS) ? r.out.ttfbMs : 0)) * C / 1000 }))
        .filter((x) => x.cost > 0)
        .sort((a, b) => b.cost - a.cost)
        .slice(0, 12)
        .map(({ r, cost }) => ({ at: Math.round(r.p.at), item: r.p.item, session: r.p.session, offset: r.p.offset, seconds: Math.round(r.p.seconds), onTape: r.onTape, pastStub: r.pastStub, firstByteS: Math.round((r.out.ttfbMs * C) / 1000), stallS: Math.round((r.out.stallMs * C) / 1000), costS: Math.round(cost), requests: r.out.requests })),
    };
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const load0 = loadavg();
  const lib = makeLibrary(opts);
  const trace = makeTrace(lib, { ...opts, days: days + warmup });
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-policy-'));
  const log = (m: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${m}\n`);
  log(`library: ${lib.items.length} items in ${lib.containers.length} containers, ${(lib.bytes / 1e12).toFixed(2)} TB modelled (${(lib.bytes / C / 1e6).toFixed(0)} MB on disk at 1/${C}); ${trace.length} plays over ${days + warmup} days (${warmup} warm-up), ${(((days + warmup) * DAY) / C / 60).toFixed(1)} min of trace time`);
  const strategies: Strategy[] = [];
  try {
    for (const name of NAMES) {
      const media = join(dir, name, 'media');
      strategies.push(new Strategy(name, await writeLibrary(lib, media)));
    }
    const real = strategies[0]!.files.reduce((n, f) => n + f.size, 0);
    const marks: Marks = { high: Math.floor(real * 0.25), low: Math.floor(real * 0.2) };
    log('library written; starting the servers (first scan)');
    await Promise.all(
      strategies.map(async (s) => {
        s.server = await BenchServer.start(s.name, spec(s.name, join(dir, s.name), join(dir, s.name, 'media'), marks), join(dir, `${s.name}.log`));
        const byPath = new Map((await s.server.items()).map((i) => [i.path, i.id]));
        for (const f of s.files) {
          f.id = byPath.get(f.path);
          if (!f.id) throw new Error(`${s.name}: not catalogued: ${f.path}`);
        }
      }),
    );
    const carts = Math.ceil(real / Math.round(cartridgeBytes / C)) + 2;
    await Promise.all(strategies.map((s) => s.server.control.label(Array.from({ length: carts }, (_, i) => `TD${String(i + 1).padStart(4, '0')}L9`))));
    log(`${carts} cartridges labelled; first policy pass (the library starts within its marks)`);
    await Promise.all(strategies.map((s) => s.pass(marks, false)));
    for (const s of strategies) if (s.passErrors.length) throw new Error(`${s.name}: first pass failed: ${s.passErrors.join('; ')}`);
    log(`first pass done; playing the trace`);

    // The trace, in compressed real time: plays, daily passes at 03:00, the count start.
    type Ev = { at: number; kind: 'play'; p: Play } | { at: number; kind: 'pass' } | { at: number; kind: 'count' };
    const evs: Ev[] = trace.map((p) => ({ at: p.at, kind: 'play' as const, p }));
    for (let d = 1; d < days + warmup; d++) evs.push({ at: d * DAY + 3 * 3600, kind: 'pass' });
    evs.push({ at: warmup * DAY, kind: 'count' });
    evs.sort((a, b) => a.at - b.at || (a.kind === 'play' ? 1 : 0) - (b.kind === 'play' ? 1 : 0));
    const T0 = performance.now();
    const late: number[] = [];
    const plays: Promise<void>[] = [];
    let counting = false;
    let nextLog = DAY;
    for (const ev of evs) {
      const due = T0 + realMs(ev.at);
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      late.push(performance.now() - due);
      if (ev.at >= nextLog) {
        log(`day ${Math.floor(ev.at / DAY)}`);
        nextLog += DAY * Math.max(1, Math.floor((days + warmup) / 12));
      }
      if (ev.kind === 'play') for (const s of strategies) plays.push(s.play(ev.p, counting));
      else if (ev.kind === 'pass') for (const s of strategies) void s.pass(marks, counting);
      else {
        counting = true;
        for (const s of strategies) s.metrics0 = await s.server.metrics();
      }
    }
    await Promise.all(plays);
    const traceEnd = T0 + realMs((days + warmup) * DAY);
    if (performance.now() < traceEnd) await new Promise((r) => setTimeout(r, traceEnd - performance.now()));
    for (const s of strategies) s.metrics1 = await s.server.metrics();
    await Promise.all(strategies.map((s) => s.passing));
    late.sort((a, b) => a - b);
    const lq = (x: number) => Math.round(late[Math.min(late.length - 1, Math.floor(x * late.length))]! * 100) / 100;
    const [o, b] = [strategies[0]!.figures(), strategies[1]!.figures()];
    const pct = (bytes: number) => ((100 * bytes) / (real * C)).toFixed(1);
    const doc = {
      bench: 'policy',
      mode: 'real servers, time-compressed',
      library: { items: lib.items.length, containers: lib.containers.length, bytes: lib.bytes, bytesOnDisk: real, highWatermark: marks.high * C, lowWatermark: marks.low * C },
      trace: { ...opts, days, warmupDays: warmup, plays: trace.length },
      run: { compression: C, tapeTimeScale: 1 / C, drives, cartridgeBytes, blockSizeModelled: 4096 * C, segmentBytesModelled: SEGMENT * C, cacheBytes, idleUnloadSeconds: 300, admissionTimeoutSeconds: Math.max(1, 180 / C) * C, autoStubSeconds: autoSeconds, waitFloorMs: WAIT_FLOOR_MS, eventLatenessMs: { p50: lq(0.5), p99: lq(0.99), max: lq(1) }, loadavgStart: load0, loadavgEnd: loadavg() },
      tapedeck: o,
      baseline: b,
      goals: goalsOf(o, b),
      wallMs: Math.round(performance.now() - t0),
    };
    await report(doc, [
      ['failed plays / 503 answers', `${o.failedPlays} / ${o.busyAnswers}`, `${b.failedPlays} / ${b.busyAnswers}`],
      ['mounts: play / pre-stage / job', `${o.mounts.play} / ${o.mounts.prestage} / ${o.mounts.job}`, `${b.mounts.play} / ${b.mounts.prestage} / ${b.mounts.job}`],
      ['sessions playing from tape; play mounts each', `${o.mounts.playSessions.sessions}; ${(o.mounts.play / Math.max(1, o.mounts.playSessions.sessions)).toFixed(2)}`, `${b.mounts.playSessions.sessions}; ${(b.mounts.play / Math.max(1, b.mounts.playSessions.sessions)).toFixed(2)}`],
      ['wait for drive / cache room (modelled s)', `${o.deliveryModelledS.admissionWait} / ${o.deliveryModelledS.cacheRoomWait}`, `${b.deliveryModelledS.admissionWait} / ${b.deliveryModelledS.cacheRoomWait}`],
      ['drive wait: plays / pre-stages (modelled s)', `${o.deliveryModelledS.playDriveWait} / ${o.deliveryModelledS.prestageDriveWait}`, `${b.deliveryModelledS.playDriveWait} / ${b.deliveryModelledS.prestageDriveWait}`],
      ['segment sync / commit delay (modelled s)', `${o.deliveryModelledS.segmentSync} / ${o.deliveryModelledS.commitDelay}`, `${b.deliveryModelledS.segmentSync} / ${b.deliveryModelledS.commitDelay}`],
      ['container promotions (items recalled)', `${o.containerPromotions}`, `${b.containerPromotions}`],
      ['disk usage before the daily pass: max / mean (% of library; marks 25 / 20)', `${pct(o.diskUsageBeforePass.max)} / ${pct(o.diskUsageBeforePass.mean)}`, `${pct(b.diskUsageBeforePass.max)} / ${pct(b.diskUsageBeforePass.mean)}`],
      ['first byte from disk p50/p99 (real ms)', `${o.diskFirstByteMs.p50} / ${o.diskFirstByteMs.p99}`, `${b.diskFirstByteMs.p50} / ${b.diskFirstByteMs.p99}`],
    ]);
    log(`done; event lateness p50 ${lq(0.5)} ms, p99 ${lq(0.99)} ms (×${C} modelled)`);
  } finally {
    await Promise.all(strategies.map((s) => s.server?.stop().catch(() => undefined)));
    if (keepDir) process.stderr.write(`kept ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}

await main();
