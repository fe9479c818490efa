/**
 * The registry HTTP API (OCI distribution spec) on node:http with keep-alive: ping, blobs
 * (HEAD, monolithic upload, cross-repository mount, verified GET), manifests (HEAD,
 * GET, PUT) and tags. TLS is verified unless a host is listed as insecure, in which
 * case it is spoken to over plain HTTP. Every failure becomes one line naming the
 * registry, what was being done and what to try next.
 */
import { createHash } from 'node:crypto';
import { PauseBuildError } from '../errors.ts';
import { sha256Digest, shortDigest } from '../oci/blob.ts';
import type { Descriptor } from '../oci/types.ts';
import { MEDIA_TYPES } from '../oci/types.ts';
import { MANIFEST_LIMIT } from '../oci/manifest.ts';
import { packageVersion } from '../project.ts';
import { type Credential, type CredentialSource, RegistryAuth, credentialsFor } from './auth.ts';
import { type HttpAnswer, type HttpInit, BufferedAnswer, HttpTransport, StreamedAnswer } from './http.ts';
import { redact, redactingLogger } from './redact.ts';
import { type Repository, apiHost, formatRepository } from './reference.ts';
import { DEFAULT_RETRY, RegistryError, type RetryPolicy, isRetryableStatus, parseRetryAfter, withRetries } from './retry.ts';

export interface RegistryClientOptions {
  /** Registries (`host` or `host:port`) spoken to over plain HTTP. Nothing else is. */
  readonly insecure?: readonly string[];
  /** Extra trusted CA certificates (PEM), in addition to the system's. */
  readonly ca?: readonly string[];
  /** Where the CA came from, for messages (--ca-file). */
  readonly caFile?: string;
  /** Credentials: explicit ones or where the docker config is. */
  readonly credentials?: CredentialSource;
  readonly retry?: Partial<RetryPolicy>;
  /** Upload blobs in chunks of this many bytes (PATCH with Content-Range). Without it, chunks are used once a registry refuses a whole blob with 413. */
  readonly chunkSize?: number;
  /** Time allowed for a response to start, per try; an upload gets 1 s more per 128 KiB it sends. */
  readonly requestTimeoutMs?: number;
  readonly userAgent?: string;
  /** Debug lines (redacted before they get here). */
  readonly debug?: (line: string) => void;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
  /** What the caller is doing, for messages: `push to host/repo`. */
  readonly action?: string;
  /** Token scope to ask for: `push` gets pull and push on the repository. Default pull. */
  readonly access?: 'pull' | 'push';
  /** A blob's declared size: its body is cut off (and refused) beyond it. */
  readonly size?: number;
}

export interface ManifestInfo {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

export interface Manifest extends ManifestInfo {
  readonly bytes: Uint8Array;
}

export type BlobTransfer = 'uploaded' | 'mounted';

/**
 * What an upload sends: the bytes at hand, or a way to open them (again on each try), so
 * that content read from elsewhere is streamed rather than held. `Blob` from oci/ fits.
 */
export interface BlobUpload {
  readonly descriptor: Descriptor;
  readonly bytes?: Uint8Array;
  readonly open?: () => Promise<Uint8Array | ReadableStream<Uint8Array>>;
}

const MANIFEST_ACCEPT = [MEDIA_TYPES.index, MEDIA_TYPES.manifest, MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.dockerManifest].join(', ');
const DEFAULT_TIMEOUT_MS = 60_000;
/** Chunks after a 413: below nginx's default 1 MiB limit on request bodies. */
const DEFAULT_CHUNK = 512 * 1024;
const MIN_CHUNK = 64 * 1024;

/** The end of an upload's `Range: 0-N` header, as the next offset (N + 1). */
function rangeEnd(header: string | null): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(header?.trim() ?? '');
  // distribution answers `0-0` for an empty upload too; chunks are never one byte.
  if (m?.[1] === '0') return 0;
  return m ? Number(m[1]) + 1 : undefined;
}

/** Reads a blob's content in order, one slice at a time, from bytes or a stream opened once. */
class ChunkReader {
  private stream: AsyncIterator<Uint8Array> | undefined;
  private pending: Uint8Array = new Uint8Array(0);
  private at = 0;
  constructor(private blob: BlobUpload) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.blob.bytes) return this.blob.bytes.subarray(offset, offset + length);
    if (!this.stream) {
      const opened = await this.blob.open?.();
      if (opened === undefined) throw new Error('upload without content');
      if (opened instanceof Uint8Array) {
        this.blob = { ...this.blob, bytes: opened };
        return opened.subarray(offset, offset + length);
      }
      this.stream = (opened as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    }
    if (offset < this.at) throw new Error(`chunk reader asked to go back from ${this.at} to ${offset}`);
    const out = new Uint8Array(length);
    let filled = 0;
    // Skip what the registry already holds, then fill the chunk.
    while (filled < length) {
      if (this.pending.byteLength === 0) {
        const r = await this.stream.next();
        if (r.done) break;
        this.pending = r.value;
      }
      const skip = Math.min(this.pending.byteLength, offset - this.at);
      if (skip > 0) {
        this.pending = this.pending.subarray(skip);
        this.at += skip;
        continue;
      }
      const take = Math.min(this.pending.byteLength, length - filled);
      out.set(this.pending.subarray(0, take), filled);
      this.pending = this.pending.subarray(take);
      filled += take;
      this.at += take;
    }
    if (filled < length) throw new Error(`blob content ended at ${this.at} bytes, before ${offset + length}`);
    return out;
  }

  async close(): Promise<void> {
    await this.stream?.return?.(undefined).catch(() => undefined);
  }
}
/** The slowest upload we wait for: a registry answers a PUT only once it has the whole body. */
const MIN_UPLOAD_BYTES_PER_MS = 128 * 1024 / 1000;

