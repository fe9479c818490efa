import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { forgetSecrets, onSecret, redact, redactWith, redactingLogger, registerBasicCredentials, registerSecret } from '../src/registry/redact.ts';

describe('redact', () => {
  afterEach(() => forgetSecrets());

  it('masks registered secrets wherever they appear, and their escaped forms', () => {
    registerSecret('s3cr3t pass/word');
    const out = redact('failed: s3cr3t pass/word; url=https://x/?p=s3cr3t%20pass%2Fword json="s3cr3t pass\\/word"');
    assert.ok(!out.includes('s3cr3t'), out);
    assert.equal((out.match(/\*\*\*/g) ?? []).length, 3, out);
  });

  it('masks the base64 of user:password as sent in Basic auth', () => {
    registerBasicCredentials('alice', 'hunter22');
    const b64 = Buffer.from('alice:hunter22').toString('base64');
    const out = redact(`sent ${b64} and hunter22`);
    assert.ok(!out.includes(b64) && !out.includes('hunter22'), out);
  });

  it('masks credential shapes even when never registered', () => {
    const cases: [string, string][] = [
      ['Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', 'eyJhbGci'],
      ['authorization=Basic YWxpY2U6aHVudGVyMjI=', 'YWxpY2U6'],
      ['{"token":"abc.def.ghi","expires_in":60}', 'abc.def.ghi'],
      ['{"access_token": "tok\\"en-value"}', 'en-value'],
      ['{"auths":{"r.io":{"auth":"dXNlcjpwYXNz"}}}', 'dXNlcjpwYXNz'],
      ['{"Username":"u","Secret":"helper-secret"}', 'helper-secret'],
      ['GET https://auth.example/token?service=r&access_token=qwerty123&scope=x', 'qwerty123'],
      ['grant_type=refresh_token&refresh_token=rt-abcdef', 'rt-abcdef'],
      ['https://bob:pa55word@registry.example/v2/', 'pa55word'],
    ];
    for (const [text, secret] of cases) {
      const out = redact(text);
      assert.ok(!out.includes(secret), `${text} → ${out}`);
      assert.ok(out.includes('***'), out);
    }
  });

  it('leaves ordinary text alone', () => {
    registerSecret('abc'); // too short to mask safely: ignored
    const text = 'push to 127.0.0.1:5000/pause: authentication failed (401) — Bearer realm="https://auth/token"';
    assert.equal(redact(text), text);
  });

  it('masks the longer of two overlapping secrets whole', () => {
    assert.equal(redactWith('x password123 y', ['password', 'password123']), 'x *** y');
  });

  it('redacts every line a debug logger receives', () => {
    registerSecret('tok-123456');
    const lines: string[] = [];
    redactingLogger((l) => lines.push(l))!('→ GET /token tok-123456');
    assert.deepEqual(lines, ['→ GET /token ***']);
    assert.equal(redactingLogger(undefined), undefined);
  });

  it('tells listeners about secrets, past and future (for CI masking)', () => {
    registerSecret('early-secret');
    const seen: string[] = [];
    const off = onSecret((s) => seen.push(s));
    registerSecret('later-secret');
    off();
    registerSecret('after-off-secret');
    assert.ok(seen.includes('early-secret'));
    assert.ok(seen.includes('later-secret'));
    assert.ok(!seen.includes('after-off-secret'));
  });
});
