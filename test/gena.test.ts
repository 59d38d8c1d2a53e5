import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseStringPromise } from 'xml2js';
import { serveEvents } from './helpers/gena-app.js';
import {
  EventService,
  nextSeq,
  combineContainerUpdateIds,
  canonicalIp,
  parseCallbacks,
  propertySet,
  type EventServiceOptions,
} from '../src/upnp/gena.js';

// ---- harness -----------------------------------------------------------------------------

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A subscriber's callback server on 127.0.0.1 that records every request. */
async function callbackServer(status = 200): Promise<{ url: string; port: number; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      got.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() });
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/cb`,
    port,
    got,
    close: async () => {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    },
  };
}

interface Publisher {
  svc: EventService;
  vars: Record<string, string>;
  port: number;
  close(): Promise<void>;
}

/** A Koa app exposing one EventService at /evt on 127.0.0.1. */
async function publisher(opts: Partial<EventServiceOptions> = {}): Promise<Publisher> {
  const vars: Record<string, string> = { SystemUpdateID: '7', ContainerUpdateIDs: '', Odd: 'a<b>&"c"' };
  const svc = new EventService({
    serviceId: 'urn:upnp-org:serviceId:ContentDirectory',
    source: { variables: () => ({ ...vars }) },
    moderationMs: 100,
    ...opts,
  });
  const srv = await serveEvents(svc);
  return { svc, vars, port: srv.port, close: srv.close };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function call(port: number, method: string, headers: Record<string, string>, path = '/evt'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

const subscribe = (port: number, callback: string, extra: Record<string, string> = {}) =>
  call(port, 'SUBSCRIBE', { CALLBACK: `<${callback}>`, NT: 'upnp:event', TIMEOUT: 'Second-1800', ...extra });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms = 30_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (cond()) return true;
    await sleep(10);
  }
  return cond();
}

async function props(body: string): Promise<Record<string, string>> {
  const doc = await parseStringPromise(body, { explicitArray: true });
  const set = doc['e:propertyset'];
  const out: Record<string, string> = {};
  for (const p of set['e:property'] ?? []) {
    for (const [k, v] of Object.entries(p)) {
      const first = (v as unknown[])[0];
      out[k] = typeof first === 'string' ? first : '';
    }
  }
  return out;
}

// ---- subscribe and initial event --------------------------------------------------------

test('SUBSCRIBE: 200 with SID and TIMEOUT and an empty body, then the initial NOTIFY (SEQ 0, all variables)', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher();
  try {
    const r = await subscribe(pub.port, cb.url);
    t.is(r.status, 200, 'not 204');
    t.regex(String(r.headers['sid']), /^uuid:[0-9a-f-]{36}$/);
    t.is(r.headers['timeout'], 'Second-1800');
    t.is(r.body, '');
    t.is(r.headers['content-length'], '0');
    t.true(await waitFor(() => cb.got.length === 1));
    const n = cb.got[0];
    t.is(n.method, 'NOTIFY');
    t.is(n.url, '/cb');
    t.is(n.headers['content-type'], 'text/xml; charset="utf-8"');
    t.is(n.headers['nt'], 'upnp:event');
    t.is(n.headers['nts'], 'upnp:propchange');
    t.is(n.headers['sid'], r.headers['sid']);
    t.is(n.headers['seq'], '0');
    t.deepEqual(await props(n.body), { SystemUpdateID: '7', ContainerUpdateIDs: '', Odd: 'a<b>&"c"' });
    t.true(n.body.includes('xmlns:e="urn:schemas-upnp-org:event-1-0"'));
    t.is(pub.svc.size, 1);
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('the initial event reflects changes made before it was sent', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher();
  try {
    const r = await subscribe(pub.port, cb.url);
    t.is(r.status, 200);
    // changed while the initial NOTIFY may still be pending
    pub.vars.SystemUpdateID = '8';
    pub.svc.notify({ SystemUpdateID: '8' });
    t.true(await waitFor(() => cb.got.length >= 1));
    await sleep(300);
    const last = cb.got[cb.got.length - 1];
    t.is((await props(last.body)).SystemUpdateID, '8');
    t.deepEqual(
      cb.got.map((g) => g.headers['seq']),
      cb.got.map((_, i) => String(i)),
    );
  } finally {
    await pub.close();
    await cb.close();
  }
});

// ---- moderation and SEQ ------------------------------------------------------------------

test('moderation: three notify() calls in quick succession give one NOTIFY with the latest values', async (t) => {
  const cb = await callbackServer();
  // Moderation is about when NOTIFYs are sent, so record send times (receipt times move with load).
  const sentAt: number[] = [];
  const recordingFetch: typeof fetch = (input, init) => {
    sentAt.push(Date.now());
    return fetch(input, init);
  };
  const pub = await publisher({ moderationMs: 150, fetch: recordingFetch });
  try {
    const r = await subscribe(pub.port, cb.url);
    t.true(await waitFor(() => cb.got.length === 1));
    pub.svc.notify({ SystemUpdateID: '10' });
    pub.svc.notify({ SystemUpdateID: '11', ContainerUpdateIDs: 'a,1' });
    pub.svc.notify({ SystemUpdateID: '12' });
    t.true(await waitFor(() => cb.got.length === 2));
    await sleep(400); // nothing else may follow
    t.is(cb.got.length, 2);
    const ev = cb.got[1];
    t.is(ev.headers['seq'], '1');
    t.is(ev.headers['sid'], r.headers['sid']);
    t.deepEqual(await props(ev.body), { SystemUpdateID: '12', ContainerUpdateIDs: 'a,1' }, 'only changed variables, latest values');
    t.true(sentAt[1] - sentAt[0] >= 150 - 5, `respects the moderation interval after the initial event (sent ${sentAt[1] - sentAt[0]} ms apart)`);

    // SEQ keeps counting
    pub.svc.notify({ SystemUpdateID: '13' });
    t.true(await waitFor(() => cb.got.length === 3));
    pub.svc.notify({ SystemUpdateID: '14' });
    t.true(await waitFor(() => cb.got.length === 4));
    t.deepEqual(
      cb.got.map((g) => g.headers['seq']),
      ['0', '1', '2', '3'],
    );
    t.is((await props(cb.got[3].body)).SystemUpdateID, '14');
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('combine option merges ContainerUpdateIDs within a moderation interval', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher({ combine: { ContainerUpdateIDs: combineContainerUpdateIds } });
  try {
    await subscribe(pub.port, cb.url);
    t.true(await waitFor(() => cb.got.length === 1));
    pub.svc.notify({ ContainerUpdateIDs: 'a,1,b,1' });
    pub.svc.notify({ ContainerUpdateIDs: 'a,2' });
    t.true(await waitFor(() => cb.got.length === 2));
    t.is((await props(cb.got[1].body)).ContainerUpdateIDs, 'b,1,a,2');
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('every subscriber gets its own SID and SEQ', async (t) => {
  const cb1 = await callbackServer();
  const cb2 = await callbackServer();
  const pub = await publisher();
  try {
    const r1 = await subscribe(pub.port, cb1.url);
    t.true(await waitFor(() => cb1.got.length === 1));
    pub.svc.notify({ SystemUpdateID: '20' });
    t.true(await waitFor(() => cb1.got.length === 2));
    const r2 = await subscribe(pub.port, cb2.url);
    t.not(r1.headers['sid'], r2.headers['sid']);
    t.true(await waitFor(() => cb2.got.length === 1));
    t.is(cb2.got[0].headers['seq'], '0');
    t.is(cb2.got[0].headers['sid'], r2.headers['sid']);
    t.is((await props(cb2.got[0].body)).SystemUpdateID, '7', 'the source is what counts for the initial event');
  } finally {
    await pub.close();
    await cb1.close();
    await cb2.close();
  }
});

test('SEQ wraps from 4294967295 to 1', (t) => {
  t.is(nextSeq(0), 1);
  t.is(nextSeq(41), 42);
  t.is(nextSeq(4294967294), 4294967295);
  t.is(nextSeq(4294967295), 1);
});

// ---- renewal, unsubscribe, expiry --------------------------------------------------------

test('renewal: SID alone gives 200 with a new TIMEOUT (capped); unknown SID is 412', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher({ maxTimeout: 3600 });
  try {
    const r = await subscribe(pub.port, cb.url, { TIMEOUT: 'Second-300' });
    t.is(r.headers['timeout'], 'Second-300');
    const sid = String(r.headers['sid']);
    const renew = await call(pub.port, 'SUBSCRIBE', { SID: sid, TIMEOUT: 'Second-600' });
    t.is(renew.status, 200);
    t.is(renew.headers['sid'], sid);
    t.is(renew.headers['timeout'], 'Second-600');
    t.is(renew.body, '');
    const big = await call(pub.port, 'SUBSCRIBE', { SID: sid, TIMEOUT: 'Second-999999' });
    t.is(big.headers['timeout'], 'Second-3600');
    const inf = await call(pub.port, 'SUBSCRIBE', { SID: sid, TIMEOUT: 'Second-infinite' });
    t.is(inf.headers['timeout'], 'Second-3600');
    const unknown = await call(pub.port, 'SUBSCRIBE', { SID: 'uuid:00000000-0000-0000-0000-000000000000', TIMEOUT: 'Second-600' });
    t.is(unknown.status, 412);
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('TIMEOUT: Second-0 gets the default (1800), a short request the 300 s minimum (UDA 1.1 §4.1.2: 1800 s or more), on SUBSCRIBE and renewal', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher({});
  try {
    const zero = await subscribe(pub.port, cb.url, { TIMEOUT: 'Second-0' });
    t.is(zero.status, 200);
    t.is(zero.headers['timeout'], 'Second-1800');
    const one = await subscribe(pub.port, cb.url, { TIMEOUT: 'Second-1' });
    t.is(one.headers['timeout'], 'Second-300');
    const renew = await call(pub.port, 'SUBSCRIBE', { SID: String(one.headers['sid']), TIMEOUT: 'Second-0' });
    t.is(renew.headers['timeout'], 'Second-1800');
    const short = await call(pub.port, 'SUBSCRIBE', { SID: String(one.headers['sid']), TIMEOUT: 'Second-299' });
    t.is(short.headers['timeout'], 'Second-300');
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('TIMEOUT: default when absent or malformed, infinite capped to maxTimeout', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher({ maxTimeout: 900, defaultTimeout: 120 });
  try {
    const none = await call(pub.port, 'SUBSCRIBE', { CALLBACK: `<${cb.url}>`, NT: 'upnp:event' });
    t.is(none.headers['timeout'], 'Second-120');
    const junk = await subscribe(pub.port, cb.url, { TIMEOUT: 'Minute-5' });
    t.is(junk.headers['timeout'], 'Second-120');
    const inf = await subscribe(pub.port, cb.url, { TIMEOUT: 'Second-infinite' });
    t.is(inf.headers['timeout'], 'Second-900');
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('UNSUBSCRIBE: 200, then no more events; again or unknown: 412', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher();
  try {
    const r = await subscribe(pub.port, cb.url);
    const sid = String(r.headers['sid']);
    t.true(await waitFor(() => cb.got.length === 1));
    const un = await call(pub.port, 'UNSUBSCRIBE', { SID: sid });
    t.is(un.status, 200);
    t.is(un.body, '');
    t.is(pub.svc.size, 0);
    pub.svc.notify({ SystemUpdateID: '99' });
    await sleep(300);
    t.is(cb.got.length, 1, 'no NOTIFY after UNSUBSCRIBE');
    t.is((await call(pub.port, 'UNSUBSCRIBE', { SID: sid })).status, 412);
    t.is((await call(pub.port, 'UNSUBSCRIBE', {})).status, 412);
    t.is((await call(pub.port, 'SUBSCRIBE', { SID: sid })).status, 412, 'renewal after unsubscribe');
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('expiry: a subscription that is not renewed stops receiving events', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher({ maxTimeout: 1 });
  try {
    const r = await subscribe(pub.port, cb.url, { TIMEOUT: 'Second-1800' });
    t.is(r.headers['timeout'], 'Second-1');
    t.true(await waitFor(() => cb.got.length === 1));
    await sleep(1150);
    pub.svc.notify({ SystemUpdateID: '50' });
    await sleep(300);
    t.is(cb.got.length, 1, 'no NOTIFY to an expired subscription');
    t.is(pub.svc.size, 0);
    t.is((await call(pub.port, 'SUBSCRIBE', { SID: String(r.headers['sid']) })).status, 412);
  } finally {
    await pub.close();
    await cb.close();
  }
});

// ---- request validation ------------------------------------------------------------------

test('bad SUBSCRIBE / UNSUBSCRIBE headers: 400 or 412', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher();
  try {
    const ok = await subscribe(pub.port, cb.url);
    const sid = String(ok.headers['sid']);
    const cases: Array<[string, Record<string, string>, number]> = [
      ['SUBSCRIBE', { NT: 'upnp:event' }, 412], // no CALLBACK
      ['SUBSCRIBE', { CALLBACK: `<${cb.url}>` }, 412], // no NT
      ['SUBSCRIBE', { CALLBACK: `<${cb.url}>`, NT: 'ssdp:all' }, 412], // wrong NT
      ['SUBSCRIBE', { CALLBACK: cb.url, NT: 'upnp:event' }, 412], // no angle brackets
      ['SUBSCRIBE', { CALLBACK: '<not a url>', NT: 'upnp:event' }, 412],
      ['SUBSCRIBE', { CALLBACK: `<${cb.url.replace('http:', 'https:')}>`, NT: 'upnp:event' }, 412],
      ['SUBSCRIBE', { CALLBACK: '<>', NT: 'upnp:event' }, 412],
      ['SUBSCRIBE', { SID: sid, NT: 'upnp:event' }, 400], // renewal with NT
      ['SUBSCRIBE', { SID: sid, CALLBACK: `<${cb.url}>` }, 400], // renewal with CALLBACK
      ['UNSUBSCRIBE', { SID: sid, NT: 'upnp:event' }, 400],
      ['UNSUBSCRIBE', { SID: sid, CALLBACK: `<${cb.url}>` }, 400],
      ['UNSUBSCRIBE', { SID: 'uuid:nope' }, 412],
    ];
    for (const [method, headers, status] of cases) {
      const r = await call(pub.port, method, headers);
      t.is(r.status, status, `${method} ${JSON.stringify(headers)}`);
      t.is(r.body, '');
    }
    t.is(pub.svc.size, 1, 'only the valid subscription exists');
  } finally {
    await pub.close();
    await cb.close();
  }
});

// ---- request forgery protection ----------------------------------------------------------

test('a CALLBACK on another host than the subscriber is refused (412) and nothing is sent', async (t) => {
  const sent: string[] = [];
  const spyFetch: typeof fetch = async (input, init) => {
    sent.push(String(input));
    return fetch(input, init);
  };
  const cb = await callbackServer();
  const pub = await publisher({ fetch: spyFetch });
  try {
    for (const forged of [
      `http://127.0.0.2:${cb.port}/cb`, // another address
      `http://localhost:${cb.port}/cb`, // a hostname, not the peer's address
      `http://[::1]:${cb.port}/cb`,
      `http://169.254.169.254/latest/meta-data/`,
    ]) {
      const r = await subscribe(pub.port, forged);
      t.is(r.status, 412, forged);
      t.is(r.headers['sid'], undefined);
    }
    pub.svc.notify({ SystemUpdateID: '1' });
    await sleep(300);
    t.deepEqual(sent, [], 'no request was sent anywhere');
    t.is(cb.got.length, 0);
    t.is(pub.svc.size, 0);

    // Among several URLs the one on the subscriber's own address is used.
    const r = await call(pub.port, 'SUBSCRIBE', { CALLBACK: `<http://10.9.9.9:1/x><${cb.url}>`, NT: 'upnp:event' });
    t.is(r.status, 200);
    t.true(await waitFor(() => cb.got.length === 1));
    t.deepEqual(sent, [cb.url], 'the injected fetch carried the NOTIFY');
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('allowCallback can widen the policy', async (t) => {
  const cb = await callbackServer();
  const seen: Array<[string, string]> = [];
  const pub = await publisher({
    allowCallback: (host, remote) => {
      seen.push([host, remote]);
      return host === 'localhost';
    },
  });
  try {
    const r = await subscribe(pub.port, `http://localhost:${cb.port}/cb`);
    t.is(r.status, 200);
    t.deepEqual(seen, [['localhost', '127.0.0.1']]);
    t.true(await waitFor(() => cb.got.length === 1));
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('canonicalIp / parseCallbacks', (t) => {
  t.is(canonicalIp('127.0.0.1'), '127.0.0.1');
  t.is(canonicalIp('::ffff:127.0.0.1'), '127.0.0.1');
  t.is(canonicalIp('[::ffff:7f00:1]'), '127.0.0.1');
  t.is(canonicalIp('[0:0:0:0:0:0:0:1]'), '::1');
  t.is(canonicalIp('FE80::1%eth0'), 'fe80::1');
  t.is(canonicalIp('localhost'), undefined);
  t.is(canonicalIp(''), undefined);
  t.deepEqual(
    parseCallbacks('<http://1.2.3.4:5/a> <https://x/> <ftp://y/> <junk><http://u:p@1.2.3.4/><http://[::1]:80/b>').map((u) => u.href),
    ['http://1.2.3.4:5/a', 'http://[::1]/b'],
  );
  t.deepEqual(parseCallbacks(''), []);
  // port 0 names no port: node:http would send the NOTIFY to port 80 instead
  t.deepEqual(parseCallbacks('<http://1.2.3.4:0/a><http://1.2.3.4:00/b><http://1.2.3.4:7/c>').map((u) => u.href), ['http://1.2.3.4:7/c']);
});

test('one subscriber cannot take every slot: at maxPerSubscriber its subscription renewed the longest ago makes room; the table stays bounded', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher({ maxPerSubscriber: 3, maxSubscriptions: 5 });
  try {
    const sids: string[] = [];
    for (let i = 0; i < 3; i++) sids.push(String((await subscribe(pub.port, cb.url)).headers.sid));
    t.is(pub.svc.size, 3);
    // the first one is renewed, so the second is the one renewed the longest ago
    t.is((await call(pub.port, 'SUBSCRIBE', { SID: sids[0], TIMEOUT: 'Second-1800' })).status, 200);
    const r = await subscribe(pub.port, cb.url);
    t.is(r.status, 200, 'a fourth SUBSCRIBE from the same host is granted, not refused');
    t.is(pub.svc.size, 3, 'still three for this host');
    t.is((await call(pub.port, 'SUBSCRIBE', { SID: sids[1] })).status, 412, 'the one renewed the longest ago was replaced');
    t.is((await call(pub.port, 'SUBSCRIBE', { SID: sids[0] })).status, 200, 'the renewed one lives on');
    t.is((await call(pub.port, 'SUBSCRIBE', { SID: sids[2] })).status, 200);
    for (let i = 0; i < 20; i++) t.is((await subscribe(pub.port, cb.url)).status, 200);
    t.is(pub.svc.size, 3, 'a flood from one host holds at most maxPerSubscriber');
  } finally {
    await pub.close();
    await cb.close();
  }
});

// ---- failing subscribers -----------------------------------------------------------------

test('a callback that keeps failing is dropped', async (t) => {
  const cb = await callbackServer(500);
  const pub = await publisher({ maxFailures: 2, moderationMs: 20 });
  try {
    const r = await subscribe(pub.port, cb.url);
    t.is(r.status, 200);
    t.true(await waitFor(() => pub.svc.size === 0, 30_000), 'dropped after repeated failures');
    t.is(cb.got.length, 2);
    t.deepEqual(await props(cb.got[1].body), await props(cb.got[0].body), 'the retry carries the undelivered values');
    pub.svc.notify({ SystemUpdateID: '3' });
    await sleep(200);
    t.is(cb.got.length, 2);
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('a callback that answers 412 is dropped at once', async (t) => {
  const cb = await callbackServer(412);
  const pub = await publisher({ maxFailures: 5 });
  try {
    await subscribe(pub.port, cb.url);
    t.true(await waitFor(() => pub.svc.size === 0, 30_000));
    t.is(cb.got.length, 1);
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('a CALLBACK with several URLs: each NOTIFY tries them in order until one takes it (UDA 1.0 §4.1.2)', async (t) => {
  const dead = await callbackServer();
  const deadUrl = dead.url;
  await dead.close(); // the first URL: nothing listens there (e.g. the control point's other interface)
  const good = await callbackServer();
  // the dead URL fails at once (connection refused); the good one must not time out on a loaded machine
  const pub = await publisher({ maxFailures: 2, moderationMs: 20, notifyTimeoutMs: 30_000 });
  try {
    const r = await call(pub.port, 'SUBSCRIBE', { CALLBACK: `<${deadUrl}><${good.url}>`, NT: 'upnp:event', TIMEOUT: 'Second-1800' });
    t.is(r.status, 200);
    t.true(await waitFor(() => good.got.length === 1), 'the initial event reaches the second URL');
    t.is(good.got[0].headers['seq'], '0');
    for (const v of ['8', '9', '10']) {
      pub.vars.SystemUpdateID = v;
      pub.svc.notify({ SystemUpdateID: v });
      t.true(await waitFor(() => good.got.some((g) => g.body.includes(`<SystemUpdateID>${v}<`))), `event ${v} delivered`);
    }
    t.deepEqual(good.got.map((g) => g.headers['seq']), ['0', '1', '2', '3']);
    t.is(pub.svc.size, 1, 'not dropped: every NOTIFY was delivered');
  } finally {
    await pub.close();
    await good.close();
  }
});

test('an unreachable callback is dropped after retries', async (t) => {
  const cb = await callbackServer();
  const deadUrl = cb.url;
  await cb.close(); // nothing listens there any more
  const pub = await publisher({ maxFailures: 2, moderationMs: 20, notifyTimeoutMs: 1000 });
  try {
    t.is((await subscribe(pub.port, deadUrl)).status, 200);
    t.true(await waitFor(() => pub.svc.size === 0, 30_000));
  } finally {
    await pub.close();
  }
});

// ---- lifecycle ---------------------------------------------------------------------------

test('close(): no further events, SUBSCRIBE answers 503', async (t) => {
  const cb = await callbackServer();
  const pub = await publisher();
  try {
    await subscribe(pub.port, cb.url);
    t.true(await waitFor(() => cb.got.length === 1));
    await pub.svc.close();
    pub.svc.notify({ SystemUpdateID: '77' });
    await sleep(250);
    t.is(cb.got.length, 1);
    t.is((await subscribe(pub.port, cb.url)).status, 503);
  } finally {
    await pub.close();
    await cb.close();
  }
});

test('propertySet escapes values and skips names that are not XML names', async (t) => {
  const body = propertySet({ A: '<x>&amp;', 'bad name': 'x', B: 'ok\u0001' });
  t.false(body.includes('bad name'));
  t.deepEqual(await props(body), { A: '<x>&amp;', B: 'ok' });
});

test('many subscriptions to a closed callback port: one warning, the rest at debug, every one dropped after repeated failures', async (t) => {
  const cb = await callbackServer();
  const deadUrl = cb.url;
  await cb.close(); // nothing listens there any more
  const warns: string[] = [];
  const debugs: string[] = [];
  const log = { debug: (_o: object, m?: string) => debugs.push(m ?? ''), warn: (_o: object, m?: string) => warns.push(m ?? '') };
  const pub = await publisher({ maxFailures: 3, moderationMs: 20, notifyTimeoutMs: 1000, log });
  try {
    for (let i = 0; i < 30; i++) t.is((await subscribe(pub.port, deadUrl)).status, 200);
    t.true(await waitFor(() => pub.svc.size === 0, 60_000), `still subscribed: ${pub.svc.size}`);
    t.is(warns.filter((m) => /NOTIFY failed/.test(m)).length, 1, warns.join('\n'));
    t.is(debugs.filter((m) => /NOTIFY failed/.test(m)).length, 30 * 3 - 1);
    t.is(debugs.filter((m) => m === 'gena drop').length, 30);
  } finally {
    await pub.close();
  }
});
