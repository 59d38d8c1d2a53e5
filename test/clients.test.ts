import test from 'ava';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStringPromise } from 'xml2js';
import {
  ClientProfileError,
  ClientRegistry,
  defaultClientsDir,
  detectClient,
  parseClientProfile,
  resolveContainerAlias,
  samsungFeatureList,
  VIEW_KEYS,
} from '../src/upnp/clients.js';
import type { ViewKey } from '../src/upnp/clients.js';

const tmpDirs: string[] = [];
test.after.always(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

function dirWith(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'tapedeck-clients-'));
  tmpDirs.push(d);
  for (const [n, c] of Object.entries(files)) writeFileSync(join(d, n), c);
  return d;
}

const profile = (p: object) => JSON.stringify({ name: 'X', order: 1, match: { headers: { 'user-agent': 'X' } }, ...p });

// Real header samples from the field (and from the profiles' own examples).
const TABLE: [string, Record<string, string>, string][] = [
  ['Samsung C/D/E series TV', { 'user-agent': 'DLNADOC/1.50 SEC_HHP_[TV]UE40D7000/1.0' }, 'samsung'],
  ['Samsung BD player', { 'user-agent': 'DLNADOC/1.50 SEC_HHP_BD-D5100/1.0' }, 'samsung'],
  ['Samsung A series', { 'user-agent': 'SamsungWiselinkPro/1.0' }, 'samsung'],
  ['Samsung Tizen', { 'user-agent': 'SamsungWiselinkPro/1.0 DLNADOC/1.50 Samsung Tizen TV' }, 'samsung'],
  ['LG NetCast', { 'user-agent': 'Linux/2.6.31-1.0 UPnP/1.0 DLNADOC/1.50 INTEL_NMPR/2.0 LGE_DLNA_SDK/1.5.0' }, 'lg'],
  ['LG webOS', { 'user-agent': 'Linux/3.10.19-32.afro.4 UPnP/1.0 LGE WebOS TV LGE_DLNA_SDK/1.6.0/04.30.13 DLNADOC/1.50' }, 'lg'],
  ['Sony Bravia', { 'x-av-client-info': 'av=5.0; cn="Sony Corporation"; mn="BRAVIA KDL-40EX503"; mv="1.7";', 'user-agent': 'UPnP/1.0 DLNADOC/1.50' }, 'sony'],
  ['Sony BD player', { 'x-av-client-info': 'av=5.0; cn="Sony Corporation"; mn="Blu-ray Disc Player"; mv="2.0"' }, 'sony'],
  ['PlayStation 3', { 'user-agent': 'PLAYSTATION 3' }, 'sony'],
  ['PS3 via X-AV-Client-Info', { 'x-av-client-info': 'av=5.0; cn="Sony Computer Entertainment Inc."; mn="PLAYSTATION 3"; mv="1.0";' }, 'sony'],
  ['Panasonic Viera', { 'user-agent': 'Panasonic MIL DLNA CP UPnP/1.0 DLNADOC/1.50' }, 'panasonic'],
  ['Xbox 360', { 'user-agent': 'Xbox/2.0.17150.0 UPnP/1.0 Xbox/2.0.17150.0' }, 'xbox'],
  ['Windows Media Player', { 'user-agent': 'Windows-Media-Player/12.0.7601.17514' }, 'xbox'],
  ['VLC', { 'user-agent': 'VLC/3.0.18 LibVLC/3.0.18' }, 'vlc'],
  ['libupnp', { 'user-agent': 'Linux/5.15 UPnP/1.0 Portable SDK for UPnP devices/1.14.13' }, 'vlc'],
  ['Kodi', { 'user-agent': 'Kodi/20.2 (Linux; Android 11) Android/11.0.0 Sys_CPU/armv8 App_Bitness/64 Version/20.2-(20.2.0)-Git:20230630-5f418d0b13' }, 'kodi'],
  ['XBMC', { 'user-agent': 'XBMC/12.2 Git:20130502-32b1a5e (Linux; http://www.xbmc.org)' }, 'kodi'],
  ['BubbleUPnP', { 'user-agent': 'BubbleUPnP UPnP/1.1' }, 'bubbleupnp'],
  ['header names in any case', { 'User-Agent': 'Panasonic MIL DLNA CP' }, 'panasonic'],
  ['array-valued header', { 'x-av-client-info': ['av=5.0', 'mn="BRAVIA"'] as unknown as string }, 'sony'],
  ['unknown client', { 'user-agent': 'curl/8.5.0' }, 'generic'],
  ['no headers at all', {}, 'generic'],
  ['LG only as a word', { 'user-agent': 'BLGX-Player/1.0 UPnP/1.0' }, 'generic'],
];

const registry = ClientRegistry.load(defaultClientsDir());

for (const [what, headers, want] of TABLE) {
  test(`detect: ${what} → ${want}`, (t) => {
    t.is(registry.detect(headers).id, want);
  });
}

