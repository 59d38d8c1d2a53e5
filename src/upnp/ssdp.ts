// SSDP advertisement and discovery for the MediaServer, one node-ssdp transport per
// network interface.
//
// node-ssdp 4.0.1 stays the transport (sockets on udp/1900, group membership, TTL,
// message parsing and sending), but several of its server behaviours are wrong for a
// multi-homed NAS and are replaced here:
//  - one Server over several interfaces answers each M-SEARCH once per socket, from every
//    socket (N interfaces -> N*N replies per USN), with LOCATIONs of unrelated links;
//    here each interface gets its own instance and one dispatcher answers each search
//    exactly once, on the interface whose subnet holds the searcher;
//  - it never sets IP_MULTICAST_IF, so every NOTIFY leaves by the multicast route,
//    carrying other links' addresses; here each socket is pinned to its interface;
//  - it answers at once, ignoring MX; here each reply is delayed randomly within
//    min(MX, 5) s as UDA requires (unicast searches are answered at once);
//  - stop() closes the sockets before the byebye datagrams are sent (they are lost);
//    here byebye is sent for every USN, the send callbacks awaited, then sockets closed;
//  - its advertisement loop waits 3 s before the first NOTIFY and hard-codes max-age;
//    here the loop is ours: bursts at start, then every `advertiseInterval`.
//  - explicitSocketBind binds to the unicast address, where multicast M-SEARCH never
//    arrives, so it is not used: sockets bind 0.0.0.0:1900 with SO_REUSEADDR.

import { ReplyBudget, DEFAULT_REPLIES_PER_SECOND } from './ssdp-budget.js';
import nodeSsdp, { type ServerOptions } from 'node-ssdp';
import type { RemoteInfo, Socket } from 'node:dgram';
import { serverHeader } from './server-header.js';
import { DEFAULT_ALLOWED_SUBNETS, interfaceForRemote, listInterfaces, localAddressFor, subnetMatcher } from '../util/net.js';

export const SSDP_GROUP = '239.255.255.250';
export const SSDP_PORT = 1900;

/** Notification types advertised besides the device's own `uuid:<uuid>`. */
export const DEFAULT_TARGETS: readonly string[] = Object.freeze([
  'upnp:rootdevice',
  'urn:schemas-upnp-org:device:MediaServer:1',
  'urn:schemas-upnp-org:service:ContentDirectory:1',
  'urn:schemas-upnp-org:service:ConnectionManager:1',
]);

export interface SsdpLogger {
  info(o: object | string, msg?: string): void;
  debug(...a: unknown[]): void;
  warn(...a: unknown[]): void;
}

export interface SsdpOptions {
  /** Device UUID without the 'uuid:' prefix (a leading 'uuid:' is tolerated). */
  uuid: string;
  interfaces: { name: string; address: string }[];
  /** HTTP port for LOCATION. */
  port: number;
  /** Path of the device description, e.g. '/description.xml'. */
  descriptionPath: string;
  /** CACHE-CONTROL max-age in seconds (default 1800). */
  maxAge?: number;
  /** SERVER header (default: serverHeader(), e.g. 'Linux/6.1 UPnP/1.0 DLNADOC/1.50 Tapedeck/0.1.0'). */
  serverHeader?: string;
  /** Re-advertisement period in ms (default maxAge/4). */
  advertiseInterval?: number;
  /** NOTIFY alive rounds at start, ~200 ms apart (default 3). */
  initialBursts?: number;
  /** Notification types besides `uuid:<uuid>`, which is always advertised (default DEFAULT_TARGETS). */
  targets?: string[];
  /** BOOTID.UPNP.ORG (default: start time in seconds). */
  bootId?: number;
  /** CONFIGID.UPNP.ORG (default 1); change it when the description changes. */
  configId?: number;
  /** Searchers answered (CIDR, as the HTTP `allow` setting); M-SEARCH from elsewhere is ignored. Default DEFAULT_ALLOWED_SUBNETS. */
  allow?: readonly string[];
  /** Most search replies sent to one source address per second (default 50). */
  repliesPerSecond?: number;
  log?: SsdpLogger;
}

/** One advertised notification type and its unique service name. */
export interface SsdpEntry {
  nt: string;
  usn: string;
}

