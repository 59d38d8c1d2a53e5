// `tape import`: tape locations rebuilt from the cartridges equal the originals
// (wiped locations, and a whole new catalog), foreign GNU tars are docked as
// archived items, incomplete archives are left alone.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { canonicalParent } from '../src/catalog/layout.js';
import type { Location, TapeLocation } from '../src/catalog/types.js';
import { ArchiveService } from '../src/archive/service.js';
import { armFault, disarmFaults } from '../src/archive/faults.js';
import { silentLogger } from '../src/log.js';
import type { VirtualTapeLibrary } from '../src/tape/virtual.js';
import { BLOCK, bytes, itemAt, makeLab, readThroughCatalog } from './fixtures/archive/setup.js';

async function archiveAll(lab: Awaited<ReturnType<typeof makeLab>>, t: import('ava').ExecutionContext) {
  const paths = [...lab.files.keys()].sort();
  const keep = paths.filter((_, i) => i % 3 === 0);
  const j1 = await lab.service.run((await lab.service.submit('archive', keep, { keepDisk: true })).id);
  t.is(j1.state, 'done', j1.reason);
  const j2 = await lab.service.run((await lab.service.submit('archive', paths.filter((p) => !keep.includes(p)))).id);
  t.is(j2.state, 'done', j2.reason);
  const locations = new Map<string, TapeLocation>();
  for (const item of await lab.catalog.items()) locations.set(item.id, item.location!.tape!);
  t.is(locations.size, lab.files.size);
  return { keep, locations };
}

test('wiped tape locations are rebuilt from the tape and equal the originals', async (t) => {
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  const { locations } = await archiveAll(lab, t);
  for (const item of await lab.catalog.items()) {
    const { tape: _drop, ...rest } = item.location as Location;
    await lab.catalog.setLocation(item.id, rest);
  }
  t.true((await lab.catalog.items()).every((i) => !i.location?.tape));
  const job = await lab.service.run((await lab.service.submit('import', ['TD0001L9'])).id);
  t.is(job.state, 'done', job.reason);
  const [res] = job.result!.cartridges as { attached: number; recreated: number; docked: number; pool: boolean }[];
  t.is(res.attached, lab.files.size);
  t.is(res.recreated + res.docked, 0);
  t.true(res.pool);
  for (const item of await lab.catalog.items()) t.deepEqual(item.location!.tape, locations.get(item.id), item.relPath);
  // A second import changes nothing.
  const again = await lab.service.run((await lab.service.submit('import', ['TD0001L9'])).id);
  t.is((again.result!.cartridges as { unchanged: number }[])[0].unchanged, lab.files.size);
});

test('a lost catalog is rebuilt from the tapes alone: same IDs, titles, folders and locations', async (t) => {
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  const { keep, locations } = await archiveAll(lab, t);
  const original = new Map((await lab.catalog.items()).map((i) => [i.id, i]));
  const fresh = new Catalog(new MemoryStore());
  await fresh.open();
  const svc = new ArchiveService({ catalog: fresh, library: lab.library, config: lab.config, log: silentLogger });
  const job = await svc.run((await svc.submit('import', ['TD0001L9'])).id);
  t.is(job.state, 'done', job.reason);
  t.is((job.result!.cartridges as { recreated: number }[])[0].recreated, lab.files.size);
  const items = await fresh.items();
  t.is(items.length, lab.files.size);
  for (const item of items) {
    const o = original.get(item.id)!;
    t.truthy(o, `same object ID ${item.id}`);
    t.deepEqual(item.location!.tape, locations.get(item.id));
    t.is(item.title, o.title);
    t.is(item.origPath, o.origPath);
    t.is(item.parentId, o.parentId, 'same folder container');
    t.deepEqual(item.meta, o.meta);
    // Files archived with --keep are still on disk and identical: on disk and tape again.
    t.is(!!item.location!.disk, keep.includes(item.origPath!), item.relPath);
    t.true((await readThroughCatalog(lab, item)).equals(lab.files.get(item.origPath!)!));
  }
  t.deepEqual((await svc.pool.get('TD0001L9'))?.pool, true, 'labelled cartridge rejoins the pool');
  await fresh.close();
});

