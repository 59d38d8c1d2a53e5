// One convention for sizes shown to people, everywhere (CLI, status page, logs): binary
// units, as sizes are written in the config (`1G` = 1 GiB = 1024³ bytes). The status page
// has its own copy in the browser (http/status/page.ts, `bytes()`); a test keeps the two equal.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1073741824 → "1.00 GiB", 663552 → "648 KiB", 512 → "512 B"; undefined → "-". */
export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0)} ${UNITS[i]}`;
}
