import test from 'ava';
import type { ExecutionContext } from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import { Router } from '@koa/router';
import { parseStringPromise } from 'xml2js';
import {
  BodyTooLargeError,
  parseSoapAction,
  parseSoapRequest,
  readBody,
  SoapParseError,
  soapFault,
  soapResponse,
  soapRoutes,
  UPNP_ERRORS,
  UpnpError,
} from '../src/upnp/soap.js';
import type { SoapContext, SoapService } from '../src/upnp/soap.js';
import type { ClientProfile } from '../src/upnp/clients.js';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'golden');

function golden(t: ExecutionContext, name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.UPDATE_GOLDEN !== '1') t.fail(`golden file ${name} missing (run with UPDATE_GOLDEN=1 to create it)`);
    writeFileSync(file, actual);
    return;
  }
  t.is(actual, readFileSync(file, 'utf8'), `output differs from golden file ${name}`);
}

const CDS = 'urn:schemas-upnp-org:service:ContentDirectory:1';
const BROWSE_HDR = `"${CDS}#Browse"`;

function envelope(inner: string, prefix = 's', extra = ''): string {
  const p = prefix ? `${prefix}:` : '';
  const decl = prefix ? `xmlns:${prefix}` : 'xmlns';
  return (
    `<?xml version="1.0" encoding="utf-8"?>\n<${p}Envelope ${decl}="http://schemas.xmlsoap.org/soap/envelope/" ${p}encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"${extra}>` +
    `<${p}Body>${inner}</${p}Body></${p}Envelope>`
  );
}

const browseBody = (args = '<ObjectID>0</ObjectID><BrowseFlag>BrowseDirectChildren</BrowseFlag><Filter>*</Filter><StartingIndex>0</StartingIndex><RequestedCount>50</RequestedCount><SortCriteria></SortCriteria>') =>
  envelope(`<u:Browse xmlns:u="${CDS}">${args}</u:Browse>`);

async function upnpCode(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    if (e instanceof UpnpError) return e.code;
    if (e instanceof SoapParseError) return 'parse';
    return `other: ${(e as Error).message}`;
  }
}

// ---------------------------------------------------------------------------
// parseSoapAction / parseSoapRequest

test('parseSoapAction: quoted, unquoted, padded; junk refused', (t) => {
  t.deepEqual(parseSoapAction(`"${CDS}#Browse"`), { serviceType: CDS, action: 'Browse' });
  t.deepEqual(parseSoapAction(`${CDS}#Browse`), { serviceType: CDS, action: 'Browse' });
  t.deepEqual(parseSoapAction(`  "${CDS}#Search"  `), { serviceType: CDS, action: 'Search' });
  t.is(parseSoapAction(undefined), undefined);
  t.is(parseSoapAction(''), undefined);
  t.is(parseSoapAction('"#Browse"'), undefined);
  t.is(parseSoapAction(`"${CDS}#"`), undefined);
  t.is(parseSoapAction(`"${CDS}#Bro wse"`), undefined);
  t.is(parseSoapAction(`"${CDS}"`), undefined);
});

test('parseSoapRequest: a standard Browse request', async (t) => {
  const r = await parseSoapRequest(browseBody(), BROWSE_HDR);
  t.is(r.serviceType, CDS);
  t.is(r.action, 'Browse');
  t.deepEqual(r.args, {
    ObjectID: '0',
    BrowseFlag: 'BrowseDirectChildren',
    Filter: '*',
    StartingIndex: '0',
    RequestedCount: '50',
    SortCriteria: '',
  });
});

test('parseSoapRequest: lenient about prefixes (SOAP-ENV:, none, any action prefix, unbound prefix)', async (t) => {
  const args = '<ObjectID>64$1</ObjectID><Filter/>';
  const variants = [
    envelope(`<m:Browse xmlns:m="${CDS}">${args}</m:Browse>`, 'SOAP-ENV'),
    envelope(`<Browse xmlns="${CDS}">${args}</Browse>`, ''),
    envelope(`<u:Browse>${args}</u:Browse>`, 's', ` xmlns:u="${CDS}"`), // prefix declared on the Envelope
    `<s:Envelope><s:Body><u:Browse>${args}</u:Browse></s:Body></s:Envelope>`, // nothing declared at all
    `<Envelope><Body><Browse>${args}</Browse></Body></Envelope>`,
  ];
  for (const body of variants) {
    const r = await parseSoapRequest(Buffer.from(body), `${CDS}#Browse`);
    t.deepEqual(r.args, { ObjectID: '64$1', Filter: '' }, body);
  }
});

