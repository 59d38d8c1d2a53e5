// Bad inputs and resource problems: clear errors with their codes (the CLI's
// exit codes), nothing half done.
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ArchiveError, EXIT_CODES } from '../src/archive/errors.js';
import { armFault, disarmFaults } from '../src/archive/faults.js';
import { summary } from '../src/archive/cli.js';
import { ArchiveService } from '../src/archive/service.js';
import { silentLogger } from '../src/log.js';
import { itemAt, makeLab, readThroughCatalog } from './fixtures/archive/setup.js';

test('no room in the archive pool: NO_ROOM (exit 3), items stay on disk', async (t) => {
  const lab = await makeLab({ capacity: 1 << 20, files: [['Video/Big.mkv', 1_500_000], ['Video/Small.mkv', 1000]], memory: true });
  t.teardown(() => lab.cleanup());
  const job = await lab.service.run((await lab.service.submit('archive', [lab.media])).id);
  t.is(job.state, 'failed');
  t.is(job.code, 'NO_ROOM');
  t.regex(job.reason!, /do not fit on any cartridge of the archive pool/);
  const big = await itemAt(lab.catalog, [...lab.files.keys()][0]);
  t.deepEqual(Object.keys(big.location!), ['disk']);
  const small = await itemAt(lab.catalog, [...lab.files.keys()][1]);
  t.truthy(small.location!.tape, 'what fits is archived');
  // With an empty pool: a message that says what to do.
  const lab2 = await makeLab({ pool: 0, memory: true, files: [['a.mp3', 10]] });
  t.teardown(() => lab2.cleanup());
  const j2 = await lab2.service.run((await lab2.service.submit('archive', [lab2.media])).id);
  t.is(j2.code, 'NO_ROOM');
  t.regex(j2.reason!, /tapedeck tape label/);
});

test('a batch larger than one cartridge is split over several; a cartridge that turns out full is skipped', async (t) => {
  const files: [string, number][] = [['A/1.mkv', 400_000], ['A/2.mkv', 400_000], ['A/3.mkv', 400_000]];
  const lab = await makeLab({ capacity: 1 << 20, files, pool: 3, memory: true });
  t.teardown(() => lab.cleanup());
  // TD0001's record claims far more room than it has: the write meets end of medium.
  const rec = (await lab.service.pool.get('TD0001L9'))!;
  await lab.service.pool.put({ ...rec, remainingBytes: 100 << 20 });
  const job = await lab.service.run((await lab.service.submit('archive', [lab.media])).id);
  t.is(job.state, 'done', job.reason);
  t.true((await lab.service.pool.get('TD0001L9'))!.full);
  const labels = new Set<string>();
  for (const [path, b] of lab.files) {
    const item = await itemAt(lab.catalog, path);
    labels.add(item.location!.tape!.label);
    t.true((await readThroughCatalog(lab, item)).equals(b));
  }
  t.deepEqual([...labels].sort(), ['TD0002L9', 'TD0003L9']);
  const ls = await lab.service.tapeStatus();
  t.true(ls.cartridges.find((c) => c.label === 'TD0001L9')!.full);
});

test('recall from an offline cartridge: OFFLINE (exit 3), noted as needed; import brings it back', async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  const [path, content] = [...lab.files][0];
  const item = await itemAt(lab.catalog, path);
  t.is((await lab.service.run((await lab.service.submit('archive', [item.id])).id)).state, 'done');
  await lab.service.exportCartridge('TD0001L9');
  const ls = await lab.service.tapeStatus();
  t.deepEqual(ls.offline, ['TD0001L9']);
  const job = await lab.service.run((await lab.service.submit('recall', [item.id])).id);
  t.is(job.state, 'failed');
  t.is(job.code, 'OFFLINE');
  t.regex(job.reason!, /TD0001L9 is offline.*tapedeck tape import TD0001L9/);
  const after = await lab.service.tapeStatus();
  t.deepEqual(after.needed, ['TD0001L9']);
  t.true(after.cartridges.find((c) => c.label === 'TD0001L9')!.needed);
  // kept in the catalog store: another service on the same catalog (the next CLI process) sees it
  const another = new ArchiveService({ catalog: lab.catalog, library: lab.library, config: lab.config, log: silentLogger });
  t.deepEqual((await another.tapeStatus()).needed, ['TD0001L9']);
  t.falsy((await lab.catalog.get(item.id))!.location!.disk, 'still archived');
  // Archiving never picks an offline cartridge.
  const other = await itemAt(lab.catalog, [...lab.files.keys()][1]);
  const a = await lab.service.run((await lab.service.submit('archive', [other.id])).id);
  t.is(a.code, 'NO_ROOM');
  t.regex(a.reason!, /offline: TD0001L9/);
  // Export of an offline cartridge is bad input.
  const e = await t.throwsAsync(() => lab.service.exportCartridge('TD0001L9'));
  t.is((e as ArchiveError).exitCode, 2);
  // Import puts it back into a slot; the recall then works.
  t.is((await lab.service.run((await lab.service.submit('import', ['TD0001L9'])).id)).state, 'done');
  t.deepEqual((await lab.service.tapeStatus()).needed, []);
  t.deepEqual((await another.tapeStatus()).needed, [], 'and forgotten everywhere once it is back');
  const r = await lab.service.run((await lab.service.submit('recall', [item.id])).id);
  t.is(r.state, 'done', r.reason);
  t.true((await readFile(path)).equals(content));
});

