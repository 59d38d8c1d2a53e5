// Access tracking: plays (one per client playback, not per Range request), bytes served,
// batched durable writes that survive a restart, added/changed kept by the catalog, and
// `tapedeck ls` over them (listing, filters, sorts, JSON shape).
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStore, MemoryStore } from '../src/catalog/store.js';
import { AccessTracker, PLAY_GAP_MS, playsWithin, readAccess } from '../src/policy/access.js';
import { listItems } from '../src/policy/listing.js';
import { ArchiveError } from '../src/archive/errors.js';
import { itemAt, makeLab } from './fixtures/archive/setup.js';

const fakeStream = (id: string, remote: string) => {
  let n = 0;
  return { id, remote, bytes: () => n, add: (k: number) => (n += k) };
};

test('range requests of one playback count once; another client, or the same one after 30 minutes, is another play', async (t) => {
  let now = 1_000_000;
  const store = new MemoryStore();
  await store.open();
  const tr = new AccessTracker({ store, now: () => now });
  const counted: boolean[] = [];
  for (let i = 0; i < 50; i++) {
    const s = fakeStream('iA', '10.0.0.2');
    counted.push(tr.streamStarted(s));
    s.add(1000);
    tr.streamEnded(s);
    now += 20_000; // a seek every 20 s for ~17 minutes
  }
  t.is((await tr.read(['iA'])).get('iA')!.plays, 1);
  // the server starts a container promotion check only for a counted play, not per Range request
  t.deepEqual(counted, [true, ...Array(49).fill(false)]);
  tr.notePlay('iA', '10.0.0.3');
  t.is((await tr.read(['iA'])).get('iA')!.plays, 2, 'another client');
  now += PLAY_GAP_MS;
  tr.notePlay('music/all$iA', '10.0.0.2');
  const rec = (await tr.read(['iA'])).get('iA')!;
  t.is(rec.plays, 3, 'same client after a 30 minute gap; a reference ID counts for its item');
  t.is(rec.bytesServed, 50_000);
  t.is(rec.lastPlayed, now);
  t.is(playsWithin(rec, now, 60_000), 1);
  t.is(playsWithin(rec, now, 3 * PLAY_GAP_MS), 3);
});

test('counts are written in batches (nothing per request), flushed on stop, and survive a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-access-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let store = new LevelStore(join(dir, 'db'));
  await store.open();
  let writes = 0;
  const batch = store.batch.bind(store);
  store.batch = async (ops) => {
    writes++;
    return batch(ops);
  };
  const tr = new AccessTracker({ store, flushMs: 60_000 });
  const s = fakeStream('iB', '10.0.0.9');
  tr.streamStarted(s);
  for (let i = 0; i < 100; i++) s.add(4096);
  t.is(writes, 0, 'no write per request');
  await tr.flush();
  t.is(writes, 1);
  t.is((await readAccess(store, ['iB'])).get('iB')!.bytesServed, 409_600, 'bytes of a running stream are sampled at each flush');
  s.add(100);
  tr.streamEnded(s);
  await tr.stop();
  await store.close();
  store = new LevelStore(join(dir, 'db'));
  await store.open();
  const rec = (await readAccess(store)).get('iB')!;
  t.is(rec.plays, 1);
  t.is(rec.bytesServed, 409_700);
  await store.close();
});

