import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore, type KeyRange } from '../src/catalog/store.js';
import type { ProbeResult } from '../src/catalog/types.js';
import { scan } from '../src/scanner/scanner.js';

const dirs: string[] = [];
test.after.always(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function lib(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'tapedeck-scan-'));
  dirs.push(root);
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), body);
  }
  return root;
}

/** A probe that records calls and reads "tags" from the file body (artist|album|track). */
function fakeProbe() {
  const calls: string[] = [];
  const probe = async (p: string): Promise<ProbeResult | undefined> => {
    calls.push(p);
    if (p.includes('broken')) throw new Error('corrupt');
    const { readFileSync } = await import('node:fs');
    const [artist, album, track] = readFileSync(p, 'utf8').split('|');
    return {
      kind: 'audio',
      upnpClass: 'object.item.audioItem.musicTrack',
      title: basename(p).replace(/\.\w+$/, ''),
      meta: { artist, album, trackNumber: Number(track) || undefined },
      res: { mime: 'audio/mpeg', size: 0 },
    };
  };
  return { calls, probe };
}

test('scan adds media, skips hidden and non-media files, and rescans incrementally', async (t) => {
  const root = lib({
    'a/1.mp3': 'A|X|1',
    'a/2.mp3': 'A|X|2',
    'b/3.mp3': 'B|Y|1',
    'notes.txt': 'not media',
    '.hidden/4.mp3': 'H|H|1',
  });
  const c = new Catalog(new MemoryStore());
  await c.open();
  const f = fakeProbe();
  const r1 = await scan(c, { roots: [root], probe: f.probe });
  t.is(r1.seen, 3);
  t.is(r1.probed, 3);
  t.is(f.calls.length, 3);
  t.is((await c.get('music/all'))!.childCount, 3);
  const sys1 = c.systemUpdateId;

  // unchanged: nothing is read again and nothing changes
  const r2 = await scan(c, { roots: [root], probe: f.probe });
  t.is(r2.unchanged, 3);
  t.is(f.calls.length, 3);
  t.is(c.systemUpdateId, sys1);

  // changed file is read again; deleted file leaves; new file arrives
  writeFileSync(join(root, 'a/1.mp3'), 'A|Z|1');
  utimesSync(join(root, 'a/1.mp3'), new Date(), new Date(Date.now() + 5000));
  unlinkSync(join(root, 'b/3.mp3'));
  writeFileSync(join(root, 'a/5.mp3'), 'A|X|5');
  const r3 = await scan(c, { roots: [root], probe: f.probe });
  t.is(r3.probed, 2);
  t.is(r3.removed, 1);
  t.true(c.systemUpdateId > sys1);
  const artists = (await c.children('music/artists', 0, 0)).objects.map((o) => o.title);
  t.deepEqual(artists, ['A']);
  t.is((await c.get('music/all'))!.childCount, 3);
  t.is((await c.children('music/albums', 0, 0)).total, 2);
  await c.close();
});

test('IDs are stable across a rescan into a fresh catalog', async (t) => {
  const root = lib({ 'x/1.mp3': 'A|X|1', 'y/2.mp3': 'B|Y|1' });
  const ids = async () => {
    const c = new Catalog(new MemoryStore());
    await c.open();
    await scan(c, { roots: [root], probe: fakeProbe().probe });
    const out = (await c.items()).map((i) => i.id).sort();
    await c.close();
    return out;
  };
  t.deepEqual(await ids(), await ids());
});

test('an unreadable file is reported, not fatal, and not retried while unchanged', async (t) => {
  const root = lib({ 'broken.mp3': 'x', 'ok.mp3': 'A|B|1' });
  const c = new Catalog(new MemoryStore());
  await c.open();
  const f = fakeProbe();
  const warnings: object[] = [];
  const r = await scan(c, { roots: [root], probe: f.probe, log: { warn: (o) => warnings.push(o) } });
  t.is(r.failed, 1);
  t.is(r.probed, 1);
  t.is(warnings.length, 1);
  await scan(c, { roots: [root], probe: f.probe });
  t.is(f.calls.filter((p) => p.includes('broken')).length, 1);
  await c.close();
});

