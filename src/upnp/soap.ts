// SOAP control layer (UDA 1.0 §3): request parsing, response and fault envelopes,
// and the Koa route that dispatches control requests to a service's actions.
//
// Error mapping (what a control point sees):
//   - body not XML, not well-formed, or carrying a DTD (<!DOCTYPE/<!ENTITY: refused
//     up front, so no entity tricks such as billion laughs or XXE ever reach the
//     parser)                                     → HTTP 400, text/plain (SoapParseError)
//   - no/unreadable SOAPACTION header, no Envelope/Body/action element, action or
//     service type not matching the header, unknown action → UPnP fault 401
//   - arguments that are not simple elements, duplicated, or badly named → 402
//   - UpnpError thrown by an action                  → fault with its code
//   - anything else thrown by an action              → fault 501 (logged)
//   - body past maxBodyBytes                         → HTTP 413 (read stops there)
//   - body not complete within bodyTimeoutMs         → HTTP 408
//   - method other than POST                         → HTTP 405, Allow: POST
//   - Content-Type not XML                           → HTTP 415
// Faults are HTTP 500 with the standard UPnPError detail, as UDA requires.

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Context } from 'koa';
import type { Router } from '@koa/router';
import { lazyImport } from '../util/lazy.js';
import { escAttr, escText, EscapedText, XML_DECL } from '../util/xml.js';
import type { ClientProfile } from './clients.js';
import { readSimpleXml, type XNode } from './soap-xml.js';
import { crossOriginOf, socketBaseUrl } from '../http/own-host.js';

export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const SOAP_ENCODING = 'http://schemas.xmlsoap.org/soap/encoding/';
export const UPNP_CONTROL_NS = 'urn:schemas-upnp-org:control-1-0';

/** Standard descriptions of the UPnP error codes Tapedeck uses (UDA 1.0, CDS:1, CMS:1). */
export const UPNP_ERRORS: Readonly<Record<number, string>> = Object.freeze({
  401: 'Invalid Action',
  402: 'Invalid Args',
  501: 'Action Failed',
  701: 'No such object',
  708: 'Unsupported or invalid search criteria',
  709: 'Unsupported or invalid sort criteria',
  710: 'No such container',
  720: 'Cannot process the request',
});

export class UpnpError extends Error {
  constructor(
    public code: number,
    message: string = UPNP_ERRORS[code] ?? 'Action Failed',
  ) {
    super(message);
    this.name = 'UpnpError';
  }
}

/** The request is not acceptable XML at all (answered with HTTP 400, not a fault). */
export class SoapParseError extends Error {
  readonly status = 400;
  constructor(message: string) {
    super(message);
    this.name = 'SoapParseError';
  }
}

export interface SoapRequest {
  serviceType: string;
  action: string;
  args: Record<string, string>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const FORBIDDEN_ARG = new Set(['__proto__', 'constructor', 'prototype']);
const DTD = /<!(DOCTYPE|ENTITY)/i;

/**
 * Parses `"urn:schemas-upnp-org:service:ContentDirectory:1#Browse"` (quotes optional).
 * Returns undefined when the header is missing or unusable.
 */
export function parseSoapAction(header: string | string[] | undefined): { serviceType: string; action: string } | undefined {
  if (header === undefined) return undefined;
  let h = (Array.isArray(header) ? header[0] ?? '' : header).trim();
  if (h.length >= 2 && h.startsWith('"') && h.endsWith('"')) h = h.slice(1, -1).trim();
  const hash = h.lastIndexOf('#');
  if (hash <= 0) return undefined;
  const serviceType = h.slice(0, hash);
  const action = h.slice(hash + 1);
  if (!NAME.test(action) || /\s/.test(serviceType)) return undefined;
  return { serviceType, action };
}

function localName(qname: string): string {
  const i = qname.indexOf(':');
  return i < 0 ? qname : qname.slice(i + 1);
}

function prefixOf(qname: string): string | undefined {
  const i = qname.indexOf(':');
  return i < 0 ? undefined : qname.slice(0, i);
}

/** Child element lists of an xml2js node, keyed by qualified name. */
function childLists(node: XNode): [string, XNode[]][] {
  const out: [string, XNode[]][] = [];
  for (const k of Object.keys(node)) {
    if (k === '$' || k === '_') continue;
    out.push([k, node[k] as XNode[]]);
  }
  return out;
}

function onlyChild(node: XNode, local: string, what: string): XNode {
  const hits = childLists(node).filter(([k]) => localName(k) === local);
  if (hits.length !== 1 || hits[0][1].length !== 1) {
    throw new UpnpError(401, `Invalid Action: SOAP ${what} ${hits.length ? 'repeated' : 'missing'}`);
  }
  const n = hits[0][1][0];
  return typeof n === 'object' && n !== null ? n : ({} as XNode);
}

/** xml2js (with sax and xmlbuilder, ~0.8 MB of V8 heap), loaded for the first request soap-xml.ts leaves to it. */
const xml2js = lazyImport(() => import('xml2js'));

/** The xml2js reading of a request (the reference; soap-xml.ts reads the plain ones the same way, faster). */
export async function parseXml2js(text: string): Promise<unknown> {
  const { parseStringPromise } = await xml2js();
  try {
    return await parseStringPromise(text, {
      strict: true,
      async: false,
      explicitArray: true,
      explicitRoot: true,
      explicitCharkey: true,
      charkey: '_',
      attrkey: '$',
      trim: false,
      normalize: false,
      emptyTag: '',
    });
  } catch (e) {
    const first = String((e as Error).message ?? e).split('\n')[0];
    throw new SoapParseError(`malformed XML in SOAP request: ${first}`);
  }
}

/**
 * Parses a SOAP control request and checks it against the SOAPACTION header.
 * Lenient about namespace prefixes (s:, SOAP-ENV:, none; any prefix on the action,
 * even an undeclared one); strict about everything that decides what runs.
 */
export async function parseSoapRequest(
  body: string | Buffer,
  soapActionHeader: string | string[] | undefined,
): Promise<SoapRequest> {
  let text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.includes('<!') && DTD.test(text)) throw new SoapParseError('DTDs are not accepted in SOAP requests (<!DOCTYPE/<!ENTITY refused)');
  if (!/\S/.test(text)) throw new SoapParseError('empty SOAP request body');

