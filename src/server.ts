// `tapedeck serve`: wires the catalog, the scanner and the protocol layers
// (HTTP delivery, SOAP control, GENA, SSDP) into one server and runs it until
// stopped. Shutdown is ordered: byebye, then HTTP, then the catalog.

import { compactHeap } from './util/release-memory.js';
import { mallocTrim } from './util/malloc-trim.js';
import { IdleTrim, rssFileBytes } from './util/idle-trim.js';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { existsSync } from 'node:fs';
import { makeDataDir } from './util/data-dir.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Koa from 'koa';
import { Router } from '@koa/router';
import { Catalog, type ChangeEvent } from './catalog/catalog.js';
import { LevelStore } from './catalog/store.js';
import { ConfigError, type Config } from './config.js';
import type { Logger } from './log.js';
import { scan, scanDeferredArt, scanPaths, type ScanOptions, type ScanProgress } from './scanner/scanner.js';
import { ProbePool } from './media/probe-pool.js';
import { LibraryWatcher } from './scanner/watcher.js';
import { isPlaylistPath } from './scanner/playlist.js';
import { mediaTypeOf } from './media/mediatypes.js';
import { ownPaths } from './util/own-paths.js';
import { httpErrorFields, httpErrorLevel } from './http/error-log.js';
import { contentFeatures, secMediaInfo, transferModeFor } from './media/dlna.js';
import { setFileBufferBudget } from './http/file-body.js';
import { allowedMethods } from './http/allowed-methods.js';
import { diskSource, mediaRoutes, type MediaSource, type StreamEvent, type StreamStart } from './http/delivery.js';
import { allowSubnets, socketAcl } from './http/acl.js';
import { fastControl } from './http/fast-control.js';
import { staticRoutes } from './http/static.js';
import { artRoutes } from './http/art.js';
import { ArtMaker } from './art/maker.js';
import { captionsOf, isSubtitlePath, preferredCaption, subtitleStore } from './media/subtitles.js';
import { subtitleRoutes } from './http/subtitles.js';
import type { ContentStore } from './util/content-store.js';
import { serverHeader } from './upnp/server-header.js';

const SERVER_HEADER = serverHeader();
/**
 * Memory back after a burst of work (a scan, the video-frame pass, requests): one full collection
 * for the garbage, a second that compacts the old generation's pages (compactHeap), then glibc's
 * free pages (mallocTrim). Tens of ms; never in a request's path.
 */
function releaseAll(): void {
  compactHeap();
  mallocTrim();
}

/** Quiet time after the last request before memory is given back (src/util/idle-trim.ts). */
const IDLE_TRIM_MS = 5000;
/** Growth of the V8 heap or of the mapped catalog pages that makes a trim worth it. */
const IDLE_TRIM_GROWTH = 4 * 1024 ** 2;
/**
 * Growth of the file-backed pages under load past which the catalog's mapped table pages are
 * dropped (LevelStore.dropMapped: madvise, ~1 ms, no pause; looked at every 250 ms). What the
 * requests keep reading faults straight back in (20,000 items, a Search load: ~6.5 MB), so a
 * smaller budget only drops and refaults the same pages; what they stopped reading (a scan's, a
 * pass over the library's, 100,000 items' worth of Browse paging) leaves.
 */
const MAPPED_DROP_GROWTH = 4 * 1024 ** 2;
import { artStore } from './art/dlna.js';
import { TapeTier, type ServerHooks } from './tier.js';
import { collectStatus, statusRoutes } from './http/status.js';
import { startControlServer, SOCKET_NAME, type ControlServer } from './control/index.js';
import { serverStatusProvider, StreamTracker, type StatusExtras, type StatusProvider } from './server-state.js';
import { pathRoots } from './http/status-paths.js';
import { AccessTracker } from './policy/access.js';
import { PolicyEngine } from './policy/engine.js';
import { listItems, type ListQuery } from './policy/listing.js';
import { metricsRoute, ServerMetrics } from './metrics.js';
import { hostChecker, hostGuard } from './http/host-check.js';
import { ContentDirectory } from './upnp/cds.js';
import { ConnectionManager, mediaReceiverRegistrar, MSR_TYPE } from './upnp/cms.js';
import { requestBaseUrl, soapRoutes, type ControlHandler } from './upnp/soap.js';
import { EventService } from './upnp/gena.js';
import { contentDirectoryEvents } from './upnp/cds-events.js';
import { loadDescriptions } from './upnp/description.js';
import { defaultClientRegistry, type ClientProfile, type HeaderBag } from './upnp/clients.js';
import { DEFAULT_TARGETS, SsdpServer } from './upnp/ssdp.js';
import { DEVICES_DIR, REPO_ROOT } from './util/paths.js';
import { VERSION } from './version.js';
import { DEFAULT_ALLOWED_SUBNETS, defaultInterfaces, resolveInterfaces, type NetIface } from './util/net.js';

