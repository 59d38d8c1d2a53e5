// HTTP media delivery: `GET|HEAD /media/<id>` (optionally `/media/<id>.<ext>`, the extension
// only helps clients that guess types from URLs; for media any extension is taken, as MiniDLNA
// takes `/MediaItems/<id>.<anything>`: the item's bytes are what they are, DIDL-Lite names the
// item's own extension, and a saved URL keeps working if a rescan changes the extension's source.
// Art (always JPEG) and subtitles (the extension picks the format) restrict it). Koa has no Range support, so this module
// implements byte ranges, conditional requests and the DLNA transport headers itself.
//
// Safety: the ID taken from the URL is only ever used as a catalog key (through the
// resolver); it is never joined to a path. IDs with characters outside a conservative
// alphabet are refused before the resolver sees them.
//
// Streaming: bodies are streamed in large chunks and never buffered whole. A disk file
// (a source with `openFile`) is written to the response by file-body.ts: large reads into a
// few reused buffers, each written straight to the socket (Koa's body piping is bypassed with
// `ctx.respond = false` once status and headers are set; they go out with the first bytes).
// Other sources (tape) are streams piped through a length guard. When the client goes away the
// file is closed (or the source stream destroyed) at once and the AbortSignal given to `open`
// fires, so a tape source can cancel its stager request.

import { constants as fsConstants, createReadStream, fstatSync } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { Transform, pipeline, type TransformCallback } from 'node:stream';
import type { Context } from 'koa';
import type { Router } from '@koa/router';
import { parseRange, contentRange, unsatisfiedRange, type RangeResult } from './range.js';
import { writeFileBody } from './file-body.js';
import { etagOf, evaluatePreconditions, ifRangeHolds } from './conditional.js';

export { etagOf };

export type TransferMode = 'Streaming' | 'Interactive';

/** What the server resolves an object ID to. */
export interface MediaSource {
  size: number;
  /** ms since epoch */
  mtime: number;
  mime: string;
  /** DLNA 4th protocolInfo field, e.g. `DLNA.ORG_PN=MP3;DLNA.ORG_OP=01;...` */
  contentFeatures: string;
  /** Transfer mode announced when the client does not name one. */
  transferMode: TransferMode;
  tier: 'disk' | 'tape';
  /**
   * Bytes [start, end] (end inclusive). May reject before any byte is sent; an error with a
   * numeric `status` (and optional `headers`, e.g. `{ 'Retry-After': '120' }`) becomes that
   * HTTP answer, as Koa does for http-errors. `signal` fires when the client is gone.
   */
  open(start: number, end: number, signal: AbortSignal): Promise<NodeJS.ReadableStream> | NodeJS.ReadableStream;
  /**
   * A file on disk: the opened file, which delivery reads and closes itself (instead of calling
   * `open`). Rejects like `open` (e.g. a `status` 404 when the file is gone).
   */
  openFile?(signal: AbortSignal): Promise<FileHandle>;
  /**
   * HEAD of bytes [start, end] (end < start: an empty body): resolves when a GET would start a body, or rejects with the error
   * `open`/`openFile` would (a gone file, an offline cartridge), without reading any byte or
   * mounting anything, so HEAD answers what GET would. Without it HEAD assumes GET succeeds.
   */
  check?(start: number, end: number, signal: AbortSignal): Promise<void>;
}

export type Resolver = (id: string) => Promise<MediaSource | undefined>;

/** A body that started streaming (for status pages and metrics). */
export interface StreamStart {
  id: string;
  tier: 'disk' | 'tape';
  /** First and last byte (inclusive) of the body, and the resource size. */
  start: number;
  end: number;
  size: number;
  /** TCP peer address of the client. */
  remote: string;
  userAgent?: string;
  /** ms since epoch when the body started. */
  startedAt: number;
  /** Time `open()` took (ms): what a client waited for the source before the first byte. */
  openMs: number;
  /** Bytes handed to the HTTP response so far. */
  bytes(): number;
}

export interface StreamEvent {
  id: string;
  tier: 'disk' | 'tape';
  /** Bytes handed to the HTTP response. */
  bytes: number;
  /** True when the response did not complete (client disconnected or source failed). */
  aborted: boolean;
  /** The object given to onStreamStart for this body. */
  stream?: StreamStart;
}