  const hdr = parseSoapAction(soapActionHeader);
  if (!hdr) throw new UpnpError(401, 'Invalid Action: missing or malformed SOAPACTION header');

  // the plain XML of every control point is read by soap-xml.ts; anything else by xml2js
  let doc: unknown = readSimpleXml(text);
  if (!doc) doc = await parseXml2js(text);
  if (!doc || typeof doc !== 'object') throw new SoapParseError('malformed XML in SOAP request: no root element');

  const [rootName, root] = Object.entries(doc as Record<string, XNode>)[0];
  if (localName(rootName) !== 'Envelope') throw new UpnpError(401, `Invalid Action: root element is <${rootName}>, not a SOAP Envelope`);
  const envelope = typeof root === 'object' && root !== null ? root : ({} as XNode);
  const bodyNode = onlyChild(envelope, 'Body', 'Body');

  const actions = childLists(bodyNode);
  if (actions.length !== 1 || actions[0][1].length !== 1) {
    throw new UpnpError(401, `Invalid Action: SOAP Body must hold exactly one action element (found ${actions.reduce((n, [, l]) => n + l.length, 0)})`);
  }
  const [actionQName, [actionEl]] = actions[0];
  const action = localName(actionQName);
  if (action !== hdr.action) {
    throw new UpnpError(401, `Invalid Action: body action ${action} does not match SOAPACTION ${hdr.action}`);
  }
  const actionNode: XNode = typeof actionEl === 'object' && actionEl !== null ? actionEl : ({} as XNode);

  // The action element's namespace must be the service type of the header, when it
  // is declared at all (some control points leave the prefix unbound).
  const prefix = prefixOf(actionQName);
  const nsAttr = prefix ? `xmlns:${prefix}` : 'xmlns';
  const ns = actionNode.$?.[nsAttr] ?? bodyNode.$?.[nsAttr] ?? envelope.$?.[nsAttr];
  if (ns !== undefined && ns !== hdr.serviceType) {
    throw new UpnpError(401, `Invalid Action: action namespace ${ns} does not match SOAPACTION service ${hdr.serviceType}`);
  }

  const args: Record<string, string> = {};
  for (const [qname, list] of childLists(actionNode)) {
    const name = localName(qname);
    if (!NAME.test(name) || FORBIDDEN_ARG.has(name)) throw new UpnpError(402, `Invalid Args: bad argument name ${JSON.stringify(name)}`);
    if (list.length !== 1 || Object.prototype.hasOwnProperty.call(args, name)) {
      throw new UpnpError(402, `Invalid Args: argument ${name} given more than once`);
    }
    const v = list[0];
    if (typeof v === 'string') {
      args[name] = v;
      continue;
    }
    if (typeof v !== 'object' || v === null) {
      args[name] = '';
      continue;
    }
    if (childLists(v).length > 0) throw new UpnpError(402, `Invalid Args: argument ${name} must be a simple value, not structured XML`);
    args[name] = typeof v._ === 'string' ? v._ : '';
  }
  return { serviceType: hdr.serviceType, action, args };
}

