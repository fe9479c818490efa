import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { blobOf, canonicalJson, jsonBlob, sha256Digest } from '../src/oci/blob.ts';
import { parseDockerfile } from '../src/oci/dockerfile.ts';
import { buildIndex } from '../src/oci/index.ts';
import { formatPlatform, parsePlatform, platformMatches } from '../src/oci/platform.ts';
import { gunzip, gzip, readTar } from '../src/oci/tar.ts';
import { MEDIA_TYPES, type Descriptor } from '../src/oci/types.ts';
import { buildWindowsImage, windowsImageName } from '../src/oci/windows-image.ts';
import { WINDOWS_PAX, windowsLayerEntries, windowsLayerTar } from '../src/oci/windows-layer.ts';
import { WINDOWS_PLATFORMS, inTableOrder } from '../src/platforms.ts';
import { perArchTag } from '../src/registry/publish.ts';
import { type FetchedManifest, type BaseSource, isForeignLayer, osVersionMatches, readWindowsBases } from '../src/windows/base.ts';
import { makeImage } from './support/oci-fixture.ts';

const platform = WINDOWS_PLATFORMS[0]!;
const enc = (v: unknown) => new TextEncoder().encode(canonicalJson(v));
const FOREIGN = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: `sha256:${'f'.repeat(64)}`, size: 1000, urls: ['https://mcr.microsoft.com/x'] };

interface Spec {
  entries?: { os?: string; arch?: string; osVersion?: string | null }[];
  configOs?: string;
  diffIds?: number;
  foreignUrls?: boolean;
  fail?: string;
}

/** An in-memory BaseSource: an index of the entries, each a Docker manifest with a foreign and a plain layer. */
function source(spec: Spec = {}): { source: BaseSource; top: string } {
  const docs = new Map<string, FetchedManifest>();
  const blobs = new Map<string, Uint8Array>();
  const entries = spec.entries ?? [{ osVersion: '10.0.26100.1' }, { osVersion: '10.0.17763.5' }, { osVersion: '10.0.20348.9' }];
  const manifests = entries.map((e) => {
    const layer = blobOf(gzip(new Uint8Array([1, 2, 3])), { mediaType: MEDIA_TYPES.dockerLayerGzip });
    const config = jsonBlob({ os: spec.configOs ?? e.os ?? 'windows', architecture: e.arch ?? 'amd64', rootfs: { type: 'layers', diff_ids: Array.from({ length: spec.diffIds ?? 2 }, (_, i) => `sha256:${String(i).repeat(64)}`) }, history: [{ created_by: 'base' }], config: { Cmd: ['cmd.exe'] } }, { mediaType: MEDIA_TYPES.dockerConfig });
    blobs.set(config.descriptor.digest, config.bytes);
    const foreign = spec.foreignUrls === false ? { ...FOREIGN, urls: undefined } : FOREIGN;
    const bytes = enc({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifest, config: { mediaType: config.descriptor.mediaType, digest: config.descriptor.digest, size: config.descriptor.size }, layers: [foreign, { mediaType: layer.descriptor.mediaType, digest: layer.descriptor.digest, size: layer.descriptor.size }] });
    const digest = sha256Digest(bytes);
    docs.set(digest, { bytes, digest, mediaType: MEDIA_TYPES.dockerManifest });
    return { mediaType: MEDIA_TYPES.dockerManifest, digest, size: bytes.length, platform: { os: e.os ?? 'windows', architecture: e.arch ?? 'amd64', ...(e.osVersion === null ? {} : { 'os.version': e.osVersion }) } };
  });
  const index = enc({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifestList, manifests });
  docs.set('v1', { bytes: index, digest: sha256Digest(index), mediaType: MEDIA_TYPES.dockerManifestList });
  const src: BaseSource = {
    name: 'example.test/base:v1',
    location: { registry: 'example.test', repository: 'base' },
    manifest: async (ref) => {
      if (spec.fail) throw new Error(spec.fail);
      const d = docs.get(ref);
      if (!d) throw new Error(`no manifest ${ref}`);
      return d;
    },
    blob: async (d: Descriptor) => blobs.get(d.digest)!,
    opener: (d: Descriptor) => async () => blobs.get(d.digest) ?? new Uint8Array(0),
  };
  return { source: src, top: 'v1' };
}

