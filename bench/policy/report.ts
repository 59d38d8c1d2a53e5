// The policy benchmark's report: goals, the JSON document (stdout and
// bench/results/policy.json) and the table (stderr), the same for the real run and the model.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const GiB = 1024 ** 3;

/** The figures both runs report per strategy. */
export interface StrategyFigures {
  plays: number;
  playsFromTape: number;
  firstByteNoWaitShare: number;
  stalledShare: number;
  mountsPerDay: number;
  bytesMovedPerDay: number;
  prestages: number;
  archived: number;
  recalled: number;
  /** Items copied to tape keeping their disk copies (premigration). */
  premigrated?: number;
}

export function goalsOf(o: StrategyFigures, b: StrategyFigures) {
  const ratio = b.mountsPerDay ? o.mountsPerDay / b.mountsPerDay : 0;
  return {
    firstByteNoWait: { target: '>= 0.99', value: o.firstByteNoWaitShare, met: o.firstByteNoWaitShare >= 0.99 },
    stalled: { target: '<= 0.001', value: o.stalledShare, met: o.stalledShare <= 0.001 },
    mountsVsBaseline: { target: '<= 0.5', value: ratio, met: b.mountsPerDay ? ratio <= 0.5 : o.mountsPerDay === 0 },
  };
}

/** Writes the document (stdout + bench/results/policy.json) and the table (stderr). */
export async function report(doc: { tapedeck: StrategyFigures; baseline: StrategyFigures } & Record<string, unknown>, extraRows: [string, string, string][] = []): Promise<void> {
  const json = JSON.stringify(doc, null, 2);
  process.stdout.write(json + '\n');
  const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'policy.json'), json + '\n');
  const o = doc.tapedeck;
  const b = doc.baseline;
  const pct = (x: number) => (100 * x).toFixed(3) + ' %';
  const rows: [string, string, string][] = [
    ['plays (counted)', String(o.plays), String(b.plays)],
    ['plays needing tape', String(o.playsFromTape), String(b.playsFromTape)],
    ['first byte without waiting for tape', pct(o.firstByteNoWaitShare), pct(b.firstByteNoWaitShare)],
    ['playback time stalled (scale 1)', pct(o.stalledShare), pct(b.stalledShare)],
    ['mounts per day', o.mountsPerDay.toFixed(2), b.mountsPerDay.toFixed(2)],
    ['bytes moved per day', (o.bytesMovedPerDay / GiB).toFixed(1) + ' GiB', (b.bytesMovedPerDay / GiB).toFixed(1) + ' GiB'],
    ['pre-stages', String(o.prestages), String(b.prestages)],
    ['archived / recalled items', `${o.archived} / ${o.recalled}`, `${b.archived} / ${b.recalled}`],
    ['premigrated items (disk copy kept)', String(o.premigrated ?? 0), String(b.premigrated ?? 0)],
    ...extraRows,
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  process.stderr.write(`\n${'figure'.padEnd(w)}  ${'tapedeck'.padStart(14)}  ${'baseline'.padStart(14)}\n`);
  for (const r of rows) process.stderr.write(`${r[0].padEnd(w)}  ${r[1].padStart(14)}  ${r[2].padStart(14)}\n`);
  const g = goalsOf(o, b);
  process.stderr.write(`\ngoals: first byte ${g.firstByteNoWait.met ? 'met' : 'MISSED'}, stalls ${g.stalled.met ? 'met' : 'MISSED'}, mounts ${(g.mountsVsBaseline.value * 100).toFixed(0)}% of baseline ${g.mountsVsBaseline.met ? 'met' : 'MISSED'}\n`);
}
