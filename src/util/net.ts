// Network interface discovery and address/subnet helpers.
//
// Interfaces: SSDP needs, per interface, one IPv4 address to bind multicast to and to
// put in LOCATION. Subnets: the HTTP side restricts clients to local networks by CIDR
// list, and SSDP picks the interface a search came in on by the searcher's subnet.

import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

export interface NetIface {
  /** Kernel name (or alias label such as "eth0:1"). */
  name: string;
  /** IPv4 address. */
  address: string;
  netmask: string;
  /** Address with prefix length, e.g. "192.168.1.20/24". */
  cidr: string;
  mac: string;
  /** Loopback / internal, as reported by the OS. */
  internal: boolean;
}

/** Every IPv4 address of every interface, in OS order (loopback included). */
export function listInterfaces(): NetIface[] {
  const out: NetIface[] = [];
  for (const [name, infos] of Object.entries(networkInterfaces())) {
    for (const info of infos ?? []) {
      if (info.family !== 'IPv4') continue;
      out.push({
        name,
        address: info.address,
        netmask: info.netmask,
        cidr: info.cidr ?? `${info.address}/${prefixFromNetmask(info.netmask)}`,
        mac: info.mac,
        internal: info.internal,
      });
    }
  }
  return out;
}

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const IFF_MULTICAST = 0x1000;

