// Operator commands of the storage policy:
//
//   tapedeck ls [TARGET]... [--tier disk|tape|both] [--sort plays|last-played|size|title] [--json]
//   tapedeck policy plan [--json]     what the next pass would do (changes nothing)
//   tapedeck policy run [--json]      one pass now (ignoring policy_window), with a progress bar
//
// Like the tape commands, they open the catalog here when no server holds it, and go through
// the server's control socket when one does; exit codes are the tape commands'.

import type { Command } from 'commander';
import { join } from 'node:path';
import { SETTINGS, type Config } from '../config.js';
import { formatBytes } from '../util/units.js';
import { RELATIVE_PATHS_HELP } from '../util/paths.js';
import { EXIT_CODES } from '../archive/errors.js';
import { isTerminal, type JobRecord } from '../archive/jobs.js';
import { command, JobProgress, normaliseTargets, summary, TAPE_SETTING_KEYS, withBackend, withCatalogHint, type Backend, type CommonFlags } from '../archive/cli.js';
import { readAccess } from './access.js';
import { PolicyEngine } from './engine.js';
import { listItems, type ListedItem, type ListQuery } from './listing.js';
import type { PolicyPlan } from './plan.js';
import { fmtAge } from './plan.js';

export const POLICY_SETTING_KEYS = [
  ...TAPE_SETTING_KEYS,
  'media_dir',
  'disk_high_watermark',
  'disk_low_watermark',
  'archive_idle',
  'min_archive_size',
  'keep_on_disk',
  'promote_plays',
  'promote_container_plays',
  'promote_window',
  'policy_window',
  'policy_interval',
];

/**
 * The policy flags of this command line (`--archive-idle`, `--media`, ...): a running server plans
 * and runs with its own settings, so these are not used then, and the operator is told so.
 */
export function policyFlagsGiven(flags: object): string[] {
  const given: string[] = [];
  for (const s of SETTINGS) {
    if (!POLICY_SETTING_KEYS.includes(s.key) || TAPE_SETTING_KEYS.includes(s.key)) continue;
    const name = s.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if ((flags as Record<string, unknown>)[name] !== undefined) given.push(`--${s.flag}`);
  }
  return given;
}

function noteServerSettings(flags: object): void {
  const given = policyFlagsGiven(flags);
  if (given.length) process.stderr.write(`tapedeck: a running server holds this catalog; it plans with its own policy settings (${given.join(', ')} not used)\n`);
}

const out = (s: string) => process.stdout.write(s + '\n');
const json = (v: unknown) => process.stdout.write(JSON.stringify(v) + '\n');

/** The engine over the catalog this process opened (direct mode). */
function directEngine(b: Backend, cfg: Config): PolicyEngine {
  const service = b.service!;
  return new PolicyEngine({
    catalog: service.catalog,
    config: cfg,
    archive: service,
    readAccess: (ids) => readAccess(service.catalog.store, ids),
    log: service.log,
    mediaDirs: cfg.demo ? [join(cfg.dataDir, 'demo')] : cfg.mediaDirs,
  });
}

export function renderItems(rows: ListedItem[]): string {
  if (rows.length === 0) return '(no items)';
  const lines = [`${'TIER'.padEnd(5)} ${'PLAYS'.padStart(5)} ${'LAST PLAYED'.padEnd(16)} ${'SIZE'.padStart(9)} ${'STUB'.padStart(9)} ${'CARTRIDGE'.padEnd(16)} ${'ID'.padEnd(14)} PATH`];
  for (const r of rows) {
    const cart = r.cartridge ? `${r.cartridge}@${r.block}` : '-';
    lines.push(`${r.tier.padEnd(5)} ${String(r.plays).padStart(5)} ${(r.lastPlayed ? r.lastPlayed.slice(0, 16).replace('T', ' ') : '-').padEnd(16)} ${formatBytes(r.size).padStart(9)} ${(r.stubBytes ? formatBytes(r.stubBytes) : '-').padStart(9)} ${cart.padEnd(16)} ${r.id.padEnd(14)} ${r.path}  (${r.title}, ${r.class.split('.').pop()})`);
  }
  return lines.join('\n');
}

const usageText = (u: PolicyPlan['usage'][number]) => {
  const f = (n: number) => (u.kind === 'percent' ? `${n}%` : formatBytes(n));
  return `${u.scope}: ${f(u.before)} -> ${f(u.after)} (high ${f(u.high)}, low ${f(u.low)})`;
};

