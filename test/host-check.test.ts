// DNS rebinding: a request whose Host header names another host (a page of attacker.example
// whose name now resolves to the NAS) is refused on every route; IP literals, localhost, the host
// name, <hostname>.local, allowed_hosts and no Host at all pass. The server runs on loopback with
// SSDP off.
import test from 'ava';
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostChecker, hostOf } from '../src/http/host-check.js';
import { loadConfig, ConfigError } from '../src/config.js';
import { serveMedia } from './helpers/serve.js';

test('hostOf: the name or address of a Host value, without port, brackets, zone or trailing dot', (t) => {
  t.is(hostOf('192.168.1.5:8210'), '192.168.1.5');
  t.is(hostOf('NAS.Local.'), 'nas.local');
  t.is(hostOf('[fe80::1%25eth0]:8210'), 'fe80::1');
  t.is(hostOf('[::1]'), '::1');
  for (const bad of ['[::1', '[::1]x', '[nope]:80', 'a:b:c', 'evil"host/<x>', 'user@host', 'host:999999', ''])
    t.is(hostOf(bad), undefined, bad);
});

test('hostChecker: IP literals, localhost, the host name (and its first label) with or without .local, extra names; nothing else', (t) => {
  const ok = hostChecker({ hostname: 'Nas.home.lan', extra: ['media.example.org.'] });
  for (const h of [undefined, '', '10.0.0.2', '10.0.0.2:8210', '[::1]:8210', '[2001:db8::5]', 'localhost:8210', 'LOCALHOST',
    'nas.home.lan', 'nas.home.lan.local:8210', 'nas', 'NAS.local', 'media.example.org:443', 'media.example.org.'])
    t.true(ok(h), String(h));
  for (const h of ['attacker.example', 'attacker.example:8210', 'nas.attacker.example', 'localhost.attacker.example', '10.0.0.2.nip.io',
    'home.lan', 'example.org', 'evil"host/<x>', '[::1', '2130706433x'])
    t.false(ok(h), h);
  t.true(hostChecker({ extra: ['*'] })('anything.example'), '* accepts any name');
});

test('allowed_hosts: flag, environment and file; bad names are configuration errors', async (t) => {
  const env = {} as NodeJS.ProcessEnv;
  t.deepEqual(loadConfig({ flags: { allowHost: ['nas.example', 'media.example'] }, env, checkMediaDirs: false }).allowedHosts, ['nas.example', 'media.example']);
  t.deepEqual(loadConfig({ flags: {}, env: { TAPEDECK_ALLOWED_HOSTS: 'a.example,b.example' } as NodeJS.ProcessEnv, checkMediaDirs: false }).allowedHosts, ['a.example', 'b.example']);
  t.deepEqual(loadConfig({ flags: {}, env, checkMediaDirs: false }).allowedHosts, []);
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-hostconf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = join(dir, 't.conf');
  await writeFile(f, 'allowed_hosts = nas.example\nallowed_hosts = *\n');
  t.deepEqual(loadConfig({ flags: { config: f }, env, checkMediaDirs: false }).allowedHosts, ['nas.example', '*']);
  await writeFile(f, 'allowed_hosts = http://nas.example/\n');
  const err = t.throws(() => loadConfig({ flags: { config: f }, env, checkMediaDirs: false }), { instanceOf: ConfigError });
  t.regex(err!.message, /:1: .*allowed_hosts.*not a host name/);
});

function get(port: number, path: string, host: string | undefined, method = 'GET', headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string> = { ...headers };
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: h, agent: false, setHost: host !== undefined }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    if (host !== undefined) req.setHeader('Host', host);
    req.on('error', reject);
    req.end(body);
  });
}

test('the server refuses a foreign Host on every route (status page, status.json, metrics, description, media, control) and serves its own names', async (t) => {
  t.timeout(90_000);
  const m = await mkdtemp(join(tmpdir(), 'tapedeck-hostcheck-'));
  t.teardown(() => rm(m, { recursive: true, force: true }));
  const { base, srv } = await serveMedia(t, m, ['--allow-host', 'nas.example']);
  const port = Number(new URL(base).port);
  const soapBody = '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetSystemUpdateID xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1"/></s:Body></s:Envelope>';
  const soapHeaders = { 'Content-Type': 'text/xml; charset="utf-8"', SOAPACTION: '"urn:schemas-upnp-org:service:ContentDirectory:1#GetSystemUpdateID"' };
  const routes: [string, string, Record<string, string>?, string?][] = [
    ['GET', '/'],
    ['GET', '/status.json'],
    ['GET', '/metrics'],
    ['GET', '/description.xml'],
    ['GET', '/media/inothere'],
    ['POST', '/upnp/control/cds', soapHeaders, soapBody],
  ];
  for (const [method, path, headers, body] of routes) {
    for (const host of ['attacker.example', `attacker.example:${port}`, `nas.example.attacker.example:${port}`]) {
      const r = await get(port, path, host, method, headers, body);
      t.is(r.status, 403, `${method} ${path} Host ${host}`);
      t.regex(r.body, /not a name of this server.*allowed_hosts/s);
    }
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `${hostname()}:${port}`, `${hostname()}.local:${port}`, `nas.example:${port}`]) {
    t.is((await get(port, '/status.json', host)).status, 200, `Host ${host}`);
    t.is((await get(port, '/upnp/control/cds', host, 'POST', soapHeaders, soapBody)).status, 200, `control, Host ${host}`);
  }
  t.is((await get(port, '/media/inothere', `127.0.0.1:${port}`)).status, 404, 'media routes still answer an IP Host');
  // an absolute-form target names the host; the Host header is then ignored (RFC 9112 §3.2.2)
  t.is((await get(port, `http://attacker.example:${port}/status.json`, `127.0.0.1:${port}`)).status, 403, 'absolute-form target of another host');
  t.is((await get(port, `http://attacker.example:${port}/upnp/control/cds`, `127.0.0.1:${port}`, 'POST', soapHeaders, soapBody)).status, 403, 'absolute-form control POST');
  t.is((await get(port, `http://127.0.0.1:${port}/status.json`, 'attacker.example')).status, 200, 'absolute-form target naming an IP');
  // two Host lines (RFC 9112 §3.2: a server MUST refuse them): Node keeps the first, so the
  // check passed on the server's own address whatever the second named (QA probe)
  for (const [method, path, extra, body] of [['GET', '/status.json', '', ''], ['POST', '/upnp/control/cds', `Content-Type: text/xml\r\nSOAPACTION: ${soapHeaders.SOAPACTION}\r\n`, soapBody]] as const) {
    for (const hosts of [[`127.0.0.1:${port}`, 'attacker.example'], ['attacker.example', `127.0.0.1:${port}`], [`127.0.0.1:${port}`, `127.0.0.1:${port}`]]) {
      const head = `${method} ${path} HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join('')}${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
      const status = await rawStatus(port, head + body);
      t.is(status, 400, `${method} ${path} with Host lines ${hosts.join(' + ')}`);
    }
  }
  t.true(srv.lines.some((l) => /DNS-rebinding/.test(String(l.msg)) && l.host === 'attacker.example'), 'the refusal is logged');
});

/** The status code of a request written byte for byte (the client's own header lines). */
function rawStatus(port: number, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    sock.setTimeout(20_000, () => sock.destroy(new Error('no answer within 20 s')));
    sock.on('data', (d) => (got += d.toString('latin1')));
    sock.on('error', reject);
    sock.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0)));
    sock.end(request);
  });
}
