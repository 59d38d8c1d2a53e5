// The policy brain's rules on synthetic library states with a fake clock: watermarks by SIZE
// and by %, idle, keep_on_disk, min size, promotion within its window and against the high
// watermark, collocation order, the schedule and policy_window wrapping midnight, and the
// settings' syntax and errors.
import test from 'ava';
import { containerVisits, planPass, playOrder, type PolicyItem, type PolicyRules, type PolicyState } from '../src/policy/plan.js';
import { nextInWindow, nextPassTime } from '../src/policy/schedule.js';
import { renderPlan } from '../src/policy/cli.js';
import { globToRegExp, inWindow, parseDuration, parseWindow } from '../src/policy/units.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DAY = 86400_000;
const MB = 1024 * 1024;
const NOW = Date.UTC(2026, 5, 1, 12);

let seq = 0;
function item(p: Partial<PolicyItem> & { size: number }): PolicyItem {
  const n = ++seq;
  return { id: `i${n}`, title: `t${n}`, path: `/m/${p.relPath ?? `f${n}.mkv`}`, relPath: `f${n}.mkv`, parentId: 'd1', tier: 'disk', diskBytes: p.size, stubBytes: MB, plays: 0, recent: [], fs: 'fs1', added: NOW - 400 * DAY, ...p } as PolicyItem;
}

const rules = (r: Partial<PolicyRules> = {}): PolicyRules => ({ archiveIdle: 0, minArchiveSize: 16 * MB, keepOnDisk: [], promotePlays: 0, promoteWindow: 7 * 86400, ...r });
const state = (items: PolicyItem[], s: Partial<PolicyState> = {}): PolicyState => ({ now: NOW, items, filesystems: [], pool: [{ label: 'TD0001L9', freeBytes: 1e12 }], mountSeconds: 82, rate: 400e6, ...s });
const ids = (plan: ReturnType<typeof planPass>, action?: string) => plan.actions.filter((a) => !action || a.action === action).map((a) => a.id);

test('defaults move nothing: no watermark, archive_idle 0, promote_plays 0', (t) => {
  const plan = planPass(state([item({ size: 100 * MB, plays: 9, recent: [NOW - 1000] }), item({ size: 100 * MB, tier: 'tape', diskBytes: MB })]), rules());
  t.deepEqual(plan.actions, []);
});

test('watermark by SIZE: coldest (least recently played or added) first, then largest, until at or below the low mark', (t) => {
  const a = item({ size: 100 * MB, lastPlayed: NOW - 10 * DAY });
  const b = item({ size: 100 * MB, added: NOW - 300 * DAY }); // never played: added counts
  const c = item({ size: 200 * MB, added: NOW - 300 * DAY }); // same age, larger: first
  const d = item({ size: 100 * MB, lastPlayed: NOW - DAY });
  const plan = planPass(state([a, b, c, d]), rules({ highWatermark: { kind: 'bytes', bytes: 450 * MB }, lowWatermark: { kind: 'bytes', bytes: 250 * MB } }));
  // 500 MB on disk; archiving leaves a 1 MB stub each: c (-199) -> 301, b (-99) -> 202 <= 250
  // chosen coldest-first (c, then b); written in play order of their container
  t.deepEqual(ids(plan).sort(), [c.id, b.id].sort());
  t.true(plan.actions.every((x) => x.reason === 'watermark' && x.action === 'archive'));
  t.deepEqual(plan.usage[0], { scope: 'catalog', kind: 'bytes', before: 500 * MB, after: 202 * MB, high: 450 * MB, low: 250 * MB, usedBytes: 202 * MB });
  // at or below the high mark: nothing
  t.deepEqual(planPass(state([a, b, c, d]), rules({ highWatermark: { kind: 'bytes', bytes: 500 * MB }, lowWatermark: { kind: 'bytes', bytes: 100 * MB } })).actions, []);
});

test('watermark by %: the used share of each media file system, only items on that file system', (t) => {
  const a = item({ size: 100 * MB, fs: 'fs1' });
  const b = item({ size: 100 * MB, fs: 'fs1', added: NOW - DAY });
  const c = item({ size: 300 * MB, fs: 'fs2' });
  const fss = [
    { key: 'fs1', dirs: ['/m'], sizeBytes: 1000 * MB, usedBytes: 850 * MB }, // 85% > 80%
    { key: 'fs2', dirs: ['/n'], sizeBytes: 1000 * MB, usedBytes: 500 * MB },
  ];
  const plan = planPass(state([a, b, c], { filesystems: fss }), rules({ highWatermark: { kind: 'percent', percent: 80 }, lowWatermark: { kind: 'percent', percent: 75 } }));
  // fs1: 850 - 99 = 751 MB = 75.1% > 75: b too -> 652 MB
  t.deepEqual(ids(plan), [a.id, b.id]);
  t.like(plan.usage.find((u) => u.scope === '/m'), { kind: 'percent', before: 85, after: 65.2, high: 80, low: 75 });
  t.like(plan.usage.find((u) => u.scope === '/n'), { before: 50, after: 50 });
});

test('watermark by %: head stubs on another file system (<data_dir>) free the whole file on the media one, and promotions need the whole file', (t) => {
  // fs1: 1000 MB, 900 MB used (90%); marks 80/50. Stubs are 40 MB each.
  const a = item({ size: 200 * MB, stubBytes: 40 * MB });
  const b = item({ size: 200 * MB, stubBytes: 40 * MB, added: NOW - DAY });
  const fss = [{ key: 'fs1', dirs: ['/m'], sizeBytes: 1000 * MB, usedBytes: 900 * MB }];
  const wm = rules({ highWatermark: { kind: 'percent', percent: 80 }, lowWatermark: { kind: 'percent', percent: 50 } });
  // stubs elsewhere: archiving a frees 200 MB -> 70%, b another 200 -> 50%: both (and the figures say so)
  const apart = planPass(state([a, b], { filesystems: fss, stubFs: 'fsdata' }), wm);
  t.deepEqual(ids(apart), [a.id, b.id]);
  t.like(apart.usage[0], { before: 90, after: 50 });
  // one item is enough when it frees its whole size: 900 - 200 = 700 MB = 70% <= 75%
  const one = planPass(state([a, b], { filesystems: fss, stubFs: 'fsdata' }), rules({ highWatermark: { kind: 'percent', percent: 80 }, lowWatermark: { kind: 'percent', percent: 75 } }));
  t.deepEqual(ids(one), [a.id], 'the coldest');
  t.like(one.usage[0], { after: 70 });
  // stubs on the media file system itself (or unknown): each archive frees 160 MB
  const same = planPass(state([a, b], { filesystems: fss, stubFs: 'fs1' }), wm);
  t.deepEqual(ids(same), [a.id, b.id]);
  t.like(same.usage[0], { after: 58 }, '900 - 2 x 160 MB, still above the low mark: nothing more to archive');
  // a promotion of a tape item whose stub is elsewhere needs its whole size on the media file system
  const hot = item({ size: 100 * MB, tier: 'tape', diskBytes: 40 * MB, recent: [NOW - 1000, NOW - 2000], plays: 2 });
  const fsFull = [{ key: 'fs1', dirs: ['/m'], sizeBytes: 1000 * MB, usedBytes: 740 * MB }];
  const promo = rules({ highWatermark: { kind: 'percent', percent: 80 }, lowWatermark: { kind: 'percent', percent: 50 }, promotePlays: 2, promoteWindow: 7 * 86400 });
  const p1 = planPass(state([hot], { filesystems: fsFull, stubFs: 'fsdata' }), promo);
  t.deepEqual(ids(p1), [], '740 + 100 MB is over 80%');
  t.is(p1.skipped.length, 1);
  const p2 = planPass(state([hot], { filesystems: fsFull, stubFs: 'fs1' }), promo);
  t.deepEqual(ids(p2), [hot.id], '740 + 60 MB is at 80%');
});

