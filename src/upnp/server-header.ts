// The SERVER header of SSDP answers and HTTP responses, as UDA 1.0 §1.1.2/§2.7 spells it:
// `OS/version UPnP/1.0 product/version`, e.g. `Linux/6.1 UPnP/1.0 DLNADOC/1.50 Tapedeck/0.1.0`
// (DLNA guidelines add the DLNADOC token). Tokens are `name/version` with no spaces inside.

import os from 'node:os';
import { VERSION } from '../version.js';

/** A header token: characters other than spaces, slashes and controls. */
const token = (s: string, dflt: string) => s.replace(/[\s/\x00-\x1f\x7f]+/g, '-').replace(/^-+|-+$/g, '') || dflt;

/** `OS/version UPnP/1.0 DLNADOC/1.50 Tapedeck/<version>` for this host (`osType`/`osRelease` for tests). */
export function serverHeader(osType = os.type(), osRelease = os.release()): string {
  // Linux reports e.g. "6.1.0-18-amd64": the kernel's major.minor is the OS version
  const version = /^\d+(?:\.\d+)?/.exec(osRelease)?.[0] ?? token(osRelease, '0');
  return `${token(osType, 'Unknown')}/${version} UPnP/1.0 DLNADOC/1.50 Tapedeck/${VERSION}`;
}
