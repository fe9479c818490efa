/**
 * A publish sends each image's blobs as soon as its binary has passed its run, while the
 * other arches still compile, run and compress. What must hold regardless: a failure or an
 * interrupt anywhere leaves no tag (blobs may stay behind), no container, no process of
 * ours and no temporary directory; and a complete publish sends each blob once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { assertOneLineError } from '../support/assert.ts';
import { REPO_ROOT, runCli, startCli } from '../support/cli.ts';
import { waitFor } from '../support/emulate.ts';
import { ensureBuilder, leftoverContainers } from '../support/engines.ts';
import { type TestRegistry, skopeo, startRegistry } from '../support/registry.ts';

let dir: string;
let reg: TestRegistry;
const fixed = ['--version', '3.10', '--revision', 'overlap', '--engine', 'podman', '--no-cache'];

function publishArgs(name: string, extra: string[] = []): string[] {
  return ['publish', ...fixed, '--bin-dir', path.join(dir, name, 'bin'), '--output', path.join(dir, name, 'oci'), '--registry', `${reg.host}/overlap/${name}`, '--insecure-registry', reg.host, ...extra];
}

/** What a publish may leave in its bin dir: binaries, never a compile's work directory. */
async function workDirs(name: string): Promise<string[]> {
  return (await readdir(path.join(dir, name, 'bin')).catch(() => [] as string[])).filter((f) => f.startsWith('.'));
}

/** Processes still running one of this publish's binaries (natively or under qemu). */
async function running(name: string): Promise<string[]> {
  const r = await execa('pgrep', ['-af', path.join(dir, name, 'bin')], { reject: false });
  return r.stdout.split('\n').filter(Boolean);
}

async function tagDigest(name: string): Promise<string | undefined> {
  const r = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/overlap/${name}:3.10`]);
  return r.exitCode === 0 ? r.stdout.toString() : undefined;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pause-overlap-'));
  await ensureBuilder('podman');
  reg = await startRegistry();
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('publish while images are still being built', () => {
  it('sends every blob once, each before the manifests that name it, and tags last', async () => {
    const r = await runCli(publishArgs('whole', ['--json']));
    assert.equal(r.exitCode, 0, r.stderr);
    const requests = (await reg.requests()).filter((q) => q.url.includes('/overlap/whole/'));
    const uploads = requests.filter((q) => q.method === 'PUT' && q.url.includes('/blobs/uploads/'));
    const digests = uploads.map((q) => new URL(q.url, 'http://x').searchParams.get('digest'));
    assert.equal(new Set(digests).size, digests.length, 'a blob sent twice');
    // Five images (config and layer each) and the attestations' documents.
    assert.ok(uploads.length >= 10, `${uploads.length} uploads`);
    // Every manifest goes up after everything it names (blobs, or the manifests an index lists).
    const there = new Set<string>();
    for (const q of requests) {
      if (q.method !== 'PUT') continue;
      const blob = new URL(q.url, 'http://x').searchParams.get('digest');
      if (blob) there.add(blob);
      const ref = /\/manifests\/(sha256:[0-9a-f]{64})$/.exec(q.url)?.[1];
      if (!ref) continue;
      const doc = JSON.parse(await readFile(path.join(dir, 'whole', 'oci', 'blobs', 'sha256', ref.slice(7)), 'utf8')) as { config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] };
      for (const d of [doc.config, ...(doc.layers ?? []), ...(doc.manifests ?? [])]) if (d) assert.ok(there.has(d.digest), `${ref} went up before ${d.digest}`);
      there.add(ref);
    }
    const tag = requests.findIndex((q) => q.method === 'PUT' && q.url.endsWith('/manifests/3.10'));
    const images = requests.filter((q, i) => q.method === 'PUT' && q.url.includes('/manifests/sha256:') && i > tag);
    assert.ok(tag > 0);
    // After the version tag only the attestations (and their fallback tags) are written.
    assert.ok(images.length <= 11, `${images.length} manifests after the tag`);
    assert.equal(JSON.parse(r.stdout).digest, `sha256:${createHash('sha256').update((await tagDigest('whole'))!).digest('hex')}`);
    // A blob sent early is not asked for again by the push, and counts as uploaded by it.
    const heads = requests.filter((q) => q.method === 'HEAD' && q.url.includes('/blobs/')).map((q) => q.url);
    assert.equal(new Set(heads).size, heads.length, 'a blob asked for twice');
    const out = JSON.parse(r.stdout) as { blobs: { uploaded: number; skipped: number } };
    assert.deepEqual([out.blobs.uploaded, out.blobs.skipped], [10, 0]);
  });

  it('one arch failing its run fails the publish in one line: no tag, no container, no process, no work directory', async () => {
    // pause.c for every arch but s390x, whose binary exits at once: it compiles, and fails its run.
    const src = path.join(dir, 'src-s390x');
    await mkdir(src, { recursive: true });
    await copyFile(path.join(REPO_ROOT, 'build', 'pause', 'pause.c'), path.join(src, 'real.c'));
    await writeFile(path.join(src, 'pause.c'), '#if defined(__s390x__)\nint main(void) { return 0; }\n#else\n#include "real.c"\n#endif\n');
    const r = await runCli(publishArgs('failing', ['--source', path.join(src, 'pause.c')]));
    assertOneLineError(r, /^error: pause for s390x -v printed "" \(exit 0\), expected "pause\.c v3\.10-overlap"/);
    assert.equal(await tagDigest('failing'), undefined);
    assert.equal((await reg.requests()).filter((q) => q.url.includes('/overlap/failing/') && q.method === 'PUT' && q.url.includes('/manifests/')).length, 0);
    assert.deepEqual(await leftoverContainers('podman'), []);
    assert.deepEqual(await running('failing'), []);
    assert.deepEqual(await workDirs('failing'), []);
  });

  it('Ctrl-C once blobs are going up: either no tag, or a whole publish; nothing of ours left running', async () => {
    const cli = startCli(publishArgs('interrupted'), { cwd: REPO_ROOT });
    await waitFor('the first blob upload', async () => ((await reg.requests()).some((q) => q.url.includes('/overlap/interrupted/blobs/uploads/')) ? true : undefined), 120_000);
    cli.kill('SIGINT');
    const r = await cli;
    const held = await tagDigest('interrupted');
    if (r.exitCode === 130) {
      assert.match(String(r.stderr), /error: interrupted/);
      assert.equal(held, undefined, 'an interrupted publish left its tag');
    } else {
      // The interrupt came after the last write: the tag holds a whole index.
      assert.equal(r.exitCode, 0, String(r.stderr));
      for (const m of JSON.parse(held!).manifests as { digest: string }[]) {
        const image = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/overlap/interrupted@${m.digest}`]);
        assert.equal(image.exitCode, 0, image.stderr.toString());
      }
    }
    assert.deepEqual(await leftoverContainers('podman'), []);
    assert.deepEqual(await running('interrupted'), []);
    assert.deepEqual(await workDirs('interrupted'), []);
  });
});
