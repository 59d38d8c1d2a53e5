// A restarting server answers Browse before its staging worker is up: the worker (a second
// Node.js process, or an external stager) is not needed for Browse or disk items, so HTTP
// listens while the tape tier starts (issue 11, item 6: ready within 1 s). Loopback, no SSDP.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonLines, REPO_ROOT } from './helpers/lab.js';

type Line = Record<string, any>;

test('the server listens and answers Browse while its stager is not there yet; the control socket follows the tape tier', async (t) => {
  t.timeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-ready-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const conf = join(dir, 'empty.conf');
  await writeFile(conf, '');
  const port = 20000 + ((process.pid + 4241) % 20000);
  // an external stager whose socket nobody serves: the tier's start waits for it (up to 20 s)
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', conf, '--data', join(dir, 'data'), '--interface', 'lo', '--port', String(port), '--no-ssdp', '--stager', join(dir, 'nobody.sock'), '--no-watch', '--rescan-interval', '0'],
    { cwd: REPO_ROOT, stdio: 'pipe', env: { ...process.env, TAPEDECK_CONFIG: '', INIT_CWD: '', XDG_RUNTIME_DIR: dir } },
  );
  const srv = jsonLines<Line>(child);
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const serving = await srv.waitFor((l) => Array.isArray(l.urls), 60_000, 'serving line');
  const res = await fetch(`${serving.urls[0]}upnp/control/cds`, {
    method: 'POST',
    headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: '"urn:schemas-upnp-org:service:ContentDirectory:1#Browse"' },
    body: '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:Browse xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1"><ObjectID>0</ObjectID><BrowseFlag>BrowseDirectChildren</BrowseFlag><Filter>*</Filter><StartingIndex>0</StartingIndex><RequestedCount>10</RequestedCount><SortCriteria></SortCriteria></u:Browse></s:Body></s:Envelope>',
  });
  t.is(res.status, 200);
  t.regex(await res.text(), /NumberReturned>4</);
  const msgs = () => srv.lines.map((l) => String(l.msg ?? ''));
  t.false(
    msgs().some((m) => /staging worker not available yet/.test(m)),
    'Browse answered before the tier gave up waiting for the stager',
  );
  // the tier's start gives up after its wait; then the control socket opens
  await srv.waitFor((l) => /control socket listening/.test(String(l.msg)), 60_000, 'the control socket');
  const order = msgs().filter((m) => /^serving "|staging worker not available yet|control socket listening/.test(m));
  t.deepEqual(
    order.map((m) => m.split(' ')[0]),
    ['serving', 'staging', 'control'],
  );
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
});
