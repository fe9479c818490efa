/**
 * Windows images on a synthetic Windows base in a real registry, published with the Linux
 * ones into one index and read back by crane and skopeo selecting by os.version.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { gunzip, readTar } from '../../src/oci/tar.ts';
import { assertOneLineError } from '../support/assert.ts';
import { runCli } from '../support/cli.ts';
import { type TestRegistry, skopeo, startRegistry } from '../support/registry.ts';
import { unstableTool } from '../support/tools.ts';
import { type SyntheticBase, WINDOWS_VERSIONS, pushSyntheticBase } from '../support/windows-base.ts';

let dir: string;
let registry: TestRegistry;
let other: TestRegistry;
let base: SyntheticBase;
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function publishArgs(repo: string, extra: string[] = []): string[] {
  return [
    'publish', '--version', '3.10', '--revision', 'win', '--engine', 'host', '--no-cache',
    '--bin-dir', path.join(dir, 'bin'), '--output', path.join(dir, `oci-${repo.replace(/\W/g, '-')}`),
    '--registry', `${registry.host}/${repo}`, '--insecure-registry', registry.host, ...extra,
  ];
}

interface Published {
  digest: string;
  images: { arch: string; platform: string; digest: string }[];
}

let published: Published;
let linuxOnly: Published;
let index: { manifests: { digest: string; mediaType: string; platform: Record<string, string> }[] };

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'windows-images-'));
  registry = await startRegistry({ foreignUrls: '^https://mcr\\.microsoft\\.com/' });
  other = await startRegistry({ foreignUrls: '^https://mcr\\.microsoft\\.com/' });
  base = await pushSyntheticBase(registry.host, 'windows/pause-base', 'v1');
});

after(async () => {
  await registry?.stop();
  await other?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('Windows images in the pause index', { timeout: 600_000 }, () => {
  it('publish --arch amd64,arm64,windows puts one Windows entry per os.version after the Linux ones', async () => {
    const r = await runCli(publishArgs('win/pause', ['--arch', 'amd64,arm64,windows', '--windows-base', base.reference, '--per-arch-tags', '--json']), { env: { PAUSE_BUILD_WINEPREFIX: path.join(dir, 'wine') } });
    assert.equal(r.exitCode, 0, r.stderr);
    published = JSON.parse(r.stdout);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/win/pause:3.10`]);
    assert.equal(raw.exitCode, 0, raw.stderr);
    assert.equal(sha256(raw.stdout), published.digest);
    index = JSON.parse(raw.stdout.toString());
    assert.deepEqual(
      index.manifests.map((m) => [m.platform.os, m.platform.architecture, m.platform['os.version'] ?? '']),
      [['linux', 'amd64', ''], ['linux', 'arm64', ''], ...WINDOWS_VERSIONS.map((v) => ['windows', 'amd64', v])],
    );
    process.stderr.write(`# index ${published.digest}\n${index.manifests.map((m) => `#   ${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}${m.platform['os.version'] ? ` os.version=${m.platform['os.version']}` : ''} ${m.digest}`).join('\n')}\n`);
  });

  it('each Windows manifest is the base manifest plus one layer, its foreign layer with urls as in the base', async () => {
    for (const [i, v] of WINDOWS_VERSIONS.entries()) {
      const entry = index.manifests[2 + i]!;
      const m = JSON.parse((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/win/pause@${entry.digest}`])).stdout.toString());
      const baseManifest = JSON.parse((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/windows/pause-base@${base.images[i]!.digest}`])).stdout.toString());
      assert.equal(m.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
      assert.deepEqual(m.layers.slice(0, -1), baseManifest.layers);
      assert.equal(m.layers.length, baseManifest.layers.length + 1);
      assert.ok(m.layers[0].urls[0].startsWith('https://mcr.microsoft.com/'));
      const config = JSON.parse((await skopeo(['inspect', '--config', '--raw', '--tls-verify=false', '--override-os', 'windows', `docker://${registry.host}/win/pause@${entry.digest}`])).stdout.toString());
      assert.equal(config.os, 'windows');
      assert.equal(config.architecture, 'amd64');
      assert.equal(config['os.version'], v);
      assert.equal(config.config.User, 'ContainerUser');
      assert.deepEqual(config.config.Entrypoint, ['/pause.exe']);
      assert.equal(config.config.Cmd, undefined);
      assert.equal(config.rootfs.diff_ids.length, 3);
      assert.deepEqual(config.history.map((h: { created_by: string }) => h.created_by).slice(0, 2), ['Apply image 10.0', 'Install update']);
    }
  });

  it('crane selects each Windows image by --platform windows/amd64:<os.version>', async () => {
    const crane = unstableTool('crane');
    for (const [i, v] of WINDOWS_VERSIONS.entries()) {
      const r = await execa(crane, ['digest', '--insecure', '--platform', `windows/amd64:${v}`, `${registry.host}/win/pause:3.10`], { reject: false });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.trim(), index.manifests[2 + i]!.digest);
    }
  });

  it('skopeo --override-os windows reads a Windows entry; our layer holds Files/pause.exe byte-identical to bin/', async () => {
    const r = await skopeo(['inspect', '--tls-verify=false', '--override-os', 'windows', '--override-arch', 'amd64', `docker://${registry.host}/win/pause:3.10`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const inspected = JSON.parse(r.stdout.toString()) as { Os: string; Architecture: string; Layers: string[] };
    assert.equal(inspected.Os, 'windows');
    assert.equal(inspected.Architecture, 'amd64');
    const layersOf = async (digest: string) => {
      const res = await fetch(`${registry.url}/v2/win/pause/manifests/${digest}`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
      return ((await res.json()) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
    };
    const chosen = [];
    for (const m of index.manifests.slice(2)) if (JSON.stringify(await layersOf(m.digest)) === JSON.stringify(inspected.Layers)) chosen.push(m);
    assert.equal(chosen.length, 1, 'skopeo read one of the Windows entries');
    // Our layer is the last; the foreign one cannot be fetched from here, by design.
    const blob = await fetch(`${registry.url}/v2/win/pause/blobs/${inspected.Layers.at(-1)}`);
    assert.equal(blob.status, 200);
    const bytes = new Uint8Array(await blob.arrayBuffer());
    assert.equal(sha256(bytes), inspected.Layers.at(-1));
    const entries = readTar(gunzip(bytes));
    const names = entries.map((e) => e.path);
    assert.ok(names.includes('Hives/') && names.includes('Files/'), names.join(', '));
    const pause = entries.find((e) => e.path === 'Files/pause.exe')!;
    assert.ok(Buffer.from(pause.content).equals(await readFile(path.join(dir, 'bin', 'pause-windows-amd64.exe'))));
    const wincat = entries.find((e) => e.path === 'Files/Windows/System32/wincat.exe')!;
    assert.ok(Buffer.from(wincat.content).equals(await readFile(path.join(dir, 'bin', 'wincat-windows-amd64.exe'))));
  });

  it('the foreign layer was never uploaded; the base layers were mounted from the base', async () => {
    for (const img of base.images) {
      const head = await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-I', `${registry.url}/v2/win/pause/blobs/${img.foreign}`], { reject: false });
      assert.equal(head.stdout, '404');
      const other = await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-I', `${registry.url}/v2/win/pause/blobs/${img.layers[1]}`], { reject: false });
      assert.equal(other.stdout, '200');
    }
    assert.equal(await registry.count('PUT', /\/v2\/win\/pause\/blobs\/uploads\/.*digest=sha256%3A(?:${base.images.map((i) => i.foreign.slice(7)).join('|')})/), 0);
    assert.ok((await registry.count('POST', /\/v2\/win\/pause\/blobs\/uploads\/\?.*mount=.*from=windows/)) >= 3);
  });

  it('per-version tags are <tag>-windows-amd64-<os.version>', async () => {
    const crane = unstableTool('crane');
    const all = (await execa(crane, ['ls', '--insecure', `${registry.host}/win/pause`])).stdout.split('\n').sort();
    // Beside them, the referrers' fallback tags (the attestations of this registry without the referrers API).
    const tags = all.filter((t) => !/^sha256-[0-9a-f]{64}$/.test(t));
    assert.ok(all.length > tags.length, 'the attestations are attached');
    assert.deepEqual(tags, ['3.10', '3.10-linux-amd64', '3.10-linux-arm64', ...WINDOWS_VERSIONS.map((v) => `3.10-windows-amd64-${v}`)].sort());
  });

  it('the Linux entries are those of a Linux-only build', async () => {
    const r = await runCli(publishArgs('linux/pause', ['--arch', 'amd64,arm64', '--json']));
    assert.equal(r.exitCode, 0, r.stderr);
    linuxOnly = JSON.parse(r.stdout);
    assert.deepEqual(index.manifests.slice(0, 2).map((m) => m.digest), linuxOnly.images.map((i) => i.digest));
  });

  it('the same base and inputs give the same index digest', async () => {
    const r = await runCli(publishArgs('win/again', ['--arch', 'amd64,arm64,windows', '--windows-base', base.reference, '--no-emulation', '--json']));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).digest, published.digest);
  });

  it('to another registry the base layers are copied, the foreign ones still not', async () => {
    const r = await runCli([...publishArgs('win/pause', ['--arch', 'windows', '--windows-base', base.reference, '--no-emulation', '--json']).map((a) => a.replace(`${registry.host}/win/pause`, `${other.host}/copied/pause`)), '--insecure-registry', other.host]);
    assert.equal(r.exitCode, 0, r.stderr);
    for (const img of base.images) {
      assert.equal((await fetch(`${other.url}/v2/copied/pause/blobs/${img.layers[1]}`, { method: 'HEAD' })).status, 200);
      assert.equal((await fetch(`${other.url}/v2/copied/pause/blobs/${img.foreign}`, { method: 'HEAD' })).status, 404);
    }
    assert.equal(await other.count('POST', /mount=/), 0);
  });

  it('mirror --platform windows/amd64:<os.version> copies that Windows entry alone, foreign layer left at its urls', async () => {
    const r = await runCli(['mirror', `${registry.host}/win/pause:3.10`, `${other.host}/mirrored/pause`, '--platform', `windows/amd64:10.0.20348,linux/amd64`, '--insecure-registry', registry.host, '--insecure-registry', other.host, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const got = JSON.parse((await execa(unstableTool('crane'), ['manifest', '--insecure', `${other.host}/mirrored/pause:3.10`])).stdout) as typeof index;
    assert.deepEqual(got.manifests.map((m) => m.digest), [index.manifests[0]!.digest, index.manifests[3]!.digest]);
    assert.equal(got.manifests[1]!.platform['os.version'], WINDOWS_VERSIONS[1]);
    assert.equal((await fetch(`${other.url}/v2/mirrored/pause/blobs/${base.images[1]!.foreign}`, { method: 'HEAD' })).status, 404);
  });

  it('image --arch windows writes a layout with the base layers but no foreign one, which skopeo reads', async () => {
    const out = path.join(dir, 'layout');
    const r = await runCli(['image', '--version', '3.10', '--revision', 'win', '--engine', 'host', '--no-cache', '--no-emulation', '--arch', 'windows', '--bin-dir', path.join(dir, 'bin'), '--output', out, '--windows-base', base.reference, '--insecure-registry', registry.host, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { index: { digest: string }; images: { platform: string; manifest: string }[] };
    assert.deepEqual(summary.images.map((i) => i.platform), WINDOWS_VERSIONS.map((v) => `windows/amd64:${v}`));
    assert.deepEqual(summary.images.map((i) => i.manifest), index.manifests.slice(2).map((m) => m.digest));
    const { existsSync } = await import('node:fs');
    for (const img of base.images) {
      assert.equal(existsSync(path.join(out, 'blobs', 'sha256', img.layers[1]!.slice(7))), true);
      assert.equal(existsSync(path.join(out, 'blobs', 'sha256', img.foreign.slice(7))), false);
    }
    const inspect = await skopeo(['inspect', '--override-os', 'windows', '--override-arch', 'amd64', `oci:${out}:3.10`]);
    assert.equal(inspect.exitCode, 0, inspect.stderr);
    assert.equal(JSON.parse(inspect.stdout.toString()).Os, 'windows');
  });

  it('--windows-os-version keeps only the versions named', async () => {
    const r = await runCli(publishArgs('win/one', ['--arch', 'windows', '--windows-base', base.reference, '--windows-os-version', '10.0.20348', '--no-emulation', '--json']));
    assert.equal(r.exitCode, 0, r.stderr);
    const out: Published = JSON.parse(r.stdout);
    assert.deepEqual(out.images.map((i) => i.platform), [`windows/amd64:${WINDOWS_VERSIONS[1]}`]);
    assert.equal(out.images[0]!.digest, index.manifests[3]!.digest);
  });
});

describe('Windows bad input, each one line', { timeout: 300_000 }, () => {
  const cases: [string, () => Promise<string[]>, RegExp][] = [
    ['a base that is not Windows', async () => ['--windows-base', (await pushSyntheticBase(registry.host, 'bad/linux', 'v1', { linux: true })).reference], /is not a Windows base image: its index lists linux\/amd64, no windows\/amd64 — /],
    ['a base without os.version', async () => ['--windows-base', (await pushSyntheticBase(registry.host, 'bad/noversion', 'v1', { noOsVersion: true })).reference], /windows\/amd64 entry sha256:[0-9a-f]{12}… has no os\.version — |entry .* has no os\.version — /],
    ['an unreachable base', async () => ['--windows-base', '127.0.0.1:9/nothing/here:v1', '--insecure-registry', '127.0.0.1:9'], /cannot read the Windows base 127\.0\.0\.1:9\/nothing\/here:v1: /],
    ['an os.version filter that matches nothing', async () => ['--windows-base', base.reference, '--windows-os-version', '10.0.99999'], /--windows-os-version 10\.0\.99999 matches none of .*\(10\.0\.17763\.6893, 10\.0\.20348\.3207, 10\.0\.26100\.3194\) — /],
  ];
  for (const [name, args, error] of cases) {
    it(name, async () => {
      const tag = name.replace(/\W+/g, '-').toLowerCase();
      const r = await runCli(publishArgs(`bad/${tag}`, ['--arch', 'amd64,windows', '--no-emulation', ...(await args())]));
      assertOneLineError(r, error);
      const tags = await execa(unstableTool('crane'), ['ls', '--insecure', `${registry.host}/bad/${tag}`], { reject: false });
      assert.notEqual(tags.exitCode, 0, `no tag may be written: ${tags.stdout}`);
    });
  }
});
