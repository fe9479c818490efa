/**
 * pause-build mirror against real registries (distribution 2.8 on loopback, one of them
 * HTTPS with htpasswd), with skopeo as the independent reference for what a copy with
 * preserved digests must give, and request counts from the registries' access logs.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Listr } from 'listr2';
import { blobOf, jsonBlob } from '../../src/oci/blob.ts';
import { writeLayout } from '../../src/oci/layout.ts';
import { MEDIA_TYPES } from '../../src/oci/types.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { Engine } from '../../src/registry/plan.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { parseEntry, type MirrorReport } from '../../src/mirror.ts';
import { copyTasks, disposeSpools, mirrorReport, newMirrorState, planTasks } from '../../src/tasks/mirror.ts';
import { type CliOptions, runCli, startCli } from '../support/cli.ts';
import { FIVE_ARCHES, makeImage, makeIndex } from '../support/oci-fixture.ts';
import { actionsStep } from '../support/actions.ts';
import { type RequestRecord, type TestProxy, type TestRegistry, skopeo, startProxy, startRegistry } from '../support/registry.ts';

const USER = 'mirror-bot';
const PASSWORD = 'Mirror-Secret-77';

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Blobs and manifests a repository links to, from the registry's storage (what skopeo and we must agree on). */
async function stored(reg: TestRegistry, repo: string): Promise<{ layers: string[]; manifests: string[]; tags: string[] }> {
  const base = path.join(reg.dir, 'storage', 'docker', 'registry', 'v2', 'repositories', repo);
  const list = async (sub: string) => (await readdir(path.join(base, sub)).catch(() => [] as string[])).sort();
  return { layers: await list('_layers/sha256'), manifests: await list('_manifests/revisions/sha256'), tags: await list('_manifests/tags') };
}

async function during<T>(reg: TestRegistry, fn: () => Promise<T>): Promise<{ result: T; requests: RequestRecord[] }> {
  const before = (await reg.requests()).length;
  const result = await fn();
  return { result, requests: (await reg.requests()).slice(before) };
}

