// Demo mode: put part of the demo library on the virtual tape (the video and
// the first album), so a fresh install shows both tiers: those items keep a head
// stub on disk and their disk copies are removed.

import { sep } from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import { DEMO_TRACKS, DEMO_VIDEOS } from '../media/demo.js';
import type { JobRecord } from './jobs.js';
import type { ArchiveService } from './service.js';

/** Demo files that go to tape: relPaths ('/'-separated, relative to the demo directory). */
export function demoArchiveSet(): Set<string> {
  const album = DEMO_TRACKS[0].album;
  return new Set([DEMO_VIDEOS[0].relPath, ...DEMO_TRACKS.filter((t) => t.album === album).map((t) => t.relPath)]);
}

/**
 * Archive the demo set (items still on disk only). Returns the finished job, or
 * undefined when there was nothing to do. Labels a virtual cartridge when the
 * archive pool is empty.
 */
export async function archiveDemo(service: ArchiveService, catalog: Catalog): Promise<JobRecord | undefined> {
  const want = demoArchiveSet();
  const ids: string[] = [];
  for (const item of await catalog.items()) {
    const rel = item.relPath?.split(sep).join('/');
    if (rel && want.has(rel) && item.location?.disk && !item.location.tape) ids.push(item.id);
  }
  if (ids.length === 0) return undefined;
  await service.ensurePool();
  const job = await service.submit('archive', ids);
  return service.run(job.id);
}
