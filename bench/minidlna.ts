// Finds MiniDLNA (the reference server of the benchmark), installing the Debian
// package when it is missing and this is a root shell with apt. The package's own
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

export async function findMinidlna(opts: { install: boolean; log: (s: string) => void }): Promise<MinidlnaInfo> {
  const found = which('minidlnad') ?? which('minidlna');
  if (found) return { binary: found, version: await version(found) };
  if (!opts.install) return { absent: 'minidlnad not found (installation not attempted)' };
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return { absent: 'minidlnad not found, and installing it needs root' };
  if (!which('apt-get')) return { absent: 'minidlnad not found, and there is no apt-get to install it' };

  let createdPolicy = false;
  try {
    if (!existsSync(POLICY)) {
      await writeFile(POLICY, '#!/bin/sh\n# added by tapedeck bench: no service starts while packages install\nexit 101\n');
      await chmod(POLICY, 0o755);
      createdPolicy = true;
    }
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'minidlna'], { env, timeoutMs: 600_000 });
    opts.log('installing the Debian package minidlna (its service is kept from starting by policy-rc.d)');
    let r = await install();
    if (r.code !== 0) {
      opts.log('apt-get install failed; running apt-get update and trying again');
      await run('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000 });
      r = await install();
    }
    if (r.code !== 0) return { absent: `apt-get install minidlna failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}` };
  } finally {
    if (createdPolicy) await rm(POLICY, { force: true });
  }
  const bin = which('minidlnad') ?? which('minidlna');
  if (!bin) return { absent: 'the minidlna package installed no minidlnad binary' };
  return { binary: bin, version: await version(bin), installedNow: true };
}
