// The answer to a request no route took (after `router.routes()`, in place of @koa/router's
// allowedMethods): a path no route has is 404 whatever the method (`SUBSCRIBE /upnp/event/xyz`
// included; allowedMethods answered 501 for any method outside its default list, even on an
// unknown path); a known path asked with another method is 405 with `Allow` (OPTIONS: 200 with
// `Allow`). The router fills `ctx.matched` with the routes whose path matched, whatever the method.

import type { Middleware } from 'koa';

interface MatchedLayer {
  methods: string[];
}

export function allowedMethods(): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.status !== 404 || ctx.body != null) return;
    const matched = ((ctx as unknown as { matched?: MatchedLayer[] }).matched ?? []).flatMap((l) => l.methods);
    const allow = [...new Set(matched)];
    if (allow.length === 0) return; // unknown path: Koa's 404
    if (allow.includes(ctx.method)) return; // a route of this method answered 404 itself
    ctx.set('Allow', allow.join(', '));
    if (ctx.method === 'OPTIONS') {
      ctx.status = 200;
      ctx.body = '';
    } else {
      ctx.status = 405;
    }
  };
}
