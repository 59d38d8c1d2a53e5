// The server's own addresses as a client names them: which Host/Origin values are this
// server, and the base URL the server puts into URLs it hands out.
//
// A Host header is whatever the client (or a page it runs) chose: a DNS-rebinding page on
// attacker.example resolving to the NAS sends `Host: attacker.example` and
// `Origin: http://attacker.example`, which agree with each other. So neither is trusted as is:
// the base URL comes from the socket's local address and port (the address the request came in
// on, as MiniDLNA does), and an Origin passes only when it names one of the server's own
// addresses (the ones it listens on), a localhost name or this machine's host name, with the
// port the request came in on.

import type { IncomingMessage } from 'node:http';
import { hostname } from 'node:os';

/** An address without the IPv4-mapped prefix, IPv6 in brackets (as in a URL). */
function urlHost(addr: string): string {
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a.includes(':') ? `[${a.toLowerCase()}]` : a.toLowerCase();
}

/** `http://<local address>:<local port>` of the socket the request came in on. */
export function socketBaseUrl(req: IncomingMessage): string {
  const sock = req.socket;
  return `http://${urlHost(sock.localAddress ?? '127.0.0.1')}:${sock.localPort}`;
}

const LOCAL_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/**
 * Whether `origin` (a browser's Origin header) names this server: its host is the socket's
 * local address, one of `own` (the addresses the server listens on), a localhost name, or this
 * machine's host name (`name`, `name.local`), and its port is the one the request came in on.
 */
export function isOwnOrigin(origin: string, req: IncomingMessage, own: readonly string[] = []): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' || url.username || url.password) return false;
  const port = url.port ? Number(url.port) : 80;
  if (port !== req.socket.localPort) return false;
  const host = url.hostname.toLowerCase();
  const name = hostname().toLowerCase();
  const names = new Set([...LOCAL_NAMES, ...(name ? [name, `${name}.local`] : []), urlHost(req.socket.localAddress ?? ''), ...own.map(urlHost)]);
  return names.has(host);
}

/**
 * Why a request comes from a web page of another site, or undefined: browsers send Origin with
 * every POST (and Sec-Fetch-Site); it must name this server by one of its own addresses
 * (isOwnOrigin), not merely agree with the Host header, which a DNS-rebinding page controls.
 * Requests without either (TVs, control points, curl, scripts) pass.
 */
export function crossOriginOf(req: IncomingMessage, own: readonly string[] = []): string | undefined {
  const header = (name: string): string => {
    const v = req.headers[name];
    return (Array.isArray(v) ? v[0] : v) ?? '';
  };
  const site = header('sec-fetch-site');
  if (site && site !== 'same-origin' && site !== 'none') return `cross-site request (Sec-Fetch-Site: ${site})`;
  const origin = header('origin');
  if (!origin) return undefined;
  if (!isOwnOrigin(origin, req, own)) return `cross-origin request from ${origin}`;
  return undefined;
}