test('archive_idle: items neither played nor changed (nor added) for that long, even below the watermark', (t) => {
  const old = item({ size: 50 * MB, added: NOW - 100 * DAY, changed: NOW - 95 * DAY });
  const played = item({ size: 50 * MB, added: NOW - 100 * DAY, lastPlayed: NOW - 10 * DAY });
  const changed = item({ size: 50 * MB, added: NOW - 100 * DAY, changed: NOW - 5 * DAY });
  const fresh = item({ size: 50 * MB, added: NOW - 2 * DAY });
  const plan = planPass(state([old, played, changed, fresh]), rules({ archiveIdle: 90 * 86400 }));
  t.deepEqual(ids(plan), [old.id]);
  t.like(plan.actions[0], { action: 'archive', reason: 'idle', idleDays: 95 });
});

test('keep_on_disk globs and min_archive_size exclude items from every archive rule', (t) => {
  const song = item({ size: 50 * MB, relPath: 'Music/A/B/01.flac' });
  const jpg = item({ size: 50 * MB, relPath: 'Photos/x/big.jpg' });
  const small = item({ size: 10 * MB, relPath: 'Video/small.mkv' });
  const film = item({ size: 50 * MB, relPath: 'Video/film.mkv' });
  const r = rules({ archiveIdle: 86400, keepOnDisk: ['Music/**', '*.jpg'], highWatermark: { kind: 'bytes', bytes: MB }, lowWatermark: { kind: 'bytes', bytes: MB } });
  t.deepEqual(ids(planPass(state([song, jpg, small, film]), r)), [film.id]);
  t.deepEqual(ids(planPass(state([song, jpg, small, film]), { ...r, minArchiveSize: 5 * MB })).sort(), [small.id, film.id].sort());
  t.true(globToRegExp('Music/**')!.test('Music/a/b.flac'));
  t.false(globToRegExp('Music/**')!.test('Video/Music/a.flac'));
  t.true(globToRegExp('*.jpg')!.test('a/b/c.jpg'));
  t.false(globToRegExp('*.jpg')!.test('a/b/c.jpeg'));
  t.true(globToRegExp('Video/*/S01E0?.mkv')!.test('Video/Show/S01E03.mkv'));
});

test('promotion: a tape item played N times within the window is recalled; plays outside the window do not count', (t) => {
  const hot = item({ size: 100 * MB, tier: 'tape', diskBytes: MB, cartridge: 'TD0002L9', block: 7, recent: [NOW - 8 * DAY, NOW - 2 * DAY, NOW - DAY, NOW - 1000], lastPlayed: NOW - 1000 });
  const lukewarm = item({ size: 100 * MB, tier: 'tape', diskBytes: MB, recent: [NOW - 30 * DAY, NOW - 20 * DAY, NOW - 10 * DAY, NOW - 9 * DAY] });
  const plan = planPass(state([hot, lukewarm]), rules({ promotePlays: 3 }));
  t.deepEqual(ids(plan), [hot.id]);
  t.like(plan.actions[0], { action: 'recall', reason: 'promotion', playsInWindow: 3, cartridge: 'TD0002L9' });
  t.deepEqual(plan.cartridges, ['TD0002L9']);
  t.deepEqual(ids(planPass(state([hot, lukewarm]), rules({ promotePlays: 3, promoteWindow: 30 * 86400 }))).sort(), [hot.id, lukewarm.id].sort());
  // a cartridge outside the library: the promotion waits (listed as skipped), nothing fails
  const off = planPass(state([hot, lukewarm], { offline: ['TD0002L9'] }), rules({ promotePlays: 3 }));
  t.deepEqual(off.actions, []);
  t.regex(off.skipped[0].reason, /TD0002L9 is offline/);
});

test('a promotion must fit in the free space of its file system (the recall job checks the same before mounting)', (t) => {
  const hot = item({ size: 100 * MB, tier: 'tape', diskBytes: MB, recent: [NOW - 1000, NOW - 2000], lastPlayed: NOW - 1000 });
  const idle = item({ size: 80 * MB, lastPlayed: NOW - 400 * DAY });
  const fs = (freeBytes: number) => ({ filesystems: [{ key: 'fs1', dirs: ['/m'], sizeBytes: 1e12, usedBytes: 1e9, freeBytes }] });
  const r = rules({ promotePlays: 2 });
  const tight = planPass(state([hot], fs(50 * MB)), r);
  t.deepEqual(tight.actions, []);
  t.regex(tight.skipped[0].reason, new RegExp(`needs ${100 * MB} bytes of free space and its file system \\(/m\\) has ${50 * MB}`));
  t.deepEqual(ids(planPass(state([hot], fs(150 * MB)), r)), [hot.id]);
  // an archive of the same pass (it runs first) frees room for it
  const plan = planPass(state([hot, idle], fs(50 * MB)), { ...r, archiveIdle: 90 * 86400 });
  t.deepEqual(plan.actions.map((a) => [a.id, a.action]), [[idle.id, 'archive'], [hot.id, 'recall']]);
  // unknown free space (no statfs): no check
  t.deepEqual(ids(planPass(state([hot]), r)), [hot.id]);
});