export function renderPlan(p: PolicyPlan): string {
  const lines: string[] = [];
  const na = p.actions.filter((a) => a.action === 'archive').length;
  const nr = p.actions.length - na;
  lines.push(`Policy plan at ${p.at}: ${na} to archive (${formatBytes(p.archiveBytes)}), ${nr} to recall (${formatBytes(p.recallBytes)})`);
  for (const u of p.usage) {
    lines.push(`Disk usage ${usageText(u)}`);
    // the watermark rule archived every item it could: say why usage stays over the mark
    if (u.after > u.high) lines.push(`  stays above the high watermark: nothing else there can be archived (kept by keep_on_disk, smaller than min_archive_size, already on tape, or no larger than its head stub)${u.kind === 'percent' ? ', or the rest of the file system is not media of the catalog' : ''}`);
  }
  for (const a of p.actions) lines.push(`  ${a.action.padEnd(7)} ${a.reason.padEnd(9)} ${a.id.padEnd(14)} ${formatBytes(a.size).padStart(9)}  ${a.path}\n      ${a.detail}${a.cartridge ? `; cartridge ${a.cartridge}` : ''}`);
  for (const s of p.skipped) lines.push(`  skipped ${s.action} ${s.id} ${s.path}: ${s.reason}`);
  if (p.actions.some((a) => a.action === 'archive' && !a.cartridge)) lines.push('No cartridge of the archive pool has room for the archives: label one first with `tapedeck tape label`.');
  if (p.actions.length) lines.push(`Cartridges: ${p.cartridges.join(', ') || '-'}; estimate ${fmtAge(p.estimateSeconds * 1000)} at real tape timing (${p.mounts} mount(s))`);
  else lines.push('Nothing to do.');
  return lines.join('\n');
}

async function followAll(b: Backend, jobs: JobRecord[], quiet: boolean): Promise<JobRecord[]> {
  const bar = new JobProgress(quiet);
  const done: JobRecord[] = [];
  try {
    for (const j of jobs) {
      done.push(await b.follow(j, (x) => bar.update(x)));
      bar.stop();
    }
  } finally {
    bar.stop();
  }
  return done;
}

export function registerPolicyCommands(program: Command): void {
  command(program, 'ls [targets...]', 'list items (all, or under object IDs, container IDs or paths) with tier, cartridge, stub, plays and last play', POLICY_SETTING_KEYS)
    .option('--tier <TIER>', 'only items on this tier: disk, tape or both')
    .option('--sort <KEY>', 'plays, last-played, size or title (default: path)')
    .addHelpText('after', RELATIVE_PATHS_HELP)
    .action((targets: string[], flags: CommonFlags & { tier?: string; sort?: string }) =>
      withBackend(
        flags,
        async (b, cfg) => {
          const q = { ...(targets.length ? { targets: normaliseTargets(targets) } : {}), ...(flags.tier ? { tier: flags.tier } : {}), ...(flags.sort ? { sort: flags.sort } : {}) } as ListQuery;
          const rows = await withCatalogHint(b, cfg, () => (b.control ? b.control.listItems<ListedItem[]>(q) : listItems(b.service!.catalog, (ids) => readAccess(b.service!.catalog.store, ids), q)));
          if (flags.json) json(rows);
          else out(renderItems(rows));
          return 0;
        },
        { libraryOptional: true, readOnly: true },
      ),
    );

  const policy = program.command('policy').description('storage policy: plan (dry run) or run one pass now');
  command(policy, 'plan', 'print what the next policy pass would do, and why (changes nothing)', POLICY_SETTING_KEYS).action((flags: CommonFlags) =>
    withBackend(
      flags,
      async (b, cfg) => {
        if (b.control) noteServerSettings(flags);
        const plan = b.control ? await b.control.policyPlan<PolicyPlan>() : await directEngine(b, cfg).plan();
        if (flags.json) json(plan);
        else out(renderPlan(plan));
        return 0;
      },
      { libraryOptional: true, readOnly: true },
    ),
  );
  command(policy, 'run', 'run one policy pass now (ignores policy_window): the plan, as durable archive/recall jobs', POLICY_SETTING_KEYS).action((flags: CommonFlags) =>
    withBackend(flags, async (b, cfg) => {
      let plan: PolicyPlan;
      let jobs: JobRecord[];
      let done: JobRecord[];
      if (b.control) {
        noteServerSettings(flags);
        ({ plan, jobs } = await b.control.policyRun<{ plan: PolicyPlan; jobs: JobRecord[] }>());
        if (!flags.json) out(renderPlan(plan));
        done = await followAll(b, jobs, !!flags.json);
      } else {
        await b.resume();
        const engine = directEngine(b, cfg);
        try {
          ({ plan, jobs } = await engine.runPass('manual'));
          if (!flags.json) out(renderPlan(plan));
          done = await followAll(b, jobs, !!flags.json);
        } finally {
          await engine.stop();
        }
      }
      if (flags.json) json({ plan, jobs: done });
      else for (const j of done) out(summary(j));
      const failed = done.find((j) => j.state === 'failed');
      if (failed) {
        process.stderr.write(`tapedeck: policy ${failed.kind} failed: ${failed.reason ?? 'unknown reason'}\n`);
        return EXIT_CODES[failed.code ?? 'FAILED'] ?? 1;
      }
      return done.every((j) => isTerminal(j.state)) ? 0 : 130;
    }),
  );
}
