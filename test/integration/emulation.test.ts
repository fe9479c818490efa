/**
 * Every arch's pause, built in the podman builder, run for real: natively or under
 * qemu-user. -v, SIGTERM/SIGINT, and reaping an orphan as PID 1 of a new PID namespace
 * (against a control PID 1 that does not reap, so that the check can fail).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ResultPromise, execa } from 'execa';
import { compile } from '../../src/compile.ts';
import { DEFAULT_ARCHES, platformFor } from '../../src/platforms.ts';
import { hostToolchain } from '../../src/toolchain/toolchain.ts';
import { REPO_ROOT, runCli } from '../support/cli.ts';
import { childrenOf, runner, stateInNamespace, waitFor } from '../support/emulate.ts';
import { ensureBuilder } from '../support/engines.ts';

const VERSION = 'v3.10-emulated';
let dir: string;
let orphan: string;

/** Wrapped in an object: an execa process is a thenable, which an async function would await. */
async function startedPause(cmd: string[]): Promise<{ proc: ResultPromise }> {
  const proc = execa(cmd[0]!, cmd.slice(1), { reject: false, stdin: 'ignore' });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await waitFor('the not-PID-1 warning', async () => (stderr.includes('Warning: pause should be the first process') ? true : undefined));
  // The handlers are installed right after the warning; leave qemu time to get there.
  await sleep(300);
  return { proc };
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pause-emulation-'));
  await ensureBuilder('podman');
  const r = await runCli(['bin', '--engine', 'podman', '--version', '3.10', '--revision', 'emulated', '--bin-dir', path.join(dir, 'bin')]);
  assert.equal(r.exitCode, 0, r.stderr);
  const o = await compile({ platform: platformFor('amd64'), source: path.join(REPO_ROOT, 'build/pause/orphan.c'), version: 'test', binDir: dir, program: 'orphan', toolchain: hostToolchain() });
  orphan = o.path;
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

for (const arch of DEFAULT_ARCHES) {
  describe(`pause for ${arch}`, () => {
    const platform = platformFor(arch);
    const bin = () => path.join(dir, 'bin', `pause-linux-${arch}`);

    it('-v prints the compiled-in version and exits 0', async () => {
      for (const flag of ['-v', '-V']) {
        const [cmd, ...args] = runner(platform, bin(), [flag]);
        const r = await execa(cmd!, args, { reject: false });
        assert.equal(r.exitCode, 0);
        assert.equal(r.stdout, `pause.c ${VERSION}`);
      }
    });

    for (const [signal, name] of [['SIGTERM', 'Terminated'], ['SIGINT', 'Interrupt']] as const) {
      it(`${signal} ends it with exit 0 and says so`, async () => {
        const { proc } = await startedPause(runner(platform, bin()));
        proc.kill(signal);
        const r = await proc;
        assert.equal(r.signal, undefined, `killed by ${r.signal}: the handler was not installed`);
        assert.equal(r.exitCode, 0);
        assert.match(String(r.stderr), new RegExp(`Shutting down, got signal: ${name}`));
      });
    }

    it('as PID 1 it reaps an orphaned zombie (a sleep as PID 1 does not)', async () => {
      const reaps = await zombieFate(runner(platform, bin()));
      assert.equal(reaps.finalState, undefined, `orphan left in state ${reaps.finalState}`);
      assert.ok(!reaps.stderr.includes('should be the first process'), 'pause warned although it was PID 1');
      assert.equal(reaps.exitCode, 0, 'pause as PID 1 did not exit 0 on SIGTERM');
    });
  });
}

describe('control', () => {
  it('a PID 1 that does not reap keeps the orphan as a zombie', async () => {
    const fate = await zombieFate(['sleep', '600']);
    assert.equal(fate.finalState, 'Z');
  });
});

/** Starts `cmd` as PID 1 of a new PID namespace, leaves an orphan there, and reports what became of it. */
async function zombieFate(cmd: string[]): Promise<{ finalState: string | undefined; stderr: string; exitCode: number | undefined }> {
  const ns = execa('unshare', ['--pid', '--fork', '--mount-proc', ...cmd], { reject: false, stdin: 'ignore' });
  try {
    const init = await waitFor('PID 1 of the namespace', async () => (await childrenOf(ns.pid!))[0]);
    // PID 1 is ready once it reports itself as pid 1 inside the namespace.
    await waitFor('the namespace', async () => ((await stateInNamespace(init, 1)) ? true : undefined));
    await sleep(300);
    const o = await execa('nsenter', ['-t', String(init), '-p', '-m', orphan, '1']);
    const orphanPid = Number(o.stdout.trim());
    assert.ok(orphanPid > 1, `orphan pid ${o.stdout}`);
    // The orphan sleeps 1 s, exits, and is a zombie until PID 1 waits for it.
    let state: string | undefined = 'S';
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline) {
      state = await stateInNamespace(init, orphanPid);
      if (state === undefined) break;
      await sleep(100);
    }
    process.kill(init, 'SIGTERM');
    const r = await Promise.race([ns, sleep(5000).then(() => undefined)]);
    if (!r) process.kill(init, 'SIGKILL');
    const done = r ?? (await ns);
    return { finalState: state, stderr: String(done.stderr), exitCode: done.exitCode };
  } finally {
    if (ns.exitCode === null || ns.exitCode === undefined) ns.kill('SIGKILL');
  }
}
