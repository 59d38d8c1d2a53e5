// The ContentDirectory's event service: SystemUpdateID and ContainerUpdateIDs.
//
// Both variables are moderated by the ContentDirectory service template (its event-moderation
// table): at most 0.2 Hz, one NOTIFY every 5 s per subscription. A scan or a policy pass changes
// the catalog many times a second; the changes in between coalesce (ContainerUpdateIDs names every
// container changed since the last event, see combineContainerUpdateIds). The initial event of a
// new subscription is not held back.

import { combineContainerUpdateIds, EventService, type EventServiceOptions } from './gena.js';

/** Shortest interval between two NOTIFYs of one ContentDirectory subscription (ms): 0.2 Hz. */
export const CDS_EVENT_MODERATION_MS = 5000;

export interface CdsEventsOptions extends Pick<EventServiceOptions, 'log' | 'clock' | 'fetch'> {
  /** The catalog's current SystemUpdateID. */
  systemUpdateId(): number;
}

/** The event service of the ContentDirectory; the caller notify()s catalog changes. */
export function contentDirectoryEvents(opts: CdsEventsOptions): EventService {
  return new EventService({
    serviceId: 'urn:upnp-org:serviceId:ContentDirectory',
    source: { variables: () => ({ SystemUpdateID: String(opts.systemUpdateId()), ContainerUpdateIDs: '' }) },
    // every container changed since the last event must be named, not just the latest batch's
    combine: { ContainerUpdateIDs: combineContainerUpdateIds },
    moderationMs: CDS_EVENT_MODERATION_MS,
    log: opts.log,
    clock: opts.clock,
    fetch: opts.fetch,
  });
}
