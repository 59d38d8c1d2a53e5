// Per-source cap on SSDP search replies, so a flood of M-SEARCHes (or forged ones with a
// victim's address) cannot make the server a packet amplifier: at most `perSecond` replies
// to one address in any one-second window. The table of addresses is bounded: expired
// windows are dropped first, then the oldest, so a spray of source addresses costs at most
// `maxAddresses` small entries.

export const DEFAULT_REPLIES_PER_SECOND = 50;
export const DEFAULT_MAX_ADDRESSES = 4096;

export class ReplyBudget {
  private readonly table = new Map<string, { start: number; used: number }>();

  constructor(
    readonly perSecond = DEFAULT_REPLIES_PER_SECOND,
    readonly maxAddresses = DEFAULT_MAX_ADDRESSES,
  ) {}

  /** Takes `n` replies for `address` if they fit in its budget for the current second. */
  take(address: string, n: number, now = Date.now()): boolean {
    let e = this.table.get(address);
    if (e && now - e.start >= 1000) {
      this.table.delete(address);
      e = undefined;
    }
    if (!e) {
      this.makeRoom(now);
      e = { start: now, used: 0 };
      this.table.set(address, e); // insertion order = window start order
    }
    if (e.used + n > this.perSecond) return false;
    e.used += n;
    return true;
  }

  get size(): number {
    return this.table.size;
  }

  private makeRoom(now: number): void {
    if (this.table.size < this.maxAddresses) return;
    for (const [k, v] of this.table) {
      if (now - v.start < 1000 && this.table.size < this.maxAddresses) break;
      this.table.delete(k);
    }
  }
}
