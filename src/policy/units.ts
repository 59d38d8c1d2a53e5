// Value syntaxes of the storage-policy settings (pure; config.ts validates with them):
//   DURATION  45s, 30m, 12h, 90d or plain seconds
//   SIZE|N%   500M, 2T, 1048576 (bytes; K/M/G/T binary) or 80% (used share of a file system)
//   HH:MM-HH:MM  a daily window in local time (may wrap midnight)
//   GLOB      `*` (not across /), `**` (any depth), `?`, [abc]; no / = the file name at any depth

const DURATION_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds of "45s", "30m", "12h", "90d", "3600"; undefined when malformed. */
export function parseDuration(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/i.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]) * DURATION_UNITS[m[2].toLowerCase()];
  return Number.isFinite(n) && n <= 100 * 365 * 86400 ? Math.round(n) : undefined;
}

export type Watermark = { kind: 'bytes'; bytes: number } | { kind: 'percent'; percent: number };

/** "80%" or a size ("2T"); `parseSize` is the size parser of the settings table. */
export function parseWatermark(s: string, parseSize: (s: string) => number | undefined): Watermark | undefined {
  const p = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(s);
  if (p) {
    const percent = Number(p[1]);
    return percent > 0 && percent <= 100 ? { kind: 'percent', percent } : undefined;
  }
  const bytes = parseSize(s);
  return bytes !== undefined && bytes > 0 ? { kind: 'bytes', bytes } : undefined;
}

export function formatWatermark(w: Watermark): string {
  return w.kind === 'percent' ? `${w.percent}%` : `${w.bytes} bytes`;
}

/** Minutes after local midnight: [start, end); end < start wraps midnight; start == end = all day (written 00:00-24:00). */
export interface DailyWindow {
  start: number;
  end: number;
}

/**
 * A window, or why the text is not one. A window that starts where it ends (10:00-10:00) could mean
 * "never" or "all day" and is refused; all day is 00:00-24:00 (or no policy_window at all).
 */
export function checkWindow(s: string): { window: DailyWindow } | { error: string } {
  const m = /^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$/.exec(s);
  const syntax = { error: 'expected HH:MM-HH:MM in local time, e.g. 22:00-06:00' };
  if (!m) return syntax;
  const [h1, m1, h2, m2] = m.slice(1).map(Number);
  if (h1 > 24 || h2 > 24 || m1 > 59 || m2 > 59 || (h1 === 24 && m1 > 0) || (h2 === 24 && m2 > 0)) return syntax;
  const [a, b] = [h1 * 60 + m1, h2 * 60 + m2];
  if (a === 0 && b === 1440) return { window: { start: 0, end: 0 } };
  if (a % 1440 === b % 1440) return { error: `the window ${s.trim()} starts where it ends; for any time of day write 00:00-24:00 (or leave policy_window unset)` };
  return { window: { start: a % 1440, end: b % 1440 } };
}

export function parseWindow(s: string): DailyWindow | undefined {
  const r = checkWindow(s);
  return 'window' in r ? r.window : undefined;
}

export function formatWindow(w: DailyWindow): string {
  if (w.start === w.end) return '00:00-24:00';
  const f = (n: number) => `${String(Math.floor(n / 60)).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}`;
  return `${f(w.start)}-${f(w.end)}`;
}

/** Whether a minute of the day lies in the window. */
export function inWindow(w: DailyWindow | undefined, minute: number): boolean {
  if (!w || w.start === w.end) return true;
  return w.start < w.end ? minute >= w.start && minute < w.end : minute >= w.start || minute < w.end;
}

/** A glob as a RegExp over a path relative to a media directory (with / separators). */
export function globToRegExp(glob: string): RegExp | undefined {
  const g = glob.trim();
  if (!g || g.startsWith('/') || g.split('/').includes('..')) return undefined;
  const anchored = g.includes('/');
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === '*') {
      if (g[i + 1] === '*') {
        i++;
        if (g[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = g.indexOf(']', i + 2);
      if (close < 0) return undefined;
      let body = g.slice(i + 1, close);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = close;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(anchored ? `^${re}$` : `(?:^|/)${re}$`);
}
