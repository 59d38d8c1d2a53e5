// Paths in the media directories that Tapedeck itself is changing: an archive job removing a disk
// copy (the catalog already says tape), a recall job renaming a verified copy into place (the
// catalog is switched right after). The live watch ignores file-system events on them for a short
// while, so a tier move never shows as a deletion or a new file. Marks expire by themselves: a job
// that dies between two steps leaves nothing ignored for long.

export class OwnPaths {
  private until = new Map<string, number>();

  constructor(private readonly ttlMs = 30_000) {}

  /** Events on `path` are Tapedeck's own for the next ttl milliseconds. */
  expect(path: string, now = Date.now()): void {
    this.prune(now);
    this.until.set(path, now + this.ttlMs);
  }

  has(path: string, now = Date.now()): boolean {
    const t = this.until.get(path);
    if (t === undefined) return false;
    if (t > now) return true;
    this.until.delete(path);
    return false;
  }

  private prune(now: number): void {
    if (this.until.size < 64) return;
    for (const [p, t] of this.until) if (t <= now) this.until.delete(p);
  }
}

/** The process's own changes (jobs and the watch run in the same server process). */
export const ownPaths = new OwnPaths();