test('a playback spanning a server restart (or a kill -9 after a flush) counts once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-access-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let now = 5_000_000;
  let store = new LevelStore(join(dir, 'db'));
  await store.open();
  let tr = new AccessTracker({ store, now: () => now, flushMs: 60_000 });
  const s = fakeStream('iR', '10.0.0.7');
  tr.streamStarted(s);
  now += 40 * 60_000; // one long body: 40 minutes of streaming
  s.add(1000);
  await tr.flush(); // the periodic batch; then the server dies without stop()
  await store.close();

  // the restarted server: the same client's next Range request (a seek) 45 minutes after the body
  // started, 5 after its last byte, continues the playback; another client's is a new play
  now += 5 * 60_000;
  store = new LevelStore(join(dir, 'db'));
  await store.open();
  tr = new AccessTracker({ store, now: () => now, flushMs: 60_000 });
  tr.notePlay('iR', '10.0.0.7');
  t.is((await tr.read(['iR'])).get('iR')!.plays, 1, 'read() already merges it as the same play');
  tr.notePlay('iR', '10.0.0.8');
  await tr.stop();
  t.is((await readAccess(store, ['iR'])).get('iR')!.plays, 2, 'same client continues; another client is a play');
  t.is(tr.playsCounted, 1);

  // after a gap of 30 minutes from its last request the same client plays again
  now += PLAY_GAP_MS;
  tr = new AccessTracker({ store, now: () => now, flushMs: 60_000 });
  tr.notePlay('iR', '10.0.0.7');
  await tr.stop();
  const rec = (await readAccess(store, ['iR'])).get('iR')!;
  t.is(rec.plays, 3);
  t.deepEqual(Object.keys(rec.sessions ?? {}), ['10.0.0.7'], 'sessions older than the gap are dropped from the record');
  await store.close();
});

test('the catalog keeps added and changed with its clock; ls lists tiers, plays and sorts; bad options are refused', async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  const items = await lab.catalog.items();
  t.true(items.every((i) => typeof i.added === 'number' && i.changed === undefined));
  const [path] = [...lab.files.keys()].filter((p) => p.endsWith('Holiday.mkv'));
  const video = await itemAt(lab.catalog, path);
  // archive one item so the listing has a tape item with a stub
  const job = await lab.service.run((await lab.service.submit('archive', [video.id])).id);
  t.is(job.state, 'done', job.reason);
  const tr = new AccessTracker({ store: lab.catalog.store, now: () => Date.parse('2026-01-02T03:04:05Z') });
  tr.notePlay(video.id, '10.0.0.1');
  tr.notePlay(video.id, '10.0.0.2');
  const read = (ids: string[]) => tr.read(ids);
  const all = await listItems(lab.catalog, read);
  t.is(all.length, lab.files.size);
  const row = all.find((r) => r.id === video.id)!;
  t.like(row, { tier: 'tape', cartridge: 'TD0001L9', plays: 2, lastPlayed: '2026-01-02T03:04:05.000Z', path, class: video.upnpClass, size: 300_000 });
  t.true(row.stubBytes > 0 && typeof row.block === 'number');
  for (const key of ['id', 'title', 'path', 'class', 'size', 'tier', 'cartridge', 'stubBytes', 'plays', 'lastPlayed']) t.true(key in row, key);
  const other = all.find((r) => r.id !== video.id)!;
  t.like(other, { tier: 'disk', cartridge: null, block: null, stubBytes: 0, plays: 0, lastPlayed: null });
  t.deepEqual((await listItems(lab.catalog, read, { tier: 'tape' })).map((r) => r.id), [video.id]);
  t.is((await listItems(lab.catalog, read, { sort: 'plays' }))[0].id, video.id);
  const bySize = await listItems(lab.catalog, read, { sort: 'size' });
  t.deepEqual(bySize.map((r) => r.size), [...bySize.map((r) => r.size)].sort((a, b) => b - a));
  const music = await listItems(lab.catalog, read, { targets: [join(lab.media, 'Music')] });
  t.is(music.length, 4);
  await t.throwsAsync(listItems(lab.catalog, read, { tier: 'cloud' as never }), { instanceOf: ArchiveError, message: /--tier/ });
  await t.throwsAsync(listItems(lab.catalog, read, { targets: ['/nowhere/x'] }), { instanceOf: ArchiveError, message: /unknown path/ });

  // a changed file gets `changed` from the catalog's clock, and keeps `added`
  lab.catalog.now = () => 42;
  const changed = { ...items[0], mtime: (items[0].mtime ?? 0) + 1000 };
  await lab.catalog.apply({ upserts: [changed] });
  const after = (await lab.catalog.get(items[0].id))!;
  t.is(after.changed, 42);
  t.is(after.added, items[0].added);

  // an item that leaves the catalog takes its access record with it
  await tr.flush();
  t.true((await readAccess(lab.catalog.store, [video.id])).has(video.id));
  await lab.catalog.apply({ removes: [video.id] });
  t.false((await readAccess(lab.catalog.store, [video.id])).has(video.id));
});