export { REPO_ROOT, DEVICES_DIR };

/** start() ended early because stop() was called meanwhile (not a failure: the caller is stopping). */
export class StartAborted extends Error {
  constructor() {
    super('stopped while starting');
  }
}

export interface ServerStatus {
  scanning: boolean;
  lastScan?: ScanProgress;
}

export class TapedeckServer {
  catalog!: Catalog;
  uuid = '';
  interfaces: NetIface[] = [];
  port = 0;
  readonly status: ServerStatus = { scanning: false };
  tracker?: StreamTracker;
  tier?: TapeTier;
  metrics?: ServerMetrics;
  /** Plays and bytes served per item (batched into the catalog). */
  access?: AccessTracker;
  /** Storage policy: plans and runs passes (runs need the tape tier). */
  policy?: PolicyEngine;
  private http: Server[] = [];
  private sockets = new Set<Socket>();
  private ssdp?: SsdpServer;
  private events: EventService[] = [];
  private scanning?: Promise<ScanProgress | undefined>;
  private currentScan?: Promise<ScanProgress | undefined>;
  /** Full scans and the watch's partial scans run one at a time, in order. */
  private scanChain: Promise<unknown> = Promise.resolve();
  watcher?: LibraryWatcher;
  private rescanTimer?: NodeJS.Timeout;
  private stopped = false;
  private abort = new AbortController();
  private refreshSourceInfo?: () => void;
  private control?: ControlServer;
  private statusProvider?: StatusProvider;
  /** SOAP control POSTs answered before Koa (http/fast-control.ts). */
  private fastControl?: ReturnType<typeof fastControl>;
  mediaDirs: string[] = [];

  constructor(
    readonly config: Config,
    readonly log: Logger,
    private readonly hooks: ServerHooks = {},
  ) {}

  /** Resolves once the initial scan (if any) has finished. */
  get ready(): Promise<ScanProgress | undefined> {
    return this.scanning ?? Promise.resolve(undefined);
  }

  /** The running start(): a stop during start waits for it, and start stops at its next step. */
  private starting?: Promise<void>;

  /** Starts every part in order; a stop() meanwhile ends it at the next step (no part starts after a stop). */
  start(): Promise<void> {
    const run = this.startParts();
    this.starting = run;
    return run;
  }

  /** Thrown by start() when a stop() came first: the parts started so far are stopped by stop(). */
  private checkStopped(): void {
    if (this.stopped) throw new StartAborted();
  }

