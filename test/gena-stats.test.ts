// GENA subscriptions are visible to the operator: each event service counts the subscriptions it
// holds, the NOTIFYs subscribers took and those that failed, and the subscriptions that ended by
// reason; the status snapshot (/status.json, the page) and /metrics show them per service.

import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { Router } from '@koa/router';
import { EventService, type EventServiceStats } from '../src/upnp/gena.js';
import { collectStatus, statusRoutes } from '../src/http/status.js';
import { ServerMetrics } from '../src/metrics.js';
import type { StatusProvider } from '../src/server-state.js';
import { FakeClock } from './helpers/fake-clock.js';
import { serveEvents } from './helpers/gena-app.js';

const tick = () => new Promise((r) => setImmediate(r));
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await tick();
}

test('an event service counts subscriptions, NOTIFYs sent and failed, and subscriptions ended by reason', async (t) => {
  const clock = new FakeClock();
  // callbacks on port 1 fail, the others take every NOTIFY; 412 on port 2
  const fakeFetch = (async (url: URL) => {
    if (url.port === '1') throw new Error('connect ECONNREFUSED');
    return new Response('', { status: url.port === '2' ? 412 : 200 });
  }) as unknown as typeof fetch;
  const svc = new EventService({ serviceId: 'urn:upnp-org:serviceId:ContentDirectory', source: { variables: () => ({ SystemUpdateID: '1' }) }, clock, fetch: fakeFetch, maxFailures: 2, moderationMs: 100, maxTimeout: 1800 });
  const srv = await serveEvents(svc);
  t.teardown(() => srv.close());
  const base = srv.url;
  const subscribe = async (port: number, timeout = 'Second-1800') => {
    const res = await fetch(base, { method: 'SUBSCRIBE', headers: { callback: `<http://127.0.0.1:${port}/cb>`, nt: 'upnp:event', timeout } });
    t.is(res.status, 200);
    return res.headers.get('sid')!;
  };
  const zero = { expired: 0, unsubscribed: 0, failed: 0, gone: 0, replaced: 0, left: 0 };
  t.deepEqual(svc.stats(), { service: 'ContentDirectory', subscriptions: 0, sent: 0, failed: 0, removed: zero });

  const kept = await subscribe(9);
  const leaving = await subscribe(9);
  await subscribe(9, 'Second-300'); // will expire
  await until(() => svc.stats().sent === 3);
  t.like(svc.stats(), { subscriptions: 3, sent: 3, failed: 0 }, 'three initial events taken');

  // UNSUBSCRIBE
  t.is((await fetch(base, { method: 'UNSUBSCRIBE', headers: { sid: leaving } })).status, 200);
  t.like(svc.stats(), { subscriptions: 2, removed: { ...zero, unsubscribed: 1 } });

  // a callback that fails: two failed NOTIFYs (the initial one and its retry), then dropped
  await subscribe(1);
  await until(() => svc.stats().failed === 1);
  clock.advance(60_000); // the retry
  await until(() => svc.stats().failed === 2);
  t.like(svc.stats(), { subscriptions: 2, failed: 2, removed: { ...zero, unsubscribed: 1, failed: 1 } });

  // a subscriber that answers 412 forgot the SID: gone, not a failed delivery
  await subscribe(2);
  await until(() => svc.stats().removed.gone === 1);
  t.like(svc.stats(), { subscriptions: 2, failed: 2, removed: { ...zero, unsubscribed: 1, failed: 1, gone: 1 } });

  // the 300 s subscription is not renewed; the other one is
  clock.advance(200_000);
  t.is((await fetch(base, { method: 'SUBSCRIBE', headers: { sid: kept, timeout: 'Second-1800' } })).status, 200);
  clock.advance(200_000);
  t.like(svc.stats(), { subscriptions: 1, removed: { ...zero, unsubscribed: 1, failed: 1, gone: 1, expired: 1 } });

  // a change reaches the one left
  svc.notify({ SystemUpdateID: '2' });
  clock.advance(1000);
  await until(() => svc.stats().sent === 4);
  t.is(svc.stats().sent, 4);
});

const stats = (service: string, over: Partial<EventServiceStats> = {}): EventServiceStats => ({
  service,
  subscriptions: 0,
  sent: 0,
  failed: 0,
  removed: { expired: 0, unsubscribed: 0, failed: 0, gone: 0, replaced: 0, left: 0 },
  ...over,
});
const provider = (events?: () => EventServiceStats[]): StatusProvider => ({
  server: () => ({ name: 'NAS', version: '0.1.0', scanning: false }),
  library: async () => ({ items: 0, bytes: 0, byClass: {}, byTier: {}, cells: [] }),
  ...(events ? { events } : {}),
});
const cds = stats('ContentDirectory', { subscriptions: 3, sent: 41, failed: 2, removed: { expired: 5, unsubscribed: 4, failed: 1, gone: 0, replaced: 0, left: 0 } });
const cms = stats('ConnectionManager', { subscriptions: 1, sent: 1 });

test('the status snapshot has the event services (null without them); /status.json and the page carry them', async (t) => {
  const snap = await collectStatus(provider(() => [cds, cms]));
  t.deepEqual(snap.events, [cds, cms]);
  t.is((await collectStatus(provider())).events, null);

  const app = new Koa();
  app.silent = true;
  const router = new Router();
  statusRoutes(router, provider(() => [cds, cms]));
  app.use(router.routes());
  const srv = http.createServer(app.callback());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    srv.closeAllConnections();
    srv.close();
  });
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const json = await (await fetch(`${base}/status.json`)).json();
  t.deepEqual(json.events, [cds, cms]);
  const html = await (await fetch(`${base}/`)).text();
  t.regex(html, /<section id="events"[^>]*><h2 id="events-h">Event subscriptions \(GENA\)<\/h2>/, 'the page has the section');
  t.true(html.includes('function renderEvents('), 'and renders it');
  t.true(html.includes('"events":[{"service":"ContentDirectory"'), 'from the inlined first snapshot');
});

test('/metrics: subscriptions per service, NOTIFYs sent and failed, subscriptions ended by reason', async (t) => {
  const m = new ServerMetrics({ version: 'x', status: provider(() => [cds, cms]) });
  const text = await m.scrape();
  t.regex(text, /# TYPE tapedeck_gena_subscriptions gauge/);
  t.regex(text, /^tapedeck_gena_subscriptions\{service="ContentDirectory"\} 3$/m);
  t.regex(text, /^tapedeck_gena_subscriptions\{service="ConnectionManager"\} 1$/m);
  t.regex(text, /# TYPE tapedeck_gena_notify_sent_total counter/);
  t.regex(text, /^tapedeck_gena_notify_sent_total\{service="ContentDirectory"\} 41$/m);
  t.regex(text, /^tapedeck_gena_notify_failed_total\{service="ContentDirectory"\} 2$/m);
  t.regex(text, /^tapedeck_gena_subscriptions_removed_total\{service="ContentDirectory",reason="expired"\} 5$/m);
  t.regex(text, /^tapedeck_gena_subscriptions_removed_total\{service="ContentDirectory",reason="unsubscribed"\} 4$/m);
  t.regex(text, /^tapedeck_gena_subscriptions_removed_total\{service="ContentDirectory",reason="failed"\} 1$/m);
  t.regex(text, /^tapedeck_gena_subscriptions_removed_total\{service="ConnectionManager",reason="gone"\} 0$/m);
});
