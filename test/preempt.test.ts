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
import { Catalog } from '../src/catalog/catalog.js';
import { LevelStore } from '../src/catalog/store.js';
import { silentLogger } from '../src/log.js';
import { ArchiveService } from '../src/archive/service.js';
import { StagerClient } from '../src/staging/client.js';
import { StagingWorker } from '../src/staging/worker.js';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';
import type { TapeDrive, TapeLibrary } from '../src/tape/types.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { itemAt, makeLab, readThroughCatalog, sha256, type Lab } from './fixtures/archive/setup.js';
import { fetchMedia, mediaServer } from './fixtures/staging/harness.js';

const KB = 1024;
const FILES: [string, number][] = Array.from({ length: 6 }, (_, i) => [`Video/Show/E0${i + 1}.mkv`, 300_000 + i * 1000] as [string, number]);
const NO_TAIL = { headSeconds: 0, headMin: 4096, tailBytes: 0, mergeGap: 0 };

/** Drive reads or writes wait at the gate once armed, from the `after`-th call on, until opened. */
class Gate {
  armed = false;
  calls = 0;
  private opened = false;
  private resolveOpen!: () => void;
  private readonly openP = new Promise<void>((r) => (this.resolveOpen = r));
  private resolveHit!: () => void;
  readonly hit = new Promise<void>((r) => (this.resolveHit = r));
  constructor(
    readonly op: 'readBlocks' | 'writeBlocks',
    readonly after: number,
  ) {}
  async pass(): Promise<void> {
    if (!this.armed || this.opened) return;
    if (++this.calls < this.after) return;
    this.resolveHit();
    await this.openP;
  }
  open(): void {
    this.opened = true;
    this.resolveOpen();
  }
}

function gatedLibrary(lib: VirtualTapeLibrary, gate: Gate): TapeLibrary {
  const wrapped = new Map<TapeDrive, TapeDrive>();
  const wrap = (d: TapeDrive): TapeDrive => {
    let w = wrapped.get(d);
    if (!w) {
      w = new Proxy(d, {
        get(target, prop) {
          const v = (target as unknown as Record<string | symbol, unknown>)[prop];
          if (prop === gate.op) return async (x: never) => (await gate.pass(), (v as (a: never) => unknown).call(target, x));
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      wrapped.set(d, w);
    }
    return w;
  };
  return {
    kind: lib.kind,
    changer: lib.changer,
    get drives() {
      return lib.drives.map(wrap);
    },
    mount: async (label, opts) => wrap(await lib.mount(label, opts)),
    stats: () => lib.stats(),
    close: () => lib.close(),
  };
}

interface Rig {
  lab: Lab;
  worker: StagingWorker;
  client: StagerClient;
  service: ArchiveService;
  catalog: Catalog;
  port: number;
  admits: string[];
  /** Stops client, worker and library (the tape library may then be opened locally). */
  stopWorker(): Promise<void>;
  done(): Promise<void>;
}

/** Lab with FILES (the first `archived` of them on tape already), then a worker + client + service on the remote library. */
async function rig(gate: Gate, archived: number): Promise<Rig> {
  const lab = await makeLab({ files: FILES, drives: 1, capacity: 256 << 20 });
  if (archived > 0) {
    const ids = [];
    for (const [rel] of FILES.slice(0, archived)) ids.push((await itemAt(lab.catalog, join(lab.media, rel))).id);
    const job = await lab.service.submit('archive', ids, { stub: NO_TAIL });
    t0(await lab.service.run(job.id));
  }
  await lab.close();
  const catalog = new Catalog(new LevelStore(join(lab.data, 'catalog')));
  await catalog.open();
  const vlib = await VirtualTapeLibrary.open(lab.config.tape.dir, { timeScale: 0 });
  const worker = await StagingWorker.create({
    library: gatedLibrary(vlib, gate),
    cacheDir: lab.config.cacheDir,
    cacheSize: 64 << 20,
    admissionTimeoutMs: 60_000,
    idleUnloadMs: 0,
    tuning: { segmentSize: 64 * KB, readAhead: 512 * KB, maxChunk: 64 * KB },
  });
  const admits: string[] = [];
  worker.scheduler.on('admit', (a: { priority: string }) => admits.push(a.priority));
  const sock = join(lab.dir, 'stager.sock');
  await worker.listen(sock);
  const config = { ...lab.config, stager: sock };
  const client = new StagerClient({ config, log: silentLogger, backoffMs: [50, 200] });
  await client.start();
  const service = new ArchiveService({ catalog, library: client.library(), config, log: silentLogger, tuning: { writeChunkBytes: 64 * KB, reader: { chunkBytes: 64 * KB } } });
  const srv = await mediaServer(async (id) => {
    const o = await catalog.get(id);
    return o?.location?.tape && !o.location.disk ? client.source(o) : undefined;
  });
  const r: Rig = {
    lab,
    worker,
    client,
    service,
    catalog,
    port: srv.port,
    admits,
    async stopWorker() {
      gate.open();
      await client.stop();
      await worker.close();
      await vlib.close();
    },
    async done() {
      await srv.close();
      await r.stopWorker();
      await catalog.close();
      await lab.cleanup();
    },
  };
  return r;
}

function t0(job: { state: string; reason?: string }): void {
  if (job.state !== 'done') throw new Error(`setup job ${job.state}: ${job.reason}`);
}

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
  const r = await rig(gate, 6);
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
  const r = await rig(gate, 1); // E01 already on tape (the playback item)
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