function hostMatches(list: readonly string[], registry: string): boolean {
  const bare = registry.replace(/:\d+$/, '');
  return list.some((entry) => entry === registry || (!/:\d+$/.test(entry) && entry === bare));
}

/** Finds the system error code behind a fetch failure (`fetch failed` → cause → …). */
function errorCode(err: unknown): { code?: string; message: string } {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e; depth++) {
    const x = e as { code?: unknown; cause?: unknown; errors?: unknown[]; message?: string; name?: string };
    if (x.name === 'TimeoutError') return { code: 'TIMEOUT', message: 'timed out' };
    if (typeof x.code === 'string' && x.code !== 'UND_ERR') return { code: x.code, message: x.message ?? x.code };
    if (Array.isArray(x.errors) && x.errors.length) {
      e = x.errors[0];
      continue;
    }
    e = x.cause;
  }
  return { message: err instanceof Error ? err.message : String(err) };
}

const TLS_UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_REJECTED',
]);
const RETRYABLE_NETWORK = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'TIMEOUT',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);

/** Failures of a connection that was made: the registry was there. */
const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

function networkError(err: unknown, host: string, action: string, caFile: string | undefined): RegistryError {
  const { code, message } = errorCode(err);
  const at = `${action}: `;
  if (code && TLS_UNTRUSTED.has(code)) {
    return new RegistryError(`${at}TLS certificate of ${host} is not trusted (${redact(message)})`, {
      hint: caFile ? `${caFile} does not hold the CA that signed it` : `pass --ca-file with the CA that signed it, or --insecure-registry ${host} if it serves plain HTTP`,
      cause: err,
    });
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new RegistryError(`${at}TLS certificate of ${host} does not name that host`, { hint: `reach the registry by a name its certificate lists`, cause: err });
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return new RegistryError(`${at}TLS certificate of ${host} is ${code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not yet valid'}`, { hint: 'renew the registry\'s certificate, or check the clock', cause: err });
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return new RegistryError(`${at}registry ${host} does not speak HTTPS`, { hint: `pass --insecure-registry ${host} if it serves plain HTTP`, cause: err });
  }
  if (code === 'EMFILE' || code === 'ENFILE') {
    return new RegistryError(`${at}too many open files (${code}) talking to ${host}`, {
      hint: code === 'EMFILE' ? 'raise the open-file limit (ulimit -n), or copy fewer images at once with --jobs' : 'the system ran out of file handles; close other programs or raise fs.file-max',
      cause: err,
    });
  }
  if (code === 'ENOTFOUND') {
    return new RegistryError(`${at}registry host ${host} not found`, { hint: 'check the host name in the image reference', cause: err });
  }
  if (code !== undefined && DROPPED.has(code)) {
    // The registry was reached: the connection broke during the exchange.
    return new RegistryError(`${at}connection to ${host} dropped (${code})`, {
      hint: 'the registry or something on the way closed it; try again, and check proxies and the registry\'s logs if it goes on',
      cause: err,
      retryable: true,
    });
  }
  if (code === 'TIMEOUT') {
    return new RegistryError(`${at}registry ${host} did not answer in time (timed out)`, {
      hint: 'check that the registry runs; PAUSE_BUILD_REQUEST_TIMEOUT_MS sets how long to wait',
      cause: err,
      retryable: true,
    });
  }
  const why = code === 'ECONNREFUSED' ? 'connection refused' : code ? `${code}` : redact(message);
  return new RegistryError(`${at}registry ${host} unreachable (${why})`, {
    hint: `check that the registry runs and listens on ${host}`,
    cause: err,
    retryable: code === undefined || RETRYABLE_NETWORK.has(code),
  });
}

/** The first error of a registry's JSON error body, as `CODE: message`, redacted and short. */
function registryMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = parsed.errors?.[0];
    if (!first) return undefined;
    const text = [first.code, first.message].filter((x) => typeof x === 'string' && x).join(': ');
    return text ? redact(text).replace(/\s+/g, ' ').slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

interface Session {
  readonly registry: string;
  readonly base: URL;
  readonly plainHttp: boolean;
  readonly auth: Promise<RegistryAuth>;
  /** Known once `auth` has resolved: whether any credentials were found. */
  anonymous?: boolean;
  pinged?: Promise<void>;
  /** Chunk size once the registry (or a proxy before it) refused a body as too large (413). */
  chunkSize?: number;
}

