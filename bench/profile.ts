// Summarises a V8 CPU profile (.cpuprofile, e.g. from `npm run bench -- --cpu-profile DIR`):
// the functions with the most self time and the most inclusive time, and time per
// source file, so a missed target can be traced to a function.
//
//   node --import tsx bench/profile.ts FILE.cpuprofile [--top N] [--filter TEXT]

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  self: Row[];
  inclusive: Row[];
  files: Row[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  let p = url;
  try {
    if (url.startsWith('file:')) p = fileURLToPath(url);
  } catch {
    // keep as is
  }
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) return p.slice(nm + 'node_modules/'.length);
  const rel = relative(process.cwd(), p);
  return rel.startsWith('..') ? p : rel;
}

function label(f: CallFrame): string {
  const fn = f.functionName || '(anonymous)';
  const u = shortUrl(f.url);
  return u ? `${fn} ${u}:${f.lineNumber + 1}` : fn;
}

export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    total += dt;
    const f = node.callFrame;
    if (f.functionName === '(idle)' || f.functionName === '(program)') idle += f.functionName === '(idle)' ? dt : 0;
    const l = label(f);
    self.set(l, (self.get(l) ?? 0) + dt);
    const file = shortUrl(f.url) || f.functionName;
    files.set(file, (files.get(file) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      const k = label(n.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .filter(([k]) => k !== '(idle)' && k !== '(root)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms: Math.round(ms), pct: Math.round((1000 * ms) / (busy || 1)) / 10 }));
  return { totalMs: Math.round(total), idleMs: Math.round(idle), self: rows(self), inclusive: rows(incl), files: rows(files) };
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, filter: { type: 'string' } } });
  if (!positionals.length) {
    process.stderr.write('usage: node --import tsx bench/profile.ts FILE.cpuprofile [--top N] [--filter TEXT]\n');
    process.exit(2);
  }
  for (const file of positionals) {
    const s = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(values.top ?? 25));
    const f = values.filter;
    const show = (title: string, rows: Row[]) => {
      process.stdout.write(`\n${title}\n`);
      for (const r of rows) if (!f || r.name.includes(f)) process.stdout.write(`  ${String(r.ms).padStart(7)} ms ${String(r.pct).padStart(5)}%  ${r.name}\n`);
    };
    process.stdout.write(`${file}: ${s.totalMs} ms sampled, ${s.idleMs} ms idle, ${s.totalMs - s.idleMs} ms busy (percentages of busy time)\n`);
    show('self time', s.self);
    show('inclusive time', s.inclusive);
    show('self time by file', s.files);
  }
}

if (process.argv[1] && /profile\.[tj]s$/.test(process.argv[1])) main();