test('a file that may not be read is not catalogued and is tried again on the next scan', async (t) => {
  const root = lib({ 'locked.mp3': 'A|X|1' });
  const c = new Catalog(new MemoryStore());
  await c.open();
  let denied = true;
  const calls: string[] = [];
  const probe = async (p: string) => {
    calls.push(p);
    if (denied) throw Object.assign(new Error(`EACCES: permission denied, access '${p}'`), { code: 'EACCES' });
    return fakeProbe().probe(p);
  };
  const r1 = await scan(c, { roots: [root], probe });
  t.is(r1.failed, 1);
  t.is((await c.items()).length, 0, 'no item without readable bytes');
  denied = false; // the operator fixed the permissions: same size, same mtime
  const r2 = await scan(c, { roots: [root], probe });
  t.is(calls.length, 2, 'read again');
  t.is(r2.probed, 1);
  t.is((await c.items()).length, 1);
  await c.close();
});

test('a media directory dropped from the configuration leaves the catalog', async (t) => {
  const a = lib({ '1.mp3': 'A|X|1' });
  const b = lib({ '2.mp3': 'B|Y|1' });
  const c = new Catalog(new MemoryStore());
  await c.open();
  await scan(c, { roots: [a, b], probe: fakeProbe().probe });
  t.is((await c.items()).length, 2);
  const r = await scan(c, { roots: [a], probe: fakeProbe().probe });
  t.is(r.removed, 1);
  t.is((await c.items()).length, 1);
  await c.close();
});

test('a file whose name is not valid UTF-8 (Latin-1) is named in a warning, not left out silently', async (t) => {
  const root = lib({ 'a/ok.mp3': 'A|X|1' });
  // "Caf\xe9.mp3": a Latin-1 name from an old share; no JavaScript string names this file
  writeFileSync(Buffer.concat([Buffer.from(join(root, 'a') + '/Caf'), Buffer.from([0xe9]), Buffer.from('.mp3')]), 'A|X|2');
  const c = new Catalog(new MemoryStore());
  await c.open();
  t.teardown(() => c.close());
  const warnings: { obj: { dir?: string; files?: number; names?: string[] }; msg: string }[] = [];
  const r = await scan(c, { roots: [root], probe: fakeProbe().probe, log: { warn: (obj, msg) => warnings.push({ obj, msg: msg ?? '' }) } });
  t.is(r.seen, 1);
  const w = warnings.find((x) => /not valid UTF-8/.test(x.msg));
  t.truthy(w, JSON.stringify(warnings));
  t.is(w!.obj.dir, join(root, 'a'));
  t.is(w!.obj.files, 1);
  t.deepEqual(w!.obj.names, ['Caf\uFFFD.mp3']);
});

test('a media directory that cannot be read (e.g. an unmounted disk) keeps what the catalog holds under it', async (t) => {
  const a = lib({ '1.mp3': 'A|X|1', 'sub/2.mp3': 'A|X|2' });
  const b = lib({ '3.mp3': 'B|Y|1' });
  const c = new Catalog(new MemoryStore());
  await c.open();
  await scan(c, { roots: [a, b], probe: fakeProbe().probe });
  t.is((await c.items()).length, 3);
  rmSync(a, { recursive: true, force: true });
  const warnings: string[] = [];
  const r = await scan(c, { roots: [a, b], probe: fakeProbe().probe, log: { warn: (_o, m) => warnings.push(m ?? '') } });
  t.is(r.removed, 0, 'nothing swept as deleted');
  t.is((await c.items()).length, 3);
  t.true(warnings.some((w) => w.startsWith('cannot read directory')));
  // once it is back, the next scan sees the files again, unchanged
  mkdirSync(join(a, 'sub'), { recursive: true });
  writeFileSync(join(a, '1.mp3'), 'A|X|1');
  writeFileSync(join(a, 'sub/2.mp3'), 'A|X|2');
  const back = await scan(c, { roots: [a, b], probe: fakeProbe().probe });
  t.is(back.removed, 0);
  t.is((await c.items()).length, 3);
  await c.close();
});