export interface MediaRouteOptions {
  /**
   * Whether the client may get a transfer mode the item does not support (a client-profile
   * quirk); otherwise such a request gets 406 Not Acceptable, as the DLNA guidelines ask.
   */
  lenientTransferMode?(headers: Context['headers'], remote: string | undefined): boolean;
  /** Called once per streamed body (GET 200/206), when the response is over. */
  onStream?(ev: StreamEvent): void;
  /** Called once per streamed body when its source is open and bytes start to flow. Errors thrown are ignored. */
  onStreamStart?(s: StreamStart): void;
  /**
   * Samsung's `getCaptionInfo.sec: 1` on a GET or HEAD of a video: the subtitle URL sent back in
   * `CaptionInfo.sec`, or undefined (no subtitle, or the client's profile does not ask for it).
   */
  captionInfo?(id: string, ctx: Context): Promise<string | undefined>;
  /**
   * Samsung's `getMediaInfo.sec: 1` on a GET or HEAD: the value of `MediaInfo.sec`
   * (`SEC_Duration=<ms>;`, the duration its players show and seek by), or undefined (unknown).
   */
  mediaInfo?(id: string, ctx: Context): Promise<string | undefined>;
  /** Content-Type for this request (a client profile's MIME override), given the item's MIME type. */
  mimeFor?(mime: string, ctx: Context): string;
  /** Which IDs the route takes (default isValidMediaId; the art route also takes container IDs with `/`). */
  validId?(id: string): boolean;
  /**
   * The resolver gets the name with its extension only, never retried without it (subtitles: the
   * extension chooses the format, and a name with an extension the item does not have is 404).
   */
  extensionMatters?: boolean;
  /**
   * Extensions (lower case) the route strips from `<id>.<ext>`; any other is 404 (art: always
   * JPEG, so `.png` must not deliver JPEG bytes). Default: any extension.
   */
  extensions?: readonly string[];
}

/** Read chunk size of disk streams (also the high-water mark of the pipe to the socket). */
export const CHUNK_SIZE = 512 * 1024;

/** Characters an object ID may contain in a media URL; no `/`, `\`, `%` or controls. */
const ID_RE = /^[A-Za-z0-9_~$@!+=:.-]{1,256}$/;
const EXT_RE = /^[A-Za-z0-9]{1,8}$/;

export function isValidMediaId(id: string): boolean {
  return ID_RE.test(id) && id !== '.' && id !== '..';
}

/** Seconds a client is told to wait after a file turned out shorter than catalogued (its rescan is quick). */
export const STALE_RETRY_AFTER = 5;

/** A source reading a file on disk. */
export function diskSource(
  path: string,
  size: number,
  mtime: number,
  mime: string,
  contentFeatures: string,
  transferMode: TransferMode = 'Streaming',
  /**
   * The file is shorter than `size` (truncated since it was catalogued): called with its size now,
   * before the request is answered 503 + Retry-After, so the catalog can learn it (a rescan of it).
   */
  onStale?: (actualSize: number) => void,
): MediaSource {
  async function openChecked(signal: AbortSignal): Promise<FileHandle> {
    signal.throwIfAborted();
    // Opening first (rather than letting a stream open lazily) surfaces ENOENT/EACCES
    // before any header is sent, so the client gets a proper status instead of a reset.
    // O_NOFOLLOW: the scanner catalogues no symbolic link, so a link found here was put over a
    // catalogued file since (e.g. to /etc/passwd): it is not followed, the item is not there.
    // O_NONBLOCK: a named pipe put there would hold a thread of libuv's pool in open(2) until a
    // writer came (four such requests stall every file read of the server); no effect on files.
    const fh = await openFile(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
      // deleted or moved since the last scan: the item is not there (the next scan drops it)
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'ELOOP') throw Object.assign(new Error('Not Found: the file of this item is gone'), { status: 404, expose: true });
      throw err;
    });
    // a directory or a pipe put over the file: not the item either (a read would fail mid-body)
    const st = fstatSync(fh.fd);
    if (!st.isFile()) {
      await fh.close().catch(() => {});
      throw Object.assign(new Error('Not Found: the file of this item is gone (not a regular file)'), { status: 404, expose: true });
    }
    // shorter than catalogued (truncated by another program since the scan): the Content-Length
    // promised from the catalog could not be kept, so no header goes out; the catalog learns the
    // new size (onStale) and the client's retry gets it. A file truncated after this point is cut
    // mid-body (file-body.ts): the connection ends, never a short body.
    if (st.size < size) {
      await fh.close().catch(() => {});
      onStale?.(st.size);
      throw Object.assign(new Error(`Service Unavailable: the file of this item is shorter than catalogued (${st.size} of ${size} bytes; changed since the scan), it is being catalogued again`), {
        status: 503,
        expose: true,
        headers: { 'Retry-After': String(STALE_RETRY_AFTER) },
      });
    }
    if (signal.aborted) {
      await fh.close().catch(() => {});
      throw signal.reason;
    }
    return fh;
  }
  return {
    size,
    mtime,
    mime,
    contentFeatures,
    transferMode,
    tier: 'disk',
    openFile: openChecked,
    async check(_start, _end, signal) {
      await (await openChecked(signal)).close();
    },
    async open(start, end, signal) {
      const fh = await openChecked(signal);
      const stream = createReadStream('', { fd: fh, start, end, highWaterMark: CHUNK_SIZE, autoClose: true });
      const onAbort = () => stream.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
      return stream;
    },
  };
}

