// http/fast-control.ts: control POSTs answered before Koa give what the Koa route gives
// (status, body, headers), refused peers and everything else still go through Koa.
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { Router } from '@koa/router';
import { allowSubnets, socketAcl } from '../src/http/acl.js';
import { fastControl } from '../src/http/fast-control.js';
import { soapRoutes, UpnpError, type ControlHandler, type SoapService } from '../src/upnp/soap.js';
import { EscapedText } from '../src/util/xml.js';

const CDS = 'urn:schemas-upnp-org:service:ContentDirectory:1';
const service: SoapService = {
  serviceType: CDS,
  actions: {
    Browse: async (args) => {
      if (args.ObjectID === 'missing') throw new UpnpError(701, 'no such object: missing');
      if (args.ObjectID === 'boom') throw new Error('boom');
      return [
        ['Result', new EscapedText('&lt;DIDL-Lite/&gt;')],
        ['NumberReturned', 0],
        ['Echo', args.ObjectID],
      ];
    },
  },
};

async function start(fast: boolean, allow: string[] = ['127.0.0.0/8']) {
  const koaSeen: string[] = [];
  const done: [string, number][] = [];
  const app = new Koa();
  app.silent = true;
  app.use(async (ctx, next) => {
    koaSeen.push(`${ctx.method} ${ctx.url}`);
    await next();
  });
  const acl = socketAcl(allow);
  app.use(allowSubnets(acl));
  app.use(async (ctx, next) => {
    ctx.set('Server', 'test/1');
    await next();
  });
  const router = new Router();
  const routes = new Map<string, ControlHandler>([['/ctl', soapRoutes(router, '/ctl', service, { maxBodyBytes: 1000, logger: { error: () => {} } })]]);
  app.use(router.routes());
  const koa = app.callback();
  const front = fastControl({ routes, allowed: acl, serverHeader: 'test/1', done: (_req, route, status) => done.push([route, status]) });
  const srv = http.createServer((req, res) => {
    if (!(fast && front(req, res))) void koa(req, res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as AddressInfo).port,
    koaSeen,
    done,
    close: async () => {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    },
  };
}

function send(port: number, opts: { method?: string; path?: string; body?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'POST', path: opts.path ?? '/ctl', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const envelope = (objectId: string) =>
  `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:Browse xmlns:u="${CDS}"><ObjectID>${objectId}</ObjectID></u:Browse></s:Body></s:Envelope>`;
const soapHeaders = { 'content-type': 'text/xml; charset="utf-8"', soapaction: `"${CDS}#Browse"` };

const CASES: { name: string; method?: string; path?: string; body?: string; headers?: Record<string, string> }[] = [
  { name: 'success', body: envelope('0'), headers: soapHeaders },
  { name: 'UPnP fault', body: envelope('missing'), headers: soapHeaders },
  { name: 'action failure', body: envelope('boom'), headers: soapHeaders },
  { name: 'unknown action', body: envelope('0'), headers: { ...soapHeaders, soapaction: `"${CDS}#Nope"` } },
  { name: 'malformed XML', body: '<s:Envelope><oops>', headers: soapHeaders },
  { name: 'not XML', body: '{}', headers: { ...soapHeaders, 'content-type': 'application/json' } },
  { name: 'too large', body: envelope('x'.repeat(2000)), headers: soapHeaders },
  { name: 'GET', method: 'GET', headers: {} },
  { name: 'query string', path: '/ctl?x=1', body: envelope('0'), headers: soapHeaders },
];

test('control POSTs answered before Koa are answered exactly as the Koa route answers them', async (t) => {
  const viaKoa = await start(false);
  const viaFast = await start(true);
  try {
    for (const c of CASES) {
      const a = await send(viaKoa.port, c);
      const b = await send(viaFast.port, c);
      t.is(b.status, a.status, c.name);
      t.is(b.body, a.body, c.name);
      for (const h of ['server', 'ext', 'content-type', 'content-length', 'connection', 'allow']) t.is(b.headers[h], a.headers[h], `${c.name}: ${h}`);
    }
    t.is((await send(viaFast.port, CASES[0])).body.includes('<Echo>0</Echo>'), true);
    // only the GET and the URL with a query string went through Koa
    t.deepEqual(viaFast.koaSeen, ['GET /ctl', 'POST /ctl?x=1']);
    t.deepEqual(
      viaFast.done.map(([r]) => r),
      CASES.filter((c) => !c.method && !c.path).map(() => '/ctl').concat(['/ctl']),
    );
    t.deepEqual(viaFast.done[1], ['/ctl', 500]);
  } finally {
    await viaKoa.close();
    await viaFast.close();
  }
});

test('a peer outside the ACL is left to Koa, which refuses it', async (t) => {
  const s = await start(true, ['10.0.0.0/8']);
  try {
    const r = await send(s.port, CASES[0]);
    t.is(r.status, 403);
    t.is(r.body, 'Forbidden');
    t.deepEqual(s.koaSeen, ['POST /ctl']);
    t.deepEqual(s.done, []);
  } finally {
    await s.close();
  }
});
