// Finds MiniDLNA (the reference server of the benchmark) and ffprobe (which the deployed
// server uses), installing the Debian packages when missing and this is a root shell with apt. The package's own
// service must never start here (it would announce itself over SSDP on the real
// network): /usr/sbin/policy-rc.d answering 101 stops maintainer scripts from
// starting services, and is removed again if this module created it.

import { existsSync } from 'node:fs';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { run, which } from '../test/helpers/lab.js';

export interface MinidlnaInfo {
  binary?: string;
  version?: string;
  installedNow?: boolean;
  /** Why it is not available. */
  absent?: string;
}

const POLICY = '/usr/sbin/policy-rc.d';

async function version(binary: string): Promise<string> {
  const r = await run(binary, ['-V'], { timeoutMs: 10_000 });
  const m = /Version\s+(\S+)/i.exec(r.stdout + r.stderr);
  return m ? m[1] : 'unknown';
}

/**
 * Installs Debian packages with apt (root only), with policy-rc.d keeping their services
 * from starting; returns why not when it could not.
 */
export async function aptInstall(pkgs: string[], log: (s: string) => void): Promise<string | undefined> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'installing it needs root';
  if (!which('apt-get')) return 'there is no apt-get to install it';
  let createdPolicy = false;
  try {
    if (!existsSync(POLICY)) {
      await writeFile(POLICY, '#!/bin/sh\n# added by tapedeck bench: no service starts while packages install\nexit 101\n');
      await chmod(POLICY, 0o755);
      createdPolicy = true;
    }
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env, timeoutMs: 600_000 });
    log(`installing the Debian package(s) ${pkgs.join(' ')} (services kept from starting by policy-rc.d)`);
    let r = await install();
    if (r.code !== 0) {
      log('apt-get install failed; running apt-get update and trying again');
      await run('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000 });
      r = await install();
    }
    if (r.code !== 0) return `apt-get install ${pkgs.join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`;
    return undefined;
  } finally {
    if (createdPolicy) await rm(POLICY, { force: true });
  }
}

export async function findMinidlna(opts: { install: boolean; log: (s: string) => void }): Promise<MinidlnaInfo> {
  const found = which('minidlnad') ?? which('minidlna');
  if (found) return { binary: found, version: await version(found) };
  if (!opts.install) return { absent: 'minidlnad not found (installation not attempted)' };
  const why = await aptInstall(['minidlna'], opts.log);
  if (why) return { absent: `minidlnad not found, and ${why}` };
  const bin = which('minidlnad') ?? which('minidlna');
  if (!bin) return { absent: 'the minidlna package installed no minidlnad binary' };
  return { binary: bin, version: await version(bin), installedNow: true };
}

/**
 * ffprobe, as a deployed NAS has it (the scanner reads video details with it): installed
 * with the Debian package ffmpeg when missing and possible, so the scan figures include it.
 */
export async function findFfprobe(opts: { install: boolean; log: (s: string) => void }): Promise<{ binary?: string; absent?: string }> {
  const found = which('ffprobe');
  if (found) return { binary: found };
  if (!opts.install) return { absent: 'ffprobe not found (installation not attempted)' };
  const why = await aptInstall(['ffmpeg'], opts.log);
  const bin = which('ffprobe');
  return bin ? { binary: bin } : { absent: `ffprobe not found, and ${why ?? 'the ffmpeg package installed none'}` };
}
