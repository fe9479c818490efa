/**
 * The SBOM's libc and compiler versions, read in the builder image: in the compilers' own
 * container when the compile runs, in a container of their own when every arch came from
 * the compile cache, and from the components cache when that has them. A podman shim
 * first on PATH logs every `podman run` this CLI starts.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { runCli } from '../support/cli.ts';
import { ensureBuilder, leftoverContainers } from '../support/engines.ts';

let dir: string;
let image: string;
let libc: string;

async function podmanRuns(log: string): Promise<string[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.startsWith('run '));
}

async function build(name: string, extra: string[]): Promise<{ sbom: string[]; runs: string[] }> {
  const log = path.join(dir, `${name}.log`);
  const real = (await execa('sh', ['-c', 'command -v podman'])).stdout.trim();
  const shim = path.join(dir, `${name}-shim`);
  await mkdir(shim, { recursive: true });
  await writeFile(path.join(shim, 'podman'), `#!/bin/sh\nprintf '%s\\n' "$*" >>'${log}'\nexec '${real}' "$@"\n`);
  await chmod(path.join(shim, 'podman'), 0o755);
  const r = await runCli(
    ['image', '--version', '3.10', '--revision', 'components', '--engine', 'podman', '--arch', 'arm', '--no-emulation', '--bin-dir', path.join(dir, 'ctx', 'bin'), '--output', path.join(dir, `oci-${name}`), '--json', ...extra],
    { env: { PATH: `${shim}${path.delimiter}${process.env.PATH ?? ''}`, SOURCE_DATE_EPOCH: '1700000000' } },
  );
  assert.equal(r.exitCode, 0, r.stderr);
  return { sbom: (JSON.parse(r.stdout) as { images: { sbom: string[] }[] }).images[0]!.sbom, runs: await podmanRuns(log) };
}

describe('toolchain versions for the SBOM', () => {
  before(async () => {
    dir = await mkdtemp('/tmp/wt-components-');
    image = await ensureBuilder('podman');
    libc = (await execa('podman', ['run', '--rm', '--network', 'none', '--entrypoint', 'dpkg-query', image, '-W', '-f=${Version}', 'libc6-dev-armhf-cross'])).stdout;
    assert.match(libc, /^\d/);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('are read in the compilers\' container when the compile runs: one container, not two', async () => {
    const { sbom, runs } = await build('no-cache', ['--no-cache']);
    assert.ok(sbom.includes(`libc6-dev-armhf-cross ${libc} (LIBRARY)`), sbom.join('\n'));
    assert.equal(runs.length, 1, runs.join('\n'));
    assert.match(runs[0]!, /--label io\.pause-build\.role=compile/);
  });

  it('are kept per builder image: from the compile, then from the cache; a compile from the cache with none kept asks a container of their own', async () => {
    const cache = path.join(dir, 'cache');
    const first = await build('first', ['--cache-dir', cache]);
    assert.equal(first.runs.length, 1, first.runs.join('\n'));
    assert.ok(first.sbom.includes(`libc6-dev-armhf-cross ${libc} (LIBRARY)`), first.sbom.join('\n'));
    const again = await build('again', ['--cache-dir', cache]);
    assert.deepEqual(again.runs, []);
    assert.deepEqual(again.sbom, first.sbom);
    await rm(path.join(cache, 'components'), { recursive: true, force: true });
    const alone = await build('alone', ['--cache-dir', cache]);
    assert.equal(alone.runs.length, 1, alone.runs.join('\n'));
    assert.doesNotMatch(alone.runs[0]!, /io\.pause-build\.role=compile/);
    assert.deepEqual(alone.sbom, first.sbom);
  });

  it('leaves no container behind', async () => {
    assert.deepEqual(await leftoverContainers('podman'), []);
  });
});
