// Recall ordering: items spread over several cartridges are recalled with one
// mount per cartridge, each read front to back (non-decreasing blocks, locating
// only where the next member is not where the drive already is).
import test from 'ava';
import { ArchiveService } from '../src/archive/service.js';
import { silentLogger } from '../src/log.js';
import { makeLab, recordingLibrary, rng } from './fixtures/archive/setup.js';

const FILES: [string, number][] = Array.from({ length: 12 }, (_, i) => [`Music/Album ${i % 3}/Track ${String(i).padStart(2, '0')}.mp3`, 10_000 + i * 3_001]);

for (const [name, readThroughBytes, locates] of [
  ['reading through short gaps', undefined, [0, 4]],
  ['locating over every gap', 0, [4, 4]],
] as const) {
  test(`a batch recall over three cartridges mounts each once and reads it in block order (${name})`, async (t) => {
    const lab = await makeLab({ files: FILES, pool: 3, cartridges: 3 });
    t.teardown(() => lab.cleanup());
    const items = await lab.catalog.items();
    const paths = [...lab.files.keys()].sort();
    // Four archive jobs: each goes to the pool cartridge with the most free space,
    // so the three cartridges get one tar each and one of them a second one.
    for (let k = 0; k < 4; k++) {
      const job = await lab.service.run((await lab.service.submit('archive', paths.slice(k * 3, k * 3 + 3))).id);
      t.is(job.state, 'done', job.reason);
    }
    const tars = new Set((await lab.catalog.items()).map((i) => `${i.location!.tape!.label}/${i.location!.tape!.tapeFile}`));
    t.is(tars.size, 4);
    t.is(new Set([...tars].map((x) => x.split('/')[0])).size, 3);
    // Empty the drives so every cartridge needs a mount.
    for (const d of (await lab.library.changer.inventory()).drives) if (d.full) await lab.library.changer.unload(d.drive);

    const rec = recordingLibrary(lab.library);
    const svc = new ArchiveService({ catalog: lab.catalog, library: rec.library, config: lab.config, log: silentLogger, tuning: { reader: { readThroughBytes } } });
    const shuffled = items.map((i) => i.id);
    const r = rng(7);
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    const before = lab.library.stats();
    const job = await svc.run((await svc.submit('recall', shuffled)).id);
    t.is(job.state, 'done', job.reason);
    const after = lab.library.stats();
    t.is(after.mounts - before.mounts, 3, 'one mount per cartridge');
    const nLocates = after.locates - before.locates;
    t.true(nLocates >= locates[0] && nLocates <= locates[1], `locates: ${nLocates}`);
    t.is(after.rewinds - before.rewinds, 0);
    // Reads: each cartridge in one run, blocks never going back.
    const runs: string[] = [];
    for (const x of rec.reads) if (runs[runs.length - 1] !== x.label) runs.push(x.label);
    t.is(runs.length, 3, `cartridge runs: ${runs.join(' ')}`);
    t.is(new Set(runs).size, 3);
    for (const label of runs) {
      const blocks = rec.reads.filter((x) => x.label === label).map((x) => x.block);
      t.deepEqual(blocks, [...blocks].sort((a, b) => a - b), `${label} read front to back`);
    }
    t.deepEqual(job.result?.cartridges, runs);
    for (const item of await lab.catalog.items()) t.truthy(item.location!.disk);
  });
}