export type SoapValue = string | number | EscapedText;
export type SoapOut = Record<string, SoapValue> | [string, SoapValue][];

function envelope(inner: string): string {
  return (
    `${XML_DECL}\n<s:Envelope xmlns:s="${SOAP_ENV_NS}" s:encodingStyle="${SOAP_ENCODING}">` +
    `<s:Body>${inner}</s:Body></s:Envelope>`
  );
}

/**
 * Success envelope: `<u:ActionResponse xmlns:u="serviceType">` with the out-arguments
 * in the given order, values escaped (a DIDL-Lite Result travels as escaped text; an
 * EscapedText value is written as it is).
 */
export function soapResponse(serviceType: string, action: string, out: SoapOut): string {
  if (!NAME.test(action)) throw new Error(`soapResponse: bad action name ${JSON.stringify(action)}`);
  const pairs = Array.isArray(out) ? out : Object.entries(out);
  let inner = '';
  for (const [name, value] of pairs) {
    if (!NAME.test(name)) throw new Error(`soapResponse: bad argument name ${JSON.stringify(name)}`);
    // a number's text has nothing to escape
    inner += `<${name}>${value instanceof EscapedText ? value.text : typeof value === 'number' ? String(value) : escText(value)}</${name}>`;
  }
  const [open, close] = responseTags(serviceType, action);
  return open + inner + close;
}

/** The envelope around a response's arguments, per service and action (a few of each: kept once made). */
const responseEnds = new Map<string, [string, string]>();
const MAX_RESPONSE_ENDS = 256;

function responseTags(serviceType: string, action: string): [string, string] {
  const key = `${action}#${serviceType}`;
  let ends = responseEnds.get(key);
  if (!ends) {
    const [open, close] = envelope(`<u:${action}Response xmlns:u="${escAttr(serviceType)}">\u0000</u:${action}Response>`).split('\u0000');
    ends = [open, close];
    if (responseEnds.size < MAX_RESPONSE_ENDS) responseEnds.set(key, ends);
  }
  return ends;
}

/** Standard UPnP fault envelope (sent with HTTP 500). */
export function soapFault(code: number, description: string = UPNP_ERRORS[code] ?? 'Action Failed'): string {
  return envelope(
    '<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>' +
      `<UPnPError xmlns="${UPNP_CONTROL_NS}"><errorCode>${Math.trunc(code)}</errorCode>` +
      `<errorDescription>${escText(description)}</errorDescription></UPnPError></detail></s:Fault>`,
  );
}

// ---------------------------------------------------------------------------
// Body reading

