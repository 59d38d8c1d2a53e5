// Operator commands of the tape tier:
//
//   tapedeck tape ls                       drives, slots, cartridges (pool, used/free, items), offline, needed
//   tapedeck tape label [LABEL...]         add cartridges to the archive pool (virtual: create them)
//   tapedeck tape export LABEL             move a cartridge out of the library
//   tapedeck tape import LABEL...          bring it back and rebuild catalog locations from it / dock foreign tars
//   tapedeck archive TARGET... [--keep]    archive items (object IDs, container IDs, paths)
//   tapedeck recall TARGET...              bring archived items back to disk
//   tapedeck jobs [ID] [--items] [--resume]
//
// Every command takes --data/--config and the tape settings, and --json for a
// machine-readable result on stdout. When the catalog can be opened (no server
// running) the command opens it and the tape library itself; when a running
// server holds it, the command goes to the server's control socket. Either way
// long operations show a progress bar on a terminal.
//
// Exit codes: 0 ok; 1 failure (I/O, verification); 2 bad input (unknown object
// ID, path, label; bad flags); 3 resource problem (cartridge offline, no room in
// the archive pool, no free drive, library or catalog busy); 130 interrupted.

import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync } from 'node:fs';
import { existingDataDir, makeDataDir } from '../util/data-dir.js';
import { join, resolve } from 'node:path';
import { addSettingFlags, config as loadCliConfig, TAPE_LIBRARY_KEYS } from '../commands/common.js';
import type { Config, FlagValues } from '../config.js';
import { Catalog } from '../catalog/catalog.js';
import { LevelStore } from '../catalog/store.js';
import { createLogger } from '../log.js';
import { callerDir, RELATIVE_PATHS_HELP } from '../util/paths.js';
import { formatBytes } from '../util/units.js';
import type { TapeLibrary } from '../tape/types.js';
import { answeringServer, ControlClient } from '../control/client.js';
import { SOCKET_NAME } from '../control/protocol.js';
import { catalogHint } from '../control/registry.js';
import { ArchiveError, EXIT_CODES, exitCodeOf, messageOf } from './errors.js';
import { isTerminal, type JobItem, type JobKind, type JobOptions, type JobRecord } from './jobs.js';
import { openConfiguredLibrary, unavailableLibrary } from './library.js';
import { ArchiveService, type LabelResult, type TapeStatus } from './service.js';

export const TAPE_SETTING_KEYS = [...TAPE_LIBRARY_KEYS, 'head_stub_seconds', 'head_stub_min', 'head_stub_tail'];

/** What the commands run against: the catalog opened here, or a running server. */
export interface Backend {
  readonly mode: 'direct' | 'server';
  /** Direct mode: the service over the catalog opened here. */
  readonly service?: ArchiveService;
  /** Server mode: the server's control socket. */
  readonly control?: ControlClient;
  submit(kind: JobKind, targets: string[], opts?: JobOptions): Promise<JobRecord>;
  /** Run (direct) or watch (server) a job to its end. */
  /** Follows a job (as submit or list returned it) until it ends. */
  follow(job: JobRecord, onJob: (j: JobRecord) => void): Promise<JobRecord>;
  list(): Promise<JobRecord[]>;
  get(id: string): Promise<JobRecord | undefined>;
  items(id: string): Promise<JobItem[]>;
  tapeStatus(): Promise<TapeStatus>;
  label(labels: string[], opts: { force?: boolean }): Promise<LabelResult[]>;
  exportCartridge(label: string): Promise<{ label: string; offline: true }>;
  /** Finish interrupted jobs (direct mode; a server does that itself). */
  resume(onJob?: (j: JobRecord) => void): Promise<void>;
  /** Ctrl-C: stop at the next safe point. */
  interrupt(): Promise<void>;
  close(): Promise<void>;
}

