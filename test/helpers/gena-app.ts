// One GENA EventService served at /evt by a Koa app on 127.0.0.1, for the eventing tests.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { Router } from '@koa/router';
import type { EventService } from '../../src/upnp/gena.js';

/** Serves `svc` at /evt; close() closes the service, then the HTTP server. */
export async function serveEvents(svc: EventService): Promise<{ port: number; url: string; close(): Promise<void> }> {
  const app = new Koa();
  app.silent = true;
  const router = new Router();
  svc.routes(router, '/evt');
  app.use(router.routes());
  const srv = http.createServer(app.callback());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}/evt`,
    close: async () => {
      await svc.close();
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    },
  };
}
