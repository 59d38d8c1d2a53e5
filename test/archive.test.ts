// Archive and recall through ArchiveService: locations, stubs, scanner interplay,
// reuse of verified copies, recall ordering, tape import, bad inputs.
import test from 'ava';
import { readFile, stat, access, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scan } from '../src/scanner/scanner.js';
import { ArchiveError } from '../src/archive/errors.js';
import { stubPath } from '../src/archive/stubs.js';
import { fakeProbe, itemAt, makeLab, readThroughCatalog, sha256 } from './fixtures/archive/setup.js';

const exists = (p: string) => access(p).then(() => true, () => false);

test('archive moves items to verified tape copies with head stubs; recall brings them back unchanged', async (t) => {
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  const job = await lab.service.submit('archive', [lab.media]);
  t.is(job.state, 'queued');
  t.is(job.progress.itemsTotal, lab.files.size);
  const done = await lab.service.run(job.id);
  t.is(done.state, 'done', done.reason);
  t.is(done.progress.itemsDone, lab.files.size);
  t.deepEqual(done.result?.cartridges, ['TD0001L9']);
  for (const [path, content] of lab.files) {
    const item = await itemAt(lab.catalog, path);
    const loc = item.location!;
    t.falsy(loc.disk, path);
    t.truthy(loc.tape, path);
    t.is(loc.tape!.sha256, sha256(content));
    t.is(loc.stub!.path, stubPath(lab.data, item.id));
    t.false(await exists(path), `${path} removed`);
    t.true((await lab.catalog.getPath(path))!.archived);
    t.true((await readThroughCatalog(lab, item)).equals(content), path);
  }
  // A rescan does not drop archived items.
  await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe });
  t.is((await lab.catalog.items()).length, lab.files.size);

  const rec = await lab.service.submit('recall', ['folders']);
  const back = await lab.service.run(rec.id);
  t.is(back.state, 'done', back.reason);
  for (const [path, content] of lab.files) {
    const item = await itemAt(lab.catalog, path);
    t.is(item.location!.disk!.path, path);
    t.truthy(item.location!.tape, 'tape copy kept');
    t.falsy(item.location!.stub);
    t.false(await exists(stubPath(lab.data, item.id)));
    t.true((await readFile(path)).equals(content));
    const st = await stat(path);
    t.is(Math.trunc(st.mtimeMs), item.mtime!, 'original mtime restored');
    const pe = (await lab.catalog.getPath(path))!;
    t.false(pe.archived);
    t.is(pe.size, content.length);
    t.is(pe.mtime, Math.trunc(st.mtimeMs));
  }
  // The next scan finds every file unchanged.
  const s = await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe });
  t.is(s.unchanged, lab.files.size);
  t.is(s.probed, 0);
});

test('archive --keep keeps the disk copy; a second archive of unchanged files writes nothing', async (t) => {
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  const [path, content] = [...lab.files][0];
  const item = await itemAt(lab.catalog, path);
  const j1 = await lab.service.run((await lab.service.submit('archive', [item.id], { keepDisk: true })).id);
  t.is(j1.state, 'done', j1.reason);
  const kept = await itemAt(lab.catalog, path);
  t.truthy(kept.location!.disk);
  t.truthy(kept.location!.tape);
  t.true((await readFile(path)).equals(content));
  const written = lab.library.stats().bytesWritten;
  const j2 = await lab.service.run((await lab.service.submit('archive', [item.id])).id);
  t.is(j2.state, 'done', j2.reason);
  t.is(j2.result?.reused, 1);
  t.is(lab.library.stats().bytesWritten, written, 'no tape write for a verified copy');
  const after = await itemAt(lab.catalog, path);
  t.falsy(after.location!.disk);
  t.deepEqual(after.location!.tape, kept.location!.tape);
  t.truthy(after.location!.stub);
});

test('an item on disk and tape whose disk file disappears stays in the library, served from tape; a deleted disk-only file leaves', async (t) => {
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  const [[kept, content], [plain]] = [...lab.files];
  const item = await itemAt(lab.catalog, kept!);
  const other = await itemAt(lab.catalog, plain!);
  t.is((await lab.service.run((await lab.service.submit('archive', [item.id], { keepDisk: true })).id)).state, 'done');
  await rm(kept!);
  await rm(plain!);
  const progress = await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe });
  t.is(progress.diskCopiesGone, 1);
  t.is(progress.removed, 1);
  t.is(await lab.catalog.get(other.id), undefined, 'the disk-only item left the library');
  const after = await lab.catalog.get(item.id);
  t.truthy(after, 'the archived item is still there');
  t.falsy(after!.location!.disk);
  t.truthy(after!.location!.tape);
  t.true((await readThroughCatalog(lab, after!)).equals(content!), 'and its bytes come from tape');
  const again = await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe });
  t.is(again.removed, 0, 'a later scan leaves it alone');
  t.truthy(await lab.catalog.get(item.id));

  // the same bytes come back: on disk and tape again, the tape copy is not forgotten
  await writeFile(kept!, content!);
  await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe });
  const back = await lab.catalog.get(item.id);
  t.is(back!.location!.disk?.path, kept);
  t.deepEqual(back!.location!.tape, after!.location!.tape);
  // other bytes at that path: a new version, disk only
  await writeFile(kept!, Buffer.concat([content!, Buffer.from('changed')]));
  await scan(lab.catalog, { roots: [lab.media], probe: fakeProbe });
  const changed = await lab.catalog.get(item.id);
  t.truthy(changed!.location!.disk);
  t.falsy(changed!.location!.tape, 'the tape copy is of another version');
});

