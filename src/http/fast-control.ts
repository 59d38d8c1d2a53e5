// SOAP control POSTs answered straight from Node's request event, before Koa. A TV's menus
// are mostly Browse requests; Koa's context, the middleware chain and the router's matching
// of every route cost ~35 µs of CPU per request, as much as the whole BrowseMetadata answer
// (bench/README.md). The same handler answers (upnp/soap.ts soapControl) with the same
// headers; what the Koa middlewares do for these requests is done here: the ACL and the Host
// check (a refused peer or Host is left to Koa, which answers 403 and counts it), the Server header, and `done` for
// the request metric and the debug log line. Anything else (other methods, other paths, a
// query string) goes to Koa.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ControlHandler } from '../upnp/soap.js';
import { requestHost } from './host-check.js';

export interface FastControlOptions {
  /** Control URL path → its handler (soapRoutes returns it). */
  routes: ReadonlyMap<string, ControlHandler>;
  /** The server's ACL (http/acl.ts socketAcl). */
  allowed(socket: Socket): boolean;
  /** The server's Host check (http/host-check.ts hostChecker); none: every Host. */
  hostAllowed?(host: string | undefined): boolean;
  serverHeader: string;
  /** After each answer (route = the path), for the request metric and the log. */
  done?(req: IncomingMessage, route: string, status: number, ms: number): void;
}

/** A request listener's front: true when it answered the request, false to hand it to Koa. */
export function fastControl(o: FastControlOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const route = req.url ?? '';
    const handle = o.routes.get(route);
    if (!handle || !o.allowed(req.socket) || (o.hostAllowed && !o.hostAllowed(requestHost(req)))) return false;
    const t0 = Date.now();
    void handle(req)
      .then((r) => {
        // one flat header list: cheaper than a setHeader per header
        const headers = ['Server', o.serverHeader];
        for (const [k, v] of r.headers) headers.push(k, v);
        headers.push('Content-Length', String(Buffer.byteLength(r.body)));
        res.writeHead(r.status, headers);
        res.end(r.body);
        return r.status;
      })
      .catch(() => {
        // soapControl does not throw; a failure to write means the client is gone
        if (!res.headersSent) res.statusCode = 500;
        res.end();
        return 500;
      })
      .then((status) => {
        try {
          o.done?.(req, route, status, Date.now() - t0);
        } catch {
          // an observer must not break the control URL
        }
      });
    return true;
  };
}