describe('readWindowsBases', () => {
  it('reads every Windows version of the base index, in os.version order', async () => {
    const { source: s, top } = source();
    const bases = await readWindowsBases(s, top, platform);
    assert.deepEqual(bases.map((b) => b.osVersion), ['10.0.17763.5', '10.0.20348.9', '10.0.26100.1']);
    assert.deepEqual(bases[0]!.layers[0], FOREIGN);
  });

  const filters: [string[], string[]][] = [
    [['10.0.20348'], ['10.0.20348.9']],
    [['10.0.17763.5', '10.0.26100'], ['10.0.17763.5', '10.0.26100.1']],
    [['10.0'], ['10.0.17763.5', '10.0.20348.9', '10.0.26100.1']],
  ];
  for (const [filter, expected] of filters) {
    it(`--windows-os-version ${filter.join(',')} keeps ${expected.join(', ')}`, async () => {
      const { source: s, top } = source();
      assert.deepEqual((await readWindowsBases(s, top, platform, filter)).map((b) => b.osVersion), expected);
    });
  }

  const bad: [string, Spec, string[], RegExp][] = [
    ['a Linux index', { entries: [{ os: 'linux', osVersion: null }] }, [], /^example\.test\/base:v1 is not a Windows base image: its index lists linux\/amd64, no windows\/amd64$/],
    ['an arm64-only Windows index', { entries: [{ arch: 'arm64', osVersion: '10.0.1' }] }, [], /lists windows\/arm64, no windows\/amd64/],
    ['an entry without os.version', { entries: [{ osVersion: '10.0.1.1' }, { osVersion: null }] }, [], /windows\/amd64 entry sha256:[0-9a-f]{12} has no os\.version/],
    ['a config that is not Windows', { configOs: 'linux' }, [], /is not a Windows base image: sha256:[0-9a-f]{12} is linux\/amd64/],
    ['layers and diff_ids that disagree', { diffIds: 3 }, [], /lists 2 layers but its config 3 diff_ids/],
    ['a foreign layer without urls', { foreignUrls: false }, [], /foreign layer sha256:f{12} has no urls/],
    ['a filter matching nothing', {}, ['10.0.99999'], /^--windows-os-version 10\.0\.99999 matches none of example\.test\/base:v1's versions \(10\.0\.26100\.1, 10\.0\.17763\.5, 10\.0\.20348\.9\)$/],
    ['two images of one version', { entries: [{ osVersion: '10.0.1.1' }, { osVersion: '10.0.1.1', arch: 'amd64' }] }, [], /two windows\/amd64 images for os\.version 10\.0\.1\.1/],
    ['an unreachable registry', { fail: 'connect ECONNREFUSED 127.0.0.1:9' }, [], /^cannot read the Windows base example\.test\/base:v1: manifest: connect ECONNREFUSED/],
  ];
  for (const [name, spec, filter, error] of bad) {
    it(`refuses ${name} in one line`, async () => {
      const { source: s, top } = source(spec);
      await assert.rejects(readWindowsBases(s, top, platform, filter), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.match(e.message, error);
        assert.doesNotMatch(e.message, /\n/);
        return true;
      });
    });
  }

  it('os.version prefixes match on dot boundaries only', () => {
    assert.equal(osVersionMatches('10.0.2034', '10.0.20348.9'), false);
    assert.equal(osVersionMatches('10.0.20348', '10.0.20348.9'), true);
    assert.equal(isForeignLayer({ mediaType: MEDIA_TYPES.dockerLayerGzip }), false);
  });
});

