// Recall holds: a cartridge a queued or running loadedOnly recall job (a container promotion right
// after a play, or when its cartridge was loaded again) will read from stays loaded until that job
// has run. Without it the drive's idle unload (drive_idle_unload) took the cartridge while the job
// waited behind the make-room archive queued before it, and the job, which never mounts, found it
// gone (bench:policy: 82 of 171 play-started recalls).
//
// A hold works like a read's playback hold (reads.ts holdUntil): the scheduler's inUse() says the
// cartridge is in use, so its idle unload waits another idle period; and it is the lowest of the
// swap losses (below any playback hold), so a read or pre-stage of another cartridge may still
// swap it out (the recall then waits for the cartridge's next load, as before). The job's
// connection releases a hold when the job ends (done, failed, paused or interrupted); it also ends
// when that connection goes (a server crash or restart) and after its bounded time, whichever
// comes first. Holds live only in the worker's memory: a restarted worker has none, so the
// server's remote library (remote-library.ts reconnected()) asks the new connection for every hold
// of its jobs not ended yet, for the rest of its time, and ends the new id when the job releases
// the id it was first given (a refused re-hold is gone, as a refused hold: best effort).
//
// Hold ids are `<generation>.<n>`: the generation is new for every worker process (its start time,
// pid and random bits), so the id of a hold of a worker that has since restarted (a job that
// releases its hold after the restart) never names a hold of the new worker.

import { randomBytes } from 'node:crypto';

/** The longest a recall hold may keep a cartridge loaded (1 h). */
export const MAX_RECALL_HOLD_MS = 3600_000;
/** Most holds one connection may have at once (older ones are dropped beyond it). */
export const MAX_HOLDS_PER_OWNER = 256;
/** Most cartridges one hold names. */
export const MAX_HOLD_LABELS = 64;
/** Swap loss of a cartridge only held for a recall: more than one nobody wants, less than any playback hold (1 to 3). */
export const RECALL_HOLD_LOSS = 0.5;

/** Longest hold id the worker takes (its own are far shorter). */
export const MAX_HOLD_ID_LENGTH = 64;

/** A generation no other worker process has: start time, pid and random bits (base 36 / hex). */
export function newHoldGeneration(): string {
  return `${Date.now().toString(36)}${process.pid.toString(36)}${randomBytes(4).toString('hex')}`;
}

interface Hold {
  owner: object;
  labels: string[];
  until: number;
}

export class RecallHolds {
  private readonly holds = new Map<string, Hold>();
  private seq = 0;

  constructor(
    private readonly now: () => number = Date.now,
    /** Prefix of this worker's hold ids (unique per worker process). */
    readonly generation: string = newHoldGeneration(),
  ) {}

  /** Holds `labels` for at most `ms` (capped at MAX_RECALL_HOLD_MS) for `owner` (a connection); returns its id. */
  add(owner: object, labels: readonly string[], ms: number): string {
    const mine = [...this.holds].filter(([, h]) => h.owner === owner);
    for (const [id] of mine.slice(0, Math.max(0, mine.length - MAX_HOLDS_PER_OWNER + 1))) this.holds.delete(id);
    const id = `${this.generation}.${++this.seq}`;
    this.holds.set(id, { owner, labels: [...new Set(labels)].slice(0, MAX_HOLD_LABELS), until: this.now() + Math.max(0, Math.min(ms, MAX_RECALL_HOLD_MS)) });
    return id;
  }

  /** Ends hold `id` of `owner` (another owner's, or an unknown one: nothing). */
  remove(owner: object, id: string): boolean {
    const h = this.holds.get(id);
    if (!h || h.owner !== owner) return false;
    return this.holds.delete(id);
  }

  /** Ends every hold of `owner` (its connection closed). */
  removeOwner(owner: object): void {
    for (const [id, h] of [...this.holds]) if (h.owner === owner) this.holds.delete(id);
  }

  /** True while a recall hold that has not run out names cartridge `label`. */
  held(label: string): boolean {
    const now = this.now();
    let yes = false;
    for (const [id, h] of [...this.holds]) {
      if (h.until <= now) this.holds.delete(id);
      else if (h.labels.includes(label)) yes = true;
    }
    return yes;
  }

  /** Cartridges held now (status, metrics). */
  labels(): string[] {
    const now = this.now();
    const out = new Set<string>();
    for (const [id, h] of [...this.holds]) {
      if (h.until <= now) this.holds.delete(id);
      else for (const l of h.labels) out.add(l);
    }
    return [...out].sort();
  }
}
