// One-word title Search with class terms (search-sorted.ts): TotalMatches from the word index's
// per-word counts and the page from the head of the sorted title postings must be exactly what a
// pass over every object gives, on a generated library and after incremental changes (retitles,
// class changes, removals, additions), on both stores and after a reopen; and the work of a page
// must not grow with the number of matches.

import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import { LevelStore, MemoryStore, type KeyRange, type KVStore } from '../src/catalog/store.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { postingRecord, recordClassKey, titleSortSeg, words } from '../src/catalog/words.js';
import { ContentDirectory } from '../src/upnp/cds.js';
import { compileSearch, parseSearch } from '../src/upnp/search.js';
import { sortedTitleSearch } from '../src/upnp/search-sorted.js';
import { compileSort } from '../src/upnp/sort.js';
import type { SoapContext } from '../src/upnp/soap.js';
import { didlText } from './helpers/didl-result.js';

const ROOT = '/lib';
const WORDS = ['River', 'Lantern', 'Lanterns', 'Highway', 'Garden', 'Track', 'Echo', 'Mirror', 'Σοφία', 'Électrique'];
const CLASSES: [string, 'audio' | 'video' | 'image'][] = [
  ['object.item.audioItem.musicTrack', 'audio'],
  ['object.item.audioItem.musicTrack', 'audio'],
  ['object.item.audioItem.audioBook', 'audio'],
  ['object.item.videoItem.movie', 'video'],
  ['object.item.imageItem.photo', 'image'],
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

function item(n: number, title: string, cls: number): CatalogObject {
  const path = `${ROOT}/${String(n).padStart(5, '0')}.x`;
  const [upnpClass, kind] = CLASSES[cls % CLASSES.length];
  return {
    id: itemIdForPath(path),
    parentId: '',
    container: false,
    upnpClass,
    title,
    kind,
    meta: { artist: `Artist ${n % 5}`, album: `Album ${n % 3}` },
    res: { mime: 'audio/flac', size: 100 },
    location: { disk: { path, size: 100, mtime: 1 } },
    origPath: path,
    mediaRoot: ROOT,
    relPath: path.slice(ROOT.length + 1),
  };
}

function title(r: () => number, n: number): string {
  const pick = () => WORDS[Math.floor(r() * WORDS.length)];
  const k = r();
  if (k < 0.02) return Array.from({ length: 80 }, (_, j) => `w${j}`).join(' ') + ' ' + pick(); // overflow
  if (k < 0.04) return 'Verylongword '.repeat(25) + pick(); // too long for a record and a key
  if (k < 0.045) return 'Ｆｕｌｌ Mirror'; // UTF-16 and UTF-8 order it differently: mirror takes the general path
  if (k < 0.1) return `${pick()} ${Math.floor(r() * 30)}`; // natural order of numbers
  if (k < 0.15) return `${pick()} ${pick()}`; // the same word twice, or two of them
  return `${pick()} ${n % 7 === 0 ? pick() : 'Song'}`; // duplicates titles across items
}

function library(n: number, seed: number): CatalogObject[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => item(i, title(r, i), Math.floor(r() * 5)));
}

const CRITERIA = [
  ...WORDS.map((w) => `upnp:class derivedfrom "object.item.audioItem" and dc:title contains "${w.toLowerCase()}"`),
  'dc:title contains "river"',
  'dc:title contains "SONG"',
  'upnp:class derivedfrom "object.item.videoItem" and dc:title contains "echo"',
  'dc:title contains "mirror" and upnp:class = "object.item.imageItem.photo"',
  'upnp:class derivedfrom "object.item" and dc:title contains "w5"',
  'dc:title contains "nothere"',
];

const ctx = { baseUrl: 'http://127.0.0.1:1' } as SoapContext;

async function page(cds: ContentDirectory, criteria: string, start: number, count: number): Promise<{ total: number; ids: string[] }> {
  const out = new Map(await cds.search({ ContainerID: '0', SearchCriteria: criteria, Filter: '*', StartingIndex: String(start), RequestedCount: String(count), SortCriteria: '' }, ctx));
  const ids = [...didlText(out.get('Result')).matchAll(/<(?:item|container) id="([^"]+)"/g)].map((m) => m[1].replace(/&amp;/g, '&'));
  return { total: Number(out.get('TotalMatches')), ids };
}

async function check(t: import('ava').ExecutionContext, catalog: Catalog, label: string): Promise<void> {
  const cds = new ContentDirectory(catalog, { searchCacheBytes: 0 });
  const objects = [...(await catalog.items()), ...(await catalog.containers())].filter((o) => o.id !== '0');
  let sorted = 0;
  for (const c of CRITERIA) {
    const match = compileSearch(c);
    if (await sortedTitleSearch(catalog, parseSearch(c), match, () => false, 0, 10)) sorted++;
    const expected = objects.filter(match).sort(compileSort([])).map((o) => o.id);
    for (const [start, count] of [[0, 10], [0, 50], [7, 25], [expected.length - 3, 10]]) {
      if (start < 0) continue;
      const r = await page(cds, c, start, count);
      t.is(r.total, expected.length, `${label}: ${c}`);
      t.deepEqual(r.ids, expected.slice(start, start + count), `${label}: ${c} ${start}+${count}`);
    }
  }
  t.true(sorted >= CRITERIA.length - 5, `${label}: ${sorted} of ${CRITERIA.length} criteria answered by the sorted path`);
  // the counts the index keeps are the brute-force counts of every title word per record class
  const brute = new Map<string, Record<string, number>>();
  for (const o of objects) {
    if (o.playlist) continue;
    let ws = words(o.title);
    if (ws.length > 64 || ws.some((w) => w.length > 64)) ws = ['']; // posted under the overflow word
    for (const w of ws) {
      const m = brute.get(w) ?? {};
      const ck = recordClassKey(postingRecord(o));
      m[ck] = (m[ck] ?? 0) + 1;
      if (titleSortSeg(o) === '2') m.L = (m.L ?? 0) + 1;
      brute.set(w, m);
    }
  }
  t.true(brute.has('') && [...brute.values()].some((m) => m.L > 0), 'the library has overflow titles and long ones');
  for (const w of WORDS.map((x) => x.toLowerCase()).concat(['song', 'w5', 'music', 'zzz', ''])) t.deepEqual(catalog.titleCounts(w), brute.get(w) ?? {}, `${label}: counts of ${w}`);
}