describe('Windows layer', () => {
  const files = [
    { dest: '/pause.exe', content: new Uint8Array([0x4d, 0x5a, 1]), mode: 0o755, uid: 0, gid: 0 },
    { dest: '/Windows/System32/wincat.exe', content: new Uint8Array([0x4d, 0x5a, 2]), mode: 0o755, uid: 0, gid: 0 },
  ];

  it('holds Hives/ and Files/ at the top and every file under Files/', () => {
    const names = readTar(windowsLayerTar(files, 1_700_000_000)).map((e) => e.path);
    assert.deepEqual(names, ['Files/', 'Files/Windows/', 'Files/Windows/System32/', 'Files/Windows/System32/wincat.exe', 'Files/pause.exe', 'Hives/']);
  });

  it('gives files and directories their Windows attributes and a security descriptor', () => {
    const entries = windowsLayerEntries(files, 5);
    const pause = entries.find((e) => e.path === 'Files/pause.exe')!;
    assert.equal(pause.pax?.[WINDOWS_PAX.fileAttr], '32');
    assert.ok(pause.pax?.[WINDOWS_PAX.rawSd]?.startsWith('AQAEgB'));
    assert.equal(entries.find((e) => e.path === 'Files/Windows')!.pax?.[WINDOWS_PAX.fileAttr], '16');
    assert.equal(entries.find((e) => e.path === 'Hives')!.pax?.[WINDOWS_PAX.rawSd], undefined);
    const tar = Buffer.from(windowsLayerTar(files, 5)).toString('latin1');
    assert.match(tar, /\d+ MSWINDOWS\.fileattr=32\n/);
    assert.match(tar, /\d+ LIBARCHIVE\.creationtime=5\.0\n/);
  });

  it('is the same bytes for the same files and time', () => {
    assert.equal(sha256Digest(windowsLayerTar(files, 7)), sha256Digest(windowsLayerTar([...files].reverse(), 7)));
    assert.notEqual(sha256Digest(windowsLayerTar(files, 7)), sha256Digest(windowsLayerTar(files, 8)));
  });
});

