// The policy benchmark's servers: one real Tapedeck server process per strategy
// (bench/policy/server.ts), driven through its control socket (the same requests as
// `tapedeck ls`, `tapedeck archive` and `tapedeck policy run`) and read through /metrics.
//
// tapedeck: the real policy engine's pass (src/policy/engine.ts runPass: plan, then the
//           durable archive/recall jobs), the same as `tapedeck policy run`.
// baseline: a plain HSM: above the high watermark, the least recently used items on disk
//           (never played first, then the largest) are archived by an operator archive job
//           until the low mark; no collocation, no promotion, no pre-staging.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../src/control/client.js';
import { isTerminal, type JobRecord } from '../../src/archive/jobs.js';
import type { ListedItem } from '../../src/policy/listing.js';
import type { ServerSpec } from './server.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Marks {
  high: number;
  low: number;
}

export interface TierInfo {
  tier: ListedItem['tier'];
  stubBytes: number;
}

export class BenchServer {
  readonly control: ControlClient;
  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly host: string,
    readonly port: number,
    socket: string,
  ) {
    this.control = new ControlClient(socket);
  }

  /** Spawns the server process and waits until its first scan is done. */
  static async start(name: string, spec: ServerSpec, logPath: string, timeoutMs = 600_000): Promise<BenchServer> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench/policy/server.ts')], {
      cwd: REPO,
      env: { ...process.env, BENCH_POLICY_SERVER: JSON.stringify(spec) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = createWriteStream(logPath);
    child.stderr!.pipe(log);
    return new Promise<BenchServer>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name}: server not ready after ${timeoutMs} ms (log: ${logPath})`));
      }, timeoutMs);
      child.on('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`${name}: server exited (${code ?? sig}) before it was ready (log: ${logPath})`));
      });
      child.stdout!.on('data', (c: Buffer) => {
        log.write(c);
        buf += c.toString();
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          let j: { ready?: boolean; url?: string; socket?: string };
          try {
            j = JSON.parse(line) as typeof j;
          } catch {
            continue;
          }
          if (j.ready && j.url && j.socket) {
            clearTimeout(timer);
            child.removeAllListeners('exit');
            const u = new URL(j.url);
            resolve(new BenchServer(name, child, u.hostname, Number(u.port), j.socket));
          }
        }
      });
    });
  }

  /** Counters from /metrics (name → value; a labelled series as name{labels} exactly as printed). */
  metrics(): Promise<Record<string, number>> {
    return new Promise((resolve, reject) => {
      http
        .get({ host: this.host, port: this.port, path: '/metrics', agent: false }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => {
            const out: Record<string, number> = {};
            for (const line of text.split('\n')) {
              const m = /^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$/.exec(line);
              if (m) out[m[1]!] = Number(m[2]);
            }
            resolve(out);
          });
        })
        .on('error', reject);
    });
  }

  async items(): Promise<ListedItem[]> {
    return this.control.listItems<ListedItem[]>({});
  }

  async tiers(): Promise<Map<string, TierInfo>> {
    return new Map((await this.items()).map((i) => [i.id, { tier: i.tier, stubBytes: i.stubBytes }]));
  }

  /** One pass of this strategy now; answers the jobs it queued. */
  async pass(marks: Marks, stubOf: (i: ListedItem) => number): Promise<JobRecord[]> {
    if (this.name === 'tapedeck') return (await this.control.policyRun<{ jobs: JobRecord[] }>()).jobs;
    const items = await this.items();
    let disk = items.reduce((n, i) => n + (i.tier === 'tape' ? i.stubBytes : i.size), 0);
    if (disk <= marks.high) return [];
    const lp = (i: ListedItem) => (i.lastPlayed ? Date.parse(i.lastPlayed) : -1);
    const cands = items.filter((i) => i.tier === 'disk').sort((a, b) => lp(a) - lp(b) || b.size - a.size || a.id.localeCompare(b.id));
    const ids: string[] = [];
    for (const i of cands) {
      if (disk <= marks.low) break;
      ids.push(i.id);
      disk -= i.size - Math.min(i.size, stubOf(i));
    }
    return ids.length ? [await this.control.submit('archive', ids)] : [];
  }

  /** Waits until the jobs are done or failed; answers the failed ones' reasons. */
  async waitJobs(jobs: JobRecord[], pollMs = 100): Promise<string[]> {
    const failed: string[] = [];
    for (const j of jobs) {
      for (;;) {
        const r = await this.control.get(j.id);
        if (isTerminal(r.state)) {
          if (r.state === 'failed') failed.push(`${r.id}: ${r.reason ?? 'failed'}`);
          break;
        }
        await new Promise((res) => setTimeout(res, pollMs));
      }
    }
    return failed;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
  }
}
