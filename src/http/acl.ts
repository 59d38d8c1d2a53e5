// Client address filter for every HTTP route (description, SOAP control, GENA, media).
//
// The address checked is the TCP peer (`socket.remoteAddress`), never X-Forwarded-For or
// Koa's `ctx.ip`, which a client can forge when `app.proxy` is on. IPv4-mapped IPv6 peers
// (`::ffff:192.168.1.5`, what a dual-stack listener reports) match IPv4 subnets.

import type { Middleware } from 'koa';
import { subnetMatcher, DEFAULT_ALLOWED_SUBNETS, type Cidr } from '../util/net.js';

export interface AclOptions {
  /** Called for each refused request (for logging). */
  onDenied?(remoteAddress: string, method: string, path: string): void;
}

/**
 * Koa middleware answering 403 to peers outside `subnets` (CIDR strings or parsed).
 * Throws at construction on a malformed CIDR, so a bad configuration fails at startup.
 * An empty list refuses everyone.
 */
export function allowSubnets(
  subnets: readonly (string | Cidr)[] = DEFAULT_ALLOWED_SUBNETS,
  opts: AclOptions = {},
): Middleware {
  const allowed = subnetMatcher(subnets);
  return async (ctx, next) => {
    const remote = ctx.req.socket.remoteAddress ?? '';
    if (!allowed(remote)) {
      opts.onDenied?.(remote, ctx.method, ctx.path);
      ctx.status = 403;
      ctx.body = 'Forbidden';
      return;
    }
    await next();
  };
}