function sysRead(name: string, attr: string): string | undefined {
  const dev = name.split(':')[0]; // alias labels ("eth0:1") share their device's attributes
  try {
    return readFileSync(`/sys/class/net/${dev}/${attr}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Interface flags from /sys/class/net/<dev>/flags, or undefined when unreadable. */
function sysFlags(name: string): number | undefined {
  const raw = sysRead(name, 'flags');
  const n = raw === undefined ? Number.NaN : Number.parseInt(raw, 16);
  return Number.isNaN(n) ? undefined : n;
}

function firstPerName(list: NetIface[]): NetIface[] {
  const seen = new Set<string>();
  return list.filter((i) => (seen.has(i.name) ? false : (seen.add(i.name), true)));
}

/**
 * Interfaces to serve SSDP on by default: up, not loopback, multicast-capable, with an
 * IPv4 address (one entry per interface: its first IPv4 address). Flags come from
 * /sys/class/net; where that is missing (non-Linux, restricted sandbox) the OS's
 * `internal` flag is the only filter.
 */
export function defaultInterfaces(): NetIface[] {
  return firstPerName(
    listInterfaces().filter((i) => {
      if (i.internal) return false;
      const flags = sysFlags(i.name);
      if (flags === undefined) return true;
      return (flags & IFF_UP) !== 0 && (flags & IFF_MULTICAST) !== 0 && (flags & IFF_LOOPBACK) === 0;
    }),
  );
}

/** Why an interface has no usable IPv4 entry (Node lists only interfaces that are up and running). */
function missingReason(name: string): string {
  const flags = sysFlags(name);
  if (flags === undefined) return networkInterfaces()[name] ? 'has no IPv4 address' : 'does not exist';
  if ((flags & IFF_UP) === 0) return 'is down';
  const oper = sysRead(name, 'operstate');
  if (oper && oper !== 'up' && oper !== 'unknown') return `has no carrier (operstate ${oper})`;
  return 'has no IPv4 address';
}

/**
 * The named interfaces (first IPv4 address of each), in the order given. Throws an Error
 * naming the interface that does not exist or has no IPv4 address, and listing the
 * interfaces that could be used instead.
 */
export function resolveInterfaces(names: string[]): NetIface[] {
  const all = listInterfaces();
  const available = () => {
    const list = firstPerName(all.filter((i) => !i.internal)).map((i) => `${i.name} (${i.address})`);
    return list.length ? list.join(', ') : 'none';
  };
  const out: NetIface[] = [];
  for (const name of names) {
    const found = all.find((i) => i.name === name);
    if (!found) {
      const why = missingReason(name);
      throw new Error(`Network interface "${name}" ${why}; available interfaces: ${available()}`);
    }
    if (!out.includes(found)) out.push(found);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Addresses and CIDR

export interface Cidr {
  family: 4 | 6;
  /** Network address (host bits cleared) as an integer of 32 or 128 bits. */
  network: bigint;
  prefix: number;
  /** Normalised text form, e.g. "10.0.0.0/8". */
  text: string;
}

function ipv4ToBigInt(s: string): bigint {
  return s.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function bigIntToIpv4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
}

/** Parses an IPv6 address (no zone) into a 128-bit integer; undefined when invalid. */
function ipv6ToBigInt(s: string): bigint | undefined {
  if (!isIPv6(s)) return undefined;
  let text = s;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    // embedded IPv4 in the last 32 bits: rewrite as two hex groups
    const v4 = ipv4ToBigInt(tail[1]);
    text = text.slice(0, -tail[1].length) + `${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.split('::');
  const h = head ? head.split(':') : [];
  const r = rest === undefined ? [] : rest ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...new Array<string>(8 - h.length - r.length).fill('0'), ...r];
  if (groups.length !== 8) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

function bigIntToIpv6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

interface ParsedIp {
  family: 4 | 6;
  value: bigint;
}

/**
 * Parses an address as it arrives from sockets: IPv4, IPv6 with optional zone id
 * ("fe80::1%eth0"). IPv4-mapped IPv6 is unwrapped to IPv4. Undefined when invalid.
 */
function parseIp(raw: string): ParsedIp | undefined {
  const s = raw.trim();
  if (isIPv4(s)) return { family: 4, value: ipv4ToBigInt(s) };
  const v6 = ipv6ToBigInt(s.replace(/%.*$/, ''));
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { family: 4, value: v6 & 0xffffffffn };
  return { family: 6, value: v6 };
}

function mask(family: 4 | 6, prefix: number): bigint {
  const bits = family === 4 ? 32 : 128;
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
}

/**
 * Parses "a.b.c.d/n", "x:y::z/n", or a bare address (a host route). Host bits are
 * cleared. Throws an Error quoting the input when it is not a valid CIDR.
 */
export function parseCidr(s: string): Cidr {
  if (typeof s !== 'string') throw new Error(`Invalid CIDR ${JSON.stringify(s)}: expected a string`);
  const text = s.trim();
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  let family: 4 | 6;
  let value: bigint;
  if (isIPv4(addr)) {
    family = 4;
    value = ipv4ToBigInt(addr);
  } else {
    const v6 = addr.includes('%') ? undefined : ipv6ToBigInt(addr);
    if (v6 === undefined) {
      throw new Error(`Invalid CIDR "${s}": "${addr}" is not an IPv4 or IPv6 address`);
    }
    family = 6;
    value = v6;
  }
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) {
      throw new Error(`Invalid CIDR "${s}": prefix length must be an integer from 0 to ${bits}`);
    }
    prefix = Number(p);
  }
  const network = value & mask(family, prefix);
  const shown = family === 4 ? bigIntToIpv4(network) : bigIntToIpv6(network);
  return { family, network, prefix, text: `${shown}/${prefix}` };
}

/**
 * A test for membership in `subnets` (CIDR strings or parsed; a string that is not a CIDR
 * throws here), built once on Node's net.BlockList. It accepts IPv4, IPv6 (zone ids ignored)
 * and IPv4-mapped IPv6, which matches IPv4 subnets as its IPv4 address, as an IPv4 address
 * matches IPv6 subnets covering ::ffff:0:0/96. Invalid input is never in any subnet.
 */
export function subnetMatcher(subnets: readonly (string | Cidr)[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const entry of subnets) {
    const c = typeof entry === 'string' ? parseCidr(entry) : entry;
    list.addSubnet(c.text.slice(0, c.text.lastIndexOf('/')), c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
  }
  return (ip) => {
    if (typeof ip !== 'string') return false;
    const s = ip.trim().replace(/%.*$/, '');
    const family = isIPv4(s) ? 'ipv4' : isIPv6(s) ? 'ipv6' : undefined;
    return family !== undefined && list.check(s, family);
  };
}

/** True when `ip` lies in one of `subnets` (see subnetMatcher; build that once for repeated checks). */
export function inSubnets(ip: string, subnets: readonly (string | Cidr)[]): boolean {
  return subnetMatcher(subnets)(ip);
}

/** Loopback, private (RFC 1918, ULA) and link-local networks: the default client ACL. */
export const DEFAULT_ALLOWED_SUBNETS: readonly string[] = Object.freeze([
  '127.0.0.0/8',
  '::1/128',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '169.254.0.0/16',
  'fe80::/10',
  'fc00::/7',
]);

function prefixFromNetmask(netmask: string): number {
  const m = parseIp(netmask);
  if (!m) return 32;
  let n = m.value;
  let bits = 0;
  while (n & (1n << 31n)) {
    bits++;
    n = (n << 1n) & 0xffffffffn;
  }
  return bits;
}

/**
 * The interface whose IPv4 subnet contains `remoteIp` (longest prefix wins, then list
 * order), or undefined. `remoteIp` may be IPv4-mapped IPv6, as sockets report it.
 */
export function interfaceForRemote<T extends { address: string; netmask: string }>(
  remoteIp: string,
  ifaces: readonly T[],
): T | undefined {
  const remote = parseIp(remoteIp);
  if (!remote || remote.family !== 4) return undefined;
  let best: T | undefined;
  let bestPrefix = -1;
  for (const iface of ifaces) {
    const addr = parseIp(iface.address);
    if (!addr || addr.family !== 4) continue;
    const prefix = prefixFromNetmask(iface.netmask);
    const m = mask(4, prefix);
    if ((addr.value & m) === (remote.value & m) && prefix > bestPrefix) {
      best = iface;
      bestPrefix = prefix;
    }
  }
  return best;
}

/**
 * The local IPv4 address the kernel would use to reach `remoteIp` (a routing-table
 * lookup done by connecting a UDP socket; nothing is sent). Undefined when there is no
 * route or the address is invalid.
 */
export function localAddressFor(remoteIp: string): Promise<string | undefined> {
  const remote = parseIp(remoteIp);
  if (!remote || remote.family !== 4) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    let settled = false;
    const done = (addr: string | undefined) => {
      if (settled) return;
      settled = true;
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(addr);
    };
    sock.on('error', () => done(undefined));
    sock.connect(9, bigIntToIpv4(remote.value), () => {
      try {
        done(sock.address().address);
      } catch {
        done(undefined);
      }
    });
  });
}
