/**
 * Signatures, SBOMs and provenance against the real distribution registry (2.8: no
 * referrers API, so the fallback tag), with today's cosign and oras as the independent
 * readers: what pause-build publishes cosign verifies, and what cosign signed survives a
 * pause-build mirror (registry to registry, and through an OCI layout and back).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { blobOf } from '../../src/oci/blob.ts';
import { buildArtifact, fallbackTag } from '../../src/oci/referrers.ts';
import { MEDIA_TYPES } from '../../src/oci/types.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { assertOneLineError } from '../support/assert.ts';
import { type CliResult, runCli } from '../support/cli.ts';
import { actionsStep } from '../support/actions.ts';
import { ensureBuilder } from '../support/engines.ts';
import { type TestProxy, type TestRegistry, startProxy, startRegistry } from '../support/registry.ts';
import { unstableTool } from '../support/tools.ts';

const PASSWORD = 'Trust-Key-Passw0rd-93';
const EPOCH = '1700000000';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

let dir: string;
let reg: TestRegistry;
let cosign: string;
let oras: string;
let crane: string;
let key: string;
let pub: string;
let otherPub: string;
let signingConfig: string;
let published: { digest: string; images: { arch: string; digest: string }[] };

const env = { COSIGN_PASSWORD: PASSWORD, SOURCE_DATE_EPOCH: EPOCH };
const build = ['--version', '3.10', '--revision', 'trust', '--engine', 'host', '--arch', 'amd64,arm64', '--no-emulation'];

function publishArgs(repo: string, extra: string[] = [], host = reg.host): string[] {
  return ['publish', ...build, '--bin-dir', path.join(dir, 'bin'), '--output', path.join(dir, `oci-${repo.replace(/\W/g, '-')}`), '--no-cache', '--registry', `${host}/${repo}`, '--insecure-registry', host, ...extra];
}

async function tool(bin: string, args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  const r = await execa(bin, args, { reject: false, cwd: dir, env: { ...extraEnv, HOME: dir }, stdin: 'ignore', timeout: 120_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const reach = ['--allow-insecure-registry', '--allow-http-registry'];
const verify = (ref: string, k = pub) => tool(cosign, ['verify', '--key', k, '--insecure-ignore-tlog', ...reach, ref]);
const verifyAttestation = (ref: string, type: string, k = pub) => tool(cosign, ['verify-attestation', '--key', k, '--insecure-ignore-tlog', '--type', type, ...reach, ref]);

/** The digests cosign's verify output says it checked. */
function verifiedDigests(r: CliResult): string[] {
  const line = r.stdout.split('\n').find((l) => l.startsWith('['));
  return line ? (JSON.parse(line) as { critical: { image: { 'docker-manifest-digest': string } } }[]).map((s) => s.critical.image['docker-manifest-digest']) : [];
}

