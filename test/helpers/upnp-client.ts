// A small UPnP control point for tests: SOAP calls, DIDL-Lite parsing.
import { parseStringPromise } from 'xml2js';

export interface SoapResult {
  status: number;
  body: string;
  out: Record<string, string>;
  fault?: { code: number; description: string };
}

export function soapEnvelope(serviceType: string, action: string, args: Record<string, string | number>): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const inner = Object.entries(args)
    .map(([k, v]) => `<${k}>${esc(String(v))}</${k}>`)
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:${action} xmlns:u="${serviceType}">${inner}</u:${action}></s:Body></s:Envelope>`;
}

export async function soap(controlUrl: string, serviceType: string, action: string, args: Record<string, string | number> = {}, headers: Record<string, string> = {}): Promise<SoapResult> {
  const res = await fetch(controlUrl, {
    method: 'POST',
    headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: `"${serviceType}#${action}"`, ...headers },
    body: soapEnvelope(serviceType, action, args),
  });
  const body = await res.text();
  const doc = await parseStringPromise(body, { explicitArray: false, tagNameProcessors: [(n: string) => n.replace(/^.*:/, '')], ignoreAttrs: true });
  const b = doc.Envelope.Body;
  if (b.Fault) {
    const e = b.Fault.detail.UPnPError;
    return { status: res.status, body, out: {}, fault: { code: Number(e.errorCode), description: e.errorDescription } };
  }
  const resp = b[`${action}Response`] ?? {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(resp)) out[k] = typeof v === 'string' ? v : '';
  return { status: res.status, body, out };
}

export interface DidlEntry {
  kind: 'item' | 'container';
  id: string;
  parentID: string;
  refID?: string;
  childCount?: number;
  title: string;
  cls: string;
  props: Record<string, string>;
  res: { url: string; attrs: Record<string, string> }[];
}

export async function parseDidl(xml: string): Promise<DidlEntry[]> {
  const doc = await parseStringPromise(xml, { explicitArray: true, explicitChildren: true, preserveChildrenOrder: true, charsAsChildren: false });
  const root = doc['DIDL-Lite'];
  const out: DidlEntry[] = [];
  for (const node of root.$$ ?? []) {
    const kind = node['#name'] as 'item' | 'container';
    const a = node.$ ?? {};
    const props: Record<string, string> = {};
    const res: DidlEntry['res'] = [];
    for (const ch of node.$$ ?? []) {
      if (ch['#name'] === 'res') res.push({ url: ch._ ?? '', attrs: ch.$ ?? {} });
      else props[ch['#name']] = ch._ ?? '';
    }
    out.push({
      kind,
      id: a.id,
      parentID: a.parentID,
      refID: a.refID,
      childCount: a.childCount === undefined ? undefined : Number(a.childCount),
      title: props['dc:title'],
      cls: props['upnp:class'],
      props,
      res,
    });
  }
  return out;
}

export const CDS = 'urn:schemas-upnp-org:service:ContentDirectory:1';
export const CMS = 'urn:schemas-upnp-org:service:ConnectionManager:1';

export async function browse(controlUrl: string, id: string, flag: 'BrowseDirectChildren' | 'BrowseMetadata' = 'BrowseDirectChildren', extra: Record<string, string | number> = {}) {
  const r = await soap(controlUrl, CDS, 'Browse', { ObjectID: id, BrowseFlag: flag, Filter: '*', StartingIndex: 0, RequestedCount: 0, SortCriteria: '', ...extra });
  if (r.fault) return { ...r, entries: [] as DidlEntry[], total: 0, returned: 0 };
  return { ...r, entries: await parseDidl(r.out.Result), total: Number(r.out.TotalMatches), returned: Number(r.out.NumberReturned) };
}
