// Load-generating client of the benchmark. It runs as its own process on the client
// side (the netns lab's client namespace, or this host against 127.0.0.1 when there is
// no lab) and takes jobs as JSON lines on stdin, answering each with one JSON line:
//
//   {"id":1,"cmd":"soap-load", url, action, args, startMin, startMax, seed, requests, concurrency, ...}
//       → {"id":1,"result":{latenciesMs, starts, ok, errors, errorSamples, elapsedMs, bytes}}
//   {"id":2,"cmd":"soap-call", url, action, args}  → {"id":2,"result":{status, body}}
//   {"id":3,"cmd":"get", url, timeoutMs}            → {"id":3,"result":{status, bytes, ms}}
//   {"cmd":"exit"}
//
// Every request has a time limit; every job has a request count, so a job always ends.
// Requests go through a keep-alive agent (servers that close the connection after each
// response, as MiniDLNA does, simply get a new one).

import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { prng } from './stats.js';

export const CDS_TYPE = 'urn:schemas-upnp-org:service:ContentDirectory:1';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function soapBody(action: string, args: Record<string, string | number>): string {
  const inner = Object.entries(args)
    .map(([k, v]) => `<${k}>${esc(String(v))}</${k}>`)
    .join('');
  return (
    '<?xml version="1.0" encoding="utf-8"?>' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${CDS_TYPE}">${inner}</u:${action}></s:Body></s:Envelope>`
  );
}

interface HttpResult {
  status: number;
  body: string;
  bytes: number;
}

function post(url: URL, agent: Agent, action: string, body: string, timeoutMs: number): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'text/xml; charset="utf-8"',
          soapaction: `"${CDS_TYPE}#${action}"`,
          'content-length': Buffer.byteLength(body),
          'user-agent': 'tapedeck-bench/1',
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          bytes += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), bytes }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

const num = (body: string, tag: string): number | undefined => {
  const m = new RegExp(`<${tag}>(\\d+)</${tag}>`).exec(body);
  return m ? Number(m[1]) : undefined;
};

export interface SoapLoadJob {
  url: string;
  action: 'Browse' | 'Search';
  /** Arguments of every request; StartingIndex is drawn per request when startMax is given. */
  args: Record<string, string | number>;
  startMin?: number;
  startMax?: number; // inclusive
  seed?: number;
  requests: number;
  concurrency: number;
  timeoutMs?: number;
  /** Checks on every answer: TotalMatches and NumberReturned (min(RequestedCount, total - start)). */
  expectTotal?: number;
  /**
   * Request i uses variants[i % length] merged over args (e.g. one SearchCriteria or
   * ObjectID each), with its own expected TotalMatches when given.
   */
  variants?: { args: Record<string, string | number>; expectTotal?: number }[];
}

export interface SoapLoadResult {
  ok: number;
  errors: number;
  errorSamples: string[];
  elapsedMs: number;
  latenciesMs: number[];
  starts: number[];
  bytes: number;
}

export async function soapLoad(job: SoapLoadJob): Promise<SoapLoadResult> {
  const url = new URL(job.url);
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const rnd = prng(job.seed ?? 1);
  const starts: number[] = [];
  for (let i = 0; i < job.requests; i++) {
    if (job.startMax === undefined) starts.push(Number(job.args.StartingIndex ?? 0));
    else {
      const lo = job.startMin ?? 0;
      starts.push(lo + Math.floor(rnd() * (job.startMax - lo + 1)));
    }
  }
  const requested = Number(job.args.RequestedCount ?? 0);
  const latencies = new Array<number>(job.requests).fill(NaN);
  const errorSamples: string[] = [];
  let errors = 0;
  let bytes = 0;
  let next = 0;
  const fail = (msg: string) => {
    errors++;
    if (errorSamples.length < 5) errorSamples.push(msg);
  };
  const worker = async () => {
    for (let i = next++; i < job.requests; i = next++) {
      const start = starts[i];
      const variant = job.variants?.length ? job.variants[i % job.variants.length] : undefined;
      const expectTotal = variant ? variant.expectTotal : job.expectTotal;
      const body = soapBody(job.action, { ...job.args, ...variant?.args, StartingIndex: start });
      const t0 = performance.now();
      try {
        const r = await post(url, agent, job.action, body, job.timeoutMs ?? 30_000);
        latencies[i] = performance.now() - t0;
        bytes += r.bytes;
        if (r.status !== 200) {
          fail(`HTTP ${r.status}: ${r.body.slice(0, 200)}`);
          continue;
        }
        const total = num(r.body, 'TotalMatches');
        const returned = num(r.body, 'NumberReturned');
        if (expectTotal !== undefined && total !== expectTotal) {
          fail(`start ${start}${variant ? ` ${JSON.stringify(variant.args)}` : ''}: TotalMatches ${total}, expected ${expectTotal}`);
          continue;
        }
        const want = total === undefined ? undefined : Math.max(0, Math.min(requested || Infinity, total - start));
        if (want !== undefined && returned !== want) {
          fail(`start ${start}: NumberReturned ${returned}, expected ${want}`);
          continue;
        }
      } catch (err) {
        latencies[i] = performance.now() - t0;
        fail(`start ${start}: ${(err as Error).message}`);
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, job.concurrency) }, worker));
  const elapsedMs = performance.now() - t0;
  agent.destroy();
  return {
    ok: job.requests - errors,
    errors,
    errorSamples,
    elapsedMs,
    latenciesMs: latencies.map((x) => Math.round(x * 1000) / 1000),
    starts,
    bytes,
  };
}

/** A full GET, body discarded; bytes counted. */
export function getAll(urlText: string, timeoutMs: number): Promise<{ status: number; bytes: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(new URL(urlText), { method: 'GET', headers: { 'user-agent': 'tapedeck-bench/1' } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`GET not finished within ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end();
  });
}

async function handle(msg: Record<string, any>): Promise<unknown> {
  switch (msg.cmd) {
    case 'soap-load':
      return soapLoad(msg as unknown as SoapLoadJob);
    case 'soap-call': {
      const agent = new Agent({ keepAlive: false });
      const r = await post(new URL(msg.url), agent, msg.action, soapBody(msg.action, msg.args ?? {}), msg.timeoutMs ?? 30_000);
      return { status: r.status, body: r.body };
    }
    case 'get':
      return getAll(msg.url, msg.timeoutMs ?? 600_000);
    default:
      throw new Error(`unknown command ${JSON.stringify(msg.cmd)}`);
  }
}

function main(): void {
  const rl = createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    let msg: Record<string, any>;
    try {
      msg = JSON.parse(line);
    } catch {
      process.stdout.write(JSON.stringify({ error: `not JSON: ${line.slice(0, 100)}` }) + '\n');
      return;
    }
    if (msg.cmd === 'exit') {
      void queue.then(() => process.exit(0));
      return;
    }
    // one job at a time: jobs measure, they must not overlap
    queue = queue.then(async () => {
      try {
        process.stdout.write(JSON.stringify({ id: msg.id, result: await handle(msg) }) + '\n');
      } catch (err) {
        process.stdout.write(JSON.stringify({ id: msg.id, error: (err as Error).message }) + '\n');
      }
    });
  });
  rl.on('close', () => void queue.then(() => process.exit(0)));
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + '\n');
}

if (process.argv[1] && /client\.[tj]s$/.test(process.argv[1])) main();