test('detect keeps its verdict per header values: the same answers the second time, in any order, and a bounded number kept', (t) => {
  const r = ClientRegistry.load(defaultClientsDir());
  for (let round = 0; round < 2; round++) {
    for (const [what, headers, want] of round ? [...TABLE].reverse() : TABLE) t.is(r.detect(headers).id, want, `${what} (round ${round})`);
  }
  // headers no profile looks at do not split the verdicts; those it looks at do
  t.is(r.detect({ 'user-agent': 'VLC/3.0', 'x-other': '1' }).id, 'vlc');
  t.is(r.detect({ 'user-agent': 'VLC/3.0', 'x-av-client-info': 'mn="BRAVIA"' }).id, 'sony');
  const before = r.verdictCount;
  t.true(before > 0 && before <= TABLE.length + 2);
  for (let k = 0; k < 500; k++) t.is(r.detect({ 'user-agent': `Player/${k}` }).id, 'generic');
  t.true(r.verdictCount <= 64, `kept ${r.verdictCount}`);
  t.is(r.detect({ 'user-agent': 'x'.repeat(2000) + ' VLC/3.0' }).id, 'vlc', 'a long header value is matched, not kept');
  t.is(r.detect({ 'user-agent': 'DLNADOC/1.50 SEC_HHP_TV/1.0' }).id, 'samsung', 'an evicted verdict is made again');
});

test('all shipped profiles load and carry the documented quirks', (t) => {
  const files = readdirSync(defaultClientsDir()).filter((f) => f.endsWith('.json'));
  t.deepEqual(files.sort(), ['bubbleupnp.json', 'generic.json', 'kodi.json', 'lg.json', 'panasonic.json', 'samsung.json', 'sony.json', 'vlc.json', 'xbox.json']);
  t.is(registry.fallback.id, 'generic');
  t.deepEqual(registry.fallback.quirks, { captionRes: true });
  const byId = Object.fromEntries(registry.profiles.map((p) => [p.id, p]));
  t.true(byId.samsung.quirks.sendsBookmark);
  t.true(byId.samsung.quirks.captionInfoSec);
  t.is(byId.samsung.quirks.didlNamespaces?.sec, 'http://www.sec.co.kr/');
  t.true(byId.xbox.quirks.msRegistrar);
  t.is(byId.xbox.quirks.containerAliases?.['4'], 'music.all');
  t.is(byId.xbox.quirks.containerAliases?.['7'], 'music.albums');
  t.is(byId.xbox.quirks.containerAliases?.['8'], 'video.all');
  t.true(byId.panasonic.quirks.ignoreSortCriteria);
  t.true(byId.lg.quirks.captionRes);
  // Sorted by order: Xbox first, VLC (generic libupnp) last.
  t.is(registry.profiles[0].id, 'xbox');
  t.is(registry.profiles.at(-1)!.id, 'vlc');
  t.is(detectClient({ 'user-agent': 'Xbox/2.0' }).id, 'xbox', 'module-level detectClient uses devices/clients');
});

test('a client seen once is remembered by address for an hour', (t) => {
  let now = 1_000_000;
  const r = ClientRegistry.load(defaultClientsDir(), () => now);
  t.is(r.detect({ 'user-agent': 'DLNADOC/1.50 SEC_HHP_TV/1.0' }, '192.168.1.50').id, 'samsung');
  t.is(r.detect({}, '192.168.1.50').id, 'samsung', 'an anonymous request from the same TV');
  t.is(r.detect({}, '192.168.1.51').id, 'generic', 'another address');
  t.is(r.detect({ 'user-agent': 'BubbleUPnP' }, '192.168.1.50').id, 'bubbleupnp', 'a matching header always wins');
  t.is(r.detect({}, '192.168.1.50').id, 'bubbleupnp');
  now += 60 * 60 * 1000 + 1;
  t.is(r.detect({}, '192.168.1.50').id, 'generic', 'expired after an hour');
});

test('match mode "all" needs every header', (t) => {
  const p = parseClientProfile('both.json', { name: 'Both', order: 1, match: { mode: 'all', headers: { 'user-agent': 'A', 'x-av-client-info': 'B' } } });
  const r = new ClientRegistry([p]);
  t.is(r.detect({ 'user-agent': 'A' }).id, 'generic');
  t.is(r.detect({ 'user-agent': 'A', 'x-av-client-info': 'B' }).id, 'both');
});

test('first match wins, by order then file name', (t) => {
  const d = dirWith({
    'b.json': profile({ name: 'B', order: 5 }),
    'a.json': profile({ name: 'A', order: 5 }),
    'c.json': profile({ name: 'C', order: 1 }),
  });
  const r = ClientRegistry.load(d);
  t.deepEqual(r.profiles.map((p) => p.id), ['c', 'a', 'b']);
  t.is(r.detect({ 'user-agent': 'X' }).id, 'c');
  t.is(r.fallback.id, 'generic', 'built-in fallback when the directory has none');
});

