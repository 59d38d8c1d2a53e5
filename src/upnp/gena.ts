// UPnP eventing (GENA, UDA 1.0 §4) for one service: SUBSCRIBE / renewal / UNSUBSCRIBE
// handling and NOTIFY delivery to subscribers' callback URLs.
//
// Delivery model, per subscription:
// - The initial event (SEQ 0) carries every evented variable, read from the EventSource
//   when it is sent, which is after the SUBSCRIBE response has gone out (a control point
//   must know the SID before the first NOTIFY arrives).
// - notify() merges changes into the subscription's pending set; at most one NOTIFY is in
//   flight per subscription (so SEQ order is delivery order) and two NOTIFYs are at least
//   `moderationMs` apart. Changes made meanwhile coalesce: the next NOTIFY carries the latest
//   value of each changed variable (or a combined value, see `combine`).
// - A CALLBACK may list several URLs (a multi-homed control point names each of its
//   addresses); each NOTIFY tries them in order, starting with the one that took the last
//   NOTIFY, until one answers 2xx (UDA 1.0 §4.1.2). At most MAX_CALLBACKS are kept.
// - A NOTIFY that fails at every URL (network error, timeout, non-2xx) is retried with its variables
//   folded into the next one; after `maxFailures` consecutive failures, or a 412 from the
//   subscriber (it no longer knows the SID), the subscription is dropped.
// - Expired subscriptions are dropped by a periodic sweep and checked lazily everywhere.
//
// Request forgery: a SUBSCRIBE makes us send requests to a URL of the caller's choice. By
// default a CALLBACK URL is accepted only when its host is an IP literal equal to the
// subscriber's own TCP peer address, so nobody can aim our NOTIFYs at a third host.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import type { Context } from 'koa';
import type { Router } from '@koa/router';
import { escText, XML_DECL } from '../util/xml.js';

/** Current values of all evented variables of a service. */
export interface EventSource {
  variables(): Record<string, string>;
}

export interface GenaLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Time as the event service reads it and its NOTIFY timers (tests pass a fake one). */
export interface GenaClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

const realClock: GenaClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

export interface EventServiceOptions {
  serviceId: string;
  source: EventSource;
  /**
   * Minimum interval between two NOTIFYs of one subscription (ms); the initial event is never
   * held back. Default 200. A moderated variable's service passes its spec's rate (the
   * ContentDirectory: CDS_EVENT_MODERATION_MS).
   */
  moderationMs?: number;
  /** Clock for expiry and moderation (default: the real one). */
  clock?: GenaClock;
  /** Longest subscription granted (s); `Second-infinite` gets this. Default 1800. */
  maxTimeout?: number;
  /** Granted when the subscriber names no (valid) TIMEOUT, or `Second-0` (s). Default 1800, capped to maxTimeout. */
  defaultTimeout?: number;
  /**
   * Shortest subscription granted to a TIMEOUT that names one (s). Default MIN_TIMEOUT (300),
   * capped to maxTimeout.
   */
  minTimeout?: number;
  /**
   * Decides whether a CALLBACK host may be used. `callbackHost` is the URL's hostname as
   * parsed (IPv6 in brackets), `remoteIp` the subscriber's TCP peer address. Default:
   * the host must be an IP literal equal to the peer address.
   */
  allowCallback?(callbackHost: string, remoteIp: string): boolean;
  log?: GenaLogger;
  /** Sends NOTIFYs with this instead of node:http (tests, instrumentation). */
  fetch?: typeof fetch;
  /** Time allowed for one NOTIFY round trip (ms). Default 5000. */
  notifyTimeoutMs?: number;
  /** Consecutive failed NOTIFYs after which a subscription is dropped. Default 3. */
  maxFailures?: number;
  /** Most subscriptions held at once; further SUBSCRIBEs get 503. Default 512. */
  maxSubscriptions?: number;
  /**
   * Most subscriptions held for one subscriber address; a new SUBSCRIBE from an address at
   * this count replaces that address's subscription that expires first (renewed the
   * longest ago). So one host (a control point that never unsubscribes, or a flood) cannot
   * take every slot and lock the others out. Default 32.
   */
  maxPerSubscriber?: number;
  /**
   * How to coalesce a variable changed several times within one moderation interval;
   * default: the latest value wins. E.g. `{ ContainerUpdateIDs: combineContainerUpdateIds }`.
   */
  combine?: Record<string, (pending: string, incoming: string) => string>;
}