export class BodyTooLargeError extends Error {
  readonly status = 413;
  constructor(limit: number) {
    super(`request body larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

export class BodyTimeoutError extends Error {
  readonly status = 408;
  constructor(ms: number) {
    super(`request body not received within ${ms} ms`);
    this.name = 'BodyTimeoutError';
  }
}

export class BodyAbortedError extends Error {
  constructor() {
    super('client aborted the request body');
    this.name = 'BodyAbortedError';
  }
}

/**
 * Reads a stream into one Buffer, refusing (and no longer reading) once more than
 * `limit` bytes arrived. On refusal the stream is paused and left alone: the caller
 * answers and closes the connection, so the rest is never buffered.
 */
export function readBody(stream: Readable, limit: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise<Buffer>((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const finish = (err: Error | undefined, buf?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
      if (err) {
        stream.pause();
        reject(err);
      } else resolvePromise(buf!);
    };
    const onData = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += b.length;
      if (total > limit) return finish(new BodyTooLargeError(limit));
      chunks.push(b);
    };
    const onEnd = () => finish(undefined, Buffer.concat(chunks, total));
    const onError = (e: Error) => finish(e);
    const onClose = () => finish(new BodyAbortedError());
    const timer = setTimeout(() => finish(new BodyTimeoutError(timeoutMs)), timeoutMs);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

// ---------------------------------------------------------------------------
// Koa wiring

export interface SoapContext {
  /** http://host:port as the client addressed us (for URLs in answers). */
  baseUrl: string;
  remoteAddress: string;
  headers: Record<string, string | string[] | undefined>;
  client?: ClientProfile;
}

export type SoapAction = (args: Record<string, string>, ctx: SoapContext) => Promise<SoapOut>;

export interface SoapService {
  serviceType: string;
  actions: Record<string, SoapAction>;
}

export interface SoapLogger {
  error(obj: unknown, msg?: string): void;
  debug?(obj: unknown, msg?: string): void;
}

export interface SoapRouteOptions {
  /** Default 64 KiB. */
  maxBodyBytes?: number;
  /** Default 10 s. */
  bodyTimeoutMs?: number;
  detectClient?: (headers: IncomingHttpHeaders, remoteAddress: string) => ClientProfile;
  logger?: SoapLogger;
  /**
   * Called once per request answered with a SOAP envelope (response or fault; not for the
   * plain HTTP errors 400/405/408/413/415): the service type, the action name (`unknown`
   * when it is not one of this service's actions, so labels stay bounded), the UPnP fault
   * code or undefined on success, and the time spent in ms. Errors thrown are ignored.
   */
  onAction?(service: string, action: string, faultCode: number | undefined, ms: number): void;
  /**
   * The addresses the server listens on. A POST from a web page of another origin (its Origin
   * or Sec-Fetch-Site says so; a DNS-rebinding page's Origin names the attacker's host) gets
   * 403: a page must not browse the library, set bookmarks or start tape pre-staging. TVs and
   * control points send no Origin.
   */
  ownAddresses?: () => readonly string[];
}

const consoleLogger: SoapLogger = {
  error: (obj, msg) => console.error(msg ?? 'soap error', obj),
};

export const XML_CONTENT_TYPE = 'text/xml; charset="utf-8"';
const XML_TYPES = new Set(['text/xml', 'application/xml', 'application/soap+xml']);

/**
 * The base URL of the URLs handed to this client (DIDL-Lite res, art, subtitles, URLBase):
 * the socket's local address and port (http/own-host.ts), never the Host header, which any
 * client or DNS-rebinding page sets to a name of its choosing. The number of base URLs (and so
 * of DIDL cache variants) is bounded by the addresses the server listens on.
 */
export function requestBaseUrl(ctx: Context): string {
  return baseUrlOf(ctx.req);
}

/** requestBaseUrl of a plain Node request. */
export function baseUrlOf(req: IncomingMessage): string {
  return socketBaseUrl(req);
}

/** Whether the requested service type is ours, allowing a lower version (CDS:1 asked of CDS:2). */
function serviceMatches(requested: string, ours: string): boolean {
  if (requested === ours) return true;
  const m1 = /^(.*):(\d+)$/.exec(requested);
  const m2 = /^(.*):(\d+)$/.exec(ours);
  return !!m1 && !!m2 && m1[1] === m2[1] && Number(m1[2]) <= Number(m2[2]);
}

/** A control URL's answer, whoever sends it (the Koa route, or http/fast-control.ts). */
export interface ControlReply {
  status: number;
  /** In the order they are set (Content-Length is the sender's). */
  headers: [string, string][];
  body: string;
}

/** Answers one request to a control URL (any method). Never throws. */
export type ControlHandler = (req: IncomingMessage) => Promise<ControlReply>;

function fault(code: number, description?: string): ControlReply {
  return {
    status: 500,
    headers: [
      ['EXT', ''],
      ['Content-Type', XML_CONTENT_TYPE],
    ],
    body: soapFault(code, description),
  };
}

function plain(status: number, message: string, close = false, extra: [string, string][] = []): ControlReply {
  return { status, headers: [...extra, ['Content-Type', 'text/plain; charset=utf-8'], ...(close ? ([['Connection', 'close']] as [string, string][]) : [])], body: message + '\n' };
}

/** Decodes the body with the request's charset (UTF-8 unless told otherwise). */
function decodeBody(buf: Buffer, charset: string | undefined): string {
  const label = (charset ?? 'utf-8').trim().replace(/^"|"$/g, '').toLowerCase() || 'utf-8';
  if (label === 'utf-8' || label === 'utf8') return buf.toString('utf8');
  return new TextDecoder(label).decode(buf); // throws RangeError on unknown labels
}

/**
 * The handler of a service's control URL: POST dispatches on SOAPACTION, every other method
 * gets 405. See the header of this file for the error mapping.
 */
export function soapControl(service: SoapService, opts: SoapRouteOptions = {}): ControlHandler {
  const maxBody = opts.maxBodyBytes ?? 64 * 1024;
  const timeoutMs = opts.bodyTimeoutMs ?? 10_000;
  const log = opts.logger ?? consoleLogger;
  const actions = new Map(Object.entries(service.actions));

  return async (http: IncomingMessage): Promise<ControlReply> => {
    const t0 = performance.now();
    const report = (name: string | undefined, code: number | undefined) => {
      if (!opts.onAction) return;
      try {
        opts.onAction(service.serviceType, name !== undefined && actions.has(name) ? name : 'unknown', code, performance.now() - t0);
      } catch {
        // an observer must not break the control URL
      }
    };
    if (http.method !== 'POST') return plain(405, 'Method Not Allowed: SOAP control URLs take POST', false, [['Allow', 'POST']]);
    const foreign = crossOriginOf(http, opts.ownAddresses?.() ?? []);
    if (foreign) return plain(403, `Forbidden: ${foreign}`, true);

    const ctype = http.headers['content-type'];
    let charset: string | undefined;
    if (ctype) {
      const [mime, ...params] = ctype.split(';');
      if (!XML_TYPES.has(mime.trim().toLowerCase())) {
        return plain(415, `Unsupported Media Type: expected text/xml, got ${mime.trim()}`, true);
      }
      for (const p of params) {
        const [k, v] = p.split('=');
        if (k?.trim().toLowerCase() === 'charset' && v) charset = v;
      }
    }

    const declared = http.headers['content-length'];
    if (declared && Number(declared) > maxBody) {
      return plain(413, `Payload Too Large: SOAP requests are limited to ${maxBody} bytes`, true);
    }

    let text: string;
    try {
      const buf = await readBody(http, maxBody, timeoutMs);
      text = decodeBody(buf, charset);
    } catch (e) {
      if (e instanceof BodyTooLargeError) return plain(413, `Payload Too Large: SOAP requests are limited to ${maxBody} bytes`, true);
      if (e instanceof BodyTimeoutError) return plain(408, 'Request Timeout: SOAP body incomplete', true);
      if (e instanceof RangeError) return plain(415, `Unsupported Media Type: unknown charset ${charset}`, true);
      // Client went away or the socket failed: nobody is left to answer.
      return plain(400, 'Bad Request: body not received', true);
    }

    const remoteAddress = http.socket.remoteAddress ?? '';
    const soapCtx: SoapContext = {
      baseUrl: baseUrlOf(http),
      remoteAddress,
      headers: http.headers,
      client: opts.detectClient?.(http.headers, remoteAddress),
    };

    let req: SoapRequest;
    try {
      req = await parseSoapRequest(text, http.headers['soapaction']);
    } catch (e) {
      if (e instanceof SoapParseError) return plain(400, `Bad Request: ${e.message}`);
      const headerAction = parseSoapAction(http.headers['soapaction'])?.action;
      if (e instanceof UpnpError) {
        report(headerAction, e.code);
        return fault(e.code, e.message);
      }
      log.error({ err: e }, 'SOAP request parsing failed unexpectedly');
      report(headerAction, 501);
      return fault(501);
    }

    if (!serviceMatches(req.serviceType, service.serviceType)) {
      report(undefined, 401);
      return fault(401, `Invalid Action: this control URL serves ${service.serviceType}, not ${req.serviceType}`);
    }
    const handler = actions.get(req.action);
    if (!handler) {
      report(undefined, 401);
      return fault(401, `Invalid Action: ${req.action}`);
    }

    let out: SoapOut;
    try {
      out = await handler(req.args, soapCtx);
    } catch (e) {
      if (e instanceof UpnpError) {
        report(req.action, e.code);
        return fault(e.code, e.message);
      }
      log.error({ err: e, action: req.action, serviceType: service.serviceType }, `SOAP action ${req.action} failed`);
      report(req.action, 501);
      return fault(501);
    }
    const body = soapResponse(service.serviceType, req.action, out);
    report(req.action, undefined);
    return {
      status: 200,
      headers: [
        ['EXT', ''],
        ['Content-Type', XML_CONTENT_TYPE],
      ],
      body,
    };
  };
}

/**
 * Mounts a service's control URL on `router` (soapControl's handler); returns the handler, so
 * the server can also answer it without Koa (http/fast-control.ts).
 */
export function soapRoutes(router: Router, path: string, service: SoapService, opts: SoapRouteOptions = {}): ControlHandler {
  const handle = soapControl(service, opts);
  router.all(path, async (ctx: Context) => {
    const r = await handle(ctx.req);
    ctx.status = r.status;
    for (const [k, v] of r.headers) ctx.set(k, v);
    ctx.body = r.body;
  });
  return handle;
}