test('parseSoapRequest: text is entity-decoded, CDATA kept, whitespace preserved, BOM skipped', async (t) => {
  const r = await parseSoapRequest(
    '\uFEFF' + browseBody('<SearchCriteria>dc:title contains &quot;a&amp;b&quot;</SearchCriteria><X><![CDATA[<raw>]]></X><Y>  sp  </Y>'),
    BROWSE_HDR,
  );
  t.deepEqual(r.args, { SearchCriteria: 'dc:title contains "a&b"', X: '<raw>', Y: '  sp  ' });
});

test('parseSoapRequest: missing or malformed SOAPACTION → 401', async (t) => {
  t.is(await upnpCode(parseSoapRequest(browseBody(), undefined)), 401);
  t.is(await upnpCode(parseSoapRequest(browseBody(), '')), 401);
  t.is(await upnpCode(parseSoapRequest(browseBody(), 'Browse')), 401);
});

test('parseSoapRequest: action or namespace not matching the header → 401', async (t) => {
  t.is(await upnpCode(parseSoapRequest(browseBody(), `"${CDS}#Search"`)), 401);
  t.is(await upnpCode(parseSoapRequest(browseBody(), '"urn:schemas-upnp-org:service:ConnectionManager:1#Browse"')), 401);
});

test('parseSoapRequest: not a SOAP envelope / no single action → 401', async (t) => {
  t.is(await upnpCode(parseSoapRequest('<Browse/>', BROWSE_HDR)), 401);
  t.is(await upnpCode(parseSoapRequest('<s:Envelope xmlns:s="x"/>', BROWSE_HDR)), 401);
  t.is(await upnpCode(parseSoapRequest(envelope(''), BROWSE_HDR)), 401);
  t.is(await upnpCode(parseSoapRequest(envelope(`<u:Browse xmlns:u="${CDS}"/><u:Browse xmlns:u="${CDS}"/>`), BROWSE_HDR)), 401);
  t.is(await upnpCode(parseSoapRequest('<s:Envelope xmlns:s="x"><s:Body/><s:Body/></s:Envelope>', BROWSE_HDR)), 401);
});

test('parseSoapRequest: structured, repeated or reserved argument names → 402', async (t) => {
  t.is(await upnpCode(parseSoapRequest(browseBody('<ObjectID><a>1</a></ObjectID>'), BROWSE_HDR)), 402);
  t.is(await upnpCode(parseSoapRequest(browseBody('<ObjectID>1</ObjectID><ObjectID>2</ObjectID>'), BROWSE_HDR)), 402);
  t.is(await upnpCode(parseSoapRequest(browseBody('<__proto__>1</__proto__>'), BROWSE_HDR)), 402);
  t.is(await upnpCode(parseSoapRequest(browseBody('<a:ObjectID xmlns:a="x">1</a:ObjectID><ObjectID>2</ObjectID>'), BROWSE_HDR)), 402);
  // An action without arguments is fine.
  t.deepEqual((await parseSoapRequest(envelope(`<u:GetSystemUpdateID xmlns:u="${CDS}"/>`), `${CDS}#GetSystemUpdateID`)).args, {});
});

test('parseSoapRequest: malformed XML → SoapParseError (HTTP 400), never a crash', async (t) => {
  const bad = [
    '',
    '   ',
    'not xml',
    '<s:Envelope><s:Body>',
    '<a><b></a>',
    '<a>&bogus;</a>',
    '<a>&#0;</a>',
    '\u0000\u0001',
    '<?xml version="1.0"?>',
  ];
  for (const b of bad) t.is(await upnpCode(parseSoapRequest(b, BROWSE_HDR)), 'parse', JSON.stringify(b));
});