const writes = (rs: readonly RequestRecord[]) => rs.filter((r) => r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH' || r.method === 'DELETE');
const blobUploads = (rs: readonly RequestRecord[]) => rs.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'));

describe('pause-build mirror', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let secure: TestRegistry;
  let work: string;
  let client: RegistryClient;
  const built = makeIndex(FIVE_ARCHES, 'mirror');
  const allBlobs = built.images.flatMap((i) => [i.config, ...i.layers]);

  const insecure = () => ['--insecure-registry', `${src.host},${dst.host}`];
  const mirror = (args: string[], opts: CliOptions = {}) => runCli(['mirror', ...args, ...insecure()], opts);
  const raw = (reg: TestRegistry, ref: string) => skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${ref}`]);

  before(async () => {
    [src, dst, secure] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ tls: true, htpasswd: { username: USER, password: PASSWORD } })]);
    work = await mkdtemp('/tmp/wt-mirror-it-');
    client = new RegistryClient({ insecure: [src.host, dst.host] });
    await publishIndex(client, { registry: src.host, repository: 'pause' }, built, { tags: ['3.10'] });
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), secure?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  it('copies a 5-platform index to two registries with the digests skopeo gives, reading each source blob once', async () => {
    const { result: r, requests } = await during(src, () => mirror([
      `${src.host}/pause:3.10`, `${dst.host}/k8s/pause`, `${secure.host}/k8s/pause`,
      '--ca-file', secure.certificates!.caFile, '--username', USER, '--password-stdin', '--docker-config', path.join(work, 'no-docker-config'),
    ], { input: `${PASSWORD}\n` }));
    assert.equal(r.exitCode, 0, r.stderr);
    const digest = built.index.descriptor.digest;
    for (const host of [dst.host, secure.host]) {
      assert.ok(r.stdout.includes(`→ ${host}/k8s/pause:3.10  wrote 6 manifests; uploaded 10 blobs`), r.stdout);
      assert.ok(r.stdout.includes(`      ${host}/k8s/pause@${digest}\n`), r.stdout);
      assert.ok(r.stdout.includes(`          sandbox = "${host}/k8s/pause@${digest}"  # ${host}/k8s/pause:3.10\n`), r.stdout);
      assert.ok(r.stdout.includes(`          sandbox_image = "${host}/k8s/pause@${digest}"  # ${host}/k8s/pause:3.10\n`), r.stdout);
      assert.ok(`${r.stdout}\n`.includes(`        --pod-infra-container-image=${host}/k8s/pause@${digest}\n`), r.stdout);
    }
    // Plain HTTP to dst, the private CA for secure: each gets its hosts.toml.
    assert.ok(r.stdout.includes(`        server = "http://${dst.host}"\n`), r.stdout);
    assert.ok(r.stdout.includes(`        server = "https://${secure.host}"\n`), r.stdout);
    assert.ok(r.stdout.includes(`          ca = "/etc/containerd/certs.d/${secure.host}/ca.crt"\n`), r.stdout);
    assert.ok(!r.stdout.includes(PASSWORD), r.stdout);
    assert.ok(!r.stderr.includes(PASSWORD), r.stderr);

    // Each source blob was downloaded once, for both destinations.
    const gets = requests.filter((q) => q.method === 'GET' && q.url.includes('/blobs/sha256:')).map((q) => q.url.slice(q.url.lastIndexOf('/') + 1)).sort();
    assert.deepEqual(gets, allBlobs.map((b) => b.descriptor.digest).sort());
    assert.equal(writes(requests).length, 0, 'nothing written to the source');

    // What we wrote is byte for byte what the source holds...
    const ours = await raw(dst, 'k8s/pause:3.10');
    assert.equal(ours.exitCode, 0, ours.stderr);
    assert.deepEqual(ours.stdout, Buffer.from(built.index.bytes));
    const secured = await skopeo(['inspect', '--raw', '--cert-dir', secure.certificates!.caDir, '--creds', `${USER}:${PASSWORD}`, `docker://${secure.host}/k8s/pause:3.10`]);
    assert.equal(secured.exitCode, 0, secured.stderr);
    assert.equal(sha256(secured.stdout), digest);

    // ...and what skopeo's own copy with preserved digests gives, down to every linked blob and manifest.
    const copy = await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src.host}/pause:3.10`, `docker://${dst.host}/by-skopeo:3.10`]);
    assert.equal(copy.exitCode, 0, copy.stderr);
    const theirs = await raw(dst, 'by-skopeo:3.10');
    assert.equal(sha256(theirs.stdout), sha256(ours.stdout));
    assert.equal(sha256(ours.stdout), digest);
    const [a, b] = await Promise.all([stored(dst, 'k8s/pause'), stored(dst, 'by-skopeo')]);
    assert.deepEqual(a.manifests, b.manifests);
    assert.equal(a.manifests.length, 6);
    assert.deepEqual(a.layers, b.layers);
    assert.deepEqual(a.layers, allBlobs.map((x) => x.descriptor.digest.slice(7)).sort());
    for (const image of built.images) {
      const child = await raw(dst, `k8s/pause@${image.manifest.descriptor.digest}`);
      assert.deepEqual(child.stdout, Buffer.from(image.manifest.bytes));
    }

    // Written in the order that keeps the destination consistent: blobs, child manifests, index, tag.
    const puts = (await dst.requests()).filter((q) => q.method === 'PUT' && q.url.startsWith('/v2/k8s/pause/'));
    const at = (pred: (url: string) => boolean) => puts.flatMap((q, i) => (pred(q.url) ? [i] : []));
    const blobs = at((u) => u.includes('/blobs/uploads/'));
    const children = at((u) => built.images.some((i) => u.endsWith(`/manifests/${i.manifest.descriptor.digest}`)));
    const index = at((u) => u.endsWith(`/manifests/${digest}`));
    assert.deepEqual([blobs.length, children.length, index.length, puts.length], [10, 5, 1, 17]);
    assert.ok(Math.max(...blobs) < Math.min(...children), 'every blob before any manifest');
    assert.ok(Math.max(...children) < index[0]!, 'child manifests before the index');
    assert.equal(puts.at(-1)!.url, '/v2/k8s/pause/manifests/3.10', 'the tag last');
  });

  it('a second run uploads nothing and says everything is there', async () => {
    const { result: r, requests } = await during(dst, () => mirror([`${src.host}/pause:3.10`, `${dst.host}/k8s/pause`]));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /→ \S+\/k8s\/pause:3\.10 {2}already there; tag 3\.10 unchanged/);
    assert.deepEqual(writes(requests), []);
    assert.deepEqual(requests.filter((q) => q.url !== '/v2/').map((q) => `${q.method} ${q.url}`), [`HEAD /v2/k8s/pause/manifests/3.10`], 'one HEAD of the tag');
  });

  it('mounts blobs within one registry instead of uploading them', async () => {
    const { result: r, requests } = await during(src, () => mirror([`${src.host}/pause:3.10`, `${src.host}/mirrored/pause`, '--json']));
    assert.equal(r.exitCode, 0, r.stderr);
    const report = JSON.parse(r.stdout) as MirrorReport;
    assert.deepEqual(report.copies[0]!.destinations[0]!.blobs, { uploaded: 0, mounted: 10, present: 0, uploadedBytes: 0, mountedBytes: allBlobs.reduce((n, x) => n + x.descriptor.size, 0), presentBytes: 0 });
    const mounts = requests.filter((q) => q.method === 'POST' && q.url.includes('mount=') && q.url.includes('from=pause'));
    assert.equal(mounts.length, 10);
    assert.ok(mounts.every((q) => q.status === 201), 'every mount answered 201 Created');
    assert.equal(blobUploads(requests).length, 0);
    assert.equal(requests.filter((q) => q.method === 'GET' && q.url.includes('/blobs/')).length, 0, 'nothing downloaded either');
    assert.deepEqual((await raw(src, 'mirrored/pause:3.10')).stdout, Buffer.from(built.index.bytes));
  });

  it('copies a platform subset: a rewritten index with only those platforms, which skopeo reads', async () => {
    const r = await mirror([`${src.host}/pause:3.10`, `${dst.host}/subset`, '--platform', 'linux/arm64,linux/amd64']);
    assert.equal(r.exitCode, 0, r.stderr);
    const got = await raw(dst, 'subset:3.10');
    const digest = sha256(got.stdout);
    assert.notEqual(digest, built.index.descriptor.digest);
    assert.ok(r.stdout.includes(`  index rewritten: ${digest} (source ${built.index.descriptor.digest})\n`), r.stdout);
    assert.ok(r.stdout.includes(`${dst.host}/subset@${digest}`));
    const index = JSON.parse(got.stdout.toString()) as { manifests: { digest: string; platform: { architecture: string } }[] };
    assert.deepEqual(index.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64'], 'in the source index order');
    assert.deepEqual(index.manifests.map((m) => m.digest), [built.images[0]!.manifest.descriptor.digest, built.images[2]!.manifest.descriptor.digest]);
    const layout = path.join(work, 'subset-oci');
    const copy = await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${dst.host}/subset:3.10`, `oci:${layout}:3.10`]);
    assert.equal(copy.exitCode, 0, copy.stderr);
    assert.equal((await stored(dst, 'subset')).layers.length, 4, 'only the blobs of two images');
  });

  it('copies by digest alone when the source is a digest and the destination names no tag', async () => {
    const digest = built.index.descriptor.digest;
    const r = await mirror([`${src.host}/pause@${digest}`, `${dst.host}/by-digest`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.ok(r.stdout.includes(`→ ${dst.host}/by-digest@${digest}  wrote 6 manifests;`), r.stdout);
    assert.ok(r.stdout.includes(`sandbox_image = "${dst.host}/by-digest@${digest}"`));
    assert.ok(r.stdout.includes(`sandbox = "${dst.host}/by-digest@${digest}"`));
    assert.deepEqual((await stored(dst, 'by-digest')).tags, []);
    assert.deepEqual((await raw(dst, `by-digest@${digest}`)).stdout, Buffer.from(built.index.bytes));
  });

  it('copies from an OCI layout', async () => {
    const layout = path.join(work, 'layout');
    const local = makeIndex(FIVE_ARCHES, 'from a layout');
    await writeLayout(layout, local, '3.11');
    const r = await mirror([`oci:${layout}:3.11`, `${dst.host}/from-layout`, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const report = JSON.parse(r.stdout) as MirrorReport;
    assert.equal(report.copies[0]!.source, `oci:${layout}:3.11`);
    assert.equal(report.copies[0]!.destinations[0]!.pinned, `${dst.host}/from-layout@${local.index.descriptor.digest}`);
    assert.deepEqual((await raw(dst, 'from-layout:3.11')).stdout, Buffer.from(local.index.bytes));
  });

  it('copies a Docker manifest list of Docker v2 manifests as it is', async () => {
    const repo = { registry: src.host, repository: 'docker-types' };
    const manifests: { bytes: Uint8Array; digest: string; platform: unknown }[] = [];
    for (const arch of ['amd64', 'arm64']) {
      const image = makeImage(arch, 'docker');
      for (const b of [image.config, ...image.layers]) await client.uploadBlob(repo, b);
      const bytes = new TextEncoder().encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.dockerManifest,
        config: { ...image.config.descriptor, mediaType: 'application/vnd.docker.container.image.v1+json' },
        layers: image.layers.map((l) => ({ ...l.descriptor, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' })),
      }, null, 3));
      const digest = await client.putManifest(repo, sha256(bytes), bytes, MEDIA_TYPES.dockerManifest);
      manifests.push({ bytes, digest, platform: image.manifest.descriptor.platform });
    }
    const list = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.dockerManifestList,
      manifests: manifests.map((m) => ({ mediaType: MEDIA_TYPES.dockerManifest, digest: m.digest, size: m.bytes.byteLength, platform: m.platform })),
    }, null, 3));
    await client.putManifest(repo, '1.0', list, MEDIA_TYPES.dockerManifestList);

    const r = await mirror([`${src.host}/docker-types:1.0`, `${dst.host}/docker-types`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual((await raw(dst, 'docker-types:1.0')).stdout, Buffer.from(list));
    const head = await client.headManifest({ registry: dst.host, repository: 'docker-types' }, '1.0');
    assert.deepEqual(head, { digest: sha256(list), mediaType: MEDIA_TYPES.dockerManifestList, size: list.byteLength });
    for (const m of manifests) {
      assert.deepEqual((await raw(dst, `docker-types@${m.digest}`)).stdout, Buffer.from(m.bytes));
      assert.equal((await client.headManifest({ registry: dst.host, repository: 'docker-types' }, m.digest))?.mediaType, MEDIA_TYPES.dockerManifest);
    }
  });

  it('in GitHub Actions: step outputs, a summary, masked credentials from the file, clean JSON on stdout', async () => {
    const step = await actionsStep({ MIRROR_KEY: PASSWORD });
    try {
      const file = path.join(work, 'actions.yaml');
      await writeFile(file, [
        'mirrors:',
        `  - source: ${src.host}/pause:3.10`,
        `    destinations: [${secure.host}/actions/pause]`,
        'registries:',
        `  "${src.host}": { insecure: true }`,
        `  "${secure.host}": { username: ${USER}, passwordEnv: MIRROR_KEY }`,
        '',
      ].join('\n'));
      const r = await runCli(['mirror', '--file', file, '--ca-file', secure.certificates!.caFile, '--docker-config', path.join(work, 'none'), '--json'], { env: step.env });
      assert.equal(r.exitCode, 0, r.stderr);
      const report = JSON.parse(r.stdout) as MirrorReport;
      const pinned = `${secure.host}/actions/pause@${built.index.descriptor.digest}`;
      assert.equal(report.copies[0]!.destinations[0]!.pinned, pinned);
      assert.match(r.stderr, new RegExp(`^::add-mask::${PASSWORD}$`, 'm'), 'the password named by the file is masked');
      const outputs = await step.outputs();
      assert.equal(outputs.tags, pinned);
      assert.equal(outputs.digest, built.index.descriptor.digest);
      assert.equal(outputs.image, `${src.host}/pause:3.10`);
      const summary = await step.summary();
      assert.match(summary, /^### pause mirrored to 1 destination$/m);
      assert.ok(summary.includes(`- **${secure.host}/actions/pause:3.10**: \`wrote 6 manifests; uploaded 10 blobs`), summary);
    } finally {
      await step.remove();
    }
  });

  it('refuses to move a tag holding other content before writing anything, and moves it with --force', async () => {
    const other = makeIndex(['amd64'], 'another build');
    await publishIndex(client, { registry: dst.host, repository: 'taken' }, other, { tags: ['3.10'] });
    const { result: refused, requests } = await during(dst, () => mirror([`${src.host}/pause:3.10`, `${dst.host}/taken`, `${dst.host}/free`]));
    assert.equal(refused.exitCode, 1);
    assert.match(refused.stderr, new RegExp(`^error: mirror to ${dst.host}/taken: tag 3\\.10 already holds ${other.index.descriptor.digest} \\(not ${built.index.descriptor.digest}\\) — pass --force to overwrite$`, 'm'));
    assert.deepEqual(writes(requests), [], 'not even the other destination was written');
    const forced = await mirror([`${src.host}/pause:3.10`, `${dst.host}/taken`, '--force']);
    assert.equal(forced.exitCode, 0, forced.stderr);
    assert.match(forced.stdout, new RegExp(`tag 3\\.10 moved from ${other.index.descriptor.digest}`));
    assert.deepEqual((await raw(dst, 'taken:3.10')).stdout, Buffer.from(built.index.bytes));
  });

  describe('from a mirror file', () => {
    const versions = ['3.8', '3.9', '3.10', 'latest'];
    const images = Object.fromEntries(versions.map((v) => [v, makeIndex(['amd64', 'arm64'], `bulk ${v}`)]));
    let file: string;

    before(async () => {
      for (const v of versions) await publishIndex(client, { registry: src.host, repository: 'bulk' }, images[v]!, { tags: [v] });
      await publishIndex(client, { registry: src.host, repository: 'other' }, makeIndex(['s390x'], 'other'), { tags: ['1.0'] });
      file = path.join(work, 'mirror.yaml');
      await writeFile(file, [
        'mirrors:',
        `  - source: ${src.host}/bulk`,
        '    tags: ">=3.9"',
        `    destinations: [${dst.host}/bulk-a, ${dst.host}/bulk-b]`,
        `  - source: ${src.host}/other:1.0`,
        `    destinations: [${dst.host}/other]`,
        'registries:',
        `  "${src.host}": { insecure: true }`,
        `  "${dst.host}": { insecure: true }`,
        '',
      ].join('\n'));
    });

    it('--dry-run says what would be copied and writes nothing', async () => {
      const { result: r, requests } = await during(dst, () => runCli(['mirror', '--file', file, '--dry-run', '--json']));
      assert.equal(r.exitCode, 0, r.stderr);
      const report = JSON.parse(r.stdout) as MirrorReport;
      assert.equal(report.dryRun, true);
      assert.deepEqual(report.copies.map((c) => c.source), [`${src.host}/bulk:3.9`, `${src.host}/bulk:3.10`, `${src.host}/other:1.0`]);
      const first = report.copies[0]!.destinations;
      assert.deepEqual(first.map((d) => [d.reference, d.changed, d.tagStatus, d.manifests?.written, d.blobs?.uploaded]), [
        [`${dst.host}/bulk-a:3.9`, true, 'created', 3, 4],
        [`${dst.host}/bulk-b:3.9`, true, 'created', 3, 4],
      ]);
      assert.deepEqual(writes(requests), []);
      assert.ok(requests.every((q) => q.method === 'HEAD' || (q.method === 'GET' && q.url === '/v2/')), 'only HEADs');
      for (const repo of ['bulk-a', 'bulk-b', 'other']) assert.deepEqual((await stored(dst, repo)).tags, [], `${repo} has no tags`);
      const text = await runCli(['mirror', '--file', file, '--dry-run']);
      assert.match(text.stdout, /^dry run: nothing was written\n/);
      assert.match(text.stdout, /→ \S+\/bulk-a:3\.10 {2}would write 3 manifests \(0 present\); upload 4 blobs \([\d.]+ (B|KiB)\), mount 0 \(0 B\), 0 present \(0 B\); tag 3\.10 new/);
    });

    it('mirrors every selected tag of every entry', async () => {
      const r = await runCli(['mirror', '--file', file, '--jobs', '2']);
      assert.equal(r.exitCode, 0, r.stderr);
      for (const repo of ['bulk-a', 'bulk-b']) {
        assert.deepEqual((await stored(dst, repo)).tags, ['3.10', '3.9']);
        for (const v of ['3.9', '3.10']) assert.deepEqual((await raw(dst, `${repo}:${v}`)).stdout, Buffer.from(images[v]!.index.bytes));
      }
      assert.deepEqual((await stored(dst, 'other')).tags, ['1.0']);
      // bulk-b got its blobs by mount from bulk-a (same registry): uploaded once only.
      const uploads = blobUploads(await dst.requests()).filter((q) => /\/v2\/bulk-[ab]\//.test(q.url));
      assert.equal(uploads.length, 8, 'two images of 2 platforms, 4 blobs each, uploaded once');
      assert.equal((await dst.requests()).filter((q) => q.method === 'POST' && q.url.startsWith('/v2/bulk-') && q.url.includes('mount=') && q.status === 201).length, 8);
    });
  });

  describe('interrupted and run again', () => {
    let proxy: TestProxy;
    const content = makeIndex(FIVE_ARCHES, 'interrupted');
    let run: ReturnType<typeof startCli> | undefined;
    let killed = false;

    before(async () => {
      await publishIndex(client, { registry: src.host, repository: 'interrupted' }, content, { tags: ['1.0'] });
      let puts = 0;
      // The fourth blob upload kills the CLI, as a crash or a lost machine would.
      proxy = await startProxy(dst.host, ({ method, url }) => {
        if (killed || method !== 'PUT' || !url.includes('/blobs/uploads/')) return undefined;
        if (++puts < 4) return undefined;
        killed = true;
        run?.kill('SIGKILL');
        return 503;
      });
    });
    after(async () => {
      await proxy?.stop();
    });

    it('finishes without uploading again what arrived', async () => {
      const args = ['mirror', `${src.host}/interrupted:1.0`, `${proxy.host}/interrupted`, '--insecure-registry', `${src.host},${proxy.host}`];
      run = startCli(args);
      const first = await run;
      assert.ok(killed, 'the CLI was killed during the uploads');
      assert.equal(first.signal, 'SIGKILL');
      await sleep(200);
      const firstUploads = blobUploads(await dst.requests()).filter((q) => q.url.startsWith('/v2/interrupted/') && q.status === 201);
      assert.ok(firstUploads.length >= 1 && firstUploads.length < 10, `some blobs arrived: ${firstUploads.length}`);
      assert.deepEqual((await stored(dst, 'interrupted')).tags, [], 'no tag after the interruption');

      const { result: again, requests } = await during(dst, () => runCli(args));
      assert.equal(again.exitCode, 0, again.stderr);
      const uploaded = blobUploads(requests).map((q) => decodeURIComponent(/digest=([^&]+)/.exec(q.url)![1]!));
      assert.equal(uploaded.length, 10 - firstUploads.length, 'only what had not arrived');
      const arrived = firstUploads.map((q) => decodeURIComponent(/digest=([^&]+)/.exec(q.url)![1]!));
      assert.deepEqual(uploaded.filter((d) => arrived.includes(d)), []);
      assert.ok(again.stdout.includes(`${10 - firstUploads.length} blob`), again.stdout);
      assert.deepEqual((await raw(dst, 'interrupted:1.0')).stdout, Buffer.from(content.index.bytes));
    });
  });

  it('Ctrl-C during an upload: exit 130, temp files removed, no tag', async () => {
    // One 5 MiB layer to two destinations, so that it waits in a temp file (to a lone
    // destination it would stream through); the destination never answers its upload.
    const layer = blobOf(randomBytes(5 * 1024 * 1024), { mediaType: MEDIA_TYPES.layerGzip });
    const config = jsonBlob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.descriptor.digest] } }, { mediaType: MEDIA_TYPES.config });
    const manifest = jsonBlob({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: config.descriptor, layers: [layer.descriptor] }, { mediaType: MEDIA_TYPES.manifest });
    for (const b of [config, layer]) await client.uploadBlob({ registry: src.host, repository: 'big' }, b);
    await client.putManifest({ registry: src.host, repository: 'big' }, '1', manifest.bytes, MEDIA_TYPES.manifest);
    const stalled: http.ServerResponse[] = [];
    const proxy = http.createServer((req, res) => {
      if (req.method === 'PUT' && req.url?.includes('/blobs/uploads/') && req.headers['content-length'] === String(layer.descriptor.size)) {
        stalled.push(res);
        req.resume();
        return;
      }
      const up = http.request({ host: '127.0.0.1', port: dst.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const tmp = await mkdtemp(path.join(work, 'tmp-'));
    try {
      const run = startCli(['mirror', `${src.host}/big:1`, `${host}/big`, `${host}/big2`, '--insecure-registry', `${src.host},${host}`], { env: { TMPDIR: tmp } });
      for (let i = 0; stalled.length === 0; i++) {
        assert.ok(i < 300, 'the upload of the large layer started');
        await sleep(50);
      }
      // (tsx keeps its cache there too.)
      const ours = async () => (await readdir(tmp)).filter((f) => f.startsWith('pause-build-'));
      const [spoolDir = ''] = await ours();
      assert.ok(spoolDir.startsWith('pause-build-spool-'), 'the layer waits in a temp file');
      assert.deepEqual(await readdir(path.join(tmp, spoolDir)), [layer.descriptor.digest.replace(':', '-')]);
      run.kill('SIGINT');
      const r = await run;
      assert.equal(r.exitCode, 130, String(r.stderr));
      assert.match(String(r.stderr), /^error: interrupted$/m);
      assert.deepEqual(await ours(), [], 'temp files removed');
      assert.deepEqual((await stored(dst, 'big')).tags, []);
      assert.deepEqual((await stored(dst, 'big2')).tags, []);
    } finally {
      for (const res of stalled) res.destroy();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('streams blobs through temp files when they are large, and removes them, also when a copy fails', async () => {
    const tmpdir = await mkdtemp(path.join(work, 'spool-'));
    const content = makeIndex(['amd64', 'arm64'], 'spooled');
    await publishIndex(client, { registry: src.host, repository: 'spooled' }, content, { tags: ['1'] });
    const run = async (destination: string, srcHost: string) => {
      const c = new RegistryClient({ insecure: [srcHost, dst.host], retry: { attempts: 1 } });
      const state = newMirrorState();
      const entries = [parseEntry({ source: `${srcHost}/spooled:1`, destinations: [destination] })];
      const input = { client: c, engine: new Engine(c), entries, jobs: 2, memoryLimit: 0, tmpdir };
      let seen: string[] = [];
      const watch = setInterval(() => {
        void readdir(tmpdir).then(async (dirs) => {
          for (const d of dirs) seen = [...new Set([...seen, ...(await readdir(path.join(tmpdir, d)).catch(() => []))])];
        });
      }, 1);
      try {
        await new Listr(planTasks(input, state), { renderer: 'silent' }).run();
        await new Listr(copyTasks(input, state), { renderer: 'silent' }).run();
      } finally {
        clearInterval(watch);
        await disposeSpools(state);
      }
      return { state, report: mirrorReport(state, false) };
    };
    const ok = await run(`${dst.host}/spooled`, src.host);
    assert.deepEqual(ok.state.failures, []);
    assert.equal(ok.report.copies[0]!.destinations[0]!.blobs?.uploaded, 4);
    assert.deepEqual((await raw(dst, 'spooled:1')).stdout, Buffer.from(content.index.bytes));
    assert.deepEqual(await readdir(tmpdir), [], 'temp files removed');

    const layer = content.images[1]!.layers[0]!;
    const corrupting = await startProxy(src.host, ({ method, url }) => (method === 'GET' && url.endsWith(layer.descriptor.digest) ? { status: 200, headers: { 'Content-Length': String(layer.descriptor.size) }, body: 'x'.repeat(layer.descriptor.size) } : undefined));
    try {
      const bad = await run(`${dst.host}/spooled-bad`, corrupting.host);
      assert.equal(bad.state.failures.length, 1);
      assert.match(String(bad.state.failures[0]), /blob sha256:[0-9a-f]{12} arrived as sha256:/);
      assert.deepEqual(await readdir(tmpdir), [], 'temp files removed after the failure too');
      assert.deepEqual((await stored(dst, 'spooled-bad')).tags, []);
    } finally {
      await corrupting.stop();
    }
  });
});
