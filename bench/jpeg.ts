// Why the demo library keeps its own JPEG encoder (src/demo/jpeg.ts) rather than jpeg-js:
// encodes the demo's pictures and a run of MJPEG frames with both and prints time and size as
// JSON. `npx tsx bench/jpeg.ts [--frames N]` (jpeg-js is a dev dependency: the tests decode with it).
import jpeg from 'jpeg-js';
import { Canvas } from '../src/demo/imagegen.js';
import { encodeJpegRgba } from '../src/demo/jpeg.js';

const frames = Number(process.argv[process.argv.indexOf('--frames') + 1]) || 50;

/** A deterministic picture with smooth gradients and hard edges, like the demo's. */
function picture(w: number, h: number): Canvas {
  const c = new Canvas(w, h, [0, 0, 0, 255]);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      const checker = ((x >> 5) + (y >> 5)) & 1;
      c.data[i] = (x * 255) / w;
      c.data[i + 1] = checker ? 200 : (y * 255) / h;
      c.data[i + 2] = 128 + 127 * Math.sin((x + y) / 40);
    }
  return c;
}

const sizes: [number, number][] = [[1920, 1080], [1024, 768], [640, 480], [480, 640], [960, 540], [800, 600], [160, 120]];
const pictures = sizes.map(([w, h]) => picture(w, h));
const frame = picture(320, 240);

type Enc = (c: Canvas, q: number) => Buffer;
const encoders: Record<string, Enc> = {
  ours: (c, q) => encodeJpegRgba(c.width, c.height, c.data, { quality: q }),
  'jpeg-js': (c, q) => Buffer.from(jpeg.encode({ width: c.width, height: c.height, data: c.data }, q).data),
};

function measure(enc: Enc): { picturesMs: number; pictureBytes: number; framesMs: number; frameBytes: number } {
  let t = performance.now();
  let pictureBytes = 0;
  for (const p of pictures) pictureBytes += enc(p, 85).length;
  const picturesMs = performance.now() - t;
  t = performance.now();
  let frameBytes = 0;
  for (let i = 0; i < frames; i++) frameBytes += enc(frame, 80).length;
  return { picturesMs: Math.round(picturesMs), pictureBytes, framesMs: Math.round(performance.now() - t), frameBytes };
}

for (const enc of Object.values(encoders)) measure(enc); // warm-up
const result = Object.fromEntries(Object.entries(encoders).map(([name, enc]) => [name, measure(enc)]));
process.stdout.write(JSON.stringify({ pictures: sizes.length, frames, frameSize: '320x240', result }, null, 2) + '\n');
