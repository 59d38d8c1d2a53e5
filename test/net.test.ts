import test from 'ava';
import { networkInterfaces } from 'node:os';
import {
  DEFAULT_ALLOWED_SUBNETS,
  defaultInterfaces,
  inSubnets,
  interfaceForRemote,
  listInterfaces,
  localAddressFor,
  parseCidr,
  resolveInterfaces,
  type NetIface,
} from '../src/util/net.js';
import { createLab, labAvailable } from './helpers/lab.js';

test('listInterfaces reports every IPv4 address the OS has, with prefix and mac', (t) => {
  const expected = Object.values(networkInterfaces())
    .flatMap((l) => l ?? [])
    .filter((i) => i.family === 'IPv4')
    .map((i) => i.address)
    .sort();
  const list = listInterfaces();
  t.deepEqual(list.map((i) => i.address).sort(), expected);
  const lo = list.find((i) => i.address === '127.0.0.1');
  t.truthy(lo, 'loopback is listed');
  t.is(lo!.netmask, '255.0.0.0');
  t.is(lo!.cidr, '127.0.0.1/8');
  t.true(lo!.internal);
  for (const i of list) t.regex(i.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
});

test('defaultInterfaces excludes loopback and returns one address per interface', (t) => {
  const list = defaultInterfaces();
  t.false(list.some((i) => i.internal || i.address.startsWith('127.')));
  const names = list.map((i) => i.name);
  t.is(new Set(names).size, names.length);
});

test('resolveInterfaces returns named interfaces and rejects unknown ones by name', (t) => {
  const [lo] = resolveInterfaces(['lo']);
  t.is(lo.address, '127.0.0.1');
  t.deepEqual(resolveInterfaces(['lo', 'lo']).length, 1);
  const err = t.throws(() => resolveInterfaces(['lo', 'nosuchif0']));
  t.regex(err!.message, /"nosuchif0" does not exist/);
  t.regex(err!.message, /available interfaces:/);
});

test('parseCidr normalises IPv4 and IPv6 networks and clears host bits', (t) => {
  t.is(parseCidr('10.1.2.3/8').text, '10.0.0.0/8');
  t.is(parseCidr('192.168.1.7').text, '192.168.1.7/32');
  t.is(parseCidr(' 172.16.5.4/12 ').text, '172.16.0.0/12');
  t.is(parseCidr('fe80::1/10').text, 'fe80::/10');
  t.is(parseCidr('::1').text, '::1/128');
  t.is(parseCidr('0.0.0.0/0').prefix, 0);
  const mapped = parseCidr('::ffff:10.0.0.0/104');
  t.is(mapped.family, 6);
  t.is(mapped.network, (0xffffn << 32n) | (10n << 24n));
});

test('parseCidr rejects malformed input with a message quoting it', (t) => {
  for (const bad of ['', '10.0.0.0/33', '10.0.0/8', 'fe80::/129', 'abc', '10.0.0.1/x', '1.2.3.4/-1', 'fe80::1%eth0/64']) {
    const err = t.throws(() => parseCidr(bad), undefined, bad);
    t.true(err!.message.startsWith(`Invalid CIDR "${bad}"`), err!.message);
  }
  t.throws(() => parseCidr(undefined as unknown as string), { message: /Invalid CIDR/ });
});

test('inSubnets matches IPv4, IPv4-mapped IPv6, ::1 and IPv6 prefixes', (t) => {
  const acl = DEFAULT_ALLOWED_SUBNETS;
  for (const ip of ['127.0.0.1', '10.9.8.7', '172.16.0.1', '172.31.255.254', '192.168.0.10', '169.254.3.4',
    '::1', '::ffff:10.0.0.1', '::FFFF:192.168.1.1', 'fe80::1234', 'fe80::1%eth0', 'fd12:3456::1', 'fc00::1']) {
    t.true(inSubnets(ip, acl), ip);
  }
  for (const ip of ['8.8.8.8', '172.32.0.1', '172.15.255.255', '192.169.0.1', '::ffff:8.8.8.8', '2001:db8::1',
    '::2', 'fec0::1', '', 'not-an-ip', '10.0.0.256']) {
    t.false(inSubnets(ip, acl), ip);
  }
  t.false(inSubnets(undefined as unknown as string, acl));
  t.true(inSubnets('10.0.0.3', [parseCidr('10.0.0.0/30')]));
  t.false(inSubnets('10.0.0.4', ['10.0.0.0/30']));
  // an IPv6 ACL naming the mapped range also admits the IPv4 client
  t.true(inSubnets('10.1.1.1', ['::ffff:10.0.0.0/104']));
  t.true(inSubnets('1.2.3.4', ['0.0.0.0/0']));
  t.false(inSubnets('::1', ['0.0.0.0/0']));
});

test('interfaceForRemote picks the interface whose subnet holds the peer, longest prefix first', (t) => {
  const ifaces = [
    { name: 'a', address: '10.0.0.1', netmask: '255.0.0.0' },
    { name: 'b', address: '10.1.2.1', netmask: '255.255.255.0' },
    { name: 'c', address: '192.168.5.1', netmask: '255.255.255.0' },
  ];
  t.is(interfaceForRemote('10.1.2.200', ifaces)?.name, 'b');
  t.is(interfaceForRemote('10.200.0.1', ifaces)?.name, 'a');
  t.is(interfaceForRemote('::ffff:192.168.5.9', ifaces)?.name, 'c');
  t.is(interfaceForRemote('192.168.6.1', ifaces), undefined);
  t.is(interfaceForRemote('fe80::1', ifaces), undefined);
  t.is(interfaceForRemote('garbage', ifaces), undefined);
});

test('localAddressFor asks the routing table which local address reaches a peer', async (t) => {
  t.is(await localAddressFor('127.0.0.1'), '127.0.0.1');
  t.is(await localAddressFor('::ffff:127.0.0.2'), '127.0.0.1');
  t.is(await localAddressFor('not-an-ip'), undefined);
});

// ---------------------------------------------------------------------------------------
// Interface flags on a real (namespaced) host: lo, an up multicast link, a link with
// multicast off, a link that is down, and an interface without IPv4.

const why = labAvailable();
const lab = why ? undefined : createLab('tdnet', '10.92.0');

test.after.always(async () => {
  await lab?.down();
});

if (why) {
  test('interface flag lab test', (t) => {
    t.log(`SKIPPED the netns-lab test of defaultInterfaces: ${why}`);
    t.pass();
  });
}

(lab ? test : test.skip)('lab: defaultInterfaces keeps up multicast links; resolveInterfaces explains misses', async (t) => {
  t.timeout(60_000);
  await lab!.up();
  const noMcast = await lab!.addLink(1, '10.92.1');
  const down = await lab!.addLink(2, '10.92.2');
  const bare = `${lab!.prefix}d0`;
  for (const args of [
    ['link', 'set', noMcast.srvIf, 'multicast', 'off'],
    ['link', 'set', down.srvIf, 'down'],
    ['link', 'add', bare, 'type', 'veth', 'peer', 'name', `${lab!.prefix}d1`],
    ['link', 'set', bare, 'up'],
    ['link', 'set', `${lab!.prefix}d1`, 'up'],
  ]) {
    const r = await lab!.execSrv('ip', args, { timeoutMs: 10_000 });
    t.is(r.code, 0, `ip ${args.join(' ')}: ${r.stderr}`);
  }
  // veth carrier (IFF_RUNNING) is reported asynchronously by the kernel's link watcher
  const carrier = await lab!.execSrv('sh', ['-c', `for i in $(seq 50); do grep -q up /sys/class/net/${bare}/operstate && exit 0; sleep 0.1; done; exit 1`], { timeoutMs: 10_000 });
  t.is(carrier.code, 0, `${bare} never got carrier`);
  const code = `
    const net = await import('./src/util/net.ts');
    const out = { defaults: net.defaultInterfaces(), all: net.listInterfaces().map((i) => i.name) };
    for (const n of [${JSON.stringify(noMcast.srvIf)}, ${JSON.stringify(down.srvIf)}, ${JSON.stringify(bare)}, 'nosuch0']) {
      try { out[n] = net.resolveInterfaces([n]).map((i) => i.address); } catch (e) { out[n] = e.message; }
    }
    console.log(JSON.stringify(out));`;
  const r = await lab!.execSrv(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { timeoutMs: 20_000 });
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown> & { defaults: NetIface[]; all: string[] };
  // Node (libuv) lists only interfaces that are up and running
  t.deepEqual(out.all.sort(), ['lo', lab!.srvIf, noMcast.srvIf].sort());
  t.deepEqual(out.defaults.map((i) => [i.name, i.address, i.cidr]), [[lab!.srvIf, lab!.srvIp, `${lab!.srvIp}/24`]],
    'only the up, multicast, non-loopback link is a default');
  t.deepEqual(out[noMcast.srvIf], [noMcast.srvIp], 'explicitly named interfaces need not be defaults');
  t.regex(out[bare] as string, new RegExp(`"${bare}" has no IPv4 address; available interfaces: .*${lab!.srvIf} \\(${lab!.srvIp.replace(/\./g, '\\.')}\\)`));
  t.regex(out[down.srvIf] as string, new RegExp(`"${down.srvIf}" is down; available`));
  t.regex(out.nosuch0 as string, /"nosuch0" does not exist; available interfaces: /);
});
