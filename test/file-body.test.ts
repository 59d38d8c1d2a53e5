// writeFileBody (src/http/file-body.ts) against a stand-in response whose writes complete only
// when the test says so: what it reads, how many buffers it holds, and when it closes the file.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FILE_BUFFERS, FILE_CHUNK, FILE_CHUNK_SLOW, FILE_FIRST_CHUNK, FILE_MIN_CHUNK, RAMP_AFTER, fileBufferBytes, setFileBufferBudget, writeFileBody } from '../src/http/file-body.js';

const dir = mkdtempSync(join(tmpdir(), 'tapedeck-file-body-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const SIZE = 5 * FILE_CHUNK + 12345; // ~20 MiB
const data = randomBytes(SIZE);
const path = join(dir, 'film.mkv');
writeFileSync(path, data);

/** A response whose writes stay pending (as on a full socket) until flush() is called. */
class SlowResponse extends EventEmitter {
  headersSent = false;
  destroyed = false;
  writableFinished = false;
  received: Buffer[] = [];
  /** ArrayBuffers of every chunk written (to see buffer reuse). */
  backing = new Set<ArrayBufferLike>();
  pending: (() => void)[] = [];
  pendingBytes = 0;
  /** Most writes and bytes waiting for the socket at once. */
  maxPending = 0;
  maxPendingBytes = 0;
  sizes: number[] = [];
  destroyedWith?: Error;

  write(chunk: Buffer, cb: (err?: Error | null) => void): boolean {
    this.headersSent = true;
    this.backing.add(chunk.buffer);
    this.sizes.push(chunk.length);
    this.pendingBytes += chunk.length;
    this.maxPending = Math.max(this.maxPending, this.pending.length + 1);
    this.maxPendingBytes = Math.max(this.maxPendingBytes, this.pendingBytes);
    this.pending.push(() => {
      this.pendingBytes -= chunk.length;
      this.received.push(Buffer.from(chunk)); // copied when the socket "takes" it
      cb();
    });
    return false;
  }
  end(cb: () => void): void {
    this.pending.push(() => {
      this.writableFinished = true;
      cb();
      this.emit('finish');
      this.emit('close');
    });
  }
  destroy(err?: Error): void {
    this.destroyed = true;
    this.destroyedWith = err;
    this.pending = []; // never completed
    setImmediate(() => this.emit('close'));
  }
  /** Completes the pending writes. */
  flush(): number {
    const p = this.pending;
    this.pending = [];
    for (const f of p) f();
    return p.length;
  }
}

const asRes = (r: SlowResponse) => r as unknown as ServerResponse;
const tick = () => new Promise((r) => setTimeout(r, 10));

async function drain(res: SlowResponse, until: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !until(); i++) {
    res.flush();
    await tick();
  }
}

test('writes exactly the range from a few reused buffers: a small first read, then bigger ones', async (t) => {
  const fh = await open(path, 'r');
  // a steady client (1 MiB per 20 ms): flushing on a 10 ms tick made a write issued just before a
  // flush look like a 256 MB/s client at random, and its bigger buffers broke the count under load
  const res = new PacedResponse(() => 20);
  const start = 777;
  const length = SIZE - start - 1000;
  const body = writeFileBody(asRes(res), fh, start, length);
  const r = await body.done;
  t.true(r.complete);
  t.is(r.error, undefined);
  t.true(Buffer.concat(res.received).equals(data.subarray(start, start + length)));
  t.is(body.bytes, length);
  // the ramp: FILE_FIRST_CHUNK, 4×, ... up to FILE_CHUNK, outgrown buffers dropped; then reuse
  t.true(res.backing.size <= 4, `${res.backing.size} distinct buffers for ${res.sizes.length} writes`);
  t.true(res.sizes.length < length / (FILE_CHUNK_SLOW / 2));
  t.is(res.sizes[0], FILE_FIRST_CHUNK);
  t.true(Math.max(...res.sizes) <= FILE_CHUNK);
  t.true(res.maxPending <= FILE_BUFFERS);
  t.is(fh.fd, -1, 'file closed');
});

/** A response whose every write is taken `delayMs()` after it was issued (0: on the next turn). */
class PacedResponse extends SlowResponse {
  constructor(readonly delayMs: () => number) {
    super();
  }
  private due = 0;
  override write(chunk: Buffer, cb: (err?: Error | null) => void): boolean {
    super.write(chunk, cb);
    const done = this.pending.pop()!;
    const d = this.delayMs();
    // taken in order, as a socket does: not before the write issued ahead of it
    this.due = Math.max(this.due, performance.now() + d);
    const wait = this.due - performance.now();
    if (wait > 0) setTimeout(done, wait);
    else setImmediate(done);
    return false;
  }
  override end(cb: () => void): void {
    super.end(cb);
    const wait = this.due - performance.now(); // after every write
    setTimeout(() => this.flush(), Math.max(wait, 0) + 1);
  }
}

const BIG = 12 * FILE_CHUNK;
const bigPath = join(dir, 'big.mkv');
const bigData = Buffer.concat([data, data, data]).subarray(0, BIG);
writeFileSync(bigPath, bigData);

test('a client slower than 256 MB/s (a TV at its bitrate) is served in buffers of at most FILE_CHUNK_SLOW', async (t) => {
  const fh = await open(bigPath, 'r');
  // 1 MiB per 20 ms, 52 MB/s: a LAN player at full speed (libuv timers count from the loop's cached
  // time, so a short delay can fire a few ms early: 20 ms stays well above the 4 ms that counts as fast)
  const res = new PacedResponse(() => 20);
  const body = writeFileBody(asRes(res), fh, 0, 3 * RAMP_AFTER);
  const r = await body.done;
  t.true(r.complete);
  t.true(Buffer.concat(res.received).equals(bigData.subarray(0, 3 * RAMP_AFTER)));
  t.is(Math.max(...res.sizes), FILE_CHUNK_SLOW);
  t.true(res.maxPendingBytes <= FILE_BUFFERS * FILE_CHUNK_SLOW);
});

/**
 * A response on a virtual clock: each write is taken `delayMs()` after it was issued (in order)
 * in virtual time, which is what `performance.now()` reads while the test that uses it runs
 * (serially). A drain rate measured in real time depended on the machine's load: under a loaded
 * CI a write taken on the next turn could still take more than 4 ms, so the fast client never
 * looked fast.
 */
class VirtualPacedResponse extends SlowResponse {
  now = 1000;
  private due = 0;
  constructor(readonly delayMs: () => number) {
    super();
  }
  override write(chunk: Buffer, cb: (err?: Error | null) => void): boolean {
    super.write(chunk, cb);
    const done = this.pending.pop()!;
    this.due = Math.max(this.due, this.now + this.delayMs());
    const at = this.due;
    setImmediate(() => {
      this.now = Math.max(this.now, at);
      done();
    });
    return false;
  }
  override end(cb: () => void): void {
    super.end(cb);
    setImmediate(() => this.flush());
  }
}

test.serial('a client that drains faster than 256 MB/s gets FILE_CHUNK buffers after RAMP_AFTER bytes, and 1 MiB ones again once it slows down', async (t) => {
  const fh = await open(bigPath, 'r');
  let slowFrom = Infinity;
  let written = 0;
  const res: VirtualPacedResponse = new VirtualPacedResponse(() => {
    written = res.sizes.reduce((a, b) => a + b, 0);
    if (slowFrom === Infinity && res.sizes.includes(FILE_CHUNK)) slowFrom = written + FILE_CHUNK;
    return written >= slowFrom ? 20 : 0; // fast (taken at once, as the kernel does for a local reader), then 20 ms a write
  });
  const realNow = Object.getOwnPropertyDescriptor(performance, 'now');
  performance.now = () => res.now;
  let r: Awaited<ReturnType<typeof writeFileBody>['done']>;
  try {
    r = await writeFileBody(asRes(res), fh, 0, BIG).done;
  } finally {
    if (realNow) Object.defineProperty(performance, 'now', realNow);
    else delete (performance as { now?: unknown }).now;
  }
  t.true(r.complete);
  t.true(Buffer.concat(res.received).equals(bigData));
  const firstBig = res.sizes.indexOf(FILE_CHUNK);
  t.true(firstBig > 0, `reached FILE_CHUNK: ${res.sizes.join(',')}`);
  t.true(res.sizes.slice(0, firstBig).reduce((a, b) => a + b, 0) >= RAMP_AFTER, 'not before RAMP_AFTER bytes');
  const lastBig = res.sizes.lastIndexOf(FILE_CHUNK);
  t.true(res.sizes.slice(lastBig + 1).filter((n) => n === FILE_CHUNK_SLOW).length >= 2, `back to 1 MiB reads: ${res.sizes.join(',')}`);
  t.is(fh.fd, -1);
});

test('a client that does not read: no more than FILE_BUFFERS chunks are read ahead', async (t) => {
  const fh = await open(path, 'r');
  const res = new SlowResponse();
  const body = writeFileBody(asRes(res), fh, 0, SIZE);
  let taken = 0;
  for (let i = 0; i < 3; i++) {
    for (let n = 0; n < 500 && res.pending.length < FILE_BUFFERS; n++) await tick();
    await new Promise((r) => setTimeout(r, 50));
    // stalled with every buffer waiting for the socket: no read beyond them
    t.is(res.pending.length, FILE_BUFFERS);
    t.is(body.bytes, taken + res.pendingBytes);
    t.true(res.pendingBytes <= FILE_BUFFERS * FILE_CHUNK_SLOW, 'a client that stalls from the start holds 1 MiB buffers');
    taken += res.pendingBytes;
    res.flush(); // the socket takes them: as many more are read
  }
  t.true(taken >= 2 * FILE_CHUNK_SLOW);
  t.true(res.maxPending <= FILE_BUFFERS);
  res.destroy();
  const r = await body.done;
  t.false(r.complete);
  t.is(fh.fd, -1, 'file closed when the client left');
});

test.serial('many clients that do not read: buffers stay within the process budget, and every response still streams exactly', async (t) => {
  const budget = 3 * FILE_CHUNK_SLOW;
  const was = setFileBufferBudget(budget);
  const before = fileBufferBytes();
  const N = 12; // unbounded, they would hold N × (256 KiB + 1 MiB) = 15 MiB
  try {
    const bodies: { res: SlowResponse; start: number; body: ReturnType<typeof writeFileBody> }[] = [];
    for (let i = 0; i < N; i++) {
      const res = new SlowResponse();
      const start = i * 1000;
      bodies.push({ res, start, body: writeFileBody(asRes(res), await open(path, 'r'), start, SIZE - start) });
    }
    const wrote = () => bodies.every((b) => b.res.pending.length > 0);
    for (let n = 0; n < 500 && !wrote(); n++) await tick();
    await new Promise((r) => setTimeout(r, 50));
    t.true(wrote(), 'every response wrote something: none starved');
    const held = fileBufferBytes() - before;
    t.true(held <= budget + N * FILE_MIN_CHUNK, `held ${held} bytes for ${N} stalled clients, budget ${budget}`);
    t.true(bodies.slice(-3).every((b) => b.res.pendingBytes <= FILE_MIN_CHUNK), 'a response that starts past the budget reads small');
    // the clients read now: every one gets its whole range, byte-exact
    for (const b of bodies) await drain(b.res, () => b.res.writableFinished);
    for (const b of bodies) {
      t.true((await b.body.done).complete);
      t.true(Buffer.concat(b.res.received).equals(data.subarray(b.start)), `response from ${b.start} exact`);
    }
    t.is(fileBufferBytes(), before, 'buffers given back when the responses end');
  } finally {
    setFileBufferBudget(was);
  }
});

test('a small range uses buffers no bigger than itself', async (t) => {
  const fh = await open(path, 'r');
  const res = new SlowResponse();
  const body = writeFileBody(asRes(res), fh, 10, 100);
  let settled = false;
  void body.done.then(() => (settled = true));
  await drain(res, () => settled);
  t.true(Buffer.concat(res.received).equals(data.subarray(10, 110)));
  t.is(res.backing.size, 1);
  t.true([...res.backing][0]!.byteLength <= 100);
});

test('the client leaving while a read is in flight: the file is closed after that read, nothing more is written', async (t) => {
  const fh = await open(path, 'r');
  const res = new SlowResponse();
  const body = writeFileBody(asRes(res), fh, 0, SIZE);
  // the first read is in flight now (issued synchronously)
  res.emit('close');
  res.destroyed = true;
  t.not(fh.fd, -1, 'not closed under a pending read');
  const r = await body.done;
  t.false(r.complete);
  t.is(res.received.length, 0);
  t.is(res.pending.length, 0, 'nothing written after the client left');
  t.is(fh.fd, -1);
});

test('a file shorter than its catalogued size: the response is destroyed, with or without headers sent', async (t) => {
  // headers out (first chunk written), then the file ends early: the connection is destroyed
  const fh = await open(path, 'r');
  const res = new SlowResponse();
  const body = writeFileBody(asRes(res), fh, 0, SIZE + 5000);
  let settled = false;
  void body.done.then(() => (settled = true));
  await drain(res, () => settled);
  const r = await body.done;
  t.false(r.complete);
  t.true(r.error?.message.includes(`ended after ${SIZE} of ${SIZE + 5000} bytes`), r.error?.message);
  t.true(res.destroyed);
  t.is(body.bytes, SIZE);
  t.is(fh.fd, -1);

  // nothing at the offset at all: cut before any header went out
  const empty = join(dir, 'empty.mkv');
  writeFileSync(empty, '');
  const fh2 = await open(empty, 'r');
  const res2 = new SlowResponse();
  const r2 = await writeFileBody(asRes(res2), fh2, 0, 1000).done;
  t.false(r2.complete);
  t.regex(r2.error?.message ?? '', /ended after 0 of 1000 bytes/);
  t.true(res2.destroyed);
  t.false(res2.headersSent);
  t.is(fh2.fd, -1);
});
