// Sizes shown to people use one convention everywhere: binary units, as the config writes
// them (1G = 1 GiB). The CLI (tape ls, jobs, progress) and the status page agree.
import test from 'ava';
import { formatBytes } from '../src/util/units.js';
import { parseSize } from '../src/config.js';
import { statusPageHtml } from '../src/http/status/page.js';

test('formatBytes uses binary units, as sizes in the config do', (t) => {
  t.is(formatBytes(parseSize('1G')), '1.00 GiB');
  t.is(formatBytes(parseSize('256K')), '256 KiB');
  t.is(formatBytes(648 * 1024), '648 KiB');
  t.is(formatBytes(42.6 * 1024 ** 2), '42.6 MiB');
  t.is(formatBytes(512), '512 B');
  t.is(formatBytes(0), '0 B');
  t.is(formatBytes(undefined), '-');
});

test('the status page formats bytes exactly as the CLI does', (t) => {
  const html = statusPageHtml({ title: 't', nonce: 'n', pollMs: 1000, initialJson: '{}' });
  const src = /function bytes\(n\) \{[\s\S]*?\n {2}\}/.exec(html)?.[0];
  t.truthy(src, 'the page has a bytes() function');
  const pageBytes = new Function(`${src}; return bytes;`)() as (n: number) => string;
  for (const n of [0, 1, 999, 1000, 1023, 1024, 1536, 1_000_000, 663_552, 1_331_200, 10 * 1024 ** 2, 99.5 * 1024 ** 2, 1024 ** 3, 1.07e9, 18e12, 2 ** 53])
    t.is(pageBytes(n), formatBytes(n), String(n));
});
