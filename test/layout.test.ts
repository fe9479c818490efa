import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError, formatError } from '../src/errors.ts';
import { parseDockerfile } from '../src/oci/dockerfile.ts';
import { buildImage } from '../src/oci/image.ts';
import { buildIndex } from '../src/oci/index.ts';
import { blobPath, checkLayoutDestination, checkLayoutTarget, layoutReference, layoutTags, readLayout, writeLayout } from '../src/oci/layout.ts';
import type { BuiltIndex } from '../src/oci/types.ts';
import { archOfPlatform, platformFor } from '../src/platforms.ts';

const archName = (p: Parameters<typeof archOfPlatform>[0]) => archOfPlatform(p) ?? 'unknown';

const DOCKERFILE = 'FROM scratch\nARG ARCH\nADD bin/pause-linux-${ARCH} /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n';

function built(arches: string[], revision = 'r1'): BuiltIndex {
  const images = arches.map((arch) => {
    const platform = platformFor(arch);
    const plan = parseDockerfile(DOCKERFILE, { file: 'Dockerfile', buildArgs: { ARCH: arch } });
    const files = new Map([[`bin/pause-linux-${arch}`, { bytes: new TextEncoder().encode(`pause ${arch} `.repeat(100)), mode: 0o755 }]]);
    return buildImage({ platform, plan, files, epoch: 1_700_000_000 });
  });
  return buildIndex(images, { version: '3.10', revision, source: 'https://example.com/src', epoch: 1_700_000_000 });
}

async function rejects(promise: Promise<unknown>, message: RegExp): Promise<PauseBuildError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof PauseBuildError, `expected a PauseBuildError, got ${String(e)}`);
    assert.match(e.message, message);
    assert.doesNotMatch(formatError(e), /\n/);
    return e;
  }
  assert.fail(`expected an error matching ${message}`);
}

const indexJson = async (dir: string) => JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));