test('promotion never pushes usage over the high watermark: colder items are archived first, or the promotion is skipped', (t) => {
  const hot = item({ size: 100 * MB, tier: 'tape', diskBytes: MB, recent: [NOW - 1000, NOW - 2000], lastPlayed: NOW - 1000 });
  const cold = item({ size: 150 * MB, lastPlayed: NOW - 50 * DAY });
  const warm = item({ size: 150 * MB, lastPlayed: NOW - 100 }); // played after hot: not colder
  const r = rules({ promotePlays: 2, highWatermark: { kind: 'bytes', bytes: 400 * MB }, lowWatermark: { kind: 'bytes', bytes: 300 * MB } });
  // disk: 1 + 150 + 150 = 301 MB; recalling hot adds 99 -> 400 = high: fits
  t.deepEqual(ids(planPass(state([hot, cold, warm]), r)), [hot.id]);
  // with a lower high mark the cold item makes room first (archive before recall)
  const r2 = { ...r, highWatermark: { kind: 'bytes' as const, bytes: 350 * MB }, lowWatermark: { kind: 'bytes' as const, bytes: 300 * MB } };
  const plan = planPass(state([hot, cold, warm]), r2);
  t.deepEqual(plan.actions.map((a) => [a.id, a.action, a.reason]), [[cold.id, 'archive', 'make-room'], [hot.id, 'recall', 'promotion']]);
  t.true(plan.usage[0].after <= 350 * MB);
  // nothing colder to archive: skipped, nothing done
  const plan3 = planPass(state([hot, warm]), { ...r2, highWatermark: { kind: 'bytes', bytes: 200 * MB }, lowWatermark: { kind: 'bytes', bytes: 200 * MB } });
  t.deepEqual(plan3.actions, []);
  t.is(plan3.skipped.length, 1);
  t.regex(plan3.skipped[0].reason, /high watermark/);
  // the figure is what the recall adds to disk (size minus the stub already there), not the size
  t.regex(plan3.skipped[0].reason, new RegExp(`add ${99 * MB} bytes to disk`));
  t.notRegex(plan3.skipped[0].reason, new RegExp(`recalling ${100 * MB} bytes`));
});

test('collocation: archive actions grouped by container, in play order (disc, track, natural file name)', (t) => {
  const mk = (parentId: string, relPath: string, extra: Partial<PolicyItem> = {}) => item({ size: 20 * MB, parentId, relPath, path: `/m/${relPath}`, ...extra });
  const items = [
    mk('album', 'Album/10 ten.flac', { trackNumber: 10 }),
    mk('season', 'Show/S01E10.mkv'),
    mk('album', 'Album/2 two.flac', { trackNumber: 2 }),
    mk('season', 'Show/S01E2.mkv'),
    mk('album', 'Album/1 one d2.flac', { trackNumber: 1, discNumber: 2 }),
    mk('season', 'Show/S01E1.mkv'),
  ];
  const plan = planPass(state(items), rules({ archiveIdle: 86400 }));
  t.deepEqual(plan.actions.map((a) => a.path.slice(3)), ['Album/2 two.flac', 'Album/10 ten.flac', 'Album/1 one d2.flac', 'Show/S01E1.mkv', 'Show/S01E2.mkv', 'Show/S01E10.mkv']);
  t.deepEqual(plan.cartridges, ['TD0001L9']);
  t.is(plan.mounts, 1);
  t.is(plan.estimateSeconds, Math.round(82 + (2 * 120 * MB) / 400e6));
  // no pool cartridge with room: the plan says a cartridge must be labelled first
  const bare = planPass(state(items, { pool: [] }), rules({ archiveIdle: 86400 }));
  t.deepEqual(bare.cartridges, []);
  t.is(bare.mounts, 1);
  t.true(bare.actions.every((a) => a.cartridge === null));
  const text = renderPlan(bare);
  t.regex(text, /6 to archive .* 0 to recall/);
  t.regex(text, /archive +idle .*Album\/2 two\.flac\n +not played or changed for 400 days \(archive_idle 1d\)/);
  t.regex(text, /label one first with `tapedeck tape label`/);
});

test('schedule: every interval, moved into policy_window (which may wrap midnight); interval 0 = manual only', (t) => {
  const w = parseWindow('22:30-05:00')!;
  t.deepEqual(w, { start: 1350, end: 300 });
  t.true(inWindow(w, 23 * 60));
  t.true(inWindow(w, 2 * 60));
  t.false(inWindow(w, 5 * 60));
  t.false(inWindow(w, 12 * 60));
  t.true(inWindow(undefined, 0));
  const at = (h: number, m: number) => new Date(2026, 0, 10, h, m).getTime();
  const minuteOf = (ms: number) => new Date(ms).getHours() * 60 + new Date(ms).getMinutes();
  t.is(nextInWindow(at(12, 0), w, minuteOf), at(22, 30));
  t.is(nextInWindow(at(23, 15), w, minuteOf), at(23, 15));
  t.is(nextInWindow(at(3, 0), w, minuteOf), at(3, 0), 'after midnight, still inside');
  t.is(nextInWindow(at(5, 0), w, minuteOf), at(22, 30));
  t.is(nextPassTime({ now: at(12, 0), lastPass: at(11, 30), interval: 3600, window: w }, minuteOf), at(22, 30));
  t.is(nextPassTime({ now: at(23, 0), lastPass: at(22, 30), interval: 3600 }, minuteOf), at(23, 30));
  t.is(nextPassTime({ now: at(23, 0), interval: 0 }, minuteOf), undefined);
  t.is(nextPassTime({ now: at(1, 0), interval: 3600, window: w, notBefore: at(1, 1) }, minuteOf), at(1, 1));
});

