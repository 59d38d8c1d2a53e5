// Demo mode: put part of the demo library on the virtual tape (the video and
// the first album), so a fresh install shows both tiers: those items keep a head
// stub on disk and their disk copies are removed.
//
// The demo files are small (60 KB tracks, a 0.5 MB video): with the configured stubs
// (4 MiB head and 4 MiB tail at least) they would stay whole on disk and playing them
// would never touch tape. The demo cuts small stubs instead, so most of each archived
// file is read from the virtual library through the staging worker, as a real archive
// would be.

import { sep } from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import type { JobRecord, JobStubOptions } from '../archive/jobs.js';
import type { ArchiveService } from '../archive/service.js';
import { DEMO_TRACKS, DEMO_VIDEOS } from './library.js';

/** Demo files that go to tape: relPaths ('/'-separated, relative to the demo directory). */
export function demoArchiveSet(): Set<string> {
  const album = DEMO_TRACKS[0].album;
  return new Set([DEMO_VIDEOS[0].relPath, ...DEMO_TRACKS.filter((t) => t.album === album).map((t) => t.relPath)]);
}

/**
 * Stub of an archived demo file: the first 16 KiB (the FLAC metadata blocks, the AVI headers)
 * and the last 8 KiB (the AVI index), not merged across the gap between them.
 */
export const DEMO_STUB: JobStubOptions = { headSeconds: 0, headMin: 16 * 1024, tailBytes: 8 * 1024, mergeGap: 4 * 1024 };

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
  const job = await service.submit('archive', ids, { stub: DEMO_STUB });
  return service.run(job.id);
}