describe('OCI layout', () => {
  let tmp: string;
  let n = 0;
  const fresh = () => path.join(tmp, `layout-${++n}`);
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'wt-oci-layout-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes oci-layout, every blob under its digest and index.json with the tag, and reads it back equal', async () => {
    const dir = fresh();
    const image = built(['amd64', 'arm', 'arm64']);
    const result = await writeLayout(dir, image, '3.10');
    assert.deepEqual(result, { dir, tag: '3.10', written: 10, reused: 0 });
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    assert.deepEqual(await indexJson(dir), {
      manifests: [
        { annotations: { 'org.opencontainers.image.ref.name': '3.10' }, digest: image.index.descriptor.digest, mediaType: 'application/vnd.oci.image.index.v1+json', size: image.index.bytes.length },
      ],
      mediaType: 'application/vnd.oci.image.index.v1+json',
      schemaVersion: 2,
    });
    const blobs = (await readdir(path.join(dir, 'blobs', 'sha256'))).sort();
    const expected = [image.index, ...image.images.flatMap((i) => [i.manifest, i.config, ...i.layers])].map((b) => b.descriptor.digest.slice(7)).sort();
    assert.deepEqual(blobs, expected, 'exactly the blobs, no temp files');
    assert.deepEqual(await readLayout(dir, '3.10', archName), image);
  });

  it('is idempotent: a second write reuses every blob and keeps one entry for the tag', async () => {
    const dir = fresh();
    await writeLayout(dir, built(['amd64']), '3.10');
    const before = await readFile(path.join(dir, 'index.json'));
    const again = await writeLayout(dir, built(['amd64']), '3.10');
    assert.deepEqual([again.written, again.reused], [0, 4]);
    assert.deepEqual(await readFile(path.join(dir, 'index.json')), before);
  });

  it('moves a tag to the new index and keeps other tags', async () => {
    const dir = fresh();
    const first = built(['amd64'], 'r1');
    const second = built(['amd64'], 'r2');
    await writeLayout(dir, first, 'a');
    await writeLayout(dir, first, 'b');
    await writeLayout(dir, second, 'a');
    assert.deepEqual(await layoutTags(dir), ['b', 'a']);
    assert.equal((await readLayout(dir, 'a')).index.descriptor.digest, second.index.descriptor.digest);
    assert.equal((await readLayout(dir, 'b')).index.descriptor.digest, first.index.descriptor.digest);
    const entries = (await indexJson(dir)).manifests as { digest: string }[];
    assert.deepEqual(entries.map((e) => e.digest), [first.index.descriptor.digest, second.index.descriptor.digest]);
  });

  it('keeps index.json entries and fields it does not know', async () => {
    const dir = fresh();
    await mkdir(dir);
    const foreign = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 1, annotations: { 'org.opencontainers.image.ref.name': 'other', x: 'y' } };
    await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [foreign], annotations: { keep: 'me' } }));
    await writeLayout(dir, built(['amd64']), '3.10');
    const index = await indexJson(dir);
    assert.deepEqual(index.annotations, { keep: 'me' });
    assert.deepEqual(index.manifests[0], foreign);
    assert.deepEqual(await layoutTags(dir), ['other', '3.10']);
  });

  it('detects a corrupt blob on read, and a new write repairs it', async () => {
    const dir = fresh();
    const image = built(['amd64', 'arm']);
    await writeLayout(dir, image, '3.10');
    const layer = image.images[1]!.layers[0]!.descriptor.digest;
    await writeFile(blobPath(dir, layer), 'not the layer');
    const e = await rejects(readLayout(dir, '3.10'), new RegExp(`^blob ${layer} in ${dir} is corrupt \\(13 bytes, expected \\d+ bytes\\)$`));
    assert.match(e.hint ?? '', /delete .* and build again/);
    const repaired = await writeLayout(dir, image, '3.10');
    assert.equal(repaired.written, 1);
    assert.deepEqual(await readLayout(dir, '3.10', archName), image);
  });

  it('detects a corrupt manifest and config as well as layers', async () => {
    for (const pick of [(b: BuiltIndex) => b.images[0]!.manifest, (b: BuiltIndex) => b.images[0]!.config, (b: BuiltIndex) => b.index]) {
      const dir = fresh();
      const image = built(['amd64']);
      await writeLayout(dir, image, '3.10');
      const blob = pick(image);
      const bytes = Buffer.from(blob.bytes);
      bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 1; // same size, different content
      await writeFile(blobPath(dir, blob.descriptor.digest), bytes);
      await rejects(readLayout(dir, '3.10'), new RegExp(`^blob ${blob.descriptor.digest} in .* is corrupt`));
    }
  });

  it('names a missing blob', async () => {
    const dir = fresh();
    const image = built(['amd64']);
    await writeLayout(dir, image, '3.10');
    const config = image.images[0]!.config.descriptor.digest;
    await rm(blobPath(dir, config));
    await rejects(readLayout(dir, '3.10'), new RegExp(`^blob ${config} is missing from ${dir}$`));
  });

  it('names a missing tag and lists the tags there', async () => {
    const dir = fresh();
    await writeLayout(dir, built(['amd64']), '3.10');
    const e = await rejects(readLayout(dir, '3.9'), /^no tag "3\.9" in .*layout-\d+$/);
    assert.equal(e.hint, 'its tags: 3.10');
  });

  it('takes a directory another writer holds the lock of as a layout in the making, and only then', async () => {
    // What a look catches while another run writes the marker under its lock.
    const dir = fresh();
    await mkdir(dir);
    await writeFile(path.join(dir, '.oci-layout.0123456789ab.tmp'), '{"imageLayoutVersion":"1.0.0"}');
    await rejects(checkLayoutDestination(dir), /is not empty and is not an OCI image layout$/);
    await writeFile(path.join(dir, '.pause-build.lock'), '1\n');
    await checkLayoutDestination(dir);
  });

  it('refuses what is not a layout', async () => {
    const missing = path.join(tmp, 'nothing-here');
    await rejects(readLayout(missing, '3.10'), /is not an OCI image layout \(no oci-layout file\)$/);
    const plain = fresh();
    await mkdir(plain);
    await writeFile(path.join(plain, 'notes.txt'), 'x');
    await rejects(readLayout(plain, '3.10'), /is not an OCI image layout/);
    await rejects(writeLayout(plain, built(['amd64']), '3.10'), /is not empty and is not an OCI image layout$/);
    const garbage = fresh();
    await mkdir(garbage);
    await writeFile(path.join(garbage, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(path.join(garbage, 'index.json'), '{not json');
    await rejects(readLayout(garbage, '3.10'), /^index\.json in .* is not valid JSON$/);
    await rejects(writeLayout(garbage, built(['amd64']), '3.10'), /^index\.json in .* is not valid JSON$/);
    // Refused before anything is written: no blobs scattered into the broken layout.
    assert.deepEqual((await readdir(garbage)).sort(), ['index.json', 'oci-layout']);
    const notIndex = fresh();
    await mkdir(notIndex);
    await writeFile(path.join(notIndex, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(path.join(notIndex, 'index.json'), '{"manifests": {}}');
    await rejects(checkLayoutTarget(notIndex, '3.10'), /^index\.json in .* is not an image index$/);
    await rejects(writeLayout(notIndex, built(['amd64']), '3.10'), /^index\.json in .* is not an image index$/);
    assert.deepEqual((await readdir(notIndex)).sort(), ['index.json', 'oci-layout']);
    const file = path.join(tmp, `a-file-${Math.random()}`);
    await writeFile(file, 'x');
    await rejects(checkLayoutTarget(file, '3.10'), /is a file, not a directory$/);
    await checkLayoutTarget(path.join(tmp, 'not-there-yet'), '3.10');
  });

  it('refuses a tag that points at a single manifest, and invalid tags', async () => {
    const dir = fresh();
    const image = built(['amd64']);
    await writeLayout(dir, image, '3.10');
    const index = await indexJson(dir);
    index.manifests.push({ ...image.images[0]!.manifest.descriptor, platform: undefined, annotations: { 'org.opencontainers.image.ref.name': 'single' } });
    await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    await rejects(readLayout(dir, 'single'), /^tag "single" in .* is application\/vnd\.oci\.image\.manifest\.v1\+json, not a multi-arch image index$/);
    await rejects(writeLayout(dir, image, 'bad:tag'), /^invalid tag "bad:tag"$/);
    await rejects(writeLayout(dir, image, '-x'), /^invalid tag "-x"$/);
  });

  it('never builds a blob path from something that is not a sha256 digest', () => {
    assert.throws(() => blobPath('/x', 'sha256:../../etc/passwd'), /invalid digest/);
    assert.throws(() => blobPath('/x', `sha512:${'a'.repeat(128)}`), /invalid digest/);
    assert.equal(blobPath('/x', `sha256:${'a'.repeat(64)}`), `/x/blobs/sha256/${'a'.repeat(64)}`);
  });

  it('prints references as skopeo takes them', () => {
    assert.equal(layoutReference('/work/p/_output/oci', '3.10', '/work/p'), 'oci:_output/oci:3.10');
    assert.equal(layoutReference('/elsewhere/oci', '3.10', '/work/p'), 'oci:/elsewhere/oci:3.10');
    assert.equal(layoutReference('/work/p', 'v1', '/work/p'), 'oci:.:v1');
  });
});
