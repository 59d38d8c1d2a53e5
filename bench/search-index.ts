// In-process micro-bench of uncached Search on an existing catalog: the uncached workload's
// queries (bench/workloads.ts uncachedQueries: 40 title words with the audio class, 40
// artists) run through ContentDirectory with the result cache off, one at a time, without
// HTTP, SOAP or the lab. Prints CPU ms per request of this process, what each request read from
// the catalog database (range reads and their entries, point reads, bytes: the work that would grow
// with the library if a request visited every match), and checks every TotalMatches against the
// library. The database's block cache is the server's default (catalog_cache, 2 MiB) unless
// --catalog-cache says otherwise. For quick before/after comparisons and CPU profiles of
// the Search path alone (`node --cpu-prof --import tsx bench/search-index.ts ...`); the
// figures of record come from `npm run bench` (server CPU from /proc, SOAP included).
//
//   tapedeck scan --media /tmp/tapedeck-bench/library-v2-n20000/music --data DIR
//   node --import tsx bench/search-index.ts DIR/catalog [--files 20000] [--rounds 10] [--catalog-cache BYTES]

import { parseArgs } from 'node:util';
import { Catalog } from '../src/catalog/catalog.js';
import { LevelStore, type KeyRange } from '../src/catalog/store.js';
import { parseSize, SETTINGS } from '../src/config.js';
import { ContentDirectory } from '../src/upnp/cds.js';
import type { SoapContext } from '../src/upnp/soap.js';
import { trackList } from './library.js';
import { uncachedQueries } from './workloads.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { files: { type: 'string' }, rounds: { type: 'string' }, 'catalog-cache': { type: 'string' } } });
  if (positionals.length !== 1) {
    process.stderr.write('usage: node --import tsx bench/search-index.ts CATALOG_DIR [--files N] [--rounds N]\n');
    process.exit(2);
  }
  const files = Number(values.files ?? 20000);
  const rounds = Number(values.rounds ?? 10);
  const cacheText = values['catalog-cache'] ?? SETTINGS.find((x) => x.key === 'catalog_cache')!.default;
  const cacheBytes = parseSize(cacheText);
  if (cacheBytes === undefined) throw new Error(`--catalog-cache ${cacheText}: not a size`);
  const store = new LevelStore(positionals[0], { cacheBytes });
  const reads = countReads(store);
  const catalog = new Catalog(store);
  await catalog.open();
  const cds = new ContentDirectory(catalog, { searchCacheBytes: 0 });
  const ctx: SoapContext = { baseUrl: 'http://127.0.0.1:1', remoteAddress: '127.0.0.1', headers: {} };
  const q = uncachedQueries(trackList(files));
  for (const kind of ['titleContains', 'artistEquals'] as const) {
    const list = q[kind];
    const run = async (c: { criteria: string; expected: number }) => {
      const out = await cds.search({ ContainerID: '0', SearchCriteria: c.criteria, Filter: '*', StartingIndex: '0', RequestedCount: '50', SortCriteria: '' }, ctx);
      const total = Number(out.find(([k]) => k === 'TotalMatches')?.[1]);
      if (total !== c.expected) throw new Error(`${c.criteria}: TotalMatches ${total}, library has ${c.expected}`);
    };
    for (const c of list) await run(c); // warm-up and check
    reads.reset();
    const t0 = process.cpuUsage();
    const w0 = performance.now();
    for (let r = 0; r < rounds; r++) for (const c of list) await run(c);
    const cpu = process.cpuUsage(t0);
    const n = rounds * list.length;
    const r = reads.counts;
    const per = (x: number) => (x / n).toFixed(1);
    process.stdout.write(`${kind}: ${n} requests, ${(((cpu.user + cpu.system) / 1000) / n).toFixed(3)} ms CPU/request, ${((performance.now() - w0) / n).toFixed(3)} ms wall/request\n`);
    process.stdout.write(`  per request: ${per(r.ranges)} range reads of ${per(r.entries)} entries, ${per(r.points)} point reads, ${per(r.bytes)} bytes read\n`);
  }
  await catalog.close();
}

/** Counts what the catalog reads from the store (wraps its read methods). */
function countReads(store: LevelStore): { counts: { ranges: number; entries: number; points: number; bytes: number }; reset(): void } {
  const counts = { ranges: 0, entries: 0, points: 0, bytes: 0 };
  const s = store as unknown as Record<string, (...a: unknown[]) => unknown>;
  const wrap = <A extends unknown[], R>(name: string, after: (r: R, ...a: A) => void) => {
    const orig = s[name].bind(store) as (...a: A) => Promise<R>;
    s[name] = (...a: unknown[]) => orig(...(a as A)).then((r) => (after(r, ...(a as A)), r));
  };
  wrap<[string], string | undefined>('get', (v) => ((counts.points += 1), (counts.bytes += v?.length ?? 0)));
  wrap<[string[]], (string | undefined)[]>('getMany', (vs) => {
    counts.points += vs.length;
    for (const v of vs) counts.bytes += v?.length ?? 0;
  });
  wrap<[KeyRange], [string, string][]>('entryList', (es) => {
    counts.ranges += 1;
    counts.entries += es.length;
    for (const [k, v] of es) counts.bytes += k.length + v.length;
  });
  wrap<[KeyRange], string[]>('keyList', (ks) => {
    counts.ranges += 1;
    counts.entries += ks.length;
    for (const k of ks) counts.bytes += k.length;
  });
  const iterate = (name: 'entries' | 'keys') => {
    const orig = s[name].bind(store) as (r: KeyRange) => AsyncIterable<string | [string, string]>;
    s[name] = (r: unknown) => {
      counts.ranges += 1;
      const it = orig(r as KeyRange);
      return (async function* () {
        for await (const e of it) {
          counts.entries += 1;
          counts.bytes += typeof e === 'string' ? e.length : e[0].length + e[1].length;
          yield e;
        }
      })();
    };
  };
  iterate('entries');
  iterate('keys');
  return { counts, reset: () => Object.assign(counts, { ranges: 0, entries: 0, points: 0, bytes: 0 }) };
}

await main();
