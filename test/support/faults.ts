/**
 * A seeded fault proxy for registry tests: it sits between pause-build's registry client
 * and a real plain-HTTP registry and, for a chosen share of requests, breaks the exchange
 * the way networks and registries do: connection resets (before or after the registry
 * saw the request), 500 and 503 (also after the registry acted), 429 with a short
 * Retry-After, response bodies cut short (Content-Length promising more than is sent,
 * then a close), stalls longer than the client's request timeout (before the
 * response, or after its headers, in the middle of the body), and late deliveries
 * (a request held past that timeout, then forwarded after the client gave up).
 *
 * Every decision comes from a mulberry32 PRNG seeded with the run's seed and the
 * request's identity (method, path without upload session ids, digest, and how many
 * times that request was seen), so a seed gives the same faults to the same requests
 * whatever order concurrent requests arrive in: a failing seed can be run again.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { type RequestRecord, freePort } from './registry.ts';

/** The PRNG: 32-bit state, good enough to pick faults, tiny and reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FAULT_KINDS = [
  /** Socket destroyed before the request is forwarded: the registry never sees it. */
  'reset-before',
  /** Forwarded and answered by the registry, then the socket is destroyed: the client never hears. */
  'reset-after',
  /** 500 instead of forwarding. */
  'error-500',
  /** 503 instead of forwarding. */
  'error-503',
  /** Forwarded (the registry acted), then 503 instead of its answer. */
  'error-503-after',
  /** 429 with Retry-After 0 or 1 instead of forwarding. */
  'too-many-requests',
  /** Forwarded; the answer's headers promise more bytes than are sent, then the socket closes. */
  'truncate',
  /** Held past the client's timeout without an answer, then closed; never forwarded. */
  'stall',
  /** Held past the client's timeout, then forwarded anyway: the registry acts after the client gave up (and maybe retried). */
  'late',
  /** Forwarded; headers and part of the body sent, then held past the timeout and closed. */
  'stall-body',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultPlan {
  readonly seed: number;
  /** Share of requests that get a fault, 0..1. */
  readonly rate: number;
  /** How long a stall lasts; make it longer than the client's request timeout. */
  readonly stallMs: number;
  /** Fault kinds to draw from (default: all). */
  readonly kinds?: readonly FaultKind[];
  /** Requests that may get a fault (default: all). */
  readonly applies?: (req: { method: string; url: string }) => boolean;
  /** Told after the registry answered a forwarded request (status as the registry gave it). */
  readonly onForwarded?: (req: { method: string; url: string; status: number }) => void;
}

