// head_stub_tail: the bytes at the end of a file kept with its head stub reach both the archive
// jobs (ArchiveService.stubOptions) and the policy planner's estimate of what an archive leaves
// on disk (estimateStub), so a library of small files can keep a smaller tail, or none.
import test from 'ava';
import { loadConfig } from '../src/config.js';
import { Catalog } from '../src/catalog/catalog.js';
import { MemoryStore } from '../src/catalog/store.js';
import { ArchiveService } from '../src/archive/service.js';
import { silentLogger } from '../src/log.js';
import { estimateStub } from '../src/policy/state.js';
import type { CatalogObject } from '../src/catalog/types.js';

const cfgOf = (flags: Record<string, unknown>, env: Record<string, string> = {}) => loadConfig({ env: env as NodeJS.ProcessEnv, flags: { data: '/tmp/tapedeck-stub-tail', headStubSeconds: '10', headStubMin: '1000', ...flags } });

test('head_stub_tail: default 4M, flag and environment', (t) => {
  t.is(cfgOf({}).headStubTail, 4 * 1024 ** 2);
  t.is(cfgOf({ headStubTail: '0' }).headStubTail, 0);
  t.is(cfgOf({}, { TAPEDECK_HEAD_STUB_TAIL: '1K' }).headStubTail, 1024);
  t.throws(() => cfgOf({ headStubTail: 'lots' }));
});

test('archive jobs and the planner use the configured tail', async (t) => {
  const catalog = new Catalog(new MemoryStore());
  await catalog.open();
  const item = { id: 'x', res: { bitrate: 100, size: 500_000 } } as unknown as CatalogObject;
  for (const [tail, want] of [
    ['0', 0],
    ['2000', 2000],
  ] as const) {
    const config = cfgOf({ headStubTail: tail });
    const svc = new ArchiveService({ catalog, library: undefined as never, config, log: silentLogger });
    t.is(svc.stubOptions.tailBytes, want);
    // head: 10 s × 100 B/s = 1000 (= head_stub_min), plus the tail
    t.is(estimateStub(item, 500_000, config), 1000 + want);
  }
  t.is(estimateStub(item, 1500, cfgOf({})), 1500, 'never more than the file');
  await catalog.close();
});
