// The ContentDirectory's SystemUpdateID and ContainerUpdateIDs are moderated events: the
// ContentDirectory service template allows at most 0.2 Hz, one NOTIFY per 5 s per subscription.
// The server's CDS event service (upnp/cds-events.ts) keeps that, on a fake clock: a change
// right after an event waits until 5 s after it, changes in between coalesce into one NOTIFY,
// and the initial event of a subscription is not held back.

import test from 'ava';
import { contentDirectoryEvents } from '../src/upnp/cds-events.js';
import { FakeClock } from './helpers/fake-clock.js';
import { serveEvents } from './helpers/gena-app.js';

const tick = () => new Promise((r) => setImmediate(r));

test('ContentDirectory events: at most one NOTIFY per 5 s per subscription (0.2 Hz), changes in between coalesced, initial event at once', async (t) => {
  const clock = new FakeClock();
  let systemUpdateId = 7;
  const sent: { at: number; seq: number; body: string }[] = [];
  const fakeFetch = (async (_url: URL, init: { headers: Record<string, string>; body: string }) => {
    sent.push({ at: clock.now(), seq: Number(init.headers.SEQ), body: init.body });
    return new Response('', { status: 200 });
  }) as unknown as typeof fetch;
  const svc = contentDirectoryEvents({ systemUpdateId: () => systemUpdateId, clock, fetch: fakeFetch });
  const srv = await serveEvents(svc);
  t.teardown(() => srv.close());
  const res = await fetch(srv.url, { method: 'SUBSCRIBE', headers: { callback: `<http://127.0.0.1:9/cb>`, nt: 'upnp:event', timeout: 'Second-1800' } });
  t.is(res.status, 200);
  for (let i = 0; i < 200 && sent.length === 0; i++) await tick();
  t.is(sent.length, 1, 'the initial event went out without advancing the clock');
  const t0 = sent[0]!.at;
  t.is(sent[0]!.seq, 0);

  // a scan changes the catalog several times in the next seconds
  for (const [ms, id, container] of [[100, 8, 'music/all'], [1500, 9, 'video/all'], [3000, 10, 'music/all']] as const) {
    clock.advance(ms - (clock.now() - t0));
    systemUpdateId = id;
    svc.notify({ SystemUpdateID: String(id), ContainerUpdateIDs: `${container},${id}` });
    await tick();
  }
  clock.advance(4999 - (clock.now() - t0));
  for (let i = 0; i < 20; i++) await tick();
  t.is(sent.length, 1, 'no NOTIFY within 5 s of the initial event (200 ms moderation sent one at 0.2 s)');
  clock.advance(1);
  for (let i = 0; i < 200 && sent.length === 1; i++) await tick();
  t.is(sent.length, 2, 'one NOTIFY 5 s after the previous one');
  t.is(sent[1]!.at - t0, 5000);
  t.is(sent[1]!.seq, 1);
  t.regex(sent[1]!.body, /<SystemUpdateID>10<\/SystemUpdateID>/);
  t.regex(sent[1]!.body, /<ContainerUpdateIDs>video\/all,9,music\/all,10<\/ContainerUpdateIDs>/, 'every container changed since the last event');

  // a change 1 s later waits for the next 5 s slot again
  clock.advance(1000);
  svc.notify({ SystemUpdateID: '11', ContainerUpdateIDs: 'photos/all,11' });
  await tick();
  clock.advance(3999);
  for (let i = 0; i < 20; i++) await tick();
  t.is(sent.length, 2);
  clock.advance(1);
  for (let i = 0; i < 200 && sent.length === 2; i++) await tick();
  t.is(sent.length, 3);
  t.is(sent[2]!.at - sent[1]!.at, 5000);
});
