import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { canonicalJson } from '../src/oci/blob.ts';
import { parseDockerfile } from '../src/oci/dockerfile.ts';
import { type ContextFile, buildImage, diffIdsOf, fileMode, rfc3339 } from '../src/oci/image.ts';
import { buildIndex } from '../src/oci/index.ts';
import { gunzip, readTar } from '../src/oci/tar.ts';
import type { BuiltImage, BuiltIndex } from '../src/oci/types.ts';
import { DEFAULT_ARCHES, type Platform, inTableOrder, platformFor } from '../src/platforms.ts';
import { REPO_ROOT } from './support/cli.ts';

/** Fixed inputs for the golden digest: change any of them and GOLDEN_INDEX must change. */
const DOCKERFILE = 'FROM scratch\nARG ARCH\nADD bin/pause-linux-${ARCH} /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n';
const EPOCH = 1_700_000_000; // 2023-11-14T22:13:20Z
const INFO = { version: '3.10', revision: 'v3.10-0-gdeadbee', source: 'https://github.com/kubernetes/kubernetes', epoch: EPOCH };
const GOLDEN_INDEX = 'sha256:f37f6364b3e93aca145243d8b6e63a8d923b67d9a560d9ab6a12413498289cec';

function fakeBinary(arch: string): ContextFile {
  return { bytes: new TextEncoder().encode(`\x7fELF fake pause for ${arch}\n`.repeat(200)), mode: 0o755 };
}

function imageFor(platform: Platform, opts: { epoch?: number; file?: ContextFile; dockerfile?: string } = {}): BuiltImage {
  const plan = parseDockerfile(opts.dockerfile ?? DOCKERFILE, { file: 'Dockerfile', buildArgs: { ARCH: platform.arch } });
  const files = new Map([[`bin/pause-linux-${platform.arch}`, opts.file ?? fakeBinary(platform.arch)]]);
  return buildImage({ platform, plan, files, epoch: opts.epoch ?? EPOCH });
}

function golden(): BuiltIndex {
  return buildIndex(DEFAULT_ARCHES.map((a) => imageFor(platformFor(a))), INFO);
}

const json = (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, any>;
const sha = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('golden index', () => {
  it('has a pinned digest for fixed binaries, epoch, version and revision', () => {
    assert.equal(golden().index.descriptor.digest, GOLDEN_INDEX);
  });

  it('is what the top-level Dockerfile gives too (it plans the same steps)', async () => {
    const text = await readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
    for (const arch of DEFAULT_ARCHES) {
      const args = { file: 'Dockerfile', buildArgs: { ARCH: arch } };
      const withoutLines = (plan: ReturnType<typeof parseDockerfile>) => ({ ...plan, steps: plan.steps.map(({ line: _, ...step }) => step) });
      assert.deepEqual(withoutLines(parseDockerfile(text, args)), withoutLines(parseDockerfile(DOCKERFILE, args)));
    }
  });
});

describe('image config', () => {
  const cases: [string, Record<string, string>][] = [
    ['amd64', { architecture: 'amd64', os: 'linux' }],
    ['arm', { architecture: 'arm', os: 'linux', variant: 'v7' }],
    ['arm64', { architecture: 'arm64', os: 'linux', variant: 'v8' }],
    ['ppc64le', { architecture: 'ppc64le', os: 'linux' }],
    ['s390x', { architecture: 's390x', os: 'linux' }],
  ];
  for (const [arch, platform] of cases) {
    it(`${arch}: platform ${Object.values(platform).join('/')} in config and manifest descriptor`, () => {
      const image = imageFor(platformFor(arch));
      const config = json(image.config.bytes);
      assert.deepEqual({ architecture: config.architecture, os: config.os, variant: config.variant }, { variant: undefined, ...platform });
      assert.deepEqual(image.manifest.descriptor.platform, platform);
      assert.equal(image.arch, arch);
    });
  }

  it('holds created, the Dockerfile settings, diff_ids of the layer and one history entry per instruction', () => {
    const image = imageFor(platformFor('arm'));
    const config = json(image.config.bytes);
    const tar = gunzip(image.layers[0]!.bytes);
    assert.equal(config.created, '2023-11-14T22:13:20Z');
    assert.deepEqual(config.config, { Entrypoint: ['/pause'], User: '65535:65535' });
    assert.deepEqual(config.rootfs, { diff_ids: [sha(tar)], type: 'layers' });
    assert.deepEqual(diffIdsOf(image), [sha(tar)]);
    assert.deepEqual(config.history, [
      { created: '2023-11-14T22:13:20Z', created_by: 'ARG ARCH', empty_layer: true },
      { created: '2023-11-14T22:13:20Z', created_by: 'ADD bin/pause-linux-arm /pause' },
      { created: '2023-11-14T22:13:20Z', created_by: 'USER 65535:65535', empty_layer: true },
      { created: '2023-11-14T22:13:20Z', created_by: 'ENTRYPOINT ["/pause"]', empty_layer: true },
    ]);
  });

  it('puts /pause in the layer with mode 0755, root owner and the epoch as mtime', () => {
    const image = imageFor(platformFor('amd64'));
    const [entry, ...rest] = readTar(gunzip(image.layers[0]!.bytes));
    assert.equal(rest.length, 0);
    assert.deepEqual([entry!.path, entry!.mode.toString(8), entry!.uid, entry!.gid, entry!.mtime], ['pause', '100755', 0, 0, EPOCH]);
    assert.deepEqual(Buffer.from(entry!.content), Buffer.from(fakeBinary('amd64').bytes));
  });

  it('keeps the executable bit as 0755, makes other files 0644, and lets --chmod decide', () => {
    assert.equal(fileMode(undefined, 0o700), 0o755);
    assert.equal(fileMode(undefined, 0o744), 0o755);
    assert.equal(fileMode(undefined, 0o600), 0o644);
    assert.equal(fileMode(0o500, 0o644), 0o500);
    const plain = imageFor(platformFor('amd64'), { file: { ...fakeBinary('amd64'), mode: 0o640 } });
    assert.equal(readTar(gunzip(plain.layers[0]!.bytes))[0]!.mode, 0o100644);
  });

  it('has a manifest naming the config and the gzip layer by digest and size', () => {
    const image = imageFor(platformFor('s390x'));
    const manifest = json(image.manifest.bytes);
    assert.deepEqual(manifest, {
      config: { digest: sha(image.config.bytes), mediaType: 'application/vnd.oci.image.config.v1+json', size: image.config.bytes.length },
      layers: [{ digest: sha(image.layers[0]!.bytes), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: image.layers[0]!.bytes.length }],
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      schemaVersion: 2,
    });
    assert.equal(image.manifest.descriptor.digest, sha(image.manifest.bytes));
    assert.equal(image.manifest.descriptor.size, image.manifest.bytes.length);
  });

  it('writes canonical JSON: sorted keys, no whitespace', () => {
    const image = imageFor(platformFor('arm64'));
    for (const blob of [image.config, image.manifest, golden().index]) {
      const text = Buffer.from(blob.bytes).toString('utf8');
      assert.equal(text, canonicalJson(JSON.parse(text)));
      assert.doesNotMatch(text, /\n|": |, "/);
    }
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 0 }], c: undefined } }), '{"a":{"d":[2,{"y":0,"z":1}]},"b":1}');
  });

  it('is deterministic, and the epoch and the binary are in the digest', () => {
    const arm = platformFor('arm');
    assert.equal(imageFor(arm).manifest.descriptor.digest, imageFor(arm).manifest.descriptor.digest);
    assert.notEqual(imageFor(arm, { epoch: EPOCH + 1 }).manifest.descriptor.digest, imageFor(arm).manifest.descriptor.digest);
    assert.notEqual(imageFor(arm, { file: fakeBinary('other') }).manifest.descriptor.digest, imageFor(arm).manifest.descriptor.digest);
  });

  it('says which source was not read', () => {
    const platform = platformFor('amd64');
    const plan = parseDockerfile(DOCKERFILE, { file: 'Dockerfile', buildArgs: { ARCH: 'amd64' } });
    assert.throws(() => buildImage({ platform, plan, files: new Map(), epoch: EPOCH }), /^PauseBuildError: Dockerfile:3: bin\/pause-linux-amd64 was not read/);
  });
});

