import test from 'ava';
import { evaluatePreconditions, ifRangeHolds, parseHttpDate } from '../src/http/conditional.js';

const NOW = Date.UTC(2026, 11, 7, 0, 30, 0) / 1000;

test('parseHttpDate: the three forms of RFC 9110 5.6.7, nothing else', (t) => {
  const want = Date.UTC(1994, 10, 6, 8, 49, 37) / 1000;
  t.is(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW), want);
  t.is(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), want);
  t.is(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW), want);
  t.is(parseHttpDate('Friday, 01-Jan-27 00:00:00 GMT', NOW), Date.UTC(2027, 0, 1) / 1000, 'two-digit years up to 50 ahead are this century');
  for (const bad of ['', '2030', '2030-01-01', '1994-11-06T08:49:37Z', 'yesterday', 'Sun, 06 Nov 1994 08:49:37 UTC', 'Sun, 6 Nov 1994 08:49:37 GMT', 'Sun, 31 Feb 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 24:00:00 GMT', 'x'.repeat(10_000)]) {
    t.is(parseHttpDate(bad, NOW), undefined, bad);
  }
});

test('If-Modified-Since in the future is ignored; a valid past one still gives 304', (t) => {
  const etag = '"1-1"';
  const lastMod = NOW - 3600;
  const fmt = (s: number) => new Date(s * 1000).toUTCString();
  t.is(evaluatePreconditions({ 'if-modified-since': fmt(NOW + 60) }, etag, lastMod, NOW), 'ok');
  t.is(evaluatePreconditions({ 'if-modified-since': fmt(NOW) }, etag, lastMod, NOW), 'not-modified');
  t.is(evaluatePreconditions({ 'if-modified-since': fmt(lastMod) }, etag, lastMod, NOW), 'not-modified');
  t.is(evaluatePreconditions({ 'if-modified-since': fmt(lastMod - 1) }, etag, lastMod, NOW), 'ok');
  // If-None-Match takes precedence over If-Modified-Since
  t.is(evaluatePreconditions({ 'if-none-match': '"x"', 'if-modified-since': fmt(NOW) }, etag, lastMod, NOW), 'ok');
});

test('If-Range by date: only the exact, strong Last-Modified date', (t) => {
  const etag = '"1-1"';
  const fmt = (s: number) => new Date(s * 1000).toUTCString();
  t.true(ifRangeHolds({ 'if-range': fmt(NOW - 10) }, etag, NOW - 10, NOW));
  t.false(ifRangeHolds({ 'if-range': fmt(NOW - 11) }, etag, NOW - 10, NOW));
  t.false(ifRangeHolds({ 'if-range': fmt(NOW) }, etag, NOW, NOW), 'modified this very second: a weak date');
  t.false(ifRangeHolds({ 'if-range': 'tomorrow' }, etag, NOW - 10, NOW));
});
