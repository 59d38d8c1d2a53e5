// Predictive pre-staging (issue 9): playing item k of a container stages the first
// minutes past the stub of the next items on the same cartridge; browsing into a
// container of archived items on one cartridge loads it ahead.

import test from 'ava';
import { join } from 'node:path';
import type { CatalogObject } from '../src/catalog/types.js';
import { Prestager, type PrestageHost } from '../src/staging/prestage.js';
import type { ItemRef } from '../src/staging/protocol.js';
import { itemAt, makeLab, sha256, type Lab } from './fixtures/archive/setup.js';
import { fetchMedia, mediaServer, settle } from './fixtures/staging/harness.js';
import { Gate, inprocRig } from './fixtures/staging/inproc.js';

const STUB = { headSeconds: 0, headMin: 4096, tailBytes: 0, mergeGap: 0 };
const A1 = 'Music/Artist A/Album 1';
const A2 = 'Music/Artist A/Album 2';
const FILES: [string, number][] = [
  [`${A1}/01 One.mp3`, 200_000],
  [`${A1}/02 Two.mp3`, 210_000],
  [`${A1}/03 Three.mp3`, 220_000],
  [`${A1}/04 Four.mp3`, 230_000],
  [`${A1}/05 Five.mp3`, 240_000],
  [`${A2}/01 Uno.mp3`, 100_000],
  [`${A2}/02 Dos.mp3`, 110_000],
  ['Video/Show/E01.mkv', 300_000],
  ['Video/Show/E02.mkv', 310_000],
];

class FakeHost implements PrestageHost {
  calls: { id: string; label: string; start: number; end: number; mount?: boolean }[] = [];
  offline = new Set<string>();
  prestage(item: ItemRef, start: number, end: number, mount?: boolean): boolean {
    this.calls.push({ id: item.id, label: item.tape.label, start, end, mount });
    return true;
  }
  async cartridgeOffline(label: string): Promise<boolean> {
    return this.offline.has(label);
  }
}

async function archive(lab: Lab, rels: string[]): Promise<void> {
  const ids = [];
  for (const rel of rels) ids.push((await itemAt(lab.catalog, join(lab.media, rel))).id);
  const done = await lab.service.run((await lab.service.submit('archive', ids, { stub: STUB })).id);
  if (done.state !== 'done') throw new Error(`archive ${done.state}: ${done.reason}`);
}