/** Passes exactly `expected` bytes through; fails if the source ends short or runs long. */
class LengthGuard extends Transform {
  count = 0;
  constructor(private readonly expected: number) {
    super({ readableHighWaterMark: CHUNK_SIZE, writableHighWaterMark: CHUNK_SIZE });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.count > this.expected) cb(new Error(`media source produced more than the ${this.expected} bytes asked for`));
    else cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.count !== this.expected) cb(new Error(`media source ended after ${this.count} of ${this.expected} bytes`));
    else cb();
  }
}

const TRANSFER_MODES: Record<string, string> = {
  streaming: 'Streaming',
  interactive: 'Interactive',
  background: 'Background',
};

// ---- the route --------------------------------------------------------------------------

async function lookup(resolve: Resolver, name: string, valid: (id: string) => boolean, exact = false, exts?: readonly string[]): Promise<{ id: string; src: MediaSource } | undefined> {
  if (valid(name)) {
    const src = await resolve(name);
    if (src) return { id: name, src };
  }
  if (exact) return undefined;
  // `<id>.<ext>`: try again without the extension.
  const dot = name.lastIndexOf('.');
  const ext = name.slice(dot + 1);
  if (dot > 0 && EXT_RE.test(ext) && (!exts || exts.includes(ext.toLowerCase()))) {
    const id = name.slice(0, dot);
    if (valid(id)) {
      const src = await resolve(id);
      if (src) return { id, src };
    }
  }
  return undefined;
}

/**
 * The DLNA request header this server cannot honour, or undefined: TimeSeekRange.dlna.org (it
 * offers byte seek only) or PlaySpeed.dlna.org other than speed=1, when the request has no
 * byte Range to fall back on (with one, the Range is served, as MiniDLNA does). A Range header
 * that is not one byte range (another unit, garbage, several ranges) is no fall-back: it would
 * be ignored, and the time seek answered with the whole body from byte 0.
 */
export function unsupportedDlnaSeek(headers: Context['headers'], range: RangeResult = parseRange(headers.range, 0)): string | undefined {
  if (range.kind === 'range' || range.kind === 'unsatisfiable') return undefined;
  if (headers['timeseekrange.dlna.org'] !== undefined) return 'TimeSeekRange.dlna.org';
  const speed = headers['playspeed.dlna.org'];
  if (speed !== undefined && !/^\s*speed\s*=\s*1(\.0*)?\s*$/i.test(String(speed))) return 'PlaySpeed.dlna.org';
  return undefined;
}

