// In-process bench of the incremental rescan: a cold scan of a media directory into a fresh
// LevelDB catalog, then rescans of the unchanged library, each with its wall time, this process's
// CPU time and the catalog writes it made (batches and put/del operations, counted at the store).
// An unchanged rescan should write nothing: what it costs is the walk (a stat per file) and the
// reads of the path entries. For quick before/after comparisons; the restart figures of record
// come from `npm run bench` (workload `restart`).
//
//   node --import tsx bench/rescan.ts /tmp/tapedeck-bench/library-v2-n20000-video500/music [--rounds 3] [--ffprobe off] [--art]

import { parseArgs } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { LevelStore, type BatchOp } from '../src/catalog/store.js';
import { scan } from '../src/scanner/scanner.js';
import { ArtMaker } from '../src/art/maker.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string' }, ffprobe: { type: 'string' }, art: { type: 'boolean' } } });
  if (positionals.length !== 1) {
    process.stderr.write('usage: node --import tsx bench/rescan.ts MEDIA_DIR [--rounds N] [--ffprobe off|PATH] [--art]\n');
    process.exit(2);
  }
  const data = await mkdtemp(join(tmpdir(), 'tapedeck-rescan-'));
  try {
    const store = new LevelStore(join(data, 'catalog'));
    const writes = { batches: 0, puts: 0, dels: 0 };
    const batch = store.batch.bind(store);
    store.batch = (ops: BatchOp[]) => {
      writes.batches++;
      for (const op of ops) op.type === 'put' ? writes.puts++ : writes.dels++;
      return batch(ops);
    };
    const catalog = new Catalog(store);
    await catalog.open();
    const art = values.art ? new ArtMaker({ dataDir: data }) : undefined;
    const opts = { roots: [positionals[0]], ffprobe: values.ffprobe, art, deferFrames: true };
    const measure = async (label: string) => {
      Object.assign(writes, { batches: 0, puts: 0, dels: 0 });
      const cpu = process.cpuUsage();
      const r = await scan(catalog, opts);
      const used = process.cpuUsage(cpu);
      const line = { label, files: r.seen, probed: r.probed, unchanged: r.unchanged, elapsedMs: r.elapsedMs, cpuMs: Math.round((used.user + used.system) / 1000), ...writes };
      process.stdout.write(JSON.stringify(line) + '\n');
    };
    await measure('cold');
    for (let i = 1; i <= Number(values.rounds ?? 3); i++) await measure(`rescan ${i}`);
    await catalog.close();
  } finally {
    await rm(data, { recursive: true, force: true });
  }
}

await main();
