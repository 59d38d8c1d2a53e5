// In-process micro-bench of uncached Search on an existing catalog: the uncached workload's
// queries (bench/workloads.ts uncachedQueries: 40 title words with the audio class, 40
// artists) run through ContentDirectory with the result cache off, one at a time, without
// HTTP, SOAP or the lab. Prints CPU ms per request of this process and checks every
// TotalMatches against the library. For quick before/after comparisons and CPU profiles of
// the Search path alone (`node --cpu-prof --import tsx bench/search-index.ts ...`); the
// figures of record come from `npm run bench` (server CPU from /proc, SOAP included).
//
//   tapedeck scan --media /tmp/tapedeck-bench/library-v2-n20000/music --data DIR
//   node --import tsx bench/search-index.ts DIR/catalog [--files 20000] [--rounds 10]

import { parseArgs } from 'node:util';
import { Catalog } from '../src/catalog/catalog.js';
import { LevelStore } from '../src/catalog/store.js';
import { ContentDirectory } from '../src/upnp/cds.js';
import type { SoapContext } from '../src/upnp/soap.js';
import { trackList } from './library.js';
import { uncachedQueries } from './workloads.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { files: { type: 'string' }, rounds: { type: 'string' } } });
  if (positionals.length !== 1) {
    process.stderr.write('usage: node --import tsx bench/search-index.ts CATALOG_DIR [--files N] [--rounds N]\n');
    process.exit(2);
  }
  const files = Number(values.files ?? 20000);
  const rounds = Number(values.rounds ?? 10);
  const catalog = new Catalog(new LevelStore(positionals[0]));
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
    const t0 = process.cpuUsage();
    const w0 = performance.now();
    for (let r = 0; r < rounds; r++) for (const c of list) await run(c);
    const cpu = process.cpuUsage(t0);
    const n = rounds * list.length;
    process.stdout.write(`${kind}: ${n} requests, ${(((cpu.user + cpu.system) / 1000) / n).toFixed(3)} ms CPU/request, ${((performance.now() - w0) / n).toFixed(3)} ms wall/request\n`);
  }
  await catalog.close();
}

await main();
