/**
 * The whole pipeline into a real distribution registry, read back by independent
 * clients: skopeo for the documents, podman for pulling and running, GNU tar and
 * qemu for every arch's layer.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { DEFAULT_ARCHES, platformFor } from '../../src/platforms.ts';
import { assertOneLineError } from '../support/assert.ts';
import { runCli } from '../support/cli.ts';
import { actionsStep } from '../support/actions.ts';
import { runner } from '../support/emulate.ts';
import { ensureBuilder } from '../support/engines.ts';
import { type TestRegistry, skopeo, startRegistry } from '../support/registry.ts';

let dir: string;
let plain: TestRegistry;
let secure: TestRegistry;
const USER = { username: 'releaser', password: 'correct horse battery staple' };
const fixed = ['--version', '3.10', '--revision', 'e2e', '--engine', 'podman'];
let published: { digest: string; images: { arch: string; platform: string; digest: string; size: number }[] };

function publishArgs(registry: TestRegistry, repo: string, extra: string[] = []): string[] {
  return ['publish', ...fixed, '--bin-dir', path.join(dir, 'bin'), '--output', path.join(dir, 'oci'), '--cache-dir', path.join(dir, 'cache'), '--registry', `${registry.host}/${repo}`, '--insecure-registry', registry.host, ...extra];
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pause-publish-'));
  await ensureBuilder('podman');
  plain = await startRegistry();
  secure = await startRegistry({ tls: true, htpasswd: USER });
});

after(async () => {
  await execa('podman', ['rm', '-f', 'pause-e2e'], { reject: false });
  await execa('podman', ['rmi', '-f', `${plain?.host}/k8s/pause:3.10`], { reject: false });
  await plain?.stop();
  await secure?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('publish to a plain registry', () => {
  it('pushes five arches and an index that skopeo reads back byte for byte', async () => {
    const r = await runCli(publishArgs(plain, 'k8s/pause', ['--json']));
    assert.equal(r.exitCode, 0, r.stderr);
    published = JSON.parse(r.stdout);
    assert.match(published.digest, /^sha256:[0-9a-f]{64}$/);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/k8s/pause:3.10`]);
    assert.equal(raw.exitCode, 0, raw.stderr);
    assert.equal(sha256(raw.stdout), published.digest);
    const index = JSON.parse(raw.stdout.toString());
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(
      index.manifests.map((m: { platform: { architecture: string; variant?: string } }) => `${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}`),
      ['amd64', 'arm/v7', 'arm64/v8', 'ppc64le', 's390x'],
    );
    assert.equal(index.annotations['org.opencontainers.image.version'], '3.10');
  });

  it('skopeo copy --all of it succeeds', async () => {
    const r = await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${plain.host}/k8s/pause:3.10`, `oci:${dir}/copy:3.10`]);
    assert.equal(r.exitCode, 0, r.stderr);
  });

  it('every layer holds the same /pause as bin/, and it runs and prints the version', async () => {
    for (const arch of DEFAULT_ARCHES) {
      const platform = platformFor(arch);
      const out = path.join(dir, `layer-${arch}`);
      const copy = await skopeo(['copy', '--src-tls-verify=false', '--override-arch', platform.oci.architecture, ...(platform.oci.variant ? ['--override-variant', platform.oci.variant] : []), `docker://${plain.host}/k8s/pause:3.10`, `dir:${out}`]);
      assert.equal(copy.exitCode, 0, copy.stderr);
      const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
      assert.equal(manifest.layers.length, 1);
      const layer = path.join(out, manifest.layers[0].digest.replace('sha256:', ''));
      await execa('tar', ['-xzf', layer, '-C', out]);
      const pulled = await readFile(path.join(out, 'pause'));
      assert.deepEqual(pulled, await readFile(path.join(dir, 'bin', `pause-linux-${arch}`)), `${arch}: /pause differs from bin/`);
      const listing = await execa('tar', ['-tvzf', layer]);
      assert.match(listing.stdout, /^-rwxr-xr-x 0\/0 .* pause$/m);
      const [cmd, ...args] = runner(platform, path.join(out, 'pause'), ['-v']);
      const v = await execa(cmd!, args);
      assert.equal(v.stdout, 'pause.c v3.10-e2e');
    }
  });

  it('podman pulls the amd64 image and runs it as PID 1; podman stop ends it at once with exit 0', async () => {
    const ref = `${plain.host}/k8s/pause:3.10`;
    const pull = await execa('podman', ['pull', '--tls-verify=false', '--arch', 'amd64', ref], { reject: false });
    assert.equal(pull.exitCode, 0, pull.stderr);
    await execa('podman', ['run', '-d', '--name', 'pause-e2e', '--network', 'none', ref]);
    const pid = Number((await execa('podman', ['inspect', '--format', '{{.State.Pid}}', 'pause-e2e'])).stdout);
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    assert.match(status, /^NSpid:\s+\d+\s+1$/m, 'pause is not PID 1 of its namespace');
    assert.match(status, /^Uid:\s+65535\s/m, 'USER 65535 not applied');
    const started = Date.now();
    await execa('podman', ['stop', '-t', '10', 'pause-e2e']);
    const stopSeconds = (Date.now() - started) / 1000;
    const exit = (await execa('podman', ['inspect', '--format', '{{.State.ExitCode}}', 'pause-e2e'])).stdout;
    assert.equal(exit, '0');
    // Killed after the 10 s timeout it would be 137 and take 10 s: SIGTERM was handled.
    assert.ok(stopSeconds < 9, `podman stop took ${stopSeconds}s`);
  });

  it('publishing the same commit again compiles nothing and uploads nothing', async () => {
    const before = await plain.count('POST', /\/blobs\/uploads\//);
    const puts = await plain.count('PUT', /./);
    const r = await runCli(publishArgs(plain, 'k8s/pause'));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /unchanged {2}every tag already held this digest/);
    // The publish record of the first run, proven by the registry (publish-record.test.ts).
    assert.match(r.stderr, /published from these same inputs; nothing to build or push/);
    assert.doesNotMatch(r.stderr, /Compiling/, 'an arch was compiled again');
    assert.equal(await plain.count('POST', /\/blobs\/uploads\//), before);
    assert.equal(await plain.count('PUT', /./), puts);
  });

  it('without the record (--no-cache): the same result, nothing uploaded either', async () => {
    const before = await plain.count('POST', /\/blobs\/uploads\//);
    const puts = await plain.count('PUT', /./);
    const r = await runCli(publishArgs(plain, 'k8s/pause', ['--no-cache']));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /unchanged {2}every tag already held this digest/);
    assert.match(r.stdout, new RegExp(`^index +${published.digest}$`, 'm'));
    assert.equal(await plain.count('POST', /\/blobs\/uploads\//), before);
    assert.equal(await plain.count('PUT', /./), puts);
  });

  it('a tag that holds another digest is refused unless --force', async () => {
    const other = [...publishArgs(plain, 'k8s/pause'), '--revision', 'other'];
    const r = await runCli(other);
    assertOneLineError(r, /^error: push to 127\.0\.0\.1:\d+\/k8s\/pause: tag 3\.10 already holds sha256:[0-9a-f]{64} \(not sha256:[0-9a-f]{64}\) — pass --force to overwrite$/);
    const still = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/k8s/pause:3.10`]);
    assert.equal(sha256(still.stdout), published.digest);
    const forced = await runCli([...other, '--force', '--json']);
    assert.equal(forced.exitCode, 0, forced.stderr);
    const moved = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/k8s/pause:3.10`]);
    assert.equal(sha256(moved.stdout), JSON.parse(forced.stdout).digest);
    assert.notEqual(JSON.parse(forced.stdout).digest, published.digest);
  });

  it('per-arch pushes by digest joined by index give the same index digest as one publish', async () => {
    const digests: string[] = [];
    for (const arch of DEFAULT_ARCHES) {
      const r = await runCli([...publishArgs(plain, 'sharded/pause'), '--arch', arch, '--by-digest', '-q']);
      assert.equal(r.exitCode, 0, r.stderr);
      const [digest, platform] = r.stdout.trim().split('\t');
      assert.equal(digest, published.images.find((i) => i.arch === arch)!.digest);
      assert.equal(platform, published.images.find((i) => i.arch === arch)!.platform);
      digests.push(digest!);
    }
    // Nothing is tagged until the join.
    const none = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/sharded/pause:3.10`]);
    assert.notEqual(none.exitCode, 0);
    const joined = await runCli(['index', '--version', '3.10', '--revision', 'e2e', '--registry', `${plain.host}/sharded/pause`, '--insecure-registry', plain.host, '--json', ...digests.reverse().flatMap((d) => ['--from', d])]);
    assert.equal(joined.exitCode, 0, joined.stderr);
    assert.equal(JSON.parse(joined.stdout).digest, published.digest);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/sharded/pause:3.10`]);
    assert.equal(sha256(raw.stdout), published.digest);
  });
});

describe('publish in GitHub Actions (simulated runner)', () => {
  it('sets the digest, tags, version and image outputs and writes a summary row per arch', async () => {
    const step = await actionsStep({ GITHUB_REF: 'refs/tags/v3.10', GITHUB_REF_NAME: 'v3.10' });
    try {
      const r = await runCli(publishArgs(plain, 'actions/pause', ['--json']), { env: step.env });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).digest, published.digest, 'stdout is still plain JSON');
      const out = await step.outputs();
      assert.equal(out.digest, published.digest);
      assert.equal(out.version, '3.10');
      assert.equal(out.image, `${plain.host}/actions/pause`);
      assert.deepEqual(out.tags!.split('\n'), [`${plain.host}/actions/pause:3.10`]);
      const summary = await step.summary();
      for (const image of published.images) {
        assert.match(summary, new RegExp(`\\| ${image.platform.replace(/\//g, '\\/')} \\| \`?${image.digest}`), `no row for ${image.platform}`);
      }
      assert.match(r.stderr, /^::group::/m, 'no log groups');
    } finally {
      await step.remove();
    }
  });
});

describe('publish to a TLS registry with htpasswd auth', () => {
  const secureArgs = (extra: string[]) => ['publish', ...fixed, '--bin-dir', path.join(dir, 'bin'), '--output', path.join(dir, 'oci-secure'), '--registry', `${secure.host}/k8s/pause`, ...extra];

  it('works with --ca-file and --username/--password-stdin', async () => {
    const r = await runCli(secureArgs(['--ca-file', secure.certificates!.caFile, '--username', USER.username, '--password-stdin', '--json']), { input: USER.password });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).digest, published.digest);
    const raw = await skopeo(['inspect', '--raw', '--cert-dir', secure.certificates!.caDir, '--creds', `${USER.username}:${USER.password}`, `docker://${secure.host}/k8s/pause:3.10`]);
    assert.equal(sha256(raw.stdout), published.digest);
    assert.ok(!r.stderr.includes(USER.password) && !r.stdout.includes(USER.password));
  });

  it('a wrong password is a one-line 401 error that does not show the password', async () => {
    const wrong = 'not-the-password-9f2c';
    const args = secureArgs(['--ca-file', secure.certificates!.caFile, '--username', USER.username, '--password-stdin', '--tag', 'never']);
    const r = await runCli(args, { input: wrong });
    assertOneLineError(r, /authentication failed \(401\)/);
    // --debug prints every request and the stack: still no secret.
    const debug = await runCli(['--debug', ...args], { input: wrong });
    assert.notEqual(debug.exitCode, 0);
    for (const out of [r.stdout, r.stderr, debug.stdout, debug.stderr]) {
      assert.ok(!out.includes(wrong), 'password printed');
      assert.ok(!out.includes(Buffer.from(`${USER.username}:${wrong}`).toString('base64')), 'basic credentials printed');
    }
    const tag = await skopeo(['inspect', '--raw', '--cert-dir', secure.certificates!.caDir, '--creds', `${USER.username}:${USER.password}`, `docker://${secure.host}/k8s/pause:never`]);
    assert.notEqual(tag.exitCode, 0, 'tag was written');
  });

  it('an unknown CA is refused with a hint to pass --ca-file', async () => {
    const r = await runCli(secureArgs(['--username', USER.username, '--password-stdin']), { input: USER.password });
    assertOneLineError(r, /TLS certificate .* not trusted.*--ca-file/);
  });
});

describe('bad input to publish', () => {
  it('a malformed --registry names the problem', async () => {
    const r = await runCli(['publish', ...fixed, '--registry', 'Bad Host//pause', '--bin-dir', path.join(dir, 'bin'), '--output', path.join(dir, 'oci')]);
    assertOneLineError(r, /^error: .*(invalid|malformed).*Bad Host/i);
  });

  it('a registry that is down is reported as unreachable, after the build, with nothing left running', async () => {
    const down = await startRegistry();
    const host = down.host;
    await down.stop();
    const r = await runCli(['publish', ...fixed, '--bin-dir', path.join(dir, 'bin'), '--output', path.join(dir, 'oci'), '--registry', `${host}/pause`, '--insecure-registry', host]);
    assertOneLineError(r, /unreachable/);
  });

  it('an unsupported Dockerfile line is refused before anything is compiled or pushed', async () => {
    const dockerfile = path.join(dir, 'Dockerfile.bad');
    await writeFile(dockerfile, 'FROM scratch\nARG ARCH\nADD bin/pause-linux-${ARCH} /pause\nRUN echo hi\n');
    const before = await plain.count('PUT', /./);
    const r = await runCli(publishArgs(plain, 'bad/pause', ['--dockerfile', dockerfile]));
    assertOneLineError(r, /Dockerfile\.bad:4: RUN is not supported/);
    assert.equal(await plain.count('PUT', /./), before);
  });
});