interface SendRequest {
  readonly session: Session;
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: URL;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array | string | ReadableStream<Uint8Array>;
  /** Length of a streamed body. */
  readonly bodySize?: number;
  readonly scopes: readonly string[];
  /** Statuses handed back to the caller; any other is an error. */
  readonly ok: readonly number[];
  /** What this request does, for messages: `upload of blob sha256:…`. */
  readonly what: string;
  readonly action: string;
  readonly signal?: AbortSignal;
  /** Retry this request alone (false when the caller retries a whole sequence). */
  readonly retry: boolean;
  /** Read the whole body inside the try, so that a body that breaks off is tried again (small documents only). */
  readonly buffer?: boolean;
  readonly read?: ReadLimits;
}

/** Bounds of a body read: at most `maxBytes` (default the manifest cap), in a time that scales with `sizeHint`. */
interface ReadLimits {
  readonly maxBytes?: number;
  readonly sizeHint?: number;
  /** Names the limit in the error: `the 4 MiB limit for a manifest`. */
  readonly what?: string;
  readonly hint?: string;
}

export class RegistryClient {
  private readonly sessions = new Map<string, Session>();
  private readonly transport: HttpTransport;
  private readonly policy: RetryPolicy;
  private readonly log: ((line: string) => void) | undefined;
  private readonly userAgent: string;

  constructor(private readonly options: RegistryClientOptions = {}) {
    // The transport adds the system's roots: they are named once, there.
    this.transport = new HttpTransport(options.ca?.length ? options.ca : undefined);
    this.policy = { ...DEFAULT_RETRY, ...options.retry };
    this.log = redactingLogger(options.debug);
    this.userAgent = options.userAgent ?? `pause-build/${packageVersion()}`;
  }

  /** Closes pooled connections (idle ones do not keep the process alive). */
  async close(): Promise<void> {
    this.transport.close();
  }

  isInsecure(registry: string): boolean {
    return hostMatches(this.options.insecure ?? [], registry);
  }

  private session(registry: string): Session {
    let s = this.sessions.get(registry);
    if (!s) {
      const plainHttp = this.isInsecure(registry);
      const base = new URL(`${plainHttp ? 'http' : 'https'}://${apiHost(registry)}/`);
      const auth = credentialsFor(registry, this.options.credentials).then((cred: Credential | undefined) => {
        s!.anonymous = cred === undefined;
        return new RegistryAuth(registry, cred, (url, init) => this.fetchToken(s!, url, init));
      });
      // An unhandled rejection here would crash the process before anyone awaits it.
      auth.catch(() => undefined);
      s = { registry, base, plainHttp, auth };
      this.sessions.set(registry, s);
    }
    return s;
  }

  private repoUrl(repo: Repository, rest: string): URL {
    return new URL(`v2/${repo.repository}/${rest}`, this.session(repo.registry).base);
  }

  private scopes(repo: Repository, access: 'pull' | 'push' = 'pull'): string[] {
    return [`repository:${repo.repository}:${access === 'push' ? 'pull,push' : 'pull'}`];
  }

  private action(repo: Repository, opts: CallOptions | undefined, fallback: string): string {
    return opts?.action ?? `${fallback} ${formatRepository(repo)}`;
  }