async function changes(catalog: Catalog, seed: number): Promise<void> {
  const r = rng(seed);
  const items = await catalog.items();
  const upserts: CatalogObject[] = [];
  const removes: string[] = [];
  for (const o of items) {
    const k = r();
    if (k < 0.1) removes.push(o.id);
    else if (k < 0.2) upserts.push({ ...o, title: title(r, 1) });
    else if (k < 0.25) upserts.push({ ...o, upnpClass: CLASSES[Math.floor(r() * 5)][0] });
    else if (k < 0.28) upserts.push({ ...o, title: o.title + ' 2' });
  }
  upserts.push(...library(60, seed + 1).map((o, i) => item(10_000 + seed * 100 + i, o.title, i)));
  await catalog.apply({ upserts, removes });
}

for (const kind of ['memory', 'level'] as const) {
  test(`${kind}: one-word title Search with class terms: TotalMatches and pages equal a pass over every object, also after changes and a reopen`, async (t) => {
    const dir = kind === 'level' ? mkdtempSync(join(tmpdir(), 'td-sorted-')) : '';
    t.teardown(() => dir && rmSync(dir, { recursive: true, force: true }));
    const mem = new MemoryStore();
    const store = (): KVStore => (kind === 'level' ? new LevelStore(join(dir, 'catalog')) : mem);
    let catalog = new Catalog(store());
    await catalog.open();
    await catalog.apply({ upserts: library(700, 1) });
    await check(t, catalog, 'fresh');
    for (const seed of [2, 3]) {
      await changes(catalog, seed);
      await check(t, catalog, `after changes ${seed}`);
    }
    await catalog.close();
    catalog = new Catalog(store());
    await catalog.open();
    await check(t, catalog, 'reopened');
    await catalog.close();
  });
}

/** Counts the posting entries range reads hand out. */
class PostingCounter extends MemoryStore {
  postings = 0;
  override async entryList(r: KeyRange): Promise<[string, string][]> {
    const out = await super.entryList(r);
    this.postings += out.filter(([k]) => k.startsWith('x/t/')).length;
    return out;
  }
}

test('a page of a one-word title Search reads about a page of postings, however many objects match', async (t) => {
  for (const n of [1000, 5000]) {
    const store = new PostingCounter();
    const catalog = new Catalog(store);
    await catalog.open();
    await catalog.apply({ upserts: Array.from({ length: n }, (_, i) => item(i, `${WORDS[i % 5]} ${i}`, 0)) });
    const c = 'upnp:class derivedfrom "object.item.audioItem" and dc:title contains "river"';
    const cds = new ContentDirectory(catalog, { searchCacheBytes: 0 });
    store.postings = 0;
    const r = await page(cds, c, 0, 50);
    t.is(r.total, n / 5);
    t.true(store.postings <= 100, `${n} items: read ${store.postings} postings for a page of 50 of ${r.total}`);
    const direct = await sortedTitleSearch(catalog, parseSearch(c), () => true, () => false, 0, 50);
    t.is(direct?.total, n / 5, 'answered by the sorted path');
    await catalog.close();
  }
});

test('criteria the sorted path cannot answer exactly are left to the general path', async (t) => {
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await catalog.apply({ upserts: library(200, 9) });
  const run = (c: string, start = 0, count = 10) => sortedTitleSearch(catalog, parseSearch(c), () => true, () => true, start, count);
  t.is(await run('dc:title contains "lantern"'), undefined, 'two vocabulary words contain it');
  t.is(await run('dc:title contains "river song"'), undefined, 'two words');
  t.is(await run('dc:title contains "river" and upnp:artist = "Artist 1"'), undefined, 'another property');
  t.is(await run('dc:title contains "river" or upnp:class = "object.item"'), undefined, 'or');
  t.is(await run('dc:title contains "river"', 0, 0), undefined, 'RequestedCount 0: all');
  await catalog.apply({ upserts: [item(999, 'Ｆｕｌｌ Mirror', 0)] });
  t.is(await run('dc:title contains "mirror"', 0, 200), undefined, 'keys whose order differs between UTF-16 and UTF-8');
  t.not(await run('dc:title contains "river"'), undefined);
  await catalog.close();
});

test('an apply that fails half-way leaves the title counts as they were', async (t) => {
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  await catalog.apply({ upserts: [item(1, 'River Song', 0)] });
  const before = catalog.titleCounts('river');
  // the first upsert is counted, then the second (not a canonical item) makes apply() throw
  await t.throwsAsync(catalog.apply({ upserts: [item(2, 'River Echo', 0), { ...item(3, 'River', 0), id: 'music/all' }] }));
  t.deepEqual(catalog.titleCounts('river'), before);
  await catalog.apply({ upserts: [item(4, 'Garden', 0)] });
  t.deepEqual(catalog.titleCounts('river'), before, 'the next batch does not carry what the failed one counted');
  const cds = new ContentDirectory(catalog, { searchCacheBytes: 0 });
  t.is((await page(cds, 'dc:title contains "river"', 0, 10)).total, 1);
  await catalog.close();
});