test.serial('recall onto a disk without room: NO_SPACE (exit 3) before any mount; a disk that fills up during the recall is NO_SPACE too, not "0 failed"', async (t) => {
  const lab = await makeLab({ memory: true });
  t.teardown(() => lab.cleanup());
  t.teardown(() => disarmFaults());
  const [path, content] = [...lab.files].find(([, b]) => b.length > 100_000)!;
  const item = await itemAt(lab.catalog, path);
  t.is((await lab.service.run((await lab.service.submit('archive', [item.id])).id)).state, 'done');
  let mounts = 0;
  const mount = lab.service.drives.mount.bind(lab.service.drives);
  lab.service.drives.mount = (label) => {
    mounts++;
    return mount(label);
  };
  const real = lab.service.tuning.fsSpace;
  lab.service.tuning.fsSpace = async (p) => ({ ...(await real(p)), freeBytes: 1000 });
  const job = await lab.service.run((await lab.service.submit('recall', [item.id])).id);
  t.is(job.state, 'failed');
  t.is(job.code, 'NO_SPACE');
  t.is(EXIT_CODES[job.code!], 3, 'a resource problem, like a full archive pool');
  t.regex(job.reason!, /not enough free space to recall: 1 item\(s\) need .* on the file system holding .*, which has 1000 B free; nothing was mounted/);
  t.is(mounts, 0, 'refused before mounting a cartridge');
  t.notRegex(summary(job), /0 failed/);
  t.falsy((await lab.catalog.get(item.id))!.location!.disk, 'still archived');
  // the disk fills up while the recall writes: the job says so (exit 3), the temp file goes
  lab.service.tuning.fsSpace = real;
  armFault('recall:mid-restore', {
    fn: () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    },
  });
  const full = await lab.service.run((await lab.service.submit('recall', [item.id])).id);
  t.is(full.state, 'failed');
  t.is(full.code, 'NO_SPACE');
  t.regex(full.reason!, /ENOSPC/);
  t.regex(summary(full), /failed after 0 of 1 item\(s\)/);
  t.false((await readdir(dirname(path))).some((n) => n.endsWith('.tapedeck-recall')), 'no temp file left');
  t.falsy((await lab.catalog.get(item.id))!.location!.disk, 'still archived');
  t.true((await readThroughCatalog(lab, (await lab.catalog.get(item.id))!)).equals(content), 'and plays from tape');
  const again = await lab.service.run((await lab.service.submit('recall', [item.id])).id);
  t.is(again.state, 'done', again.reason);
  t.true((await readFile(path)).equals(content));
});

test('no free drive: NO_DRIVE (exit 3)', async (t) => {
  // One drive holding TD0001 whose slot is taken by a new cartridge: nothing can be unloaded.
  const lab = await makeLab({ drives: 1, slots: 2, cartridges: 2, memory: true });
  t.teardown(() => lab.cleanup());
  const e = await t.throwsAsync(() => lab.service.label(['TD0003L9']));
  t.true(e instanceof ArchiveError, String(e));
  t.is((e as ArchiveError).code, 'NO_DRIVE');
  t.is((e as ArchiveError).exitCode, 3);
  t.regex(e!.message, /no free drive for TD0003L9/);
});

test('labels: invalid and unknown ones are bad input (exit 2)', async (t) => {
  const lab = await makeLab({ memory: true, files: [['a.mp3', 10]] });
  t.teardown(() => lab.cleanup());
  const bad = await t.throwsAsync(() => lab.service.label(['lower1L9']));
  t.is((bad as ArchiveError).code, 'INVALID');
  t.is((bad as ArchiveError).exitCode, 2);
  const e = await t.throwsAsync(() => lab.service.exportCartridge('NOPE01L9'));
  t.is((e as ArchiveError).code, 'NOT_FOUND');
  t.is((e as ArchiveError).exitCode, 2);
  // Labelling again is harmless; labelling a new virtual cartridge picks the next free label.
  const [again] = await lab.service.label(['TD0001L9']);
  t.false(again.written);
  const [fresh] = await lab.service.label([]);
  t.is(fresh.label, 'TD0004L9');
  t.true(fresh.created && fresh.written);
});
