// Client profiles act everywhere (issue 10, item 6): every quirk a profile in devices/clients/
// declares changes behaviour on each path it concerns, checked against the running server with
// that client's headers and, as the control, with a generic client's. Each client talks from its
// own loopback address (127.0.0.x), because a profile is remembered per address.
// Also the SERVER header (UDA 1.0: `OS/version UPnP/1.0 product/version`).
import test from 'ava';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseStringPromise } from 'xml2js';
import { createDemoLibrary } from '../src/demo/library.js';
import { itemIdForPath } from '../src/catalog/layout.js';
import { serverHeader } from '../src/upnp/server-header.js';
import { soapEnvelope, CDS } from './helpers/upnp-client.js';
import { serveMedia } from './helpers/serve.js';
import { tempDir } from './helpers/temp.js';

const MSR = 'urn:microsoft.com:service:X_MS_MediaReceiverRegistrar:1';
const UA = {
  xbox: 'Xbox/2.0.17150.0 UPnP/1.0 Xbox/2.0.17150.0',
  samsung: 'DLNADOC/1.50 SEC_HHP_[TV]UE40D7000/1.0',
  panasonic: 'Panasonic MIL DLNA CP UPnP/1.0 DLNADOC/1.50',
  generic: 'SomePlayer/1.0',
};
const FROM: Record<keyof typeof UA, string> = { xbox: '127.0.0.11', samsung: '127.0.0.12', panasonic: '127.0.0.13', generic: '127.0.0.14' };

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request as `client` (its User-Agent, from its own loopback address). */
function as(client: keyof typeof UA, url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', localAddress: FROM[client], headers: { 'user-agent': UA[client], ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function action(client: keyof typeof UA, url: string, service: string, name: string, args: Record<string, string | number>) {
  const r = await as(client, url, { method: 'POST', headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: `"${service}#${name}"` }, body: soapEnvelope(service, name, args) });
  const doc = await parseStringPromise(r.body, { explicitArray: false, tagNameProcessors: [(n: string) => n.replace(/^.*:/, '')], ignoreAttrs: true });
  const b = doc.Envelope.Body;
  return { status: r.status, fault: b.Fault ? Number(b.Fault.detail.UPnPError.errorCode) : undefined, out: (b[`${name}Response`] ?? {}) as Record<string, string> };
}

const browseArgs = (id: string, extra: Record<string, string> = {}) => ({ ObjectID: id, BrowseFlag: 'BrowseDirectChildren', Filter: '*', StartingIndex: 0, RequestedCount: 0, SortCriteria: '', ...extra });

test('SERVER header: OS/version UPnP/1.0 product/version (UDA 1.0), tokens without spaces', (t) => {
  t.is(serverHeader('Linux', '6.1.0-18-amd64'), 'Linux/6.1 UPnP/1.0 DLNADOC/1.50 Tapedeck/0.1.0');
  t.is(serverHeader('Linux', '5'), 'Linux/5 UPnP/1.0 DLNADOC/1.50 Tapedeck/0.1.0');
  t.is(serverHeader('Windows NT', 'weird release'), 'Windows-NT/weird-release UPnP/1.0 DLNADOC/1.50 Tapedeck/0.1.0');
  t.regex(serverHeader(), /^[^\s/]+\/[^\s/]+ UPnP\/1\.0 DLNADOC\/1\.50 Tapedeck\/0\.1\.0$/);
});