/**
 * Why subscriptions ended: expired (not renewed in time), unsubscribed, failed (maxFailures NOTIFYs
 * in a row failed), gone (the subscriber answered 412: it no longer knows the SID), replaced (by a
 * newer one of the same subscriber, maxPerSubscriber), left (before the SUBSCRIBE response).
 */
export const REMOVAL_REASONS = ['expired', 'unsubscribed', 'failed', 'gone', 'replaced', 'left'] as const;
export type RemovalReason = (typeof REMOVAL_REASONS)[number];

/** One event service as the status page and /metrics show it (counters since the server started). */
export interface EventServiceStats {
  /** The service's short name: ContentDirectory, ConnectionManager, X_MS_MediaReceiverRegistrar. */
  service: string;
  /** Subscriptions held now. */
  subscriptions: number;
  /** NOTIFYs a subscriber took (2xx), initial events included. */
  sent: number;
  /** NOTIFYs that failed at every callback URL (network error, timeout, non-2xx other than 412). */
  failed: number;
  /** Subscriptions ended, by reason. */
  removed: Record<RemovalReason, number>;
}

/** Callback URLs of one subscription tried in turn (the rest of a longer CALLBACK is ignored). */
export const MAX_CALLBACKS = 4;
/** A failing callback origin is warned about again after this long (ms). */
const WARN_AGAIN_MS = 10 * 60_000;
/** Bound on the table of warned-about callback origins. */
const MAX_WARNED = 1024;

/** The SEQ after `seq`: 32-bit counter that wraps from 4294967295 to 1 (0 is the initial event only). */
export function nextSeq(seq: number): number {
  return seq >= 0xffffffff ? 1 : seq + 1;
}

/**
 * Merges two ContentDirectory ContainerUpdateIDs values ("id,updateId,id,updateId,...")
 * so that a moderated event still names every container changed since the last one.
 */
export function combineContainerUpdateIds(pending: string, incoming: string): string {
  const map = new Map<string, string>();
  for (const v of [pending, incoming]) {
    const parts = v === '' ? [] : v.split(',');
    for (let i = 0; i + 1 < parts.length; i += 2) {
      map.delete(parts[i]); // re-insert so the order follows the latest change
      map.set(parts[i], parts[i + 1]);
    }
  }
  return [...map].map(([id, n]) => `${id},${n}`).join(',');
}