test('a media directory inside another one is scanned once, as part of it; container counts stay right', async (t) => {
  const outer = lib({ 'music/A/1.mp3': 'A|X|1', 'music/A/2.mp3': 'A|X|2', 'music/A/3.mp3': 'A|X|3', 'top.mp3': 'B|Y|1' });
  const c = new Catalog(new MemoryStore());
  await c.open();
  const f = fakeProbe();
  const warnings: string[] = [];
  const r = await scan(c, { roots: [outer, join(outer, 'music')], probe: f.probe, log: { warn: (_o, m) => warnings.push(m ?? '') } });
  t.is(r.seen, 4);
  t.is(f.calls.length, 4, 'every file read once');
  t.true(warnings.some((w) => /is inside/.test(w)));
  t.is((await c.get('music/all'))!.childCount, 4);
  t.is((await c.childIds('music/all')).length, 4);
  for (const n of [1, 2, 3]) unlinkSync(join(outer, `music/A/${n}.mp3`));
  await scan(c, { roots: [outer, join(outer, 'music')], probe: f.probe });
  t.is((await c.get('music/all'))!.childCount, 1);
  t.is((await c.childIds('music/all')).length, 1);
  await c.close();
});

test('the same item twice in one catalog batch is counted once', async (t) => {
  const c = new Catalog(new MemoryStore());
  await c.open();
  const root = lib({ 'x.mp3': 'A|X|1' });
  await scan(c, { roots: [root], probe: fakeProbe().probe });
  const item = (await c.items())[0]!;
  await c.apply({ upserts: [{ ...item, title: 'one' }, { ...item, title: 'two' }] });
  t.is((await c.get('music/all'))!.childCount, 1);
  t.is((await c.childIds('music/all')).length, 1);
  t.is((await c.get(item.id))!.title, 'two', 'the last copy wins');
  await c.close();
});

test('progress is reported and ends with done', async (t) => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`d${i % 7}/${i}.mp3`] = `A${i % 5}|X|${i}`;
  const root = lib(files);
  const c = new Catalog(new MemoryStore());
  await c.open();
  const seen: number[] = [];
  const r = await scan(c, { roots: [root], probe: fakeProbe().probe, batchSize: 50, progressIntervalMs: 0, onProgress: (p) => seen.push(p.seen) });
  t.is(r.seen, 300);
  t.true(r.done);
  t.true(seen.length > 1);
  t.is(seen.at(-1), 300);
  t.is((await c.get('music/all'))!.childCount, 300);
  await c.close();
});

test('a cold scan writes the catalog in batches of about 500 files: few change events (each drops caches and notifies subscribers in serve)', async (t) => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 1200; i++) files[`d${i % 3}/${i}.mp3`] = `A${i % 9}|X|${i}`;
  const root = lib(files);
  const c = new Catalog(new MemoryStore());
  await c.open();
  let changes = 0;
  c.on('change', () => changes++);
  const r = await scan(c, { roots: [root], probe: fakeProbe().probe });
  t.is(r.seen, 1200);
  t.is((await c.get('music/all'))!.childCount, 1200);
  // an item and its path entry are two operations of a batch of 1,000
  t.true(changes >= 2 && changes <= 3, `${changes} change events`);
  await c.close();
});

