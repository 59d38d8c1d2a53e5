// Draws the device icons (a compact cassette: body, label, window with two
// reels, head cut-out) and writes them to devices/icons/:
//   icon-48.png, icon-120.png (RGBA, transparent background)
//   icon-48.jpg, icon-120.jpg (baseline 4:4:4, on white)
// Deterministic: re-running produces identical files.
//
//   npm run -s make-icons [-- outDir]

import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEVICES_DIR } from '../util/paths.js';
import { Canvas, circle, encodeJpeg, encodePng, type RGBA, roundRect, segment, subtract, union } from './imagegen.js';

const BODY: RGBA = [43, 47, 54];
const BODY_LIGHT: RGBA = [66, 72, 82];
const LABEL: RGBA = [242, 158, 56];
const LABEL_STRIPE: RGBA = [214, 92, 52];
const WINDOW: RGBA = [24, 26, 31];
const REEL: RGBA = [236, 236, 232];
const TAPE: RGBA = [120, 78, 50];

/** The cassette motif at `size`×`size` pixels, transparent around it. */
export function drawTapeIcon(size: number): Canvas {
  const c = new Canvas(size, size, [0, 0, 0, 0]);
  const u = (v: number) => v * size; // unit → pixels
  // Body and the trapezoid-ish head area at the bottom.
  c.paint(roundRect(u(0.05), u(0.17), u(0.95), u(0.83), u(0.08)), BODY);
  c.paint(roundRect(u(0.22), u(0.66), u(0.78), u(0.83), u(0.04)), BODY_LIGHT);
  c.paint(union(circle(u(0.33), u(0.75), u(0.028)), circle(u(0.67), u(0.75), u(0.028))), WINDOW);
  // Label with a stripe.
  c.paint(roundRect(u(0.11), u(0.23), u(0.89), u(0.6), u(0.04)), LABEL);
  c.paint(roundRect(u(0.11), u(0.27), u(0.89), u(0.3), 0), LABEL_STRIPE);
  // Window with the tape pack and two reels.
  c.paint(roundRect(u(0.24), u(0.34), u(0.76), u(0.54), u(0.1)), WINDOW);
  c.paint(circle(u(0.35), u(0.44), u(0.085)), TAPE);
  c.paint(circle(u(0.65), u(0.44), u(0.06)), TAPE);
  for (const cx of [0.35, 0.65]) {
    const hub = subtract(circle(u(cx), u(0.44), u(0.05)), circle(u(cx), u(0.44), u(0.022)));
    // Three teeth reaching into the hub hole.
    const teeth = [0, 1, 2].map((k) => {
      const a = (k * 2 * Math.PI) / 3 + Math.PI / 2;
      return segment(u(cx), u(0.44), u(cx) + Math.cos(a) * u(0.03), u(0.44) + Math.sin(a) * u(0.03), Math.max(1, u(0.014)));
    });
    c.paint(union(hub, ...teeth), REEL);
  }
  // Corner screws.
  for (const [x, y] of [
    [0.1, 0.22],
    [0.9, 0.22],
    [0.1, 0.78],
    [0.9, 0.78],
  ]) {
    c.paint(circle(u(x), u(y), Math.max(0.8, u(0.018))), BODY_LIGHT);
  }
  return c;
}

export async function makeIcons(outDir: string, sizes = [48, 120]): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const size of sizes) {
    const icon = drawTapeIcon(size);
    const png = join(outDir, `icon-${size}.png`);
    await writeFile(png, encodePng(icon, { alpha: true }));
    const jpg = join(outDir, `icon-${size}.jpg`);
    await writeFile(jpg, encodeJpeg(icon.flatten([255, 255, 255]), 92, undefined, { subsampling: '444' }));
    written.push(png, jpg);
  }
  return written;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? resolve(process.argv[2]) : join(DEVICES_DIR, 'icons');
  for (const f of await makeIcons(out)) console.log(f);
}
