// The per-cartridge item counts of tape status (the status page, `tapedeck tape ls`) and the
// offline cartridges a policy plan needs (issue 11 item 2: memory that does not grow with the
// library). tapeStatus read every catalog item into one array on each call: at 100,000 items
// ~110 MB of the server's heap on every status page refresh, and on every policy plan (which
// called it for the offline labels alone, beside its own pass over the items). Now: one pass
// over the items as they are read, again only once the catalog changed; a plan asks the changer.
import test from 'ava';
import { itemAt, makeLab } from './fixtures/archive/setup.js';
import { PolicyEngine } from '../src/policy/engine.js';
import { silentLogger } from '../src/log.js';

test('tape status counts items per cartridge in one streamed pass, made again only after a catalog change', async (t) => {
  const lab = await makeLab({ files: [['A/1.mp3', 5000], ['A/2.mp3', 6000], ['B/3.mp3', 7000]], memory: true });
  t.teardown(() => lab.cleanup());
  const [p1, p2] = [...lab.files.keys()];
  const ids = [(await itemAt(lab.catalog, p1)).id, (await itemAt(lab.catalog, p2)).id];
  t.is((await lab.service.run((await lab.service.submit('archive', ids)).id)).state, 'done');
  const catalog = lab.catalog as unknown as { items: () => unknown; eachItem: () => AsyncIterable<unknown> };
  let arrays = 0;
  let passes = 0;
  const items = catalog.items.bind(lab.catalog);
  const each = catalog.eachItem.bind(lab.catalog);
  catalog.items = () => (arrays++, items());
  catalog.eachItem = () => (passes++, each());
  const counts = async () => (await lab.service.tapeStatus()).cartridges.find((c) => c.label === 'TD0001L9');
  t.like(await counts(), { items: 2, bytes: 11000 });
  t.like(await counts(), { items: 2, bytes: 11000 });
  t.is(passes, 1, 'the second status read no item');
  t.is(arrays, 0, 'never every item at once');
  // a catalog change (an archive commits a third item): counted again
  const third = (await itemAt(lab.catalog, [...lab.files.keys()][2])).id;
  t.is((await lab.service.run((await lab.service.submit('archive', [third])).id)).state, 'done');
  t.like(await counts(), { items: 3, bytes: 18000 });
  t.is(passes, 2);
  t.is(arrays, 0);
});

test('a policy plan takes the offline cartridges from the changer, not from tape status', async (t) => {
  const lab = await makeLab({ files: [['A/1.mp3', 5000]], memory: true, cartridges: 2, pool: 2 });
  t.teardown(() => lab.cleanup());
  await lab.service.exportCartridge('TD0002L9');
  t.deepEqual(await lab.service.offlineCartridges(), ['TD0002L9']);
  let statusCalls = 0;
  const tapeStatus = lab.service.tapeStatus.bind(lab.service);
  lab.service.tapeStatus = () => (statusCalls++, tapeStatus());
  const engine = new PolicyEngine({ catalog: lab.catalog, config: lab.config, archive: lab.service, readAccess: async () => new Map(), log: silentLogger, mediaDirs: [lab.media] });
  const plan = await engine.plan();
  t.truthy(plan);
  t.is(statusCalls, 0);
});
