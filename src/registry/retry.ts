/**
 * Bounded retries with exponential backoff and jitter, for the failures that may pass:
 * dropped connections, timeouts, 408, 429 and 5xx. A `Retry-After` from the registry
 * wins over our own delay; a wait longer than we are willing to sit through ends the
 * retries at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PauseBuildError } from '../errors.ts';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  /** Delay before the second try; doubles each time. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A Retry-After longer than this stops retrying. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterMs: 60_000 };

/** A registry failure, with what the retry loop needs to know about it. */
export class RegistryError extends PauseBuildError {
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly attempts: number;

  constructor(
    message: string,
    options: { hint?: string; cause?: unknown; status?: number; retryable?: boolean; retryAfterMs?: number; attempts?: number } = {},
  ) {
    super(message, { hint: options.hint, cause: options.cause });
    this.name = 'RegistryError';
    this.status = options.status;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.attempts = options.attempts ?? 1;
  }

  /** The same failure, saying how many tries it took. */
  afterAttempts(attempts: number): RegistryError {
    if (attempts <= 1) return this;
    return new RegistryError(`${this.message} (${attempts} attempts)`, {
      hint: this.hint,
      cause: this.cause,
      status: this.status,
      retryable: false,
      attempts,
    });
  }
}

/** HTTP statuses worth another try. 501 and 505 say "never", so they are not among them. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/**
 * `Retry-After` in milliseconds: either delta-seconds or an HTTP-date. Undefined when
 * absent or unreadable; dates in the past give 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Delay before try number `attempt + 1`: base·2^(attempt-1), capped, with "equal jitter" (half fixed, half random). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export interface RetryHooks {
  readonly signal?: AbortSignal;
  /** Told before each wait: which try failed, how long we wait, and why. */
  readonly onRetry?: (info: { attempt: number; delayMs: number; error: RegistryError }) => void;
}

/**
 * Runs `fn` until it succeeds, throws something that is not a retryable
 * RegistryError, or the attempts run out. Abort ends the wait at once.
 */
export async function withRetries<T>(policy: RetryPolicy, fn: (attempt: number) => Promise<T>, hooks: RetryHooks = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    hooks.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (e) {
      if (!(e instanceof RegistryError) || !e.retryable) throw e;
      if (hooks.signal?.aborted) throw hooks.signal.reason;
      if (e.retryAfterMs !== undefined && e.retryAfterMs > policy.maxRetryAfterMs) {
        throw new RegistryError(`${e.message}; the registry asks to wait ${Math.ceil(e.retryAfterMs / 1000)} s`, {
          hint: 'try again later',
          status: e.status,
          attempts: attempt,
        });
      }
      if (attempt >= policy.attempts) throw e.afterAttempts(attempt);
      const delayMs = e.retryAfterMs ?? backoffDelay(attempt, policy);
      hooks.onRetry?.({ attempt, delayMs, error: e });
      await sleep(delayMs, undefined, { signal: hooks.signal }).catch((err: unknown) => {
        throw hooks.signal?.aborted ? hooks.signal.reason : err;
      });
    }
  }
}