test('an unchanged rescan writes nothing to the catalog; a touched file is read again, a deleted file and a removed folder leave', async (t) => {
  // folder names that sort between a folder and its own files ('a b', 'a-b', 'a.mp3' < 'a/'),
  // an unreadable file and a playlist: none of them is rewritten while unchanged
  const root = lib({
    'a/1.mp3': 'A|X|1',
    'a/sub/2.mp3': 'A|X|2',
    'a/sub/deeper/3.mp3': 'A|X|3',
    'a b/4.mp3': 'B|Y|1',
    'a-b/5.mp3': 'B|Y|2',
    'a.mp3': 'C|Z|1',
    'z/broken.mp3': 'x',
    'z/list.m3u': '../a/1.mp3\n',
  });
  const store = new MemoryStore();
  const writes: string[] = [];
  const batch = store.batch.bind(store);
  store.batch = (ops) => {
    writes.push(...ops.map((o) => `${o.type} ${o.key}`));
    return batch(ops);
  };
  const c = new Catalog(store);
  await c.open();
  const f = fakeProbe();
  const cold = await scan(c, { roots: [root], probe: f.probe });
  t.is(cold.probed, 6);
  t.true(writes.length > 0 && (cold.written ?? 0) > 0);
  const sys = c.systemUpdateId;

  writes.length = 0;
  f.calls.length = 0;
  const quiet = await scan(c, { roots: [root], probe: f.probe });
  t.deepEqual([quiet.seen, quiet.unchanged, quiet.probed, quiet.removed, quiet.written ?? 0], [7, 7, 0, 0, 0]);
  t.deepEqual(writes, [], 'no item, path entry or scan marker written');
  t.deepEqual(f.calls, []);
  t.is(c.systemUpdateId, sys);

  // one file touched (same bytes, new mtime), one deleted, one folder (with a subfolder) removed
  utimesSync(join(root, 'a b/4.mp3'), new Date(), new Date(Date.now() + 5000));
  unlinkSync(join(root, 'a-b/5.mp3'));
  rmSync(join(root, 'a/sub'), { recursive: true });
  const changed = await scan(c, { roots: [root], probe: f.probe });
  t.deepEqual(f.calls, [join(root, 'a b/4.mp3')], 'only the touched file is read again');
  t.deepEqual([changed.probed, changed.removed], [1, 3]);
  t.true((changed.written ?? 0) > 0);
  const left = (await c.items()).map((i) => i.origPath!.slice(root.length + 1)).sort();
  t.deepEqual(left, ['a b/4.mp3', 'a.mp3', 'a/1.mp3']);
  const paths: string[] = [];
  for await (const [p] of c.paths(root + '/')) paths.push(p.slice(root.length + 1));
  t.deepEqual(paths.sort(), ['a b/4.mp3', 'a.mp3', 'a/1.mp3', 'z/broken.mp3', 'z/list.m3u']);

  writes.length = 0;
  const again = await scan(c, { roots: [root], probe: f.probe });
  t.deepEqual([again.unchanged, again.probed, again.removed, writes.length], [4, 0, 0, 0]);
  await c.close();
});

test('a first scan (empty scanner map) looks up no path entry and sweeps nothing; the catalog is the same as a scan that looks', async (t) => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`d${i % 3}/s${i % 2}/${i}.mp3`] = `A${i % 7}|X${i % 5}|${i}`;
  files['d0/broken.mp3'] = 'x';
  files['d1/list.m3u'] = 's0/1.mp3\n';
  const root = lib(files);
  class CountingStore extends MemoryStore {
    pathGets = 0;
    pathRanges = 0;
    override async getMany(keys: string[]) {
      this.pathGets += keys.filter((k) => k.startsWith('p/')).length;
      return super.getMany(keys);
    }
    override async *keys(r: KeyRange) {
      if ((r.gte ?? r.gt ?? '').startsWith('p/')) this.pathRanges++;
      yield* super.keys(r);
    }
  }
  const fresh = new CountingStore();
  const c = new Catalog(fresh);
  await c.open();
  const r = await scan(c, { roots: [root], probe: fakeProbe().probe });
  t.deepEqual([r.seen, r.probed, r.failed, r.playlists], [301, 300, 1, 1]);
  t.is(fresh.pathGets, 1, "no file's path entry looked up (one: the playlist's entry)");
  t.is(fresh.pathRanges, 1, 'one look whether the scanner map is empty, no sweep');

  // the same library scanned into a catalog that already held an entry (of a file since gone)
  const other = new CountingStore();
  const c2 = new Catalog(other);
  await c2.open();
  await c2.apply({ extraOps: [c2.pathOp(join(root, 'gone.mp3'), { id: '', size: 1, mtime: 1, gen: 0 })] });
  await scan(c2, { roots: [root], probe: fakeProbe().probe });
  t.true(other.pathGets > 300 && other.pathRanges > 1);
  const dump = async (s: MemoryStore) => {
    const out: [string, string][] = [];
    for await (const e of s.entries({ gte: '' })) if (!e[0].startsWith('meta/')) out.push(e);
    return out;
  };
  const a = await dump(fresh);
  const b = await dump(other);
  t.true(a.length > 300 * 3);
  // timestamps (added) differ between the two runs: compare without them
  const strip = (e: [string, string][]) => e.map(([k, v]) => [k, v.replace(/"added":\d+,?/g, '')]);
  t.deepEqual(strip(a), strip(b));
});
