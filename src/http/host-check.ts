// DNS-rebinding guard: the Host header must name this server.
//
// A web page on attacker.example whose name the attacker then points at the NAS's address is,
// to the browser, the same origin as the NAS: its scripts read whatever a GET answers (the
// status page, /status.json with paths and jobs, /metrics, descriptions, art, media) and no
// Origin header is sent with a GET, so the Origin checks of the POST routes (own-host.ts) cannot
// see it. What the browser cannot change is the Host header: it names the attacker's host. So
// every HTTP route accepts only a Host that is
//   - an IP literal (IPv4, or IPv6 in brackets, with or without a zone and a port): what TVs and
//     control points send, as they use the address in SSDP's LOCATION and in our res URLs;
//   - `localhost`;
//   - this machine's host name (as os.hostname() gives it, and its first label) or that name
//     with `.local` (mDNS), the names a NAS user types;
//   - a name listed in `allowed_hosts` (a DNS name of the NAS, a reverse proxy's name), or `*`
//     there to accept any Host;
// or no Host at all (HTTP/1.0 clients; a browser always sends one). Anything else is 403 with
// a message naming the setting; several Host lines are 400 (RFC 9112 §3.2). (miniupnpd accepts only IP literals; Plex, Home Assistant and
// Jupyter check Host against a list of names the same way.)

import { isIPv4, isIPv6 } from 'node:net';
import { hostname as osHostname } from 'node:os';
import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';

/**
 * The host a request names: the authority of an absolute-form target (`GET http://host/path`,
 * RFC 9112 §3.2.2: the Host header is then ignored), else its Host header (undefined: none).
 * `hosts`: its Host lines (hostValues), when the caller has them already.
 */
export function requestHost(req: IncomingMessage, hosts: string[] = hostValues(req)): string | undefined {
  const url = req.url ?? '';
  if (url.charCodeAt(0) !== 47 /* '/' */) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url);
    if (m) return m[1];
  }
  // Node keeps the first of several Host lines: they are one malformed value here (RFC 9112
  // §3.2 asks for 400), which no check accepts, so the first cannot vouch for the others
  return hosts.length > 1 ? hosts.join(', ') : req.headers.host;
}

/** The values of the request's Host header lines, in order (Node's req.headers keeps only the first). */
function hostValues(req: IncomingMessage): string[] {
  const out: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') out.push(raw[i + 1]!);
  return out;
}

/** The name or address of a Host header value, lower case, without port and trailing dot; undefined when malformed. */
export function hostOf(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0 || !/^(?::\d{1,5})?$/.test(h.slice(end + 1))) return undefined;
    const addr = h.slice(1, end).replace(/%25.*$|%.*$/, '');
    return isIPv6(addr) ? addr : undefined;
  }
  const m = /^([^:\s/@]+?)\.?(?::\d{1,5})?$/.exec(h);
  return m ? m[1] : undefined;
}

export interface HostCheckOptions {
  /** Names accepted besides the built-in ones (allowed_hosts); `*` accepts any Host. */
  extra?: readonly string[];
  /** This machine's host name (default os.hostname()). */
  hostname?: string;
}

/** Whether a Host header value (undefined: none sent) names this server (see the header comment). */
export function hostChecker(opts: HostCheckOptions = {}): (header: string | undefined) => boolean {
  const extra = (opts.extra ?? []).map((n) => n.trim().toLowerCase().replace(/\.$/, ''));
  if (extra.includes('*')) return () => true;
  const name = (opts.hostname ?? osHostname()).toLowerCase().replace(/\.$/, '');
  const first = name.split('.')[0];
  const names = new Set(['localhost', ...extra, ...(name ? [name, `${name}.local`, first, `${first}.local`] : [])]);
  return (header) => {
    if (header === undefined || header === '') return true;
    const host = hostOf(header);
    if (host === undefined) return false;
    return isIPv4(host) || isIPv6(host) || names.has(host);
  };
}

/** Koa middleware answering 403 to a request whose Host names someone else (see hostChecker). */
export function hostGuard(allowed: (header: string | undefined) => boolean, opts: { onDenied?(host: string, path: string): void } = {}): Middleware {
  return async (ctx, next) => {
    const hosts = hostValues(ctx.req);
    const host = requestHost(ctx.req, hosts);
    if (hosts.length > 1) {
      opts.onDenied?.(host ?? '', ctx.path);
      ctx.status = 400;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'Bad Request: more than one Host header (RFC 9112 section 3.2)\n';
      return;
    }
    if (!allowed(host)) {
      opts.onDenied?.(host ?? '', ctx.path);
      ctx.status = 403;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `Forbidden: Host "${String(host).slice(0, 200)}" is not a name of this server (DNS-rebinding protection). Use its IP address, localhost or its host name, or add the name to allowed_hosts (--allow-host, TAPEDECK_ALLOWED_HOSTS).\n`;
      return;
    }
    await next();
  };
}
