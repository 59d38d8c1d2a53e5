// `npm run bench`: the core benchmark (bench/run.ts) at each library size, one after the
// other, then how Tapedeck's cost per request grows from the smallest size to the largest.
//
//   npm run -s bench -- [--sizes 20000,100000] [any bench/run.ts option]
//
// Each size writes bench/results/latest-<N>.json; the combined document (every size's
// report plus `growth`) goes to stdout and bench/results/latest.json, a table to stderr.
// `--quick` alone runs one small size (2,000 files). Each size's run is bounded by its own
// --max-minutes (default 120); Ctrl-C stops the run under way, which stops its servers.

import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { round } from './stats.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(BENCH_DIR, 'results');
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

interface Report {
  complete: boolean;
  error?: string;
  parameters: { files: number };
  metrics: Record<string, { ours: number | null; minidlna: number | null; ratio: number | null; unit: string; met: boolean | null; target: string; split?: { tapedeck?: { anonMB: number; fileMB: number } } }>;
}

/** Per-request (or per-unit) costs whose growth from the smallest to the largest size is judged (≤ 1.3×). */
const COSTS = ['folderBrowseCpu', 'metadataCpu', 'uncachedSearchCpu.titleContains', 'uncachedSearchCpu.artistEquals', 'streamCpu'];

function parse(argv: string[]): { sizes: number[]; rest: string[] } {
  const rest: string[] = [];
  let sizes: number[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = a.startsWith('--sizes=') ? a.slice(8) : a === '--sizes' ? argv[++i] : undefined;
    if (v !== undefined) {
      sizes = (v ?? '').split(',').map((x) => Number(x.trim()));
      if (!sizes.length || sizes.some((n) => !Number.isInteger(n) || n < 100 || n > 1_000_000)) {
        process.stderr.write(`bench: --sizes must be a comma-separated list of integers in 100..1000000, got ${JSON.stringify(v)}\n`);
        process.exit(2);
      }
      continue;
    }
    if (a === '--files' || a.startsWith('--files=') || a === '--out' || a.startsWith('--out=')) {
      process.stderr.write(`bench: ${a.split('=')[0]} is set per size by the suite; use --sizes\n`);
      process.exit(2);
    }
    rest.push(a);
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write('Usage: npm run bench -- [--sizes N,N...] [options of bench/run.ts below]\n\n  --sizes LIST          library sizes, one full run each (default 20000,100000; --quick: 2000)\n\n');
  }
  return { sizes: sizes ?? (rest.includes('--quick') ? [2000] : [20_000, 100_000]), rest };
}

let current: ReturnType<typeof spawn> | undefined;

function runSize(n: number, rest: string[]): Promise<number> {
  const out = join(RESULTS, `latest-${n}.json`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'run.ts'), ...rest, '--files', String(n), '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
    current = child;
    child.on('exit', (code, sig) => {
      current = undefined;
      resolve(code ?? (sig ? 130 : 1));
    });
  });
}

async function main(): Promise<number> {
  const { sizes, rest } = parse(process.argv.slice(2));
  if (rest.includes('--help') || rest.includes('-h')) return runSize(sizes[0], ['--help']);
  const forward = (sig: NodeJS.Signals) => {
    if (current?.pid) process.kill(current.pid, sig);
    stopped = true;
  };
  let stopped = false;
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const reports: Record<string, Report | { error: string }> = {};
  let worst = 0;
  for (const n of sizes) {
    if (stopped) break;
    log(`=== library of ${n} files ===`);
    const code = await runSize(n, rest);
    worst = Math.max(worst, code);
    try {
      reports[String(n)] = JSON.parse(await readFile(join(RESULTS, `latest-${n}.json`), 'utf8')) as Report;
    } catch (err) {
      reports[String(n)] = { error: `no report (exit ${code}): ${(err as Error).message}` };
    }
  }
  const ok = sizes.map((n) => reports[String(n)]).filter((r): r is Report => !!r && 'metrics' in r);
  const growth: Record<string, { from: number; to: number; ours: [number | null, number | null]; growth: number | null; target: string; met: boolean | null }> = {};
  if (ok.length >= 2) {
    const a = ok[0];
    const b = ok[ok.length - 1];
    for (const k of COSTS) {
      const x = a.metrics[k]?.ours ?? null;
      const y = b.metrics[k]?.ours ?? null;
      const g = x && y ? round(y / x, 3) : null;
      growth[k] = { from: a.parameters.files, to: b.parameters.files, ours: [x, y], growth: g, target: '<= 1.3', met: g === null ? null : g <= 1.3 };
    }
  }
  const doc = { benchmark: 'tapedeck-core-vs-minidlna-sizes', sizes, growth, reports };
  const json = JSON.stringify(doc, null, 2);
  await mkdir(RESULTS, { recursive: true });
  await writeFile(join(RESULTS, 'latest.json'), json + '\n');
  process.stdout.write(json + '\n');
  // one table: every metric at every size
  const keys = [...new Set(ok.flatMap((r) => Object.keys(r.metrics)))];
  const rows = keys.map((k) => [
    k,
    ...ok.flatMap((r) => {
      const m = r.metrics[k];
      if (!m) return ['-', '-', '-'];
      return [m.ours === null ? '-' : `${m.ours} ${m.unit}${m.split?.tapedeck ? ` (anon ${m.split.tapedeck.anonMB} + file ${m.split.tapedeck.fileMB})` : ''}`, m.minidlna === null ? '-' : `${m.minidlna}`, `${m.ratio ?? '-'} ${m.met === null ? '' : m.met ? 'met' : 'MISSED'}`];
    }),
    ok[0]?.metrics[k]?.target ?? '',
  ]);
  for (const [k, g] of Object.entries(growth)) rows.push([`growth ${k} ${g.from}->${g.to}`, ...ok.flatMap(() => ['', '', '']).slice(0, -1), `${g.growth ?? '-'} ${g.met === null ? '' : g.met ? 'met' : 'MISSED'}`, g.target]);
  const head = ['metric', ...ok.flatMap((r) => [`tapedeck ${r.parameters.files}`, 'minidlna', 'ratio']), 'target'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(w[i])).join('  ');
  process.stderr.write('\n' + [line(head), ...rows.map(line)].join('\n') + '\n\n');
  log(`JSON written to ${join(RESULTS, 'latest.json')} (per size: latest-<N>.json)`);
  return worst;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
