import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keyHint, loadSigningKey, loadVerifyKey, type SigningKey, type VerifyKey } from '../src/attest/keys.ts';
import { signDigest, signStatement } from '../src/attest/sign.ts';
import { bundleSigns, simpleSigningSigns } from '../src/attest/verify.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;
let dir: string;
let key: SigningKey;
let pub: VerifyKey;
let other: VerifyKey;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'wt-sign-'));
  const pair = (name: string, opts: Parameters<typeof generateKeyPairSync>[1] & object, kind: 'ec' | 'rsa' | 'ed25519' = 'ec') => {
    const { privateKey, publicKey } = generateKeyPairSync(kind as 'ec', opts as { namedCurve: string });
    return Promise.all([
      writeFile(path.join(dir, `${name}.key`), privateKey.export({ type: 'pkcs8', format: 'pem' })),
      writeFile(path.join(dir, `${name}.pub`), publicKey.export({ type: 'spki', format: 'pem' })),
    ]);
  };
  await pair('p256', { namedCurve: 'P-256' });
  await pair('other', { namedCurve: 'P-256' });
  await pair('p384', { namedCurve: 'P-384' });
  await pair('ed', {}, 'ed25519');
  key = await loadSigningKey(path.join(dir, 'p256.key'), undefined);
  pub = await loadVerifyKey(path.join(dir, 'p256.pub'));
  other = await loadVerifyKey(path.join(dir, 'other.pub'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('keys', () => {
  it('the hint is the sha256 of the public key, as cosign writes it', () => {
    assert.equal(key.hint, keyHint(pub.publicKey));
    assert.equal(Buffer.from(key.hint, 'base64').length, 32);
  });
  const refused: [string, RegExp][] = [
    ['p384.key', /is an EC secp384r1 key; only ECDSA P-256 is supported/],
    ['ed.key', /is an ED25519 key; only ECDSA P-256 is supported/],
    ['p256.pub', /is a PEM "PUBLIC KEY", not a private key/],
    ['missing.key', /cannot read signing key .*missing\.key: no such file/],
  ];
  for (const [file, error] of refused) {
    it(`refuses ${file} as a signing key`, async () => {
      await assert.rejects(loadSigningKey(path.join(dir, file), undefined), error);
    });
  }
  it('refuses a private key as a verify key', async () => {
    await assert.rejects(loadVerifyKey(path.join(dir, 'p256.key')), /is not a PEM public key/);
  });
});

describe('bundles', () => {
  it('a signed digest verifies with its key only', async () => {
    const b = await signDigest(key, DIGEST);
    assert.equal(await bundleSigns(b.bytes, DIGEST, pub), true);
    assert.equal(await bundleSigns(b.bytes, DIGEST, other), false);
    assert.equal(await bundleSigns(b.bytes, `sha256:${'b'.repeat(64)}`, pub), false, 'another digest');
    const bundle = JSON.parse(Buffer.from(b.bytes).toString('utf8'));
    assert.equal(bundle.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    assert.equal(bundle.verificationMaterial.publicKey.hint, key.hint);
    assert.equal(bundle.dsseEnvelope.signatures[0].keyid, undefined, 'no keyid: cosign would skip the signature');
  });
  it('is deterministic: the same statement gives the same bytes', async () => {
    assert.deepEqual((await signDigest(key, DIGEST)).bytes, (await signDigest(key, DIGEST)).bytes);
  });
  it('a tampered payload or signature does not verify', async () => {
    const b = JSON.parse(Buffer.from((await signStatement(key, { _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: 'a'.repeat(64) } }], predicateType: 'x', predicate: {} })).bytes).toString('utf8'));
    const payload = JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'));
    payload.predicate = { changed: true };
    const tampered = { ...b, dsseEnvelope: { ...b.dsseEnvelope, payload: Buffer.from(JSON.stringify(payload)).toString('base64') } };
    assert.equal(await bundleSigns(new TextEncoder().encode(JSON.stringify(b)), DIGEST, pub), true);
    assert.equal(await bundleSigns(new TextEncoder().encode(JSON.stringify(tampered)), DIGEST, pub), false);
    assert.equal(await bundleSigns(new TextEncoder().encode('not json'), DIGEST, pub), false);
  });
});

describe('legacy simple signing', () => {
  const payload = (digest: string) => new TextEncoder().encode(JSON.stringify({ critical: { identity: { 'docker-reference': 'r/p' }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null }));
  const cases: [string, string, boolean, boolean][] = [
    ['the digest, the key', DIGEST, true, true],
    ['another digest', `sha256:${'c'.repeat(64)}`, true, false],
    ['another key', DIGEST, false, false],
  ];
  for (const [name, digest, sameKey, valid] of cases) {
    it(`${name}: ${valid ? 'valid' : 'refused'}`, () => {
      const p = payload(digest);
      const sig = sign('sha256', p, key.privateKey).toString('base64');
      assert.equal(simpleSigningSigns(p, sig, DIGEST, sameKey ? pub : other), valid);
    });
  }
});