/** Longest delay allowed by UDA whatever MX says, in seconds. */
const MX_CAP = 5;
/** Window used when a multicast M-SEARCH carries no MX at all. */
const MISSING_MX_WINDOW = 1;
const BURST_SPACING_MS = 200;
const BYEBYE_ROUNDS = 2;
const BYEBYE_SPACING_MS = 50;
/** A datagram delivered to several of our sockets is one search if the copies come within this. */
const COPY_WINDOW_MS = 2000;
/** Cap on scheduled replies, so a flood of searches cannot make us a packet amplifier. */
const MAX_PENDING_REPLIES = 1000;
/** Bound on remembered datagrams (copy detection) under a flood. */
const MAX_SEEN = 4096;

const noopLog: SsdpLogger = { info() {}, debug() {}, warn() {} };

// ---------------------------------------------------------------------------------------
// Pure message logic (exported for tests)

/** The advertised entries, root device first as UDA orders them. */
export function ssdpEntries(uuid: string, targets: readonly string[] = DEFAULT_TARGETS): SsdpEntry[] {
  const udn = `uuid:${uuid}`;
  const root = targets.includes('upnp:rootdevice') ? ['upnp:rootdevice'] : [];
  const types = targets.filter((nt) => nt !== 'upnp:rootdevice' && nt !== udn);
  return [...new Set([...root, udn, ...types])].map((nt) => ({ nt, usn: nt === udn ? udn : `${udn}::${nt}` }));
}

/**
 * A device or service type and its version. UDA (1.0 §1.1.2, 1.1 and 2.0 §1.3.2): the version is
 * an integer and versions start at 1, so `:0` (and a version spelled with a leading zero, `:01`)
 * names no type anyone implements: such a search is not answered.
 */
const TYPE_URN = /^(urn:[^:]+:(?:device|service):[^:]+):([1-9]\d{0,8})$/;

/**
 * Entries that answer search target `st`, each with the ST to put in the reply:
 * ssdp:all answers all; an exact NT answers itself (a uuid: one in any letter case); a device/service type with a lower
 * version than ours, 1 or more, answers with the requested version (UDA: types are backward
 * compatible and the reply names the version searched for).
 */
export function matchSearch(st: string, entries: readonly SsdpEntry[]): { st: string; usn: string }[] {
  if (st === 'ssdp:all') return entries.map((e) => ({ st: e.nt, usn: e.usn }));
  const exact = entries.find((e) => e.nt === st);
  if (exact) return [{ st, usn: exact.usn }];
  // A UUID's hex digits are case-insensitive on input (RFC 4122 §3): uuid:4D69... names our device
  // too; the reply names it as it was searched for, the USN as we advertise it.
  if (/^uuid:/i.test(st)) {
    const dev = entries.find((e) => e.nt.startsWith('uuid:') && e.nt.toLowerCase() === st.toLowerCase());
    return dev ? [{ st, usn: dev.usn }] : [];
  }
  const want = TYPE_URN.exec(st);
  if (!want) return [];
  for (const e of entries) {
    const have = TYPE_URN.exec(e.nt);
    if (have && have[1] === want[1] && Number(want[2]) <= Number(have[2])) {
      const udn = e.usn.slice(0, e.usn.length - e.nt.length - 2);
      return [{ st, usn: `${udn}::${st}` }];
    }
  }
  return [];
}

export type SearchDecision =
  | { ok: true; st: string; windowMs: number }
  | { ok: false; reason: string };

/**
 * Validates an M-SEARCH (header names upper-case) and returns its target and the reply
 * window: min(MX, 5) s for multicast searches, 0 for unicast ones (UDA 1.1), 1 s when a
 * multicast search has no MX (UDA 1.0 requires MX; old control points omit it). A MAN
 * other than "ssdp:discover", a missing ST or an MX that is not a non-negative integer
 * makes the search malformed: it is ignored.
 */
