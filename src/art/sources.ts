// Where an item's art comes from (what the scanner looks at, in this order):
//   audio  the embedded cover (read by the prober in the same parse as the tags), else folder art;
//   video  a picture named after the file (<name>.jpg / <stem>.jpg / .png), else a frame at
//          about 10% of the duration through ffmpeg (when present), else folder art;
//   image  the image itself.
// Folder art: cover, folder, front, AlbumArt* (.jpg, .jpeg, .png), case-insensitive, beside the file.

import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { basename, delimiter, dirname, extname, join } from 'node:path';

const PICTURE_EXT = new Set(['.jpg', '.jpeg', '.png']);

/** Folder-art file names by preference (lower-case stem → rank; AlbumArt* share the last ranks). */
function folderRank(name: string): number | undefined {
  const ext = extname(name).toLowerCase();
  if (!PICTURE_EXT.has(ext)) return undefined;
  const stem = name.slice(0, -ext.length).toLowerCase();
  if (stem === 'cover') return 0;
  if (stem === 'folder') return 1;
  if (stem === 'front') return 2;
  if (stem.startsWith('albumart')) return stem.endsWith('large') ? 3 : stem.endsWith('small') ? 5 : 4;
  return undefined;
}

/** Picture files of one directory that can be art (lower-case name → real name). */
export interface DirPictures {
  folderArt?: string; // best folder-art file name
  byLowerName: Map<string, string>;
}

export async function listDirPictures(dir: string): Promise<DirPictures> {
  const byLowerName = new Map<string, string>();
  let best: { name: string; rank: number } | undefined;
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return { byLowerName };
  }
  for (const n of names) {
    if (n.startsWith('.') || !PICTURE_EXT.has(extname(n).toLowerCase())) continue;
    byLowerName.set(n.toLowerCase(), n);
    const r = folderRank(n);
    if (r !== undefined && (!best || r < best.rank || (r === best.rank && n < best.name))) best = { name: n, rank: r };
  }
  return { folderArt: best?.name, byLowerName };
}

/** A picture named after the media file: <stem>.jpg|jpeg|png or <name>.jpg|jpeg|png. */
export function namedPicture(file: string, pics: DirPictures): string | undefined {
  const name = basename(file);
  const stem = name.slice(0, name.length - extname(name).length);
  for (const base of [stem, name]) {
    for (const ext of PICTURE_EXT) {
      const hit = pics.byLowerName.get((base + ext).toLowerCase());
      if (hit && join(dirname(file), hit) !== file) return join(dirname(file), hit);
    }
  }
  return undefined;
}

export function folderArtOf(file: string, pics: DirPictures): string | undefined {
  return pics.folderArt ? join(dirname(file), pics.folderArt) : undefined;
}

let ffmpegOnPath: Promise<string | undefined> | undefined;

/** Absolute path of `ffmpeg` on PATH (looked up once per process), or undefined. */
export function findFfmpeg(): Promise<string | undefined> {
  ffmpegOnPath ??= (async () => {
    for (const d of (process.env.PATH ?? '').split(delimiter)) {
      if (!d) continue;
      const p = join(d, 'ffmpeg');
      if (await access(p, fsConstants.X_OK).then(() => true, () => false)) return p;
    }
    return undefined;
  })();
  return ffmpegOnPath;
}

/** Largest frame accepted from ffmpeg (a 640×480 JPEG is far smaller). */
const MAX_FRAME_BYTES = 8 * 1024 * 1024;

/**
 * One video frame at `atSeconds` as a JPEG of at most 640×480, through ffmpeg, killed after
 * `timeoutMs`. Undefined when ffmpeg fails, times out or finds no frame there.
 */
export function videoFrame(ffmpeg: string, path: string, atSeconds: number, timeoutMs: number): Promise<Buffer | undefined> {
  const ss = Math.max(0, atSeconds).toFixed(3);
  const args = [
    '-nostdin', '-hide_banner', '-v', 'error',
    '-ss', ss, '-i', path,
    '-map', '0:v:0', '-frames:v', '1', '-an', '-sn', '-dn',
    '-vf', 'scale=w=640:h=480:force_original_aspect_ratio=decrease',
    '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '3', 'pipe:1',
  ];
  return new Promise((resolve) => {
    execFile(ffmpeg, args, { encoding: 'buffer', timeout: timeoutMs, maxBuffer: MAX_FRAME_BYTES, killSignal: 'SIGKILL', windowsHide: true }, (err, stdout) => {
      if (err || !stdout?.length) return resolve(undefined);
      resolve(stdout);
    });
  });
}
