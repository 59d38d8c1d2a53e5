// Validators and conditional requests of GET/HEAD (RFC 9110 §8.8, §13) for every route built on
// delivery.ts (media, art, subtitles).
//
// Dates: only an HTTP-date (§5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms,
// which a recipient must accept) is a date here; anything else (`2030`, an ISO date, `yesterday`)
// is not a valid date, and the header that carries it is ignored, as the RFC asks. An
// If-Modified-Since later than the server's clock is invalid too (§13.1.3) and ignored: a client
// with a clock ahead (or a hostile one) must not get a 304 for a body it never had.

export function etagOf(size: number, mtime: number): string {
  return `"${size.toString(16)}-${Math.floor(mtime).toString(16)}"`;
}

/** Entity tags of an If-Match / If-None-Match value; `*` is returned as ['*']. */
function etagList(value: string): string[] {
  if (value.trim() === '*') return ['*'];
  return value.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

const opaque = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MON = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MON} (\\d{4}) ${TIME} GMT$`);
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MON}-(\\d{2}) ${TIME} GMT$`);
// Sun Nov  6 08:49:37 1994
const ASCTIME_DATE = new RegExp(`^${DAY} ${MON} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * Seconds since the epoch of an HTTP-date (RFC 9110 §5.6.7), or undefined when `value` is not
 * one (including impossible dates such as 31 Feb). `nowSec` resolves RFC 850's two-digit year
 * (a year more than 50 years ahead is taken to be in the past century).
 */
export function parseHttpDate(value: string, nowSec = Math.floor(Date.now() / 1000)): number | undefined {
  const s = value.trim();
  if (s.length > 64) return undefined;
  let day: string, mon: string, year: number, hh: string, mm: string, ss: string;
  let m = IMF_FIXDATE.exec(s);
  if (m) {
    [, day, mon, , hh, mm, ss] = m as unknown as string[];
    year = Number(m[3]);
  } else if ((m = RFC850_DATE.exec(s))) {
    [, day, mon, , hh, mm, ss] = m as unknown as string[];
    const yy = Number(m[3]);
    const thisYear = new Date(nowSec * 1000).getUTCFullYear();
    year = Math.floor(thisYear / 100) * 100 + yy;
    if (year > thisYear + 50) year -= 100;
  } else if ((m = ASCTIME_DATE.exec(s))) {
    [, mon, day, hh, mm, ss] = m as unknown as string[];
    year = Number(m[6]);
  } else return undefined;
  const month = MONTHS.indexOf(mon.toLowerCase());
  const d = Number(day.trim());
  const [h, mi, se] = [Number(hh), Number(mm), Number(ss)];
  if (h > 23 || mi > 59 || se > 60) return undefined; // 60: a leap second
  const ms = Date.UTC(year, month, d, h, mi, Math.min(se, 59));
  const check = new Date(ms);
  if (check.getUTCDate() !== d || check.getUTCMonth() !== month) return undefined; // 31 Feb, 0 Jan
  return Math.floor(ms / 1000);
}

export type Precondition = 'ok' | 'not-modified' | 'failed';

type Headers = Record<string, string | string[] | undefined>;

/** RFC 9110 §13.2.2 evaluation order for GET/HEAD (steps 1-4; If-Range is ifRangeHolds). */
export function evaluatePreconditions(headers: Headers, etag: string, lastModSec: number, nowSec = Math.floor(Date.now() / 1000)): Precondition {
  const ifMatch = headers['if-match'];
  if (typeof ifMatch === 'string') {
    const tags = etagList(ifMatch);
    if (!(tags[0] === '*' || tags.includes(etag))) return 'failed'; // strong comparison
  } else {
    const ius = headers['if-unmodified-since'];
    if (typeof ius === 'string') {
      const t = parseHttpDate(ius, nowSec); // not a date: ignored (§13.1.4)
      if (t !== undefined && lastModSec > t) return 'failed';
    }
  }
  const inm = headers['if-none-match'];
  if (typeof inm === 'string') {
    const tags = etagList(inm);
    if (tags[0] === '*' || tags.some((t) => opaque(t) === etag)) return 'not-modified'; // weak comparison
  } else {
    const ims = headers['if-modified-since'];
    if (typeof ims === 'string') {
      const t = parseHttpDate(ims, nowSec);
      // not a date, or a date later than now: invalid, ignored (§13.1.3)
      if (t !== undefined && t <= nowSec && lastModSec <= t) return 'not-modified';
    }
  }
  return 'ok';
}

/**
 * If-Range (§13.1.5): the range applies only when the validator still matches: an entity tag by
 * strong comparison (a weak one never matches), a date only when it is exactly the Last-Modified
 * date and that date is strong, i.e. at least a second before now (§8.8.2.2). Anything else
 * (no valid date, a future date) means the whole representation is sent.
 */
export function ifRangeHolds(headers: Headers, etag: string, lastModSec: number, nowSec = Math.floor(Date.now() / 1000)): boolean {
  const v = headers['if-range'];
  if (typeof v !== 'string') return true;
  const s = v.trim();
  if (s.startsWith('"') || s.startsWith('W/')) return s === etag;
  const t = parseHttpDate(s, nowSec);
  return t !== undefined && t === lastModSec && lastModSec < nowSec;
}