export function parseSearch(headers: Record<string, unknown>): SearchDecision {
  const get = (k: string) => (typeof headers[k] === 'string' ? (headers[k] as string).trim() : undefined);
  const man = get('MAN');
  if (!man || man.replace(/^"|"$/g, '').toLowerCase() !== 'ssdp:discover') {
    return { ok: false, reason: `MAN is ${JSON.stringify(man ?? null)}, not "ssdp:discover"` };
  }
  const st = get('ST')?.replace(/^"|"$/g, '');
  if (!st) return { ok: false, reason: 'no ST' };
  const host = get('HOST');
  const multicast = !host || host.replace(/:\d+$/, '') === SSDP_GROUP;
  if (!multicast) return { ok: true, st, windowMs: 0 };
  const mx = get('MX');
  if (mx === undefined) return { ok: true, st, windowMs: MISSING_MX_WINDOW * 1000 };
  if (!/^\d+$/.test(mx)) return { ok: false, reason: `invalid MX ${JSON.stringify(mx)}` };
  return { ok: true, st, windowMs: Math.min(Number(mx), MX_CAP) * 1000 };
}

function message(startLine: string, headers: [string, string | number][]): Buffer {
  const lines = headers.map(([k, v]) => (v === '' ? `${k}:` : `${k}: ${v}`));
  return Buffer.from(`${startLine}\r\n${lines.join('\r\n')}\r\n\r\n`, 'utf8');
}

export interface MessageContext {
  location: string;
  maxAge: number;
  server: string;
  bootId: number;
  configId: number;
}

export function notifyMessage(e: SsdpEntry, nts: 'ssdp:alive' | 'ssdp:byebye', c: MessageContext): Buffer {
  const ids: [string, number][] = [
    ['BOOTID.UPNP.ORG', c.bootId],
    ['CONFIGID.UPNP.ORG', c.configId],
  ];
  if (nts === 'ssdp:byebye') {
    return message('NOTIFY * HTTP/1.1', [
      ['HOST', `${SSDP_GROUP}:${SSDP_PORT}`],
      ['NT', e.nt],
      ['NTS', nts],
      ['USN', e.usn],
      ...ids,
    ]);
  }
  return message('NOTIFY * HTTP/1.1', [
    ['HOST', `${SSDP_GROUP}:${SSDP_PORT}`],
    ['CACHE-CONTROL', `max-age=${c.maxAge}`],
    ['LOCATION', c.location],
    ['NT', e.nt],
    ['NTS', nts],
    ['SERVER', c.server],
    ['USN', e.usn],
    ...ids,
  ]);
}

export function searchResponse(r: { st: string; usn: string }, c: MessageContext, date = new Date()): Buffer {
  return message('HTTP/1.1 200 OK', [
    ['CACHE-CONTROL', `max-age=${c.maxAge}`],
    ['DATE', date.toUTCString()],
    ['EXT', ''],
    ['LOCATION', c.location],
    ['SERVER', c.server],
    ['ST', r.st],
    ['USN', r.usn],
    ['BOOTID.UPNP.ORG', c.bootId],
    ['CONFIGID.UPNP.ORG', c.configId],
  ]);
}

// ---------------------------------------------------------------------------------------
// Transport: node-ssdp Server bound to one interface

/** node-ssdp internals this module relies on (lib/index.js, 4.0.1). */
interface NodeSsdpInternals {
  sockets: Record<string, Socket> | null;
  _createSockets(): void;
  _stop(): void;
  _send(msg: Buffer, host: string, port: number, cb: (err?: Error | null) => void): void;
  _send(msg: Buffer, cb: (err?: Error | null) => void): void;
}

type SearchHandler = (headers: Record<string, unknown>, raw: string, rinfo: RemoteInfo) => void;

class InterfaceTransport extends nodeSsdp.Server {
  onSearch: SearchHandler = () => {};

  /** Replaces node-ssdp's immediate per-socket answer: the SsdpServer decides. */
  _msearch(headers: Record<string, unknown>, raw: string, rinfo: RemoteInfo): void {
    this.onSearch(headers, raw, rinfo);
  }

  /** node-ssdp's own advertisement loop is replaced by SsdpServer's. */
  _initAdLoop(): void {}

  get internals(): NodeSsdpInternals {
    return this as unknown as NodeSsdpInternals;
  }
}

interface Link {
  name: string;
  address: string;
  netmask: string;
  transport: InterfaceTransport;
  ctx: MessageContext;
}

// ---------------------------------------------------------------------------------------