class DirectBackend implements Backend {
  readonly mode = 'direct' as const;
  constructor(
    readonly service: ArchiveService,
    private readonly catalog: Catalog,
    private readonly library: TapeLibrary,
  ) {}
  submit(kind: JobKind, targets: string[], opts?: JobOptions) {
    return this.service.submit(kind, targets, opts);
  }
  async follow(job: JobRecord, onJob: (j: JobRecord) => void) {
    const id = job.id;
    const l = (j: JobRecord) => {
      if (j.id === id) onJob(j);
    };
    this.service.on('job', l);
    try {
      return await this.service.run(id);
    } finally {
      this.service.off('job', l);
    }
  }
  list() {
    return this.service.list();
  }
  get(id: string) {
    return this.service.get(id);
  }
  items(id: string) {
    return this.service.items(id);
  }
  tapeStatus() {
    return this.service.tapeStatus();
  }
  label(labels: string[], opts: { force?: boolean }) {
    return this.service.label(labels, opts);
  }
  exportCartridge(label: string) {
    return this.service.exportCartridge(label);
  }
  async resume(onJob?: (j: JobRecord) => void) {
    const l = (j: JobRecord) => onJob?.(j);
    this.service.on('job', l);
    try {
      await this.service.resume();
    } finally {
      this.service.off('job', l);
    }
  }
  async interrupt() {
    await this.service.stop();
  }
  async close() {
    await this.library.close().catch(() => undefined);
    await this.catalog.close().catch(() => undefined);
  }
}

