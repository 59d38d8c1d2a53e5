// How the staging worker process is started with the least privilege available.
//
// 1. Node's permission model (`--experimental-permission`, Node 20): the worker
//    may READ its own code, the tape directory (or tape devices) and the cache
//    directory, and WRITE only the tape directory and the cache directory. No
//    child processes, no worker threads, no native addons. (The SCSI backend
//    runs mt/mtx and needs --allow-child-process; those programs are outside the
//    permission model: under systemd the unit's sandbox covers them.)
// 2. No network: Node 20's permission model has no network switch, so the worker
//    runs in a fresh network namespace (`unshare --net`, only a downed loopback)
//    when that works here (root, or unprivileged user namespaces). Otherwise the
//    reason is logged and reported in the worker's hello; in production the
//    stager's systemd unit has PrivateNetwork=yes.
//
// Worker code: from a build (dist/), the compiled module graph of
// worker-main.js is granted file by file. From the TypeScript sources (tsx, in
// development and tests) the worker cannot run through tsx under the permission
// model (tsx needs worker threads and reads outside any narrow grant), so the
// worker's module graph is transpiled with TypeScript's own transpiler into a
// private build directory that only the worker's code lives in.

import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxInfo } from './protocol.js';

export interface WorkerCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  sandbox: SandboxInfo;
}

export interface SandboxPaths {
  /** Read + write (tape directory, cache directory, SCSI state). */
  readWrite: string[];
  /** Read + write devices (SCSI backend). */
  devices: string[];
  /** The worker must start child processes (SCSI backend: mt, mtx). */
  childProcesses: boolean;
}

const HERE = dirname(fileURLToPath(import.meta.url));

// ---- network namespace ---------------------------------------------------------------------------

let netnsProbe: { prefix: string[]; isolated: boolean; note?: string } | undefined;

/** True when this process sees no network interface but loopback (e.g. systemd PrivateNetwork=yes). */
function onlyLoopback(): boolean {
  const ifs = networkInterfaces();
  return Object.values(ifs).every((list) => (list ?? []).every((a) => a.internal));
}

/**
 * The command prefix that runs a program without network. `isolated`: the worker will have no
 * network (through the prefix, or because this process already has none); otherwise `note` says why.
 */
export function netnsPrefix(): { prefix: string[]; isolated: boolean; note?: string } {
  if (netnsProbe) return netnsProbe;
  if (onlyLoopback()) return (netnsProbe = { prefix: [], isolated: true });
  if (process.platform !== 'linux') return (netnsProbe = { prefix: [], isolated: false, note: `no network namespaces on ${process.platform}` });
  const unshare = ['/usr/bin/unshare', '/bin/unshare', '/usr/sbin/unshare'].find((p) => existsSync(p));
  if (!unshare) return (netnsProbe = { prefix: [], isolated: false, note: 'unshare(1) is not installed: the worker keeps the host network (use PrivateNetwork=yes under systemd)' });
  const tries = process.getuid?.() === 0 ? [['--net']] : [['--net'], ['--map-root-user', '--net']];
  const errors: string[] = [];
  for (const opts of tries) {
    const r = spawnSync(unshare, [...opts, '--', process.execPath, '-e', '0'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    if (r.status === 0) return (netnsProbe = { prefix: [unshare, ...opts, '--'], isolated: true });
    errors.push(`unshare ${opts.join(' ')}: ${(r.stderr?.toString() || r.error?.message || `exit ${r.status}`).trim()}`);
  }
  return (netnsProbe = { prefix: [], isolated: false, note: `cannot create a network namespace (${errors.join('; ')}): the worker keeps the host network (use PrivateNetwork=yes under systemd)` });
}

// ---- permission model flags ------------------------------------------------------------------------

function permissionFlag(): string | undefined {
  const flags = process.allowedNodeEnvironmentFlags;
  if (flags.has('--permission')) return '--permission';
  if (flags.has('--experimental-permission')) return '--experimental-permission';
  return undefined;
}

/** Both spellings of a path (as configured and resolved through symlinks). */
function spellings(p: string): string[] {
  const out = new Set([resolve(p)]);
  try {
    out.add(realpathSync(p));
  } catch {
    /* not there yet */
  }
  return [...out];
}

// ---- worker code -------------------------------------------------------------------------------------

const IMPORT_RE = /(?:import|export)\s[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Relative module graph of `entry` (files that exist), following `.js` specifiers to `ext` files. */
async function moduleGraph(entry: string, ext: '.ts' | '.js'): Promise<string[]> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    const text = await readFile(f, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec || !spec.endsWith('.js')) continue;
      const target = resolve(dirname(f), ext === '.ts' ? spec.slice(0, -3) + '.ts' : spec);
      if (existsSync(target)) todo.push(target);
    }
  }
  return [...seen].sort();
}

function findPackageRoot(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) return from;
  }
}

