import test from 'ava';
import type { ExecutionContext } from 'ava';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseStringPromise } from 'xml2js';
import { DescriptionError, DEVICE_TEMPLATE, loadDescriptions, SCPD_FILES } from '../src/upnp/description.js';
import type { DeviceVars, ScpdName } from '../src/upnp/description.js';
import { parseClientProfile } from '../src/upnp/clients.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const GOLDEN = join(HERE, 'golden');
const DEVICES = join(HERE, '..', 'devices');

function golden(t: ExecutionContext, name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.UPDATE_GOLDEN !== '1') t.fail(`golden file ${name} missing (run with UPDATE_GOLDEN=1 to create it)`);
    writeFileSync(file, actual);
    return;
  }
  t.is(actual, readFileSync(file, 'utf8'), `output differs from golden file ${name}`);
}

const VARS: DeviceVars = {
  friendlyName: 'Tapedeck on nas01',
  uuid: '4d696e69-444c-164e-9d41-b827eb54c0f2',
  serialNumber: '12345678',
  modelNumber: '0.1.0',
};

const tmpDirs: string[] = [];
test.after.always(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

/** A copy of devices/ with the device template replaced. */
function devicesWith(template: string): string {
  const d = mkdtempSync(join(tmpdir(), 'tapedeck-desc-'));
  tmpDirs.push(d);
  for (const f of Object.values(SCPD_FILES)) copyFileSync(join(DEVICES, f), join(d, f));
  writeFileSync(join(d, DEVICE_TEMPLATE), template);
  return d;
}

test('device description: golden, parses, carries the required UDA/DLNA fields', async (t) => {
  const d = loadDescriptions(DEVICES);
  const xml = d.deviceDescription(VARS);
  golden(t, 'device-description.xml', xml);
  const doc = await parseStringPromise(xml);
  const root = doc.root;
  t.is(root.$.xmlns, 'urn:schemas-upnp-org:device-1-0');
  t.is(root.specVersion[0].major[0], '1');
  t.is(root.specVersion[0].minor[0], '0');
  t.is(root.URLBase, undefined, 'no URLBase without baseUrl');
  const dev = root.device[0];
  t.is(dev.deviceType[0], 'urn:schemas-upnp-org:device:MediaServer:1');
  t.is(dev['dlna:X_DLNADOC'][0]._, 'DMS-1.50');
  t.is(dev['dlna:X_DLNADOC'][0].$['xmlns:dlna'], 'urn:schemas-dlna-org:device-1-0');
  t.is(dev.friendlyName[0], 'Tapedeck on nas01');
  t.is(dev.manufacturer[0], 'Tapedeck');
  t.is(dev.modelName[0], 'Tapedeck');
  t.is(dev.modelNumber[0], '0.1.0');
  t.is(dev.serialNumber[0], '12345678');
  t.is(dev.UDN[0], 'uuid:4d696e69-444c-164e-9d41-b827eb54c0f2');
  t.is(dev.presentationURL[0], '/');
  t.is(dev.manufacturerURL, undefined, 'optional elements without a value are left out');
  t.is(dev.modelURL, undefined);
  const icons = dev.iconList[0].icon.map((i: Record<string, string[]>) => [i.mimetype[0], i.width[0], i.height[0], i.depth[0], i.url[0]]);
  t.deepEqual(icons, [
    ['image/png', '48', '48', '32', '/icons/icon-48.png'],
    ['image/png', '120', '120', '32', '/icons/icon-120.png'],
    ['image/jpeg', '48', '48', '24', '/icons/icon-48.jpg'],
    ['image/jpeg', '120', '120', '24', '/icons/icon-120.jpg'],
  ]);
  const services = dev.serviceList[0].service.map((s: Record<string, string[]>) => [s.serviceType[0], s.serviceId[0], s.SCPDURL[0], s.controlURL[0], s.eventSubURL[0]]);
  t.deepEqual(services, [
    ['urn:schemas-upnp-org:service:ContentDirectory:1', 'urn:upnp-org:serviceId:ContentDirectory', '/upnp/cds.xml', '/upnp/control/cds', '/upnp/event/cds'],
    ['urn:schemas-upnp-org:service:ConnectionManager:1', 'urn:upnp-org:serviceId:ConnectionManager', '/upnp/cms.xml', '/upnp/control/cms', '/upnp/event/cms'],
    [
      'urn:microsoft.com:service:X_MS_MediaReceiverRegistrar:1',
      'urn:microsoft.com:serviceId:X_MS_MediaReceiverRegistrar',
      '/upnp/msr.xml',
      '/upnp/control/msr',
      '/upnp/event/msr',
    ],
  ]);
});

test('device description: values are escaped; optional fields appear when given', async (t) => {
  const d = loadDescriptions(DEVICES);
  const xml = d.deviceDescription({
    ...VARS,
    friendlyName: 'Tom & Jerry\'s <NAS> "1"\u0007',
    uuid: 'uuid:4d696e69-444c-164e-9d41-b827eb54c0f2',
    baseUrl: 'http://192.168.1.10:8200/',
    manufacturerURL: 'https://example.org/tapedeck?a=1&b=2',
  });
  t.true(xml.includes('<friendlyName>Tom &amp; Jerry\'s &lt;NAS&gt; "1"</friendlyName>'));
  t.true(xml.includes('<URLBase>http://192.168.1.10:8200/</URLBase>'));
  t.true(xml.includes('<presentationURL>http://192.168.1.10:8200/</presentationURL>'));
  t.true(xml.includes('<manufacturerURL>https://example.org/tapedeck?a=1&amp;b=2</manufacturerURL>'));
  t.true(xml.includes('<UDN>uuid:4d696e69-444c-164e-9d41-b827eb54c0f2</UDN>'), 'a uuid: prefix is not doubled');
  const doc = await parseStringPromise(xml);
  t.is(doc.root.device[0].friendlyName[0], 'Tom & Jerry\'s <NAS> "1"');
});

test('device description: Xbox profile overrides model fields', (t) => {
  const d = loadDescriptions(DEVICES);
  const xbox = parseClientProfile('xbox.json', JSON.parse(readFileSync(join(DEVICES, 'clients', 'xbox.json'), 'utf8')));
  const xml = d.deviceDescription(VARS, xbox);
  t.true(xml.includes('<modelName>Windows Media Player Sharing</modelName>'));
  t.true(xml.includes('<modelNumber>12.0</modelNumber>'));
  t.true(xml.includes('<friendlyName>Tapedeck on nas01: 1</friendlyName>'));
  t.true(xml.includes('<manufacturer>Tapedeck</manufacturer>'));
});

test('device description: missing required values and bad UUIDs are errors', (t) => {
  const d = loadDescriptions(DEVICES);
  t.throws(() => d.deviceDescription({ ...VARS, friendlyName: '' }), { instanceOf: DescriptionError, message: /friendlyName/ });
  t.throws(() => d.deviceDescription({ ...VARS, serialNumber: undefined as unknown as string }), { message: /serialNumber/ });
  t.throws(() => d.deviceDescription({ ...VARS, uuid: 'not-a-uuid' }), { message: /not a UUID/ });
  t.throws(() => d.deviceDescription({ ...VARS, uuid: '4d696e69-444c-164e-9d41-b827eb54c0f2"/><x' }), { message: /not a UUID/ });
});

test('template bugs fail at load time', (t) => {
  const good = readFileSync(join(DEVICES, DEVICE_TEMPLATE), 'utf8');
  t.notThrows(() => loadDescriptions(devicesWith(good)));
  t.throws(() => loadDescriptions(devicesWith(good.replace('{{serialNumber}}', '{{serialNumbr}}'))), {
    instanceOf: DescriptionError,
    message: /unknown placeholder \{\{serialNumbr\}\}/,
  });
  t.throws(() => loadDescriptions(devicesWith(good.replace('{{modelNumber}}', '{{ modelNumber }}'))), { message: /malformed placeholder/ });
  t.throws(() => loadDescriptions(devicesWith(good.replace('{{modelNumber}}', '{{modelNumber'))), { message: /stray braces/ });
  t.throws(() => loadDescriptions(devicesWith(good.replace('<URLBase>{{URLBase?}}</URLBase>', '<URLBase>x{{URLBase?}}</URLBase>'))), {
    message: /malformed placeholder/,
  });
  t.throws(() => loadDescriptions(devicesWith(good.replace('<modelURL>{{modelURL?}}</modelURL>', '<modelURL>{{modelURL}}</modelURL>'))), {
    message: /is optional/,
  });
  t.throws(() => loadDescriptions(join(tmpdir(), 'tapedeck-no-such-dir')), { message: /cannot read description template/ });
  const d = devicesWith(good);
  writeFileSync(join(d, SCPD_FILES.cms), '<scpd>{{x}}</scpd>');
  t.throws(() => loadDescriptions(d), { message: /SCPDs take no placeholders/ });
});

interface Scpd {
  actions: Map<string, { name: string; direction: string; related: string }[]>;
  vars: Map<string, { sendEvents: string; dataType: string; allowed: string[] }>;
}

async function parseScpd(xml: string): Promise<Scpd> {
  const doc = await parseStringPromise(xml);
  const s = doc.scpd;
  const actions = new Map();
  for (const a of s.actionList[0].action) {
    const args = (a.argumentList?.[0].argument ?? []).map((g: Record<string, string[]>) => ({
      name: g.name[0],
      direction: g.direction[0],
      related: g.relatedStateVariable[0],
    }));
    actions.set(a.name[0], args);
  }
  const vars = new Map();
  for (const v of s.serviceStateTable[0].stateVariable) {
    vars.set(v.name[0], { sendEvents: v.$.sendEvents, dataType: v.dataType[0], allowed: v.allowedValueList?.[0].allowedValue ?? [] });
  }
  return { actions, vars };
}

const EXPECTED: Record<ScpdName, { actions: Record<string, string[]>; evented: string[] }> = {
  cds: {
    actions: {
      GetSearchCapabilities: ['SearchCaps'],
      GetSortCapabilities: ['SortCaps'],
      GetSystemUpdateID: ['Id'],
      Browse: ['ObjectID', 'BrowseFlag', 'Filter', 'StartingIndex', 'RequestedCount', 'SortCriteria', 'Result', 'NumberReturned', 'TotalMatches', 'UpdateID'],
      Search: ['ContainerID', 'SearchCriteria', 'Filter', 'StartingIndex', 'RequestedCount', 'SortCriteria', 'Result', 'NumberReturned', 'TotalMatches', 'UpdateID'],
      X_GetFeatureList: ['FeatureList'],
      X_SetBookmark: ['CategoryType', 'RID', 'ObjectID', 'PosSecond'],
    },
    evented: ['SystemUpdateID', 'ContainerUpdateIDs'],
  },
  cms: {
    actions: {
      GetProtocolInfo: ['Source', 'Sink'],
      GetCurrentConnectionIDs: ['ConnectionIDs'],
      GetCurrentConnectionInfo: ['ConnectionID', 'RcsID', 'AVTransportID', 'ProtocolInfo', 'PeerConnectionManager', 'PeerConnectionID', 'Direction', 'Status'],
    },
    evented: ['SourceProtocolInfo', 'SinkProtocolInfo', 'CurrentConnectionIDs'],
  },
  msr: {
    actions: {
      IsAuthorized: ['DeviceID', 'Result'],
      RegisterDevice: ['RegistrationReqMsg', 'RegistrationRespMsg'],
      IsValidated: ['DeviceID', 'Result'],
    },
    evented: ['AuthorizationGrantedUpdateID', 'AuthorizationDeniedUpdateID', 'ValidationSucceededUpdateID', 'ValidationRevokedUpdateID'],
  },
};

for (const name of Object.keys(SCPD_FILES) as ScpdName[]) {
  test(`SCPD ${name}: golden, parses, complete, every relatedStateVariable exists`, async (t) => {
    const xml = loadDescriptions(DEVICES).scpd(name);
    golden(t, `scpd-${name}.xml`, xml);
    const doc = await parseStringPromise(xml);
    t.is(doc.scpd.$.xmlns, 'urn:schemas-upnp-org:service-1-0');
    const s = await parseScpd(xml);
    const want = EXPECTED[name];
    t.deepEqual([...s.actions.keys()], Object.keys(want.actions));
    for (const [action, args] of s.actions) {
      t.deepEqual(args.map((a) => a.name), want.actions[action], `${action} arguments (in order)`);
      let seenOut = false;
      for (const a of args) {
        t.true(s.vars.has(a.related), `${action}.${a.name}: relatedStateVariable ${a.related} exists`);
        t.true(a.direction === 'in' || a.direction === 'out', `${action}.${a.name}: direction`);
        if (a.direction === 'out') seenOut = true;
        else t.false(seenOut, `${action}.${a.name}: in-arguments come before out-arguments`);
      }
    }
    const evented = [...s.vars].filter(([, v]) => v.sendEvents === 'yes').map(([n]) => n);
    t.deepEqual(evented.sort(), [...want.evented].sort());
    for (const [n, v] of s.vars) {
      t.true(['yes', 'no'].includes(v.sendEvents), `${n}: sendEvents`);
      t.true(['string', 'ui4', 'i4', 'int', 'bin.base64', 'boolean'].includes(v.dataType), `${n}: dataType ${v.dataType}`);
      if (!want.evented.includes(n)) {
        const used = [...s.actions.values()].some((args) => args.some((a) => a.related === n));
        t.true(used, `${n}: a non-evented state variable is used by some action`);
      }
    }
  });
}

test('SCPD allowed values', async (t) => {
  const d = loadDescriptions(DEVICES);
  const cds = await parseScpd(d.scpd('cds'));
  t.deepEqual(cds.vars.get('A_ARG_TYPE_BrowseFlag')!.allowed, ['BrowseMetadata', 'BrowseDirectChildren']);
  t.is(cds.vars.get('SystemUpdateID')!.dataType, 'ui4');
  const cms = await parseScpd(d.scpd('cms'));
  t.deepEqual(cms.vars.get('A_ARG_TYPE_Direction')!.allowed, ['Input', 'Output']);
  t.deepEqual(cms.vars.get('A_ARG_TYPE_ConnectionStatus')!.allowed, ['OK', 'ContentFormatMismatch', 'InsufficientBandwidth', 'UnreliableChannel', 'Unknown']);
  t.is(cms.vars.get('A_ARG_TYPE_ConnectionID')!.dataType, 'i4');
  t.throws(() => d.scpd('nope' as ScpdName), { message: /unknown service description/ });
});
