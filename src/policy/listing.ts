// `tapedeck ls`: catalog items with their tier, tape position, stub and access figures.
// Transport-agnostic: the CLI calls it on a catalog it opened, or the server on its own
// (through the control socket); both print the same objects.

import type { Catalog } from '../catalog/catalog.js';
import type { CatalogObject } from '../catalog/types.js';
import { resolveTargets } from '../archive/targets.js';
import { ArchiveError } from '../archive/errors.js';
import { stubBytes } from '../archive/stubs.js';
import { itemSize, tierOf, type Tier } from '../catalog/tier.js';
import type { AccessRecord } from './access.js';

export type { Tier };
/** Tiers `--tier` selects (an item with no location at all lists as 'none'). */
export type ListTier = Exclude<Tier, 'none'>;
export const TIERS: ListTier[] = ['disk', 'tape', 'both'];
export type ListSort = 'plays' | 'last-played' | 'size' | 'title';
export const LIST_SORTS: ListSort[] = ['plays', 'last-played', 'size', 'title'];

export interface ListQuery {
  /** Object IDs, container IDs or absolute paths (default: every item). */
  targets?: string[];
  tier?: ListTier;
  /** Default: by path. */
  sort?: ListSort;
}

export interface ListedItem {
  id: string;
  title: string;
  path: string;
  class: string;
  size: number;
  tier: Tier;
  cartridge: string | null;
  /** First block of the item's data on its cartridge, and the tape file holding it (null when not on tape). */
  block: number | null;
  tapeFile: number | null;
  stubBytes: number;
  plays: number;
  /** ISO 8601 or null */
  lastPlayed: string | null;
  bytesServed: number;
  added: string | null;
  changed: string | null;
}

export type AccessReader = (ids: string[]) => Promise<Map<string, AccessRecord>>;

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function listedItem(item: CatalogObject, rec: AccessRecord | undefined): ListedItem {
  const l = item.location ?? {};
  return {
    id: item.id,
    title: item.title,
    path: item.origPath ?? l.disk?.path ?? '',
    class: item.upnpClass,
    size: itemSize(item),
    tier: tierOf(item.location),
    cartridge: l.tape?.label ?? null,
    block: l.tape?.block ?? null,
    tapeFile: l.tape?.tapeFile ?? null,
    stubBytes: l.stub && !l.disk ? stubBytes(l.stub) : 0,
    plays: rec?.plays ?? 0,
    lastPlayed: iso(rec?.lastPlayed),
    bytesServed: rec?.bytesServed ?? 0,
    added: iso(item.added),
    changed: iso(item.changed),
  };
}

const cmpText = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true, sensitivity: 'base' });

export function checkListQuery(q: ListQuery): ListQuery {
  if (q.tier !== undefined && !TIERS.includes(q.tier)) throw new ArchiveError('INVALID', `--tier must be one of ${TIERS.join(', ')}, got ${JSON.stringify(q.tier)}`);
  if (q.sort !== undefined && !LIST_SORTS.includes(q.sort)) throw new ArchiveError('INVALID', `--sort must be one of ${LIST_SORTS.join(', ')}, got ${JSON.stringify(q.sort)}`);
  if (q.targets !== undefined && (!Array.isArray(q.targets) || !q.targets.every((t) => typeof t === 'string'))) throw new ArchiveError('INVALID', 'targets must be strings');
  return q;
}

/** Items turned into rows at a time. */
const LIST_CHUNK = 1000;

export async function listItems(catalog: Catalog, readAccess: AccessReader, query: ListQuery = {}): Promise<ListedItem[]> {
  const q = checkListQuery(query);
  let source: AsyncIterable<CatalogObject> | CatalogObject[];
  if (q.targets?.length) {
    const ids = await resolveTargets(catalog, q.targets);
    source = (await Promise.all(ids.map((id) => catalog.get(id)))).filter((o): o is CatalogObject => !!o && !o.container);
  } else source = catalog.eachItem();
  // rows are made as items are read, a chunk (and its access records) at a time: the full
  // objects of a large library are never all in memory
  const rows: ListedItem[] = [];
  let chunk: CatalogObject[] = [];
  const convert = async () => {
    const access = await readAccess(chunk.map((i) => i.id));
    for (const i of chunk) rows.push(listedItem(i, access.get(i.id)));
    chunk = [];
  };
  for await (const i of source) {
    if (q.tier && tierOf(i.location) !== q.tier) continue;
    chunk.push(i);
    if (chunk.length >= LIST_CHUNK) await convert();
  }
  await convert();
  const byPath = (a: ListedItem, b: ListedItem) => cmpText(a.path, b.path) || a.id.localeCompare(b.id);
  const cmp: Record<ListSort | 'path', (a: ListedItem, b: ListedItem) => number> = {
    path: byPath,
    plays: (a, b) => b.plays - a.plays || byPath(a, b),
    'last-played': (a, b) => (b.lastPlayed ?? '').localeCompare(a.lastPlayed ?? '') || byPath(a, b),
    size: (a, b) => b.size - a.size || byPath(a, b),
    title: (a, b) => cmpText(a.title, b.title) || byPath(a, b),
  };
  return rows.sort(cmp[q.sort ?? 'path']);
}
