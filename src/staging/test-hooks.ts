// Test hooks of the staging worker (`debug` messages), honoured only by a worker
// started with testHooks: probe the sandbox (read a file, open a connection) and
// inject faults (tape read errors, cache write and sync errors).

import { readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import type { TapeLibrary } from '../tape/types.js';
import { StagerError, type ClientMessage } from './protocol.js';

export interface TestHookHost {
  readonly testHooks: boolean;
  readonly lib: TapeLibrary;
  /** Cache writes fail with `errno` after `after` more bytes. */
  injectCacheError(errno: string, after: number): void;
  /** The next `count` syncs (fdatasync) of finished cache segments fail with `errno`. */
  injectSyncError(errno: string, count: number): void;
}

export async function debugOp(host: TestHookHost, m: Extract<ClientMessage, { t: 'debug' }>): Promise<unknown> {
  if (!host.testHooks) throw new StagerError({ code: 'DENIED', message: 'debug operations are disabled' });
  switch (m.op) {
    case 'readFile': {
      const buf = await readFile(String(m.path));
      return { bytes: buf.length };
    }
    case 'connect':
      return new Promise((resolve, reject) => {
        const sock = netConnect({ host: m.host ?? '127.0.0.1', port: Number(m.port) });
        const t = setTimeout(() => {
          sock.destroy();
          reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
        }, 3000);
        sock.once('connect', () => {
          clearTimeout(t);
          sock.destroy();
          resolve({ connected: true });
        });
        sock.once('error', (err) => {
          clearTimeout(t);
          reject(err);
        });
      });
    case 'injectCacheError':
      host.injectCacheError(String(m.errno ?? 'ENOSPC'), Number(m.after ?? 0));
      return { ok: true };
    case 'injectSyncError':
      host.injectSyncError(String(m.errno ?? 'EIO'), Number(m.count ?? 1));
      return { ok: true };
    case 'injectReadError': {
      const lib = host.lib as TapeLibrary & { injectReadError?: (label: string, block: number, o?: { count?: number }) => void };
      if (typeof lib.injectReadError !== 'function') throw new StagerError({ code: 'INVALID', message: 'the library cannot inject read errors' });
      lib.injectReadError(String(m.label), Number(m.block), { count: m.count ?? 1 });
      return { ok: true };
    }
  }
}