const BILLION_LAUGHS =
  '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n' +
  Array.from({ length: 9 }, (_, i) => ` <!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('\n') +
  `\n]>\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:Browse xmlns:u="${CDS}"><ObjectID>&lol9;</ObjectID></u:Browse></s:Body></s:Envelope>`;
const XXE =
  '<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' +
  `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:Browse xmlns:u="${CDS}"><ObjectID>&xxe;</ObjectID></u:Browse></s:Body></s:Envelope>`;

test('billion laughs and XXE are refused up front, before any entity is expanded', async (t) => {
  for (const [name, body] of [
    ['billion laughs', BILLION_LAUGHS],
    ['XXE', XXE],
    ['lower-case doctype', XXE.replace('DOCTYPE', 'doctype')],
  ]) {
    // the refusal names the DTD: the document was refused for declaring one, not after expanding it
    const err = await t.throwsAsync(parseSoapRequest(body, BROWSE_HDR), { instanceOf: SoapParseError }, name);
    t.regex(err!.message, /DTD/);
  }
});

test('xml2js itself does not expand DTD entities (defence in depth behind the up-front refusal)', async (t) => {
  await t.throwsAsync(parseStringPromise(BILLION_LAUGHS), { message: /entity/i });
  await t.throwsAsync(parseStringPromise(XXE), { message: /entity/i });
});

// ---------------------------------------------------------------------------
// Envelopes

test('soapResponse: Browse-like response, out-arguments in order, Result escaped', async (t) => {
  const didl =
    '<DIDL-Lite xmlns="urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:upnp="urn:schemas-upnp-org:metadata-1-0/upnp/">' +
    '<item id="1" parentID="0" restricted="1"><dc:title>Tom &amp; Jerry "quoted"</dc:title><upnp:class>object.item.videoItem</upnp:class></item></DIDL-Lite>';
  const xml = soapResponse(CDS, 'Browse', [
    ['Result', didl],
    ['NumberReturned', 1],
    ['TotalMatches', 1],
    ['UpdateID', 7],
  ]);
  golden(t, 'soap-browse-response.xml', xml);
  const doc = await parseStringPromise(xml);
  const resp = doc['s:Envelope']['s:Body'][0]['u:BrowseResponse'][0];
  t.is(resp.$['xmlns:u'], CDS);
  t.deepEqual(Object.keys(resp).filter((k) => k !== '$'), ['Result', 'NumberReturned', 'TotalMatches', 'UpdateID']);
  t.is(resp.Result[0], didl, 'the DIDL-Lite document survives the round trip exactly');
  // Order follows the object too.
  const o = soapResponse(CDS, 'X', { B: 1, A: 2 });
  t.true(o.indexOf('<B>1</B>') < o.indexOf('<A>2</A>'));
  t.throws(() => soapResponse(CDS, 'Bad Name', {}));
  t.throws(() => soapResponse(CDS, 'Browse', [['<x>', 1]]));
});

test('soapFault: standard envelope for every code', async (t) => {
  t.deepEqual(Object.keys(UPNP_ERRORS).map(Number), [401, 402, 501, 701, 708, 709, 710, 720]);
  for (const [code, desc] of Object.entries(UPNP_ERRORS)) {
    const xml = soapFault(Number(code), desc);
    golden(t, `soap-fault-${code}.xml`, xml);
    const doc = await parseStringPromise(xml);
    const fault = doc['s:Envelope']['s:Body'][0]['s:Fault'][0];
    t.is(fault.faultcode[0], 's:Client');
    t.is(fault.faultstring[0], 'UPnPError');
    const e = fault.detail[0].UPnPError[0];
    t.is(e.$.xmlns, 'urn:schemas-upnp-org:control-1-0');
    t.is(e.errorCode[0], code);
    t.is(e.errorDescription[0], desc);
  }
  t.true(soapFault(701, 'No such object: <a&b>').includes('<errorDescription>No such object: &lt;a&amp;b&gt;</errorDescription>'));
  t.true(soapFault(709).includes('<errorDescription>Unsupported or invalid sort criteria</errorDescription>'));
  t.is(new UpnpError(710).message, 'No such container');
});

// ---------------------------------------------------------------------------
// readBody

/** A 10 MB stream that counts how many bytes were pulled from it. */
function countingStream(total: number, chunk = 16 * 1024): { stream: Readable; pulled: () => number } {
  let pulled = 0;
  const stream = new Readable({
    highWaterMark: chunk,
    read() {
      if (pulled >= total) return this.push(null);
      const n = Math.min(chunk, total - pulled);
      pulled += n;
      this.push(Buffer.alloc(n, 0x61));
    },
  });
  return { stream, pulled: () => pulled };
}

test('readBody: stops reading at the limit (no buffering of the whole body)', async (t) => {
  const { stream, pulled } = countingStream(10 * 1024 * 1024);
  await t.throwsAsync(readBody(stream, 64 * 1024), { instanceOf: BodyTooLargeError });
  await new Promise((r) => setTimeout(r, 20));
  t.true(pulled() <= 64 * 1024 + 4 * 16 * 1024, `pulled ${pulled()} bytes`);
});

test('readBody: returns small bodies whole; times out on a stalled body', async (t) => {
  const { stream } = countingStream(1000, 100);
  t.is((await readBody(stream, 64 * 1024)).length, 1000);
  const stalled = new Readable({ read() {} });
  await t.throwsAsync(readBody(stalled, 1024, 50), { message: /within 50 ms/ });
});

// ---------------------------------------------------------------------------
// Koa route on 127.0.0.1

interface Server {
  port: number;
  seen: SoapContext[];
  logged: unknown[];
  close: () => Promise<void>;
}

async function startServer(opts: { maxBodyBytes?: number } = {}): Promise<Server> {
  const seen: SoapContext[] = [];
  const logged: unknown[] = [];
  const service: SoapService = {
    serviceType: CDS,
    actions: {
      Browse: async (args, ctx) => {
        seen.push(ctx);
        return [
          ['Result', `<DIDL-Lite>${args.ObjectID}</DIDL-Lite>`],
          ['NumberReturned', 0],
          ['TotalMatches', 0],
          ['UpdateID', 3],
        ];
      },
      GetSystemUpdateID: async () => ({ Id: 42 }),
      Search: async () => {
        throw new UpnpError(708, 'Unsupported or invalid search criteria: bad token');
      },
      GetSortCapabilities: async () => {
        throw new Error('database exploded');
      },
    },
  };
  const fakeProfile = { id: 'test', name: 'Test client' } as ClientProfile;
  const app = new Koa();
  const router = new Router();
  soapRoutes(router, '/upnp/control/cds', service, {
    maxBodyBytes: opts.maxBodyBytes,
    detectClient: (headers) => (String(headers['user-agent'] ?? '').includes('TestTV') ? fakeProfile : ({ id: 'generic' } as ClientProfile)),
    logger: { error: (obj) => logged.push(obj) },
  });
  app.use(router.routes());
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    seen,
    logged,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, method: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/upnp/control/cds', method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

const soapHeaders = (action: string, extra: Record<string, string> = {}) => ({
  'Content-Type': 'text/xml; charset="utf-8"',
  SOAPACTION: `"${CDS}#${action}"`,
  ...extra,
});

async function faultCode(r: Reply): Promise<number> {
  const doc = await parseStringPromise(r.body);
  return Number(doc['s:Envelope']['s:Body'][0]['s:Fault'][0].detail[0].UPnPError[0].errorCode[0]);
}

test('route: successful Browse → 200, text/xml, EXT, ordered output, SoapContext filled', async (t) => {
  const s = await startServer();
  t.teardown(s.close);
  const r = await request(s.port, 'POST', soapHeaders('Browse', { 'User-Agent': 'TestTV/1.0' }), browseBody());
  t.is(r.status, 200);
  t.is(r.headers['content-type'], 'text/xml; charset="utf-8"');
  t.is(r.headers['ext'], '');
  t.regex(r.body, /<u:BrowseResponse xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1"><Result>&lt;DIDL-Lite&gt;0&lt;\/DIDL-Lite&gt;<\/Result><NumberReturned>0<\/NumberReturned><TotalMatches>0<\/TotalMatches><UpdateID>3<\/UpdateID><\/u:BrowseResponse>/);
  t.is(s.seen.length, 1);
  t.is(s.seen[0].baseUrl, `http://127.0.0.1:${s.port}`);
  t.is(s.seen[0].remoteAddress, '127.0.0.1');
  t.is(s.seen[0].client?.id, 'test');
  t.is(s.seen[0].headers['user-agent'], 'TestTV/1.0');

  const id = await request(s.port, 'POST', soapHeaders('GetSystemUpdateID'), envelope(`<u:GetSystemUpdateID xmlns:u="${CDS}"/>`));
  t.is(id.status, 200);
  t.true(id.body.includes('<u:GetSystemUpdateIDResponse xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1"><Id>42</Id></u:GetSystemUpdateIDResponse>'));
});

