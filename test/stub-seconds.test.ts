// head_stub_seconds = auto: derived from the drive timing so that, at real LTO
// timing, the worst time to the first tape byte is inside the stub.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { autoHeadStubSeconds, headStubSeconds, worstFirstByteSeconds } from '../src/archive/stub-seconds.js';
import { LTO8, LTO9, ScaledClock } from '../src/tape/timing.js';
import { VirtualTapeLibrary } from '../src/tape/virtual.js';

const noEnv = {} as NodeJS.ProcessEnv;

test('auto is the default; explicit seconds still win; bad words are named', (t) => {
  const c = loadConfig({ env: noEnv });
  t.is(c.headStubSeconds, 'auto');
  t.is(headStubSeconds(c), 209, 'LTO-9: (30 + 2·20 + 17 + 3 + 84) × 1.2, rounded up');
  t.is(headStubSeconds(loadConfig({ env: noEnv, flags: { tapeGeneration: 'LTO-8' } })), 212);
  t.is(headStubSeconds(loadConfig({ env: noEnv, flags: { headStubSeconds: '90' } })), 90);
  t.is(loadConfig({ env: { TAPEDECK_HEAD_STUB_SECONDS: 'AUTO' } as NodeJS.ProcessEnv }).headStubSeconds, 'auto');
  t.throws(() => loadConfig({ env: noEnv, flags: { headStubSeconds: 'fast' } }), { message: /head_stub_seconds.*whole number or auto/ });
  // a measured worst case longer than the model replaces it
  t.is(autoHeadStubSeconds(LTO9, 300), 360);
  t.is(autoHeadStubSeconds(LTO9, 10), 209);
});

test('auto covers the worst first-byte time the virtual library models (busy drive, far end of the tape)', async (t) => {
  for (const p of [LTO9, LTO8]) {
    const dir = await mkdtemp(join(tmpdir(), 'tapedeck-stubsec-'));
    const clock = new ScaledClock({ timeScale: 0, keepEvents: true });
    const bs = 4096;
    // one wrap = 4 blocks: block 4 lies at the far end of the tape (start of the first reverse wrap)
    const lib = await VirtualTapeLibrary.open(dir, { generation: p.generation, drives: 1, blockSize: bs, capacityBytes: p.wraps * 4 * bs, cartridges: 2, slots: 4, clock });
    try {
      const [a, b] = await lib.labels();
      const d = await lib.mount(b!);
      await d.writeBlocks(Buffer.alloc(8 * bs, 1));
      await d.writeFilemarks(1);
      await lib.changer.unload(d.index);
      await lib.mount(a!); // the only drive holds another cartridge
      clock.reset();
      // a playback request for the far end of b: swap, load, locate, first block
      const d2 = await lib.mount(b!, { drive: 0 });
      await d2.locate(4);
      await d2.readBlocks(1);
      const modelled = clock.total();
      t.true(modelled > 120, `${p.generation}: the old fixed 120 s stub would stall (${modelled} s)`);
      t.true(modelled <= worstFirstByteSeconds(p) + 0.01, `${p.generation}: ${modelled} s within the modelled worst ${worstFirstByteSeconds(p)} s`);
      t.true(autoHeadStubSeconds(p) >= modelled * 1.2, `${p.generation}: the auto stub keeps a 20% margin`);
    } finally {
      await lib.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
});
