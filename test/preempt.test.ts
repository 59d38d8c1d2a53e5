// Pre-emption of archive/recall jobs by playback (issue 9): a job that holds the
// only drive gives it to an interactive request at its next safe point (the end
// of the current tar member) instead of letting it wait for admission_timeout,
// then resumes; every guarantee of the job (verify before switch) holds.
//
// The worker runs in this process (listening on a socket the StagerClient
// connects to), over a virtual library whose drive reads/writes can be held at
// a gate, so the playback request arrives while the job is mid-member.

import test from 'ava';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { itemAt, readThroughCatalog, sha256 } from './fixtures/archive/setup.js';
import { fetchMedia } from './fixtures/staging/harness.js';
import { Gate, inprocRig, type Rig } from './fixtures/staging/inproc.js';

const FILES: [string, number][] = Array.from({ length: 6 }, (_, i) => [`Video/Show/E0${i + 1}.mkv`, 300_000 + i * 1000] as [string, number]);
const NO_TAIL = { headSeconds: 0, headMin: 4096, tailBytes: 0, mergeGap: 0 };

/** Playback of `obj` (all on tape) while the gate holds the job; opens the gate once the job was asked. */
async function playDuringJob(r: Rig, gate: Gate, obj: CatalogObject): Promise<Buffer> {
  await gate.hit; // the job is in the middle of a member, holding the only drive
  const asked = new Promise((res) => r.worker.scheduler.once('preempt', res));
  const play = fetchMedia(r.port, obj.id);
  await asked; // playback found the drive busy with the job: the job is asked to give it back
  gate.open();
  const f = await play;
  if (f.status !== 200) throw new Error(`playback answered ${f.status}`);
  return f.body;
}

test('playback pre-empts a recall at the end of the current member; the recall resumes and completes', async (t) => {
  const gate = new Gate('readBlocks', 2);
  const r = await inprocRig({ files: FILES, archived: 6, stub: NO_TAIL, gate });
  try {
    const objs = await Promise.all(FILES.map(([rel]) => itemAt(r.catalog, join(r.lab.media, rel))));
    const job = await r.service.submit('recall', objs.slice(0, 5).map((o) => o.id));
    gate.armed = true;
    const run = r.service.run(job.id);
    const body = await playDuringJob(r, gate, objs[5]!);
    t.is(sha256(body), sha256(r.lab.files.get(join(r.lab.media, FILES[5]![0]))!), 'playback byte-exact');
    const done = await run;
    t.is(done.state, 'done', done.reason);
    t.is(done.preempted, 1, 'the job gave the drive back once');
    t.is(r.client.library().preemptionsHonoured, 1);
    t.is(r.worker.scheduler.counters.preemptions, 1);
    t.is(r.worker.scheduler.counters.admissionTimeouts, 0);
    // job, then playback, then the job again: playback did not wait for the end of the job
    const i = r.admits.indexOf('interactive');
    t.true(i > 0 && r.admits.slice(0, i).includes('job') && r.admits.slice(i + 1).includes('job'), r.admits.join(','));
    for (const o of objs.slice(0, 5)) {
      const now = (await r.catalog.get(o.id))!;
      t.truthy(now.location?.disk, `${o.id} recalled`);
      t.is(sha256(await readFile(now.location!.disk!.path)), now.location!.tape!.sha256);
    }
  } finally {
    await r.done();
  }
});

test('playback pre-empts an archive write at the end of the current tar member; the rest goes to the next tar, all verified', async (t) => {
  const gate = new Gate('writeBlocks', 3);
  const r = await inprocRig({ files: FILES, archived: 1, stub: NO_TAIL, gate }); // E01 already on tape (the playback item)
  try {
    const objs = await Promise.all(FILES.map(([rel]) => itemAt(r.catalog, join(r.lab.media, rel))));
    const job = await r.service.submit('archive', objs.slice(1).map((o) => o.id), { stub: NO_TAIL });
    gate.armed = true;
    const run = r.service.run(job.id);
    const body = await playDuringJob(r, gate, objs[0]!);
    t.is(sha256(body), sha256(r.lab.files.get(join(r.lab.media, FILES[0]![0]))!));
    const done = await run;
    t.is(done.state, 'done', done.reason);
    t.is(done.preempted, 1);
    t.is(done.result?.archived, 5);
    t.true((done.result?.batches as number) >= 2, 'the tar was ended early and the rest written in another');
    t.is(r.worker.scheduler.counters.preemptions, 1);
    t.is(r.worker.scheduler.counters.admissionTimeouts, 0);
    const i = r.admits.indexOf('interactive');
    t.true(i > 0 && r.admits.slice(i + 1).includes('job'), r.admits.join(','));
    // every item byte-exact through its catalog location (verify before switch held)
    await r.stopWorker();
    const local = await VirtualTapeLibrary.open(r.lab.config.tape.dir, { timeScale: 0 });
    try {
      for (const o of objs.slice(1)) {
        const now = (await r.catalog.get(o.id))!;
        t.truthy(now.location?.tape, `${o.id} archived`);
        t.falsy(now.location?.disk);
        t.is(sha256(await readThroughCatalog({ library: local }, now)), sha256(r.lab.files.get(now.origPath!)!));
      }
    } finally {
      await local.close();
    }
  } finally {
    await r.done();
  }
});
