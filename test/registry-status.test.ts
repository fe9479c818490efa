import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { networkError } from '../src/registry/status.ts';

const sysError = (code: string) => Object.assign(new Error(`${code}: something`), { code });

describe('network errors in one line', () => {
  const table: [string, RegExp, boolean][] = [
    ['EMFILE', /^push to r\.example\/p: too many open files \(EMFILE\) talking to r\.example$/, false],
    ['ENFILE', /^push to r\.example\/p: too many open files \(ENFILE\) talking to r\.example$/, false],
    ['ECONNREFUSED', /^push to r\.example\/p: registry r\.example unreachable \(connection refused\)$/, true],
    ['ECONNRESET', /^push to r\.example\/p: connection to r\.example dropped \(ECONNRESET\)$/, true],
    ['ENOTFOUND', /^push to r\.example\/p: registry host r\.example not found$/, false],
  ];
  for (const [code, message, retryable] of table) {
    it(code, () => {
      const e = networkError(sysError(code), 'r.example', 'push to r.example/p', undefined);
      assert.match(e.message, message);
      assert.equal(e.retryable, retryable);
      assert.ok(e.hint);
    });
  }
  it('a fetch-style cause chain is followed', () => {
    const e = networkError(Object.assign(new Error('fetch failed'), { cause: sysError('EMFILE') }), 'r.example', 'pull from r.example/p', undefined);
    assert.match(e.message, /too many open files \(EMFILE\)/);
    assert.match(e.hint ?? '', /ulimit -n/);
  });
});
