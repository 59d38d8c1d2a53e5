// Size, use and free space of the file system that holds a path (or would hold it: the nearest
// existing ancestor, for a destination not created yet), with an identity to group paths by.

import { stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface FsSpace {
  /** Identity of the file system (device number). */
  key: string;
  sizeBytes: number;
  usedBytes: number;
  /** Bytes an unprivileged process may still write (statfs bavail). */
  freeBytes: number;
}

export type FsSpaceProbe = (path: string) => Promise<FsSpace>;

export const fsSpace: FsSpaceProbe = async (path) => {
  for (let p = path; ; ) {
    try {
      const [st, fs] = await Promise.all([stat(p), statfs(p)]);
      return { key: String(st.dev), sizeBytes: fs.blocks * fs.bsize, usedBytes: (fs.blocks - fs.bfree) * fs.bsize, freeBytes: fs.bavail * fs.bsize };
    } catch (err) {
      const up = dirname(p);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || up === p) throw err;
      p = up;
    }
  }
};