test('route: odd Host header falls back to the local address for baseUrl', async (t) => {
  const s = await startServer();
  t.teardown(s.close);
  const r = await request(s.port, 'POST', soapHeaders('Browse', { Host: 'evil"host/<x>' }), browseBody());
  t.is(r.status, 200);
  t.is(s.seen[0].baseUrl, `http://127.0.0.1:${s.port}`);
});

test('route: a Host header never reaches baseUrl (DNS rebinding, spoofed names): the socket\'s local address and port do', async (t) => {
  const s = await startServer();
  t.teardown(s.close);
  const hosts = ['attacker.example', `attacker.example:${s.port}`, 'localhost', `localhost:${s.port}`, '10.9.8.7:1234', `127.0.0.1:${s.port}`, `[::1]:${s.port}`];
  for (const Host of hosts) {
    const r = await request(s.port, 'POST', soapHeaders('Browse', { Host }), browseBody());
    t.is(r.status, 200, Host);
  }
  t.deepEqual(
    s.seen.map((c) => c.baseUrl),
    hosts.map(() => `http://127.0.0.1:${s.port}`),
  );
});

test('route: a POST from a web page of another origin (DNS rebinding, cross-site) is 403 and reaches no action; own origins and no Origin pass', async (t) => {
  const s = await startServer();
  t.teardown(s.close);
  // a DNS-rebinding page on attacker.example (resolving to the NAS) is same-origin to the
  // browser: no preflight, Sec-Fetch-Site same-origin, and an Origin that agrees with Host
  const foreign: Record<string, string>[] = [
    { Host: `attacker.example:${s.port}`, Origin: `http://attacker.example:${s.port}`, 'Sec-Fetch-Site': 'same-origin' },
    { Origin: 'http://attacker.example' },
    { 'Sec-Fetch-Site': 'cross-site' },
  ];
  for (const h of foreign) {
    const r = await request(s.port, 'POST', soapHeaders('Browse', h), browseBody());
    t.is(r.status, 403, JSON.stringify(h));
  }
  t.is(s.seen.length, 0, 'no action ran');
  const own: Record<string, string>[] = [{}, { Origin: `http://127.0.0.1:${s.port}` }, { Origin: `http://localhost:${s.port}`, 'Sec-Fetch-Site': 'same-origin' }];
  for (const h of own) {
    const r = await request(s.port, 'POST', soapHeaders('Browse', h), browseBody());
    t.is(r.status, 200, JSON.stringify(h));
  }
  t.is(s.seen.length, 3);
});