  private async startParts(): Promise<void> {
    const cfg = this.config;
    // Interfaces first: a bad --interface is a config error, reported before anything starts.
    try {
      this.interfaces = cfg.interfaces.length ? resolveInterfaces(cfg.interfaces) : defaultInterfaces();
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    if (cfg.ssdp && this.interfaces.length === 0) {
      this.log.warn('no up, multicast-capable IPv4 interface found: SSDP is off, the server is reachable on loopback only');
    }
    await makeDataDir(cfg.dataDir);
    this.checkStopped();
    this.catalog = new Catalog(new LevelStore(join(cfg.dataDir, 'catalog'), { cacheBytes: cfg.catalogCache }), { listCacheBytes: cfg.listCache });
    await this.catalog.open();
    this.uuid = (await this.catalog.getMeta('uuid')) ?? '';
    if (!this.uuid) {
      this.uuid = randomUUID();
      await this.catalog.setMeta('uuid', this.uuid);
    }
    this.checkStopped();
    this.access = new AccessTracker({ store: this.catalog.store, onError: (err) => this.log.warn({ err: err.message }, 'could not record plays') });
    this.access.start();
    this.mediaDirs = cfg.mediaDirs;
    if (cfg.demo) {
      const demoDir = join(cfg.dataDir, 'demo');
      // Once part of the demo lives on tape, regenerating it would put those files back on disk.
      // (Imported here: its encoders are loaded only by a server that serves the demo.)
      if (!(await this.catalog.getMeta('demoArchived')) || !existsSync(demoDir)) await (await import('./demo/library.js')).createDemoLibrary(demoDir);
      this.mediaDirs = [demoDir];
      this.log.info({ dir: demoDir }, 'no media directory configured: serving the demo library');
    }

    this.checkStopped();
    if (cfg.tape.backend !== 'none') {
      this.tier = new TapeTier(this.catalog, cfg, this.log, this.hooks);
    }
    const access = this.access;
    const policy = new PolicyEngine({ catalog: this.catalog, config: cfg, archive: this.tier?.archive, readAccess: (ids) => access.read(ids), log: this.log.child({ component: 'policy' }), mediaDirs: this.mediaDirs, busy: () => this.status.scanning });
    this.policy = policy;
    // a cartridge loaded for anything (a play, a pre-stage, a job) takes the container promotions waiting for it
    this.tier?.stager.on('event', (m: { name: string; data: { label?: unknown } }) => {
      if (m.name === 'mount' && typeof m.data.label === 'string') void policy.onLoaded(m.data.label);
    });
    // The staging worker (a second Node.js process) takes about a second to boot: Browse and
    // disk items do not need it, so HTTP listens meanwhile; a tape read waits for it as it would
    // for a restarting worker (staging/client.ts connection()). The control socket (archive
    // jobs, policy runs) opens once the tier has started, as before.
    const tierStarted = this.tier?.start();
    tierStarted?.catch(() => undefined); // awaited below, after listen
    this.checkStopped();

    const app = this.buildApp();
    this.checkStopped();
    await this.listen(app);
    this.checkStopped();
    const urls = this.urls();
    this.log.info({ urls, interfaces: this.interfaces.map((i) => `${i.name} ${i.address}`), uuid: this.uuid }, `serving "${cfg.friendlyName}" at ${urls.join(' ')}`);
    await tierStarted;
    this.checkStopped();
    // the operator CLI's way in (tape commands, scan, full status): always, tape tier or not
    this.control = await startControlServer({
      socketPath: join(cfg.dataDir, SOCKET_NAME),
      archive: this.tier?.archive,
      // `tapedeck ls` and `tapedeck policy` (a pass needs the tape tier: the engine says so)
      policy: {
        items: (q) => listItems(this.catalog, (ids) => access.read(ids), q as ListQuery),
        plan: () => policy.plan(),
        run: () => policy.runPass('manual'),
      },
      server: {
        rescan: () => this.rescan(),
        scanProgress: () => (this.status.scanning ? this.status.lastScan : undefined),
        totals: () => this.catalog.totals(),
        status: () => collectStatus(this.statusProvider!, { view: 'operator' }),
      },
      log: this.log.child({ component: 'control' }),
    });
    this.checkStopped(); // a stop while the socket opened: stop() closes it, unannounced
    this.log.info({ component: 'control', socket: this.control.socketPath }, 'control socket listening');

    if (cfg.ssdp && this.interfaces.length) {
      this.ssdp = new SsdpServer({
        uuid: this.uuid,
        interfaces: this.interfaces.map((i) => ({ name: i.name, address: i.address })),
        port: this.port,
        descriptionPath: '/description.xml',
        serverHeader: SERVER_HEADER,
        advertiseInterval: cfg.ssdpInterval * 1000,
        targets: [...DEFAULT_TARGETS, MSR_TYPE],
        allow: cfg.allow, // searchers outside it are ignored, as HTTP refuses them
        log: this.log,
      });
      await this.ssdp.start();
    }
    this.checkStopped();

    if (cfg.scanOnStart) this.scanning = this.rescan().then(async (r) => {
      if (cfg.demo && this.tier && !this.stopped) {
        await this.tier.archiveDemoOnce().catch((err: Error) => this.log.warn({ err: err.message }, 'could not put the demo on tape'));
        await this.logLibrary();
      }
      return r;
    });
    else await this.logLibrary();
    if (cfg.watch && this.mediaDirs.length) await this.startWatch();
    this.checkStopped();
    if (this.tier) await policy.start();
    this.checkStopped();
    // memory back once a burst of requests is over (caches emptied, a full collection, the catalog
    // reopened); where LevelDB maps its tables, also their pages under load: src/util/idle-trim.ts
    const mapped = this.catalog.store.mapsTables === true;
    this.idleTrim = new IdleTrim({
      idleMs: IDLE_TRIM_MS,
      growthBytes: IDLE_TRIM_GROWTH,
      heapBytes: () => getHeapStatistics().total_heap_size,
      fileBytes: rssFileBytes,
      collect: releaseAll,
      release: () => this.releaseCaches?.(),
      // 1 MiB semi-spaces are V8's minimum: more committed after a collection is the load's growth
      youngGrown: () => (getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size ?? 0) > 2 * 1024 ** 2,
      mappedBudget: mapped && this.catalog.store.reopen ? cfg.catalogMapped : 0,
      // no table is mapped where LevelDB reads them with pread: no look every 250 ms under load
      dropMapped: mapped && this.catalog.store.dropMapped ? () => this.catalog.store.dropMapped!() : undefined,
      dropBudget: MAPPED_DROP_GROWTH,
      reopen: (why) => this.reopenCatalog(why, 2000),
      busy: () => this.status.scanning || this.makingFrames,
    });
    this.idleTrim.start();
    if (cfg.rescanInterval > 0 && this.mediaDirs.length) {
      // incremental: unchanged files cost one stat each (20,000 files: under a second)
      this.rescanTimer = setInterval(() => void this.rescan(), cfg.rescanInterval * 1000);
      this.rescanTimer.unref();
    }
  }

  /** Runs an incremental scan (one at a time: a request while one is running or queued gets that scan's result). */
  rescan(): Promise<ScanProgress | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    if (this.currentScan) return this.currentScan;
    const run = this.exclusive(() => this.scanOnce());
    this.currentScan = run;
    void run.finally(() => {
      if (this.currentScan === run) this.currentScan = undefined;
    });
    return run;
  }