/** Canonical text of an IP literal (IPv4-mapped IPv6 as IPv4); undefined for anything else. */
export function canonicalIp(s: string): string | undefined {
  const h = s.trim().replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '').toLowerCase();
  if (isIPv4(h)) return h;
  if (!isIPv6(h)) return undefined;
  const host = new URL(`http://[${h}]/`).hostname.slice(1, -1); // WHATWG canonical form
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (m) {
    const hi = Number.parseInt(m[1], 16);
    const lo = Number.parseInt(m[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return host;
}

function defaultAllowCallback(callbackHost: string, remoteIp: string): boolean {
  const a = canonicalIp(callbackHost);
  return a !== undefined && a === canonicalIp(remoteIp);
}

/** The http: URLs of a CALLBACK header (`<url1><url2>...`), in order. */
export function parseCallbacks(header: string): URL[] {
  const out: URL[] = [];
  for (const m of header.matchAll(/<([^<>]*)>/g)) {
    try {
      const u = new URL(m[1].trim());
      // port 0 is no port: Node would send to the default port 80 instead
      if (u.protocol === 'http:' && u.hostname !== '' && u.port !== '0' && u.username === '' && u.password === '') out.push(u);
    } catch {
      // not a URL: skip
    }
  }
  return out;
}

/**
 * Shortest subscription granted (s). UDA 1.1 §4.1.2 says a requested TIMEOUT should be 1800 s or
 * more; the publisher picks the actual duration. A shorter request is granted as asked down to
 * this floor, so a subscriber cannot make us keep, sweep and see renewed a subscription every
 * second; `Second-0` asks for no duration at all and gets the default (miniupnpd and MiniDLNA read
 * 0 as "no timeout" too), not a subscription that is gone before its first NOTIFY.
 */
export const MIN_TIMEOUT = 300;

/** Seconds asked for by a TIMEOUT header: a number, 'infinite', or undefined when absent/invalid. */
function parseTimeout(header: string | undefined): number | 'infinite' | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*Second-(\d{1,10}|infinite)\s*$/i.exec(header);
  if (!m) return undefined;
  return m[1].toLowerCase() === 'infinite' ? 'infinite' : Number(m[1]);
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** The NOTIFY body for a set of variables. */
export function propertySet(vars: Record<string, string>): string {
  let props = '';
  for (const [name, value] of Object.entries(vars)) {
    if (!VAR_NAME.test(name)) continue;
    props += `<e:property><${name}>${escText(value)}</${name}></e:property>`;
  }
  return `${XML_DECL}\n<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">${props}</e:propertyset>`;
}

interface Subscription {
  sid: string;
  /** The allowed CALLBACK URLs, in the subscriber's order (1..MAX_CALLBACKS). */
  callbacks: URL[];
  /** Index in `callbacks` of the URL the next NOTIFY tries first (the last one that took one). */
  current: number;
  /** The subscriber's address, canonical (canonicalIp), for the per-subscriber bound. */
  remote: string;
  timeoutS: number;
  expiresAt: number; // ms since epoch
  seq: number; // SEQ of the next NOTIFY
  /** False until the initial event's snapshot is taken; changes before that are in it anyway. */
  ready: boolean;
  pending: Map<string, string>;
  timer?: unknown;
  sending: boolean;
  lastSentAt: number;
  failures: number;
  dropped: boolean;
}

type Header = string | string[] | undefined;
const one = (h: Header): string | undefined => (Array.isArray(h) ? h.join(', ') : h);

export class EventService {
  readonly serviceId: string;
  private readonly source: EventSource;
  private readonly moderationMs: number;
  private readonly maxTimeout: number;
  private readonly defaultTimeout: number;
  private readonly minTimeout: number;
  private readonly allowCallback: (callbackHost: string, remoteIp: string) => boolean;
  private readonly log?: GenaLogger;
  private readonly fetchFn?: typeof fetch;
  private readonly notifyTimeoutMs: number;
  private readonly maxFailures: number;
  private readonly maxSubscriptions: number;
  private readonly maxPerSubscriber: number;
  private readonly combine: Record<string, (pending: string, incoming: string) => string>;
  private readonly clock: GenaClock;

  private readonly subs = new Map<string, Subscription>();
  /** Callback origins (host:port) whose failure was logged at warn, and when. */
  private readonly warned = new Map<string, number>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;
  private sent = 0;
  private failed = 0;
  private readonly removed = Object.fromEntries(REMOVAL_REASONS.map((r) => [r, 0])) as Record<RemovalReason, number>;

  constructor(opts: EventServiceOptions) {
    this.serviceId = opts.serviceId;
    this.source = opts.source;
    this.moderationMs = Math.max(0, opts.moderationMs ?? 200);
    this.maxTimeout = Math.max(1, Math.floor(opts.maxTimeout ?? 1800));
    this.defaultTimeout = Math.min(this.maxTimeout, Math.max(1, Math.floor(opts.defaultTimeout ?? 1800)));
    this.minTimeout = Math.min(this.maxTimeout, Math.max(1, Math.floor(opts.minTimeout ?? MIN_TIMEOUT)));
    this.allowCallback = opts.allowCallback ?? defaultAllowCallback;
    this.log = opts.log;
    this.fetchFn = opts.fetch;
    this.notifyTimeoutMs = opts.notifyTimeoutMs ?? 5000;
    this.maxFailures = Math.max(1, opts.maxFailures ?? 3);
    this.maxSubscriptions = opts.maxSubscriptions ?? 512;
    this.maxPerSubscriber = Math.max(1, opts.maxPerSubscriber ?? 32);
    this.combine = opts.combine ?? {};
    this.clock = opts.clock ?? realClock;
    const every = Math.min(60_000, this.maxTimeout * 1000);
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Number of live subscriptions (expired ones are swept first). */
  get size(): number {
    this.sweep();
    return this.subs.size;
  }

  /** Subscriptions held (expired ones swept first) and the delivery counters. */
  stats(): EventServiceStats {
    return { service: this.serviceId.slice(this.serviceId.lastIndexOf(':') + 1), subscriptions: this.size, sent: this.sent, failed: this.failed, removed: { ...this.removed } };
  }

  /** Registers SUBSCRIBE and UNSUBSCRIBE on `path` (e.g. '/upnp/event/cds'). */
  routes(router: Router, path: string): void {
    router.register(path, ['SUBSCRIBE'], (ctx) => this.onSubscribe(ctx as unknown as Context));
    router.register(path, ['UNSUBSCRIBE'], (ctx) => this.onUnsubscribe(ctx as unknown as Context));
  }

  /** Queues changed variables for every subscriber (coalesced and moderated per subscription). */
  notify(changed: Record<string, string>): void {
    if (this.closed) return;
    this.sweep();
    const entries = Object.entries(changed);
    if (entries.length === 0) return;
    for (const sub of this.subs.values()) {
      if (!sub.ready) continue; // its initial event will read the current values
      for (const [name, value] of entries) this.merge(sub, name, String(value));
      this.kick(sub);
    }
  }

  /** Stops timers, aborts NOTIFYs in flight and forgets every subscription. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const sub of this.subs.values()) this.drop(sub, 'service closed', null);
    this.abort.abort(new Error('event service closed'));
    await Promise.allSettled([...this.inflight]);
  }

  // ---- HTTP side -------------------------------------------------------------------------

  private reply(ctx: Context, status: number, headers: Record<string, string> = {}): void {
    ctx.status = status;
    for (const [k, v] of Object.entries(headers)) ctx.set(k, v);
    ctx.body = ''; // not null: Koa turns a null body into 204
    ctx.remove('Content-Type');
  }

  private grant(asked: number | 'infinite' | undefined): number {
    if (asked === undefined || asked === 0) return this.defaultTimeout;
    if (asked === 'infinite') return this.maxTimeout;
    return Math.min(this.maxTimeout, Math.max(this.minTimeout, asked));
  }

  private onSubscribe(ctx: Context): void {
    if (this.closed) return this.reply(ctx, 503);
    const sidHeader = one(ctx.headers['sid']);
    const cbHeader = one(ctx.headers['callback']);
    const ntHeader = one(ctx.headers['nt']);
    const asked = parseTimeout(one(ctx.headers['timeout']));

    if (sidHeader !== undefined) {
      // Renewal: SID only.
      if (cbHeader !== undefined || ntHeader !== undefined) return this.reply(ctx, 400);
      const sub = this.live(sidHeader.trim());
      if (!sub) return this.reply(ctx, 412);
      sub.timeoutS = this.grant(asked);
      sub.expiresAt = this.clock.now() + sub.timeoutS * 1000;
      this.log?.debug({ service: this.serviceId, sid: sub.sid, timeout: sub.timeoutS }, 'gena renew');
      return this.reply(ctx, 200, { SID: sub.sid, TIMEOUT: `Second-${sub.timeoutS}` });
    }

    if (ntHeader?.trim() !== 'upnp:event') return this.reply(ctx, 412);
    const peer = ctx.req.socket.remoteAddress ?? '';
    const remote = canonicalIp(peer) ?? peer;
    const urls = cbHeader === undefined ? [] : parseCallbacks(cbHeader);
    const callbacks = urls.filter((u) => this.allowCallback(u.hostname, peer)).slice(0, MAX_CALLBACKS);
    if (callbacks.length === 0) {
      if (urls.length > 0) {
        this.log?.warn({ service: this.serviceId, remote, callback: cbHeader }, 'gena: CALLBACK host is not the subscriber, refused');
      }
      return this.reply(ctx, 412);
    }
    this.sweep();
    this.makeRoomFor(remote);
    if (this.subs.size >= this.maxSubscriptions) return this.reply(ctx, 503);

    const timeoutS = this.grant(asked);
    const sub: Subscription = {
      sid: `uuid:${randomUUID()}`,
      callbacks,
      current: 0,
      remote,
      timeoutS,
      expiresAt: this.clock.now() + timeoutS * 1000,
      seq: 0,
      ready: false,
      pending: new Map(),
      sending: false,
      lastSentAt: 0,
      failures: 0,
      dropped: false,
    };
    this.subs.set(sub.sid, sub);
    this.log?.debug({ service: this.serviceId, sid: sub.sid, callback: callbacks.map((u) => u.href), timeout: timeoutS }, 'gena subscribe');

    // The initial event goes out once the response has been written.
    const res = ctx.res;
    res.once('close', () => {
      if (!res.writableFinished) this.drop(sub, 'subscriber left before the SUBSCRIBE response', 'left');
    });
    res.once('finish', () => {
      setImmediate(() => this.sendInitial(sub));
    });
    this.reply(ctx, 200, { SID: sub.sid, TIMEOUT: `Second-${timeoutS}` });
  }

  private onUnsubscribe(ctx: Context): void {
    const sidHeader = one(ctx.headers['sid']);
    if (sidHeader !== undefined && (ctx.headers['callback'] !== undefined || ctx.headers['nt'] !== undefined)) {
      return this.reply(ctx, 400);
    }
    const sub = sidHeader === undefined ? undefined : this.live(sidHeader.trim());
    if (!sub) return this.reply(ctx, 412);
    this.drop(sub, 'unsubscribed', 'unsubscribed');
    this.reply(ctx, 200);
  }

  // ---- subscriptions ---------------------------------------------------------------------

  /** The subscription if it exists and has not expired (expired ones are dropped). */
  private live(sid: string): Subscription | undefined {
    const sub = this.subs.get(sid);
    if (!sub) return undefined;
    if (sub.expiresAt <= this.clock.now()) {
      this.drop(sub, 'expired', 'expired');
      return undefined;
    }
    return sub;
  }

  /**
   * Makes room for one more subscription of `remote` (canonical) under maxPerSubscriber: drops those of
   * its subscriptions that expire first (the ones it renews live on).
   */
  private makeRoomFor(remote: string): void {
    const mine = [...this.subs.values()].filter((s) => s.remote === remote);
    mine.sort((a, b) => a.expiresAt - b.expiresAt);
    for (let i = 0; i <= mine.length - this.maxPerSubscriber; i++) this.drop(mine[i], 'replaced by a newer subscription of the same subscriber', 'replaced');
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const sub of this.subs.values()) if (sub.expiresAt <= now) this.drop(sub, 'expired', 'expired');
  }

  /** `reason`: the counter it goes to (null: not counted, the service closing). */
  private drop(sub: Subscription, why: string, reason: RemovalReason | null): void {
    if (sub.dropped) return;
    sub.dropped = true;
    if (reason) this.removed[reason]++;
    if (sub.timer !== undefined) this.clock.clearTimeout(sub.timer);
    sub.timer = undefined;
    sub.pending.clear();
    this.subs.delete(sub.sid);
    this.log?.debug({ service: this.serviceId, sid: sub.sid, why }, 'gena drop');
  }

  private merge(sub: Subscription, name: string, value: string): void {
    const prev = sub.pending.get(name);
    const combine = this.combine[name];
    sub.pending.set(name, prev !== undefined && combine ? combine(prev, value) : value);
  }

  // ---- delivery --------------------------------------------------------------------------

  private sendInitial(sub: Subscription): void {
    if (sub.dropped || this.closed) return;
    let vars: Record<string, string>;
    try {
      vars = this.source.variables();
    } catch (err) {
      this.log?.warn({ service: this.serviceId, err: (err as Error).message }, 'gena: reading evented variables failed');
      vars = {};
    }
    sub.ready = true;
    sub.pending.clear();
    for (const [name, value] of Object.entries(vars)) sub.pending.set(name, String(value));
    this.flush(sub);
  }

  /** Schedules the next NOTIFY of `sub` if it has pending changes and none is in flight or queued. */
  private kick(sub: Subscription, minDelay = 0): void {
    if (sub.dropped || this.closed || sub.sending || sub.timer !== undefined || sub.pending.size === 0) return;
    const delay = Math.max(minDelay, sub.lastSentAt + this.moderationMs - this.clock.now(), 0);
    sub.timer = this.clock.setTimeout(() => {
      sub.timer = undefined;
      this.flush(sub);
    }, delay);
  }

  private flush(sub: Subscription): void {
    if (sub.dropped || this.closed || sub.sending || sub.pending.size === 0) return;
    if (sub.expiresAt <= this.clock.now()) return this.drop(sub, 'expired', 'expired');
    const vars = Object.fromEntries(sub.pending);
    sub.pending.clear();
    const seq = sub.seq;
    sub.seq = nextSeq(seq);
    sub.sending = true;
    sub.lastSentAt = this.clock.now();
    const p = this.deliver(sub, seq, vars).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private async deliver(sub: Subscription, seq: number, vars: Record<string, string>): Promise<void> {
    let status = 0;
    let error: string | undefined;
    const failed = sub.callbacks[sub.current];
    const body = propertySet(vars);
    // The URLs in order, from the one that took the last NOTIFY, until one answers 2xx or 412.
    for (let k = 0; k < sub.callbacks.length && !sub.dropped && !this.closed; k++) {
      const i = (sub.current + k) % sub.callbacks.length;
      status = 0;
      error = undefined;
      try {
        status = await this.send(sub.callbacks[i], sub.sid, seq, body);
      } catch (err) {
        error = (err as Error).message;
      }
      if ((status >= 200 && status < 300) || status === 412) {
        sub.current = i;
        break;
      }
    }
    sub.sending = false;
    if (status >= 200 && status < 300) this.sent++; // taken, even if the subscription ended meanwhile
    if (sub.dropped || this.closed) return;
    if (status >= 200 && status < 300) {
      sub.failures = 0;
      this.log?.debug({ service: this.serviceId, sid: sub.sid, seq, vars: Object.keys(vars) }, 'gena notify');
      this.kick(sub);
      return;
    }
    if (status === 412) return this.drop(sub, 'subscriber answered 412 (unknown SID)', 'gone');
    this.failed++;
    sub.failures++;
    // One warning per failing callback (host and port, however many subscriptions point
    // there), then debug: 300 subscriptions to a closed port are one line, not 900.
    const fields = { service: this.serviceId, sid: sub.sid, callback: failed.href, seq, status: status || undefined, err: error, failures: sub.failures };
    if (this.firstFailureOf(failed)) this.log?.warn(fields, 'gena: NOTIFY failed (further failures of this callback are logged at debug; the subscription is dropped after repeated failures)');
    else this.log?.debug(fields, 'gena: NOTIFY failed');
    if (sub.failures >= this.maxFailures) return this.drop(sub, `${sub.failures} NOTIFYs failed`, 'failed');
    // Fold the undelivered values back in, newer changes winning, and retry later.
    for (const [name, value] of Object.entries(vars)) if (!sub.pending.has(name)) sub.pending.set(name, value);
    this.kick(sub, Math.max(this.moderationMs, 500 * sub.failures));
  }

  /** True the first time a callback origin fails (again after WARN_AGAIN_MS); the table is bounded. */
  private firstFailureOf(url: URL): boolean {
    const key = url.host;
    const now = this.clock.now();
    const at = this.warned.get(key);
    if (at !== undefined && now - at < WARN_AGAIN_MS) return false;
    this.warned.delete(key);
    if (this.warned.size >= MAX_WARNED) this.warned.delete(this.warned.keys().next().value!);
    this.warned.set(key, now);
    return true;
  }

  /** Sends one NOTIFY; resolves with the HTTP status. */
  private async send(url: URL, sid: string, seq: number, body: string): Promise<number> {
    const headers: Record<string, string> = {
      'CONTENT-TYPE': 'text/xml; charset="utf-8"',
      NT: 'upnp:event',
      NTS: 'upnp:propchange',
      SID: sid,
      SEQ: String(seq),
    };
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.notifyTimeoutMs)]);
    if (this.fetchFn) {
      const res = await this.fetchFn(url, { method: 'NOTIFY', headers, body, signal });
      await res.arrayBuffer().catch(() => undefined);
      return res.status;
    }
    const payload = Buffer.from(body, 'utf8');
    return new Promise<number>((resolve, reject) => {
      const req = http.request(
        url,
        { method: 'NOTIFY', headers: { ...headers, 'CONTENT-LENGTH': String(payload.length) }, agent: false, signal },
        (res) => {
          res.resume(); // the body does not matter
          res.once('end', () => resolve(res.statusCode ?? 0));
          res.once('error', reject);
        },
      );
      req.once('error', reject);
      req.end(payload);
    });
  }
}