test('every quirk acts on each path it concerns, and only for the clients whose profile declares it', async (t) => {
  t.timeout(120_000);
  const dir = await tempDir(t, 'tapedeck-quirks-');
  const media = join(dir, 'media');
  await createDemoLibrary(media);
  const { base } = await serveMedia(t, media);
  const cds = `${base}/upnp/control/cds`;
  const avi = itemIdForPath(join(media, 'Video', 'Counting Clock.avi'));

  // the HTTP SERVER header of every response
  const desc = await as('generic', `${base}/description.xml`);
  t.regex(String(desc.headers.server), /^Linux\/\d+(\.\d+)? UPnP\/1\.0 DLNADOC\/1\.50 Tapedeck\/0\.1\.0$/);

  // mimeOverrides (Xbox: video/x-msvideo → video/avi): DIDL protocolInfo and the HTTP Content-Type
  const didlOf = async (client: keyof typeof UA) => (await action(client, cds, CDS, 'Browse', { ...browseArgs(avi), BrowseFlag: 'BrowseMetadata' })).out.Result;
  t.regex(await didlOf('xbox'), /protocolInfo="http-get:\*:video\/avi:/);
  t.regex(await didlOf('generic'), /protocolInfo="http-get:\*:video\/x-msvideo:/);
  for (const method of ['GET', 'HEAD']) {
    t.is((await as('xbox', `${base}/media/${avi}.avi`, { method, headers: { range: 'bytes=0-9' } })).headers['content-type'], 'video/avi', method);
    t.is((await as('generic', `${base}/media/${avi}.avi`, { method, headers: { range: 'bytes=0-9' } })).headers['content-type'], 'video/x-msvideo', method);
  }

  // msRegistrar (Xbox): IsAuthorized / IsValidated answer 1 for it, 0 for anyone else
  for (const name of ['IsAuthorized', 'IsValidated']) {
    t.is((await action('xbox', `${base}/upnp/control/msr`, MSR, name, { DeviceID: '' })).out.Result, '1', name);
    t.is((await action('generic', `${base}/upnp/control/msr`, MSR, name, { DeviceID: '' })).out.Result, '0', name);
  }

  // containerAliases (Xbox "7" = all albums); for others "7" is just an unknown ID
  const albums = await action('xbox', cds, CDS, 'Browse', browseArgs('7'));
  t.is(albums.out.TotalMatches, '4');
  t.regex(albums.out.Result, /object\.container\.album\.musicAlbum/);
  t.is((await action('generic', cds, CDS, 'Browse', browseArgs('7'))).fault, 701);

  // ignoreSortCriteria (Panasonic): a SortCriteria we cannot sort by is ignored, not a 709
  const bogus = { SortCriteria: '+x:nonsense' };
  const pana = await action('panasonic', cds, CDS, 'Browse', browseArgs('music/all', bogus));
  t.is(pana.fault, undefined);
  t.is(pana.out.TotalMatches, '12');
  t.is((await action('generic', cds, CDS, 'Browse', browseArgs('music/all', bogus))).fault, 709);

  // lenientTransferMode (Samsung): Interactive on a video is served; others get 406
  const interactive = { 'transferMode.dlna.org': 'Interactive', range: 'bytes=0-9' };
  t.is((await as('samsung', `${base}/media/${avi}.avi`, { headers: interactive })).status, 206);
  t.is((await as('generic', `${base}/media/${avi}.avi`, { headers: interactive })).status, 406);

  // featureList (Samsung X_GetFeatureList) names our containers
  const features = await action('samsung', cds, CDS, 'X_GetFeatureList', {});
  t.regex(features.out.FeatureList, /<container id="video" type="object\.item\.videoItem"\/>/);

  // didlNamespaces (Samsung): xmlns:sec on the DIDL-Lite root; not for others
  t.regex(await didlOf('samsung'), /^<DIDL-Lite [^>]*xmlns:sec="http:\/\/www\.sec\.co\.kr\/"/);
  t.notRegex(await didlOf('generic'), /xmlns:sec=/);

  // descriptionOverrides (Xbox): the description it reads names Windows Media Player Sharing
  t.regex((await as('xbox', `${base}/description.xml`)).body, /<modelName>Windows Media Player Sharing<\/modelName>/);
  t.notRegex(desc.body, /Windows Media Player Sharing/);
  // descriptionOverrides.productCap (Samsung): the description lists getCaptionInfo.sec and getMediaInfo.sec
  // in sec:ProductCap / sec:X_ProductCap, or the TV never asks for them; nobody else gets them
  const samsungDesc = (await as('samsung', `${base}/description.xml`)).body;
  for (const el of ['ProductCap', 'X_ProductCap']) {
    t.regex(samsungDesc, new RegExp(`<sec:${el} xmlns:sec="http://www\\.sec\\.co\\.kr/dlna">smi,DCM10,getMediaInfo\\.sec,getCaptionInfo\\.sec</sec:${el}>`));
  }
  await t.notThrowsAsync(parseStringPromise(samsungDesc), 'well-formed with the sec elements');
  t.notRegex(desc.body, /ProductCap/);
  t.notRegex((await as('xbox', `${base}/description.xml`)).body, /ProductCap/);
  // captionInfoSec / captionRes: test/subtitles.test.ts; sendsBookmark: the bookmark tests
});