  /**
   * One HTTP exchange: TLS and timeouts, network errors turned into RegistryErrors. The
   * timeout covers the wait for the answer to start (plus time to send a large body) and,
   * after that, each wait for the next piece of its body: a registry that stops sending
   * midway fails like one that never answers, and a body that breaks off is a retryable
   * RegistryError too.
   */
  private async exchange(session: Session, url: URL, init: HttpInit, action: string, signal: AbortSignal | undefined, bodySize = 0, read: ReadLimits = {}): Promise<StreamedAnswer> {
    const limitMs = this.options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timeout = new AbortController();
    const expire = () => timeout.abort(new DOMException('timed out', 'TimeoutError'));
    const timer = setTimeout(expire, limitMs + Math.ceil(bodySize / MIN_UPLOAD_BYTES_PER_MS));
    const combined = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
    const headers: Record<string, string> = { 'User-Agent': this.userAgent, ...init.headers };
    let { method, body } = init;
    let current = url;
    try {
      for (let hop = 0; ; hop++) {
        const started = Date.now();
        const host = current.host === session.base.host ? session.registry : current.host;
        this.log?.(`→ ${method} ${current.href}`);
        let msg;
        try {
          msg = await this.transport.request(current, { method, headers, ...(body === undefined ? {} : { body }) }, combined);
          this.log?.(`← ${msg.statusCode} ${method} ${current.pathname} (${Date.now() - started} ms)`);
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          const err = networkError(timeout.signal.aborted ? timeout.signal.reason : e, host, action, this.options.caFile);
          this.log?.(`✗ ${method} ${current.pathname}: ${err.message}`);
          throw err;
        }
        const log = this.log;
        const at = current;
        const verb = method;
        const answer = new StreamedAnswer(msg, method, {
          idleMs: limitMs,
          maxBytes: read.maxBytes ?? MANIFEST_LIMIT,
          ...(read.sizeHint === undefined ? {} : { sizeHint: read.sizeHint }),
          tooLarge: (n) => {
            const what = `${verb} ${at.pathname.replace(/(sha256:[0-9a-f]{12})[0-9a-f]{52}/g, '$1')}`;
            const limit = read.maxBytes ?? MANIFEST_LIMIT;
            return new RegistryError(`${action}: the answer to ${what} is ${n} bytes or more, above ${read.what ?? `the ${limit} byte limit`}`, {
              hint: read.hint ?? 'the registry sent something other than what was asked for; check the reference',
            });
          },
          expire,
          failure: (e) => {
            if (signal?.aborted) return signal.reason;
            const { code, message } = errorCode(timeout.signal.aborted ? timeout.signal.reason : e);
            const why = code === 'TIMEOUT' ? 'timed out' : code ?? redact(message);
            const what = `${verb} ${at.pathname.replace(/(sha256:[0-9a-f]{12})[0-9a-f]{52}/g, '$1')}${host === session.registry ? '' : ` on ${host}`}`;
            const err = new RegistryError(`${action}: the answer to ${what} broke off (${why})`, {
              hint: 'the connection or the registry failed midway; try again',
              cause: e,
              retryable: true,
            });
            log?.(`✗ ${verb} ${at.pathname}: ${err.message}`);
            return err;
          },
        });
        // Redirects are followed as fetch follows them: blob downloads often go to storage elsewhere.
        const location = answer.headers.get('location');
        const status = answer.status;
        // A streamed body cannot be sent again: its caller sees the redirect as a failure.
        if (location && hop < 20 && [301, 302, 303, 307, 308].includes(status) && !(body instanceof ReadableStream)) {
          answer.discard();
          const next = new URL(location, current);
          if (current.protocol === 'https:' && next.protocol === 'http:' && !this.isInsecure(next.host)) {
            const err = new RegistryError(`${action}: ${host} redirected ${method} ${current.pathname.replace(/(sha256:[0-9a-f]{12})[0-9a-f]{52}/g, '$1')} from HTTPS to plain HTTP (${next.host}); refused`, {
              hint: `pass --insecure-registry ${next.host} if that host is meant to be spoken to without TLS`,
            });
            this.log?.(`✗ ${method} ${current.pathname}: ${err.message}`);
            throw err;
          }
          if (next.origin !== current.origin) {
            for (const k of Object.keys(headers)) if (k.toLowerCase() === 'authorization') delete headers[k];
          }
          if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
            method = 'GET';
            body = undefined;
            for (const k of Object.keys(headers)) if (/^content-(type|length)$/i.test(k)) delete headers[k];
          }
          current = next;
          continue;
        }
        return answer;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private async fetchToken(session: Session, url: URL, init: { method: string; headers: Record<string, string>; body?: string }): Promise<HttpAnswer> {
    if (url.protocol === 'http:' && !session.plainHttp && !hostMatches(this.options.insecure ?? [], url.host)) {
      throw new PauseBuildError(`registry ${session.registry} sends credentials to a plain-HTTP token service ${url.host}`, {
        hint: `pass --insecure-registry ${url.host} if that is intended`,
      });
    }
    return withRetries(this.policy, async () => {
      // Read here, so that an answer that breaks off is tried again like one that never came.
      const res = await (await this.exchange(session, url, init, `authenticate to ${session.registry}`, undefined)).buffered();
      if (isRetryableStatus(res.status)) {
        throw new RegistryError(`authenticate to ${session.registry}: token service ${url.host} answered ${res.status} ${res.statusText}`.trim(), {
          retryable: true,
          status: res.status,
          retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
          hint: 'try again later',
        });
      }
      return res;
    }, { onRetry: this.retryLogger() });
  }

  private retryLogger() {
    return this.log && ((info: { attempt: number; delayMs: number; error: RegistryError }) => this.log?.(`retry after try ${info.attempt} in ${info.delayMs} ms: ${info.error.message}`));
  }

  /** GET /v2/ once per registry: is it there, and which challenge does it answer with. */
  private ping(session: Session, action: string, signal: AbortSignal | undefined): Promise<void> {
    if (!session.pinged) {
      session.pinged = withRetries(this.policy, async () => {
        const auth = await session.auth;
        const res = await this.exchange(session, new URL('v2/', session.base), { method: 'GET' }, action, signal);
        const body = await res.text().catch(() => '');
        if (res.status === 200) return;
        if (res.status === 401) {
          auth.setChallenge(res.headers.get('www-authenticate'));
          return;
        }
        throw this.statusError(session, res, body, 'API check (GET /v2/)', action);
      }, { signal, onRetry: this.retryLogger() });
      // A failed ping is tried again by the next call.
      session.pinged.catch(() => {
        session.pinged = undefined;
      });
    }
    return session.pinged;
  }

  /** Checks that the registry answers and speaks the v2 API. */
  async pingRegistry(registry: string, opts: CallOptions = {}): Promise<void> {
    await this.ping(this.session(registry), opts.action ?? `reach ${registry}`, opts.signal);
  }

  private statusError(session: Session, res: HttpAnswer, body: string, what: string, action: string, pushing = false): RegistryError {
    const { status } = res;
    const said = registryMessage(body);
    const retryable = isRetryableStatus(status);
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    const challenge = res.headers.get('www-authenticate') ?? '';
    if (pushing && (status === 401 || status === 403) && (/error="?insufficient_scope/i.test(challenge) || /^(DENIED|insufficient_scope)\b/i.test(said ?? ''))) {
      return new RegistryError(`${action}: the account may not push to this repository (${status}${said ? `: ${said}` : ''})`, {
        status,
        hint: session.anonymous
          ? `log in: pass --username and --password-stdin, or docker login ${session.registry}`
          : 'ask for push rights on the repository, or push to one the account may write',
      });
    }
    if (status === 401) {
      return new RegistryError(`${action}: authentication failed (401)`, {
        status,
        hint: session.anonymous
          ? `no credentials for ${session.registry}: pass --username and --password-stdin, or docker login ${session.registry}`
          : `check --username/--password-stdin or docker login ${session.registry}`,
      });
    }
    if (status === 403) {
      return new RegistryError(`${action}: access denied (403)${said ? `: ${said}` : ''}`, { status, hint: 'the account needs push (or pull) rights on this repository' });
    }
    if (status === 400 && session.plainHttp && /HTTPS server/i.test(body)) {
      return new RegistryError(`${action}: registry ${session.registry} serves HTTPS, not plain HTTP`, { status, hint: `drop --insecure-registry ${session.registry}` });
    }
    if (status === 404 && what.startsWith('API check')) {
      return new RegistryError(`${action}: ${session.registry} is not a registry (GET /v2/ answered 404)`, { status, hint: 'check the host and port in the image reference' });
    }
    if (status === 429) {
      return new RegistryError(`${action}: ${what}: too many requests (429)`, { status, retryable, retryAfterMs, hint: 'wait for the registry\'s rate limit, or log in for a higher one' });
    }
    const text = `${status}${res.statusText ? ` ${res.statusText}` : ''}${said ? ` (${said})` : ''}`;
    return new RegistryError(`${action}: ${what} failed: ${text}`, {
      status,
      retryable,
      retryAfterMs,
      hint: retryable ? 'the registry failed; try again later' : 'check the image reference and the registry',
    });
  }

  /**
   * One request with authentication: attaches the credentials the challenge asks for,
   * answers one 401 by fetching a fresh (or wider) token, maps other statuses to
   * errors, and retries what may pass unless the caller retries the whole sequence.
   */
  private async send(req: SendRequest): Promise<HttpAnswer> {
    const attempt = async (): Promise<HttpAnswer> => {
      await this.ping(req.session, req.action, req.signal);
      const auth = await req.session.auth;
      let scopes = req.scopes;
      for (let round = 0; ; round++) {
        const authorization = req.url.origin === req.session.base.origin ? await auth.header(scopes, { registry: req.session.registry, action: req.action }) : undefined;
        const headers: Record<string, string> = { ...req.headers };
        if (authorization) headers.Authorization = authorization;
        const streamed = req.body instanceof ReadableStream;
        const init: HttpInit = { method: req.method, headers, ...(req.body === undefined ? {} : { body: req.body }) };
        const size = typeof req.body === 'string' ? Buffer.byteLength(req.body) : req.body instanceof Uint8Array ? req.body.byteLength : req.bodySize ?? 0;
        const res = await this.exchange(req.session, req.url, init, req.action, req.signal, size, req.read);
        // A stream cannot be sent twice: its caller retries the whole upload instead.
        if (res.status === 401 && round === 0 && !streamed) {
          const wider = auth.retryAfter401(res.headers.get('www-authenticate'), scopes, Boolean(authorization));
          if (wider) {
            await res.arrayBuffer().catch(() => undefined);
            scopes = wider;
            continue;
          }
        }
        if (req.ok.includes(res.status)) {
          return req.buffer ? res.buffered() : res;
        }
        const body = req.method === 'HEAD' ? '' : await res.text().catch(() => '');
        throw this.statusError(req.session, res, body, req.what, req.action, req.scopes.some((s) => s.endsWith(',push')) && req.method !== 'GET' && req.method !== 'HEAD');
      }
    };
    if (!req.retry) return attempt();
    return withRetries(this.policy, attempt, { signal: req.signal, onRetry: this.retryLogger() });
  }

  // ---------------------------------------------------------------------------------------
  // Blobs

  /** The blob's size when the repository has it, else undefined. */
  async blobExists(repo: Repository, digest: string, opts: CallOptions = {}): Promise<number | undefined> {
    const session = this.session(repo.registry);
    const res = await this.send({
      session, method: 'HEAD', url: this.repoUrl(repo, `blobs/${digest}`), scopes: this.scopes(repo, opts.access), ok: [200, 404],
      what: `check of blob ${shortDigest(digest)}`, action: this.action(repo, opts, 'read'), signal: opts.signal, retry: true,
    });
    if (res.status === 404) return undefined;
    const length = Number(res.headers.get('content-length'));
    return Number.isFinite(length) ? length : 0;
  }

  /** PUT of the blob's bytes to an upload session opened by POST. */
  private async finishUpload(session: Session, repo: Repository, location: string | null, blob: BlobUpload, action: string, signal: AbortSignal | undefined): Promise<void> {
    const { digest, size } = blob.descriptor;
    if (!location) throw new RegistryError(`${action}: registry ${session.registry} opened an upload without a Location`, { hint: 'the registry is not following the distribution spec' });
    const chunkSize = this.options.chunkSize ?? session.chunkSize;
    if (chunkSize !== undefined && size > 0) return this.uploadChunks(session, repo, location, blob, chunkSize, action, signal);
    const url = new URL(location, new URL(`v2/${repo.repository}/blobs/uploads/`, session.base));
    url.searchParams.set('digest', digest);
    const body = blob.bytes ?? (await blob.open?.());
    if (body === undefined) throw new Error(`upload of blob ${digest} without content`);
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    // A stream has no length of its own; registries want one.
    if (body instanceof ReadableStream) headers['Content-Length'] = String(size);
    const res = await this.send({
      session, method: 'PUT', url, headers,
      body, bodySize: size, scopes: this.scopes(repo, 'push'), ok: [201, 204], what: `upload of blob ${shortDigest(digest)}`, action, signal, retry: false,
    });
    await res.arrayBuffer().catch(() => undefined);
    const stored = res.headers.get('docker-content-digest');
    if (stored && stored !== digest) {
      throw new RegistryError(`${action}: registry stored blob ${shortDigest(digest)} as ${stored}`, { hint: 'the upload was corrupted on the way; try again' });
    }
  }

  /**
   * Chunked upload as the distribution spec describes it: PATCH after PATCH with
   * Content-Range, each to the Location the last answer gave, then a PUT with ?digest=.
   * A chunk that breaks off is resumed from the Range the registry says it holds; one
   * refused as too large (413) is sent again in halves. At most one chunk is in memory.
   */
  private async uploadChunks(session: Session, repo: Repository, location: string, blob: BlobUpload, chunkSize: number, action: string, signal: AbortSignal | undefined): Promise<void> {
    const { digest, size } = blob.descriptor;
    const base = new URL(`v2/${repo.repository}/blobs/uploads/`, session.base);
    let url = new URL(location, base);
    let source = new ChunkReader(blob);
    let offset = 0;
    let chunk = Math.max(MIN_CHUNK, chunkSize);
    let broken = 0;
    const what = `upload of blob ${shortDigest(digest)}`;
    try {
      // The chunk last sent, kept until the registry has it: a resume may need part of it again.
      let last: { offset: number; bytes: Uint8Array } | undefined;
      while (offset < size) {
        const again = last && offset >= last.offset && offset < last.offset + last.bytes.byteLength ? last.bytes.subarray(offset - last.offset) : undefined;
        const bytes = again ? again.subarray(0, Math.min(chunk, again.byteLength)) : await source.read(offset, Math.min(chunk, size - offset));
        last = { offset, bytes };
        try {
          const res = await this.send({
            session, method: 'PATCH', url, body: bytes,
            headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + bytes.byteLength - 1}` },
            scopes: this.scopes(repo, 'push'), ok: [202, 204], what, action, signal, retry: false,
          });
          await res.arrayBuffer().catch(() => undefined);
          const next = res.headers.get('location');
          if (next) url = new URL(next, url);
          offset = rangeEnd(res.headers.get('range')) ?? offset + bytes.byteLength;
        } catch (e) {
          if (e instanceof RegistryError && e.status === 413 && chunk > MIN_CHUNK) {
            chunk = Math.max(MIN_CHUNK, Math.floor(chunk / 2));
            session.chunkSize = chunk;
            continue;
          }
          if (!(e instanceof RegistryError) || !e.retryable || ++broken > this.policy.attempts) throw e;
          // Where the registry stands: resume from the end of what it holds.
          const status = await this.send({ session, method: 'GET', url, scopes: this.scopes(repo, 'push'), ok: [204], what, action, signal, retry: true });
          await status.arrayBuffer().catch(() => undefined);
          const held = rangeEnd(status.headers.get('range')) ?? 0;
          const next = status.headers.get('location');
          if (next) url = new URL(next, url);
          if (held < offset) {
            await source.close();
            source = new ChunkReader(blob);
          }
          offset = held;
          this.log?.(`resume ${what} at byte ${offset}`);
        }
      }
    } finally {
      await source.close();
    }
    url.searchParams.set('digest', digest);
    const res = await this.send({
      session, method: 'PUT', url, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': '0' }, body: new Uint8Array(0),
      scopes: this.scopes(repo, 'push'), ok: [201, 204], what, action, signal, retry: false,
    });
    await res.arrayBuffer().catch(() => undefined);
    const stored = res.headers.get('docker-content-digest');
    if (stored && stored !== digest) {
      throw new RegistryError(`${action}: registry stored blob ${shortDigest(digest)} as ${stored}`, { hint: 'the upload was corrupted on the way; try again' });
    }
  }

  /**
   * Upload (POST, then PUT with ?digest=, or chunks), retried as a whole: a failed PUT
   * leaves its upload session unusable, so a retry opens a new one. A whole body refused
   * as too large (413) is sent again in chunks, and so is every later blob to that registry.
   */
  async uploadBlob(repo: Repository, blob: BlobUpload, opts: CallOptions = {}): Promise<void> {
    const session = this.session(repo.registry);
    const action = this.action(repo, opts, 'push to');
    await withRetries(this.policy, async () => {
      const start = await this.send({
        session, method: 'POST', url: this.repoUrl(repo, 'blobs/uploads/'), scopes: this.scopes(repo, 'push'), ok: [202],
        what: `upload of blob ${shortDigest(blob.descriptor.digest)}`, action, signal: opts.signal, retry: false,
      });
      await start.arrayBuffer().catch(() => undefined);
      try {
        await this.finishUpload(session, repo, start.headers.get('location'), blob, action, opts.signal);
      } catch (e) {
        if (!(e instanceof RegistryError) || e.status !== 413 || session.chunkSize !== undefined || this.options.chunkSize !== undefined) throw e;
        this.log?.(`${session.registry} refused a ${blob.descriptor.size} byte body (413): uploading in chunks`);
        session.chunkSize = DEFAULT_CHUNK;
        throw new RegistryError(e.message, { status: 413, retryable: true, hint: e.hint ?? '' });
      }
    }, { signal: opts.signal, onRetry: this.retryLogger() });
  }

  /**
   * Cross-repository mount from `from` (same registry); when the registry cannot mount
   * (202), the upload session it opened is used to upload the bytes instead (a lazy
   * blob is opened only then).
   */
  async mountBlob(repo: Repository, blob: BlobUpload, from: string, opts: CallOptions = {}): Promise<BlobTransfer> {
    const session = this.session(repo.registry);
    const action = this.action(repo, opts, 'push to');
    const { digest } = blob.descriptor;
    return withRetries(this.policy, async () => {
      const url = this.repoUrl(repo, 'blobs/uploads/');
      url.searchParams.set('mount', digest);
      url.searchParams.set('from', from);
      const res = await this.send({
        session, method: 'POST', url, scopes: [...this.scopes(repo, 'push'), `repository:${from}:pull`], ok: [201, 202],
        what: `mount of blob ${shortDigest(digest)} from ${from}`, action, signal: opts.signal, retry: false,
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status === 201) return 'mounted' as const;
      await this.finishUpload(session, repo, res.headers.get('location'), blob, action, opts.signal);
      return 'uploaded' as const;
    }, { signal: opts.signal, onRetry: this.retryLogger() });
  }

  /** The blob's bytes as a stream that fails at its end when they do not match the digest. */
  async getBlob(repo: Repository, digest: string, opts: CallOptions = {}): Promise<{ size: number | undefined; stream: ReadableStream<Uint8Array> }> {
    return this.openBlob(repo, digest, opts, true);
  }

  private async openBlob(repo: Repository, digest: string, opts: CallOptions, retry: boolean): Promise<{ size: number | undefined; stream: ReadableStream<Uint8Array> }> {
    const session = this.session(repo.registry);
    const action = this.action(repo, opts, 'pull from');
    const res = await this.send({
      session, method: 'GET', url: this.repoUrl(repo, `blobs/${digest}`), scopes: this.scopes(repo, opts.access), ok: [200],
      what: `download of blob ${shortDigest(digest)}`, action, signal: opts.signal, retry,
      read: { maxBytes: opts.size ?? Number.MAX_SAFE_INTEGER, ...(opts.size === undefined ? {} : { sizeHint: opts.size, what: `its declared ${opts.size} bytes` }), hint: 'the registry or a proxy sent other content; nothing was written for it' },
    });
    const lengthHeader = res.headers.get('content-length');
    const size = lengthHeader === null ? undefined : Number(lengthHeader);
    const declared = opts.size;
    const tooLarge = (n: number) => new RegistryError(`${action}: blob ${shortDigest(digest)} is larger than its declared ${declared} bytes (${n} bytes or more)`, { hint: 'the registry or a proxy sent other content; nothing was written for it' });
    if (declared !== undefined && size !== undefined && size > declared) {
      await res.body?.cancel().catch(() => undefined);
      throw tooLarge(size);
    }
    const hash = createHash('sha256');
    let seen = 0;
    const verify = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (declared !== undefined && seen > declared) {
          controller.error(tooLarge(seen));
          return;
        }
        hash.update(chunk);
        controller.enqueue(chunk);
      },
      flush(controller) {
        const got = `sha256:${hash.digest('hex')}`;
        if (got !== digest) {
          controller.error(new RegistryError(`${action}: blob ${shortDigest(digest)} arrived as ${shortDigest(got)} (${seen} bytes)`, { hint: 'the registry or a proxy changed the content; try again' }));
        }
      },
    });
    const body = res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    return { size, stream: body.pipeThrough(verify) };
  }

  /** The whole blob, verified against its digest; a download that breaks off is started again. */
  async readBlob(repo: Repository, digest: string, opts: CallOptions = {}): Promise<Uint8Array> {
    return withRetries(this.policy, async () => {
      const { stream } = await this.openBlob(repo, digest, opts, false);
      const chunks: Uint8Array[] = [];
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
      return Buffer.concat(chunks);
    }, { signal: opts.signal, onRetry: this.retryLogger() });
  }

  // ---------------------------------------------------------------------------------------
  // Manifests

  /** Digest, media type and size of a manifest by tag or digest; undefined when absent. */
  async headManifest(repo: Repository, reference: string, opts: CallOptions = {}): Promise<ManifestInfo | undefined> {
    const session = this.session(repo.registry);
    const res = await this.send({
      session, method: 'HEAD', url: this.repoUrl(repo, `manifests/${reference}`), headers: { Accept: MANIFEST_ACCEPT }, scopes: this.scopes(repo, opts.access),
      ok: [200, 404], what: `check of manifest ${reference}`, action: this.action(repo, opts, 'read'), signal: opts.signal, retry: true,
    });
    if (res.status === 404) return undefined;
    const digest = res.headers.get('docker-content-digest');
    if (!digest) {
      // Not every registry says; the bytes do.
      const m = await this.getManifest(repo, reference, opts);
      return { digest: m.digest, mediaType: m.mediaType, size: m.size };
    }
    return { digest, mediaType: res.headers.get('content-type') ?? '', size: Number(res.headers.get('content-length') ?? 0) };
  }

  /** The manifest's exact bytes; by digest they are checked against it. */
  async getManifest(repo: Repository, reference: string, opts: CallOptions = {}): Promise<Manifest> {
    const session = this.session(repo.registry);
    const action = this.action(repo, opts, 'pull from');
    const res = await this.send({
      session, method: 'GET', url: this.repoUrl(repo, `manifests/${reference}`), headers: { Accept: MANIFEST_ACCEPT }, scopes: this.scopes(repo, opts.access),
      ok: [200], what: `download of manifest ${reference}`, action, signal: opts.signal, retry: true, buffer: true,
      read: { maxBytes: MANIFEST_LIMIT, what: 'the 4 MiB limit for a manifest', hint: 'the registry does not hold an image manifest there; check the reference' },
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new RegistryError(`${action}: manifest ${shortDigest(reference)} arrived as ${shortDigest(digest)}`, { hint: 'the registry or a proxy changed the content' });
    }
    return { digest, mediaType: res.headers.get('content-type') ?? '', size: bytes.byteLength, bytes };
  }

  /** Stores a manifest under a tag or its digest; returns its digest, checked against the registry's. */
  async putManifest(repo: Repository, reference: string, bytes: Uint8Array, mediaType: string, opts: CallOptions = {}): Promise<string> {
    const session = this.session(repo.registry);
    const action = this.action(repo, opts, 'push to');
    const digest = sha256Digest(bytes);
    const res = await this.send({
      session, method: 'PUT', url: this.repoUrl(repo, `manifests/${reference}`), headers: { 'Content-Type': mediaType }, body: bytes,
      scopes: this.scopes(repo, 'push'), ok: [200, 201, 202, 204], what: `manifest PUT ${reference.startsWith('sha256:') ? shortDigest(reference) : reference}`, action, signal: opts.signal, retry: true,
    });
    await res.arrayBuffer().catch(() => undefined);
    const stored = res.headers.get('docker-content-digest');
    if (stored && stored !== digest) {
      throw new RegistryError(`${action}: registry stored manifest ${reference} as ${stored}, not ${digest}`, { hint: 'the registry rewrote the manifest; it cannot keep digests' });
    }
    return digest;
  }

  // ---------------------------------------------------------------------------------------
  // Referrers

  /**
   * The OCI 1.1 referrers list of a manifest (an image index of descriptors), or undefined
   * when the registry has no referrers API (404, 400 or 405: distribution 2.8, GHCR, Docker Hub).
   */
  async getReferrers(repo: Repository, digest: string, opts: CallOptions = {}): Promise<Uint8Array | undefined> {
    const session = this.session(repo.registry);
    const res = await this.send({
      session, method: 'GET', url: this.repoUrl(repo, `referrers/${digest}`), headers: { Accept: 'application/vnd.oci.image.index.v1+json' }, scopes: this.scopes(repo, opts.access),
      ok: [200, 400, 404, 405], what: `referrers of ${shortDigest(digest)}`, action: this.action(repo, opts, 'read'), signal: opts.signal, retry: true, buffer: true,
      read: { maxBytes: MANIFEST_LIMIT, what: 'the 4 MiB limit for a referrers list', hint: 'the registry lists too many referrers' },
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) return undefined;
    // A registry that answers 200 with something else (an HTML page) has no referrers API either.
    return (res.headers.get('content-type') ?? '').includes('application/vnd.oci.image.index.v1+json') ? bytes : undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Tags

  /** Every tag of the repository, following Link pagination; [] when the repository is unknown. */
  async listTags(repo: Repository, opts: CallOptions & { readonly pageSize?: number } = {}): Promise<string[]> {
    const session = this.session(repo.registry);
    const action = this.action(repo, opts, 'list tags of');
    const tags: string[] = [];
    let url: URL | undefined = this.repoUrl(repo, 'tags/list');
    url.searchParams.set('n', String(opts.pageSize ?? 1000));
    for (let page = 0; url && page < 10_000; page++) {
      const res: HttpAnswer = await this.send({
        session, method: 'GET', url, scopes: this.scopes(repo, opts.access), ok: [200, 404], what: 'tag list', action, signal: opts.signal, retry: true, buffer: true,
      });
      const text = await res.text();
      if (res.status === 404) return tags;
      let body: { tags?: unknown };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        throw new RegistryError(`${action}: the tag list is not JSON`, { hint: 'the registry is not following the distribution spec' });
      }
      if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === 'string'));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(res.headers.get('link') ?? '')?.[1];
      url = next ? new URL(next, url) : undefined;
    }
    return tags;
  }
}
