import test from 'ava';
import Koa from 'koa';
import Router from '@koa/router';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { allowedMethods } from '../src/http/allowed-methods.js';

let server: Server;
let base = '';

test.before(async () => {
  const app = new Koa();
  const router = new Router();
  router.get('/page', (ctx) => {
    ctx.body = 'page';
  });
  router.post('/action', (ctx) => {
    ctx.status = 204;
  });
  router.register('/upnp/event/cds', ['SUBSCRIBE'], (ctx) => {
    ctx.status = 200;
  });
  router.get('/empty', (ctx) => {
    ctx.status = 404; // a route's own 404 stays
  });
  app.use(router.routes());
  app.use(allowedMethods());
  server = createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after.always(() => {
  server?.close();
});

test('an unknown path is 404 whatever the method (not 501 for a method outside the router\'s default list)', async (t) => {
  for (const method of ['GET', 'HEAD', 'POST', 'DELETE', 'SUBSCRIBE', 'UNSUBSCRIBE', 'NOTIFY', 'OPTIONS']) {
    const r = await fetch(`${base}/upnp/event/xyz`, { method });
    t.is(r.status, 404, method);
    t.is(r.headers.get('allow'), null, method);
  }
});

test('a known path asked with another method is 405 with Allow; OPTIONS is 200 with Allow; routes answer as before', async (t) => {
  for (const [path, method, allow] of [
    ['/page', 'POST', /^HEAD, GET$|^GET, HEAD$/],
    ['/page', 'SUBSCRIBE', /GET/],
    ['/action', 'GET', /^POST$/],
    ['/upnp/event/cds', 'GET', /^SUBSCRIBE$/],
  ] as const) {
    const r = await fetch(`${base}${path}`, { method });
    t.is(r.status, 405, `${method} ${path}`);
    t.regex(r.headers.get('allow') ?? '', allow, `${method} ${path}`);
  }
  const o = await fetch(`${base}/action`, { method: 'OPTIONS' });
  t.is(o.status, 200);
  t.is(o.headers.get('allow'), 'POST');
  t.is((await fetch(`${base}/page`)).status, 200);
  t.is((await fetch(`${base}/upnp/event/cds`, { method: 'SUBSCRIBE' })).status, 200);
  t.is((await fetch(`${base}/empty`)).status, 404);
});