test('settings: durations, sizes, percentages, windows and globs; bad values name the flag, variable or file line (exit 2 errors)', (t) => {
  t.is(parseDuration('45s'), 45);
  t.is(parseDuration('30m'), 1800);
  t.is(parseDuration('12h'), 43200);
  t.is(parseDuration('90d'), 90 * 86400);
  t.is(parseDuration('600'), 600);
  t.is(parseDuration('1w'), undefined);
  const cfg = loadConfig({ env: {}, flags: { diskHighWatermark: '80%', diskLowWatermark: '70%', archiveIdle: '90d', minArchiveSize: '500M', keepOnDisk: ['Music/**', '*.jpg'], promotePlays: '3', promoteContainerPlays: '4', promoteWindow: '12h', promoteVisitGap: '2h', premigrate: false, policyWindow: '22:00-06:00', policyInterval: '30m' } });
  t.deepEqual(cfg.policy, {
    highWatermark: { kind: 'percent', percent: 80 },
    lowWatermark: { kind: 'percent', percent: 70 },
    archiveIdle: 90 * 86400,
    minArchiveSize: 500 * MB,
    keepOnDisk: ['Music/**', '*.jpg'],
    promotePlays: 3,
    promoteContainerPlays: 4,
    promoteWindow: 43200,
    promoteVisitGap: 7200,
    premigrate: false,
    window: { start: 1320, end: 360 },
    interval: 1800,
  });
  const defaults = loadConfig({ env: {}, flags: {} }).policy;
  t.deepEqual(defaults, { archiveIdle: 0, minArchiveSize: 16 * MB, keepOnDisk: [], promotePlays: 0, promoteContainerPlays: 2, promoteWindow: 7 * 86400, promoteVisitGap: 4 * 3600, premigrate: true, interval: 3600 });
  t.deepEqual(loadConfig({ env: {}, flags: { diskHighWatermark: '2T' } }).policy.lowWatermark, { kind: 'bytes', bytes: 2 * 1024 ** 4 }, 'low defaults to high');
  const bad = (flags: Record<string, unknown>, re: RegExp, env: NodeJS.ProcessEnv = {}) => t.throws(() => loadConfig({ env, flags }), { instanceOf: ConfigError, message: re });
  bad({ archiveIdle: '3 weeks' }, /--archive-idle: bad value for archive_idle/);
  bad({ diskHighWatermark: '120%' }, /--disk-high-watermark/);
  bad({ policyWindow: '25:00-06:00' }, /--policy-window: .*HH:MM-HH:MM/);
  bad({ policyWindow: '10:00-10:00' }, /--policy-window: .*10:00-10:00 starts where it ends; for any time of day write 00:00-24:00/);
  bad({ policyWindow: '24:00-00:00' }, /starts where it ends/);
  t.deepEqual(loadConfig({ env: {}, flags: { policyWindow: '00:00-24:00' } }).policy.window, { start: 0, end: 0 }, 'all day');
  t.true(inWindow(parseWindow('00:00-24:00'), 600));
  bad({ keepOnDisk: ['/abs/**'] }, /--keep-on-disk/);
  bad({ diskHighWatermark: '70%', diskLowWatermark: '80%' }, /--disk-low-watermark: disk_low_watermark .* is above/);
  bad({ diskHighWatermark: '70%', diskLowWatermark: '1T' }, /must both be sizes or both percentages/);
  bad({ diskLowWatermark: '1T' }, /needs disk_high_watermark/);
  bad({}, /environment TAPEDECK_PROMOTE_WINDOW/, { TAPEDECK_PROMOTE_WINDOW: 'soon' });
  bad({ promoteContainerPlays: '-1' }, /--promote-container-plays/);
  t.is(loadConfig({ env: { TAPEDECK_PROMOTE_CONTAINER_PLAYS: '0' }, flags: {} }).policy.promoteContainerPlays, 0, 'off through the environment');
  t.false(loadConfig({ env: { TAPEDECK_PREMIGRATE: 'off' }, flags: {} }).policy.premigrate, 'premigrate off through the environment');
  bad({}, /TAPEDECK_PREMIGRATE/, { TAPEDECK_PREMIGRATE: 'sometimes' });
});