  /** Files found shorter than catalogued whose partial scan is queued or running (one scan per file at a time). */
  private readonly staleFiles = new Set<string>();
  /** A media request found a file shorter than its catalog entry (truncated since the scan): catalogue it again. */
  private rescanStale(path: string, catalogued: number, actual: number): void {
    if (this.stopped || this.staleFiles.has(path)) return;
    this.staleFiles.add(path);
    this.log.warn({ path, catalogued, actual }, 'a media file is shorter than catalogued (changed since the scan): answered 503, cataloguing it again');
    void this.exclusive(() => this.scanChanged([path]))
      .catch((err: Error) => this.log.warn({ path, err: err.message }, 'rescan of a changed file failed'))
      .finally(() => this.staleFiles.delete(path));
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.scanChain.then(fn, fn);
    this.scanChain = run.catch(() => undefined);
    return run;
  }

  /** Live updates: watch the media directories; what the watch cannot cover is left to the periodic rescan. */
  private async startWatch(): Promise<void> {
    const every = this.config.rescanInterval;
    this.watcher = new LibraryWatcher({
      roots: this.mediaDirs,
      interesting: (p) => mediaTypeOf(p) !== undefined || isPlaylistPath(p) || isSubtitlePath(p),
      maxDirs: this.config.watchLimit,
      ownPaths,
      log: this.log,
      fallback: every > 0 ? `the periodic rescan every ${every} s` : 'a rescan only (rescan_interval is 0: at the next start)',
      onChange: (paths) => this.exclusive(() => this.scanChanged(paths)),
    });
    await this.watcher.start(() => this.stopped);
  }

  private art?: ArtMaker;
  /** One art maker for every scan (its caches are small LRUs), none when art is off. */
  private artMaker(): ArtMaker | undefined {
    if (this.config.art) this.art ??= new ArtMaker({ dataDir: this.config.dataDir, ffprobe: this.config.ffprobe, log: this.log });
    return this.art;
  }

  private subtitleFiles?: ContentStore;
  /** One subtitle store for every scan and for `/subtitles` (it remembers the directories it made). */
  subtitles(): ContentStore {
    return (this.subtitleFiles ??= subtitleStore(this.config.dataDir));
  }

  /** Worker threads for the scans' probes (they end when idle), none with scan_threads = 0. */
  private probePool?: ProbePool;

  /** What full and partial scans share: the media directories, the probe, art and subtitles, the abort signal. */
  private scanOptions(): ScanOptions {
    return {
      roots: this.mediaDirs,
      concurrency: this.config.scanConcurrency,
      ffprobe: this.config.ffprobe,
      art: this.artMaker(),
      subtitles: this.subtitles(),
      log: this.log,
      signal: this.abort.signal,
    };
  }

  /** Catalogues what the watch saw change (the scanner's incremental logic, for those paths only). */
  private async scanChanged(paths: string[]): Promise<void> {
    if (this.stopped) return;
    const r = await scanPaths(this.catalog, { ...this.scanOptions(), paths });
    if (r.probed || r.removed || r.failed || r.diskCopiesGone) {
      this.log.info({ live: { paths: paths.length, probed: r.probed, removed: r.removed, failed: r.failed, elapsedMs: r.elapsedMs } }, `live update: ${r.probed} read, ${r.removed} removed`);
    }
    this.refreshSourceInfo?.();
  }

