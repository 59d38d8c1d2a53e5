// Test harness around shared/lab/netns-lab: a private two-host LAN (two network
// namespaces joined by a veth pair) where SSDP multicast can be sent safely.
//
// Usage in a test file:
//   const why = labAvailable();
//   const lab = why ? undefined : createLab('tdsp', '10.91.0');
//   test.before(async () => { await lab?.up(); });
//   test.after.always(async () => { await lab?.down(); });
//   (lab ? test.serial : test.skip)('...', async (t) => { ... lab.spawnNode('srv', 'test/fixtures/x.ts') ... });
//
// Each lab gets LAB_PREFIX = <prefix>-<pid in base 36>, so the same test file run twice
// at once (or by two people) gets two labs; labs left behind by dead processes with the
// same prefix are removed on up(). Pick a prefix of at most 6 characters per test file.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** This checkout (so `node --import tsx` resolves from node_modules). */
export const REPO_ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** The netns-lab script: $TAPEDECK_NETNS_LAB, else <repo>/../shared/lab/netns-lab. */
export function labScript(): string {
  return process.env.TAPEDECK_NETNS_LAB || path.resolve(REPO_ROOT, '..', 'shared', 'lab', 'netns-lab');
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of an executable found on PATH (or the sbin dirs), or undefined. */
export function which(cmd: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  for (const d of dirs) {
    if (d && executable(path.join(d, cmd))) return path.join(d, cmd);
  }
  return undefined;
}

/** Why the lab cannot run here, or undefined when it can. */
export function labAvailable(): string | undefined {
  if (process.platform !== 'linux') return `the netns lab needs Linux network namespaces (platform is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'the netns lab needs root (CAP_NET_ADMIN); run the tests as root to include the lab tests';
  if (!which('ip')) return "the netns lab needs iproute2 ('ip' is not on PATH)";
  const script = labScript();
  if (!executable(script)) return `netns-lab script not found or not executable at ${script} (set TAPEDECK_NETNS_LAB)`;
  return undefined;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after timeoutMs); never rejects on exit status. */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? process.env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs} ms]`;
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // EPIPE when the command exits without reading stdin
    child.stdin.end(opts.input ?? '');
  });
}

async function mustRun(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code ?? r.signal}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

export type Side = 'srv' | 'cli';

export interface LabLink {
  srvIf: string;
  cliIf: string;
  srvIp: string;
  cliIp: string;
}

