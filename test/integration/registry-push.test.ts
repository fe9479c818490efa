/**
 * publishIndex and the client against a real distribution registry on loopback, with
 * skopeo as an independent reader, and a proxy to count requests and inject failures.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError } from '../../src/errors.ts';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import type { Repository } from '../../src/registry/reference.ts';
import { FIVE_ARCHES, makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, freePort, skopeo, startProxy, startRegistry } from '../support/registry.ts';

const FAST_RETRY = { attempts: 3, baseDelayMs: 20, maxDelayMs: 80, maxRetryAfterMs: 5000 };

function clientFor(host: string, extra: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({ insecure: [host], retry: FAST_RETRY, requestTimeoutMs: 10_000, ...extra });
}

async function inspectRaw(host: string, repoAndTag: string) {
  return skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/${repoAndTag}`]);
}

describe('push to a plain registry', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let repo: Repository;
  let work: string;
  const built = makeIndex();

  before(async () => {
    reg = await startRegistry();
    client = clientFor(reg.host);
    repo = { registry: reg.host, repository: 'pause' };
    work = await mkdtemp('/tmp/wt-registry-work-');
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pushes a 5-platform index that skopeo reads back byte for byte', async () => {
    const events: string[] = [];
    const result = await publishIndex(client, repo, built, { tags: ['3.10'], perArchTags: true, onProgress: (e) => events.push(e.type) });
    assert.equal(result.digest, built.index.descriptor.digest);
    assert.equal(result.reference, `${reg.host}/pause@${built.index.descriptor.digest}`);
    assert.equal(result.unchanged, false);
    assert.deepEqual(result.images.map((i) => [i.arch, i.platform, i.digest, i.status]), built.images.map((i) => [
      i.arch, i.arch === 'arm' ? 'linux/arm/v7' : i.arch === 'arm64' ? 'linux/arm64/v8' : `linux/${i.arch}`, i.manifest.descriptor.digest, 'pushed',
    ]));
    assert.deepEqual(result.images.map((i) => i.compressedSize), built.images.map((i) => i.layers[0]!.descriptor.size));
    const allBlobs = built.images.flatMap((i) => [i.config, ...i.layers]);
    assert.equal(result.blobs.uploaded, 10);
    assert.equal(result.blobs.uploadedBytes, allBlobs.reduce((s, b) => s + b.descriptor.size, 0));
    assert.equal(result.blobs.skipped + result.blobs.mounted, 0);
    assert.deepEqual(result.tags.map((t) => [t.tag, t.status]), [...FIVE_ARCHES.map((a) => [`3.10-linux-${a}`, 'created']), ['3.10', 'created']]);
    assert.equal(events.filter((e) => e === 'blob').length, 10);
    assert.equal(events.at(-1), 'tag');

    const raw = await inspectRaw(reg.host, 'pause:3.10');
    assert.equal(raw.exitCode, 0, raw.stderr);
    assert.deepEqual(raw.stdout, Buffer.from(built.index.bytes));
    const arm = await inspectRaw(reg.host, 'pause:3.10-linux-arm');
    assert.deepEqual(arm.stdout, Buffer.from(built.images[1]!.manifest.bytes));

    const oci = path.join(work, 'oci');
    const copy = await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${reg.host}/pause:3.10`, `oci:${oci}:3.10`]);
    assert.equal(copy.exitCode, 0, copy.stderr);
    const index = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]?.digest, built.index.descriptor.digest);
    assert.equal((await readdir(path.join(oci, 'blobs', 'sha256'))).length, 1 + 5 * 3);
  });

  it('writes each image\'s blobs, then its manifest by digest, then the index, then the tags', async () => {
    const puts = (await reg.requests()).filter((r) => r.method === 'PUT' && r.url.startsWith('/v2/pause/'));
    const pos = (pred: (url: string) => boolean) => puts.map((r, i) => (pred(r.url) ? i : -1)).filter((i) => i >= 0);
    const blobs = pos((u) => u.includes('/blobs/uploads/'));
    const images = pos((u) => built.images.some((i) => u.endsWith(`/manifests/${i.manifest.descriptor.digest}`)));
    const index = pos((u) => u.endsWith(`/manifests/${built.index.descriptor.digest}`));
    const tags = pos((u) => /\/manifests\/3\.10/.test(u));
    assert.equal(blobs.length, 10);
    assert.equal(images.length, 5);
    assert.equal(index.length, 1);
    assert.equal(tags.length, 6);
    for (const image of built.images) {
      const own = pos((u) => [image.config, ...image.layers].some((b) => u.includes(`digest=${encodeURIComponent(b.descriptor.digest)}`)));
      const manifest = pos((u) => u.endsWith(`/manifests/${image.manifest.descriptor.digest}`));
      assert.equal(own.length, 2);
      assert.ok(Math.max(...own) < manifest[0]!, `${image.arch}: its blobs before its manifest`);
    }
    assert.ok(Math.max(...images) < index[0]!, 'image manifests before the index');
    assert.ok(index[0]! < Math.min(...tags), 'index before tags');
    assert.ok(puts[puts.length - 1]!.url.endsWith('/manifests/3.10'), 'the version tag is written last');
  });

  it('does nothing when the tags already hold this index: no uploads, not even blob HEADs', async () => {
    const before = (await reg.requests()).length;
    const result = await publishIndex(client, repo, built, { tags: ['3.10'], perArchTags: true });
    const during = (await reg.requests()).slice(before);
    assert.equal(result.unchanged, true);
    assert.deepEqual(result.blobs, { uploaded: 0, skipped: 0, mounted: 0, uploadedBytes: 0, skippedBytes: 0, mountedBytes: 0 });
    assert.ok(result.tags.every((t) => t.status === 'unchanged'));
    assert.ok(result.images.every((i) => i.status === 'present'));
    assert.deepEqual(during.filter((r) => r.method !== 'HEAD' || !r.url.includes('/manifests/3.10')), [], 'only the tag HEADs');
    assert.equal(during.length, 6);
  });

  it('adds a new tag for existing content without uploading anything', async () => {
    const before = (await reg.requests()).length;
    const result = await publishIndex(client, repo, built, { tags: ['3.10', 'latest'] });
    const during = (await reg.requests()).slice(before);
    assert.deepEqual(result.tags.map((t) => [t.tag, t.status]), [['3.10', 'unchanged'], ['latest', 'created']]);
    assert.equal(during.filter((r) => r.method === 'POST').length, 0);
    assert.equal(during.filter((r) => r.url.includes('/blobs/')).length, 0);
    assert.deepEqual(during.filter((r) => r.method === 'PUT').map((r) => r.url), ['/v2/pause/manifests/latest']);
  });

  it('refuses to move a tag to other content, and changes nothing', async () => {
    const other = makeIndex(FIVE_ARCHES, 'other build');
    const before = (await reg.requests()).length;
    await assert.rejects(publishIndex(client, repo, other, { tags: ['3.10'] }), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.equal(e.message, `push to ${reg.host}/pause: tag 3.10 already holds ${built.index.descriptor.digest} (not ${other.index.descriptor.digest})`);
      assert.equal(e.hint, 'pass --force to overwrite');
      return true;
    });
    const during = (await reg.requests()).slice(before);
    assert.deepEqual(during.filter((r) => r.method !== 'HEAD'), [], 'nothing written');
    assert.deepEqual((await inspectRaw(reg.host, 'pause:3.10')).stdout, Buffer.from(built.index.bytes));

    const perArch = await publishIndex(client, repo, other, { tags: ['3.10'], perArchTags: true }).catch((e: Error) => e);
    assert.ok(perArch instanceof PauseBuildError);
    assert.match(perArch.message, /tag 3\.10-linux-amd64 already holds .* \(and 5 more tags\)$/);
  });

  it('moves the tag with force', async () => {
    const other = makeIndex(FIVE_ARCHES, 'forced build');
    const result = await publishIndex(client, repo, other, { tags: ['3.10'], force: true });
    assert.deepEqual(result.tags, [{ tag: '3.10', digest: other.index.descriptor.digest, status: 'overwritten', previous: built.index.descriptor.digest }]);
    assert.deepEqual((await inspectRaw(reg.host, 'pause:3.10')).stdout, Buffer.from(other.index.bytes));
    // The per-arch tags were not asked for, so they still hold the first build.
    assert.deepEqual((await inspectRaw(reg.host, 'pause:3.10-linux-amd64')).stdout, Buffer.from(built.images[0]!.manifest.bytes));
  });

  it('mounts blobs from another repository of the same registry', async () => {
    const content = makeIndex(FIVE_ARCHES, 'mounted');
    const staging = { registry: reg.host, repository: 'staging/pause' };
    await publishIndex(client, staging, content, { tags: ['3.11'] });
    const before = (await reg.requests()).length;
    const result = await publishIndex(client, { registry: reg.host, repository: 'release/pause' }, content, { tags: ['3.11'], mountFrom: ['staging/pause'] });
    const during = (await reg.requests()).slice(before);
    assert.equal(result.blobs.mounted, 10);
    assert.equal(result.blobs.uploaded, 0);
    const mounts = during.filter((r) => r.method === 'POST' && r.url.includes('mount=') && r.url.includes('from=staging%2Fpause'));
    assert.equal(mounts.length, 10);
    assert.ok(mounts.every((r) => r.status === 201));
    assert.equal(during.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/')).length, 0, 'no bytes uploaded');
    assert.deepEqual((await inspectRaw(reg.host, 'release/pause:3.11')).stdout, Buffer.from(content.index.bytes));

    // Several candidates: the one holding the blobs is found by HEAD, then mounted from.
    const third = await publishIndex(client, { registry: reg.host, repository: 'third/pause' }, content, { tags: ['3.11'], mountFrom: ['empty/repo', 'release/pause'] });
    assert.equal(third.blobs.mounted, 10);
    const thirdMounts = (await reg.requests()).filter((r) => r.method === 'POST' && r.url.startsWith('/v2/third/pause/') && r.url.includes('from=release%2Fpause'));
    assert.equal(thirdMounts.length, 10);
  });

  it('falls back to uploading when the mount source lacks the blob', async () => {
    const content = makeIndex(['amd64'], 'not anywhere');
    const result = await publishIndex(client, { registry: reg.host, repository: 'fresh' }, content, { tags: ['1'], mountFrom: ['staging/pause'] });
    assert.equal(result.blobs.uploaded, 2);
    assert.equal(result.blobs.mounted, 0);
    assert.equal((await inspectRaw(reg.host, 'fresh:1')).exitCode, 0);
  });

  it('skips blobs the repository already has', async () => {
    const content = makeIndex(['amd64', 'arm64'], 'partial');
    const target = { registry: reg.host, repository: 'partial' };
    await client.uploadBlob(target, content.images[0]!.layers[0]!);
    const result = await publishIndex(client, target, content, { tags: ['1'] });
    assert.equal(result.blobs.skipped, 1);
    assert.equal(result.blobs.skippedBytes, content.images[0]!.layers[0]!.descriptor.size);
    assert.equal(result.blobs.uploaded, 3);
  });

  it('reads manifests, verified blobs and paginated tags', async () => {
    const tags = await client.listTags(repo);
    assert.deepEqual(tags.sort(), ['3.10', ...FIVE_ARCHES.map((a) => `3.10-linux-${a}`), 'latest'].sort());
    assert.deepEqual(await client.listTags({ registry: reg.host, repository: 'no/such/repo' }), []);

    const head = await client.headManifest(repo, '3.10-linux-arm64');
    assert.deepEqual(head, { digest: built.images[2]!.manifest.descriptor.digest, mediaType: built.images[2]!.manifest.descriptor.mediaType, size: built.images[2]!.manifest.descriptor.size });
    assert.equal(await client.headManifest(repo, 'no-such-tag'), undefined);
    const byDigest = await client.getManifest(repo, built.index.descriptor.digest);
    assert.deepEqual(Buffer.from(byDigest.bytes), Buffer.from(built.index.bytes));

    const layer = built.images[0]!.layers[0]!;
    assert.deepEqual(Buffer.from(await client.readBlob(repo, layer.descriptor.digest)), Buffer.from(layer.bytes));
    assert.equal(await client.blobExists(repo, layer.descriptor.digest), layer.descriptor.size);
    assert.equal(await client.blobExists(repo, `sha256:${'0'.repeat(64)}`), undefined);
  });

  it('follows Link headers through tag list pages', async () => {
    // distribution 2.8 ignores ?n=, so the pages come from the proxy.
    const pages: Record<string, { tags: string[]; link?: string }> = {
      '/v2/paged/tags/list?n=2': { tags: ['a', 'b'], link: '</v2/paged/tags/list?n=2&last=b>; rel="next"' },
      '/v2/paged/tags/list?n=2&last=b': { tags: ['c', 'd'], link: '<PROXY/v2/paged/tags/list?n=2&last=d>; rel="next"' },
      '/v2/paged/tags/list?n=2&last=d': { tags: ['e'] },
    };
    let proxyUrl = '';
    const proxy = await startProxy(reg.host, ({ url }) => {
      const page = pages[url];
      if (!page) return undefined;
      return { status: 200, headers: page.link ? { Link: page.link.replace('PROXY', proxyUrl) } : ({} as Record<string, string>), body: JSON.stringify({ name: 'paged', tags: page.tags }) };
    });
    proxyUrl = `http://${proxy.host}`;
    try {
      const paged = { registry: proxy.host, repository: 'paged' };
      assert.deepEqual(await clientFor(proxy.host).listTags(paged, { pageSize: 2 }), ['a', 'b', 'c', 'd', 'e']);
      assert.equal(proxy.count('GET', /tags\/list/), 3);
      // A list longer than the pages allowed is no answer, not a part of one.
      assert.equal(await clientFor(proxy.host).listTagsWithin(paged, 2, { pageSize: 2 }), undefined);
      assert.equal(proxy.count('GET', /tags\/list/), 5);
      assert.deepEqual(await clientFor(proxy.host).listTagsWithin(paged, 3, { pageSize: 2 }), ['a', 'b', 'c', 'd', 'e']);
    } finally {
      await proxy.stop();
    }
  });

  it('fails a blob download whose bytes do not match its digest', async () => {
    const layer = built.images[0]!.layers[0]!;
    const proxy = await startProxy(reg.host, ({ method, url }) => (method === 'GET' && url.includes('/blobs/') ? { status: 200, body: 'not the layer' } : undefined));
    try {
      const viaProxy = clientFor(proxy.host);
      await assert.rejects(viaProxy.readBlob({ registry: proxy.host, repository: 'pause' }, layer.descriptor.digest), /blob sha256:[0-9a-f]{12} arrived as sha256:[0-9a-f]{12} \(13 bytes\)/);
    } finally {
      await proxy.stop();
    }
  });

  it('retries a transient 500 on a blob upload and a 429 with Retry-After, and succeeds', async () => {
    const content = makeIndex(FIVE_ARCHES, 'transient');
    let failedUpload = false;
    let limited = false;
    const proxy = await startProxy(reg.host, ({ method, url }) => {
      if (method === 'PUT' && url.includes('/blobs/uploads/') && !failedUpload) {
        failedUpload = true;
        return 500;
      }
      if (method === 'PUT' && url.endsWith(`/manifests/${content.index.descriptor.digest}`) && !limited) {
        limited = true;
        return { status: 429, headers: { 'Retry-After': '1' } };
      }
      return undefined;
    });
    try {
      const started = Date.now();
      const result = await publishIndex(clientFor(proxy.host), { registry: proxy.host, repository: 'flaky' }, content, { tags: ['1.0'] });
      assert.equal(result.blobs.uploaded, 10);
      assert.equal(proxy.count('PUT', /\/blobs\/uploads\//), 11, 'one upload was tried twice');
      assert.equal(proxy.requests.filter((r) => r.status === 500).length, 1);
      assert.equal(proxy.count('PUT', new RegExp(`/manifests/${content.index.descriptor.digest}$`)), 2);
      assert.ok(Date.now() - started >= 950, 'waited for Retry-After');
      assert.deepEqual((await inspectRaw(reg.host, 'flaky:1.0')).stdout, Buffer.from(content.index.bytes));
    } finally {
      await proxy.stop();
    }
  });

  it('gives up on a persistent 500 with one clear line, and writes no tag', async () => {
    const content = makeIndex(FIVE_ARCHES, 'persistent');
    const bad = content.images[3]!.layers[0]!.descriptor.digest;
    const proxy = await startProxy(reg.host, ({ method, url }) => (method === 'PUT' && url.includes('/blobs/uploads/') && url.includes(encodeURIComponent(bad)) ? 500 : undefined));
    try {
      const target = { registry: proxy.host, repository: 'broken' };
      await assert.rejects(publishIndex(clientFor(proxy.host), target, content, { tags: ['1.0'], perArchTags: true }), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.equal(e.message, `push to ${proxy.host}/broken: upload of blob ${bad.slice(0, 19)} failed: 500 Internal Server Error (UNKNOWN: injected failure) (3 attempts)`);
        assert.match(e.hint ?? '', /try again later/);
        return true;
      });
      assert.equal(proxy.count('PUT', new RegExp(encodeURIComponent(bad))), 3);
      assert.equal(proxy.count('PUT', /\/manifests\/(1\.0|sha256:)/), 0, 'no manifest before every blob is in');
      for (const tag of ['1.0', '1.0-linux-amd64', '1.0-linux-ppc64le']) {
        const r = await inspectRaw(reg.host, `broken:${tag}`);
        assert.notEqual(r.exitCode, 0, `tag ${tag} must not exist`);
        assert.match(r.stderr, /manifest unknown/i);
      }
      assert.equal(await client.headManifest({ registry: reg.host, repository: 'broken' }, content.index.descriptor.digest), undefined);
    } finally {
      await proxy.stop();
    }
  });

  it('says a registry that is down is unreachable', async () => {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    await assert.rejects(publishIndex(clientFor(host), { registry: host, repository: 'pause' }, built, { tags: ['3.10'] }), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.equal(e.message, `push to ${host}/pause: registry ${host} unreachable (connection refused) (3 attempts)`);
      assert.equal(e.hint, `check that the registry runs and listens on ${host}`);
      return true;
    });
  });

  it('says when a plain-HTTP registry is spoken to over HTTPS', async () => {
    const tlsClient = new RegistryClient({ retry: FAST_RETRY });
    await assert.rejects(tlsClient.headManifest(repo, '3.10'), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.equal(e.message, `read ${reg.host}/pause: registry ${reg.host} does not speak HTTPS`);
      assert.equal(e.hint, `pass --insecure-registry ${reg.host} if it serves plain HTTP`);
      return true;
    });
  });

  it('stops at once when aborted', async () => {
    const ac = new AbortController();
    const reason = new Error('interrupted');
    ac.abort(reason);
    await assert.rejects(publishIndex(client, { registry: reg.host, repository: 'aborted' }, built, { tags: ['1'], signal: ac.signal }), (e: unknown) => e === reason);
    assert.equal(await client.headManifest({ registry: reg.host, repository: 'aborted' }, '1'), undefined);
  });
});