test('a GNU tar written elsewhere is docked: its media files become archived items under the tape folder', async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  const src = join(lab.dir, 'foreign');
  const files: Record<string, Buffer> = {
    'Movies/Night Walk.mkv': bytes(21, 70_000),
    'Movies/Extras/Making Of.mp4': bytes(22, 12_345),
    'Music/Some Band/Song.mp3': bytes(23, 5_000),
    'README.txt': Buffer.from('not media\n'),
  };
  for (const [rel, b] of Object.entries(files)) {
    await mkdir(join(src, rel, '..'), { recursive: true });
    await writeFile(join(src, rel), b);
  }
  const tarFile = join(lab.dir, 'foreign.tar');
  try {
    execFileSync('tar', ['--format=gnu', '-b', String(BLOCK / 512), '-cf', tarFile, '-C', src, '.']);
  } catch {
    t.log('GNU tar not available: skipped');
    t.pass();
    return;
  }
  const lib = lab.library as VirtualTapeLibrary;
  await lib.createCartridge('FRGN01L9', { timed: false } as never);
  const drive = await lab.service.drives.mount('FRGN01L9');
  const tar = await readFile(tarFile);
  const padded = Buffer.alloc(Math.ceil(tar.length / BLOCK) * BLOCK);
  tar.copy(padded);
  await drive.writeBlocks(padded);
  await drive.writeFilemarks(1);

  const job = await lab.service.run((await lab.service.submit('import', ['FRGN01L9'])).id);
  t.is(job.state, 'done', job.reason);
  const [res] = job.result!.cartridges as { docked: number; pool: boolean; skipped: { path: string }[]; foreignTapeFiles: number[] }[];
  t.is(res.docked, 3);
  t.false(res.pool);
  t.deepEqual(res.foreignTapeFiles, [0]);
  t.true(res.skipped.some((s) => s.path.endsWith('README.txt')));
  for (const [rel, b] of Object.entries(files)) {
    if (rel.endsWith('.txt')) continue;
    const item = (await lab.catalog.items()).find((i) => i.origPath === `tape://FRGN01L9/${rel}`)!;
    t.truthy(item, rel);
    t.falsy(item.location!.disk);
    t.is(item.location!.tape!.label, 'FRGN01L9');
    t.true((await readThroughCatalog(lab, item)).equals(b), rel);
    // Browse: Folders → FRGN01L9 → ... → item.
    t.is(item.parentId, canonicalParent(item));
    let c = await lab.catalog.get(item.parentId);
    while (c && c.parentId !== 'folders') c = await lab.catalog.get(c.parentId);
    t.is(c?.title, 'FRGN01L9');
  }
  // Such a cartridge does not join the archive pool unless forced.
  await t.throwsAsync(() => lab.service.label(['FRGN01L9']), { message: /holds data not written by Tapedeck/ });
  const [l] = await lab.service.label(['FRGN01L9'], { force: true });
  t.false(l.written);
  t.true((await lab.service.pool.get('FRGN01L9'))!.pool);
  // Recall of a docked item restores it under <data>/restored/<label>/.
  const mkv = (await lab.catalog.items()).find((i) => i.origPath === 'tape://FRGN01L9/Movies/Night Walk.mkv')!;
  const rj = await lab.service.run((await lab.service.submit('recall', [mkv.id])).id);
  t.is(rj.state, 'done', rj.reason);
  const back = (await lab.catalog.get(mkv.id))!;
  t.is(back.location!.disk!.path, join(lab.data, 'restored', 'FRGN01L9', 'Movies', 'Night Walk.mkv'));
  t.true((await readFile(back.location!.disk!.path)).equals(files['Movies/Night Walk.mkv']));
});

// serial: the armed fault is process-wide, and ava runs serial tests before the concurrent ones,
// so no other test's archive can hit it
test.serial('an archive that failed half-way leaves no trace in the catalog and is not docked by import', async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  t.teardown(() => disarmFaults());
  armFault('archive:mid-write');
  const job = await lab.service.run((await lab.service.submit('archive', [lab.media])).id);
  t.is(job.state, 'failed');
  t.regex(job.reason!, /injected fault at archive:mid-write/);
  for (const [path, b] of lab.files) {
    const item = await itemAt(lab.catalog, path);
    t.deepEqual(Object.keys(item.location!), ['disk']);
    t.true((await readFile(path)).equals(b));
  }
  const imp = await lab.service.run((await lab.service.submit('import', ['TD0001L9'])).id);
  t.is(imp.state, 'done', imp.reason);
  const [res] = imp.result!.cartridges as { docked: number; attached: number; skipped: { reason: string }[] }[];
  t.is(res.docked + res.attached, 0);
  t.true(res.skipped.some((s) => /incomplete Tapedeck archive/.test(s.reason)));
  // The cartridge still takes archives after the partial tar.
  const ok = await lab.service.run((await lab.service.submit('archive', [lab.media])).id);
  t.is(ok.state, 'done', ok.reason);
  for (const [path, b] of lab.files) t.true((await readThroughCatalog(lab, await itemAt(lab.catalog, path))).equals(b));
});
