import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError, backoffDelay, isRetryableStatus, parseRetryAfter, withRetries } from '../src/registry/retry.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const fast = { attempts: 4, baseDelayMs: 1, maxDelayMs: 4, maxRetryAfterMs: 1000 };

describe('parseRetryAfter', () => {
  const table: [string | null | undefined, number | undefined][] = [
    ['0', 0],
    ['5', 5000],
    [' 120 ', 120_000],
    ['Thu, 01 Jan 2026 00:00:30 GMT', 30_000],
    ['Wed, 31 Dec 2025 23:59:00 GMT', 0],
    ['-1', undefined],
    ['1.5', undefined],
    ['soon', undefined],
    ['', undefined],
    [null, undefined],
    [undefined, undefined],
  ];
  for (const [value, want] of table) {
    it(`${JSON.stringify(value)} → ${want}`, () => {
      assert.equal(parseRetryAfter(value, NOW), want);
    });
  }
});

describe('retry policy', () => {
  it('retries connection-level statuses, 408, 429 and 5xx, but not other 4xx, 501 or 505', () => {
    for (const s of [408, 429, 500, 502, 503, 504]) assert.equal(isRetryableStatus(s), true, String(s));
    for (const s of [200, 400, 401, 403, 404, 405, 409, 413, 501, 505]) assert.equal(isRetryableStatus(s), false, String(s));
  });

  it('backs off exponentially, capped, with jitter between half and all of the step', () => {
    const p = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 0 };
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, p, () => 1)), [100, 200, 400, 800, 1000, 1000]);
    assert.deepEqual([1, 2, 3].map((a) => backoffDelay(a, p, () => 0)), [50, 100, 200]);
  });
});

describe('withRetries', () => {
  it('retries a retryable failure until it passes', async () => {
    let calls = 0;
    const retries: number[] = [];
    const out = await withRetries(fast, async () => {
      calls++;
      if (calls < 3) throw new RegistryError('flaky', { retryable: true, status: 503 });
      return 'ok';
    }, { onRetry: (i) => retries.push(i.attempt) });
    assert.equal(out, 'ok');
    assert.equal(calls, 3);
    assert.deepEqual(retries, [1, 2]);
  });

  it('gives up after the attempts and says how many', async () => {
    let calls = 0;
    await assert.rejects(withRetries(fast, async () => {
      calls++;
      throw new RegistryError('push to r/p: upload failed: 500', { retryable: true, status: 500 });
    }), (e: unknown) => {
      assert.ok(e instanceof RegistryError);
      assert.equal(e.message, 'push to r/p: upload failed: 500 (4 attempts)');
      assert.equal(e.status, 500);
      return true;
    });
    assert.equal(calls, 4);
  });

  it('does not retry what cannot pass', async () => {
    let calls = 0;
    await assert.rejects(withRetries(fast, async () => {
      calls++;
      throw new RegistryError('denied', { status: 403 });
    }), /^RegistryError: denied$/);
    await assert.rejects(withRetries(fast, async () => {
      calls++;
      throw new TypeError('a bug');
    }), TypeError);
    assert.equal(calls, 2);
  });

  it('waits as long as Retry-After says', async () => {
    let calls = 0;
    const started = Date.now();
    await withRetries({ ...fast, baseDelayMs: 1 }, async () => {
      if (++calls === 1) throw new RegistryError('slow down', { retryable: true, status: 429, retryAfterMs: 300 });
    });
    assert.ok(Date.now() - started >= 290, `waited ${Date.now() - started} ms`);
  });

  it('stops at once when Retry-After is longer than it will wait', async () => {
    let calls = 0;
    await assert.rejects(withRetries(fast, async () => {
      calls++;
      throw new RegistryError('push: too many requests (429)', { retryable: true, status: 429, retryAfterMs: 3_600_000 });
    }), /too many requests \(429\); the registry asks to wait 3600 s/);
    assert.equal(calls, 1);
  });

  it('ends the wait when aborted, with the abort reason', async () => {
    const ac = new AbortController();
    const reason = new Error('interrupted');
    const started = Date.now();
    setTimeout(() => ac.abort(reason), 50);
    await assert.rejects(withRetries({ ...fast, baseDelayMs: 10_000, maxDelayMs: 10_000 }, async () => {
      throw new RegistryError('flaky', { retryable: true });
    }, { signal: ac.signal }), (e: unknown) => e === reason);
    assert.ok(Date.now() - started < 5000);
  });
});
