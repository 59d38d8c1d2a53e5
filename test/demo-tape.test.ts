// The embedded default end to end: `tapedeck serve` with no media directory puts the demo
// video and first album on the virtual tape library with small stubs, and playing them
// reads tape through the staging worker — byte for byte the files the demo generator makes,
// with the reads visible in /metrics and the status page. Loopback only, SSDP off.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDemoLibrary } from '../src/demo/library.js';
import { demoArchiveSet } from '../src/demo/tape.js';
import { jsonLines, REPO_ROOT } from './helpers/lab.js';
import { tempDir } from './helpers/temp.js';

type Line = Record<string, any>;

async function soapSearch(base: string, criteria: string): Promise<string> {
  const body =
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>' +
    '<u:Search xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1"><ContainerID>0</ContainerID>' +
    `<SearchCriteria>${criteria.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;')}</SearchCriteria>` +
    '<Filter>*</Filter><StartingIndex>0</StartingIndex><RequestedCount>0</RequestedCount><SortCriteria></SortCriteria></u:Search></s:Body></s:Envelope>';
  const r = await fetch(`${base}upnp/control/cds`, {
    method: 'POST',
    headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: '"urn:schemas-upnp-org:service:ContentDirectory:1#Search"' },
    body,
  });
  if (r.status !== 200) throw new Error(`Search: HTTP ${r.status}`);
  return r.text();
}

/** [title, url] of every item in a DIDL-Lite result (entity-escaped inside the SOAP body). */
function itemsOf(soap: string): [string, string][] {
  const didl = soap.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  return [...didl.matchAll(/<item [\s\S]*?<dc:title>([^<]*)<\/dc:title>[\s\S]*?<res [^>]*>([^<]*)<\/res>/g)].map((m) => [m[1], m[2]]);
}

const metric = (text: string, name: string, labels = '') => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

test('the demo plays its archived items from the virtual tape library, byte for byte', async (t) => {
  t.timeout(120_000);
  const dir = await tempDir(t, 'tapedeck-demo-tape-');
  // the generator is deterministic: a second copy is the reference
  const reference = join(dir, 'reference');
  await createDemoLibrary(reference);

  const conf = join(dir, 'empty.conf'); // embedded defaults, whatever /etc/tapedeck holds
  await writeFile(conf, '');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--data', join(dir, 'data'), '--interface', 'lo', '--port', '0', '--no-ssdp'], {
    cwd: REPO_ROOT,
    stdio: 'pipe',
    env: { ...process.env, TAPEDECK_CONFIG: conf },
  });
  const srv = jsonLines<Line>(child);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const moved = await srv.waitFor((l) => typeof l.msg === 'string' && /^demo: \d+ items moved/.test(l.msg), 90_000, 'demo archive line');
  t.regex(moved.msg, new RegExp(`^demo: ${demoArchiveSet().size} items moved`));
  const base = (srv.lines.find((l) => Array.isArray(l.urls))!.urls as string[])[0];

  const metricsBefore = await (await fetch(`${base}metrics`)).text();
  const readBefore = metric(metricsBefore, 'tapedeck_tape_bytes_read_total') ?? 0;

  const archived = [...demoArchiveSet()];
  const found = new Map([
    ...itemsOf(await soapSearch(base, 'upnp:class derivedfrom "object.item.videoItem"')),
    ...itemsOf(await soapSearch(base, 'upnp:class derivedfrom "object.item.audioItem"')),
  ]);
  let served = 0;
  for (const rel of archived) {
    const original = await readFile(join(reference, rel));
    const title = rel.split('/').pop()!.replace(/^\d+ /, '').replace(/\.\w+$/, '');
    const url = found.get(title);
    t.truthy(url, `${rel} is in the catalog`);
    const full = Buffer.from(await (await fetch(url!)).arrayBuffer());
    t.true(full.equals(original), `${rel}: whole file identical`);
    // a range in the middle, past the stub's head and before its tail
    const a = Math.floor(original.length / 3);
    const b = Math.floor((original.length * 2) / 3);
    const part = await fetch(url!, { headers: { range: `bytes=${a}-${b}` } });
    t.is(part.status, 206);
    t.is(part.headers.get('content-range'), `bytes ${a}-${b}/${original.length}`);
    t.true(Buffer.from(await part.arrayBuffer()).equals(original.subarray(a, b + 1)), `${rel}: middle range identical`);
    served += original.length;
  }

  const metricsAfter = await (await fetch(`${base}metrics`)).text();
  t.true((metric(metricsAfter, 'tapedeck_tape_bytes_read_total') ?? 0) > readBefore, 'playing the archived items read tape');
  t.true((metric(metricsAfter, 'tapedeck_http_response_bytes_total', '{tier="tape"}') ?? 0) >= served, 'served as the tape tier');
  t.true((metric(metricsAfter, 'tapedeck_stager_queue_wait_seconds_count') ?? 0) > 0, 'tape reads went through admission and their waits are recorded');
  t.is(metric(metricsAfter, 'tapedeck_stager_up'), 1);
  const status = (await (await fetch(`${base}status.json`)).json()) as { tape: { counters?: { bytesRead?: number; mounts?: number } } };
  t.true((status.tape.counters?.bytesRead ?? 0) > 0, 'the status page shows the tape reads');
  t.true((status.tape.counters?.mounts ?? 0) >= 1);

  child.kill('SIGTERM');
  t.is(await srv.exited(20_000), 0, 'clean exit on SIGTERM');
});
