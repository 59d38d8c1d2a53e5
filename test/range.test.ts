import test from 'ava';
import { parseRange, contentRange, unsatisfiedRange, type RangeResult } from '../src/http/range.js';

const none: RangeResult = { kind: 'none' };
const invalid: RangeResult = { kind: 'invalid' };
const unsat: RangeResult = { kind: 'unsatisfiable' };
const r = (start: number, end: number): RangeResult => ({ kind: 'range', start, end });

// [header, size, expected]
const cases: Array<[string | undefined, number, RangeResult]> = [
  // absent
  [undefined, 100, none],
  [undefined, 0, none],
  // closed ranges
  ['bytes=0-0', 100, r(0, 0)], // first byte
  ['bytes=99-99', 100, r(99, 99)], // last byte
  ['bytes=10-19', 100, r(10, 19)], // middle
  ['bytes=0-99', 100, r(0, 99)], // exactly the whole file
  ['bytes=50-50', 100, r(50, 50)],
  // end past EOF is clamped
  ['bytes=0-100', 100, r(0, 99)],
  ['bytes=90-1000000', 100, r(90, 99)],
  ['bytes=0-99999999999999999999999', 100, r(0, 99)],
  // open ranges
  ['bytes=0-', 100, r(0, 99)],
  ['bytes=42-', 100, r(42, 99)],
  ['bytes=99-', 100, r(99, 99)],
  // suffix ranges
  ['bytes=-1', 100, r(99, 99)],
  ['bytes=-10', 100, r(90, 99)],
  ['bytes=-100', 100, r(0, 99)],
  ['bytes=-101', 100, r(0, 99)], // larger than the file: the whole file
  ['bytes=-99999999999999999999999', 100, r(0, 99)],
  ['bytes=-0', 100, unsat],
  // start at or past EOF
  ['bytes=100-', 100, unsat],
  ['bytes=100-200', 100, unsat],
  ['bytes=1000-1001', 100, unsat],
  ['bytes=99999999999999999999999-', 100, unsat],
  // one-byte file
  ['bytes=0-0', 1, r(0, 0)],
  ['bytes=0-', 1, r(0, 0)],
  ['bytes=-5', 1, r(0, 0)],
  ['bytes=1-', 1, unsat],
  // empty file
  ['bytes=0-', 0, unsat],
  ['bytes=0-0', 0, unsat],
  ['bytes=-0', 0, unsat],
  ['bytes=-5', 0, none],
  // whitespace and case tolerance
  ['bytes = 10-19', 100, r(10, 19)],
  [' bytes=10-19 ', 100, r(10, 19)],
  ['bytes=10 - 19', 100, r(10, 19)],
  ['bytes=\t10-\t19', 100, r(10, 19)],
  ['BYTES=10-19', 100, r(10, 19)],
  ['Bytes=-5', 100, r(95, 99)],
  // empty list elements are skipped
  ['bytes=10-19,', 100, r(10, 19)],
  ['bytes=, 10-19', 100, r(10, 19)],
  ['bytes=,,10-19,,', 100, r(10, 19)],
  // several ranges are ignored as a whole (documented choice)
  ['bytes=0-1,5-6', 100, none],
  ['bytes=0-1, -5', 100, none],
  ['bytes=200-300,0-1', 100, none],
  // ...but a broken element still makes the header invalid
  ['bytes=0-1,x-6', 100, invalid],
  // invalid syntax / unknown units
  ['', 100, invalid],
  ['bytes', 100, invalid],
  ['bytes=', 100, invalid],
  ['bytes=,', 100, invalid],
  ['bytes=-', 100, invalid],
  ['bytes=a-b', 100, invalid],
  ['bytes=1-a', 100, invalid],
  ['bytes=1.5-2', 100, invalid],
  ['bytes=+1-2', 100, invalid],
  ['bytes=-1-2', 100, invalid],
  ['bytes=1--2', 100, invalid],
  ['bytes=0x10-0x20', 100, invalid],
  ['bytes=5-1', 100, invalid], // last < first
  ['bytes=10', 100, invalid],
  ['bytes 0-1', 100, invalid],
  ['bytes:0-1', 100, invalid],
  ['items=0-1', 100, invalid],
  ['0-1', 100, invalid],
  ['=0-1', 100, invalid],
  ['bytes=0-1;foo', 100, invalid],
  ['bytes=1 2-3', 100, invalid],
  ['bytes=' + '1'.repeat(2000) + '-', 100, invalid], // absurdly long header
];

for (const [header, size, expected] of cases) {
  test(`parseRange(${JSON.stringify(header)?.slice(0, 40)}, ${size})`, (t) => {
    t.deepEqual(parseRange(header, size), expected);
  });
}

test('large sizes stay exact', (t) => {
  const size = 2 ** 40 + 7; // a 1 TiB+ file
  t.deepEqual(parseRange(`bytes=${2 ** 40}-`, size), r(2 ** 40, size - 1));
  t.deepEqual(parseRange('bytes=-3', size), r(size - 3, size - 1));
});

test('a bad size is a programming error', (t) => {
  t.throws(() => parseRange('bytes=0-1', -1), { instanceOf: RangeError });
  t.throws(() => parseRange('bytes=0-1', 1.5), { instanceOf: RangeError });
});

test('Content-Range helpers', (t) => {
  t.is(contentRange(0, 0, 1), 'bytes 0-0/1');
  t.is(contentRange(10, 19, 100), 'bytes 10-19/100');
  t.is(unsatisfiedRange(100), 'bytes */100');
});
