// Interoperability with a third-party UPnP stack: a control point built on GUPnP/GSSDP
// (test/interop/gupnp-cp.c, the library behind Rygel and the GNOME UPnP tools) runs in the
// lab's client namespace against the real server in the server namespace. GSSDP finds the
// server by M-SEARCH and NOTIFY, GUPnP fetches and parses the device description and both
// SCPDs and calls Browse, and GSSDP sees the server leave (ssdp:byebye) on SIGTERM.
import test from 'ava';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, jsonLines, labAvailable, REPO_ROOT, run, which } from './helpers/lab.js';

type Line = Record<string, any>;
const SOURCE = join(REPO_ROOT, 'test', 'interop', 'gupnp-cp.c');
const CDS = 'urn:schemas-upnp-org:service:ContentDirectory:1';
const CMS = 'urn:schemas-upnp-org:service:ConnectionManager:1';

/** Why the control point cannot be built here, or undefined when it can. */
function missingTools(): string | undefined {
  if (!which('cc')) return 'no C compiler (Debian package gcc)';
  if (!which('pkg-config')) return 'pkg-config is not installed (Debian package pkg-config)';
  if (spawnSync('pkg-config', ['--exists', 'gupnp-1.6']).status !== 0) return 'GUPnP 1.6 development files are missing (Debian package libgupnp-1.6-dev)';
  return undefined;
}

const why = labAvailable() ?? missingTools();
const lab = why ? undefined : createLab('tdgup', '10.96.0');
const work = mkdtempSync(join(tmpdir(), 'tapedeck-interop-'));
const binary = join(work, 'gupnp-cp');

test.before(async () => {
  if (!lab) return;
  const flags = await run('pkg-config', ['--cflags', '--libs', 'gupnp-1.6']);
  const cc = await run('cc', ['-Wall', '-Werror', '-O1', '-o', binary, SOURCE, ...flags.stdout.trim().split(/\s+/)], { timeoutMs: 120_000 });
  if (cc.code !== 0) throw new Error(`building the GUPnP control point failed:\n${cc.stderr}`);
  await lab.up();
});
test.after.always(async () => {
  await lab?.down();
  rmSync(work, { recursive: true, force: true });
});

/** Number of <action> elements in one of our SCPD templates. */
function actionsIn(template: string): number {
  return readFileSync(join(REPO_ROOT, 'devices', template), 'utf8').match(/<action>/g)?.length ?? 0;
}

interface CpLine {
  kind: string;
  fields: string[];
}

/** Runs the control point in the client namespace; lines are collected as they arrive. */
function startControlPoint(seconds: number): { child: ChildProcess; lines: CpLine[]; done: Promise<number | null>; stderr: () => string } {
  const child = lab!.spawnCli(binary, [lab!.cliIf, String(seconds)]);
  const lines: CpLine[] = [];
  let buf = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const [kind, ...fields] = buf.slice(0, nl).split('\t');
      lines.push({ kind, fields });
      buf = buf.slice(nl + 1);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, lines, done, stderr: () => err };
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const title = 'a GUPnP control point discovers the server, parses its descriptions, browses, and sees it leave';
if (!lab) test.skip(`${title} (skipped: ${why})`, () => {});
else test.serial(title, async (t) => {
  const dataDir = join(work, 'data');
  const srv = jsonLines<Line>(lab!.spawnNode('srv', 'src/cli.ts', ['serve', '--data', dataDir, '--interface', lab!.srvIf, '--port', '0', '--name', 'Interop Tapedeck']));
  let cp: ReturnType<typeof startControlPoint> | undefined;
  try {
    await srv.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('library:'), 60_000, 'server library line');
    const uuid = srv.lines.find((l) => l.uuid)?.uuid as string;
    t.truthy(uuid, 'server logs its UUID');
    const udn = `uuid:${uuid}`;

    cp = startControlPoint(30);
    const mine = (kind: string) => cp!.lines.filter((l) => l.kind === kind && l.fields[0] === udn);
    await until(() => mine('browse').length > 0 && mine('scpd').length === 2 || cp!.lines.some((l) => l.kind === 'error'), 20_000, 'GUPnP browse and introspection');
    t.deepEqual(cp.lines.filter((l) => l.kind === 'error'), [], 'no GUPnP errors');

    const available = mine('available');
    t.is(available.length, 1, 'GUPnP reports the MediaServer once');
    t.regex(available[0].fields[1], new RegExp(`^http://${lab!.srvIp.replace(/\./g, '\\.')}:\\d+/`), 'LOCATION on the lab address');
    t.is(available[0].fields[2], 'Interop Tapedeck');

    const scpd = new Map(mine('scpd').map((l) => [l.fields[1], Number(l.fields[2])]));
    t.is(scpd.get(CDS), actionsIn('ContentDirectory.xml'), 'GUPnP parsed every ContentDirectory action');
    t.is(scpd.get(CMS), actionsIn('ConnectionManager.xml'), 'GUPnP parsed every ConnectionManager action');

    const [, returned, total, , resultBytes] = mine('browse')[0].fields.map(Number);
    // the demo library holds a playlist, so root also has Playlists (shown only while there is one)
    t.is(returned, 5, 'root holds Music, Video, Pictures, Folders and Playlists');
    t.is(total, 5);
    t.true(resultBytes > 200, 'a DIDL-Lite result came back');

    // Orderly shutdown: GSSDP hears the byebye and drops the device (the control point runs
    // on for 30 s, and reports nothing of its own disposal, so these lines come from the network)
    t.deepEqual([...mine('unavailable'), ...cp.lines.filter((l) => l.kind === 'byebye')], [], 'nothing gone while the server runs');
    process.kill(srv.child.pid!, 'SIGTERM');
    t.is(await srv.exited(15_000), 0, 'exit code 0 on SIGTERM');
    await until(() => mine('unavailable').length > 0, 5_000, 'GUPnP device-proxy-unavailable').catch((e) => {
      t.log(cp!.lines.map((l) => [l.kind, ...l.fields].join(' ')).join('\n'));
      throw e;
    });
    t.true(
      cp.lines.some((l) => l.kind === 'byebye' && l.fields[0] === `${udn}::urn:schemas-upnp-org:device:MediaServer:1`),
      'GSSDP heard ssdp:byebye for the MediaServer',
    );
  } finally {
    for (const c of [srv.child, cp?.child]) {
      if (c?.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});