  private async scanOnce(): Promise<ScanProgress | undefined> {
    this.status.scanning = true;
    try {
      const result = await scan(this.catalog, {
        ...this.scanOptions(),
        // video frames (ffmpeg) after the scan: every item is browsable and searchable first
        deferFrames: true,
        // tags and headers read in worker threads (a live update's few files are read here: no
        // worker to start for them)
        pool: this.config.scanThreads > 0 ? (this.probePool ??= new ProbePool(this.config.scanThreads)) : undefined,
        onProgress: (p) => {
          this.status.lastScan = p;
          if (!p.done) this.log.debug({ scan: p }, 'scan progress');
        },
      });
      this.status.lastScan = result;
      await this.probePool?.release(); // the workers' heaps go with the scan
      this.log.info({ scan: result }, `scan done: ${result.seen} files, ${result.probed} read, ${result.removed} removed in ${result.elapsedMs} ms`);
      await this.logLibrary();
      // the scan's garbage (parsed tags, batches) would keep the heap grown for minutes
      if (result.probed || result.removed) releaseAll();
      // A scan that wrote (the first one: every item, and each batch rewrote the containers it
      // touched): LevelDB keeps the old versions until its own compactions get to them, and every
      // table file it read stays mapped into this process (resident memory growing with the
      // library). Compacted now, in the scan queue, before the video frames. A rescan that found
      // nothing new wrote nothing: nothing to compact. Either way the scan read every path entry
      // (and the compaction every table): the catalog is opened again, which unmaps them.
      void this.exclusive(async () => {
        if (result.written) await this.compactCatalog('scan');
        await this.reopenCatalog('scan');
      });
      if (result.framesDeferred) this.deferredArt();
      return result;
    } catch (err) {
      if (!this.stopped) this.log.error({ err: (err as Error).message }, 'scan failed');
      return undefined;
    } finally {
      this.status.scanning = false;
      this.refreshSourceInfo?.();
    }
  }

  /** Rewrites the catalog database without what a scan or the video frames overwrote (see scanOnce); a failure is logged, nothing else. */
  private async compactCatalog(after: string): Promise<void> {
    const store = this.catalog.store;
    if (this.stopped || !store.compact) return;
    const started = Date.now();
    try {
      await store.compact();
      this.log.info({ catalog: { compactMs: Date.now() - started, after } }, `catalog compacted in ${Date.now() - started} ms`);
    } catch (err) {
      if (!this.stopped) this.log.warn({ err: (err as Error).message }, 'catalog compaction failed; LevelDB compacts by itself later');
    }
  }

  /**
   * Closes and opens the catalog database once nothing reads or writes it (LevelStore.reopen):
   * the table pages a whole-catalog pass mapped into the process leave it. A failure is logged.
   */
  private async reopenCatalog(after: string, waitMs?: number): Promise<void> {
    const store = this.catalog.store;
    if (this.stopped || !store.reopen) return;
    const started = Date.now();
    try {
      const done = await store.reopen(waitMs);
      // the watch's own reopens (every 16 MB of table pages a load touched) are not news
      const level = after === 'catalog_mapped' || after === 'idle' ? 'debug' : 'info';
      if (done) this.log[level]({ catalog: { reopenMs: Date.now() - started, after } }, `catalog reopened after the ${after} in ${Date.now() - started} ms`);
      else this.log.debug({ catalog: { after } }, 'catalog not reopened: never idle');
      if (done) {
        // LevelDB freed its memtable, block cache and table handles: the C heap's free pages go back
        mallocTrim();
        this.idleTrim?.rebase();
      }
    } catch (err) {
      if (!this.stopped) this.log.error({ err: (err as Error).message }, 'catalog could not be opened again');
    }
  }

  /** Collects garbage (and reopens the catalog) once requests stopped for a while, or past catalog_mapped. */
  private idleTrim?: IdleTrim;
  /** Empties the CDS's DIDL-Lite and Search caches (set by buildApp; the idle trim calls it). */
  private releaseCaches?: () => void;

  /** Whether the video frames a scan left are being made (one run at a time). */
  private makingFrames = false;

  /**
   * Makes the video frames the last full scan left for later, in slices of a few videos, each its
   * own turn between scans and live updates, one ffmpeg at a time.
   */
  private deferredArt(): void {
    if (this.makingFrames || this.stopped) return;
    this.makingFrames = true;
    const started = Date.now();
    let made = 0;
    const slice = (after?: string) =>
      this.exclusive(async () => {
        if (this.stopped) return undefined;
        const r = await scanDeferredArt(this.catalog, { ...this.scanOptions(), concurrency: 1, after, limit: 8 });
        made += r.made;
        return r.after;
      });
    void (async () => {
      try {
        let after = await slice();
        while (after !== undefined && !this.stopped) after = await slice(after);
        if (made && !this.stopped) {
          // the pass's garbage (ffmpeg output, pictures) would keep the heap grown as the scan's
          // would, and the tables its slices read (and those the catalog compaction replaced)
          // stay mapped until the database is opened again
          releaseAll();
          // The pass rewrote every video with its art: left to LevelDB, the table those writes
          // landed in (spanning the whole key range) is merged into the bottom level by the
          // compactions the next requests' reads trigger (LevelDB compacts a table that reads
          // look through without finding their key), each rewriting a share of the catalog
          // that grows with the library (~20 MB at 100,000 items) on the requests' time, as
          // the scan's writes would without the compaction after it. Compacted here instead.
          await this.exclusive(async () => {
            await this.compactCatalog('video frames');
            await this.reopenCatalog('video frames');
          });
        }
        if (made && !this.stopped) this.log.info({ art: { videos: made, elapsedMs: Date.now() - started } }, `video frames: art of ${made} videos made in ${Date.now() - started} ms`);
      } catch (err) {
        if (!this.stopped) this.log.warn({ err: (err as Error).message }, 'making video frames failed; the next scan tries again');
      } finally {
        this.makingFrames = false;
      }
    })();
  }