describe('Windows image', () => {
  const text = 'ARG BASE\nFROM ${BASE}\nARG ARCH\nADD bin/pause-windows-${ARCH}.exe /pause.exe\nADD bin/wincat-windows-${ARCH}.exe /Windows/System32/wincat.exe\nUSER ContainerUser\nENTRYPOINT ["/pause.exe"]\n';
  const plan = parseDockerfile(text, { file: 'Dockerfile.windows', allowBase: true, buildArgs: { BASE: 'example.test/base:v1', ARCH: 'amd64' } });
  const files = new Map([
    ['bin/pause-windows-amd64.exe', { bytes: new Uint8Array([0x4d, 0x5a, 1]), mode: 0o755 }],
    ['bin/wincat-windows-amd64.exe', { bytes: new Uint8Array([0x4d, 0x5a, 2]), mode: 0o755 }],
  ]);

  it('the Windows Dockerfile names its base; without allowBase it is refused', () => {
    assert.equal(plan.base, 'example.test/base:v1');
    assert.throws(() => parseDockerfile(text, { file: 'D', buildArgs: { BASE: 'x' } }), /FROM x: only FROM scratch is supported/);
    assert.throws(() => parseDockerfile(text, { file: 'D', allowBase: true }), /FROM \$\{BASE\} names no image/);
    assert.equal(parseDockerfile('FROM scratch\n', { file: 'D', allowBase: true }).base, undefined);
  });

  it('keeps the base layers as they are, adds one Windows layer, and extends the base config', async () => {
    const { source: s, top } = source();
    const [base] = await readWindowsBases(s, top, platform);
    const image = buildWindowsImage({ platform, base: base!, plan, files, epoch: 1_700_000_000 }, gzip, s);
    const manifest = JSON.parse(Buffer.from(image.manifest.bytes).toString()) as { mediaType: string; layers: Record<string, unknown>[]; config: { mediaType: string } };
    assert.equal(manifest.mediaType, MEDIA_TYPES.dockerManifest);
    assert.equal(manifest.config.mediaType, MEDIA_TYPES.dockerConfig);
    assert.deepEqual(manifest.layers.slice(0, 2), base!.layers);
    assert.equal(manifest.layers.length, 3);
    assert.equal(manifest.layers[2]!.mediaType, MEDIA_TYPES.dockerLayerGzip);
    assert.deepEqual(image.manifest.descriptor.platform, { architecture: 'amd64', os: 'windows', 'os.version': '10.0.17763.5' });
    assert.equal(image.arch, windowsImageName(platform, '10.0.17763.5'));
    // The foreign layer is not among the blobs to carry.
    assert.deepEqual(image.baseBlobs!.map((b) => b.descriptor.digest), [base!.layers[1]!.digest]);
    const config = JSON.parse(Buffer.from(image.config.bytes).toString());
    assert.equal(config['os.version'], '10.0.17763.5');
    assert.equal(config.config.User, 'ContainerUser');
    assert.deepEqual(config.config.Entrypoint, ['/pause.exe']);
    assert.equal(config.config.Cmd, undefined, 'ENTRYPOINT resets the base CMD');
    assert.equal(config.rootfs.diff_ids.length, 3);
    assert.equal(config.rootfs.diff_ids[2], sha256Digest(gunzip(image.layers[0]!.bytes)));
    // One history entry per instruction after the base's; the first ADD holds the one layer.
    const ours = config.history.slice(1) as { created_by: string; empty_layer?: boolean }[];
    assert.equal(ours.length, plan.steps.length);
    assert.deepEqual(ours.filter((h) => !h.empty_layer).map((h) => h.created_by), [plan.steps.find((st) => st.layer)!.createdBy]);
    const again = buildWindowsImage({ platform, base: base!, plan, files, epoch: 1_700_000_000 }, gzip, s);
    assert.equal(again.manifest.descriptor.digest, image.manifest.descriptor.digest);
  });

  it('the index lists Windows entries after the Linux ones; one per os.version', async () => {
    const { source: s, top } = source();
    const windows = (await readWindowsBases(s, top, platform)).map((b) => buildWindowsImage({ platform, base: b, plan, files, epoch: 0 }, gzip));
    // Callers order the index (oci/ knows no arch table): Linux in table order, Windows after.
    const built = buildIndex(inTableOrder([...windows, makeImage('arm64'), makeImage('amd64')]), { version: '3.10', revision: 'r', source: 'https://x', epoch: 0 });
    const manifests = (JSON.parse(Buffer.from(built.index.bytes).toString()) as { manifests: { platform: Parameters<typeof formatPlatform>[0] }[] }).manifests;
    assert.deepEqual(manifests.map((m) => formatPlatform(m.platform)), ['linux/amd64', 'linux/arm64/v8', 'windows/amd64:10.0.17763.5', 'windows/amd64:10.0.20348.9', 'windows/amd64:10.0.26100.1']);
    assert.throws(() => buildIndex([windows[0]!, windows[0]!], { version: '3.10', revision: 'r', source: 'https://x', epoch: 0 }), /two images for platform windows\/amd64:10\.0\.17763\.5/);
  });
});

describe('Windows tags and platforms', () => {
  const tags: [string, string][] = [
    ['amd64', '3.10-linux-amd64'],
    ['windows-amd64-10.0.20348.9', '3.10-windows-amd64-10.0.20348.9'],
  ];
  for (const [arch, tag] of tags) it(`${arch} → ${tag}`, () => assert.equal(perArchTag('3.10', arch), tag));

  const matches: [string, Record<string, string>, boolean][] = [
    ['windows/amd64', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.9' }, true],
    ['windows/amd64:10.0.20348', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.9' }, true],
    ['windows/amd64:10.0.20348.9', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.9' }, true],
    ['windows/amd64:10.0.17763', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.9' }, false],
    ['windows/amd64:10.0.2034', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.9' }, false],
    ['windows/amd64:10.0.20348', { os: 'windows', architecture: 'amd64' }, false],
    ['linux/amd64', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.9' }, false],
  ];
  for (const [want, have, expected] of matches) {
    it(`--platform ${want} ${expected ? 'selects' : 'skips'} ${formatPlatform(have as never)}`, () => {
      assert.equal(platformMatches(parsePlatform(want), have as never), expected);
    });
  }

  it('an os.version must be numbers and dots', () => {
    assert.throws(() => parsePlatform('windows/amd64:ltsc2022'), /"ltsc2022" is not an os\.version/);
    assert.equal(formatPlatform(parsePlatform('Windows/AMD64:10.0.20348')), 'windows/amd64:10.0.20348');
  });
});