async function tags(repo: string, host = reg.host): Promise<string[]> {
  const r = await tool(crane, ['ls', '--insecure', `${host}/${repo}`]);
  return r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean).sort() : [];
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'trust-'));
  cosign = unstableTool('cosign');
  oras = unstableTool('oras');
  crane = unstableTool('crane');
  reg = await startRegistry();
  await mkdir(path.join(dir, 'keys', 'other'), { recursive: true });
  for (const d of ['keys', 'keys/other']) {
    const r = await execa(cosign, ['generate-key-pair'], { cwd: path.join(dir, d), env: { COSIGN_PASSWORD: PASSWORD }, reject: false, stdin: 'ignore' });
    assert.equal(r.exitCode, 0, String(r.stderr));
  }
  key = path.join(dir, 'keys', 'cosign.key');
  pub = path.join(dir, 'keys', 'cosign.pub');
  otherPub = path.join(dir, 'keys', 'other', 'cosign.pub');
  signingConfig = path.join(dir, 'sc.json');
  const sc = await tool(cosign, ['signing-config', 'create', '--no-default-fulcio', '--no-default-oidc', '--no-default-rekor', '--no-default-tsa', '--out', signingConfig]);
  assert.equal(sc.exitCode, 0, sc.stderr);
  const r = await runCli([...publishArgs('trust/pause', ['--sign-key', key, '--json'])], { env });
  assert.equal(r.exitCode, 0, r.stderr);
  published = JSON.parse(r.stdout);
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('publish --sign-key', () => {
  it('cosign verifies the index signature with the key, offline', async () => {
    const r = await verify(`${reg.host}/trust/pause@${published.digest}`);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /The signatures were verified against the specified public key/);
    assert.ok(verifiedDigests(r).every((d) => d === published.digest) && verifiedDigests(r).length > 0);
  });

  it('cosign verifies the SBOM of each image and the provenance of the index and images', async () => {
    for (const image of published.images) {
      const sbom = await verifyAttestation(`${reg.host}/trust/pause@${image.digest}`, 'spdxjson');
      assert.equal(sbom.exitCode, 0, sbom.stderr);
      const payload = JSON.parse(Buffer.from(JSON.parse(sbom.stdout.split('\n')[0]!).payload, 'base64').toString('utf8'));
      assert.equal(payload.predicate.spdxVersion, 'SPDX-2.3');
      assert.equal(payload.subject[0].digest.sha256, image.digest.slice(7));
      const prov = await verifyAttestation(`${reg.host}/trust/pause@${image.digest}`, 'slsaprovenance1');
      assert.equal(prov.exitCode, 0, prov.stderr);
    }
    const prov = await verifyAttestation(`${reg.host}/trust/pause@${published.digest}`, 'slsaprovenance1');
    assert.equal(prov.exitCode, 0, prov.stderr);
    const statement = JSON.parse(Buffer.from(JSON.parse(prov.stdout.split('\n')[0]!).payload, 'base64').toString('utf8'));
    assert.deepEqual(statement.predicate.buildDefinition.externalParameters.arches, ['amd64', 'arm64']);
  });

  it('another key does not verify', async () => {
    const r = await verify(`${reg.host}/trust/pause@${published.digest}`, otherPub);
    assert.notEqual(r.exitCode, 0);
  });

  it('the SBOM names the libc and compiler versions the toolchain has', async () => {
    const r = await verifyAttestation(`${reg.host}/trust/pause@${published.images[1]!.digest}`, 'spdxjson');
    const sbom = JSON.parse(Buffer.from(JSON.parse(r.stdout.split('\n')[0]!).payload, 'base64').toString('utf8')).predicate;
    const libc = (await execa('dpkg-query', ['-W', '-f=${Version}', 'libc6-dev-arm64-cross'])).stdout;
    const gcc = (await execa('aarch64-linux-gnu-gcc', ['-dumpfullversion'])).stdout;
    const names = sbom.packages.map((p: { name: string; versionInfo: string }) => `${p.name} ${p.versionInfo}`);
    assert.ok(names.includes(`libc6-dev-arm64-cross ${libc}`), names.join(', '));
    assert.ok(sbom.packages.some((p: { comment?: string }) => p.comment === `aarch64-linux-gnu-gcc ${gcc}`));
    const bin = await readFile(path.join(dir, 'bin', 'pause-linux-arm64'));
    assert.equal(sbom.packages.find((p: { SPDXID: string }) => p.SPDXID === 'SPDXRef-Package-pause').checksums[0].checksumValue, createHash('sha256').update(bin).digest('hex'));
  });

  it('in the builder image, the SBOM has the builder\'s libc and the provenance the builder image', async () => {
    const image = await ensureBuilder('podman');
    const out = path.join(dir, 'oci-podman');
    const r = await runCli(['image', '--version', '3.10', '--revision', 'trust', '--engine', 'podman', '--arch', 'arm', '--no-emulation', '--bin-dir', path.join(dir, 'podman', 'bin'), '--output', out, '--json'], { env });
    assert.equal(r.exitCode, 0, r.stderr);
    const libc = (await execa('podman', ['run', '--rm', '--network', 'none', '--entrypoint', 'dpkg-query', image, '-W', '-f=${Version}', 'libc6-dev-armhf-cross'])).stdout;
    assert.match(libc, /^\d/);
    assert.ok(JSON.parse(r.stdout).images[0].sbom.includes(`libc6-dev-armhf-cross ${libc} (LIBRARY)`), r.stdout);
    // The provenance in the layout names the builder image by its id.
    const indexJson = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8'));
    const blob = async (d: string) => readFile(path.join(out, 'blobs', 'sha256', d.slice(7)));
    const provenances = indexJson.manifests.filter((m: { artifactType?: string }) => m.artifactType === 'application/vnd.in-toto+json');
    assert.equal(provenances.length, 2);
    const manifest = JSON.parse((await blob(provenances[0].digest)).toString());
    const statement = JSON.parse((await blob(manifest.layers[0].digest)).toString());
    const id = (await execa('podman', ['image', 'inspect', '--format', '{{.Id}}', image])).stdout.replace(/^sha256:/, '');
    const builder = statement.predicate.buildDefinition.resolvedDependencies.find((d: { name?: string }) => d.name === 'builder');
    assert.equal(builder.digest.sha256, id);
    assert.equal(builder.uri, `oci://${image}`);
  });

  it('oras discover lists the referrers through the fallback tag', async () => {
    const r = await tool(oras, ['discover', '--plain-http', '--format', 'json', `${reg.host}/trust/pause@${published.digest}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const types = (JSON.parse(r.stdout).referrers ?? JSON.parse(r.stdout).manifests).map((m: { artifactType: string }) => m.artifactType).sort();
    assert.deepEqual(types, [BUNDLE, BUNDLE, 'application/vnd.in-toto+json']);
    assert.ok((await tags('trust/pause')).includes(fallbackTag(published.digest)));
  });

  it('a second publish of the same inputs writes nothing', async () => {
    const before = (await reg.requests()).length;
    const r = await runCli(publishArgs('trust/pause', ['--sign-key', key]), { env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /0 new, 11 already there/);
    const writes = (await reg.requests()).slice(before).filter((q) => q.method === 'PUT' || q.method === 'POST' || q.method === 'PATCH');
    assert.deepEqual(writes, []);
  });

  it('--no-attestations pushes the same image digest and nothing attached', async () => {
    const r = await runCli(publishArgs('trust/plain', ['--no-attestations', '--json']), { env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).digest, published.digest);
    assert.deepEqual(await tags('trust/plain'), ['3.10']);
  });
});

describe('mirror keeps what cosign attached', () => {
  let src: string;
  before(async () => {
    // An image signed by cosign itself, in both forms, and given an SPDX attestation.
    const r = await runCli(publishArgs('cosign/pause', ['--no-attestations', '--json']), { env });
    assert.equal(r.exitCode, 0, r.stderr);
    src = `${reg.host}/cosign/pause@${JSON.parse(r.stdout).digest}`;
    const sign = await tool(cosign, ['sign', '-y', '--key', key, '--signing-config', signingConfig, ...reach, src], { COSIGN_PASSWORD: PASSWORD });
    assert.equal(sign.exitCode, 0, sign.stderr);
    const legacy = await tool(cosign, ['sign', '-y', '--key', key, '--registry-referrers-mode=legacy', '--new-bundle-format=false', '--use-signing-config=false', '--tlog-upload=false', ...reach, src], { COSIGN_PASSWORD: PASSWORD });
    assert.equal(legacy.exitCode, 0, legacy.stderr);
    await writeFile(path.join(dir, 'sbom.json'), JSON.stringify({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: 'cosign-made', dataLicense: 'CC0-1.0', creationInfo: { created: '2023-01-01T00:00:00Z', creators: ['Tool: test'] } }));
    const attest = await tool(cosign, ['attest', '-y', '--key', key, '--signing-config', signingConfig, '--type', 'spdxjson', '--predicate', path.join(dir, 'sbom.json'), ...reach, src], { COSIGN_PASSWORD: PASSWORD });
    assert.equal(attest.exitCode, 0, attest.stderr);
  });

  it('registry to registry: cosign verifies signature and attestation at the destination', async () => {
    const digest = src.split('@')[1]!;
    const r = await runCli(['mirror', src, `${reg.host}/mirror/pause:3.10`, '--insecure-registry', reg.host, '--verify-key', pub]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /carries 3 referrers \(2 application\/vnd\.oci\.empty\.v1\+json, 1 tag \.sig\)/);
    assert.ok((await tags('mirror/pause')).includes(`${fallbackTag(digest)}.sig`));
    const v = await verify(`${reg.host}/mirror/pause@${digest}`);
    assert.equal(v.exitCode, 0, v.stderr);
    // Both forms verified: the bundle and the legacy .sig.
    assert.equal(verifiedDigests(v).filter((d) => d === digest).length >= 2, true, v.stdout);
    const a = await verifyAttestation(`${reg.host}/mirror/pause@${digest}`, 'spdxjson');
    assert.equal(a.exitCode, 0, a.stderr);
  });

  it('through an OCI layout and back', async () => {
    const digest = src.split('@')[1]!;
    const layout = path.join(dir, 'airgap');
    const out = await runCli(['mirror', src, `oci:${layout}:3.10`, '--insecure-registry', reg.host]);
    assert.equal(out.exitCode, 0, out.stderr);
    const back = await runCli(['mirror', `oci:${layout}:3.10`, `${reg.host}/airgapped/pause:3.10`, '--insecure-registry', reg.host, '--verify-key', pub]);
    assert.equal(back.exitCode, 0, back.stderr);
    const v = await verify(`${reg.host}/airgapped/pause@${digest}`);
    assert.equal(v.exitCode, 0, v.stderr);
    const a = await verifyAttestation(`${reg.host}/airgapped/pause@${digest}`, 'spdxjson');
    assert.equal(a.exitCode, 0, a.stderr);
  });

  it('a published image mirrored: cosign verifies it at the destination', async () => {
    const r = await runCli(['mirror', `${reg.host}/trust/pause:3.10`, `${reg.host}/mirror/published:3.10`, '--insecure-registry', reg.host, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).copies[0].referrers.count, 11);
    const v = await verify(`${reg.host}/mirror/published@${published.digest}`);
    assert.equal(v.exitCode, 0, v.stderr);
    const a = await verifyAttestation(`${reg.host}/mirror/published@${published.images[0]!.digest}`, 'spdxjson');
    assert.equal(a.exitCode, 0, a.stderr);
  });

  it('tags sharing the image: what is attached is asked of the source once, and goes with every tag', async () => {
    const client = new RegistryClient({ insecure: [reg.host] });
    const tagsOf = ['s1', 's2', 's3', 's4', 's5'];
    try {
      const repo = { registry: reg.host, repository: 'trust/pause' };
      const index = await client.getManifest(repo, '3.10');
      for (const t of tagsOf) await client.putManifest(repo, t, index.bytes, index.mediaType);
    } finally {
      await client.close();
    }
    const before = (await reg.requests()).length;
    const r = await runCli(['mirror', `${reg.host}/trust/pause`, `${reg.host}/shared-tags/pause`, '--tags', tagsOf.join(','), '--insecure-registry', reg.host, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { copies: { referrers: { count: number } }[] };
    assert.deepEqual(report.copies.map((c) => c.referrers.count), tagsOf.map(() => 11));
    const asked = (await reg.requests()).slice(before).filter((q) => q.url.startsWith('/v2/trust/pause/'));
    // Per subject (the index, its five images, the eleven referrers): one referrers lookup, one fallback tag read.
    const lookups = (kind: RegExp) => asked.filter((q) => kind.test(q.url)).map((q) => `${q.method} ${q.url}`);
    const count = (list: string[]) => new Map(list.map((x) => [x, list.filter((y) => y === x).length]));
    for (const [what, n] of count(lookups(/\/referrers\/|\/manifests\/sha256-[0-9a-f]{64}(\.(sig|att|sbom))?$/))) assert.equal(n, 1, `${what} asked ${n} times`);
    // The registry has no referrers API: once it said so, the repository is not asked again.
    assert.ok(lookups(/\/referrers\//).length <= 6, `${lookups(/\/referrers\//).length} referrers API lookups`);
    // The tag list (read for --tags) says which fallback and legacy tags exist: no other is asked for.
    const listed = new Set(await tags('trust/pause'));
    const askedTags = asked.map((q) => /\/manifests\/(sha256-[0-9a-f]{64}(?:\.\w+)?)$/.exec(q.url)?.[1]).filter((t): t is string => t !== undefined);
    assert.ok(askedTags.length > 0, 'the fallback tags were read');
    assert.deepEqual(askedTags.filter((t) => !listed.has(t)), [], 'tags the list lacks were asked for');
    const v = await verify(`${reg.host}/shared-tags/pause@${published.digest}`);
    assert.equal(v.exitCode, 0, v.stderr);
  });

  it('the destination fallback index is merged, not overwritten', async () => {
    // cosign signs at the destination first; the mirror adds to its fallback index.
    const r = await runCli(publishArgs('merge/pause', ['--no-attestations']), { env });
    assert.equal(r.exitCode, 0, r.stderr);
    const pre = await tool(cosign, ['sign', '-y', '--key', key, '--signing-config', signingConfig, ...reach, `${reg.host}/merge/pause@${published.digest}`], { COSIGN_PASSWORD: PASSWORD });
    assert.equal(pre.exitCode, 0, pre.stderr);
    const client = new RegistryClient({ insecure: [reg.host] });
    try {
      const repo = { registry: reg.host, repository: 'merge/pause' };
      const before = JSON.parse(Buffer.from((await client.getManifest(repo, fallbackTag(published.digest))).bytes).toString('utf8')).manifests.map((m: { digest: string }) => m.digest);
      const m = await runCli(['mirror', `${reg.host}/trust/pause:3.10`, `${reg.host}/merge/pause:3.10`, '--insecure-registry', reg.host]);
      assert.equal(m.exitCode, 0, m.stderr);
      const afterList = JSON.parse(Buffer.from((await client.getManifest(repo, fallbackTag(published.digest))).bytes).toString('utf8')).manifests.map((x: { digest: string }) => x.digest);
      assert.deepEqual(afterList.slice(0, before.length), before);
      assert.equal(afterList.length, before.length + 3);
    } finally {
      await client.close();
    }
  });

  it('--platform: the output says the index signatures cannot apply', async () => {
    const r = await runCli(['mirror', `${reg.host}/trust/pause:3.10`, `${reg.host}/subset/pause:3.10`, '--platform', 'linux/arm64', '--insecure-registry', reg.host, '--dry-run']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /note: the rewritten index has a new digest: 3 signatures or attestations of the source index cannot apply to it/);
    assert.match(r.stdout, /would carry 4 referrers/);
    assert.deepEqual(await tags('subset/pause'), []);
  });

  it('--no-referrers copies the image alone', async () => {
    const r = await runCli(['mirror', `${reg.host}/trust/pause:3.10`, `${reg.host}/bare/pause:3.10`, '--insecure-registry', reg.host, '--no-referrers']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(await tags('bare/pause'), ['3.10']);
  });
});

describe('--verify-key', () => {
  it('another key: refused in one line, nothing written', async () => {
    const r = await runCli(['mirror', `${reg.host}/trust/pause:3.10`, `${reg.host}/refused/pause:3.10`, '--insecure-registry', reg.host, '--verify-key', otherPub]);
    assertOneLineError(r, /refusing to mirror .*trust\/pause:3\.10 \(sha256:[0-9a-f]{64}\): its index carries 2 sigstore bundles, none valid for .*other\/cosign\.pub/);
    assert.deepEqual(await tags('refused/pause'), []);
  });

  it('per entry of a mirror file: an entry whose key does not match stops the run before anything is written', async () => {
    const file = path.join(dir, 'keys', 'mirror.yaml');
    await writeFile(file, [
      'mirrors:',
      `  - source: ${reg.host}/trust/pause:3.10`,
      `    destinations: [${reg.host}/file-ok/pause]`,
      '    verifyKeys: cosign.pub',
      `  - source: ${reg.host}/trust/pause:3.10`,
      `    destinations: [${reg.host}/file-refused/pause]`,
      '    verifyKeys: [other/cosign.pub]',
      'registries:',
      `  ${reg.host}: { insecure: true }`,
      '',
    ].join('\n'));
    const r = await runCli(['mirror', '--file', file]);
    assertOneLineError(r, /refusing to mirror .*trust\/pause:3\.10 .*none valid for .*other\/cosign\.pub/);
    assert.deepEqual(await tags('file-refused/pause'), []);
    assert.deepEqual(await tags('file-ok/pause'), []);
    // With the right key alone, the same file copies.
    await writeFile(file, (await readFile(file, 'utf8')).replace('[other/cosign.pub]', 'cosign.pub'));
    const ok = await runCli(['mirror', '--file', file]);
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.ok((await tags('file-ok/pause')).includes('3.10'));
    assert.ok((await tags('file-refused/pause')).includes('3.10'));
  });

  it('a tampered signature: refused, nothing written', async () => {
    // The published image copied with its image only, then given a bundle whose signature was altered.
    const m = await runCli(['mirror', `${reg.host}/trust/pause:3.10`, `${reg.host}/tampered/pause:3.10`, '--insecure-registry', reg.host, '--no-referrers']);
    assert.equal(m.exitCode, 0, m.stderr);
    const client = new RegistryClient({ insecure: [reg.host] });
    try {
      const from = { registry: reg.host, repository: 'trust/pause' };
      const to = { registry: reg.host, repository: 'tampered/pause' };
      const list = JSON.parse(Buffer.from((await client.getManifest(from, fallbackTag(published.digest))).bytes).toString('utf8')).manifests;
      const sigEntry = list.find((e: { annotations?: Record<string, string> }) => e.annotations?.['dev.sigstore.bundle.predicateType'] === 'https://sigstore.dev/cosign/sign/v1');
      const manifest = JSON.parse(Buffer.from((await client.getManifest(from, sigEntry.digest)).bytes).toString('utf8'));
      const bundle = JSON.parse(Buffer.from(await client.readBlob(from, manifest.layers[0].digest)).toString('utf8'));
      const sig = Buffer.from(bundle.dsseEnvelope.signatures[0].sig, 'base64');
      sig.writeUInt8(sig.readUInt8(sig.length - 1) ^ 1, sig.length - 1);
      bundle.dsseEnvelope.signatures[0].sig = sig.toString('base64');
      const index = await client.getManifest(to, published.digest);
      const art = buildArtifact({ subject: { mediaType: MEDIA_TYPES.index, digest: published.digest, size: index.size }, artifactType: BUNDLE, layer: blobOf(new TextEncoder().encode(JSON.stringify(bundle)), { mediaType: BUNDLE }), artifactTypeInConfig: true });
      for (const b of art.blobs) await client.uploadBlob(to, { descriptor: b.descriptor, bytes: b.bytes });
      await client.putManifest(to, art.manifest.descriptor.digest, art.manifest.bytes, MEDIA_TYPES.manifest);
      const fallback = { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [{ ...art.manifest.descriptor, artifactType: BUNDLE }] };
      await client.putManifest(to, fallbackTag(published.digest), new TextEncoder().encode(JSON.stringify(fallback)), MEDIA_TYPES.index);
    } finally {
      await client.close();
    }
    const r = await runCli(['mirror', `${reg.host}/tampered/pause:3.10`, `${reg.host}/refused2/pause:3.10`, '--insecure-registry', reg.host, '--verify-key', pub]);
    assertOneLineError(r, /refusing to mirror .*tampered\/pause:3\.10 .*its index carries 1 sigstore bundle, none valid/);
    assert.deepEqual(await tags('refused2/pause'), []);
  });

  it('a legacy .sig signature by the key is accepted', async () => {
    const r = await runCli(publishArgs('legacy/pause', ['--no-attestations', '--json']), { env });
    const digest = JSON.parse(r.stdout).digest;
    const legacy = await tool(cosign, ['sign', '-y', '--key', key, '--registry-referrers-mode=legacy', '--new-bundle-format=false', '--use-signing-config=false', '--tlog-upload=false', ...reach, `${reg.host}/legacy/pause@${digest}`], { COSIGN_PASSWORD: PASSWORD });
    assert.equal(legacy.exitCode, 0, legacy.stderr);
    const ok = await runCli(['mirror', `${reg.host}/legacy/pause:3.10`, `${reg.host}/legacy-copy/pause:3.10`, '--insecure-registry', reg.host, '--verify-key', pub]);
    assert.equal(ok.exitCode, 0, ok.stderr);
    const bad = await runCli(['mirror', `${reg.host}/legacy/pause:3.10`, `${reg.host}/legacy-refused/pause:3.10`, '--insecure-registry', reg.host, '--verify-key', otherPub]);
    assertOneLineError(bad, /its index carries a legacy \.sig tag, none valid/);
    assert.deepEqual(await tags('legacy-refused/pause'), []);
  });
});

describe('bad input: one line, no trace', () => {
  const noSecrets = (r: CliResult, keyText: string) => {
    // ::add-mask:: is how a secret is given to the Actions runner, which then hides it everywhere.
    const all = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n');
    assert.ok(!all.includes(PASSWORD), 'password printed');
    for (const line of keyText.split('\n').filter((l) => l.length > 40)) assert.ok(!all.includes(line), 'key material printed');
  };

  it('a wrong key password', async () => {
    const r = await runCli(publishArgs('bad/pause', ['--sign-key', key]), { env: { ...env, COSIGN_PASSWORD: 'not-the-password' } });
    assertOneLineError(r, /wrong password for signing key .*cosign\.key — set COSIGN_PASSWORD/);
    noSecrets(r, await readFile(key, 'utf8'));
    assert.deepEqual(await tags('bad/pause'), []);
  });

  it('an unsupported key type', async () => {
    const rsa = path.join(dir, 'rsa.pem');
    await execa('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsa]);
    const r = await runCli(publishArgs('bad/pause', ['--sign-key', rsa]), { env });
    assertOneLineError(r, /signing key .*rsa\.pem is an RSA key; only ECDSA P-256 is supported/);
    noSecrets(r, await readFile(rsa, 'utf8'));
    const v = await runCli(['mirror', `${reg.host}/trust/pause:3.10`, `${reg.host}/bad/pause:3.10`, '--insecure-registry', reg.host, '--verify-key', rsa]);
    assertOneLineError(v, /verify key .*rsa\.pem is not a PEM public key/);
  });

  it('an unreadable key file', async () => {
    const r = await runCli(publishArgs('bad/pause', ['--sign-key', path.join(dir, 'missing.key')]), { env });
    assertOneLineError(r, /cannot read signing key .*missing\.key: no such file/);
    const d = await runCli(publishArgs('bad/pause', ['--sign-key', dir]), { env });
    assertOneLineError(d, /cannot read signing key .*: it is a directory/);
    assert.deepEqual(await tags('bad/pause'), []);
  });

  it('a PEM PKCS#8 P-256 key signs what cosign verifies', async () => {
    const pem = path.join(dir, 'p256.pem');
    const pemPub = path.join(dir, 'p256.pub');
    await execa('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', pem]);
    await execa('openssl', ['pkey', '-in', pem, '-pubout', '-out', pemPub]);
    const r = await runCli(publishArgs('pem/pause', ['--sign-key', pem, '--json']), { env: { SOURCE_DATE_EPOCH: EPOCH } });
    assert.equal(r.exitCode, 0, r.stderr);
    const v = await verify(`${reg.host}/pem/pause@${JSON.parse(r.stdout).digest}`, pemPub);
    assert.equal(v.exitCode, 0, v.stderr);
  });

  describe('a registry that rejects artifact manifests', () => {
    let proxy: TestProxy;
    before(async () => {
      // Images and the tag go through; every manifest after the tag (the artifacts) is refused.
      const tagged = new Set<string>();
      const repoOf = (url: string) => url.replace(/\/manifests\/.*$/, '');
      proxy = await startProxy(reg.host, ({ method, url }) => {
        if (method === 'PUT' && /\/manifests\/3\.10$/.test(url)) tagged.add(repoOf(url));
        else if (tagged.has(repoOf(url)) && method === 'PUT' && /\/manifests\/sha256:/.test(url)) return { status: 400, body: JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid' }] }) };
        return undefined;
      });
    });
    after(() => proxy?.stop());

    it('warns by default; the image itself is published', async () => {
      const r = await runCli(publishArgs('rejecting/pause', ['--sign-key', key], proxy.host), { env });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stderr, /^warning: .*rejecting\/pause refused the application\/spdx\+json sha256:[0-9a-f]{12}…: /m);
      assert.deepEqual(await tags('rejecting/pause'), ['3.10']);
    });

    it('fails in one line with --require-referrers, and writes no fallback tag', async () => {
      const r = await runCli(publishArgs('rejecting2/pause', ['--sign-key', key, '--require-referrers'], proxy.host), { env });
      assertOneLineError(r, /rejecting2\/pause refused the application\/spdx\+json sha256:[0-9a-f]{64}/);
      assert.ok(!(await tags('rejecting2/pause')).some((t) => t.startsWith('sha256-')));
    });
  });

  it('no key material or password in Actions output or --debug', async () => {
    const step = await actionsStep();
    const r = await runCli(publishArgs('actions/pause', ['--sign-key', key, '--debug']), { env: { ...env, ...step.env } });
    assert.equal(r.exitCode, 0, r.stderr);
    noSecrets(r, await readFile(key, 'utf8'));
    const files = JSON.stringify(await step.outputs()) + (await step.summary());
    assert.match(files, /sha256:[0-9a-f]{64}/);
    noSecrets({ exitCode: 0, stdout: files, stderr: '' }, await readFile(key, 'utf8'));
    await step.remove();
  });
});
