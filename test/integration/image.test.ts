/**
 * `pause-build image` end to end with the host cross compilers, checked by other people's
 * code: skopeo reads the layout, podman builds the same Dockerfile, and podman runs the
 * image we wrote.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { readLayout } from '../../src/oci/layout.ts';
import { gunzip, readTar } from '../../src/oci/tar.ts';
import { REPO_ROOT, runCli } from '../support/cli.ts';

const TAG = (await readFile(path.join(REPO_ROOT, 'VERSION'), 'utf8')).trim();
const PODMAN_IMAGE = 'localhost/pause-build-test/oci-image';
const PODMAN_RUN_IMAGE = 'localhost/pause-build-test/oci-run';

interface Summary {
  index: { digest: string; mediaType: string; size: number };
  reference: string;
  layout: string;
  tag: string;
  created: string;
  images: { arch: string; platform: string; manifest: string; config: string; layers: { digest: string; size: number; diffId: string }[] }[];
}

async function tool(cmd: string, args: string[], opts: { cwd?: string } = {}) {
  const r = await execa(cmd, args, { reject: false, stdin: 'ignore', ...opts });
  if ((r as { code?: string }).code === 'ENOENT') throw new Error(`${cmd} is not installed: run build/setup.sh`);
  assert.equal(r.exitCode, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

describe('pause-build image', () => {
  let tmp: string;
  let first: Summary;
  let firstDir: string;

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'wt-oci-it-'));
    firstDir = path.join(tmp, 'a');
    await mkdir(firstDir);
    const r = await runCli(['image', '--engine', 'host', '--root', REPO_ROOT, '--json'], { cwd: firstDir });
    assert.equal(r.exitCode, 0, r.stderr);
    first = JSON.parse(r.stdout) as Summary;
  });
  after(async () => {
    await execa('podman', ['rmi', '-f', PODMAN_IMAGE, PODMAN_RUN_IMAGE], { reject: false });
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('writes the layout to _output/oci under the version tag and says so', async () => {
    assert.equal(first.reference, `oci:_output/oci:${TAG}`);
    assert.equal(first.layout, path.join(firstDir, '_output', 'oci'));
    assert.deepEqual(
      first.images.map((i) => [i.arch, i.platform]),
      [['amd64', 'linux/amd64'], ['arm', 'linux/arm/v7'], ['arm64', 'linux/arm64/v8'], ['ppc64le', 'linux/ppc64le'], ['s390x', 'linux/s390x']],
    );
    const commitTime = Number(await tool('git', ['log', '-1', '--format=%ct'], { cwd: REPO_ROOT }));
    assert.equal(first.created, new Date(commitTime * 1000).toISOString().replace('.000Z', 'Z'), 'dated by the commit when SOURCE_DATE_EPOCH is unset');
    const read = await readLayout(first.layout, TAG);
    assert.equal(read.index.descriptor.digest, first.index.digest);
    assert.deepEqual(read.images.map((i) => i.manifest.descriptor.digest), first.images.map((i) => i.manifest));
  });

  it('is read by skopeo: an OCI index of five platforms with arm v7, every arch inspectable', async () => {
    const ref = `oci:${first.layout}:${TAG}`;
    const raw = await execa('skopeo', ['inspect', '--raw', ref], { encoding: 'buffer', stripFinalNewline: false });
    assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, first.index.digest, 'skopeo sees exactly our bytes');
    const index = JSON.parse(Buffer.from(raw.stdout).toString('utf8'));
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(index.manifests.length, 5);
    assert.deepEqual(index.manifests.find((m: { platform: { architecture: string } }) => m.platform.architecture === 'arm').platform, { architecture: 'arm', os: 'linux', variant: 'v7' });
    assert.equal(index.annotations['org.opencontainers.image.version'], TAG);

    const arm = first.images.find((i) => i.arch === 'arm')!;
    const inspected = JSON.parse(await tool('skopeo', ['inspect', '--override-arch', 'arm', '--override-variant', 'v7', ref]));
    assert.deepEqual([inspected.Architecture, inspected.Os, inspected.Layers], ['arm', 'linux', [arm.layers[0]!.digest]]);
    const config = JSON.parse(await tool('skopeo', ['inspect', '--config', '--override-arch', 'arm', '--override-variant', 'v7', ref]));
    assert.deepEqual([config.variant, config.config.User, config.config.Entrypoint, config.rootfs.diff_ids], ['v7', '65535:65535', ['/pause'], [arm.layers[0]!.diffId]]);
  });

  it('is reproducible: another build elsewhere, later, gives the same digests', async () => {
    await sleep(1100);
    const secondDir = path.join(tmp, 'b');
    await mkdir(secondDir);
    const r = await runCli(['image', '--engine', 'host', '--root', REPO_ROOT, '--output', 'layout'], { cwd: secondDir });
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], `index   ${first.index.digest}`);
    assert.equal(lines[1], `layout  oci:layout:${TAG}`);
    assert.match(lines[3]!, /^PLATFORM\s+MANIFEST\s+LAYER \(gzip\)$/);
    for (const image of first.images) {
      assert.ok(lines.some((l) => l.split(/\s+/).join(' ') === `${image.platform} ${image.manifest} ${image.layers[0]!.size} B`), `row for ${image.platform} in:\n${r.stdout}`);
    }
    assert.deepEqual(await readFile(path.join(secondDir, 'layout', 'index.json')), await readFile(path.join(first.layout, 'index.json')));
  });

  it('matches podman build of the same Dockerfile: config fields and the layer diff_id', async () => {
    const amd64 = first.images.find((i) => i.arch === 'amd64')!;
    const context = path.join(tmp, 'podman-context');
    await mkdir(path.join(context, 'bin'), { recursive: true });
    await copyFile(path.join(firstDir, 'bin', 'pause-linux-amd64'), path.join(context, 'bin', 'pause-linux-amd64'));
    assert.equal((await stat(path.join(context, 'bin', 'pause-linux-amd64'))).mode & 0o777, 0o755);
    const epoch = String(Date.parse(first.created) / 1000);
    await tool('podman', ['build', '-q', '--pull=never', '--timestamp', epoch, '--build-arg', 'ARCH=amd64', '-f', path.join(REPO_ROOT, 'Dockerfile'), '-t', PODMAN_IMAGE, context]);
    const theirs = JSON.parse(await tool('podman', ['image', 'inspect', PODMAN_IMAGE]))[0];
    const layout = await readLayout(first.layout, TAG);
    const ours = JSON.parse(Buffer.from(layout.images.find((i) => i.arch === 'amd64')!.config.bytes).toString('utf8'));
    assert.deepEqual(
      [theirs.Config.User, theirs.Config.Entrypoint, theirs.Architecture, theirs.Os],
      [ours.config.User, ours.config.Entrypoint, ours.architecture, ours.os],
    );
    // Both tars hold the one file /pause with the same header bytes (Go archive/tar's
    // format, mtime from --timestamp), so the uncompressed layers are identical.
    assert.deepEqual(theirs.RootFS.Layers, [amd64.layers[0]!.diffId]);
    const entries = readTar(gunzip(layout.images.find((i) => i.arch === 'amd64')!.layers[0]!.bytes));
    assert.deepEqual(entries.map((e) => [e.path, e.mode.toString(8), e.uid, e.gid]), [['pause', '100755', 0, 0]]);
  });

  it('runs under podman (config user 65535:65535) and prints the version compiled in', async () => {
    // skopeo picks the host's platform (amd64) from the index, as podman pull would.
    await tool('skopeo', ['copy', '-q', `oci:${first.layout}:${TAG}`, `containers-storage:${PODMAN_RUN_IMAGE}`]);
    const out = await tool('podman', ['run', '--rm', '--network', 'none', PODMAN_RUN_IMAGE, '-v']);
    const revision = await tool('git', ['describe', '--contains', '--always', '--match=v*'], { cwd: REPO_ROOT });
    assert.equal(out.trim(), `pause.c v${TAG}-${revision}`);
    const user = await tool('podman', ['image', 'inspect', '--format', '{{.Config.User}} {{.Architecture}}', PODMAN_RUN_IMAGE]);
    assert.equal(user, '65535:65535 amd64');
  });

  it('refuses an unsupported Dockerfile before compiling, in one line', async () => {
    const dir = path.join(tmp, 'bad');
    await mkdir(dir);
    const dockerfile = path.join(dir, 'Dockerfile');
    await execa('sh', ['-c', `printf 'FROM scratch\\nRUN make\\n' > ${dockerfile}`]);
    const r = await runCli(['image', '--engine', 'host', '--root', REPO_ROOT, '--dockerfile', 'Dockerfile'], { cwd: dir });
    assert.equal(r.exitCode, 1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.deepEqual(errors.map((l) => l.replace(/ — .*/, '')), ['error: Dockerfile:2: RUN is not supported']);
    await assert.rejects(stat(path.join(dir, 'bin')), { code: 'ENOENT' }, 'nothing compiled');
  });
});
