// ConnectionManager:1 (source side) and Microsoft's X_MS_MediaReceiverRegistrar:1.
import type { Catalog, ChangeEvent } from '../catalog/catalog.js';
import { protocolInfo } from '../media/dlna.js';
import type { SoapContext, SoapService } from './soap.js';
import { UpnpError } from './soap.js';

export const CMS_TYPE = 'urn:schemas-upnp-org:service:ConnectionManager:1';
export const MSR_TYPE = 'urn:microsoft.com:service:X_MS_MediaReceiverRegistrar:1';

const KEPT_KEY = 'sourceProtocolInfo';

function parseKept(v: string | undefined): { updateId: number; value: string } | undefined {
  if (!v) return undefined;
  try {
    const o = JSON.parse(v) as { updateId?: unknown; value?: unknown };
    return typeof o.updateId === 'number' && typeof o.value === 'string' ? { updateId: o.updateId, value: o.value } : undefined;
  } catch {
    return undefined;
  }
}

export class ConnectionManager {
  private cache: { updateId: number; value: string } | undefined;

  constructor(private catalog: Catalog) {
    // a change that touches no item's resource (art, metadata, video frames) leaves the answer
    // as it was: carried forward to the new SystemUpdateID instead of reading every item again
    catalog.on('change', (ev: ChangeEvent) => {
      if (this.cache && !ev.resChanged && this.cache.updateId === this.seenUpdateId) this.cache.updateId = ev.systemUpdateId;
      this.seenUpdateId = ev.systemUpdateId;
    });
  }

  /** The SystemUpdateID of the last change event seen (the cache is current only if it is that). */
  private seenUpdateId = -1;

  /**
   * Source protocolInfo: every distinct protocolInfo the library actually holds. Finding it reads
   * every item, so the answer is kept in the catalog (meta/sourceProtocolInfo) with the
   * SystemUpdateID it was made at: a restart on an unchanged library reads one key instead of
   * every item (which at 100,000 items took seconds and paged the whole catalog into memory).
   */
  async sourceProtocolInfo(): Promise<string> {
    const updateId = this.catalog.systemUpdateId;
    if (this.cache?.updateId === updateId) return this.cache.value;
    if (!this.cache) {
      const kept = parseKept(await this.catalog.getMeta(KEPT_KEY));
      if (kept?.updateId === updateId) {
        this.cache = kept;
        this.seenUpdateId = updateId;
        return kept.value;
      }
    }
    const seen = new Set<string>();
    for await (const item of this.catalog.eachItem()) if (item.res) seen.add(protocolInfo(item.res));
    const value = [...seen].sort().join(',');
    this.cache = { updateId, value };
    // current, and kept, only if no change landed while the items were read (else the next call reads again)
    if (this.catalog.systemUpdateId === updateId) {
      this.seenUpdateId = updateId;
      await this.catalog.setMeta(KEPT_KEY, JSON.stringify(this.cache)).catch(() => undefined);
    }
    return value;
  }

  service(): SoapService {
    return {
      serviceType: CMS_TYPE,
      actions: {
        GetProtocolInfo: async () => [
          ['Source', await this.sourceProtocolInfo()],
          ['Sink', ''],
        ],
        GetCurrentConnectionIDs: async () => [['ConnectionIDs', '0']],
        GetCurrentConnectionInfo: async (a) => {
          const id = a.ConnectionID;
          if (id === undefined) throw new UpnpError(402, 'missing argument ConnectionID');
          // ConnectionID is an i4: anything else is a bad argument, another number an unknown connection
          if (!/^\s*[-+]?\d{1,10}\s*$/.test(id) || Number(id) > 2 ** 31 - 1 || Number(id) < -(2 ** 31)) throw new UpnpError(402, `ConnectionID must be an i4, got ${JSON.stringify(id)}`);
          if (Number(id) !== 0) throw new UpnpError(706, `no such connection: ${id}`);
          return [
            ['RcsID', -1],
            ['AVTransportID', -1],
            ['ProtocolInfo', ''],
            ['PeerConnectionManager', ''],
            ['PeerConnectionID', -1],
            ['Direction', 'Output'],
            ['Status', 'OK'],
          ];
        },
      },
    };
  }
}

/**
 * Xbox 360 / Windows Media Player ask this before browsing. A client whose profile declares
 * `msRegistrar` (devices/clients/xbox.json) is authorised and validated (Result 1); any other
 * caller gets Result 0: only the receivers a profile names are Microsoft receivers we serve so.
 */
export function mediaReceiverRegistrar(): SoapService {
  const answer = async (_a: Record<string, string>, ctx: SoapContext): Promise<[string, number][]> => [['Result', ctx.client?.quirks.msRegistrar ? 1 : 0]];
  return {
    serviceType: MSR_TYPE,
    actions: {
      IsAuthorized: answer,
      IsValidated: answer,
      RegisterDevice: async () => [['RegistrationRespMsg', '']],
    },
  };
}
