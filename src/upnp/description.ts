// Device and service descriptions (UDA 1.0 §2) from the templates in devices/.
//
// Template syntax (devices/MediaServer.xml):
//   {{name}}                   required value, escaped
//   <tag>{{name?}}</tag>       optional value: the whole element is left out when the
//                              value is missing or empty (URLBase, presentationURL, ...)
// Every placeholder must be one this module knows (checked when the templates are
// loaded) and every required value must be given (checked when rendering), so a
// template bug fails at start-up or on first render instead of shipping silently.
// The SCPDs (devices/ContentDirectory.xml, ...) are served verbatim and must hold no
// placeholder at all.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { escText } from '../util/xml.js';
import type { ClientProfile, DescriptionOverrides } from './clients.js';

export const DEVICE_TEMPLATE = 'MediaServer.xml';
export const SCPD_FILES = {
  cds: 'ContentDirectory.xml',
  cms: 'ConnectionManager.xml',
  msr: 'X_MS_MediaReceiverRegistrar.xml',
} as const;
export type ScpdName = keyof typeof SCPD_FILES;

export interface DeviceVars {
  friendlyName: string;
  /** With or without the "uuid:" prefix. */
  uuid: string;
  serialNumber: string;
  /** Tapedeck's version. */
  modelNumber: string;
  /** Default: `${baseUrl}/` when baseUrl is given, else "/". */
  presentationURL?: string;
  /** http://host:port; written as URLBase when given. */
  baseUrl?: string;
  manufacturerURL?: string;
  modelURL?: string;
}

export class DescriptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DescriptionError';
  }
}

const DEFAULTS = {
  manufacturer: 'Tapedeck',
  modelName: 'Tapedeck',
  modelDescription: 'Tapedeck media server for disk and tape libraries',
};

/** Placeholders the device template may use; `true` = required. */
const DEVICE_PLACEHOLDERS: Record<string, boolean> = {
  friendlyName: true,
  manufacturer: true,
  manufacturerURL: false,
  modelDescription: true,
  modelName: true,
  modelNumber: true,
  modelURL: false,
  serialNumber: true,
  uuid: true,
  presentationURL: false,
  URLBase: false,
  productCap: false,
};

const UUID = /^(?:uuid:)?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;
const ANY_PLACEHOLDER = /\{\{([^{}]*)\}\}/g;
// an optional element may carry attributes (a namespace declaration: <sec:ProductCap xmlns:sec="...">)
const OPTIONAL_ELEMENT = /([ \t]*)<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*="[^"{}]*")*)>\{\{([A-Za-z_]\w*)\?\}\}<\/\2>(\r?\n)?/g;

type Part = { kind: 'text'; text: string } | { kind: 'value'; name: string } | { kind: 'optional'; name: string; before: string; after: string };

/** Splits a template into literal text, required values and optional elements. */
function compile(file: string, src: string, known: Record<string, boolean>): Part[] {
  const parts: Part[] = [];
  const pushText = (text: string) => {
    if (!text) return;
    let last = 0;
    for (const m of text.matchAll(ANY_PLACEHOLDER)) {
      const name = m[1];
      if (!/^[A-Za-z_]\w*$/.test(name)) {
        throw new DescriptionError(`${file}: malformed placeholder {{${name}}} (optional values must be the whole content of an element: <tag>{{name?}}</tag>)`);
      }
      if (!(name in known)) throw new DescriptionError(`${file}: unknown placeholder {{${name}}}`);
      if (!known[name]) throw new DescriptionError(`${file}: {{${name}}} is optional; write it as <tag>{{${name}?}}</tag>`);
      parts.push({ kind: 'text', text: text.slice(last, m.index) }, { kind: 'value', name });
      last = m.index! + m[0].length;
    }
    parts.push({ kind: 'text', text: text.slice(last) });
  };
  let last = 0;
  for (const m of src.matchAll(OPTIONAL_ELEMENT)) {
    const [whole, indent, tag, attrs, name, nl] = m;
    if (!(name in known)) throw new DescriptionError(`${file}: unknown placeholder {{${name}?}}`);
    pushText(src.slice(last, m.index));
    parts.push({ kind: 'optional', name, before: `${indent}<${tag}${attrs}>`, after: `</${tag}>${nl ?? ''}` });
    last = m.index! + whole.length;
  }
  pushText(src.slice(last));
  for (const p of parts) {
    if (p.kind === 'text' && (p.text.includes('{{') || p.text.includes('}}'))) {
      throw new DescriptionError(`${file}: stray braces in template text near ${JSON.stringify(p.text.slice(p.text.indexOf('{{'), p.text.indexOf('{{') + 30))}`);
    }
  }
  return parts;
}