export class SsdpServer {
  readonly usns: string[];
  private readonly udn: string;
  private readonly entries: SsdpEntry[];
  private readonly opts: SsdpOptions;
  private readonly log: SsdpLogger;
  private readonly maxAge: number;
  private readonly advertiseInterval: number;
  private readonly bursts: number;
  private readonly server: string;
  private readonly bootId: number;
  private readonly configId: number;
  private links: Link[] = [];
  private timers = new Set<NodeJS.Timeout>();
  private adLoop: NodeJS.Timeout | undefined;
  private seen = new Map<string, { at: number; by: Set<InterfaceTransport> }>();
  private state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';
  private stopping: Promise<void> | undefined;
  private readonly allowed: (ip: string) => boolean;
  private readonly budget: ReplyBudget;
  /** When the last "budget used up" line was logged (at most one a second). */
  private lastLimitLog = 0;

  constructor(opts: SsdpOptions) {
    const uuid = String(opts.uuid ?? '').replace(/^uuid:/i, '');
    if (!uuid) throw new Error('SsdpServer: uuid is required');
    if (!Array.isArray(opts.interfaces) || opts.interfaces.length === 0) {
      throw new Error('SsdpServer: at least one network interface is required');
    }
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
      throw new Error(`SsdpServer: invalid HTTP port ${opts.port}`);
    }
    const seen = new Set<string>();
    const interfaces = opts.interfaces.filter((i) => {
      const k = `${i.name}\n${i.address}`;
      return seen.has(k) ? false : (seen.add(k), true);
    });
    this.opts = { ...opts, interfaces };
    this.log = opts.log ?? noopLog;
    this.maxAge = Math.max(1, Math.round(positive(opts.maxAge, 1800, 'maxAge')));
    this.advertiseInterval = positive(opts.advertiseInterval, (this.maxAge * 1000) / 4, 'advertiseInterval');
    this.bursts = Math.max(1, Math.floor(positive(opts.initialBursts, 3, 'initialBursts')));
    this.server = opts.serverHeader ?? serverHeader();
    this.bootId = opts.bootId ?? Math.floor(Date.now() / 1000);
    this.configId = opts.configId ?? 1;
    this.udn = `uuid:${uuid}`;
    this.entries = ssdpEntries(uuid, opts.targets ?? DEFAULT_TARGETS);
    this.usns = this.entries.map((e) => e.usn);
    this.allowed = subnetMatcher(opts.allow?.length ? opts.allow : DEFAULT_ALLOWED_SUBNETS); // throws on a bad CIDR
    this.budget = new ReplyBudget(Math.max(1, Math.floor(positive(opts.repliesPerSecond, DEFAULT_REPLIES_PER_SECOND, 'repliesPerSecond'))));
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`SsdpServer: start() called while ${this.state}`);
    this.state = 'starting';
    const known = listInterfaces();
    try {
      for (const want of this.opts.interfaces) {
        const info = known.find((i) => i.name === want.name && i.address === want.address);
        if (!info) {
          const has = known.filter((i) => i.name === want.name).map((i) => i.address);
          throw new Error(
            `SSDP: interface "${want.name}" has no IPv4 address ${want.address}` +
              (has.length ? ` (it has ${has.join(', ')})` : ' (no such interface or no IPv4 address)'),
          );
        }
        this.links.push(await this.openLink(want.name, want.address, info.netmask));
      }
    } catch (err) {
      await this.closeLinks();
      this.state = 'idle';
      throw err;
    }
    this.state = 'running';
    this.log.info(
      { interfaces: this.links.map((l) => `${l.name}=${l.address}`), usns: this.usns },
      'SSDP advertising',
    );
    // each burst BURST_SPACING_MS after the previous one was sent (not at fixed offsets from
    // here: on a loaded machine timers due at 200 and 400 ms fired in one turn, back to back)
    const burst = (left: number): void => {
      if (left <= 0 || this.state !== 'running') return;
      this.later(BURST_SPACING_MS, () => void this.advertise('ssdp:alive').then(() => burst(left - 1)));
    };
    void this.advertise('ssdp:alive').then(() => burst(this.bursts - 1));
    this.adLoop = setInterval(() => void this.advertise('ssdp:alive'), this.advertiseInterval);
    this.adLoop.unref();
  }

  /** Sends byebye for every USN on every interface, waits for the sends, then closes. */
  stop(): Promise<void> {
    if (this.state === 'idle' || this.state === 'stopped') return Promise.resolve();
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    while (this.state === 'starting') await new Promise((r) => setTimeout(r, 20));
    if (this.state !== 'running') return;
    this.state = 'stopping';
    clearInterval(this.adLoop);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (let round = 0; round < BYEBYE_ROUNDS; round++) {
      if (round > 0) await new Promise((r) => setTimeout(r, BYEBYE_SPACING_MS));
      await this.advertise('ssdp:byebye');
    }
    await this.closeLinks();
    this.state = 'stopped';
    this.log.info('SSDP stopped (byebye sent)');
  }

  private async openLink(name: string, address: string, netmask: string): Promise<Link> {
    const options: ServerOptions & { sourcePort: number } = {
      interfaces: [name],
      sourcePort: SSDP_PORT,
      reuseAddr: true,
      udn: this.udn,
      suppressRootDeviceAdvertisements: true, // node-ssdp advertises nothing itself
      ssdpSig: this.server,
      ttl: this.maxAge,
      customLogger: (fmt: string, ...args: unknown[]) => this.log.debug({ iface: name, args }, `node-ssdp: ${fmt}`),
    };
    const transport = new InterfaceTransport(options);
    try {
      transport.internals._createSockets();
    } catch (err) {
      throw new Error(`SSDP: no usable IPv4 address on interface "${name}": ${(err as Error).message}`);
    }
    try {
      await this.bindTransport(transport, name, address);
    } catch (err) {
      await closeTransport(transport);
      throw err;
    }
    const link: Link = {
      name,
      address,
      netmask,
      transport,
      ctx: {
        location: `http://${address}:${this.opts.port}${this.path()}`,
        maxAge: this.maxAge,
        server: this.server,
        bootId: this.bootId,
        configId: this.configId,
      },
    };
    transport.onSearch = (headers, raw, rinfo) => void this.onSearch(transport, headers, raw, rinfo);
    return link;
  }

  /** Binds the transport's socket for `address` (dropping its others) and pins multicast to it. */
  private async bindTransport(transport: InterfaceTransport, name: string, address: string): Promise<void> {
    const sockets = () => transport.internals.sockets ?? {};
    // node-ssdp opens one socket per IPv4 address of the interface; keep the configured one
    for (const [addr, sock] of Object.entries(sockets())) {
      if (addr === address) continue;
      sock.close();
      delete sockets()[addr];
    }
    const socket = sockets()[address];
    if (!socket) throw new Error(`SSDP: node-ssdp found no socket for ${name} ${address}`);
    // a bind error never reaches node-ssdp's start() callback: fail here instead of hanging
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new Error(`SSDP: cannot listen on udp/${SSDP_PORT} for ${name} (${address}): ${err.message}`));
      socket.once('error', onError);
      Promise.resolve(transport.start()).then(
        () => {
          socket.off('error', onError);
          resolve();
        },
        (err: Error) => onError(err),
      );
    });
    // node-ssdp never sets IP_MULTICAST_IF: without this every NOTIFY leaves by the multicast route
    socket.setMulticastInterface(address);
  }

  private path(): string {
    const p = this.opts.descriptionPath || '/';
    return p.startsWith('/') ? p : `/${p}`;
  }

  private async closeLinks(): Promise<void> {
    const links = this.links;
    this.links = [];
    await Promise.all(links.map((l) => closeTransport(l.transport)));
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  private send(link: Link, buf: Buffer, host?: string, port?: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (err?: Error | null) => {
        if (err) this.log.warn({ err: err.message, iface: link.name, host }, 'SSDP send failed');
        resolve();
      };
      try {
        if (host !== undefined && port !== undefined) link.transport.internals._send(buf, host, port, done);
        else link.transport.internals._send(buf, done);
      } catch (err) {
        done(err as Error);
      }
    });
  }

  private async advertise(nts: 'ssdp:alive' | 'ssdp:byebye'): Promise<void> {
    const active = nts === 'ssdp:byebye' ? this.state === 'stopping' : this.state === 'running';
    if (!active) return;
    await Promise.all(
      this.links.map(async (link) => {
        for (const e of this.entries) await this.send(link, notifyMessage(e, nts, link.ctx));
      }),
    );
    this.log.debug({ nts, interfaces: this.links.length }, 'SSDP NOTIFY round sent');
  }

  /**
   * One M-SEARCH datagram reaches every one of our sockets (they all listen on
   * 0.0.0.0:1900), so copies seen by other transports are dropped; the same transport
   * seeing it again means the searcher repeated it.
   */
  private isCopy(from: InterfaceTransport, raw: string, rinfo: RemoteInfo): boolean {
    const now = Date.now();
    // entries are kept in arrival order: drop expired ones from the front
    for (const [k, v] of this.seen) {
      if (now - v.at <= COPY_WINDOW_MS && this.seen.size < MAX_SEEN) break;
      this.seen.delete(k);
    }
    const key = `${rinfo.address}:${rinfo.port}\n${raw}`;
    const entry = this.seen.get(key);
    if (entry && !entry.by.has(from)) {
      entry.by.add(from);
      return true;
    }
    this.seen.delete(key);
    this.seen.set(key, { at: now, by: new Set([from]) });
    return false;
  }

  /** The link to answer on: the one whose subnet holds the searcher, else the route's. */
  private async linkFor(remote: string): Promise<Link | undefined> {
    const bySubnet = interfaceForRemote(remote, this.links);
    if (bySubnet) return bySubnet;
    const local = await localAddressFor(remote);
    if (!local) return undefined;
    const name = listInterfaces().find((i) => i.address === local)?.name;
    return this.links.find((l) => l.address === local) ?? this.links.find((l) => l.name === name);
  }

  private async onSearch(
    from: InterfaceTransport,
    headers: Record<string, unknown>,
    raw: string,
    rinfo: RemoteInfo,
  ): Promise<void> {
    if (this.state !== 'running') return;
    const who = `${rinfo.address}:${rinfo.port}`;
    // searchers outside `allow` get nothing (as HTTP answers them 403), before any work
    if (!this.allowed(rinfo.address)) {
      this.log.debug({ from: who }, 'SSDP: ignoring M-SEARCH from an address outside allow');
      return;
    }
    if (this.isCopy(from, raw, rinfo)) return;
    const search = parseSearch(headers);
    if (!search.ok) {
      this.log.debug({ from: who, reason: search.reason }, 'SSDP: ignoring malformed M-SEARCH');
      return;
    }
    const matches = matchSearch(search.st, this.entries);
    if (matches.length === 0) return;
    const link = await this.linkFor(rinfo.address);
    if (this.state !== 'running') return;
    if (!link) {
      this.log.debug({ from: who }, 'SSDP: M-SEARCH from a host not reachable through a served interface');
      return;
    }
    if (!this.budget.take(rinfo.address, matches.length)) {
      const now = Date.now();
      if (now - this.lastLimitLog >= 1000) {
        this.lastLimitLog = now;
        this.log.debug({ from: who, perSecond: this.budget.perSecond }, 'SSDP: reply budget of this address used up, ignoring M-SEARCH');
      }
      return;
    }
    if (this.timers.size + matches.length > MAX_PENDING_REPLIES) {
      this.log.warn({ from: who }, 'SSDP: too many pending replies, dropping M-SEARCH');
      return;
    }
    // each reply at a random moment within the searcher's window (UDA: spread over MX seconds)
    const delays = matches.map(() => Math.random() * search.windowMs);
    this.log.debug({ from: who, st: search.st, iface: link.name, replies: matches.length, windowMs: search.windowMs, delaysMs: delays.map(Math.round) }, 'SSDP M-SEARCH');
    matches.forEach((m, k) => {
      this.later(delays[k]!, () => {
        if (this.state === 'running') void this.send(link, searchResponse(m, link.ctx), rinfo.address, rinfo.port);
      });
    });
  }
}

/** Closes a transport's sockets and waits for them (node-ssdp's own byebye list is empty). */
async function closeTransport(transport: InterfaceTransport): Promise<void> {
  const socks = Object.values(transport.internals.sockets ?? {});
  const closed = socks.map((s) => new Promise<void>((r) => s.once('close', () => r())));
  try {
    transport.internals._stop(); // unlike stop(), also closes sockets of a transport that never started
  } catch {
    // a socket was already closed
  }
  await withTimeout(Promise.all(closed), 2000);
}

function positive(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new Error(`SsdpServer: ${what} must be a positive number, got ${String(v)}`);
  }
  return v;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    p.then((v) => {
      clearTimeout(t);
      resolve(v);
    }, () => resolve(undefined));
  });
}
