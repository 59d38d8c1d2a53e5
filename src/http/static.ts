// Icons from devices/icons. The presentation page (status page) lives in status.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Router } from '@koa/router';
import { serverStatusProvider, type ServerLike } from '../server-state.js';
import { statusRoutes } from './status.js';

const ICONS: Record<string, string> = {
  'icon-48.png': 'image/png',
  'icon-120.png': 'image/png',
  'icon-48.jpg': 'image/jpeg',
  'icon-120.jpg': 'image/jpeg',
};

export function staticRoutes(router: Router, opts: { devicesDir: string; server?: ServerLike }): void {
  const icons = new Map<string, Buffer>();
  for (const name of Object.keys(ICONS)) {
    try {
      icons.set(name, readFileSync(join(opts.devicesDir, 'icons', name)));
    } catch {
      // reported by the description test; the route answers 404
    }
  }
  router.get('/icons/:name', (ctx) => {
    const body = icons.get(ctx.params.name);
    if (!body) return;
    ctx.type = ICONS[ctx.params.name];
    ctx.set('Cache-Control', 'max-age=86400');
    ctx.body = body;
  });

  // Until the server wires statusRoutes itself (with the tape tier, streams and metrics),
  // passing the server here serves the status page over its own data.
  if (opts.server) statusRoutes(router, serverStatusProvider(opts.server));
}