test('a play stages the next items on the same cartridge, past their stubs; browse loads a one-cartridge container ahead', async (t) => {
  const lab = await makeLab({ files: FILES, pool: 2, memory: true });
  try {
    // TD0001L9: album 1 tracks 1-3, album 2 track 1, the show; TD0002L9 (then the emptiest): album 1 track 4, album 2 track 2
    await archive(lab, [`${A1}/01 One.mp3`, `${A1}/02 Two.mp3`, `${A1}/03 Three.mp3`, `${A2}/01 Uno.mp3`, 'Video/Show/E01.mkv', 'Video/Show/E02.mkv']);
    await archive(lab, [`${A1}/04 Four.mp3`, `${A2}/02 Dos.mp3`]);
    const get = (rel: string) => itemAt(lab.catalog, join(lab.media, rel));
    const [t1, t2, t3, t4, t5] = await Promise.all(FILES.slice(0, 5).map(([rel]) => get(rel)));
    t.is(t4!.location?.tape?.label, 'TD0002L9', 'setup: track 4 on the other cartridge');
    let now = 0;
    const host = new FakeHost();
    const p = new Prestager(lab.catalog, host, { items: 3, seconds: 60, onBrowse: true, cacheSize: 64 << 20, now: () => now }, undefined);

    await p.onPlay(t1!.id);
    t.deepEqual(
      host.calls.map((c) => c.id),
      [t2!.id, t3!.id],
      'tracks 2 and 3 (same cartridge); track 4 is on another cartridge and not worth a mount',
    );
    // from the end of the head stub, 60 s at the item's bitrate (1000 B/s); riding on the play's
    // mount, never one of its own
    t.deepEqual(host.calls[0], { id: t2!.id, label: 'TD0001L9', start: 4096, end: 4096 + 60_000, mount: false });
    t.is(p.counters.items, 2);

    host.calls = [];
    await p.onPlay(t1!.id);
    t.deepEqual(host.calls, [], 'the same play within the repeat time stages nothing again');
    await p.onPlay(t5!.id);
    t.deepEqual(host.calls, [], 'a play from disk loads no cartridge, so nothing is staged');
    now += 600_000;
    await p.onPlay(t1!.id);
    t.is(host.calls.length, 2, 'later, again');

    // browse: album 1 has items on two cartridges (and one on disk): nothing is loaded ahead
    host.calls = [];
    const album1 = t1!.parentId;
    await p.onBrowse(album1, (await lab.catalog.children(album1, 0, 0)).objects);
    t.deepEqual(host.calls, []);
    // the show: every archived item on TD0001L9, inside the library: its first items are staged (the cartridge loads)
    const e1 = await get('Video/Show/E01.mkv');
    await p.onBrowse(e1.parentId, (await lab.catalog.children(e1.parentId, 0, 0)).objects);
    t.deepEqual(host.calls.map((c) => c.label), ['TD0001L9', 'TD0001L9']);
    t.is(host.calls[0]!.id, e1.id);
    t.true(host.calls[0]!.mount, 'a browse loads the cartridge ahead: it may mount');
    t.is(p.counters.browseLoads, 1);
    // a browse of album 2 whose cartridge is outside the library loads nothing; nor does one with prestage_on_browse off
    const offline = new FakeHost();
    offline.offline.add('TD0001L9');
    const p2 = new Prestager(lab.catalog, offline, { items: 3, seconds: 60, onBrowse: true, cacheSize: 64 << 20 });
    await p2.onBrowse(e1.parentId, (await lab.catalog.children(e1.parentId, 0, 0)).objects);
    const off = new FakeHost();
    const p3 = new Prestager(lab.catalog, off, { items: 3, seconds: 60, onBrowse: false, cacheSize: 64 << 20 });
    await p3.onBrowse(e1.parentId, (await lab.catalog.children(e1.parentId, 0, 0)).objects);
    t.deepEqual([...offline.calls, ...off.calls], []);
    // one pass stages at most a quarter of the cache
    const small = new FakeHost();
    const p4 = new Prestager(lab.catalog, small, { items: 3, seconds: 3600, onBrowse: true, cacheSize: 400_000 });
    await p4.onPlay(t1!.id);
    t.is(small.calls.reduce((n, c) => n + c.end - c.start, 0), 100_000);
  } finally {
    await lab.cleanup();
  }
});

test('the second item of an album plays with no mount and no tape wait (pre-staged while the cartridge was loaded for the first)', async (t) => {
  const files = FILES.slice(0, 3);
  const r = await inprocRig({ files, archived: 3, stub: STUB });
  try {
    const objs: CatalogObject[] = await Promise.all(files.map(([rel]) => itemAt(r.catalog, join(r.lab.media, rel))));
    const prestager = new Prestager(r.catalog, r.client, { items: 3, seconds: 300, onBrowse: true, cacheSize: 64 << 20 });
    // the media route of the server: a play of an item triggers pre-staging (server.ts does it on stream start)
    const srv = await mediaServer(async (id) => {
      const o = await r.catalog.get(id);
      void prestager.onPlay(id);
      return o ? r.client.source(o) : undefined;
    });
    try {
      const w = r.worker;
      const first = await fetchMedia(srv.port, objs[0]!.id);
      t.is(sha256(first.body), sha256(r.lab.files.get(join(r.lab.media, files[0]![0]))!));
      t.true(w.counters.passes > 0, 'the first track was read from tape (its cartridge is loaded)');
      // wait (bounded) until both pre-stages have run to their end
      for (let i = 0; i < 500 && !(w.counters.prestages === 2 && w.stats().activeRequests === 0 && w.scheduler.queue().length === 0); i++) await new Promise((res) => setTimeout(res, 20));
      t.is(w.counters.prestages, 2, 'tracks 2 and 3 were pre-staged');
      t.true(w.counters.prestagedBytes > 0);
      const before = { ...w.counters, ...w.scheduler.counters };
      const second = await fetchMedia(srv.port, objs[1]!.id);
      t.is(second.status, 200);
      t.is(sha256(second.body), sha256(r.lab.files.get(join(r.lab.media, files[1]![0]))!), 'byte-exact');
      t.is(w.scheduler.counters.mounts, before.mounts, 'no mount');
      t.is(w.scheduler.counters.admissions, before.admissions, 'no drive was needed');
      t.is(w.counters.passes, before.passes, 'no tape read');
      t.is(w.counters.cacheMisses, before.cacheMisses, 'no tape wait: every segment past the stub was in the cache');
      t.true(w.counters.requests > before.requests, 'the bytes past the stub were asked of the worker (and came from the cache)');
    } finally {
      await srv.close();
    }
  } finally {
    await r.done();
  }
});

