/** Bad input to builder/bin: a clear one-line error, a non-zero exit, and nothing left half-done. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, runCli, startCli } from '../support/cli.ts';
import { assertOneLineError } from '../support/assert.ts';
import { waitFor } from '../support/emulate.ts';
import { type Docker, leftoverContainers, startEngines } from '../support/engines.ts';

let dir: string;
let docker: Docker;
const fixed = ['--version', '3.10', '--revision', 'test', '--no-cache'];

async function listing(d: string): Promise<string[]> {
  return (await readdir(d).catch(() => [] as string[])).sort();
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pause-build-errors-'));
  docker = await startEngines();
});

after(async () => {
  await docker?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('bad input to bin', () => {
  it('an unknown arch lists the supported ones', async () => {
    const r = await runCli(['bin', '--arch', 'amd64,mips', '--engine', 'host', ...fixed]);
    assertOneLineError(r, /^error: unknown arch "mips" — supported: amd64, arm, arm64, ppc64le, s390x, riscv64, and windows\/amd64 \(or windows\)$/);
  });

  it('an invalid version says what a version looks like', async () => {
    const r = await runCli(['bin', '--engine', 'host', '--version', '3.x']);
    assertOneLineError(r, /^error: invalid version "3\.x" — use MAJOR\.MINOR/);
  });

  for (const engine of ['host', 'podman'] as const) {
    it(`a compile error (${engine}) shows the compiler's message per arch and leaves no binary`, async () => {
      const src = path.join(dir, `broken-${engine}`);
      await rm(src, { recursive: true, force: true });
      execFileSync('mkdir', ['-p', src]);
      // -Werror turns the unused variable into an error.
      await writeFile(path.join(src, 'pause.c'), 'int main(void) { int unused; return 0; }\n');
      const binDir = path.join(dir, `bin-broken-${engine}`);
      const r = await runCli(['bin', '--engine', engine, '--arch', 'amd64,arm64', '--source', path.join(src, 'pause.c'), '--bin-dir', binDir, ...fixed]);
      assertOneLineError(r, new RegExp(`^error: compile failed for amd64, arm64: compile for (amd64|arm64) failed \\(${engine}\\): .*unused variable`));
      assert.deepEqual(await listing(binDir), [], 'binary or temporary directory left behind');
    });
  }

  it('a binary that does not behave like pause is refused after running it, and not kept', async () => {
    const src = path.join(dir, 'impostor');
    execFileSync('mkdir', ['-p', src]);
    await writeFile(path.join(src, 'pause.c'), 'int main(void) { return 0; }\n');
    const binDir = path.join(dir, 'bin-impostor');
    const r = await runCli(['bin', '--engine', 'host', '--arch', 'arm64', '--source', path.join(src, 'pause.c'), '--bin-dir', binDir, ...fixed]);
    assertOneLineError(r, /^error: pause for arm64 -v printed "" \(exit 0\), expected "pause\.c v3\.10-test"/);
    assert.deepEqual(await listing(binDir), []);
  });

  it('a missing podman says how to install it', async () => {
    const r = await runCli(['bin', '--engine', 'podman', ...fixed], { env: { PATH: '/nonexistent' } });
    assertOneLineError(r, /^error: podman is not installed — install it with `apt-get install podman runc`/);
  });

  it('a docker without a daemon says so', async () => {
    const r = await runCli(['bin', '--engine', 'docker', ...fixed], { env: { DOCKER_HOST: `unix://${dir}/no-such.sock` } });
    assertOneLineError(r, /^error: docker is installed but not working: .* — install it with `apt-get install docker\.io` and start dockerd/);
  });

  it('a missing host toolchain names the Debian packages', async () => {
    const r = await runCli(['bin', '--engine', 'host', '--arch', 'arm64,s390x', ...fixed], { env: { PATH: '/nonexistent' } });
    assertOneLineError(r, /^error: no host cross compiler for arm64, s390x .* — install it with `apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-s390x-linux-gnu libc6-dev-s390x-cross`/);
  });

  it('with nothing usable, auto-detection says what to install', async () => {
    const r = await runCli(['bin', ...fixed], { env: { PATH: '/nonexistent' } });
    assertOneLineError(r, /^error: no container engine or cross toolchain found — install podman/);
  });

  for (const engine of ['podman', 'docker'] as const) {
    it(`Ctrl-C during a ${engine} compile leaves no container and no binary`, async () => {
      // The compiler blocks reading a FIFO that nobody writes, so the container stays up until interrupted.
      const src = path.join(dir, `blocking-${engine}`);
      execFileSync('mkdir', ['-p', src]);
      execFileSync('mkfifo', [path.join(src, 'block.h')]);
      await writeFile(path.join(src, 'pause.c'), '#include "block.h"\nint main(void) { return 0; }\n');
      const binDir = path.join(dir, `bin-interrupted-${engine}`);
      const env = engine === 'docker' ? docker.env : {};
      const cli = startCli(['bin', '--engine', engine, '--arch', 'amd64,arm', '--source', path.join(src, 'pause.c'), '--bin-dir', binDir, ...fixed], { env, cwd: REPO_ROOT });
      // Both arches compile in one builder container, labelled as pause-build's.
      const started = await waitFor('the compile container', async () => {
        const names = (await leftoverContainers(engine, env)).filter((n) => n.startsWith('pause-build-compile-'));
        return names.length > 0 ? names : undefined;
      }, 60_000);
      assert.equal(started.length, 1, `one container for both arches, got ${started.join(', ')}`);
      cli.kill('SIGINT');
      const r = await cli;
      assert.equal(r.exitCode, 130, String(r.stderr));
      assert.match(String(r.stderr), /error: interrupted/);
      const left = await leftoverContainers(engine, env);
      assert.deepEqual(left.filter((n) => started.includes(n)), [], `container left behind: ${left.join(', ')}`);
      assert.deepEqual(await listing(binDir), []);
    });
  }
});
