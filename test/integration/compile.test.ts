/**
 * The compile path through every toolchain: podman, a private dockerd, and the host's
 * cross compilers. The five binaries from each must be byte-identical and valid ELF.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { elfProblems, parseElf } from '../../src/elf.ts';
import { DEFAULT_ARCHES, platformFor } from '../../src/platforms.ts';
import { runCli } from '../support/cli.ts';
import { type Docker, leftoverContainers, startEngines } from '../support/engines.ts';

let dir: string;
let docker: Docker;
const hashes = new Map<string, Map<string, string>>();

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pause-compile-'));
  docker = await startEngines();
});

after(async () => {
  await docker?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('pause-build bin', () => {
  for (const engine of ['podman', 'docker', 'host'] as const) {
    it(`builds all five arches with ${engine}`, async () => {
      const binDir = path.join(dir, engine);
      const r = await runCli(['bin', '--engine', engine, '--no-cache', '--version', '3.10', '--revision', 'same', '--bin-dir', binDir], { env: docker.env });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`Toolchain: ${engine === 'host' ? 'host cross compilers' : engine}`));
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 5);
      const byArch = new Map<string, string>();
      for (const arch of DEFAULT_ARCHES) {
        const bytes = await readFile(path.join(binDir, `pause-linux-${arch}`));
        assert.deepEqual(elfProblems(parseElf(bytes), platformFor(arch)), []);
        const sha = createHash('sha256').update(bytes).digest('hex');
        assert.ok(lines.some((l) => l.endsWith(`sha256:${sha}`) && l.includes(`pause-linux-${arch}`)), `stdout lacks ${arch}: ${r.stdout}`);
        byArch.set(arch, sha);
      }
      // Only the five binaries: no temporary directory left behind.
      assert.deepEqual((await readdir(binDir)).sort(), DEFAULT_ARCHES.map((a) => `pause-linux-${a}`).sort());
      hashes.set(engine, byArch);
    });
  }

  it('podman, docker and host give byte-identical binaries', () => {
    assert.equal(hashes.size, 3, 'an engine build above failed');
    for (const arch of DEFAULT_ARCHES) {
      const seen = new Set([...hashes.values()].map((m) => m.get(arch)));
      assert.equal(seen.size, 1, `${arch} differs between engines: ${[...hashes].map(([e, m]) => `${e}=${m.get(arch)}`).join(' ')}`);
    }
  });

  it('leaves no container behind in either engine', async () => {
    assert.deepEqual(await leftoverContainers('podman'), []);
    assert.deepEqual(await leftoverContainers('docker', docker.env), []);
  });

  it('builds the opt-in riscv64 and runs it under qemu', async () => {
    const binDir = path.join(dir, 'riscv64');
    const r = await runCli(['bin', '--engine', 'podman', '--arch', 'riscv64', '--version', '3.10', '--revision', 'rv', '--bin-dir', binDir]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /riscv64: .* ELF ok.*, runs \(qemu\)/);
    const bytes = await readFile(path.join(binDir, 'pause-linux-riscv64'));
    assert.deepEqual(elfProblems(parseElf(bytes), platformFor('riscv64')), []);
  });

  it('reuses the builder image while its Dockerfile is unchanged', async () => {
    const r = await runCli(['builder', '--engine', 'podman', '--base', 'localhost/debian:bookworm-slim']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /is up to date/);
    assert.match(r.stdout, /^localhost\/pause-build\/cross:[0-9a-f]{16}$/);
  });
});
