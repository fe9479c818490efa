import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Digest } from '../src/oci/blob.ts';
import { MANIFEST_LIMIT, isDigest, isTag, parseManifest } from '../src/oci/manifest.ts';

const D = (n: string) => `sha256:${n.repeat(64)}`;
const doc = (value: unknown, mediaType = '') => {
  const bytes = new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
  return { digest: sha256Digest(bytes), mediaType, size: bytes.byteLength, bytes };
};

describe('manifest model', () => {
  const grammar: [string, boolean, boolean][] = [
    [D('a'), true, false],
    [`sha256:${'A'.repeat(64)}`, false, false],
    ['sha256:../../etc/passwd', false, false],
    ['3.10', false, true],
    ['.hidden', false, false],
    ['x'.repeat(129), false, false],
    ['latest', false, true],
  ];
  for (const [text, digest, tag] of grammar) {
    it(`grammar: ${text.slice(0, 30)} digest=${digest} tag=${tag}`, () => {
      assert.equal(isDigest(text), digest);
      assert.equal(isTag(text), tag);
    });
  }

  const good: [string, unknown, string, number][] = [
    ['OCI index', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('a'), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }] }, 'index', 1],
    ['OCI image', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'x', digest: D('b'), size: 2 }, layers: [{ mediaType: 'y', digest: D('c'), size: 3 }] }, 'image', 1],
    ['index without mediaType', { schemaVersion: 2, manifests: [] }, 'index', 0],
  ];
  for (const [name, body, kind, n] of good) {
    it(`parses ${name}`, () => {
      const m = parseManifest(doc(body), name);
      assert.equal(m.kind, kind);
      assert.equal(m.kind === 'index' ? m.manifests.length : m.layers.length, n);
    });
  }

  it('keeps the OCI 1.1 subject and artifactType', () => {
    const m = parseManifest(doc({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/spdx+json', subject: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: D('d'), size: 9 }, config: { mediaType: 'x', digest: D('b'), size: 2 }, layers: [] }), 'sbom');
    assert.equal(m.subject?.digest, D('d'));
    assert.equal(m.artifactType, 'application/spdx+json');
  });

  const bad: [string, unknown, RegExp][] = [
    ['invalid JSON', '{"schemaVersion":', /is not JSON$/],
    ['traversal-shaped digest', { manifests: [{ mediaType: 'x', digest: 'sha256:../../../etc/passwd', size: 1 }] }, /entry 0 has an invalid descriptor$/],
    ['negative size', { config: { mediaType: 'x', digest: D('b'), size: -1 }, layers: [] }, /config has an invalid descriptor$/],
    ['schema 1', { schemaVersion: 1, mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, /schema 1/],
    ['neither', { hello: 1 }, /neither an image index nor an image manifest/],
    ['oversized', `{"a":"${'x'.repeat(MANIFEST_LIMIT)}"}`, /above the 4 MiB limit for a manifest$/],
  ];
  for (const [name, body, error] of bad) it(`refuses ${name}`, () => assert.throws(() => parseManifest(doc(body), 'm'), error));
});