class ServerBackend implements Backend {
  readonly mode = 'server' as const;
  private abort = new AbortController();
  constructor(private readonly client: ControlClient) {}
  get control(): ControlClient {
    return this.client;
  }
  submit(kind: JobKind, targets: string[], opts?: JobOptions) {
    return this.client.submit(kind, targets, opts);
  }
  follow(job: JobRecord, onJob: (j: JobRecord) => void) {
    return this.client.watch(job.id, onJob, this.abort.signal, job);
  }
  list() {
    return this.client.list();
  }
  async get(id: string) {
    try {
      return await this.client.get(id);
    } catch (err) {
      if (err instanceof ArchiveError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }
  items(id: string) {
    return this.client.items(id);
  }
  tapeStatus() {
    return this.client.tapeStatus();
  }
  label(labels: string[], opts: { force?: boolean }) {
    return this.client.label(labels, opts);
  }
  exportCartridge(label: string) {
    return this.client.exportCartridge(label);
  }
  async resume() {
    // the server resumes interrupted jobs itself
  }
  async interrupt() {
    this.abort.abort();
  }
  async close() {}
}

/**
 * `libraryOptional` (job listings): a library that cannot be opened only fails the commands
 * that need it. `readOnly` (ls, policy plan, jobs): the data directory must exist (a mistyped
 * --data is an error, not a new empty catalog).
 */
export interface BackendOptions {
  libraryOptional?: boolean;
  readOnly?: boolean;
}

/** Open the catalog and library here, or fall back to the running server's control socket. */
export async function openBackend(cfg: Config, opts: BackendOptions = {}): Promise<Backend> {
  if (opts.readOnly) await existingDataDir(cfg.dataDir);
  else await makeDataDir(cfg.dataDir);
  // a server that answers holds the catalog: to it first (opening the catalog while it reopens
  // it would take the catalog away from it)
  const server = await answeringServer(join(cfg.dataDir, SOCKET_NAME));
  if (server) return new ServerBackend(server);
  const catalog = new Catalog(new LevelStore(join(cfg.dataDir, 'catalog'), { cacheBytes: cfg.catalogCache }));
  try {
    await catalog.open();
  } catch (err) {
    const msg = messageOf(err);
    if (!/lock/i.test(msg)) throw err;
    const sock = join(cfg.dataDir, SOCKET_NAME);
    if (!existsSync(sock)) throw new ArchiveError('BUSY', `${msg}; another process holds the catalog and there is no control socket at ${sock}`);
    const client = new ControlClient(sock);
    await client.ping();
    return new ServerBackend(client);
  }
  let library: TapeLibrary;
  try {
    library = await openConfiguredLibrary(cfg);
  } catch (err) {
    if (!opts.libraryOptional) {
      await catalog.close().catch(() => undefined);
      throw err;
    }
    library = unavailableLibrary(err as Error);
  }
  // Logs go to stderr (stdout carries --json results); the default level only shows errors.
  const log = createLogger(cfg.logLevel === 'info' ? 'error' : cfg.logLevel, 'tapedeck', { toStderr: true });
  return new DirectBackend(new ArchiveService({ catalog, library, config: cfg, log }), catalog, library);
}

// --- output -----------------------------------------------------------------------------

const out = (s: string) => process.stdout.write(s + '\n');
const json = (v: unknown) => process.stdout.write(JSON.stringify(v) + '\n');

/** Progress display of one job: a bar on a terminal, a final line otherwise. */
export class JobProgress {
  private bar: cliProgress.SingleBar | undefined;
  private started = false;
  constructor(private readonly quiet: boolean) {}

  update(j: JobRecord): void {
    if (this.quiet || !process.stderr.isTTY) return;
    const p = j.progress;
    const payload = { kind: j.kind, items: `${p.itemsDone}/${p.itemsTotal} items`, bytes: progressBytes(j), activity: j.activity ?? j.state };
    if (!this.started) {
      this.bar = new cliProgress.SingleBar(
        { format: '{kind} |{bar}| {percentage}% | {items} | {bytes} | {activity}', stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 20 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(1000, barValue(j), payload);
      this.started = true;
      return;
    }
    this.bar!.update(barValue(j), payload);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

/** Per mille of a job's work: an archive's write and verify passes count half each. */
function barValue(j: JobRecord): number {
  const p = j.progress;
  if (!(p.bytesTotal > 0) || j.kind === 'import') return p.itemsTotal > 0 ? Math.round((1000 * p.itemsDone) / p.itemsTotal) : 0;
  const f = p.bytesWritten !== undefined ? (p.bytesWritten + p.bytesDone) / (2 * p.bytesTotal) : p.bytesDone / p.bytesTotal;
  return Math.round(1000 * Math.min(1, Math.max(0, f)));
}

/** "648 KiB of 648 KiB" (item bytes), or for an archive "… written, … verified". */
export function progressBytes(j: JobRecord): string {
  const p = j.progress;
  if (j.kind === 'import') return `${p.bytesDone} of ${p.bytesTotal} index entries`;
  if (p.bytesWritten !== undefined) return `${formatBytes(p.bytesWritten)} of ${formatBytes(p.bytesTotal)} written, ${formatBytes(p.bytesDone)} verified`;
  return `${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}`;
}

/** One-line (plus skipped lines) outcome of a job for the text output. */
export function summary(j: JobRecord): string {
  const r = j.result ?? {};
  const p = j.progress;
  // a job that stopped with an error has no per-item counts: not "0 failed"
  if (j.state === 'failed' && !j.result) return `${j.kind} ${j.id}: failed after ${p.itemsDone} of ${p.itemsTotal} ${j.kind === 'import' ? 'cartridge(s)' : 'item(s)'} (the reason follows on stderr)`;
  if (j.kind === 'archive') return `archive ${j.id}: ${j.state}: ${r.archived ?? 0} archived${r.reused ? ` (${r.reused} reused a verified tape copy)` : ''}, ${r.skipped ?? 0} skipped, ${r.failed ?? 0} failed${Array.isArray(r.cartridges) && r.cartridges.length ? ` on ${r.cartridges.join(', ')}` : ''}`;
  if (j.kind === 'recall') return `recall ${j.id}: ${j.state}: ${r.recalled ?? 0} recalled, ${r.skipped ?? 0} already on disk, ${r.failed ?? 0} failed${Array.isArray(r.cartridges) && r.cartridges.length ? ` from ${r.cartridges.join(', ')}` : ''}`;
  const carts = (r.cartridges as { label: string; attached: number; recreated: number; docked: number; unchanged: number; pool: boolean; skipped?: { path: string; reason: string }[] }[] | undefined) ?? [];
  const parts = carts.map(
    (c) =>
      `${c.label}: ${c.attached} located, ${c.recreated} recreated, ${c.docked} docked, ${c.unchanged} unchanged${c.skipped?.length ? `, ${c.skipped.length} skipped` : ''}${c.pool ? ' (archive pool)' : ''}`,
  );
  // what was left out, and why, one line each (--json has the same list)
  const skipped = carts.flatMap((c) => (c.skipped ?? []).map((x) => `\n  skipped ${c.label} ${x.path}: ${x.reason}`));
  return `import ${j.id}: ${j.state}${parts.length ? ': ' + parts.join('; ') : ''} (${p.itemsDone}/${p.itemsTotal} cartridges)${skipped.join('')}`;
}

function renderStatus(s: TapeStatus): string {
  const lines: string[] = [];
  lines.push(`Library: ${s.backend}, ${s.drives.length} drive(s), ${s.slots.filter((x) => !x.importExport).length} slot(s)`);
  lines.push('Drives:');
  for (const d of s.drives) lines.push(`  ${d.name.padEnd(10)} ${d.loaded ? (d.label ?? '?').padEnd(10) : '(empty)   '} ${d.online ? (d.loaded ? (d.ready ? 'ready' : 'not ready') : '') : 'OFFLINE'}${d.block !== undefined && d.loaded ? ` at block ${d.block}` : ''}`);
  lines.push('Cartridges:');
  lines.push(`  ${'LABEL'.padEnd(10)} ${'WHERE'.padEnd(10)} ${'POOL'.padEnd(5)} ${'USED'.padStart(9)} ${'FREE'.padStart(9)} ${'ITEMS'.padStart(6)}`);
  for (const c of s.cartridges) {
    const where = c.where === 'slot' ? `slot ${c.slot}` : c.where === 'drive' ? `drive ${c.drive}` : c.where === 'ie' ? `mail ${c.slot}` : c.where;
    const flags = [c.full ? 'full' : '', c.needed ? 'NEEDED' : ''].filter(Boolean).join(' ');
    lines.push(`  ${c.label.padEnd(10)} ${where.padEnd(10)} ${(c.pool ? 'yes' : 'no').padEnd(5)} ${formatBytes(c.usedBytes).padStart(9)} ${formatBytes(c.freeBytes).padStart(9)} ${String(c.items).padStart(6)}${flags ? '  ' + flags : ''}`);
  }
  if (s.cartridges.length === 0) lines.push('  (none: add one with `tapedeck tape label`)');
  const free = s.slots.filter((x) => !x.importExport && !x.label).length;
  lines.push(`Slots: ${free} free; archive pool: ${s.pool.cartridges} cartridge(s), ${formatBytes(s.pool.freeBytes)} free`);
  if (s.offline.length) lines.push(`Offline: ${s.offline.join(', ')}`);
  if (s.needed.length) lines.push(`Needed (offline, requested): ${s.needed.join(', ')}`);
  return lines.join('\n');
}

// --- commands ---------------------------------------------------------------------------

export interface CommonFlags extends FlagValues {
  json?: boolean;
}

export function exitWith(err: unknown): never {
  const code = err instanceof ArchiveError ? err.exitCode : exitCodeOf(err);
  process.stderr.write(`tapedeck: ${messageOf(err)}\n`);
  process.exit(code);
}

/** The job this command follows and its progress bar, for the notice when it is interrupted. */
const watching: { job?: JobRecord; bar?: JobProgress } = {};

/** What happens to the job when the CLI is interrupted (Ctrl-C, SIGTERM, hang-up). */
export function interruptNotice(mode: Backend['mode'], job?: Pick<JobRecord, 'id' | 'kind'>): string {
  const which = job ? `${job.kind} job ${job.id}` : 'the job';
  if (mode === 'server') return `tapedeck: no longer watching; ${which} goes on in the server (\`tapedeck jobs${job ? ' ' + job.id : ''}\` shows it; a server restart resumes it)`;
  return `tapedeck: stopping ${which} at the next safe point; it resumes with the next archive, recall or tape import, with \`tapedeck jobs --resume\`, or when the server starts`;
}

export async function withBackend(flags: CommonFlags, fn: (b: Backend, cfg: Config) => Promise<number>, opts: BackendOptions = {}): Promise<void> {
  const cfg = loadCliConfig(flags);
  let backend: Backend;
  try {
    backend = await openBackend(cfg, opts);
  } catch (err) {
    exitWith(err);
  }
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    // the progress bar would redraw over the message: stop it first
    watching.bar?.stop();
    process.stderr.write(`\n${interruptNotice(backend.mode, watching.job)}\n`);
    backend.interrupt().catch(() => undefined);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  let code = 0;
  try {
    code = await fn(backend, cfg);
  } catch (err) {
    await backend.close();
    // the notice is out; the watch's own "aborted" is no news
    if (interrupted) process.exit(130);
    exitWith(err);
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
  await backend.close();
  process.exit(interrupted ? 130 : code);
}

/**
 * Targets as given; relative paths ('./x', '../x') become absolute, relative to the directory
 * the command was typed in (INIT_CWD under `npm run`, else the working directory).
 */
/** `  origin: policy` for a job a storage-policy pass started, '' for an operator's. */
export function originText(j: JobRecord): string {
  return j.opts?.origin ? `  origin: ${j.opts.origin}` : '';
}

export function normaliseTargets(targets: string[], base = callerDir()): string[] {
  return targets.map((t) => (t === '.' || t === '..' || t.startsWith('./') || t.startsWith('../') ? resolve(base, t) : t));
}

/**
 * An unknown path or object ID: say which catalog was searched (which data directory, opened
 * here or through the server holding it) and whether a running server uses another one.
 */
export async function withCatalogHint<T>(b: Backend, cfg: Config, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ArchiveError) || err.code !== 'NOT_FOUND' || !/^unknown (path|object ID)/.test(err.message)) throw err;
    throw new ArchiveError('NOT_FOUND', `${err.message}\n${await catalogHint(cfg.dataDir, b.mode === 'server')}`);
  }
}

async function jobCommand(kind: JobKind, targets: string[], flags: CommonFlags & { keep?: boolean }): Promise<void> {
  await withBackend(flags, async (b, cfg) => {
    const bar = new JobProgress(!!flags.json);
    watching.bar = bar;
    try {
      await b.resume((j) => process.stderr.isTTY && !flags.json && bar.update(j));
      const job = await withCatalogHint(b, cfg, () => b.submit(kind, kind === 'import' ? targets : normaliseTargets(targets), kind === 'archive' ? { keepDisk: !!flags.keep } : {}));
      watching.job = job;
      const done = await b.follow(job, (j) => bar.update(j));
      bar.stop();
      if (flags.json) json(done);
      else out(summary(done));
      if (done.state === 'failed') {
        process.stderr.write(`tapedeck: ${kind} failed: ${done.reason ?? 'unknown reason'}\n`);
        return EXIT_CODES[done.code ?? 'FAILED'] ?? 1;
      }
      if (!isTerminal(done.state)) {
        process.stderr.write(`tapedeck: ${kind} ${done.id} interrupted (${done.state})\n`);
        return 130;
      }
      return 0;
    } finally {
      bar.stop();
    }
  });
}

export function command(parent: Command, spec: string, description: string, keys = TAPE_SETTING_KEYS): Command {
  return addSettingFlags(parent.command(spec).description(description), keys).option('--json', 'print a machine-readable result on stdout');
}

export function registerTapeCommands(program: Command): void {
  const tape = program.command('tape').description('tape library and archive pool: ls, label, export, import');

  command(tape, 'ls', 'show drives, slots and cartridges (archive pool, used/free space, offline, needed)').action((flags: CommonFlags) =>
    withBackend(flags, async (b) => {
      const s = await b.tapeStatus();
      if (flags.json) json(s);
      else out(renderStatus(s));
      return 0;
    }),
  );

  command(tape, 'label [labels...]', 'add cartridges to the archive pool (writes a label on blank ones; the virtual library creates missing ones, the next free one when none is named)')
    .option('--force', 'also add a cartridge that holds data not written by Tapedeck (archives are appended after it)')
    .action((labels: string[], flags: CommonFlags & { force?: boolean }) =>
      withBackend(flags, async (b) => {
        const r = await b.label(labels, { force: !!flags.force });
        if (flags.json) json(r);
        else for (const x of r) out(`${x.label}: ${x.created ? 'created, ' : ''}${x.written ? 'labelled' : 'already labelled'}; in the archive pool${x.freeBytes !== undefined ? `, ${formatBytes(x.freeBytes)} free` : ''}`);
        return 0;
      }),
    );

  command(tape, 'export <label>', 'move a cartridge out of the library (it becomes offline)').action((label: string, flags: CommonFlags) =>
    withBackend(flags, async (b) => {
      const r = await b.exportCartridge(label);
      if (flags.json) json(r);
      else out(`${r.label}: exported (offline)`);
      return 0;
    }),
  );

  command(tape, 'import <labels...>', 'bring cartridges (back) into the library and rebuild catalog locations from them; dock tars written elsewhere').action(
    (labels: string[], flags: CommonFlags) => jobCommand('import', labels, flags),
  );

  command(program, 'archive <targets...>', 'archive items to tape: object IDs, container IDs (everything below) or paths (a file or a directory)')
    .option('--keep', 'keep the disk copy (the item is then on disk and tape)')
    .addHelpText('after', RELATIVE_PATHS_HELP)
    .action((targets: string[], flags: CommonFlags & { keep?: boolean }) => jobCommand('archive', targets, flags));

  command(program, 'recall <targets...>', 'restore archived items to disk: object IDs, container IDs or paths')
    .addHelpText('after', RELATIVE_PATHS_HELP)
    .action((targets: string[], flags: CommonFlags) => jobCommand('recall', targets, flags));

  command(program, 'jobs [id]', 'list archive/recall/import jobs, or show one')
    .option('--items', 'with one job: also list its items and their phases')
    .option('--resume', 'finish interrupted jobs and run queued ones now (when no server is running)')
    .action((id: string | undefined, flags: CommonFlags & { items?: boolean; resume?: boolean }) => {
      if (flags.items && !id) exitWith(new ArchiveError('INVALID', '--items lists the items of one job: give its ID (tapedeck jobs ID --items)'));
      return withBackend(flags, async (b) => {
        if (flags.resume && b.mode === 'direct') {
          const bar = new JobProgress(!!flags.json);
          await b.resume((j) => bar.update(j));
          for (const j of await b.list()) if (j.state === 'queued') await b.follow(j, (x) => bar.update(x));
          bar.stop();
        }
        if (id) {
          const j = await b.get(id);
          if (!j) throw new ArchiveError('NOT_FOUND', `no job ${id}`);
          const items = flags.items ? await b.items(id) : undefined;
          if (flags.json) json(items ? { ...j, items } : j);
          else {
            out(`${j.id}  ${j.kind}  ${j.state}  ${j.progress.itemsDone}/${j.progress.itemsTotal} items  ${progressBytes(j)}${originText(j)}`);
            out(`  targets: ${j.targets.join(' ')}`);
            out(`  created ${j.created}${j.started ? `, started ${j.started}` : ''}${j.finished ? `, finished ${j.finished}` : ''}, attempts ${j.attempts}`);
            if (j.activity) out(`  now: ${j.activity}`);
            if (j.reason) out(`  reason: ${j.reason}`);
            if (j.result) out(`  ${summary(j)}`);
            for (const it of items ?? []) out(`  ${String(it.seq).padStart(5)} ${it.id} ${it.phase}${it.label ? ` ${it.label}` : ''}${it.note ? ` (${it.note})` : ''}`);
          }
          return 0;
        }
        const list = await b.list();
        if (flags.json) json(list);
        else if (list.length === 0) out('no jobs');
        else
          for (const j of list) {
            out(`${j.id}  ${j.kind.padEnd(7)} ${j.state.padEnd(7)} ${`${j.progress.itemsDone}/${j.progress.itemsTotal}`.padStart(9)} items  ${j.created}${originText(j)}${j.reason ? `  ${j.reason}` : ''}`);
          }
        return 0;
      }, { libraryOptional: !flags.resume, readOnly: !flags.resume });
    });
}
