// The Result of a Browse or Search answer as a client reads it: the DIDL-Lite text, whether
// the action returned it as a string or already escaped for the SOAP body (EscapedText,
// upnp/didl-cache.ts).
import { EscapedText } from '../../src/util/xml.js';

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };

export function didlText(v: unknown): string {
  return v instanceof EscapedText ? v.text.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) => ENTITIES[e]) : String(v);
}