test('a playback request whose first bytes are cached starts its first tape pass at once (mount while the client plays the cached part)', async (t) => {
  const files: [string, number][] = [['Video/Film/Film.mkv', 2_000_000]];
  const r = await inprocRig({ files, archived: 1, stub: STUB });
  try {
    const obj = await itemAt(r.catalog, join(r.lab.media, files[0]![0]));
    const tape = obj.location!.tape!;
    const w = r.worker;
    // 1.5 MB past the stub are staged, then the cartridge goes back to its slot
    t.true(r.client.prestage({ id: obj.id, tape }, 4096, 1_500_000));
    for (let i = 0; i < 500 && !(w.counters.prestages === 1 && w.stats().activeRequests === 0); i++) await new Promise((res) => setTimeout(res, 10));
    await w.scheduler.unloadIdle();
    t.is(w.scheduler.labelIn(0), null);
    const mounts = w.scheduler.counters.mounts;
    // a client starts playing after the stub and has taken nothing yet: far from the first missing byte
    const mounted = new Promise<boolean>((res) => {
      const timer = setTimeout(() => res(false), 5000);
      w.scheduler.once('mount', () => {
        clearTimeout(timer);
        res(true);
      });
    });
    const c = await r.client.connection(1000);
    const id = c.read({ id: obj.id, tape }, 4096, tape.size, 'interactive', { onSeg: () => undefined, onDone: () => undefined, onError: () => undefined });
    t.true(await mounted, 'the cartridge is mounted right away');
    t.is(w.scheduler.counters.mounts, mounts + 1);
    t.true(w.reads.streaming(tape.label), 'the open request keeps its cartridge from idle unload');
    c.cancel(id);
  } finally {
    await r.done();
  }
});

test("a pre-stage ends in the worker when the server's connection goes (server stopped): no request left, the drive given back, no read past the one under way", async (t) => {
  const files: [string, number][] = [['Video/Film/Film.mkv', 2_000_000]];
  const gate = new Gate('readBlocks', 1);
  const r = await inprocRig({ files, archived: 1, stub: STUB, gate });
  try {
    const obj = await itemAt(r.catalog, join(r.lab.media, files[0]![0]));
    const tape = obj.location!.tape!;
    const w = r.worker;
    gate.armed = true;
    t.true(r.client.prestage({ id: obj.id, tape }, 4096, tape.size));
    await gate.hit; // the pre-stage's pass reads from the drive, held at the gate
    t.is(w.reads.activeRequests(), 1);
    await r.client.stop(); // the server stops: its connection to the worker closes
    t.true(await settle(() => w.reads.activeRequests() === 0, 10_000), 'the pre-stage request ended with its connection');
    gate.open();
    t.true(await settle(() => w.scheduler.drives().every((d) => !d.busy) && w.scheduler.queue().length === 0, 10_000), 'its drive was given back');
    t.true(w.counters.prestagedBytes < tape.size - 4096, `the pass stopped (${w.counters.prestagedBytes} bytes staged)`);
  } finally {
    await r.done();
  }
});