async function serve(ctx: Context, resolve: Resolver, opts: MediaRouteOptions): Promise<void> {
  const name = String((ctx as Context & { params?: Record<string, string> }).params?.name ?? '');
  const found = await lookup(resolve, name, opts.validId ?? isValidMediaId, opts.extensionMatters, opts.extensions);
  if (!found) {
    ctx.status = 404;
    ctx.body = 'Not Found';
    return;
  }
  const { id, src } = found;
  const { size } = src;
  ctx.state.tier = src.tier; // for request metrics by tier
  const nowSec = Math.floor(Date.now() / 1000);
  // RFC 9110 8.8.2.1: a Last-Modified is never later than now (a file stamped in the future,
  // e.g. by a camera's wrong clock, is said to be modified now); the ETag keeps the real mtime
  const lastModSec = Math.min(Math.floor(src.mtime / 1000), nowSec);
  const etag = etagOf(size, src.mtime);
  const askFeatures = ctx.headers['getcontentfeatures.dlna.org'];
  if (askFeatures !== undefined && String(askFeatures).trim() !== '1') {
    // DLNA: the only valid value is 1; anything else is a bad request (as MiniDLNA answers)
    ctx.status = 400;
    ctx.body = 'Bad Request: getcontentFeatures.dlna.org must be 1';
    return;
  }

  ctx.set('Accept-Ranges', 'bytes');
  ctx.set('ETag', etag);
  ctx.set('Last-Modified', new Date(lastModSec * 1000).toUTCString());
  const asked = ctx.headers['transfermode.dlna.org'];
  // unknown values are ignored (the item's own mode is used); a known mode the item does not
  // support (Interactive for audio/video, Streaming for an image) is refused
  const mode = typeof asked === 'string' ? TRANSFER_MODES[asked.trim().toLowerCase()] : undefined;
  if (mode && mode !== 'Background' && mode !== src.transferMode && !opts.lenientTransferMode?.(ctx.headers, ctx.req.socket.remoteAddress)) {
    ctx.status = 406;
    ctx.body = `Not Acceptable: transferMode ${mode} is not supported for this item (${src.transferMode} or Background)`;
    return;
  }
  ctx.set('transferMode.dlna.org', mode ?? src.transferMode);
  let range = parseRange(ctx.headers.range, size);
  const unsupported = unsupportedDlnaSeek(ctx.headers, range);
  if (unsupported) {
    // DLNA 7.3.33.4: the contentFeatures say DLNA.ORG_OP=01 (byte seek only) and no
    // PS= (normal speed only); a time seek or trick-mode speed without a byte Range is refused
    ctx.status = 406;
    ctx.body = `Not Acceptable: ${unsupported} is not supported for this item (seek with a byte Range)`;
    return;
  }
  if (askFeatures !== undefined) {
    ctx.set('contentFeatures.dlna.org', src.contentFeatures);
  }
  if (opts.captionInfo && ctx.headers['getcaptioninfo.sec']?.toString().trim() === '1') {
    const url = await opts.captionInfo(id, ctx);
    if (url) ctx.set('CaptionInfo.sec', url);
  }
  if (opts.mediaInfo && ctx.headers['getmediainfo.sec']?.toString().trim() === '1') {
    const info = await opts.mediaInfo(id, ctx);
    if (info) ctx.set('MediaInfo.sec', info);
  }

  const pre = evaluatePreconditions(ctx.headers, etag, lastModSec, nowSec);
  if (pre === 'not-modified') {
    ctx.status = 304;
    return;
  }
  if (pre === 'failed') {
    ctx.status = 412;
    ctx.body = 'Precondition Failed';
    return;
  }

  if ((range.kind === 'range' || range.kind === 'unsatisfiable') && !ifRangeHolds(ctx.headers, etag, lastModSec, nowSec)) {
    range = { kind: 'none' };
  }
  if (range.kind === 'unsatisfiable') {
    ctx.status = 416;
    ctx.set('Content-Range', unsatisfiedRange(size));
    ctx.body = 'Range Not Satisfiable';
    return;
  }

  let start = 0;
  let end = size - 1;
  if (range.kind === 'range') {
    ({ start, end } = range);
    ctx.status = 206;
    ctx.set('Content-Range', contentRange(start, end, size));
  } else {
    ctx.status = 200;
  }
  const length = end - start + 1;
  // Set verbatim: ctx.type would append a charset to text/* types.
  ctx.set('Content-Type', opts.mimeFor?.(src.mime, ctx) ?? src.mime);
  ctx.set('Content-Length', String(length));

  // HEAD, and an empty body (nothing to read): the source says whether GET would get its bytes
  // (a gone file, an offline cartridge) without reading them, so HEAD answers what GET would and
  // an empty file deleted since the scan is 404 as any other; its error is answered as GET's
  // would be (Koa's onerror: err.status and err.headers, e.g. 503 with Retry-After).
  if (ctx.method === 'HEAD' || length === 0) {
    if (src.check) {
      const gone = new AbortController();
      const onClose = () => gone.abort(new Error('client disconnected'));
      ctx.res.once('close', onClose);
      try {
        await src.check(start, end, gone.signal);
      } catch (err) {
        if (!gone.signal.aborted) throw err;
        ctx.respond = false; // the client left while the source found out (e.g. waited for the staging worker)
        ctx.state.clientClosed = true;
        return;
      } finally {
        ctx.res.off('close', onClose);
      }
    }
    if (ctx.method !== 'HEAD') ctx.body = Buffer.alloc(0);
    return;
  }

  const res = ctx.res;
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort(new Error('client disconnected'));
  };
  res.once('close', onClose);

  let opened: { file: FileHandle } | { source: NodeJS.ReadableStream };
  const openedAt = Date.now();
  try {
    opened = src.openFile ? { file: await src.openFile(abort.signal) } : { source: await src.open(start, end, abort.signal) };
  } catch (err) {
    res.off('close', onClose);
    if (abort.signal.aborted) {
      ctx.respond = false; // nobody is listening any more
      ctx.state.clientClosed = true;
      return;
    }
    throw err; // Koa answers err.status (500 without one); headers set above are reset by its onerror
  }
  if (abort.signal.aborted) {
    if ('file' in opened) await opened.file.close().catch(() => {});
    else destroyQuietly(opened.source);
    ctx.respond = false;
    ctx.state.clientClosed = true;
    return;
  }

  let bytes: () => number;
  let finished: (cb: (aborted: boolean) => void) => void;
  if ('file' in opened) {
    // written by file-body.ts, not piped by Koa: status and headers set above go out with the first bytes
    ctx.respond = false;
    const body = writeFileBody(res, opened.file, start, length);
    bytes = () => body.bytes;
    finished = (cb) =>
      void body.done.then(({ complete, error }) => {
        // as Koa does for a failed body stream (the connection is cut already): reported to the app's error log
        if (error) ctx.onerror(error);
        cb(!complete);
      });
  } else {
    const { source } = opened;
    const guard = new LengthGuard(length);
    reportOnce(ctx);
    pipeline(source, guard, () => {
      /* errors end the response through the guard; nothing else to do */
    });
    bytes = () => guard.count;
    finished = (cb) =>
      res.once('close', () => {
        // Koa destroys the body stream (the guard) on close, and pipeline() then destroys the
        // source; make sure of it even if Koa's behaviour changes.
        if (!res.writableFinished) {
          guard.destroy();
          destroyQuietly(source);
        }
        cb(!res.writableFinished);
      });
    ctx.body = guard;
  }
  const now = Date.now();
  const started: StreamStart = {
    id,
    tier: src.tier,
    start,
    end,
    size,
    remote: ctx.req.socket.remoteAddress ?? '',
    userAgent: ctx.get('user-agent') || undefined,
    startedAt: now,
    openMs: now - openedAt,
    bytes,
  };
  try {
    opts.onStreamStart?.(started);
  } catch {
    // an observer must not break delivery
  }
  finished((aborted) => opts.onStream?.({ id, tier: src.tier, bytes: bytes(), aborted, stream: started }));
}

/**
 * Koa reports a body stream that fails twice: from its pipeline(body, res) callback and from its
 * on-finished hook, as the response's socket is destroyed with the same error. One report (one
 * 'http error' line) per error object for this request.
 */
function reportOnce(ctx: Context): void {
  const onerror = ctx.onerror.bind(ctx);
  const seen = new WeakSet<object>();
  ctx.onerror = (err) => {
    if (err !== null && typeof err === 'object') {
      if (seen.has(err)) return;
      seen.add(err);
    }
    onerror(err);
  };
}

function destroyQuietly(s: NodeJS.ReadableStream): void {
  const d = s as NodeJS.ReadableStream & { destroy?: (err?: Error) => void };
  if (typeof d.destroy === 'function') d.destroy();
}

/** Registers `GET|HEAD /media/:id` and `/media/:id.:ext` (or `path`, with a `:name` parameter) on `router`. */
export function mediaRoutes(router: Router, resolve: Resolver, opts: MediaRouteOptions = {}, path = '/media/:name'): void {
  router.get(path, (ctx) => serve(ctx as unknown as Context, resolve, opts));
}
