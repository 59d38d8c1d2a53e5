// Scales a source picture to DLNA's two thumbnail profiles, once, at scan time:
//   JPEG_TN  at most 160×160, JPEG_SM  at most 640×480 (aspect kept, never enlarged,
//   baseline JPEG in sRGB, EXIF orientation applied, alpha flattened on white, no metadata).
//
// sharp (libvips, a prebuilt native binary) rather than a pure-JavaScript library: libvips
// decodes JPEG with shrink-on-load (a 24-megapixel photo is decoded at 1/8 size) and streams
// the image in strips, so a thumbnail costs milliseconds and a few MB; a JS decoder holds
// the whole RGBA raster (~100 MB for 24 MP) and is 10-50× slower, which a NAS with 1-2 GB
// and the scan-time budget cannot afford. libvips' own cache and thread pool are kept
// small for the same reason.

import sharp, { type Metadata } from 'sharp';

export const TN_MAX = { width: 160, height: 160 };
export const SM_MAX = { width: 640, height: 480 };

/** Largest source picture decoded (pixels): beyond it the picture is skipped, not decoded. */
export const MAX_INPUT_PIXELS = 100_000_000;

sharp.cache({ memory: 16, files: 0, items: 32 });
sharp.concurrency(1);

export interface Scaled {
  data: Buffer;
  width: number;
  height: number;
}

const jpeg = (quality: number) => ({ quality, progressive: false, chromaSubsampling: '4:2:0', mozjpeg: false, optimiseCoding: false }) as const;

/**
 * JPEG_TN and JPEG_SM renditions of a picture (encoded bytes or a file path). Rejects on a
 * picture that cannot be decoded or is larger than MAX_INPUT_PIXELS.
 */
export async function scaleArt(input: Buffer | string): Promise<{ tn: Scaled; sm: Scaled }> {
  // One picture at a time, one libuv thread: sharp runs on Node's threadpool (4 threads), which
  // the scan's file reads, stats and opens share; scaling in parallel starved them (a cold scan
  // with 2,000 covers in 20,000 files took 2.7x the time without art, and the main thread idled).
  const turn = queue.then(() => scaleNow(input));
  queue = turn.then(
    () => undefined,
    () => undefined,
  );
  return turn;
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Whether a source is already a JPEG_SM as it is: a baseline sRGB (3-channel) JPEG within
 * 640×480 with no orientation to apply and no metadata (EXIF, ICC, XMP, IPTC) to strip. Album
 * covers mostly are (a 400×400 or 500×500 JPEG), and then re-encoding them gains nothing.
 */
function fitsSm(m: Metadata): boolean {
  return (
    m.format === 'jpeg' &&
    !m.isProgressive &&
    !!m.width &&
    !!m.height &&
    m.width <= SM_MAX.width &&
    m.height <= SM_MAX.height &&
    (m.orientation ?? 1) === 1 &&
    m.space === 'srgb' &&
    m.channels === 3 &&
    !m.exif &&
    !m.icc &&
    !m.xmp &&
    !m.iptc
  );
}

async function scaleNow(input: Buffer | string): Promise<{ tn: Scaled; sm: Scaled }> {
  if (Buffer.isBuffer(input)) {
    // the header only; a picture that fits JPEG_SM is kept as its JPEG_SM, and its JPEG_TN is
    // decoded with shrink-on-load straight to thumbnail size (no full decode, one encode)
    const m = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' }).metadata();
    if (fitsSm(m)) {
      const tn = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
        .resize({ width: TN_MAX.width, height: TN_MAX.height, fit: 'inside', withoutEnlargement: true })
        .jpeg(jpeg(80))
        .toBuffer({ resolveWithObject: true });
      return { sm: { data: input, width: m.width!, height: m.height! }, tn: { data: tn.data, width: tn.info.width, height: tn.info.height } };
    }
  }
  // decoded once (JPEG shrink-on-load), to at most 640×480 sRGB pixels; both sizes are encoded
  // from those pixels (Huffman optimisation off: it costs more than the few % of bytes it saves)
  const { data, info } = await sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, sequentialRead: true, failOn: 'error' })
    .rotate()
    .resize({ width: SM_MAX.width, height: SM_MAX.height, fit: 'inside', withoutEnlargement: true })
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
  const sm = await sharp(data, raw).jpeg(jpeg(82)).toBuffer({ resolveWithObject: true });
  const tn = await sharp(data, raw).resize({ width: TN_MAX.width, height: TN_MAX.height, fit: 'inside', withoutEnlargement: true }).jpeg(jpeg(80)).toBuffer({ resolveWithObject: true });
  return {
    sm: { data: sm.data, width: sm.info.width, height: sm.info.height },
    tn: { data: tn.data, width: tn.info.width, height: tn.info.height },
  };
}