test('bad input: unknown IDs and paths are refused before anything is queued', async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  const e1 = await t.throwsAsync(() => lab.service.submit('archive', ['inosuchitem']));
  t.true(e1 instanceof ArchiveError);
  t.is((e1 as ArchiveError).code, 'NOT_FOUND');
  t.is((e1 as ArchiveError).exitCode, 2);
  const e2 = await t.throwsAsync(() => lab.service.submit('recall', [join(lab.media, 'nope.mp3')]));
  t.is((e2 as ArchiveError).code, 'NOT_FOUND');
  const e3 = await t.throwsAsync(() => lab.service.submit('import', ['ZZ9999L9']));
  t.is((e3 as ArchiveError).code, 'NOT_FOUND');
  t.deepEqual(await lab.service.list(), []);
});

test('targets: item IDs, reference IDs, containers and paths resolve to canonical items', async (t) => {
  const { resolveTargets } = await import('../src/archive/targets.js');
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  const items = await lab.catalog.items();
  const mp3 = items.find((i) => i.relPath!.endsWith('01 One.mp3'))!;
  t.deepEqual(await resolveTargets(lab.catalog, [mp3.id]), [mp3.id]);
  t.deepEqual(await resolveTargets(lab.catalog, [`music/all$${mp3.id}`]), [mp3.id], 'reference ID');
  t.deepEqual(await resolveTargets(lab.catalog, [mp3.origPath!]), [mp3.id], 'file path');
  const album = await resolveTargets(lab.catalog, [join(lab.media, 'Music', 'Artist A')]);
  t.is(album.length, 3, 'directory path');
  t.deepEqual((await resolveTargets(lab.catalog, [mp3.parentId])).sort(), album.sort(), 'folder container');
  t.is((await resolveTargets(lab.catalog, ['music'])).length, 4, 'every audio item below Music (references deduplicated)');
  t.is((await resolveTargets(lab.catalog, ['0'])).length, lab.files.size);
  t.deepEqual(await resolveTargets(lab.catalog, [mp3.id, mp3.id, `music/all$${mp3.id}`]), [mp3.id]);
  await t.throwsAsync(() => resolveTargets(lab.catalog, []), { instanceOf: ArchiveError });
  await t.throwsAsync(() => resolveTargets(lab.catalog, [join(lab.media, 'Nope')]), { message: /unknown path/ });
});

test('tape status: drives, slots, pool cartridges with used/free space and item counts', async (t) => {
  const lab = await makeLab({ memory: true, pool: 2 });
  t.teardown(() => lab.cleanup());
  t.is((await lab.service.run((await lab.service.submit('archive', [join(lab.media, 'Video')])).id)).state, 'done');
  const s = await lab.service.tapeStatus();
  t.is(s.backend, 'virtual');
  t.is(s.drives.length, 2);
  const loaded = s.drives.filter((d) => d.loaded).map((d) => d.label).sort();
  t.deepEqual(loaded, ['TD0001L9', 'TD0002L9']);
  const byLabel = new Map(s.cartridges.map((c) => [c.label, c]));
  t.deepEqual([...byLabel.keys()], ['TD0001L9', 'TD0002L9', 'TD0003L9']);
  const used = s.cartridges.filter((c) => c.items > 0);
  t.is(used.length, 1);
  t.is(used[0].items, 2);
  t.is(used[0].bytes, 450_000);
  t.true(used[0].usedBytes! > 450_000);
  t.is(used[0].usedBytes! + used[0].freeBytes!, used[0].capacityBytes!);
  t.false(byLabel.get('TD0003L9')!.pool, 'never labelled');
  t.is(s.pool.cartridges, 2);
  t.deepEqual(s.offline, []);
});

test('old finished jobs are pruned when jobs are resumed', async (t) => {
  const { KEEP_FINISHED_JOBS } = await import('../src/archive/service.js');
  const lab = await makeLab({ memory: true, files: [['a.mp3', 10]] });
  t.teardown(() => lab.cleanup());
  const first = await lab.service.submit('archive', [lab.media]);
  await lab.service.run(first.id);
  const fake = { ...first, state: 'done' as const };
  const ops = [];
  for (let i = 0; i < KEEP_FINISHED_JOBS; i++) ops.push(lab.service.jobs.jobOp({ ...fake, id: `zz${String(i).padStart(6, '0')}` }));
  await lab.service.jobs.write(ops);
  await lab.service.resume();
  const list = await lab.service.list();
  t.is(list.length, KEEP_FINISHED_JOBS);
  t.false(list.some((j) => j.id === first.id));
  t.deepEqual(await lab.service.items(first.id), []);
});
