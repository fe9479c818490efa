/**
 * Registry and network failures as one line each: what was being done, what went wrong,
 * and what to do (the hint). Pure: it reads errors and answers, and decides the words.
 */
import type { HttpAnswer } from './http.ts';
import { redact } from './redact.ts';
import { RegistryError, isRetryableStatus, parseRetryAfter } from './retry.ts';
import type { Session } from './transport.ts';

/** Finds the system error code behind a fetch failure (`fetch failed` → cause → …). */
export function errorCode(err: unknown): { code?: string; message: string } {
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

export function networkError(err: unknown, host: string, action: string, caFile: string | undefined): RegistryError {
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
export function registryMessage(body: string): string | undefined {
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

export function statusError(session: Session, res: HttpAnswer, body: string, what: string, action: string, pushing = false): RegistryError {
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