export interface Lab extends LabLink {
  /** LAB_PREFIX passed to netns-lab. */
  prefix: string;
  srvNs: string;
  cliNs: string;
  env: NodeJS.ProcessEnv;
  up(): Promise<void>;
  /** Kills every process spawned through the lab (by PID), then removes the namespaces. */
  down(): Promise<void>;
  spawn(side: Side, cmd: string, args?: string[], opts?: SpawnOptions): ChildProcess;
  spawnSrv(cmd: string, args?: string[], opts?: SpawnOptions): ChildProcess;
  spawnCli(cmd: string, args?: string[], opts?: SpawnOptions): ChildProcess;
  /** `node --import tsx <script> args` in a namespace, cwd = repo. */
  spawnNode(side: Side, script: string, args?: string[]): ChildProcess;
  exec(side: Side, cmd: string, args?: string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  execSrv(cmd: string, args?: string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  execCli(cmd: string, args?: string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /**
   * Adds link number n (>= 1) between the two namespaces: veth <prefix>s<n> / <prefix>c<n>,
   * addresses <net>.1/24 and <net>.2/24, multicast on, and a 239/8 route with a higher
   * metric than the first link's (the first link stays the default multicast route).
   */
  addLink(n: number, net: string): Promise<LabLink>;
}

const MAX_IFNAME = 15;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes labs of this prefix whose owning process is gone. */
async function sweepStale(base: string): Promise<void> {
  const re = new RegExp(`^${base}-([0-9a-z]+)(srv|cli)$`);
  const list = await run('ip', ['netns', 'list'], { timeoutMs: 10_000 });
  for (const line of list.stdout.split('\n')) {
    const ns = line.split(/\s+/)[0];
    const m = re.exec(ns ?? '');
    if (!m) continue;
    const pid = Number.parseInt(m[1], 36);
    if (pid !== process.pid && !alive(pid)) await run('ip', ['netns', 'del', ns], { timeoutMs: 10_000 });
  }
}

export function createLab(prefix: string, net: string): Lab {
  if (!/^[a-z][a-z0-9]{0,5}$/.test(prefix)) throw new Error(`lab prefix "${prefix}" must be 1-6 lowercase letters/digits`);
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(net)) throw new Error(`lab net "${net}" must look like 10.77.0`);
  const P = `${prefix}-${process.pid.toString(36)}`;
  if (`${P}s9`.length > MAX_IFNAME) throw new Error(`lab prefix ${P} makes interface names too long`);
  const script = labScript();
  const env = { ...process.env, LAB_PREFIX: P, LAB_NET: net };
  const children = new Set<ChildProcess>();
  const srvNs = `${P}srv`;
  const cliNs = `${P}cli`;
  const extraLinks: string[] = [];

  const spawnIn = (side: Side, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess => {
    // `ip netns exec` execs the command, so child.pid is the command's own PID
    const child = spawn(script, [side, cmd, ...args], { cwd: REPO_ROOT, stdio: 'pipe', ...opts, env: { ...env, ...opts.env } });
    children.add(child);
    child.on('exit', () => children.delete(child));
    child.on('error', () => children.delete(child));
    return child;
  };
  const execIn = (side: Side, cmd: string, args: string[] = [], opts: { timeoutMs?: number; input?: string } = {}) =>
    run(script, [side, cmd, ...args], { env, ...opts });

  const lab: Lab = {
    prefix: P,
    srvNs,
    cliNs,
    env,
    srvIf: `${P}s0`,
    cliIf: `${P}c0`,
    srvIp: `${net}.1`,
    cliIp: `${net}.2`,
    async up() {
      await sweepStale(prefix);
      await mustRun(script, ['up'], { env, timeoutMs: 20_000 });
    },
    async down() {
      const waits = [...children].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return resolve();
            c.once('exit', () => resolve());
            try {
              process.kill(c.pid, 'SIGKILL');
            } catch {
              resolve();
            }
          }),
      );
      await Promise.all(waits);
      await mustRun(script, ['down'], { env, timeoutMs: 20_000 });
      // a link whose ends never made it into a namespace would survive the namespaces
      for (const ifc of extraLinks) await run('ip', ['link', 'del', ifc], { timeoutMs: 5000 });
    },
    spawn: spawnIn,
    spawnSrv: (cmd, args, opts) => spawnIn('srv', cmd, args, opts),
    spawnCli: (cmd, args, opts) => spawnIn('cli', cmd, args, opts),
    spawnNode: (side, file, args = []) => spawnIn(side, process.execPath, ['--import', 'tsx', file, ...args]),
    exec: execIn,
    execSrv: (cmd, args, opts) => execIn('srv', cmd, args, opts),
    execCli: (cmd, args, opts) => execIn('cli', cmd, args, opts),
    async addLink(n, linkNet) {
      if (!Number.isInteger(n) || n < 1 || n > 9) throw new Error(`link number ${n} must be 1..9`);
      const l: LabLink = { srvIf: `${P}s${n}`, cliIf: `${P}c${n}`, srvIp: `${linkNet}.1`, cliIp: `${linkNet}.2` };
      extraLinks.push(l.srvIf);
      await mustRun('ip', ['link', 'add', l.srvIf, 'type', 'veth', 'peer', 'name', l.cliIf]);
      await mustRun('ip', ['link', 'set', l.srvIf, 'netns', srvNs]);
      await mustRun('ip', ['link', 'set', l.cliIf, 'netns', cliNs]);
      for (const [ns, ifc, ip] of [[srvNs, l.srvIf, l.srvIp], [cliNs, l.cliIf, l.cliIp]]) {
        await mustRun('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', ifc]);
        await mustRun('ip', ['-n', ns, 'link', 'set', ifc, 'multicast', 'on', 'up']);
        await mustRun('ip', ['-n', ns, 'route', 'add', '239.0.0.0/8', 'dev', ifc, 'metric', String(100 + n)]);
      }
      return l;
    },
  };
  return lab;
}

// ---------------------------------------------------------------------------------------
// JSON-lines child processes (fixtures print one JSON object per line)

export interface JsonLineProcess<T = Record<string, unknown>> {
  child: ChildProcess;
  /** Every JSON line so far (non-JSON lines go to `other`). */
  lines: T[];
  other: string[];
  stderr: () => string;
  /** Resolves with the first line (already seen or future) satisfying pred; rejects after timeoutMs. */
  waitFor(pred: (l: T) => boolean, timeoutMs: number, what: string): Promise<T>;
  /** Resolves when the process exits (with its code), or rejects after timeoutMs. */
  exited(timeoutMs: number): Promise<number | null>;
  send(obj: unknown): void;
}

export function jsonLines<T = Record<string, unknown>>(child: ChildProcess): JsonLineProcess<T> {
  const lines: T[] = [];
  const other: string[] = [];
  let stderr = '';
  const waiters = new Set<{ pred: (l: T) => boolean; resolve: (l: T) => void }>();
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (text) => {
    let obj: T;
    try {
      obj = JSON.parse(text) as T;
    } catch {
      other.push(text);
      return;
    }
    lines.push(obj);
    for (const w of [...waiters]) {
      if (w.pred(obj)) {
        waiters.delete(w);
        w.resolve(obj);
      }
    }
  });
  let exitCode: number | null | undefined;
  const exitP = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  const describe = () =>
    `(exit ${exitCode === undefined ? 'not yet' : exitCode}); stderr: ${stderr.slice(-2000) || '(empty)'}; non-JSON stdout: ${other.slice(-10).join(' | ') || '(none)'}`;
  return {
    child,
    lines,
    other,
    stderr: () => stderr,
    waitFor(pred, timeoutMs, what) {
      const hit = lines.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (l: T) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${describe()}`));
        }, timeoutMs);
        waiters.add(w);
        // a process that exits without the line fails the wait at once (after its last output is read)
        void exitP.then(() =>
          setTimeout(() => {
            if (!waiters.delete(w)) return;
            clearTimeout(timer);
            reject(new Error(`exited while waiting for ${what} ${describe()}`));
          }, 200),
        );
      });
    },
    exited(timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms ${describe()}`)), timeoutMs);
        void exitP.then((c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
    },
    send(obj) {
      child.stdin?.write(`${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n`);
    },
  };
}