function render(file: string, parts: Part[], values: Record<string, string | undefined>): string {
  let out = '';
  for (const p of parts) {
    if (p.kind === 'text') out += p.text;
    else if (p.kind === 'value') {
      const v = values[p.name];
      if (v === undefined || v === '') throw new DescriptionError(`${file}: no value for required {{${p.name}}}`);
      out += escText(v);
    } else {
      const v = values[p.name];
      if (v !== undefined && v !== '') out += p.before + escText(v) + p.after;
    }
  }
  return out;
}

export interface Descriptions {
  /** The device description; a client profile may override model fields (Xbox). */
  deviceDescription(vars: DeviceVars, client?: ClientProfile): string;
  /** A service description (SCPD), verbatim from devices/. */
  scpd(name: ScpdName): string;
}

function readTemplate(dir: string, name: string): string {
  const file = join(dir, name);
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new DescriptionError(`cannot read description template ${file}: ${(e as Error).message}`);
  }
}

/** Reads and checks the templates in `devicesDir` once. */
export function loadDescriptions(devicesDir: string): Descriptions {
  const deviceFile = join(devicesDir, DEVICE_TEMPLATE);
  const deviceParts = compile(deviceFile, readTemplate(devicesDir, DEVICE_TEMPLATE), DEVICE_PLACEHOLDERS);
  const scpds = {} as Record<ScpdName, string>;
  for (const [key, name] of Object.entries(SCPD_FILES) as [ScpdName, string][]) {
    const text = readTemplate(devicesDir, name);
    if (text.includes('{{') || text.includes('}}')) throw new DescriptionError(`${join(devicesDir, name)}: SCPDs take no placeholders`);
    if (!/<scpd[\s>]/.test(text)) throw new DescriptionError(`${join(devicesDir, name)}: not an SCPD (no <scpd> element)`);
    scpds[key] = text;
  }

  return {
    deviceDescription(vars: DeviceVars, client?: ClientProfile): string {
      const m = UUID.exec(vars.uuid?.trim() ?? '');
      if (!m) throw new DescriptionError(`device uuid ${JSON.stringify(vars.uuid)} is not a UUID`);
      const base = vars.baseUrl?.replace(/\/+$/, '');
      const o: DescriptionOverrides = client?.quirks.descriptionOverrides ?? {};
      const friendlyName = o.friendlyNameFormat ? o.friendlyNameFormat.split('%s').join(vars.friendlyName) : vars.friendlyName;
      const values: Record<string, string | undefined> = {
        friendlyName,
        manufacturer: o.manufacturer ?? DEFAULTS.manufacturer,
        manufacturerURL: o.manufacturerURL ?? vars.manufacturerURL,
        modelDescription: o.modelDescription ?? DEFAULTS.modelDescription,
        modelName: o.modelName ?? DEFAULTS.modelName,
        modelNumber: o.modelNumber ?? vars.modelNumber,
        modelURL: o.modelURL ?? vars.modelURL,
        serialNumber: vars.serialNumber,
        uuid: m[1], // as given: SSDP announces the same string in USN
        presentationURL: vars.presentationURL ?? (base ? `${base}/` : '/'),
        URLBase: base ? `${base}/` : undefined,
        productCap: o.productCap,
      };
      return render(deviceFile, deviceParts, values);
    },
    scpd(name: ScpdName): string {
      const s = scpds[name];
      if (s === undefined) throw new DescriptionError(`unknown service description ${JSON.stringify(name)}`);
      return s;
    },
  };
}
