// Icons from devices/icons and the presentation page (a read-only status page).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Router } from '@koa/router';
import { escText } from '../util/xml.js';
import type { TapedeckServer } from '../server.js';

const ICONS: Record<string, string> = {
  'icon-48.png': 'image/png',
  'icon-120.png': 'image/png',
  'icon-48.jpg': 'image/jpeg',
  'icon-120.jpg': 'image/jpeg',
};

export function staticRoutes(router: Router, opts: { devicesDir: string; server: TapedeckServer }): void {
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

  router.get('/status.json', async (ctx) => {
    ctx.body = await statusOf(opts.server);
  });
  router.get('/', async (ctx) => {
    const s = await statusOf(opts.server);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = `<!doctype html><html><head><meta charset="utf-8"><title>${escText(s.name)}</title></head><body>
<h1>${escText(s.name)}</h1>
<p>Tapedeck ${escText(s.version)} · ${s.library.items} items (${s.library.audio} audio, ${s.library.video} video, ${s.library.image} images) · SystemUpdateID ${s.systemUpdateId}</p>
<p>${s.scanning ? 'Scanning…' : 'Idle'}</p></body></html>`;
  });
}

export async function statusOf(server: TapedeckServer) {
  return {
    name: server.config.friendlyName,
    version: (await import('../server.js')).VERSION,
    uuid: server.uuid,
    systemUpdateId: server.catalog.systemUpdateId,
    library: await server.catalog.totals(),
    scanning: server.status.scanning,
    lastScan: server.status.lastScan,
    mediaDirs: server.mediaDirs,
    interfaces: server.interfaces.map((i) => ({ name: i.name, address: i.address })),
  };
}
