// Which objects each catalog generation changed, so a cache of derived data (upnp/didl-cache.ts)
// drops only those instead of everything at every change (a scan or a policy pass changes the
// catalog many times a minute).
//
// Every generation the catalog makes is recorded, in order, with the IDs of the objects it
// wrote or removed: canonical items and playlist records by their own ID (a reference, e.g.
// `music/all$i…`, shows its item's data, so a consumer keys it by the item), containers by
// theirs. `since(g)` answers the union of what the generations after g changed, or undefined
// when that is not known any more: bounded at `maxIds` IDs, the oldest generations are
// forgotten (a consumer that far behind drops everything, as before), and a generation that
// alone changed more than that many is recorded as "anything".

interface Entry {
  gen: number;
  /** undefined: more than the log keeps (anything may have changed). */
  ids: readonly string[] | undefined;
}

export class ChangeLog {
  private entries: Entry[] = [];
  private head = 0;
  private held = 0;

  constructor(private readonly maxIds = 50_000) {}

  /** Generation `gen` (the one after the last recorded) changed `ids`; undefined: anything. */
  record(gen: number, ids: readonly string[] | undefined): void {
    const kept = ids && ids.length <= this.maxIds ? ids : undefined;
    this.entries.push({ gen, ids: kept });
    this.held += kept?.length ?? 0;
    while (this.held > this.maxIds && this.entries.length - this.head > 1) this.held -= this.entries[this.head++].ids?.length ?? 0;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Forgets the generations up to `gen`: the consumer has caught up with them (a consumer still
   * behind them hears "not known" and drops everything). After a scan the log held the last
   * 50,000 IDs it changed (~4 MB at 20,000 items) for as long as nothing else changed.
   */
  forget(gen: number): void {
    while (this.head < this.entries.length && this.entries[this.head].gen <= gen) this.held -= this.entries[this.head++].ids?.length ?? 0;
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    }
  }

  /** IDs changed by the generations after `gen` up to `now` (the current one); undefined: not known. */
  since(gen: number, now: number): Set<string> | undefined {
    const out = new Set<string>();
    if (gen === now) return out;
    if (gen > now) return undefined;
    let k = this.entries.length - 1;
    let expect = now;
    for (; k >= this.head && this.entries[k].gen > gen; k--) {
      const e = this.entries[k];
      if (e.gen !== expect || !e.ids) return undefined;
      for (const id of e.ids) out.add(id);
      expect--;
    }
    return expect === gen ? out : undefined;
  }
}