export interface InjectedFault {
  readonly kind: FaultKind;
  readonly method: string;
  readonly url: string;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT` to use instead of the registry's host. */
  readonly host: string;
  /** Faults injected, in order. */
  readonly injected: InjectedFault[];
  /** Requests the registry answered through the proxy (with its status, whatever the client then got). */
  readonly forwarded: RequestRecord[];
  stop(): Promise<void>;
}

/** The request as a stable key: upload session ids and state dropped, the digest kept. */
export function requestKey(method: string, url: string): string {
  const u = new URL(url, 'http://proxy');
  const pathname = u.pathname.replace(/\/blobs\/uploads\/[^/]+$/, '/blobs/uploads/*');
  const keep = ['digest', 'mount', 'from', 'n', 'last'].flatMap((k) => u.searchParams.getAll(k).map((v) => `${k}=${v}`));
  return `${method} ${pathname}${keep.length ? `?${keep.join('&')}` : ''}`;
}

function seedFor(seed: number, key: string): number {
  return createHash('sha256').update(`${seed}\0${key}`).digest().readUInt32LE(0);
}

function readBody(stream: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

interface Upstream {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export async function startFaultProxy(target: string, plan: FaultPlan): Promise<FaultProxy> {
  const [targetHost = '127.0.0.1', targetPort = '80'] = target.split(':');
  const agent = new http.Agent({ keepAlive: true });
  const kinds = plan.kinds ?? FAULT_KINDS;
  const seen = new Map<string, number>();
  const injected: InjectedFault[] = [];
  const forwarded: RequestRecord[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const inflight = new Set<Promise<unknown>>();
  let stopping = false;

  const decide = (method: string, url: string): FaultKind | undefined => {
    const key = requestKey(method, url);
    const occurrence = seen.get(key) ?? 0;
    seen.set(key, occurrence + 1);
    if (plan.applies && !plan.applies({ method, url })) return undefined;
    const random = mulberry32(seedFor(plan.seed, `${key}#${occurrence}`));
    if (random() >= plan.rate) return undefined;
    const kind = kinds[Math.floor(random() * kinds.length)];
    // A HEAD answer has no body to cut or stall in: break it at the connection instead.
    if (method === 'HEAD' && kind === 'truncate') return 'reset-after';
    if (method === 'HEAD' && kind === 'stall-body') return 'stall';
    return kind;
  };

  const forward = (req: http.IncomingMessage, body: Buffer): Promise<Upstream> => {
    const done = exchange(req, body);
    // stop() waits for every forwarded request, so that nothing reaches the registry after it.
    const settled = done.catch(() => undefined);
    inflight.add(settled);
    void settled.then(() => inflight.delete(settled));
    return done;
  };

  const exchange = (req: http.IncomingMessage, body: Buffer): Promise<Upstream> =>
    new Promise((resolve, reject) => {
      const up = http.request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers, agent }, (res) => {
        readBody(res).then((b) => {
          forwarded.push({ method: req.method ?? '', url: req.url ?? '', status: res.statusCode ?? 0 });
          plan.onForwarded?.({ method: req.method ?? '', url: req.url ?? '', status: res.statusCode ?? 0 });
          resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b });
        }, reject);
      });
      up.on('error', reject);
      up.end(body);
    });

  const hold = async (res: http.ServerResponse) => {
    await sleep(plan.stallMs, undefined, { ref: false });
    res.socket?.destroy();
  };

  const server = http.createServer(async (req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const kind = stopping ? undefined : decide(method, url);
    if (kind) injected.push({ kind, method, url });
    try {
      if (kind === 'reset-before') {
        req.socket.destroy();
        return;
      }
      const body = await readBody(req);
      if (kind === 'stall') return await hold(res);
      if (kind === 'late') {
        await sleep(plan.stallMs, undefined, { ref: false });
        res.socket?.destroy();
        // Once the proxy stops, nothing more reaches the registry: the test reads it then.
        if (stopping) return;
        await forward(req, body).catch(() => undefined);
        return;
      }
      if (kind === 'error-500' || kind === 'error-503' || kind === 'too-many-requests') {
        const status = kind === 'error-500' ? 500 : kind === 'error-503' ? 503 : 429;
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        // Retry-After 0 or 1 s, from the same seed.
        if (status === 429) headers['Retry-After'] = String(mulberry32(seedFor(plan.seed, `retry-after ${requestKey(method, url)}`))() < 0.8 ? 0 : 1);
        res.writeHead(status, headers);
        res.end(JSON.stringify({ errors: [{ code: status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: `injected ${kind}` }] }));
        return;
      }
      let up: Upstream;
      try {
        up = await forward(req, body);
      } catch (e) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`proxy: ${String(e)}`);
        return;
      }
      if (kind === 'reset-after') {
        req.socket.destroy();
        return;
      }
      if (kind === 'error-503-after') {
        res.writeHead(503, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected error-503-after' }] }));
        return;
      }
      const headers = { ...up.headers };
      delete headers['transfer-encoding'];
      if (kind === 'truncate' || kind === 'stall-body') {
        // Promise more than is sent; send at most half of the real body.
        const sent = up.body.subarray(0, Math.floor(up.body.length / 2));
        headers['content-length'] = String(up.body.length + 64);
        res.writeHead(up.status, headers);
        if (method !== 'HEAD') res.write(sent);
        res.flushHeaders();
        if (kind === 'stall-body') return await hold(res);
        // Let the bytes leave before closing, so the client sees a short body, not a reset.
        await sleep(5, undefined, { ref: false });
        res.socket?.destroy();
        return;
      }
      // A HEAD answer keeps the registry's Content-Length: it is the size of what was asked about.
      if (method !== 'HEAD') headers['content-length'] = String(up.body.length);
      res.writeHead(up.status, headers);
      res.end(method === 'HEAD' ? undefined : up.body);
    } catch {
      res.socket?.destroy();
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    injected,
    forwarded,
    stop: async () => {
      stopping = true;
      for (const s of sockets) s.destroy();
      await Promise.all(inflight);
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
