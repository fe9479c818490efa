/**
 * pause-build mirror given bad input, against real registries: each case is one error
 * line naming the thing and what to do, a non-zero exit, and no tag (nor any manifest)
 * written at the destination.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { blobPath, writeLayout } from '../../src/oci/layout.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { assertOneLineError } from '../support/assert.ts';
import { type CliOptions, type CliResult, runCli } from '../support/cli.ts';
import { FIVE_ARCHES, makeIndex } from '../support/oci-fixture.ts';
import { type RequestRecord, type TestRegistry, freePort, startProxy, startRegistry } from '../support/registry.ts';

const USER = 'owner';
const PASSWORD = 'Owner-Pass-4242';

describe('pause-build mirror refuses bad input', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let secure: TestRegistry;
  let work: string;
  const built = makeIndex(FIVE_ARCHES, 'errors');

  before(async () => {
    [src, dst, secure] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ tls: true, htpasswd: { username: USER, password: PASSWORD } })]);
    work = await mkdtemp('/tmp/wt-mirror-errors-');
    await publishIndex(new RegistryClient({ insecure: [src.host] }), { registry: src.host, repository: 'pause' }, built, { tags: ['3.10', 'latest'] });
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), secure?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  const mirror = (args: string[], opts: CliOptions = {}) => runCli(['mirror', ...args, '--insecure-registry', `${src.host},${dst.host}`], opts);

  /** Runs the CLI and returns what it printed and what the destination registry was asked meanwhile. */
  async function watched(reg: TestRegistry, run: () => Promise<CliResult>): Promise<{ r: CliResult; requests: RequestRecord[] }> {
    const before = (await reg.requests()).length;
    const r = await run();
    return { r, requests: (await reg.requests()).slice(before) };
  }

  async function tagsOf(reg: TestRegistry, repo: string): Promise<string[]> {
    return readdir(path.join(reg.dir, 'storage', 'docker', 'registry', 'v2', 'repositories', repo, '_manifests', 'tags')).catch(() => []);
  }

  const manifestPuts = (rs: readonly RequestRecord[]) => rs.filter((q) => q.method === 'PUT' && q.url.includes('/manifests/'));

  it('a source tag that does not exist: 404, naming the tags there are', async () => {
    const { r, requests } = await watched(dst, () => mirror([`${src.host}/pause:9.9`, `${dst.host}/pause`]));
    assertOneLineError(r, new RegExp(`^error: source ${src.host}/pause:9\\.9 not found \\(404\\) — its tags: 3\\.10, latest$`));
    assert.deepEqual(requests, [], 'the destination was not even asked');
  });

  it('a destination without credentials: 401, saying how to log in', async () => {
    const r = await mirror([`${src.host}/pause:3.10`, `${secure.host}/pause`, '--ca-file', secure.certificates!.caFile, '--docker-config', path.join(work, 'none')]);
    assertOneLineError(r, new RegExp(`^error: mirror to ${secure.host}/pause: authentication failed \\(401\\) — no credentials for ${secure.host}: pass --username and --password-stdin, or docker login ${secure.host}$`));
    assert.deepEqual(await tagsOf(secure, 'pause'), []);
  });

  it('a wrong password: 401, without printing it', async () => {
    const wrong = 'Not-The-Password-1';
    const r = await mirror([`${src.host}/pause:3.10`, `${secure.host}/pause`, '--ca-file', secure.certificates!.caFile, '--username', USER, '--password-stdin'], { input: wrong });
    assertOneLineError(r, /authentication failed \(401\) — check --username\/--password-stdin/);
    assert.ok(!r.stderr.includes(wrong) && !r.stdout.includes(wrong));
  });

  it('a destination that refuses pushes: 403, and no tag or manifest written', async () => {
    const proxy = await startProxy(dst.host, ({ method }) => (method === 'POST' || method === 'PUT' ? { status: 403, body: JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }) } : undefined));
    try {
      const r = await runCli(['mirror', `${src.host}/pause:3.10`, `${proxy.host}/readonly`, '--insecure-registry', `${src.host},${proxy.host}`]);
      assertOneLineError(r, new RegExp(`^error: mirror to ${proxy.host}/readonly: the account may not push to this repository \\(403: DENIED: requested access to the resource is denied\\) — log in: pass --username and --password-stdin, or docker login ${proxy.host}( \\(and \\d+ more failures?\\))?$`));
      assert.equal(proxy.count('PUT', /\/manifests\//), 0);
      assert.deepEqual(await tagsOf(dst, 'readonly'), []);
    } finally {
      await proxy.stop();
    }
  });

  it('an unreachable destination', async () => {
    const host = `127.0.0.1:${await freePort()}`;
    const r = await runCli(['mirror', `${src.host}/pause:3.10`, `${host}/pause`, '--insecure-registry', `${src.host},${host}`], { timeout: 60_000 });
    assertOneLineError(r, new RegExp(`^error: mirror to ${host}/pause: registry ${host} unreachable \\(connection refused\\) \\(5 attempts\\) — check that the registry runs and listens on ${host}$`));
  });

  it('a source blob whose content does not match its digest: nothing tagged, no manifest written', async () => {
    const config = built.images[2]!.config;
    const text = Buffer.from(config.bytes).toString('utf8');
    const corrupt = text.replace('arm64', 'arm65');
    assert.notEqual(corrupt, text);
    const proxy = await startProxy(src.host, ({ method, url }) => (method === 'GET' && url.endsWith(`/blobs/${config.descriptor.digest}`)
      ? { status: 200, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(Buffer.byteLength(corrupt)) }, body: corrupt }
      : undefined));
    try {
      const { r, requests } = await watched(dst, () => runCli(['mirror', `${proxy.host}/pause:3.10`, `${dst.host}/corrupt`, '--insecure-registry', `${proxy.host},${dst.host}`]));
      assertOneLineError(r, new RegExp(`^error: pull from ${proxy.host}/pause: blob ${config.descriptor.digest.slice(0, 19)} arrived as sha256:[0-9a-f]{12} \\(${config.descriptor.size} bytes\\) — the registry or a proxy changed the content; try again$`));
      assert.deepEqual(manifestPuts(requests), []);
      assert.equal(requests.filter((q) => q.url.includes(config.descriptor.digest.slice(7)) && q.method === 'PUT').length, 0, 'the corrupt blob was not uploaded');
      assert.deepEqual(await tagsOf(dst, 'corrupt'), []);
    } finally {
      await proxy.stop();
    }
  });

  it('a corrupt OCI layout: nothing tagged, no manifest written', async () => {
    const layout = path.join(work, 'corrupt-layout');
    await writeLayout(layout, built, '3.10');
    const layer = built.images[4]!.layers[0]!;
    const file = blobPath(layout, layer.descriptor.digest);
    const bytes = await readFile(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    await writeFile(file, bytes);
    const { r, requests } = await watched(dst, () => mirror([`oci:${layout}:3.10`, `${dst.host}/from-corrupt`]));
    assertOneLineError(r, new RegExp(`^error: oci:${layout}:3\\.10: blob ${layer.descriptor.digest.slice(0, 19)} is corrupt: its content hashes to sha256:[0-9a-f]{12} \\(${layer.descriptor.size} bytes, expected ${layer.descriptor.size}\\) — `));
    assert.deepEqual(manifestPuts(requests), []);
    assert.deepEqual(await tagsOf(dst, 'from-corrupt'), []);
  });

  const refusedBeforeAnyRequest: [string, string[], RegExp][] = [
    ['an upper-case repository', ['SRC/Pause:3.10', 'DST/pause'], /^error: invalid image reference "[^"]+\/Pause:3\.10": repository names must be lower-case — use HOST\[:PORT\]\/REPO/],
    ['a URL for a source', ['http://SRC/pause:3.10', 'DST/pause'], /^error: invalid image reference "http:\/\/[^"]+": leave out the URL scheme/],
    ['a digest on a destination', ['SRC/pause:3.10', `DST/pause@sha256:${'0'.repeat(64)}`], /^error: destination "[^"]+" names a digest — give HOST\/REPO or HOST\/REPO:TAG/],
    ['a short digest', ['SRC/pause@sha256:abc', 'DST/pause'], /^error: invalid image reference "[^"]+": "sha256:abc" is not a sha256 digest/],
    ['no destination', ['SRC/pause:3.10'], /^error: no destination for \S+ — name one or more destination repositories/],
    ['no tag', ['SRC/pause', 'DST/pause'], /^error: source \S+\/pause names no tag or digest — add :TAG or @sha256:…, or select tags/],
    ['a malformed platform', ['SRC/pause:3.10', 'DST/pause', '--platform', 'linux'], /^error: invalid platform "linux" — write OS\/ARCH\[\/VARIANT\]/],
    ['a bad range', ['SRC/pause', 'DST/pause', '--tags', '>=3.x.y.z'], /^error: invalid version range ">=3\.x\.y\.z" — e\.g\. ">=3\.9"/],
    ['a range with a tagged source', ['SRC/pause:3.10', 'DST/pause', '--tags', '>=3'], /^error: source \S+:3\.10 names a tag or digest, and tags are selected/],
    ['a bad --jobs', ['SRC/pause:3.10', 'DST/pause', '--jobs', '0'], /^error: --jobs 0 is not a number from 1 to 32/],
  ];
  // Side by side: none of them may send a request, so their windows on the log can overlap.
  describe('refused before any registry is asked', { concurrency: true }, () => {
    for (const [what, args, pattern] of refusedBeforeAnyRequest) {
      it(what, async () => {
        const { r, requests } = await watched(src, () => mirror(args.map((a) => a.replace('SRC', src.host).replace('DST', dst.host))));
        assertOneLineError(r, pattern);
        assert.deepEqual(requests, []);
      });
    }
  });

  it('a platform the image does not have, listing those it has', async () => {
    const { r, requests } = await watched(dst, () => mirror([`${src.host}/pause:3.10`, `${dst.host}/pause`, '--platform', 'linux/amd64,linux/mips64le']));
    assertOneLineError(r, new RegExp(`^error: platform linux/mips64le is not in ${src.host}/pause:3\\.10 — available: linux/amd64, linux/arm/v7, linux/arm64/v8, linux/ppc64le, linux/s390x$`));
    assert.deepEqual(requests, []);
  });

  it('a range that matches no tag', async () => {
    const r = await mirror([`${src.host}/pause`, `${dst.host}/pause`, '--tags', '>=4']);
    assertOneLineError(r, new RegExp(`^error: no tag of ${src.host}/pause is in the range ">=4" — its versions: 3\\.10$`));
  });

  it('a bad mirror file, naming the entry', async () => {
    const file = path.join(work, 'bad.yaml');
    await writeFile(file, `mirrors:\n  - source: ${src.host}/pause:3.10\n    destinations: [${dst.host}/a]\n  - source: ${src.host}/pause\n    tag: ">=3.9"\n    destinations: [${dst.host}/b]\n`);
    const r = await runCli(['mirror', '--file', file]);
    assertOneLineError(r, new RegExp(`^error: ${file} entry 2 \\(${src.host}/pause\\): unknown key "tag" — allowed: source, tags, platforms, destinations, verifyKeys$`));
    const json = path.join(work, 'bad.json');
    await writeFile(json, '{"mirrors": [{"source": 1}]}');
    assertOneLineError(await runCli(['mirror', '--file', json]), /^error: \S+bad\.json entry 1: "source" is missing or not a string/);
    assertOneLineError(await runCli(['mirror', '--file', path.join(work, 'missing.yaml')]), /^error: cannot read mirror file \S+missing\.yaml \(ENOENT\)/);
    assertOneLineError(await runCli(['mirror', '--file', file, `${src.host}/pause:3.10`]), /^error: --file takes no SRC or DST arguments/);
  });
});
