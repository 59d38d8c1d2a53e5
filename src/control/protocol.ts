// Control socket protocol (version 1): JSON over HTTP/1.1 on a unix socket,
// `<dataDir>/control.sock` (mode 0600: only the server's user, and root).
// The CLI uses it when a running server holds the catalog.
//
//   GET  /v1/ping                     { service: 'tapedeck', protocol: 1, pid }
//   GET  /v1/jobs                     JobRecord[] (oldest first)
//   POST /v1/jobs                     { kind, targets, opts? } → 201 JobRecord (queued)
//   GET  /v1/jobs/<id>                JobRecord
//   GET  /v1/jobs/<id>/items          JobItem[]
//   GET  /v1/jobs/<id>/watch          NDJSON: the record now, then on every change, until done/failed
//   GET  /v1/tape                     TapeStatus (`tape ls`)
//   POST /v1/tape/label               { labels: string[], force? } → LabelResult[]
//   POST /v1/tape/export              { label } → { label, offline: true }
//   POST /v1/items                    { targets?, tier?, sort? } → ListedItem[] (`tapedeck ls`)
//   GET  /v1/policy/plan              PolicyPlan (`tapedeck policy plan`)
//   POST /v1/policy/run               { plan, jobs: string[] } (one pass started now; follow the jobs)
//   POST /v1/scan                     NDJSON: { progress: ScanProgress }... then { result: { scan, library } } or { error }
//   GET  /v1/status                   the status page's snapshot, with absolute paths (the page shows them relative)
//
// The server always listens (tape tier or not); without a tape tier the job and tape
// endpoints answer NO_LIBRARY (exit code 3).
//
// Errors: HTTP status by class and a body { error: { code, message } } where
// code is an ArchiveErrorCode; the client rebuilds the ArchiveError, so the CLI
// prints the same message and exits with the same code as in direct mode.

import type { ArchiveErrorCode } from '../archive/errors.js';

export const PROTOCOL_VERSION = 1;
export const SOCKET_NAME = 'control.sock';
export const MAX_BODY = 1 << 20;

export interface ErrorBody {
  error: { code: ArchiveErrorCode; message: string };
}

export function statusOf(code: ArchiveErrorCode): number {
  switch (code) {
    case 'NOT_FOUND':
      return 404;
    case 'INVALID':
      return 400;
    case 'OFFLINE':
    case 'NO_ROOM':
    case 'NO_SPACE':
    case 'NO_DRIVE':
    case 'BUSY':
      return 409;
    case 'NO_LIBRARY':
      return 503;
    default:
      return 500;
  }
}
