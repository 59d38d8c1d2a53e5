// Client address filter for every HTTP route (description, SOAP control, GENA, media).
//
// The address checked is the TCP peer (`socket.remoteAddress`), never X-Forwarded-For or
// Koa's `ctx.ip`, which a client can forge when `app.proxy` is on. IPv4-mapped IPv6 peers
// (`::ffff:192.168.1.5`, what a dual-stack listener reports) match IPv4 subnets.
// A connection's peer never changes, so the verdict is kept per socket (keep-alive
// clients send many requests on one).

import type { Socket } from 'node:net';
import type { Middleware } from 'koa';
import { subnetMatcher, DEFAULT_ALLOWED_SUBNETS, type Cidr } from '../util/net.js';

export interface AclOptions {
  /** Called for each refused request (for logging). */
  onDenied?(remoteAddress: string, method: string, path: string): void;
}

/**
 * Whether a connection's peer lies in `subnets` (CIDR strings or parsed), decided once per
 * socket. Throws at construction on a malformed CIDR. An empty list refuses everyone.
 */
export function socketAcl(subnets: readonly (string | Cidr)[] = DEFAULT_ALLOWED_SUBNETS): (socket: Socket) => boolean {
  const allowed = subnetMatcher(subnets);
  const verdicts = new WeakMap<Socket, boolean>();
  return (socket) => {
    let ok = verdicts.get(socket);
    if (ok === undefined) verdicts.set(socket, (ok = allowed(socket.remoteAddress ?? '')));
    return ok;
  };
}

/**
 * Koa middleware answering 403 to peers outside `subnets` (see socketAcl; pass one built by
 * socketAcl to share its verdicts). Throws at construction on a malformed CIDR, so a bad
 * configuration fails at startup. An empty list refuses everyone.
 */
export function allowSubnets(subnets: readonly (string | Cidr)[] | ((socket: Socket) => boolean) = DEFAULT_ALLOWED_SUBNETS, opts: AclOptions = {}): Middleware {
  const allowed = typeof subnets === 'function' ? subnets : socketAcl(subnets);
  return async (ctx, next) => {
    if (!allowed(ctx.req.socket)) {
      opts.onDenied?.(ctx.req.socket.remoteAddress ?? '', ctx.method, ctx.path);
      ctx.status = 403;
      ctx.body = 'Forbidden';
      return;
    }
    await next();
  };
}