  private async logLibrary(): Promise<void> {
    const t = await this.catalog.totals();
    this.log.info({ library: t }, `library: ${t.items} items (${t.audio} audio, ${t.video} video, ${t.image} images; ${t.onTapeOnly} on tape only, ${t.onDiskAndTape} on disk and tape)`);
  }

  urls(): string[] {
    const addrs = this.interfaces.length ? this.interfaces.map((i) => i.address) : ['127.0.0.1'];
    return addrs.map((a) => `http://${a}:${this.port}/`);
  }

  /** Tape library, stager, jobs and cache parts of the status page (none without a tape tier). */
  protected statusExtras(): Omit<StatusExtras, 'tracker'> {
    return this.tier?.statusExtras() ?? {};
  }

  private resolveMedia = async (name: string): Promise<MediaSource | undefined> => {
    const obj = await this.catalog.get(name);
    if (!obj || obj.container || !obj.res) return undefined;
    const res = obj.res;
    const disk = obj.location?.disk;
    if (disk) return diskSource(disk.path, disk.size, disk.mtime, res.mime, contentFeatures(res), transferModeFor(res), (actual) => this.rescanStale(disk.path, disk.size, actual));
    if (obj.location?.tape) {
      if (!this.tier) throw Object.assign(new Error('this item is on tape and the tape tier is disabled'), { status: 503, expose: true });
      return this.tier.source(obj);
    }
    return undefined;
  };

