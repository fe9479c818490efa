import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobOf, sha256Digest } from '../src/oci/blob.ts';
import { EMPTY_CONFIG, buildArtifact, fallbackTag, mergeFallbackIndex, referrerDescriptor } from '../src/oci/referrers.ts';
import { MEDIA_TYPES } from '../src/oci/types.ts';

const subject = { mediaType: MEDIA_TYPES.index, digest: `sha256:${'a'.repeat(64)}`, size: 123, platform: { os: 'linux', architecture: 'amd64' } };
const doc = blobOf(new TextEncoder().encode('{"spdxVersion":"SPDX-2.3"}'), { mediaType: 'application/spdx+json' });
const json = (b: Uint8Array): any => JSON.parse(Buffer.from(b).toString('utf8'));
const entry = (c: string) => ({ mediaType: MEDIA_TYPES.manifest, digest: `sha256:${c.repeat(64)}`, size: 10, artifactType: 'x' });

describe('artifact manifests', () => {
  it('have a subject (without platform), an artifactType, the empty config and the document as the layer', () => {
    const a = buildArtifact({ subject, artifactType: 'application/spdx+json', layer: doc, annotations: { k: 'v' } });
    const m = json(a.manifest.bytes);
    assert.deepEqual(m.subject, { mediaType: MEDIA_TYPES.index, digest: subject.digest, size: 123 });
    assert.equal(m.artifactType, 'application/spdx+json');
    assert.equal(m.config.digest, 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    assert.equal(m.config.artifactType, undefined);
    assert.deepEqual(m.layers, [{ mediaType: 'application/spdx+json', digest: doc.descriptor.digest, size: doc.descriptor.size }]);
    assert.deepEqual(a.blobs, [EMPTY_CONFIG, doc]);
    assert.equal(a.manifest.descriptor.digest, sha256Digest(a.manifest.bytes));
    assert.deepEqual(referrerDescriptor(a, { k: 'v' }), { mediaType: MEDIA_TYPES.manifest, digest: a.manifest.descriptor.digest, size: a.manifest.descriptor.size, artifactType: 'application/spdx+json', annotations: { k: 'v' } });
  });

  it('a bundle artifact carries the artifact type in its config too, as cosign 3 writes it', () => {
    const m = json(buildArtifact({ subject, artifactType: 'b', layer: doc, artifactTypeInConfig: true }).manifest.bytes);
    assert.equal(m.config.artifactType, 'b');
  });

  const tags: [string, string | RegExp][] = [
    [`sha256:${'0'.repeat(64)}`, `sha256-${'0'.repeat(64)}`],
    ['sha256:abc', /invalid digest/],
    [`sha512:${'0'.repeat(128)}`, /invalid digest/],
  ];
  for (const [digest, want] of tags) {
    it(`fallback tag of ${digest.slice(0, 12)}…`, () => {
      if (typeof want === 'string') assert.equal(fallbackTag(digest), want);
      else assert.throws(() => fallbackTag(digest), want);
    });
  }
});

describe('merging the fallback index', () => {
  const existing = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [entry('1'), { ...entry('2'), annotations: { by: 'cosign' } }], annotations: { keep: 'me' } }));
  const cases: [string, Uint8Array | undefined, Record<string, unknown>[], { changed: boolean; digests: string[] }][] = [
    ['no tag yet', undefined, [entry('3')], { changed: true, digests: ['3'] }],
    ['new entries are appended after the others', existing, [entry('3')], { changed: true, digests: ['1', '2', '3'] }],
    ['an entry already listed is not added again', existing, [entry('2')], { changed: false, digests: ['1', '2'] }],
    ['nothing to add', existing, [], { changed: false, digests: ['1', '2'] }],
    ['duplicates in the input count once', undefined, [entry('4'), entry('4')], { changed: true, digests: ['4'] }],
  ];
  for (const [name, before, add, want] of cases) {
    it(name, () => {
      const { index, changed } = mergeFallbackIndex(before, add);
      assert.equal(changed, want.changed);
      const m = json(index.bytes);
      assert.deepEqual(m.manifests.map((x: { digest: string }) => x.digest.slice(7, 8)), want.digests);
      if (before) assert.equal(m.annotations.keep, 'me');
      if (before && !changed) assert.deepEqual(index.bytes, before, 'an unchanged index keeps its bytes');
    });
  }
  it('the other tool\'s entries keep their fields', () => {
    const m = json(mergeFallbackIndex(existing, [entry('3')]).index.bytes);
    assert.deepEqual(m.manifests[1].annotations, { by: 'cosign' });
  });
  it('refuses a tag that holds no index', () => {
    assert.throws(() => mergeFallbackIndex(new TextEncoder().encode('{"schemaVersion":2,"layers":[]}'), [entry('3')]), /not an image index/);
    assert.throws(() => mergeFallbackIndex(new TextEncoder().encode('not json'), [entry('3')]), /not an image index/);
  });
});
