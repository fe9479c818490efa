/**
 * The registry transport: one session per registry (base URL, plain HTTP or TLS, its
 * credentials and token cache), the exchange (timeouts and whole-body deadlines, redirects,
 * the HTTPS → HTTP rule), the 401 → token dance, the ping, and retries. The verbs
 * (blobs.ts, uploads.ts, manifests.ts, tags.ts) speak through `send`.
 */
import { PauseBuildError } from '../errors.ts';
import { MANIFEST_LIMIT } from '../oci/manifest.ts';
import type { Descriptor } from '../oci/types.ts';
import { packageVersion } from '../project.ts';
import { type Credential, type CredentialSource, RegistryAuth, credentialsFor } from './auth.ts';
import { type HttpAnswer, type HttpInit, HttpTransport, StreamedAnswer } from './http.ts';
import { redact, redactingLogger } from './redact.ts';
import { type Repository, apiHost, formatRepository } from './reference.ts';
import { DEFAULT_RETRY, RegistryError, type RetryPolicy, isRetryableStatus, parseRetryAfter, withRetries } from './retry.ts';
import { errorCode, networkError, statusError } from './status.ts';

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

const DEFAULT_TIMEOUT_MS = 60_000;
/** The slowest upload we wait for: a registry answers a PUT only once it has the whole body. */
const MIN_UPLOAD_BYTES_PER_MS = 128 * 1024 / 1000;

export function hostMatches(list: readonly string[], registry: string): boolean {
  const bare = registry.replace(/:\d+$/, '');
  return list.some((entry) => entry === registry || (!/:\d+$/.test(entry) && entry === bare));
}

export interface Session {
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

export interface SendRequest {
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
export interface ReadLimits {
  readonly maxBytes?: number;
  readonly sizeHint?: number;
  /** Names the limit in the error: `the 4 MiB limit for a manifest`. */
  readonly what?: string;
  readonly hint?: string;
}

export class RegistryTransport {
  readonly sessions = new Map<string, Session>();
  private readonly transport: HttpTransport;
  readonly policy: RetryPolicy;
  readonly log: ((line: string) => void) | undefined;
  private readonly userAgent: string;

  constructor(readonly options: RegistryClientOptions = {}) {
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

  session(registry: string): Session {
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

  repoUrl(repo: Repository, rest: string): URL {
    return new URL(`v2/${repo.repository}/${rest}`, this.session(repo.registry).base);
  }

  scopes(repo: Repository, access: 'pull' | 'push' = 'pull'): string[] {
    return [`repository:${repo.repository}:${access === 'push' ? 'pull,push' : 'pull'}`];
  }

  action(repo: Repository, opts: CallOptions | undefined, fallback: string): string {
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
          // A streamed body that failed at its source (content that is not what it should be) says so itself.
          if (e instanceof PauseBuildError) throw e;
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

  retryLogger() {
    return this.log && ((info: { attempt: number; delayMs: number; error: RegistryError }) => this.log?.(`retry after try ${info.attempt} in ${info.delayMs} ms: ${info.error.message}`));
  }

  /** GET /v2/ once per registry: is it there, and which challenge does it answer with. */
  ping(session: Session, action: string, signal: AbortSignal | undefined): Promise<void> {
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
        throw statusError(session, res, body, 'API check (GET /v2/)', action);
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



  /**
   * One request with authentication: attaches the credentials the challenge asks for,
   * answers one 401 by fetching a fresh (or wider) token, maps other statuses to
   * errors, and retries what may pass unless the caller retries the whole sequence.
   */
  async send(req: SendRequest): Promise<HttpAnswer> {
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
        throw statusError(req.session, res, body, req.what, req.action, req.scopes.some((s) => s.endsWith(',push')) && req.method !== 'GET' && req.method !== 'HEAD');
      }
    };
    if (!req.retry) return attempt();
    return withRetries(this.policy, attempt, { signal: req.signal, onRetry: this.retryLogger() });
  }

}
