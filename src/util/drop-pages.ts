// Drops the resident pages of file mappings from this process (issue 11 item 2): LevelDB 1.20
// maps every table file it reads, and each page a request touched stays in the server's resident
// memory while the file is open (20,000 items: ~9 MB after a Browse and Search load; 100,000:
// ~32 MB). madvise(MADV_DONTNEED) on a read-only file mapping only unmaps its pages from this
// process: they stay in the page cache, and the next read faults them back in (a minor fault, no
// disk read). The mapping itself stays, so a thread reading it meanwhile just faults.
//
// The one danger is a range that stopped being that file's between reading /proc/self/maps and
// the madvise (unmapped, and the address reused by another mapping: DONTNEED on anonymous memory
// zeroes it). The caller guarantees that no selected mapping can be unmapped meanwhile
// (LevelStore.dropMapped pins LevelDB's table files for the call); this module only reads the
// maps and advises, synchronously, in one go. Through koffi (src/util/libc.ts): false where it
// cannot be called.

import { readFileSync } from 'node:fs';
import { libcFunction } from './libc.js';

const MADV_DONTNEED = 4;

export interface FileMapping {
  start: number;
  end: number;
  path: string;
}

/** The read-only, shared file mappings of /proc/self/maps text (`r--s`: how LevelDB maps its tables). */
export function readOnlyFileMappings(maps: string): FileMapping[] {
  const out: FileMapping[] = [];
  for (const line of maps.split('\n')) {
    // 7f1c2a000000-7f1c2a200000 r--s 00000000 08:01 1234  /path/to/000005.ldb
    const m = /^([0-9a-f]+)-([0-9a-f]+) r--s [0-9a-f]+ \S+ \d+\s+(\/.*)$/.exec(line);
    if (!m || m[3].endsWith(' (deleted)')) continue;
    out.push({ start: parseInt(m[1], 16), end: parseInt(m[2], 16), path: m[3] });
  }
  return out;
}

let madvise: ((addr: number, len: number, advice: number) => number) | null | undefined;

/**
 * Drops the resident pages of this process's read-only shared file mappings that `select`
 * picks (see above for what the caller guarantees). Returns the bytes of the mappings advised,
 * or false when madvise cannot be called here (nothing happened); 0 (nothing advised) when more
 * than `maxMappings` were picked.
 */
export function dropFilePages(select: (m: FileMapping) => boolean, maxMappings = Infinity): number | false {
  if (process.platform !== 'linux') return false;
  if (madvise === undefined) madvise = libcFunction('int madvise(uintptr_t addr, size_t len, int advice)');
  if (!madvise) return false;
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return false;
  }
  const chosen = readOnlyFileMappings(maps).filter(select);
  if (chosen.length > maxMappings) return 0;
  let bytes = 0;
  for (const m of chosen) {
    if (madvise(m.start, m.end - m.start, MADV_DONTNEED) === 0) bytes += m.end - m.start;
  }
  return bytes;
}
