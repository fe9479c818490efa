import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { HttpTransport } from '../src/registry/http.ts';

describe('HttpTransport TLS trust', () => {
  it('--ca-file certificates are trusted beside the system roots, not instead of them', () => {
    const extra = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const agent = (new HttpTransport([extra]) as unknown as { tls: { options: { ca?: string[] } } }).tls;
    const ca = agent.options.ca ?? [];
    assert.ok(ca.includes(extra));
    assert.equal(ca.length, tls.rootCertificates.length + 1);
    const plain = (new HttpTransport() as unknown as { tls: { options: { ca?: string[] } } }).tls;
    assert.equal(plain.options.ca, undefined, 'without --ca-file Node keeps its own roots');
  });
});
