// One contract, every KVStore implementation (in the style of abstract-level's
// compliance suite): test/store.test.ts runs it against MemoryStore and LevelStore.
import type { ExecutionContext, TestFn } from 'ava';
import type { KVStore } from '../src/catalog/store.js';
import { prefixRange } from '../src/catalog/store.js';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export function runStoreSuite(test: TestFn, name: string, make: () => Promise<KVStore>): void {
  const t = (title: string, fn: (s: KVStore, a: ExecutionContext) => Promise<void>) =>
    test(`${name}: ${title}`, async (a) => {
      const s = await make();
      await s.open();
      try {
        await fn(s, a);
      } finally {
        await s.close();
      }
    });

  t('get of a missing key is undefined', async (s, a) => {
    a.is(await s.get('nope'), undefined);
    a.deepEqual(await s.getMany(['a', 'b']), [undefined, undefined]);
  });

  t('put, overwrite and delete through batches', async (s, a) => {
    await s.batch([{ type: 'put', key: 'k', value: '1' }]);
    a.is(await s.get('k'), '1');
    await s.batch([{ type: 'put', key: 'k', value: '2' }]);
    a.is(await s.get('k'), '2');
    await s.batch([{ type: 'del', key: 'k' }]);
    a.is(await s.get('k'), undefined);
    await s.batch([{ type: 'del', key: 'never-existed' }]);
    await s.batch([]);
  });

  t('empty string values and unicode keys round-trip', async (s, a) => {
    await s.batch([
      { type: 'put', key: 'e', value: '' },
      { type: 'put', key: 'ü/日本\u0000x', value: 'ö' },
    ]);
    a.is(await s.get('e'), '');
    a.is(await s.get('ü/日本\u0000x'), 'ö');
  });

  t('a prefix range holds keys whose next character is astral (emoji, U+20BB7) or near U+FFFF', async (s, a) => {
    // LevelDB orders UTF-8 bytes: an astral character (F0..F4) sorts after U+FFFF (EF BF BF),
    // so a bound of prefix + '\uffff' left out a title or file name starting with an emoji
    const inside = ['p/\u{1F3B5} song', 'p/\u{20BB7}野家', 'p/\uFF34okyo', 'p/\uFFFD', 'p/a', 'p/'];
    await s.batch([...inside, 'p', 'q', 'p0', 'o/\u{1F3B5}'].map((k) => ({ type: 'put' as const, key: k, value: 'v' })));
    const want = [...inside].sort();
    a.deepEqual((await collect(s.keys(prefixRange('p/')))).sort(), want);
    a.deepEqual((await s.keyList(prefixRange('p/'))).sort(), want);
    a.deepEqual((await s.entryList(prefixRange('p/'))).map(([k]) => k).sort(), want);
    a.deepEqual((await collect(s.entries(prefixRange('p/', { reverse: true })))).map(([k]) => k).sort(), want);
    // a bound past every key of a prefix, as the catalog writes it (o/i\uffff)
    a.deepEqual((await s.keyList({ gt: 'o/\uffff', lt: 'q' })).sort(), ['p', 'p0', ...inside].sort());
  });

  t('iterates in key order with every bound kind', async (s, a) => {
    const keys = ['a', 'b', 'b\u0000', 'b\u0000x', 'ba', 'c', 'd'];
    await s.batch([...keys].reverse().map((k) => ({ type: 'put' as const, key: k, value: k.toUpperCase() })));
    a.deepEqual(await collect(s.keys({})), keys);
    a.deepEqual(await collect(s.keys({ gt: 'b', lt: 'd' })), ['b\u0000', 'b\u0000x', 'ba', 'c']);
    a.deepEqual(await collect(s.keys({ gte: 'b', lte: 'c' })), ['b', 'b\u0000', 'b\u0000x', 'ba', 'c']);
    a.deepEqual(await collect(s.keys({ gte: 'b', reverse: true, limit: 2 })), ['d', 'c']);
    a.deepEqual(await collect(s.keys({ ...prefixRange('b\u0000') })), ['b\u0000', 'b\u0000x']);
    a.deepEqual(await collect(s.keys({ limit: 0 })), []);
    a.deepEqual(await s.keyList({ gt: 'b', lt: 'd' }), ['b\u0000', 'b\u0000x', 'ba', 'c']);
    a.deepEqual(await s.keyList({ gte: 'b', reverse: true, limit: 2 }), ['d', 'c']);
    a.deepEqual(await s.keyList({ ...prefixRange('b\u0000') }), ['b\u0000', 'b\u0000x']);
    a.deepEqual(await s.entryList({ ...prefixRange('b\u0000') }), [
      ['b\u0000', 'B\u0000'],
      ['b\u0000x', 'B\u0000X'],
    ]);
    a.deepEqual(await s.entryList({ gte: 'b', reverse: true, limit: 2 }), [
      ['d', 'D'],
      ['c', 'C'],
    ]);
    a.deepEqual(await collect(s.entries({ gte: 'c' })), [
      ['c', 'C'],
      ['d', 'D'],
    ]);
  });

  t('getMany keeps the order of the request', async (s, a) => {
    await s.batch([
      { type: 'put', key: 'x', value: '1' },
      { type: 'put', key: 'y', value: '2' },
    ]);
    a.deepEqual(await s.getMany(['y', 'missing', 'x']), ['2', undefined, '1']);
  });

  t('a batch is applied in order: put then del of one key deletes it', async (s, a) => {
    await s.batch([
      { type: 'put', key: 'k', value: 'v' },
      { type: 'del', key: 'k' },
      { type: 'put', key: 'j', value: 'w' },
    ]);
    a.is(await s.get('k'), undefined);
    a.is(await s.get('j'), 'w');
  });

  t('a bad batch is rejected as a whole', async (s, a) => {
    await a.throwsAsync(() =>
      s.batch([
        { type: 'put', key: 'ok', value: 'v' },
        { type: 'put', key: 'bad', value: undefined as unknown as string },
      ]),
    );
    a.is(await s.get('ok'), undefined);
  });

  t('large batches and ranged paging over 5000 keys', async (s, a) => {
    const ops = [];
    for (let i = 0; i < 5000; i++) ops.push({ type: 'put' as const, key: `c/${String(i).padStart(5, '0')}`, value: String(i) });
    await s.batch(ops);
    const page = await collect(s.entries({ gte: 'c/04990', limit: 5 }));
    a.deepEqual(
      page.map(([, v]) => v),
      ['4990', '4991', '4992', '4993', '4994'],
    );
    a.is((await collect(s.keys(prefixRange('c/')))).length, 5000);
  });
}
