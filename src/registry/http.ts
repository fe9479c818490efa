/**
 * HTTP for the registry client on node:http and node:https, with keep-alive connections
 * per client. The global fetch costs several times the CPU per request (WHATWG streams
 * for every body, a WebAssembly HTTP parser), and a mirror run makes thousands of small
 * requests: on a busy machine that, not the network, set the pace.
 *
 * An `Answer` has the part of fetch's Response the client uses: status, headers, and the
 * body read whole or as a stream. The body is read from the socket as it is asked for.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { Readable } from 'node:stream';

export interface HttpInit {
  readonly method: string;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array | string | ReadableStream<Uint8Array>;
}

/** What the client reads of an answer (a fetch Response has it too). */
export interface HttpAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  readonly body: ReadableStream<Uint8Array> | null;
  arrayBuffer(): Promise<ArrayBuffer>;
  text(): Promise<string>;
}

export interface BodyReading {
  /** Time allowed for each next piece of the body. */
  readonly idleMs: number;
  /** Called when that time runs out: it aborts the request, and so the read. */
  readonly expire: () => void;
  /** Turns a failure while reading the body into the error to throw. */
  readonly failure: (e: unknown) => unknown;
  /** A body longer than this is cut off and refused (`tooLarge`), never buffered whole. */
  readonly maxBytes?: number;
  readonly tooLarge?: (bytes: number) => unknown;
  /** The size the caller expects when the answer does not say (a blob's descriptor). */
  readonly sizeHint?: number;
}

/** The slowest body we wait for: a whole read must go at least this fast (bytes per ms), after a first idle allowance. */
export const MIN_BYTES_PER_MS = 128 * 1024 / 1000;

/** An answer whose body is already in memory. */
export class BufferedAnswer implements HttpAnswer {
  readonly ok: boolean;
  constructor(readonly status: number, readonly statusText: string, readonly headers: HttpAnswer['headers'], private readonly bytes: Uint8Array) {
    this.ok = status >= 200 && status < 300;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.bytes.byteLength === 0) return null;
    const bytes = this.bytes;
    return new ReadableStream<Uint8Array>({ start: (c) => { c.enqueue(bytes); c.close(); } });
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.bytes.buffer.slice(this.bytes.byteOffset, this.bytes.byteOffset + this.bytes.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength).toString('utf8');
  }
}

class MessageHeaders {
  constructor(private readonly raw: http.IncomingHttpHeaders) {}

  get(name: string): string | null {
    const v = this.raw[name.toLowerCase()];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(', ') : v;
  }
}

/** An answer on the wire: the body is read when asked for, once. */
export class StreamedAnswer implements HttpAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly headers: MessageHeaders;
  private readonly empty: boolean;
  private used = false;

  constructor(private readonly msg: http.IncomingMessage, method: string, private readonly reading: BodyReading) {
    this.status = msg.statusCode ?? 0;
    this.statusText = msg.statusMessage ?? '';
    this.ok = this.status >= 200 && this.status < 300;
    this.headers = new MessageHeaders(msg.headers);
    this.empty = method === 'HEAD' || this.status === 204 || this.status === 304 || msg.headers['content-length'] === '0';
    // Nothing to read: let the connection go back to the pool now.
    if (this.empty) msg.resume();
  }

  private async *chunks(): AsyncGenerator<Buffer> {
    if (this.used) throw new TypeError('body already read');
    this.used = true;
    if (this.empty) return;
    const { maxBytes, tooLarge } = this.reading;
    const declared = Number(this.msg.headers['content-length']);
    if (maxBytes !== undefined && Number.isFinite(declared) && declared > maxBytes) {
      this.msg.destroy();
      throw tooLarge ? tooLarge(declared) : new RangeError(`body of ${declared} bytes is above ${maxBytes}`);
    }
    // A whole-body deadline that scales with the size: a body dripped a byte at a time
    // never trips the idle timer, but it does trip this.
    const expected = Number.isFinite(declared) ? declared : this.reading.sizeHint ?? maxBytes ?? 0;
    const deadline = setTimeout(this.reading.expire, this.reading.idleMs + Math.ceil(expected / MIN_BYTES_PER_MS));
    const it = this.msg[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let total = 0;
    try {
      for (;;) {
        const idle = setTimeout(this.reading.expire, this.reading.idleMs);
        let r: IteratorResult<Buffer>;
        try {
          r = await it.next();
        } catch (e) {
          throw this.reading.failure(e);
        } finally {
          clearTimeout(idle);
        }
        if (r.done) return;
        total += r.value.byteLength;
        if (maxBytes !== undefined && total > maxBytes) {
          this.msg.destroy();
          throw tooLarge ? tooLarge(total) : new RangeError(`body above ${maxBytes} bytes`);
        }
        yield r.value;
      }
    } finally {
      clearTimeout(deadline);
    }
  }

  /** The whole body; an answer that breaks off fails. */
  async bytes(): Promise<Uint8Array> {
    const parts: Buffer[] = [];
    for await (const c of this.chunks()) parts.push(c);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** The answer with its whole body read: read inside a retry, it is tried again when it breaks off. */
  async buffered(): Promise<BufferedAnswer> {
    return new BufferedAnswer(this.status, this.statusText, this.headers, await this.bytes());
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.empty) return null;
    const it = this.chunks();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const r = await it.next();
          if (r.done) controller.close();
          else controller.enqueue(new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.byteLength));
        } catch (e) {
          controller.error(e);
        }
      },
      cancel: async () => {
        this.msg.destroy();
        await it.return(undefined);
      },
    });
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this.bytes();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    const b = await this.bytes();
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  }

  /** Reads and drops the body (a redirect's), so the connection can be used again. */
  discard(): void {
    this.msg.resume();
  }
}

export const MAX_SOCKETS_PER_HOST = 16;

/** Keep-alive connection pools, plain and TLS; extra CA certificates are trusted with the system's. */
export class HttpTransport {
  private readonly plain: http.Agent;
  private readonly tls: https.Agent;

  /** `maxSockets`: connections at once per host; further requests wait for one (an index of thousands of entries opens no more). */
  constructor(ca?: readonly string[], maxSockets = MAX_SOCKETS_PER_HOST) {
    this.plain = new http.Agent({ keepAlive: true, maxSockets });
    // `ca` replaces Node's trusted roots, so the system's go in with the extra ones.
    this.tls = new https.Agent({ keepAlive: true, maxSockets, ...(ca?.length ? { ca: [...tls.rootCertificates, ...ca] } : {}) });
  }

  /** One request; resolves when the answer's head has come, its body unread. */
  request(url: URL, init: HttpInit, signal: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const headers: Record<string, string> = { ...init.headers };
      const { body } = init;
      if (typeof body === 'string' || body instanceof Uint8Array) {
        const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
        if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) headers['Content-Length'] = String(length);
      }
      const req = (secure ? https : http).request(url, { method: init.method, headers, agent: secure ? this.tls : this.plain, signal }, resolve);
      req.on('error', reject);
      if (body instanceof ReadableStream) {
        const source = Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>);
        source.on('error', (e) => req.destroy(e));
        source.pipe(req);
      } else {
        req.end(body);
      }
    });
  }

  close(): void {
    this.plain.destroy();
    this.tls.destroy();
  }
}
