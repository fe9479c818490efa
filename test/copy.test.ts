/** Reading images for a copy, from OCI layouts on disk: no registry needed. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { REF_NAME, blobPath, writeLayout } from '../src/oci/layout.ts';
import { parsePlatforms } from '../src/oci/platform.ts';
import { MEDIA_TYPES } from '../src/oci/types.ts';
import { layoutSource, resolveImage, rewriteIndex } from '../src/registry/sources.ts';
import { Spool } from '../src/registry/spool.ts';
import { makeImage, makeIndex } from './support/oci-fixture.ts';

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Writes blobs and an index.json naming `root` under `tag`: any layout, not only what writeLayout makes. */
async function rawLayout(dir: string, blobs: Uint8Array[], root: { mediaType: string; bytes: Uint8Array }, tag: string): Promise<void> {
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of [...blobs, root.bytes]) await writeFile(blobPath(dir, sha256(b)), b);
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: root.mediaType, digest: sha256(root.bytes), size: root.bytes.byteLength, annotations: { [REF_NAME]: tag } }] }));
}

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('resolveImage from an OCI layout', () => {
  let dir: string;
  const built = makeIndex();
  before(async () => {
    dir = await mkdtemp('/tmp/wt-mirror-copy-');
    await writeLayout(path.join(dir, 'five'), built, '3.10');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the index, each manifest and each blob once, bytes as stored', async () => {
    const image = await resolveImage(layoutSource(path.join(dir, 'five'), '3.10'));
    assert.equal(image.root.digest, built.index.descriptor.digest);
    assert.deepEqual(Buffer.from(image.root.bytes), Buffer.from(built.index.bytes));
    assert.equal(image.sourceDigest, image.root.digest);
    assert.equal(image.rewritten, false);
    assert.deepEqual(image.manifests.map((m) => m.digest), built.images.map((i) => i.manifest.descriptor.digest));
    assert.deepEqual(image.manifests.map((m) => m.platform), ['linux/amd64', 'linux/arm/v7', 'linux/arm64/v8', 'linux/ppc64le', 'linux/s390x']);
    assert.deepEqual(new Set(image.blobs.map((b) => b.digest)), new Set(built.images.flatMap((i) => [i.config, ...i.layers].map((b) => b.descriptor.digest))));
    assert.equal(image.blobs.length, 10);
    assert.equal(image.source.name, `oci:${path.join(dir, 'five')}:3.10`, 'a directory outside the working directory is shown in full');
  });

  it('a platform subset rewrites the index with only those entries, in the index\'s order', async () => {
    const image = await resolveImage(layoutSource(path.join(dir, 'five'), '3.10'), { platforms: parsePlatforms('linux/s390x,linux/arm64') });
    assert.equal(image.rewritten, true);
    assert.equal(image.sourceDigest, built.index.descriptor.digest);
    assert.notEqual(image.root.digest, image.sourceDigest);
    assert.equal(image.root.digest, sha256(image.root.bytes));
    const index = JSON.parse(Buffer.from(image.root.bytes).toString()) as { mediaType: string; schemaVersion: number; manifests: { digest: string; platform: { architecture: string } }[] };
    assert.equal(index.mediaType, MEDIA_TYPES.index);
    assert.equal(index.schemaVersion, 2);
    assert.deepEqual(index.manifests.map((m) => m.platform.architecture), ['arm64', 's390x']);
    assert.deepEqual(image.platforms, ['linux/arm64/v8', 'linux/s390x']);
    assert.equal(image.manifests.length, 2);
    assert.equal(image.blobs.length, 4);
  });

  it('selecting every platform keeps the index as it is', async () => {
    const image = await resolveImage(layoutSource(path.join(dir, 'five'), '3.10'), { platforms: parsePlatforms('linux/amd64,linux/arm,linux/arm64,linux/ppc64le,linux/s390x') });
    assert.equal(image.rewritten, false);
    assert.equal(image.root.digest, built.index.descriptor.digest);
  });

  it('an unknown platform is one line listing those there are', async () => {
    await assert.rejects(resolveImage(layoutSource(path.join(dir, 'five'), '3.10'), { platforms: parsePlatforms('linux/amd64,linux/riscv64') }), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.match(e.message, /^platform linux\/riscv64 is not in oci:.*five:3\.10$/);
      assert.equal(e.hint, 'available: linux/amd64, linux/arm/v7, linux/arm64/v8, linux/ppc64le, linux/s390x');
      return true;
    });
  });

  it('rewriteIndex keeps every other field and each kept entry exactly', () => {
    const body = { schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifestList, annotations: { a: 'b' }, manifests: [{ digest: 'x', extra: [1] }, { digest: 'y' }, { digest: 'z', platform: { os: 'linux' } }] };
    assert.deepEqual(JSON.parse(Buffer.from(rewriteIndex(body, [0, 2])).toString()), { ...body, manifests: [body.manifests[0], body.manifests[2]] });
  });

  it('a single Docker v2 manifest: copied as is; --platform reads its config to check it', async () => {
    const image = makeImage('arm64', 'single');
    const manifest = json({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifest, config: { ...image.config.descriptor, mediaType: 'application/vnd.docker.container.image.v1+json' }, layers: image.layers.map((l) => ({ ...l.descriptor, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' })) });
    const single = path.join(dir, 'single');
    await rawLayout(single, [image.config.bytes, ...image.layers.map((l) => l.bytes)], { mediaType: MEDIA_TYPES.dockerManifest, bytes: manifest }, 'v1');
    const plain = await resolveImage(layoutSource(single, 'v1'));
    assert.equal(plain.root.digest, sha256(manifest));
    assert.equal(plain.root.mediaType, MEDIA_TYPES.dockerManifest);
    assert.deepEqual(plain.manifests, []);
    assert.equal(plain.blobs.length, 2);

    const spool = new Spool({ source: 'test' });
    try {
      const arm = await resolveImage(layoutSource(single, 'v1'), { platforms: parsePlatforms('linux/arm64'), spool });
      assert.deepEqual(arm.platforms, ['linux/arm64/v8']);
      assert.equal(arm.rewritten, false);
      await assert.rejects(resolveImage(layoutSource(single, 'v1'), { platforms: parsePlatforms('linux/amd64'), spool }), /^PauseBuildError: platform linux\/amd64 is not in .*single:v1$/);
    } finally {
      await spool.dispose();
    }
  });

  it('leaves out foreign layers (Windows base layers referenced by URL)', async () => {
    const image = makeImage('amd64', 'windows');
    const foreign = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: `sha256:${'f'.repeat(64)}`, size: 123456, urls: ['https://mcr.microsoft.com/v2/x/blobs/sha256:ff'] };
    const manifest = json({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifest, config: image.config.descriptor, layers: [foreign, ...image.layers.map((l) => l.descriptor)] });
    const d = path.join(dir, 'foreign');
    await rawLayout(d, [image.config.bytes, ...image.layers.map((l) => l.bytes)], { mediaType: MEDIA_TYPES.dockerManifest, bytes: manifest }, 'win');
    const resolved = await resolveImage(layoutSource(d, 'win'));
    assert.deepEqual(resolved.foreign.map((f) => f.digest), [foreign.digest]);
    assert.deepEqual(resolved.blobs.map((b) => b.digest), [image.config.descriptor.digest, image.layers[0]!.descriptor.digest]);
  });

  it('refuses what it cannot copy with its digest, in one line', async () => {
    const d = path.join(dir, 'schema1');
    const v1 = json({ schemaVersion: 1, name: 'x', fsLayers: [] });
    await rawLayout(d, [], { mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws', bytes: v1 }, 'old');
    await assert.rejects(resolveImage(layoutSource(d, 'old')), (e: unknown) => e instanceof PauseBuildError && /is a Docker schema 1 manifest$/.test(e.message));
    await assert.rejects(resolveImage(layoutSource(path.join(dir, 'five'), 'nope')), (e: unknown) => e instanceof PauseBuildError && /^no tag "nope" in .*five$/.test(e.message) && e.hint === 'its tags: 3.10');
  });
});