test('route: faults — unknown action 401, UpnpError code kept, other errors 501 and logged', async (t) => {
  const s = await startServer();
  t.teardown(s.close);
  const unknown = await request(s.port, 'POST', soapHeaders('Frobnicate'), envelope(`<u:Frobnicate xmlns:u="${CDS}"/>`));
  t.is(unknown.status, 500);
  t.is(unknown.headers['content-type'], 'text/xml; charset="utf-8"');
  t.is(await faultCode(unknown), 401);

  const search = await request(s.port, 'POST', soapHeaders('Search'), envelope(`<u:Search xmlns:u="${CDS}"><SearchCriteria>(</SearchCriteria></u:Search>`));
  t.is(search.status, 500);
  t.is(await faultCode(search), 708);
  t.true(search.body.includes('bad token'));

  t.is(s.logged.length, 0);
  const boom = await request(s.port, 'POST', soapHeaders('GetSortCapabilities'), envelope(`<u:GetSortCapabilities xmlns:u="${CDS}"/>`));
  t.is(boom.status, 500);
  t.is(await faultCode(boom), 501);
  t.false(boom.body.includes('exploded'), 'internal error text is not sent to clients');
  t.is(s.logged.length, 1);

  const other = await request(s.port, 'POST', { ...soapHeaders('Browse'), SOAPACTION: '"urn:schemas-upnp-org:service:ConnectionManager:1#Browse"' }, envelope('<u:Browse xmlns:u="urn:schemas-upnp-org:service:ConnectionManager:1"/>'));
  t.is(await faultCode(other), 401, 'another service type at this control URL');

  const noHeader = await request(s.port, 'POST', { 'Content-Type': 'text/xml' }, browseBody());
  t.is(await faultCode(noHeader), 401);

  const badArgs = await request(s.port, 'POST', soapHeaders('Browse'), browseBody('<ObjectID><x/></ObjectID>'));
  t.is(await faultCode(badArgs), 402);
});