describe('index', () => {
  it('lists manifests in arch-table order whatever the input order, with full platforms', () => {
    const shuffled = ['s390x', 'arm', 'amd64', 'ppc64le', 'arm64'].map((a) => imageFor(platformFor(a)));
    const built = buildIndex(inTableOrder(shuffled), INFO);
    assert.equal(built.index.descriptor.digest, GOLDEN_INDEX);
    const index = json(built.index.bytes);
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(
      index.manifests.map((m: any) => m.platform),
      [
        { architecture: 'amd64', os: 'linux' },
        { architecture: 'arm', os: 'linux', variant: 'v7' },
        { architecture: 'arm64', os: 'linux', variant: 'v8' },
        { architecture: 'ppc64le', os: 'linux' },
        { architecture: 's390x', os: 'linux' },
      ],
    );
    assert.deepEqual(
      index.manifests.map((m: any) => [m.digest, m.size, m.mediaType]),
      built.images.map((i) => [i.manifest.descriptor.digest, i.manifest.bytes.length, 'application/vnd.oci.image.manifest.v1+json']),
    );
    assert.deepEqual(built.images.map((i) => i.arch), ['amd64', 'arm', 'arm64', 'ppc64le', 's390x']);
    assert.equal(index.manifests[0]!.annotations, undefined, 'ref.name belongs to the layout index.json, not here');
  });

  it('carries version, revision, source and created annotations', () => {
    assert.deepEqual(json(golden().index.bytes).annotations, {
      'org.opencontainers.image.created': '2023-11-14T22:13:20Z',
      'org.opencontainers.image.revision': 'v3.10-0-gdeadbee',
      'org.opencontainers.image.source': 'https://github.com/kubernetes/kubernetes',
      'org.opencontainers.image.version': '3.10',
    });
    const other = buildIndex([imageFor(platformFor('amd64'))], { ...INFO, revision: 'abc' });
    assert.notEqual(other.index.descriptor.digest, buildIndex([imageFor(platformFor('amd64'))], INFO).index.descriptor.digest);
  });

  it('refuses no images and two images of one platform', () => {
    assert.throws(() => buildIndex([], INFO), /at least one image/);
    const amd64 = imageFor(platformFor('amd64'));
    assert.throws(() => buildIndex([amd64, amd64], INFO), /two images for platform linux\/amd64$/);
  });
});

describe('rfc3339', () => {
  const cases: [number, string][] = [
    [0, '1970-01-01T00:00:00Z'],
    [EPOCH, '2023-11-14T22:13:20Z'],
    [253402300799, '9999-12-31T23:59:59Z'],
  ];
  for (const [epoch, text] of cases) it(`${epoch} → ${text}`, () => assert.equal(rfc3339(epoch), text));
  it('refuses fractions and negatives', () => {
    assert.throws(() => rfc3339(1.5), /invalid timestamp/);
    assert.throws(() => rfc3339(-1), /invalid timestamp/);
  });
});
