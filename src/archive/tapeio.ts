// Tape access for jobs, through the TapeLibrary interface only (the library may
// be local or a proxy to the staging worker):
//   - DriveManager.mount: get a cartridge into a drive, unloading the least
//     recently used idle cartridge when every drive is full; clear errors for
//     offline / unknown cartridges and "no free drive".
//   - MemberReader: reads members front to back. It remembers the last block it
//     read (the next member often starts in it) and reads through short gaps
//     instead of locating, so a batch of members in block order costs one
//     locate per cartridge.

import { TapeError, isTapeError, type CartridgeWhere, type TapeDrive, type TapeLibrary } from '../tape/types.js';
import type { MemberExtent } from '../tape/format.js';
import { ArchiveError } from './errors.js';

export class DriveManager {
  private lastUse = new Map<string, number>();
  private tick = 0;

  constructor(private readonly library: TapeLibrary) {}

  /** Where a cartridge is; NOT_FOUND as an ArchiveError. */
  async where(label: string): Promise<CartridgeWhere> {
    try {
      return await this.library.changer.find(label);
    } catch (err) {
      if (isTapeError(err, 'NOT_FOUND')) throw new ArchiveError('NOT_FOUND', `unknown cartridge ${label}: the tape library does not know it`, { label, cause: err });
      throw err;
    }
  }

  /** Throws OFFLINE / NOT_FOUND unless the cartridge is inside the library. */
  async assertOnline(label: string): Promise<CartridgeWhere> {
    const w = await this.where(label);
    if (w.where === 'offline') throw offlineError(label);
    return w;
  }

  async mount(label: string): Promise<TapeDrive> {
    await this.assertOnline(label);
    let drive: TapeDrive;
    try {
      drive = await this.library.mount(label);
    } catch (err) {
      if (isTapeError(err, 'OFFLINE')) throw offlineError(label);
      if (!isTapeError(err, 'BUSY')) throw err;
      drive = await this.mountByUnloading(label, err);
    }
    this.lastUse.set(label, ++this.tick);
    return drive;
  }

  /** Mark a cartridge as just used (LRU for unloading). */
  touch(label: string): void {
    this.lastUse.set(label, ++this.tick);
  }

  private async mountByUnloading(label: string, first: TapeError): Promise<TapeDrive> {
    const inv = await this.library.changer.inventory();
    const candidates = inv.drives
      .filter((d) => d.full && d.label !== label)
      .sort((a, b) => (this.lastUse.get(a.label ?? '') ?? 0) - (this.lastUse.get(b.label ?? '') ?? 0));
    const why: string[] = [first.message];
    for (const d of candidates) {
      try {
        await this.library.changer.unload(d.drive);
      } catch (err) {
        why.push(`drive ${d.drive} (${d.label ?? '?'}): ${(err as Error).message}`);
        continue;
      }
      try {
        return await this.library.mount(label, { drive: d.drive });
      } catch (err) {
        if (isTapeError(err, 'OFFLINE')) throw offlineError(label);
        if (!isTapeError(err, 'BUSY')) throw err;
        why.push((err as Error).message);
      }
    }
    throw new ArchiveError('NO_DRIVE', `no free drive for ${label}: ${inv.drives.length} drive(s), none can take it (${why.join('; ')})`, { label });
  }
}

export function offlineError(label: string): ArchiveError {
  return new ArchiveError('OFFLINE', `cartridge ${label} is offline (exported); put it back with \`tapedeck tape import ${label}\``, { label });
}

export interface MemberReaderOptions {
  /** Gaps up to this many bytes are read through instead of located over (default 256 MiB). */
  readThroughBytes?: number;
  /** Bytes per drive read (default about 4 MiB). */
  chunkBytes?: number;
}

export class MemberReader {
  private cache: { block: number; data: Buffer } | undefined;
  private readonly chunkBlocks: number;
  private readonly readThroughBlocks: number;

  constructor(
    private readonly drive: TapeDrive,
    private readonly bs: number,
    private readonly label: string,
    opts: MemberReaderOptions = {},
  ) {
    this.chunkBlocks = Math.max(1, Math.floor((opts.chunkBytes ?? 4 << 20) / bs));
    this.readThroughBlocks = Math.floor((opts.readThroughBytes ?? 256 << 20) / bs);
  }