test('route: malformed XML and DTDs → 400; non-XML content type → 415', async (t) => {
  const s = await startServer();
  t.teardown(s.close);
  const bad = await request(s.port, 'POST', soapHeaders('Browse'), '<s:Envelope><s:Body>');
  t.is(bad.status, 400);
  t.regex(bad.body, /malformed XML/);
  const bl = await request(s.port, 'POST', soapHeaders('Browse'), BILLION_LAUGHS);
  t.is(bl.status, 400);
  t.regex(bl.body, /DTD/);
  const xxe = await request(s.port, 'POST', soapHeaders('Browse'), XXE);
  t.is(xxe.status, 400);
  t.false(xxe.body.includes('root:'), 'no file content leaks');
  const json = await request(s.port, 'POST', { ...soapHeaders('Browse'), 'Content-Type': 'application/json' }, '{}');
  t.is(json.status, 415);
  const noType = await request(s.port, 'POST', { SOAPACTION: BROWSE_HDR }, browseBody());
  t.is(noType.status, 200, 'a missing Content-Type is tolerated');
});

test('route: methods other than POST → 405 with Allow: POST', async (t) => {
  const s = await startServer();
  t.teardown(s.close);
  for (const m of ['GET', 'PUT', 'DELETE', 'HEAD']) {
    const r = await request(s.port, m, {});
    t.is(r.status, 405, m);
    t.is(r.headers['allow'], 'POST');
  }
});

test('route: declared Content-Length past the limit → 413 at once', async (t) => {
  const s = await startServer({ maxBodyBytes: 1024 });
  t.teardown(s.close);
  const r = await new Promise<number>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: s.port, path: '/upnp/control/cds', method: 'POST', headers: { ...soapHeaders('Browse'), 'Content-Length': String(10 * 1024 * 1024) } },
      (res) => {
        res.resume();
        resolve(res.statusCode!);
        req.destroy();
      },
    );
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
    req.write('<s:Envelope>'); // nothing more: the answer must not wait for the other 10 MB
  });
  t.is(r, 413);
});

test('route: a streamed (chunked) 10 MB body is refused with 413 long before it is all sent', async (t) => {
  const s = await startServer();
  t.teardown(s.close);
  const total = 10 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const result = await new Promise<{ status: number; written: number }>((resolve, reject) => {
    let written = 0;
    let status = 0;
    const req = http.request({ host: '127.0.0.1', port: s.port, path: '/upnp/control/cds', method: 'POST', headers: soapHeaders('Browse') }, (res) => {
      status = res.statusCode!;
      res.resume();
      resolve({ status, written });
      req.destroy();
    });
    req.on('error', (e) => {
      if (status) return;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ECONNRESET' || code === 'EPIPE') return; // the server may close first; the response decides
      reject(e);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    const pump = () => {
      while (!status && written < total) {
        written += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', () => setImmediate(pump));
          return;
        }
        if (written % (256 * 1024) === 0) return void setImmediate(pump); // let the server run
      }
      if (!status) req.end();
    };
    pump();
  });
  t.is(result.status, 413);
  t.log(`answered after ${result.written} of ${total} bytes written`);
  t.true(result.written < total, `answered after ${result.written} of ${total} bytes`);
});