test('bad profile files fail with an error naming the file', (t) => {
  const cases: [string, string, RegExp][] = [
    ['broken.json', '{ "name": "x", ', /broken\.json: bad JSON/],
    ['regex.json', profile({ match: { headers: { 'user-agent': 'SEC_(HHP' } } }), /regex\.json: match\.headers\.user-agent: bad regex/],
    ['quirk.json', profile({ quirks: { sendBookmark: true } }), /quirk\.json: unknown quirk "sendBookmark"/],
    ['type.json', profile({ quirks: { captionRes: 'yes' } }), /type\.json: quirks\.captionRes must be true or false/],
    ['view.json', profile({ quirks: { containerAliases: { '4': 'music.everything' } } }), /view\.json: quirks\.containerAliases\.4: unknown view key "music\.everything"/],
    ['noname.json', profile({ name: '' }), /noname\.json: "name"/],
    ['order.json', profile({ order: 'first' }), /order\.json: "order" must be an integer/],
    ['nomatch.json', JSON.stringify({ name: 'x', order: 1 }), /nomatch\.json: "match"/],
    ['emptymatch.json', profile({ match: { headers: {} } }), /emptymatch\.json: match\.headers must be a non-empty/],
    ['field.json', profile({ quirkz: {} }), /field\.json: unknown field "quirkz"/],
    ['header.json', profile({ match: { headers: { 'user agent': 'x' } } }), /header\.json: match\.headers: bad header name/],
    ['fmt.json', profile({ quirks: { descriptionOverrides: { friendlyNameFormat: 'no placeholder' } } }), /fmt\.json: .*must contain %s/],
    ['desc.json', profile({ quirks: { descriptionOverrides: { color: 'red' } } }), /desc\.json: .*unknown field "color"/],
    ['fb.json', JSON.stringify({ name: 'x', order: 1, fallback: true, match: { headers: { a: 'b' } } }), /fb\.json: the fallback profile must not have "match"/],
    ['array.json', '[]', /array\.json: must be a JSON object/],
  ];
  for (const [file, content, re] of cases) {
    const d = dirWith({ [file]: content });
    const err = t.throws(() => ClientRegistry.load(d), undefined, file);
    t.true(err instanceof ClientProfileError || /bad JSON/.test(err!.message), file);
    t.regex(err!.message, re, file);
    t.true(err!.message.includes(join(d, file)), `${file}: message names the full path`);
  }
  const two = dirWith({
    'g1.json': JSON.stringify({ name: 'g1', order: 1, fallback: true }),
    'g2.json': JSON.stringify({ name: 'g2', order: 2, fallback: true }),
  });
  t.throws(() => ClientRegistry.load(two), { message: /more than one fallback/ });
  t.throws(() => ClientRegistry.load(join(tmpdir(), 'tapedeck-no-such-clients')), { message: /cannot read client profiles directory/ });
});

test('resolveContainerAlias maps Xbox IDs through view keys', (t) => {
  const xbox = registry.detect({ 'user-agent': 'Xbox/2.0' });
  const views: Partial<Record<ViewKey, string>> = { 'music.all': 'music/all', 'music.albums': 'music/albums' };
  t.is(resolveContainerAlias(xbox, '4', views), 'music/all');
  t.is(resolveContainerAlias(xbox, '7', views), 'music/albums');
  t.is(resolveContainerAlias(xbox, '5', views), '5', 'view the catalog lacks: unchanged');
  t.is(resolveContainerAlias(xbox, '0', views), '0');
  t.is(resolveContainerAlias(registry.fallback, '4', views), '4', 'other clients: IDs are literal');
  t.is(resolveContainerAlias(undefined, '4', views), '4');
  t.true(VIEW_KEYS.includes('music.all'));
});

test('samsungFeatureList: BASICVIEW containers from the profile, escaped, well-formed', async (t) => {
  const samsung = registry.detect({ 'user-agent': 'SEC_HHP_TV' });
  const xml = samsungFeatureList(samsung, { music: 'music', video: 'v&<"', image: 'pictures' });
  const doc = await parseStringPromise(xml);
  const feature = doc.Features.Feature[0];
  t.is(feature.$.name, 'samsung.com_BASICVIEW');
  t.deepEqual(
    feature.container.map((c: { $: Record<string, string> }) => [c.$.id, c.$.type]),
    [
      ['music', 'object.item.audioItem'],
      ['v&<"', 'object.item.videoItem'],
      ['pictures', 'object.item.imageItem'],
    ],
  );
  const partial = await parseStringPromise(samsungFeatureList(undefined, { music: 'm' }));
  t.is(partial.Features.Feature[0].container.length, 1, 'views the catalog lacks are left out');
});
