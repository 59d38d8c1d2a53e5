// Where and how the benchmark runs the two servers and its client.
//
// Both servers send SSDP multicast, so they run only inside the private netns lab
// (test/helpers/lab.ts), each pinned to the lab's server interface; the load
// generator runs in the lab's client namespace. Without the lab (not root, no
// iproute2) only Tapedeck runs, with SSDP off and bound to loopback, and MiniDLNA
// (which cannot turn SSDP off) is skipped.
//
// Every process is started by this module and stopped by PID: SIGTERM, then SIGKILL
// after a grace period; MiniDLNA's scanner (a forked child) is found through
// /proc/<pid>/task/<pid>/children.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compactionsIn, type Compactions } from './leveldb-log.js';
import { createLab, jsonLines, labAvailable, REPO_ROOT, run, type ExecResult, type JsonLineProcess } from '../test/helpers/lab.js';

export interface Host {
  kind: 'lab' | 'loopback';
  description: string;
  serverIp: string;
  serverIface: string;
  /** Extra `tapedeck serve` flags for this host (loopback: no SSDP). */
  tapedeckArgs: string[];
  /** Whether MiniDLNA may run here (it always sends SSDP). */
  allowsMinidlna: boolean;
  up(): Promise<void>;
  spawnServer(cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  spawnClient(): ChildProcess;
  execClient(cmd: string, args: string[], timeoutMs: number): Promise<ExecResult>;
  /** Stops everything this host started (by PID) and removes the lab. */
  down(): Promise<void>;
}

const CLIENT_SCRIPT = 'bench/client.ts';

export function labHost(): Host {
  const lab = createLab('tdbnch', '10.98.0');
  return {
    kind: 'lab',
    description: `netns lab ${lab.prefix} (server ${lab.srvIf} ${lab.srvIp}, client ${lab.cliIf} ${lab.cliIp})`,
    serverIp: lab.srvIp,
    serverIface: lab.srvIf,
    tapedeckArgs: [],
    allowsMinidlna: true,
    up: () => lab.up(),
    spawnServer: (cmd, args, env) => lab.spawnSrv(cmd, args, { env }),
    spawnClient: () => lab.spawnNode('cli', CLIENT_SCRIPT),
    execClient: (cmd, args, timeoutMs) => lab.execCli(cmd, args, { timeoutMs }),
    down: () => lab.down(),
  };
}

export function loopbackHost(reason: string): Host {
  const children = new Set<ChildProcess>();
  const track = (c: ChildProcess) => {
    children.add(c);
    c.on('exit', () => children.delete(c));
    c.on('error', () => children.delete(c));
    return c;
  };
  return {
    kind: 'loopback',
    description: `loopback only, Tapedeck with SSDP off (${reason})`,
    serverIp: '127.0.0.1',
    serverIface: 'lo',
    tapedeckArgs: ['--no-ssdp'],
    allowsMinidlna: false,
    up: async () => {},
    spawnServer: (cmd, args, env) => track(spawn(cmd, args, { cwd: REPO_ROOT, stdio: 'pipe', env: { ...process.env, ...env } })),
    spawnClient: () => track(spawn(process.execPath, ['--import', 'tsx', CLIENT_SCRIPT], { cwd: REPO_ROOT, stdio: 'pipe' })),
    execClient: (cmd, args, timeoutMs) => run(cmd, args, { timeoutMs }),
    down: async () => {
      await Promise.all([...children].map((c) => stopPid(c, 5000)));
    },
  };
}

/** The lab when it can run here, else loopback (and why). */
export function pickHost(): Host {
  const why = labAvailable();
  return why ? loopbackHost(why) : labHost();
}

// ---------------------------------------------------------------------------------------
// processes

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Direct children of a process (Linux). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export function descendants(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) for (const c of childPids(stack.pop()!)) (out.push(c), stack.push(c));
  return out;
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. */
export function stopPid(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
    const pid = child.pid;
    const kids = descendants(pid);
    const timer = setTimeout(() => {
      for (const p of [pid, ...kids]) {
        try {
          if (alive(p)) process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      // a forked helper (MiniDLNA's scanner) must not outlive its parent
      for (const p of kids) {
        try {
          if (alive(p)) process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      resolve();
    });
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      resolve();
    }
  });
}

export interface Memory {
  /** VmRSS: the figure compared with the goal. */
  rssMB: number;
  peakRssMB: number;
  /**
   * Where the resident memory is (smaps_rollup): anonymous (V8 heap, malloc, thread stacks)
   * and file-backed (the node binary and shared libraries, LevelDB's memory-mapped table
   * files; clean, the kernel can drop them), with the LevelDB tables' share from smaps.
   */
  split?: { anonMB: number; fileMB: number; ldbMB: number };
}

const mb = (kb: number) => Math.round((kb * 1024) / 1e4) / 100;

/** VmRSS and VmHWM of a process, in MB (10^6 bytes), and how the resident memory splits. */
export function memoryOf(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const split = rssSplit(pid);
    return { rssMB: mb(kb('VmRSS')), peakRssMB: mb(kb('VmHWM')), ...(split ? { split } : {}) };
  } catch {
    return undefined;
  }
}

/** Anonymous and file-backed resident memory (smaps_rollup), and the part in mapped LevelDB tables (smaps). */
export function rssSplit(pid: number): Memory['split'] {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
    const rss = field('Rss');
    const anon = field('Anonymous');
    if (!Number.isFinite(rss) || !Number.isFinite(anon)) return undefined;
    let ldb = 0;
    let inLdb = false;
    for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inLdb = /\.ldb( \(deleted\))?$/.test(line);
      else if (inLdb && line.startsWith('Rss:')) ldb += Number(/(\d+)/.exec(line)?.[1] ?? 0);
    }
    return { anonMB: mb(anon), fileMB: mb(rss - anon), ldbMB: mb(ldb) };
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux ABI Node runs on). */
const CLK_TCK = 100;

