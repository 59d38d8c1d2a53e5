// Fields of the "http error" line (info for client errors, warn for server faults), so one log line says what failed for whom: the request
// (method, URL), the item (for /media/<id>[.ext]), and the client (address, User-Agent).

import type { Context } from 'koa';

export interface HttpErrorFields {
  err: string;
  code?: string;
  method?: string;
  url?: string;
  item?: string;
  client?: string;
  ua?: string;
  status?: number;
}

const MEDIA = /^\/media\/([^/?.]+)/;

export function httpErrorFields(err: Error & { code?: string }, ctx?: Context): HttpErrorFields {
  const out: HttpErrorFields = { err: err.message };
  if (err.code) out.code = err.code;
  if (!ctx) return out;
  out.method = ctx.method;
  out.url = ctx.url;
  const m = MEDIA.exec(ctx.path ?? '');
  if (m) out.item = decodeURIComponentSafe(m[1]);
  const remote = ctx.req?.socket?.remoteAddress;
  if (remote) out.client = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  const ua = ctx.get?.('user-agent');
  if (ua) out.ua = ua.slice(0, 200);
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number') out.status = status;
  return out;
}

/**
 * The level of an "http error" line: a client error (4xx: an item whose file has gone, 404; a
 * range outside the file, 416; no acceptable representation, 406 ...) is expected and logged at
 * info; a server fault (5xx, or an error without a status) stays a warning.
 */
export function httpErrorLevel(e: object): 'info' | 'warn' {
  const err = e as { status?: unknown; statusCode?: unknown };
  const s = typeof err.status === 'number' ? err.status : typeof err.statusCode === 'number' ? err.statusCode : undefined;
  return s !== undefined && s >= 400 && s <= 499 ? 'info' : 'warn';
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