/** Private directory for transpiled worker builds: owned by us, not writable by others. */
async function buildBase(): Promise<string> {
  const uid = process.getuid?.() ?? 0;
  const base = join(tmpdir(), `tapedeck-stager-${uid}`);
  await mkdir(base, { recursive: true, mode: 0o700 });
  const st = await lstat(base);
  if (!st.isDirectory() || (process.getuid && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new Error(`${base} is not a private directory of this user (refusing to run worker code from it)`);
  }
  return base;
}

/** Removes builds of other source versions not used for a day, and abandoned temporary builds. */
async function pruneBuilds(base: string, keep: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(base).catch(() => [] as string[])) {
    if (name === keep) continue;
    const path = join(base, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue;
    const age = now - st.mtimeMs;
    if ((name.includes('.tmp-') && age > 10 * 60_000) || (/^[0-9a-f]{20}$/.test(name) && age > 24 * 3600_000)) {
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

/**
 * Transpiles the worker's TypeScript module graph into a private build directory
 * (content-addressed, reused while the sources are unchanged). Returns the entry file.
 */
async function transpileWorker(entryTs: string): Promise<{ entry: string; root: string }> {
  const files = await moduleGraph(entryTs, '.ts');
  const srcRoot = findPackageRoot(dirname(entryTs));
  const hash = createHash('sha256').update(process.version);
  const texts = new Map<string, string>();
  for (const f of files) {
    const t = await readFile(f, 'utf8');
    texts.set(f, t);
    hash.update(relative(srcRoot, f)).update('\0').update(t).update('\0');
  }
  const id = hash.digest('hex').slice(0, 20);
  const base = await buildBase();
  const root = join(base, id);
  await pruneBuilds(base, id);
  const entry = join(root, relative(srcRoot, entryTs).replace(/\.ts$/, '.js'));
  if (existsSync(join(root, '.complete'))) {
    const t = new Date();
    await utimes(root, t, t).catch(() => undefined); // in use: keep it from being pruned
    return { entry, root };
  }
  const ts = (await import('typescript')).default;
  const tmp = `${root}.tmp-${process.pid}-${Date.now()}`;
  try {
    for (const [f, text] of texts) {
      const out = ts.transpileModule(text, {
        fileName: f,
        compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, sourceMap: false, removeComments: false, isolatedModules: true },
      });
      const dest = join(tmp, relative(srcRoot, f).replace(/\.ts$/, '.js'));
      await mkdir(dirname(dest), { recursive: true });
      await writeFile(dest, out.outputText, { mode: 0o644 });
    }
    await writeFile(join(tmp, 'package.json'), '{"type":"module","private":true}\n');
    await writeFile(join(tmp, '.complete'), id + '\n');
    try {
      await rename(tmp, root);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      // another process built the same thing at the same time
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { entry, root };
}

/** Worker entry module and the code paths it must be able to read. */
export async function workerCode(): Promise<{ entry: string; readPaths: string[]; note?: string }> {
  const ts = join(HERE, 'worker-main.ts');
  const js = join(HERE, 'worker-main.js');
  if (existsSync(js)) {
    const files = await moduleGraph(js, '.js');
    const pkg = join(findPackageRoot(HERE), 'package.json');
    return { entry: js, readPaths: [...files, ...(existsSync(pkg) ? [pkg] : [])] };
  }
  if (!existsSync(ts)) throw new Error(`staging worker entry not found next to ${HERE}`);
  const built = await transpileWorker(ts);
  return { entry: built.entry, readPaths: [built.root] };
}

/** The command line of a sandboxed worker. `workerArgs` follow the entry module. */
export async function workerCommand(paths: SandboxPaths, env: NodeJS.ProcessEnv, opts: { sandbox?: boolean } = {}): Promise<WorkerCommand> {
  const code = await workerCode();
  const notes: string[] = [];
  const read = new Set<string>();
  const write = new Set<string>();
  for (const p of code.readPaths) read.add(p);
  for (const p of paths.readWrite) {
    await mkdir(p, { recursive: true });
    for (const s of spellings(p)) {
      read.add(s);
      write.add(s);
    }
  }
  for (const d of paths.devices) {
    for (const s of spellings(d)) {
      read.add(s);
      write.add(s);
    }
  }
  const args: string[] = [];
  const flag = permissionFlag();
  const sandbox = opts.sandbox !== false;
  if (sandbox && flag) {
    args.push(flag);
    if (process.allowedNodeEnvironmentFlags.has('--disable-warning')) args.push('--disable-warning=ExperimentalWarning');
    for (const p of read) args.push(`--allow-fs-read=${p}`);
    for (const p of write) args.push(`--allow-fs-write=${p}`);
    if (paths.childProcesses) {
      args.push('--allow-child-process');
      notes.push('the SCSI backend runs mt and mtx: child processes are outside Node\'s permission model (the systemd unit confines them)');
    }
  } else if (!sandbox) notes.push('sandbox disabled by configuration');
  else notes.push(`this Node (${process.version}) has no permission model`);
  args.push(code.entry);
  let command = process.execPath;
  const net = sandbox ? netnsPrefix() : { prefix: [] as string[], isolated: false, note: 'sandbox disabled' };
  if (net.note) notes.push(net.note);
  if (net.prefix.length) {
    command = net.prefix[0]!;
    args.unshift(...net.prefix.slice(1), process.execPath);
  }
  return {
    command,
    args,
    env,
    sandbox: {
      permission: sandbox && !!flag,
      read: [...read],
      write: [...write],
      netns: net.isolated,
      notes,
    },
  };
}

export async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}