/**
 * CPU seconds a process has used: its own user + system time plus that of its waited-for
 * children (MiniDLNA's forked scanner, Tapedeck's ffprobe runs), from /proc/<pid>/stat.
 */
export function cpuSecondsOf(pid: number, children: 'with' | 'only' = 'with'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name (which may contain spaces) in parentheses
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime are fields 14..17 (1-based), i.e. 11..14 here
    const reaped = Number(f[13]) + Number(f[14]);
    return (children === 'only' ? reaped : Number(f[11]) + Number(f[12]) + reaped) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/**
 * Waits (at most `limitMs`) until the process used less than 5% of a core in a second: LevelDB's
 * compactions and the memory release after a background pass finish before a load is measured.
 * Returns the seconds waited.
 */
export async function untilIdle(pid: number, limitMs = 120_000): Promise<number> {
  const t = performance.now();
  let last = cpuSecondsOf(pid) ?? 0;
  while (performance.now() - t < limitMs) {
    await sleep(1000);
    const now = cpuSecondsOf(pid) ?? 0;
    if (now - last < 0.05) break;
    last = now;
  }
  return Math.round((performance.now() - t) / 100) / 10;
}

/** RSS of every descendant process (e.g. the staging worker), in MB, largest first. */
export function childrenMemory(pid: number): { pid: number; rssMB: number; cmd: string }[] {
  return descendants(pid)
    .map((p) => {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 120);
      } catch {
        // gone
      }
      return { pid: p, rssMB: memoryOf(p)?.rssMB ?? NaN, cmd };
    })
    .filter((c) => Number.isFinite(c.rssMB))
    .sort((a, b) => b.rssMB - a.rssMB);
}

// ---------------------------------------------------------------------------------------
// servers

export type ServerName = 'tapedeck' | 'minidlna';

export interface ScanTiming {
  /** Time of the scan as the benchmark uses it (see `basis`). */
  ms: number;
  basis: string;
  /** From spawning the process to the end of the scan, as seen from outside. */
  wallMs: number;
  files: number;
}