  private buildApp(): Koa {
    const cfg = this.config;
    const app = new Koa();
    app.proxy = false;
    app.silent = true;
    app.on('error', (err: Error & { code?: string }, ctx?: Koa.Context) => {
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
      this.log[httpErrorLevel(err)](httpErrorFields(err, ctx), 'http error');
    });
    app.use(async (ctx, next) => {
      const t0 = Date.now();
      try {
        await next();
      } finally {
        if (this.log.isLevelEnabled('debug')) this.log.debug({ method: ctx.method, url: ctx.url, status: ctx.status, remote: ctx.req.socket.remoteAddress, ms: Date.now() - t0, ua: ctx.get('user-agent') }, 'request');
      }
    });
    const tracker = new StreamTracker();
    // a play of an archived item pre-stages the next items of its container (staging/prestage.ts)
    tracker.on('start', (s: { id: string }) => void this.tier?.prestager.onPlay(s.id));
    this.tracker = tracker;
    const access = this.access;
    if (access) {
      // a counted play (not every Range request of one) may start a container promotion (promote_container_plays)
      tracker.on('start', (s: StreamStart) => {
        if (access.streamStarted(s)) void this.policy?.onPlay(s.id);
      });
      tracker.on('end', (ev: StreamEvent) => ev.stream && access.streamEnded(ev.stream, ev.bytes));
    }
    const status = serverStatusProvider(this, {
      tracker,
      ...this.statusExtras(),
      ...(this.policy ? { policy: () => this.policy!.status() } : {}),
      // the event services are made below; read when the page or /metrics asks
      events: () => this.events.map((e) => e.stats()),
    });
    this.statusProvider = status;
    const metrics = new ServerMetrics({ version: VERSION, status, streams: tracker });
    this.metrics = metrics;
    app.use(metrics.http()); // before the ACL, so refusals are counted too
    const acl = socketAcl(cfg.allow.length ? cfg.allow : DEFAULT_ALLOWED_SUBNETS);
    app.use(allowSubnets(acl));
    // DNS rebinding: every route, media and UPnP too (TVs use the IP address of LOCATION and of our URLs)
    const hostAllowed = hostChecker({ extra: cfg.allowedHosts });
    const refusedHosts = new Set<string>();
    app.use(
      hostGuard(hostAllowed, {
        onDenied: (host, path) => {
          const first = refusedHosts.size < 16 && !refusedHosts.has(host);
          if (first) refusedHosts.add(host);
          this.log[first ? 'warn' : 'debug']({ host: host.slice(0, 200), path }, 'refused a request for another host name (DNS-rebinding protection); allowed_hosts lists extra names');
        },
      }),
    );
    app.use(async (ctx, next) => {
      ctx.set('Server', SERVER_HEADER);
      await next();
    });

    const router = new Router();
    const descriptions = loadDescriptions(DEVICES_DIR);
    const clients = defaultClientRegistry();
    router.get('/description.xml', (ctx) => {
      const client = clients.detect(ctx.headers, ctx.req.socket.remoteAddress);
      ctx.type = 'text/xml; charset="utf-8"';
      ctx.body = descriptions.deviceDescription(
        {
          friendlyName: cfg.friendlyName,
          uuid: this.uuid,
          serialNumber: this.uuid.slice(0, 8),
          modelNumber: VERSION,
          baseUrl: requestBaseUrl(ctx as unknown as Koa.Context),
        },
        client,
      );
    });
    for (const [path, name] of [
      ['/upnp/cds.xml', 'cds'],
      ['/upnp/cms.xml', 'cms'],
      ['/upnp/msr.xml', 'msr'],
    ] as const) {
      router.get(path, (ctx) => {
        ctx.type = 'text/xml; charset="utf-8"';
        ctx.body = descriptions.scpd(name);
      });
    }

    const cds = new ContentDirectory(this.catalog, { searchCacheBytes: this.config.searchCache, didlCacheBytes: this.config.didlCache, onBrowse: (id, page) => void this.tier?.prestager.onBrowse(id, page) });
    this.releaseCaches = () => cds.releaseCaches();
    const cms = new ConnectionManager(this.catalog);
    const soapOpts = {
      detectClient: (h: Record<string, string | string[] | undefined>, remote?: string) => clients.detect(h, remote),
      logger: this.log,
      onAction: metrics.soapAction,
      ownAddresses: () => this.interfaces.map((i) => i.address),
    };
    const control = new Map<string, ControlHandler>([
      ['/upnp/control/cds', soapRoutes(router, '/upnp/control/cds', cds.service(), soapOpts)],
      ['/upnp/control/cms', soapRoutes(router, '/upnp/control/cms', cms.service(), soapOpts)],
      ['/upnp/control/msr', soapRoutes(router, '/upnp/control/msr', mediaReceiverRegistrar(), soapOpts)],
    ]);
    // the same handlers answer control POSTs before Koa: counted and logged as the middlewares above do
    this.fastControl = fastControl({
      routes: control,
      allowed: acl,
      hostAllowed,
      serverHeader: SERVER_HEADER,
      done: (req, route, status, ms) => {
        metrics.httpRequests.inc({ route, method: 'POST', status, tier: 'none' });
        if (this.log.isLevelEnabled('debug')) this.log.debug({ method: 'POST', url: req.url, status, remote: req.socket.remoteAddress, ms, ua: req.headers['user-agent'] ?? '' }, 'request');
      },
    });

    // SystemUpdateID and ContainerUpdateIDs are moderated to 0.2 Hz (upnp/cds-events.ts)
    const cdsEvents = contentDirectoryEvents({ systemUpdateId: () => this.catalog.systemUpdateId, log: this.log });
    let sourceInfo = '';
    const cmsEvents = new EventService({
      serviceId: 'urn:upnp-org:serviceId:ConnectionManager',
      source: { variables: () => ({ SourceProtocolInfo: sourceInfo, SinkProtocolInfo: '', CurrentConnectionIDs: '0' }) },
      log: this.log,
    });
    const msrEvents = new EventService({
      serviceId: 'urn:microsoft.com:serviceId:X_MS_MediaReceiverRegistrar',
      source: { variables: () => ({ AuthorizationGrantedUpdateID: '0', AuthorizationDeniedUpdateID: '0', ValidationSucceededUpdateID: '0', ValidationRevokedUpdateID: '0' }) },
      log: this.log,
    });
    this.events = [cdsEvents, cmsEvents, msrEvents];
    cdsEvents.routes(router, '/upnp/event/cds');
    cmsEvents.routes(router, '/upnp/event/cms');
    msrEvents.routes(router, '/upnp/event/msr');
    // SourceProtocolInfo reads every item: refresh it at most every few seconds and not
    // while a scan is writing batches (the scan's end refreshes it once).
    let refreshTimer: NodeJS.Timeout | undefined;
    const refreshSourceInfo = () => {
      if (refreshTimer || this.stopped) return;
      refreshTimer = setTimeout(async () => {
        refreshTimer = undefined;
        if (this.status.scanning) return;
        const next = await cms.sourceProtocolInfo().catch(() => sourceInfo);
        if (next !== sourceInfo) {
          sourceInfo = next;
          cmsEvents.notify({ SourceProtocolInfo: sourceInfo });
        }
      }, 2000);
      refreshTimer.unref();
    };
    this.refreshSourceInfo = refreshSourceInfo;
    void cms.sourceProtocolInfo().then((v) => (sourceInfo = v));
    this.catalog.on('change', (ev: ChangeEvent) => {
      cdsEvents.notify({
        SystemUpdateID: String(ev.systemUpdateId),
        ContainerUpdateIDs: ev.containers.map(([id, n]) => `${id},${n}`).join(','),
      });
      // art, metadata and video frames leave SourceProtocolInfo as it is: no walk of every item
      if (ev.resChanged) refreshSourceInfo();
    });

    // a media GET asks up to three times for its client's profile (transfer mode, MIME type,
    // captions): matched once per request (keyed by the request's header object)
    const mediaClients = new WeakMap<HeaderBag, ClientProfile>();
    const mediaClient = (headers: HeaderBag, remote: string | undefined): ClientProfile => {
      let p = mediaClients.get(headers);
      if (!p) mediaClients.set(headers, (p = clients.detect(headers, remote)));
      return p;
    };
    setFileBufferBudget(this.config.streamBuffers); // one budget for the process's media responses
    mediaRoutes(router, this.resolveMedia, {
      ...tracker.hooks,
      lenientTransferMode: (headers, remote) => Boolean(mediaClient(headers, remote).quirks.lenientTransferMode),
      mimeFor: (mime, ctx) => mediaClient(ctx.headers, ctx.req.socket.remoteAddress).quirks.mimeOverrides?.[mime] ?? mime,
      captionInfo: async (id, ctx) => {
        if (!mediaClient(ctx.headers, ctx.req.socket.remoteAddress).quirks.captionInfoSec) return undefined;
        const obj = await this.catalog.get(id);
        return obj ? preferredCaption(captionsOf(requestBaseUrl(ctx), obj))?.url : undefined;
      },
      // asked for by the header itself (Samsung TVs and players; no one else sends it)
      mediaInfo: async (id) => secMediaInfo((await this.catalog.get(id))?.res?.duration),
    });
    artRoutes(router, this.catalog, artStore(cfg.dataDir));
    subtitleRoutes(router, this.catalog, this.subtitles());
    staticRoutes(router, { devicesDir: DEVICES_DIR });
    statusRoutes(router, status, {
      actions: { rescan: () => this.rescan() },
      roots: () => pathRoots(this.mediaDirs, { data_dir: cfg.dataDir, cache_dir: cfg.cacheDir, tape_dir: cfg.tape.dir }),
      ownAddresses: () => this.interfaces.map((i) => i.address),
    });
    metricsRoute(router, metrics.registry);

    app.use(router.routes());
    app.use(allowedMethods());
    return app;
  }

