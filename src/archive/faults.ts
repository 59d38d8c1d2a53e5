// Fault injection for crash tests. Every phase boundary of archive, recall and
// import jobs calls faultPoint(name). Nothing happens unless a fault is armed:
//
//   TAPEDECK_FAULT=<point>[,<point>...]   arm these points (in this process)
//   TAPEDECK_FAULT_MODE=kill|exit|throw   kill: SIGKILL itself (default, like kill -9)
//                                         exit: process.exit(137) without cleanup
//                                         throw: throw a FaultError (in-process tests)
//   TAPEDECK_FAULT_HIT=<n>                fire on the n-th time a point is reached (default 1)
//
// Tests in the same process can arm points with armFault() instead (throw, or
// run a callback at that point).

export const FAULT_POINTS = [
  // archive, per batch
  'archive:planned', // batch recorded, nothing on tape yet
  'archive:mid-write', // part of the tar stream is on tape
  'archive:after-write', // tar + index on tape, not yet recorded
  'archive:written', // index recorded in the job
  'archive:mid-verify', // part of the read-back done
  'archive:verified', // read-back recorded
  // archive, per item
  'archive:after-stub', // head stub file written, catalog unchanged
  'archive:committed', // catalog says tape (+stub); disk copy still there
  'archive:after-remove', // disk copy removed, item not yet marked done
  // recall, per item
  'recall:mid-restore', // part of the temp file written
  'recall:after-restore', // temp file complete and verified, not recorded
  'recall:verified', // recorded as verified
  'recall:renamed', // file in place, catalog still says tape
  'recall:committed', // catalog says disk, stub still there
  'recall:after-stub-remove', // stub removed, item not yet marked done
  // import
  'import:mid', // some catalog entries written
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

export class FaultError extends Error {
  constructor(readonly point: string) {
    super(`injected fault at ${point}`);
    this.name = 'FaultError';
  }
}

type Mode = 'kill' | 'exit' | 'throw' | 'call';
const armed = new Map<string, { mode: Mode; hit: number; fn?: () => void }>();
const hits = new Map<string, number>();

function fromEnv(): void {
  const spec = process.env.TAPEDECK_FAULT;
  if (!spec) return;
  const mode = (process.env.TAPEDECK_FAULT_MODE ?? 'kill') as Mode;
  const hit = Math.max(1, Number(process.env.TAPEDECK_FAULT_HIT) || 1);
  for (const p of spec.split(',').map((s) => s.trim()).filter(Boolean)) armed.set(p, { mode: ['kill', 'exit', 'throw'].includes(mode) ? mode : 'kill', hit });
}
fromEnv();

/** Arm a fault point in this process (tests): throw there, or call `fn` there (mode 'call'). */
export function armFault(point: FaultPoint, opts: { mode?: Mode; hit?: number; fn?: () => void } = {}): void {
  armed.set(point, { mode: opts.mode ?? (opts.fn ? 'call' : 'throw'), hit: opts.hit ?? 1, ...(opts.fn ? { fn: opts.fn } : {}) });
  hits.delete(point);
}

export function disarmFaults(): void {
  armed.clear();
  hits.clear();
}

/** A phase boundary. Fires the armed fault, if any. */
export function faultPoint(point: FaultPoint): void {
  if (armed.size === 0) return;
  const a = armed.get(point);
  if (!a) return;
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  if (n !== a.hit) return;
  if (a.mode === 'call') {
    armed.delete(point);
    a.fn?.();
    return;
  }
  if (a.mode === 'throw') {
    armed.delete(point);
    throw new FaultError(point);
  }
  process.stderr.write(`tapedeck: injected fault at ${point} (${a.mode})\n`);
  if (a.mode === 'exit') process.exit(137);
  process.kill(process.pid, 'SIGKILL');
}