export interface RunningServer {
  name: ServerName;
  pid: number;
  controlUrl: string;
  /** The container holding every track, in default order. */
  allMusicId: string;
  scan: ScanTiming;
  memory(): Memory | undefined;
  /** CPU seconds used so far by the server process (and its reaped children). */
  cpu(): number;
  /** The part of cpu() that its exited (reaped) children used, e.g. ffmpeg of a background pass. */
  childCpu?(): number;
  /** Compactions of its catalog database that ended between two Date.now() values (counted in cpu(): LevelDB's background thread). */
  compactions?(fromMs: number, toMs: number): Compactions;
  /** Milliseconds from spawn until the ready probe first answered (when one was given). */
  readyMs?: number;
  stop(): Promise<void>;
  /** Last lines of its log, for error messages. */
  logTail(): string;
  /**
   * Resolves once the background work that follows the first scan is over (Tapedeck's
   * video-frame pass: one ffmpeg at a time, server.ts deferredArt), so the loads measured
   * next do not count its CPU; a note for the report when it waited or gave up.
   */
  settled?(): Promise<string | undefined>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How Tapedeck is started: compiled JavaScript through the deployed launcher, or the TypeScript sources through tsx. */
export interface TapedeckRuntime {
  name: 'compiled' | 'tsx';
  /** `command ...args serve FLAGS` with `env` starts the server with these extra Node flags; the process keeps the command's PID. */
  command(nodeFlags: string[]): { command: string; args: string[]; env: NodeJS.ProcessEnv };
}

export const TSX_RUNTIME: TapedeckRuntime = {
  name: 'tsx',
  command: (nodeFlags) => ({ command: process.execPath, args: [...nodeFlags, '--import', 'tsx', 'src/cli.ts'], env: {} }),
};

/** bin/tapedeck of a build, run with this Node.js: its memory flags and MALLOC_ARENA_MAX apply. */
export function launcherRuntime(launcher: string): TapedeckRuntime {
  return {
    name: 'compiled',
    command: (nodeFlags) => ({
      command: '/bin/sh',
      args: [launcher],
      env: { TAPEDECK_NODE: process.execPath, ...(nodeFlags.length ? { TAPEDECK_NODE_FLAGS: nodeFlags.join(' ') } : {}) },
    }),
  };
}

export interface TapedeckOptions {
  runtime: TapedeckRuntime;
  mediaDirs: string[];
  dataDir: string;
  port: number;
  timeoutMs: number;
  /** Write a V8 CPU profile of the server into this folder when it stops. */
  cpuProfileDir?: string;
  /** Extra `serve` flags (e.g. --search-cache 0). */
  extraArgs?: string[];
  /** Polled from spawn (every 20 ms) until true: readyMs is when it first was. */
  readyProbe?: () => Promise<boolean>;
}

export async function startTapedeck(host: Host, o: TapedeckOptions): Promise<RunningServer> {
  await mkdir(o.dataDir, { recursive: true });
  const start = o.runtime.command(o.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfileDir}`] : []);
  const args = [
    ...start.args,
    'serve',
    '--data',
    o.dataDir,
    ...o.mediaDirs.flatMap((d) => ['--media', d]),
    '--interface',
    host.serverIface,
    '--port',
    String(o.port),
    '--name',
    'Tapedeck bench',
    ...host.tapedeckArgs,
    ...(o.extraArgs ?? []),
  ];
  const t0 = performance.now();
  const child = host.spawnServer(start.command, args, start.env);
  const proc: JsonLineProcess<Record<string, any>> = jsonLines(child);
  const tail = () => [...proc.lines.slice(-5).map((l) => JSON.stringify(l)), proc.stderr().slice(-1500)].join('\n');
  let wallMs = 0;
  let readyMs: number | undefined;
  let probing = !!o.readyProbe;
  const probe = async () => {
    while (probing && child.exitCode === null) {
      if (await o.readyProbe!()) {
        readyMs = Math.round(performance.now() - t0);
        return;
      }
      await sleep(20);
    }
  };
  const probed = probe();
  const done = proc.waitFor((l) => l.scan?.done === true, o.timeoutMs, 'Tapedeck "scan done"').then((l) => {
    wallMs = performance.now() - t0;
    return l;
  });
  const exited = proc.exited(o.timeoutMs + 1000).then((code) => {
    throw new Error(`Tapedeck exited (code ${code}) before its scan finished:\n${tail()}`);
  });
  let line: Record<string, any>;
  try {
    line = await Promise.race([done, exited]);
    await proc.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('library:'), 30_000, 'Tapedeck library line');
    await probed;
  } catch (err) {
    probing = false;
    await stopPid(child, 2000);
    throw err;
  }
  exited.catch(() => undefined);
  return {
    readyMs,
    name: 'tapedeck',
    pid: child.pid!,
    controlUrl: `http://${host.serverIp}:${o.port}/upnp/control/cds`,
    allMusicId: 'music/all',
    scan: { ms: line.scan.elapsedMs, basis: 'scanner elapsedMs (walk + metadata + catalog writes; excludes Node start-up)', wallMs, files: line.scan.seen },
    memory: () => memoryOf(child.pid!),
    cpu: () => cpuSecondsOf(child.pid!) ?? NaN,
    childCpu: () => cpuSecondsOf(child.pid!, 'only') ?? NaN,
    compactions: (fromMs, toMs) => compactionsIn(join(o.dataDir, 'catalog'), fromMs, toMs),
    stop: () => stopPid(child, 15_000),
    logTail: tail,
    settled: async () => {
      const deferred = Number(line.scan.framesDeferred ?? 0);
      if (!deferred) return undefined;
      const t = performance.now();
      const limitMs = Math.min(o.timeoutMs, 10 * 60_000);
      try {
        // the pass logs its end ('video frames: ...' with art.videos), or that it failed
        await proc.waitFor((l) => l.art?.videos !== undefined || (typeof l.msg === 'string' && l.msg.startsWith('making video frames failed')), limitMs, 'Tapedeck video-frame pass');
        const waited = Math.round(performance.now() - t);
        // what follows the pass (LevelDB compactions of its writes) is not request work either
        const idle = await untilIdle(child.pid!);
        return `tapedeck: the loads started after its video-frame pass (${deferred} videos deferred by the scan, ${waited} ms waited) and ${idle} s more until the server was idle`;
      } catch {
        return `tapedeck: its video-frame pass (${deferred} videos) did not end within ${Math.round(limitMs / 1000)} s; the loads ran beside it`;
      }
    },
  };
}

