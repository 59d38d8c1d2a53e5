// SHA-256 of a file, streamed (archive verification, recall, import, and the scanner's
// re-linking of a file that came back to disk with the bytes of its tape copy).
import { createHash } from 'node:crypto';
import { openRegular } from './read-regular.js';

/** SHA-256 of the regular file at `path`; a link, named pipe or device there is refused (util/read-regular.ts), not read or waited on. */
export async function hashFile(path: string, onBytes?: (n: number) => void): Promise<string> {
  const h = createHash('sha256');
  const { fh } = await openRegular(path);
  for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).length);
  }
  return h.digest('hex');
}
