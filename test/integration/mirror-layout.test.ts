/**
 * OCI layouts on both sides of `mirror`, against a real registry and skopeo: a registry
 * image mirrored to `oci:DIR` holds the same bytes skopeo writes, the layout mirrored back
 * keeps the digest, two writers to one layout lose no tag, and hostile layouts (a blob that
 * is a symlink out, a FIFO, a device, a sparse file larger than its descriptor) are refused
 * in one line with nothing outside the layout opened and nothing tagged.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { blobPath } from '../../src/oci/layout.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { assertOneLineError } from '../support/assert.ts';
import { REPO_ROOT, runCli } from '../support/cli.ts';
import { FIVE_ARCHES, makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, skopeo, startRegistry } from '../support/registry.ts';
import { walkRepository } from '../support/walk.ts';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function blobFiles(dir: string): Promise<Map<string, string>> {
  const names = await readdir(path.join(dir, 'blobs', 'sha256'));
  const out = new Map<string, string>();
  for (const n of names) out.set(n, sha256(await readFile(path.join(dir, 'blobs', 'sha256', n))));
  return out;
}

type IndexEntry = { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
async function entries(dir: string): Promise<IndexEntry[]> {
  return (JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: IndexEntry[] }).manifests;
}

describe('mirror with OCI layouts', () => {
  let reg: TestRegistry;
  let work: string;
  const built = makeIndex(FIVE_ARCHES, 'layouts');
  const digest = built.index.descriptor.digest;
  const mirror = (args: string[]) => runCli(['mirror', ...args, '--insecure-registry', reg.host, '-q'], { timeout: 60_000 });

  before(async () => {
    reg = await startRegistry();
    work = await mkdtemp('/tmp/engine-mirror-layout-');
    await publishIndex(new RegistryClient({ insecure: [reg.host] }), { registry: reg.host, repository: 'src/pause' }, built, { tags: ['3.10'] });
  });
  after(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('registry → oci:DIR gives the bytes skopeo writes; oci:DIR → registry keeps the digest', async () => {
    const ours = path.join(work, 'ours');
    const theirs = path.join(work, 'theirs');
    const r = await mirror([`${reg.host}/src/pause:3.10`, `oci:${ours}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const s = await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${reg.host}/src/pause:3.10`, `oci:${theirs}:3.10`]);
    assert.equal(s.exitCode, 0, s.stderr);
    assert.deepEqual(await blobFiles(ours), await blobFiles(theirs), 'the same blob files with the same content');
    assert.equal((await blobFiles(ours)).size, 1 + 5 * 3);
    const pick = (e: IndexEntry) => [e.mediaType, e.digest, e.size, e.annotations?.['org.opencontainers.image.ref.name']];
    assert.deepEqual((await entries(ours)).map(pick), (await entries(theirs)).map(pick));
    assert.deepEqual((await entries(ours)).map(pick), [[built.index.descriptor.mediaType, digest, built.index.descriptor.size, '3.10']]);
    // skopeo reads what we wrote.
    const inspect = await skopeo(['inspect', '--raw', `oci:${ours}:3.10`]);
    assert.equal(inspect.exitCode, 0, inspect.stderr);
    assert.equal(sha256(inspect.stdout), digest);

    // Again: nothing to write.
    const again = await runCli(['mirror', `${reg.host}/src/pause:3.10`, `oci:${ours}`, '--insecure-registry', reg.host]);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.match(again.stdout, /already there; tag 3\.10 unchanged/);

    const back = await mirror([`oci:${ours}:3.10`, `${reg.host}/back/pause`]);
    assert.equal(back.exitCode, 0, back.stderr);
    const walked = await walkRepository(reg.host, 'back/pause');
    assert.deepEqual(walked.map((w) => [w.tag, w.digest]), [['3.10', digest]]);
    assert.equal(walked[0]!.digests.length, 1 + 5 * 3);
  });

  it('two writers to one layout at once lose no tag (the layout lock)', async () => {
    const dir = path.join(work, 'shared');
    const [a, b] = await Promise.all([
      mirror([`${reg.host}/src/pause:3.10`, `oci:${dir}:a`]),
      mirror([`${reg.host}/src/pause:3.10`, `oci:${dir}:b`]),
    ]);
    assert.equal(a.exitCode, 0, a.stderr);
    assert.equal(b.exitCode, 0, b.stderr);
    assert.deepEqual((await entries(dir)).map((e) => e.annotations?.['org.opencontainers.image.ref.name']).sort(), ['a', 'b']);
    assert.deepEqual(await readdir(dir).then((n) => n.filter((x) => x.startsWith('.'))), [], 'no lock or temp file left');
  });

  describe('hostile layouts', () => {
    const layer = built.images[2]!.layers[0]!.descriptor;
    const outside = () => path.join(work, 'outside-secret');
    const cases: [string, (file: string) => Promise<void>, RegExp][] = [
      ['a blob that is a symlink out of the layout', async (file) => {
        await unlink(file);
        await symlink(outside(), file);
      }, /is a symbolic link; it was not followed/],
      ['a blob that is a FIFO', async (file) => {
        await unlink(file);
        await execa('mkfifo', [file]);
      }, /is not a regular file \(a FIFO\)/],
      ['a blob that is a device like /dev/zero', async (file) => {
        await unlink(file);
        await execa('mknod', [file, 'c', '1', '5']);
      }, /is not a regular file \(a device\)/],
      ['a sparse blob larger than its descriptor', async (file) => {
        await truncate(file, 8 * 1024 * 1024 * 1024);
      }, /is corrupt \(8589934592 bytes, expected \d+ bytes\)/],
    ];
    for (const [name, spoil, error] of cases) {
      it(`${name}: refused in one line, nothing outside opened, nothing tagged`, async () => {
        const dir = path.join(work, `hostile-${name.replace(/\W+/g, '-')}`);
        const made = await mirror([`${reg.host}/src/pause:3.10`, `oci:${dir}`]);
        assert.equal(made.exitCode, 0, made.stderr);
        await writeFile(outside(), `outside the layout ${name}`);
        await spoil(blobPath(dir, layer.digest));
        const repo = `hostile/${name.replace(/\W+/g, '-').toLowerCase()}`;
        const trace = path.join(work, `trace-${repo.replace(/\//g, '-')}`);
        const started = Date.now();
        const r = await execa('strace', ['-f', '-qq', '-e', 'trace=open,openat,openat2', '-o', trace, process.execPath, '--import', path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs'), path.join(REPO_ROOT, 'src', 'cli.ts'),
          'mirror', `oci:${dir}:3.10`, `${reg.host}/${repo}`, '--insecure-registry', reg.host, '-q'], { reject: false, timeout: 60_000, env: { CI: 'true' }, stdin: 'ignore' });
        const result = { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
        assertOneLineError(result, new RegExp(`^error: blob ${layer.digest} in ${dir} ${error.source}`));
        assert.ok(Date.now() - started < 30_000, 'bounded time');
        const opened = await readFile(trace, 'utf8');
        assert.doesNotMatch(opened, new RegExp(outside().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the outside file was opened');
        assert.ok(!result.stderr.includes(sha256(await readFile(outside()))), 'the outside file\'s digest was printed');
        assert.deepEqual(await walkRepository(reg.host, repo), [], 'nothing tagged');
      });
    }
  });
});