test("the README's example NAS configuration is valid and means what it says", (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const m = /Example for a NAS[^]*?```ini\n([^]*?)```/.exec(readme);
  t.truthy(m, 'example block found');
  const dir = mkdtempSync(join(tmpdir(), 'tapedeck-readme-conf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'tapedeck.conf');
  writeFileSync(file, m![1]);
  const cfg = loadConfig({ env: {}, flags: { config: file }, checkMediaDirs: false });
  t.deepEqual(cfg.policy.keepOnDisk, ['Music/**']);
  t.is(cfg.policy.archiveIdle, 90 * 86400);
  t.deepEqual(cfg.policy.highWatermark, { kind: 'percent', percent: 80 });
});

// container promotion (promote_container_plays): a season being watched from tape comes back whole
const season = (n: number, played: Record<number, number[]>, extra: Partial<PolicyItem> = {}) =>
  Array.from({ length: n }, (_, k) => {
    const recent = played[k + 1] ?? [];
    return item({ size: 100 * MB, parentId: 'season', relPath: `Show/S01E${k + 1}.mkv`, path: `/m/Show/S01E${k + 1}.mkv`, tier: 'tape', diskBytes: MB, cartridge: 'TD0003L9', block: 100 * (k + 1), recent, ...(recent.length ? { lastPlayed: Math.max(...recent) } : {}), ...extra });
  });
/** The seasons' cartridge (TD0003L9) is in a drive. */
const inDrive: Partial<PolicyState> = { loaded: ['TD0003L9'] };
const marks = (high: number, low = high) => ({ highWatermark: { kind: 'bytes' as const, bytes: high }, lowWatermark: { kind: 'bytes' as const, bytes: low } });

test('container promotion: N plays of a container\'s tape items within the window recall its remaining tape-only items, in play order; fewer, or older, do not', (t) => {
  const eps = season(4, { 1: [NOW - 2 * DAY], 2: [NOW - 1000] });
  // E4 is on disk and tape already: nothing to do for it
  eps[3] = { ...eps[3], tier: 'both', diskBytes: 100 * MB };
  const r = rules({ promoteContainerPlays: 2, ...marks(10_000 * MB) });
  // the season's cartridge is in a drive (a pass mounts none only for this rule: see the tests below)
  const plan = planPass(state(eps, inDrive), r);
  t.deepEqual(ids(plan), [eps[0].id, eps[1].id, eps[2].id], 'the rest of the season, E1 E2 E3 (play order)');
  t.true(plan.actions.every((a) => a.action === 'recall' && a.reason === 'container-plays' && a.containerPlays === 2 && a.group === 'season'));
  t.regex(plan.actions[0].detail, /its container was played 2 times within 7d \(promote_container_plays 2\)/);
  t.deepEqual(plan.cartridges, ['TD0003L9']);
  t.is(plan.mounts, 0, 'it is in a drive already');
  // below N: nothing
  t.deepEqual(planPass(state(eps, inDrive), { ...r, promoteContainerPlays: 3 }).actions, []);
  // a play outside the window does not count
  const old = season(3, { 1: [NOW - 8 * DAY], 2: [NOW - 1000] });
  t.deepEqual(planPass(state(old, inDrive), r).actions, []);
  t.deepEqual(ids(planPass(state(old, inDrive), { ...r, promoteWindow: 9 * 86400 })).length, 3, 'a longer window counts it');
  // plays of another container do not count for this one
  const other = item({ size: 100 * MB, parentId: 'other', tier: 'tape', diskBytes: MB, cartridge: 'TD0003L9', recent: [NOW - 1000, NOW - 2000], lastPlayed: NOW - 1000 });
  t.deepEqual(ids(planPass(state([...season(3, { 1: [NOW - 1000] }), other], inDrive), r)), [other.id], 'only the other container (2 plays) is promoted');
  // off (0), and inactive without a high watermark (nothing bounds what it may bring back)
  t.deepEqual(planPass(state(eps, inDrive), { ...r, promoteContainerPlays: 0 }).actions, []);
  t.deepEqual(planPass(state(eps, inDrive), rules({ promoteContainerPlays: 2 })).actions, []);
  // items an unfinished job recalls already are not planned again
  t.deepEqual(ids(planPass(state(eps, { pending: [eps[0].id], ...inDrive }), r)), [eps[1].id, eps[2].id]);
  // the plan text names the rule and the figures
  t.regex(renderPlan(plan), /recall +container-plays .*S01E1\.mkv\n +its container was played 2 times/);
});

test('container promotion respects the high watermark: colder items make room at a pass, never the container itself; the rest is skipped; a one-container plan (after a play) makes room only with items that have a tape copy', (t) => {
  const eps = season(3, { 1: [NOW - 1000, NOW - 2000] });
  const cold = item({ size: 150 * MB, parentId: 'films', lastPlayed: NOW - 50 * DAY });
  const warm = item({ size: 150 * MB, parentId: 'films', lastPlayed: NOW - 10 }); // played after the season: not colder
  // disk: 3 stubs + 300 = 303 MB. Each recall adds 99 MB.
  const r = rules({ promoteContainerPlays: 2, ...marks(500 * MB, 400 * MB) });
  // 303 + 99 = 402 (E1), + 99 = 501 > 500: cold makes room (-149) for E2, then E3 fits (451); the
  // season's cartridge and the pool cartridge cold is written to are both in a drive
  const plan = planPass(state([...eps, cold, warm], { loaded: ['TD0003L9', 'TD0001L9'] }), r);
  t.deepEqual(plan.actions.map((a) => [a.id, a.action, a.reason]), [
    [cold.id, 'archive', 'make-room'],
    [eps[0].id, 'recall', 'container-plays'],
    [eps[1].id, 'recall', 'container-plays'],
    [eps[2].id, 'recall', 'container-plays'],
  ]);
  t.true(plan.usage[0].after <= 500 * MB, `usage after ${plan.usage[0].after}`);
  // without a colder item and a lower mark: only what fits, the rest is skipped (and listed)
  const tight = planPass(state([...eps, warm], inDrive), rules({ promoteContainerPlays: 2, ...marks(360 * MB, 300 * MB) }));
  // 3 + 150 = 153; +99 = 252 (E1), +99 = 351 (E2), +99 = 450 > 360: E3 skipped (warm is not colder)
  t.deepEqual(ids(tight), [eps[0].id, eps[1].id]);
  t.is(tight.skipped.length, 1);
  t.is(tight.skipped[0].id, eps[2].id);
  t.regex(tight.skipped[0].reason, /its container was played 2 times within 7d, but recalling it would add \d+ bytes to disk .* high watermark .* no colder item can make room/);
  t.true(tight.usage[0].after <= 360 * MB);
  // the one-container plan of an immediate promotion: the cold item has no tape copy (archiving it
  // would write a cartridge): it does not make room, what does not fit waits for the pass
  const now = planPass(state([...eps, cold, warm]), r, { container: 'season' });
  t.deepEqual(now.actions.map((a) => [a.id, a.action]), [[eps[0].id, 'recall']]);
  t.regex(now.skipped[0].reason, /no colder item with a tape copy \(archived now without a mount\) can make room; the next pass may/);
  // the same item with a verified tape copy (tier both) makes room: a stub is cut, nothing mounted
  const coldBoth = { ...cold, tier: 'both' as const, cartridge: 'TD0001L9' };
  const now2 = planPass(state([...eps, coldBoth, warm]), r, { container: 'season' });
  t.deepEqual(now2.actions.map((a) => [a.id, a.action, a.reason]), [[coldBoth.id, 'archive', 'make-room'], ...eps.map((e) => [e.id, 'recall', 'container-plays'])]);
  // and it plans nothing of other containers, nor any archive even above the high mark
  const over = planPass(state([...eps, cold, warm, item({ size: 400 * MB, parentId: 'x', added: NOW - 500 * DAY })]), r, { container: 'season' });
  t.deepEqual(over.actions, []);
});

// issue 9 (bench:policy): promotions evicted each other: a container's make-room archive cut the
// stubs of another hot container, which came back through a play mount and evicted it in turn
const promoted = (parentId: string, plays: number, last: number) =>
  [0, 1].map((k) => item({ size: 150 * MB, parentId, tier: 'both', cartridge: 'TD0001L9', relPath: `${parentId}/${k}.mkv`, path: `/m/${parentId}/${k}.mkv`, recent: Array.from({ length: k === 0 ? plays : 0 }, (_, j) => last - j * 1000), lastPlayed: last }));

test('container promotion: a container played more often within the window is not evicted to make room for a colder one; that promotion is skipped and says why', (t) => {
  // the season: 2 plays, the last just now; the other container (promoted before, tier both): 3
  // plays, the last 2 days ago (colder by its last play). Disk: 3 stubs + 300 = 303 MB; each
  // recall adds 99 MB: E1 fits (402), E2 would need room (501 > 500)
  const r = rules({ promoteContainerPlays: 2, ...marks(500 * MB, 400 * MB) });
  for (const plays of [3, 4]) {
    const eps = season(3, { 1: [NOW - 1000, NOW - 2000] });
    const hot = promoted('hot', plays, NOW - 2 * DAY);
    for (const scope of [undefined, { container: 'season' }]) {
      const plan = planPass(state([...eps, ...hot], inDrive), r, scope);
      t.deepEqual(plan.actions.map((a) => [a.id, a.action, a.reason]), [[eps[0].id, 'recall', 'container-plays']], `${plays} plays, ${scope ? 'after a play' : 'pass'}: nothing of the other container archived`);
      t.deepEqual(plan.skipped.map((k) => k.id), [eps[1].id, eps[2].id]);
      for (const k of plan.skipped) t.regex(k.reason, /its container was played 2 times within 7d, but .* high watermark .*making room would archive items of a container visited more often within 28d \(its container: 1 visit\(s\)\), or as often and played more often within 7d .*not promoted/);
      t.true(plan.usage[0].after <= 500 * MB);
    }
  }
  // a colder container in the way is still archived first; the one as hot is not
  const eps = season(3, { 1: [NOW - 1000, NOW - 2000] });
  const cold = item({ size: 150 * MB, parentId: 'films', tier: 'both', cartridge: 'TD0001L9', lastPlayed: NOW - 50 * DAY });
  const plan = planPass(state([...eps, ...promoted('hot', 3, NOW - 2 * DAY), cold], inDrive), rules({ promoteContainerPlays: 2, ...marks(650 * MB, 550 * MB) }));
  t.deepEqual(plan.actions.map((a) => [a.id, a.action]), [[cold.id, 'archive'], ...eps.map((e) => [e.id, 'recall'])]);
});

test('container promotion: a container played less often, or as often, within the window is evicted to make room for one played last', (t) => {
  const r = rules({ promoteContainerPlays: 2, ...marks(500 * MB, 400 * MB) });
  // the season: 3 plays; the other container: 2 (or 3) plays, the last 2 days ago
  const eps = season(3, { 1: [NOW - 1000, NOW - 2000], 2: [NOW - 3000] });
  for (const [plays, scope] of [2, 3].flatMap((p) => [undefined, { container: 'season' }].map((sc) => [p, sc] as const))) {
    const warm = promoted('warm', plays, NOW - 2 * DAY);
    const plan = planPass(state([...eps, ...warm], inDrive), r, scope);
    // 303 + 99 = 402 (E1); E2: 501 > 500: a warm item (-149) makes room -> 253 + 99 = 352; E3 451
    const archived = plan.actions.filter((a) => a.action === 'archive');
    t.is(archived.length, 1);
    t.true(archived.every((a) => a.reason === 'make-room' && a.group === 'warm'));
    t.deepEqual(plan.actions.filter((a) => a.action === 'recall').map((a) => a.id), eps.map((e) => e.id), 'the whole season is recalled');
    t.deepEqual(plan.skipped, []);
    t.true(plan.usage[0].after <= 500 * MB);
  }
});

test('a pass mounts no cartridge only for container-plays recalls: they read from a cartridge in a drive or one the pass mounts anyway (promotion recall, archive write), the rest is skipped and says why', (t) => {
  const eps = season(3, { 1: [NOW - 2000], 2: [NOW - 1000] });
  const r = rules({ promoteContainerPlays: 2, promotePlays: 2, ...marks(10_000 * MB) });
  const why = /its container was played 2 times within 7d, but its cartridge TD0003L9 is not in a drive and this pass mounts it for nothing else: waits for its cartridge to be loaded by a play/;
  // TD0003L9 is not in a drive and nothing else of the pass reads or writes it
  const alone = planPass(state(eps), r);
  t.deepEqual(alone.actions, []);
  t.deepEqual(alone.skipped.map((s) => s.id), eps.map((e) => e.id));
  t.regex(alone.skipped[0].reason, why);
  t.deepEqual([alone.cartridges, alone.mounts], [[], 0]);
  t.regex(renderPlan(alone), /skipped recall .*S01E2\.mkv: its container was played 2 times .*waits for its cartridge to be loaded by a play/);
  // another cartridge in a drive does not help; the plan of one container right after a play is not held to it (its job reads only from a loaded cartridge)
  t.deepEqual(planPass(state(eps, { loaded: ['TD0009L9'] }), r).actions, []);
  t.deepEqual(ids(planPass(state(eps), r, { container: 'season' })), eps.map((e) => e.id));
  // in a drive: taken, no mount
  const loaded = planPass(state(eps, inDrive), r);
  t.deepEqual(ids(loaded), eps.map((e) => e.id));
  t.deepEqual([loaded.cartridges, loaded.mounts], [['TD0003L9'], 0]);
  // a promotion (promote_plays) of another item on TD0003L9 mounts it anyway: they ride on it, one mount
  const film = item({ size: 100 * MB, parentId: 'films', tier: 'tape', diskBytes: MB, cartridge: 'TD0003L9', block: 5, recent: [NOW - 5000, NOW - 6000], lastPlayed: NOW - 5000 });
  const riding = planPass(state([...eps, film]), r);
  t.deepEqual(riding.actions.map((a) => [a.id, a.reason]), [[film.id, 'promotion'], ...eps.map((e) => [e.id, 'container-plays'])]);
  t.deepEqual([riding.cartridges, riding.mounts, riding.skipped], [['TD0003L9'], 1, []]);
  // so does an archive write to it (archive_idle: an old film goes to the pool cartridge TD0003L9)
  const old = item({ size: 100 * MB, parentId: 'old', added: NOW - 900 * DAY });
  const written = planPass(state([...eps, old], { pool: [{ label: 'TD0003L9', freeBytes: 1e12 }] }), { ...r, archiveIdle: 365 * 86400 });
  t.deepEqual(written.actions.map((a) => [a.id, a.action, a.cartridge]), [[old.id, 'archive', 'TD0003L9'], ...eps.map((e) => [e.id, 'recall', 'TD0003L9'])]);
  t.is(written.mounts, 1);
  // written to another cartridge (TD0001L9): no ride
  const elsewhere = planPass(state([...eps, old]), { ...r, archiveIdle: 365 * 86400 });
  t.deepEqual(ids(elsewhere), [old.id]);
  t.is(elsewhere.skipped.length, 3);
  // room made by writing an item without a tape copy counts as a mount of its own: refused unless that cartridge is mounted anyway
  const cold = item({ size: 150 * MB, parentId: 'films', lastPlayed: NOW - 50 * DAY });
  const tightMarks = rules({ promoteContainerPlays: 2, ...marks(350 * MB, 300 * MB) });
  // disk: 3 stubs + 150 = 153; + 99 = 252 (E1), + 99 = 351 > 350: E2 needs cold to make room
  const noWrite = planPass(state([...eps, cold], inDrive), tightMarks);
  t.deepEqual(ids(noWrite), [eps[0].id]);
  t.regex(noWrite.skipped[0].reason, /the colder items that would make room for it have no tape copy, and writing them would mount TD0001L9 for nothing else/);
  const withWrite = planPass(state([...eps, cold], { loaded: ['TD0003L9', 'TD0001L9'] }), tightMarks);
  t.deepEqual(withWrite.actions.map((a) => [a.id, a.reason]), [[cold.id, 'make-room'], ...eps.map((e) => [e.id, 'container-plays'])]);
  t.is(withWrite.mounts, 0);
});

test('a hot container\'s items count as warm as its last play: the watermark pass archives other items first', (t) => {
  // E1 played (on disk and tape, promoted), E2 recalled by the container rule and never played yet
  const e1 = item({ size: 100 * MB, parentId: 'season', tier: 'both', diskBytes: 100 * MB, cartridge: 'TD0003L9', recent: [NOW - 1000, NOW - 3000], lastPlayed: NOW - 1000, added: NOW - 300 * DAY });
  const e2 = item({ size: 100 * MB, parentId: 'season', tier: 'both', diskBytes: 100 * MB, cartridge: 'TD0003L9', added: NOW - 300 * DAY });
  const film = item({ size: 100 * MB, parentId: 'films', lastPlayed: NOW - 20 * DAY });
  const wm = marks(250 * MB, 210 * MB);
  // with the rule on, the unplayed episode is as warm as the season's last play: the film goes
  t.deepEqual(ids(planPass(state([e1, e2, film]), rules({ promoteContainerPlays: 2, ...wm }))), [film.id]);
  // with it off, the never-played episode is the coldest (added 300 days ago)
  t.deepEqual(ids(planPass(state([e1, e2, film]), rules({ promoteContainerPlays: 0, ...wm }))), [e2.id]);
});

test('items an unfinished job recalls count against the high watermark: two containers promoted one after the other never push usage over it together', (t) => {
  const a = season(2, { 1: [NOW - 1000, NOW - 2000] }, { parentId: 'a' });
  const b = season(2, { 1: [NOW - 1000, NOW - 2000] }, { parentId: 'b' });
  // 4 stubs = 4 MB; each recall adds 99 MB; room for one container (2 x 99) under 210 MB
  const r = rules({ promoteContainerPlays: 2, ...marks(210 * MB) });
  t.deepEqual(ids(planPass(state([...a, ...b]), r, { container: 'b' })), b.map((i) => i.id), 'alone, b fits');
  // a's recall job is queued, not done: b must wait
  const plan = planPass(state([...a, ...b], { pending: a.map((i) => i.id) }), r, { container: 'b' });
  t.deepEqual(plan.actions, []);
  t.is(plan.skipped.length, 2);
  t.regex(plan.skipped[0].reason, /high watermark/);
});

// issue 9 (bench:policy): one-off sessions evicted the seasons watched every few days: a session of
// three episodes counted three plays, more than a season watched on two evenings that week
const H = 3600_000;
test('container visits: plays less than promote_visit_gap after the one before are one visit; counted over the history only', (t) => {
  const c = (parentId: string, recent: number[]) => item({ size: MB, parentId, recent });
  // back to back (45 min apart, chained past 4 h in all): one visit; 5 h later: another
  const binge = c('a', [NOW - 10 * H, NOW - 9.25 * H, NOW - 8.5 * H, NOW - 7.75 * H, NOW - 7 * H]);
  const other = c('a', [NOW - 2 * H]);
  const days = c('b', [NOW - 3 * DAY, NOW - DAY, NOW - DAY + 1000, NOW - 40 * DAY, NOW + 1000]);
  const v = containerVisits([binge, other, days], NOW, 28 * DAY, 4 * 3600_000);
  t.deepEqual([...v].sort(), [['a', 2], ['b', 2]], 'plays older than the history and in the future do not count');
  // gap 0: every play is a visit
  t.deepEqual(containerVisits([binge], NOW, 28 * DAY, 0).get('a'), 5);
});

test('container promotion: a container visited on more days is not evicted for one played in a single session (more plays); one visited as often but played less is', (t) => {
  const r = rules({ promoteContainerPlays: 2, ...marks(500 * MB, 400 * MB) });
  // the season: 3 episodes just now, one session (1 visit, 3 plays). The other container (promoted
  // before, tier both, colder by its last play): 2 plays on two evenings (2 visits, 2 plays).
  // Disk: 3 stubs + 300 = 303 MB; each recall adds 99 MB: E1 fits (402), E2 would need room
  const binge = () => season(3, { 1: [NOW - 3 * H], 2: [NOW - 2 * H], 3: [NOW - H] });
  const evenings = (parentId: string, at: number[]) => [0, 1].map((k) => item({ size: 150 * MB, parentId, tier: 'both', cartridge: 'TD0001L9', relPath: `${parentId}/${k}.mkv`, path: `/m/${parentId}/${k}.mkv`, recent: k === 0 ? at : [], lastPlayed: Math.max(...at) }));
  for (const scope of [undefined, { container: 'season' }]) {
    const eps = binge();
    const regular = evenings('regular', [NOW - 3 * DAY, NOW - 2 * DAY]);
    const plan = planPass(state([...eps, ...regular], inDrive), r, scope);
    t.deepEqual(plan.actions.map((a) => [a.id, a.action, a.reason]), [[eps[0].id, 'recall', 'container-plays']], `${scope ? 'after a play' : 'pass'}: the regular container is spared`);
    t.deepEqual(plan.skipped.map((k) => k.id), [eps[1].id, eps[2].id]);
    t.regex(plan.skipped[0].reason, /played 3 times within 7d, but .*visited more often within 28d \(its container: 1 visit\(s\)\).*not promoted rather than evicting a hotter container/);
    // the same two plays in one evening (1 visit, fewer plays): evicted to make room, the season comes back whole
    const once = evenings('once', [NOW - 2 * DAY - H, NOW - 2 * DAY]);
    const plan2 = planPass(state([...binge(), ...once], inDrive), r, scope);
    t.deepEqual(plan2.actions.filter((a) => a.action === 'archive').map((a) => [a.group, a.reason]), [['once', 'make-room']]);
    t.is(plan2.actions.filter((a) => a.action === 'recall').length, 3);
    // visits older than the history (4 promote_windows) do not count: the old regular is evicted
    const old = evenings('old', [NOW - 30 * DAY, NOW - 29 * DAY]);
    t.is(planPass(state([...binge(), ...old], inDrive), r, scope).actions.filter((a) => a.action === 'archive').length, 1);
  }
  // promote_visit_gap 0: every play is a visit, the season (3) outweighs the regular (2): as before
  const eps = binge();
  const plan = planPass(state([...eps, ...evenings('regular', [NOW - 3 * DAY, NOW - 2 * DAY])], inDrive), { ...r, promoteVisitGap: 0 });
  t.is(plan.actions.filter((a) => a.action === 'recall').length, 3);
});

test('the usage figures of a plan run in the order its jobs run: collocation reorders the archives chosen coldest first, each action starts where the one before ended', (t) => {
  // chosen coldest first: E3 (oldest), E1, E2; written in play order E1, E2, E3
  const ep = (n: number, age: number) => item({ size: 100 * MB, parentId: 'season', relPath: `Show/S01E${n}.mkv`, path: `/m/Show/S01E${n}.mkv`, added: NOW - age * DAY });
  const items = [ep(1, 300), ep(2, 200), ep(3, 400), item({ size: 100 * MB, tier: 'tape', diskBytes: MB, parentId: 'hot', recent: [NOW - DAY, NOW - 2 * DAY], lastPlayed: NOW - DAY, cartridge: 'TD0001L9' })];
  const plan = planPass(state(items, { loaded: ['TD0001L9'] }), rules({ highWatermark: { kind: 'bytes', bytes: 250 * MB }, lowWatermark: { kind: 'bytes', bytes: 150 * MB }, promotePlays: 2 }));
  // 301 MB: E3 (the oldest) -> 202, E1 -> 103 <= the low mark; then the promotion -> 202 <= the high mark
  t.deepEqual(plan.actions.map((a) => [a.path, a.action]), [['/m/Show/S01E1.mkv', 'archive'], ['/m/Show/S01E3.mkv', 'archive'], [items[3]!.path, 'recall']]);
  const u = plan.usage[0]!;
  t.is(plan.actions[0]!.usageBefore, u.before);
  for (let k = 1; k < plan.actions.length; k++) t.is(plan.actions[k]!.usageBefore, plan.actions[k - 1]!.usageAfter, `action ${k} starts where ${k - 1} ended`);
  t.is(plan.actions.at(-1)!.usageAfter, u.after);
  t.deepEqual(plan.actions.map((a) => a.usageAfter), [202 * MB, 103 * MB, 202 * MB]);
  t.regex(plan.actions[0]!.detail, /while disk usage is above the low watermark \(157286400 bytes\)/);
});

test('a plan that cannot bring usage under the high mark says so (why nothing else is archived)', (t) => {
  const kept = item({ size: 300 * MB, relPath: 'Music/a.flac', path: '/m/Music/a.flac' });
  const small = item({ size: 10 * MB });
  const plan = planPass(state([kept, small]), rules({ highWatermark: { kind: 'bytes', bytes: 250 * MB }, lowWatermark: { kind: 'bytes', bytes: 150 * MB }, keepOnDisk: ['Music/**'] }));
  t.deepEqual(plan.actions, []);
  const text = renderPlan(plan);
  t.regex(text, /Disk usage catalog: 310 MiB -> 310 MiB \(high 250 MiB, low 150 MiB\)\n +stays above the high watermark: nothing else there can be archived/);
  t.regex(text, /Nothing to do\./);
  t.notRegex(renderPlan(planPass(state([kept, small]), rules({ highWatermark: { kind: 'bytes', bytes: 350 * MB } }))), /stays above/);
});

test('premigration: when stub cuts could free less than the watermark band, a pass copies the coldest disk-only items to tape keeping their disk copies; a promotion right after a play then makes room with them', (t) => {
  // season E1-E3 on tape (100 MB each, 1 MB stubs), played twice just now: hot
  const eps = season(3, { 1: [NOW - 2000], 2: [NOW - 1000] });
  const a = item({ size: 300 * MB, parentId: 'old1', added: NOW - 300 * DAY }); // never played: coldest
  const b = item({ size: 300 * MB, parentId: 'old2', lastPlayed: NOW - 30 * DAY, recent: [NOW - 30 * DAY] });
  const c = item({ size: 300 * MB, parentId: 'new', lastPlayed: NOW - DAY, recent: [NOW - DAY] });
  // 903 MB on disk; marks 1000/800 MB: under the high mark, band 200 MB
  const r = rules({ promoteContainerPlays: 2, premigrate: true, ...marks(1000 * MB, 800 * MB) });
  const after = [...eps, a, b, c];
  // right after the play (one-container plan): room only from tier both items, and there are none
  const before = planPass(state(after, inDrive), r, { container: 'season' });
  t.deepEqual(before.actions, []);
  t.regex(before.skipped[0].reason, /no colder item with a tape copy/);
  // the pass: no watermark work (903 <= 1000), the season's cartridge is not loaded; nothing a stub
  // cut could free: the coldest disk-only items are copied until 2 x 200 MB could be (a 299, b 598)
  const pass = planPass(state(after), r);
  t.deepEqual(ids(pass), [a.id, b.id]);
  t.true(pass.actions.every((x) => x.action === 'archive' && x.reason === 'premigrate' && x.keepDisk === true && x.diskDelta === 0));
  t.regex(pass.actions[0].detail, /copied to tape, its disk copy kept/);
  t.like(pass.usage[0], { before: 903 * MB, after: 903 * MB });
  t.is(pass.mounts, 1, 'one write mount');
  t.deepEqual(pass.cartridges, ['TD0001L9']);
  // off: the setting, or no container promotion
  t.deepEqual(planPass(state(after), { ...r, premigrate: false }).actions, []);
  t.deepEqual(planPass(state(after), { ...r, promoteContainerPlays: 0 }).actions, []);
  // enough releasable already (a tier both item freeing 299 MB >= 200): nothing
  const copied = (i: PolicyItem): PolicyItem => ({ ...i, tier: 'both', cartridge: 'TD0001L9', block: 5 });
  t.deepEqual(planPass(state([...eps, copied(a), b, c]), r).actions, []);
  // once the pass's job ran (a and b tier both), the play's one-container plan recalls the season,
  // cutting a's stub to make room (no mount: the season's cartridge is in the drive the play loaded)
  const now = planPass(state([...eps, copied(a), copied(b), c], inDrive), r, { container: 'season' });
  t.deepEqual(ids(now, 'archive'), [a.id]);
  t.is(now.actions.find((x) => x.action === 'archive')!.reason, 'make-room');
  t.deepEqual(ids(now, 'recall'), eps.map((e) => e.id));
  t.is(now.mounts, 0);
});