export interface MinidlnaOptions {
  binary: string;
  mediaDirs: string[];
  dbDir: string;
  port: number;
  timeoutMs: number;
  /**
   * false: a restart on an existing database, where MiniDLNA does not scan; ready once
   * its log says HTTP is listening.
   */
  expectScan?: boolean;
}

export async function startMinidlna(host: Host, o: MinidlnaOptions): Promise<RunningServer> {
  if (!host.allowsMinidlna) throw new Error('MiniDLNA sends SSDP and may only run inside the netns lab');
  await mkdir(o.dbDir, { recursive: true });
  const conf = join(o.dbDir, 'minidlna.conf');
  const logFile = join(o.dbDir, 'minidlna.log');
  await writeFile(
    conf,
    [
      ...o.mediaDirs.map((d) => `media_dir=AV,${d}`),
      `db_dir=${o.dbDir}`,
      `log_dir=${o.dbDir}`,
      `port=${o.port}`,
      'friendly_name=MiniDLNA bench',
      `network_interface=${host.serverIface}`,
      'inotify=no',
      'notify_interval=900',
      '',
    ].join('\n'),
  );
  // the log is appended to across restarts: only what this process writes counts
  const logStart = (await readFile(logFile).catch(() => Buffer.alloc(0))).length;
  const t0 = performance.now();
  // -S: stay in the foreground (no daemon fork), so the PID we hold is the server's.
  const child = host.spawnServer(o.binary, ['-S', '-f', conf, '-P', join(o.dbDir, 'minidlna.pid')]);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const readLog = async () => (await readFile(logFile).catch(() => Buffer.alloc(0))).subarray(logStart).toString('utf8');
  let tail = '';
  const logTail = () => (tail + '\n' + out).trim().split('\n').slice(-12).join('\n');
  const deadline = t0 + o.timeoutMs;
  const expectScan = o.expectScan ?? true;
  let files = NaN;
  try {
    for (;;) {
      await sleep(50);
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`MiniDLNA exited (${child.exitCode ?? child.signalCode}) before it was ready`);
      const log = await readLog();
      tail = log;
      if (expectScan) {
        const m = /Scanning .* finished \((\d+) files\)/.exec(log);
        // the scan is over when the log says so and the forked scanner has exited
        if (m && childPids(child.pid!).length === 0) {
          files = Number(m[1]);
          break;
        }
      } else if (/HTTP listening on port/.test(log) && childPids(child.pid!).length === 0) break;
      if (performance.now() > deadline) throw new Error(`MiniDLNA was not ready (${expectScan ? 'scan finished' : 'HTTP listening'}) within ${o.timeoutMs} ms`);
    }
  } catch (err) {
    await stopPid(child, 2000);
    throw new Error(`${(err as Error).message}\n${logTail()}`);
  }
  const wallMs = performance.now() - t0;
  return {
    name: 'minidlna',
    pid: child.pid!,
    controlUrl: `http://${host.serverIp}:${o.port}/ctl/ContentDir`,
    allMusicId: '1$4',
    scan: { ms: wallMs, basis: 'from process start until its log reports the scan finished and the forked scanner has exited (50 ms polling)', wallMs, files },
    memory: () => memoryOf(child.pid!),
    cpu: () => cpuSecondsOf(child.pid!) ?? NaN,
    stop: () => stopPid(child, 10_000),
    logTail,
  };
}

// ---------------------------------------------------------------------------------------
// the client process

export interface Client {
  call<T = any>(cmd: string, job: Record<string, unknown>, timeoutMs: number): Promise<T>;
  close(): Promise<void>;
}

export async function startClient(host: Host): Promise<Client> {
  const child = host.spawnClient();
  const proc = jsonLines<Record<string, any>>(child);
  await proc.waitFor((l) => l.ready === true, 60_000, 'bench client ready');
  let seq = 0;
  return {
    async call(cmd, job, timeoutMs) {
      const id = ++seq;
      proc.send({ ...job, id, cmd });
      const r = await proc.waitFor((l) => l.id === id, timeoutMs, `client ${cmd} #${id}`);
      if (r.error) throw new Error(`client ${cmd}: ${r.error}`);
      return r.result;
    },
    async close() {
      proc.send({ cmd: 'exit' });
      await proc.exited(5000).catch(() => stopPid(child, 1000));
    },
  };
}