  private async listen(app: Koa): Promise<void> {
    const koa = app.callback();
    const fast = this.fastControl;
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.idleTrim?.touch();
      if (!fast?.(req, res)) void koa(req, res);
    };
    const addrs = [...new Set(['127.0.0.1', ...this.interfaces.map((i) => i.address)])];
    let port = this.config.port;
    for (const addr of addrs) {
      const srv = createServer({ keepAliveTimeout: 15_000 }, handler);
      srv.on('connection', (s) => {
        this.sockets.add(s);
        s.once('close', () => this.sockets.delete(s));
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', (err: NodeJS.ErrnoException) => {
          reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} is already in use on ${addr} (set another with --port)`) : err);
        });
        srv.listen(port, addr, () => resolve());
      });
      port = (srv.address() as AddressInfo).port;
      this.http.push(srv);
    }
    this.port = port;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.log.info('shutting down');
    // A stop during start: let start reach its next step (it starts nothing more), then stop what it started.
    this.tier?.stager.beginStop(); // a start waiting for the staging worker's first connection goes on now; no worker is taken into use from here
    await this.starting?.catch(() => undefined);
    // 1. Say goodbye while the network is still up.
    await this.ssdp?.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'ssdp stop failed'));
    // 2. Stop accepting requests; give open responses a moment, then close sockets.
    await Promise.all(this.events.map((e) => e.close()));
    const closed = Promise.all(this.http.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.sockets) if (!(s as Socket & { _httpMessage?: unknown })._httpMessage) s.destroy();
    const timer = setTimeout(() => this.sockets.forEach((s) => s.destroy()), 2000);
    await closed;
    clearTimeout(timer);
    // 3. Stop the watch, a running scan and the tape tier (jobs stop at a safe point), then close the catalog.
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    await this.idleTrim?.stop();
    const watchClosed = this.watcher?.close(); // stops at once; waits for a partial scan, aborted below
    await this.control?.close().catch(() => undefined);
    this.abort.abort();
    await watchClosed;
    await this.policy?.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'policy stop failed'));
    await this.tier?.stop();
    await this.scanning?.catch(() => undefined);
    await this.currentScan?.catch(() => undefined);
    await this.scanChain;
    await this.probePool?.close();
    await this.access?.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'could not record plays'));
    await this.catalog?.close();
    this.log.info('stopped');
  }
}