  /** Make sure the drive holds the expected cartridge with the expected block size. */
  async check(): Promise<void> {
    const st = await this.drive.status();
    if (st.label && st.label !== this.label) throw new TapeError('BAD_POSITION', `${this.drive.name} holds ${st.label}, expected ${this.label}`, { drive: this.drive.index });
    if (st.blockSize !== this.bs) throw new TapeError('BAD_POSITION', `${this.label}: block size ${st.blockSize}, expected ${this.bs}`, { drive: this.drive.index });
  }

  /** Bytes [start, end) (end exclusive) of a member, as chunks. */
  async *read(ext: MemberExtent, start = 0, end = ext.size): AsyncGenerator<Buffer> {
    const bs = this.bs;
    if (ext.blockSize !== bs) throw new TapeError('INVALID', `member block size ${ext.blockSize} differs from the cartridge's ${bs}`);
    if (start < 0 || end > ext.size || end < start) throw new TapeError('INVALID', `range [${start}, ${end}) is outside a member of ${ext.size} bytes`);
    let remaining = end - start;
    if (remaining === 0) return;
    const abs = ext.offset + start;
    let block = ext.firstBlock + Math.floor(abs / bs);
    let skip = abs % bs;
    if (this.cache && this.cache.block === block) {
      const piece = this.cache.data.subarray(skip, Math.min(bs, skip + remaining));
      remaining -= piece.length;
      block++;
      skip = 0;
      yield piece;
      if (remaining === 0) return;
    }
    await this.positionAt(block);
    let blocksLeft = Math.ceil((skip + remaining) / bs);
    while (remaining > 0) {
      const r = await this.drive.readBlocks(Math.min(this.chunkBlocks, blocksLeft));
      const n = r.data.length / bs;
      if (n > 0) {
        this.cache = { block: block + n - 1, data: r.data.subarray((n - 1) * bs) };
        block += n;
        blocksLeft -= n;
      }
      if (r.data.length > skip) {
        const piece = r.data.subarray(skip, Math.min(r.data.length, skip + remaining));
        remaining -= piece.length;
        skip = 0;
        yield piece;
      } else skip -= r.data.length;
      if (remaining > 0 && r.mark) {
        throw new TapeError('FORMAT', `${this.label}: ${r.mark} inside a member (${remaining} bytes short)`, { drive: this.drive.index });
      }
    }
  }

  private async positionAt(block: number): Promise<void> {
    let pos = await this.drive.tell();
    if (pos === block) return;
    if (pos > block || block - pos > this.readThroughBlocks) {
      await this.drive.locate(block);
      return;
    }
    // Read through a short gap: cheaper than a locate's start/stop.
    while (pos < block) {
      const r = await this.drive.readBlocks(Math.min(this.chunkBlocks, block - pos));
      const n = r.data.length / this.bs;
      if (n > 0) this.cache = { block: pos + n - 1, data: r.data.subarray((n - 1) * this.bs) };
      if (r.mark === 'eod') throw new TapeError('BAD_POSITION', `${this.label}: end of data before block ${block}`);
      pos = await this.drive.tell();
    }
    if (pos !== block) await this.drive.locate(block);
  }
}

/**
 * Keep up to `depth` chunks of `src` in flight while the consumer handles the
 * current one, so the drive keeps streaming while the host writes to disk
 * (a drive that has to wait stops and repositions: "shoe-shining").
 */
export async function* prefetch<T>(src: AsyncIterable<T>, depth = 2): AsyncGenerator<T> {
  const it = src[Symbol.asyncIterator]();
  const queue: Promise<IteratorResult<T>>[] = [];
  let ended = false;
  const pull = () => {
    const p = it.next();
    p.then(
      (r) => {
        if (r.done) ended = true;
      },
      () => {
        ended = true;
      },
    );
    queue.push(p);
  };
  try {
    for (let i = 0; i < depth; i++) pull();
    while (queue.length) {
      const r = await queue.shift()!;
      if (r.done) return;
      if (!ended) pull();
      yield r.value;
    }
  } finally {
    await Promise.allSettled(queue);
    await it.return?.(undefined);
  }
}
