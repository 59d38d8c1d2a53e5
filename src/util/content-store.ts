// A content-addressed file store in the data directory (album art, subtitles): a file is named
// by a hash of its source, so the same content is kept once however many items refer to it.
// Writes are atomic (temp file + rename): a crash leaves either the whole file or none.
// Names are built from validated keys only; nothing from a request is ever joined to a path.

import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const KEY_RE = /^[0-9a-f]{32}$/;
const SUFFIX_RE = /^[a-z0-9]{1,8}(\.[a-z0-9]{1,8})?$/;

/** Content key of some bytes: the first 128 bits of their SHA-256, in hex. */
export function contentKey(...parts: (Uint8Array | string)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 32);
}

export class ContentStore {
  /** Subdirectories known to exist (one mkdir each, not one per file). */
  private made = new Set<string>();

  constructor(readonly dir: string) {}

  /** Path of `<key>.<suffix>` (e.g. suffix "tn.jpg"); throws on a malformed key or suffix. */
  path(key: string, suffix: string): string {
    if (!KEY_RE.test(key) || !SUFFIX_RE.test(suffix)) throw new Error(`bad content store name ${key}.${suffix}`);
    return join(this.dir, key.slice(0, 2), `${key}.${suffix}`);
  }

  async has(key: string, suffix: string): Promise<boolean> {
    return stat(this.path(key, suffix)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  /** The regular file `<key>.<suffix>` (path, size, mtime); undefined for a malformed name or no such file. */
  async file(key: string, suffix: string): Promise<{ path: string; size: number; mtimeMs: number } | undefined> {
    if (!KEY_RE.test(key) || !SUFFIX_RE.test(suffix)) return undefined;
    const path = this.path(key, suffix);
    const st = await stat(path).catch(() => undefined);
    return st?.isFile() ? { path, size: st.size, mtimeMs: st.mtimeMs } : undefined;
  }

  async put(key: string, suffix: string, data: Uint8Array): Promise<void> {
    const p = this.path(key, suffix);
    const sub = key.slice(0, 2);
    if (!this.made.has(sub)) {
      await mkdir(join(this.dir, sub), { recursive: true });
      this.made.add(sub);
    }
    const tmp = `${p}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, data);
      await rename(tmp, p);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Every file of the store (not temp files), with its key, suffix, size and mtime. */
  async *entries(): AsyncIterable<{ key: string; suffix: string; path: string; size: number; mtimeMs: number }> {
    const subs = await readdir(this.dir).catch(() => [] as string[]);
    for (const s of subs) {
      for (const n of await readdir(join(this.dir, s)).catch(() => [] as string[])) {
        if (n.endsWith('.tmp')) continue;
        const dot = n.indexOf('.');
        const key = n.slice(0, dot);
        const suffix = n.slice(dot + 1);
        if (dot < 0 || !KEY_RE.test(key) || !SUFFIX_RE.test(suffix)) continue;
        const p = join(this.dir, s, n);
        const st = await lstat(p).catch(() => undefined);
        if (st?.isFile()) yield { key, suffix, path: p, size: st.size, mtimeMs: st.mtimeMs };
      }
    }
  }

  /** Removes `<key>.<suffix>` (nothing when it is not there). */
  async remove(key: string, suffix: string): Promise<void> {
    await rm(this.path(key, suffix), { force: true });
  }

  /** Total bytes and files in the store (for the bench and the status page). */
  async usage(): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    for await (const e of this.entries()) {
      files++;
      bytes += e.size;
    }
    return { files, bytes };
  }
}
