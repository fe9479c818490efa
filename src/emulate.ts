/**
 * Runs a built pause before it is published: natively when the host has its arch,
 * else under qemu-user-static. A binary that cannot print its version or does not
 * shut down cleanly on SIGTERM is never packaged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { PauseBuildError } from './errors.ts';
import type { Platform } from './platforms.ts';

const HOST_QEMU: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The argv that runs `binary` for `platform` on this host. */
export function runner(platform: Platform, binary: string, args: readonly string[] = []): string[] {
  return platform.qemu === HOST_QEMU[process.arch] ? [binary, ...args] : [`qemu-${platform.qemu}-static`, binary, ...args];
}

function fail(platform: Platform, what: string, hint?: string): never {
  throw new PauseBuildError(`pause for ${platform.arch} ${what}`, { hint: hint ?? 'run `pause-build bin --no-cache --debug` and check the compiler and the source' });
}

/** `-v` prints the expected version string; SIGTERM ends it with exit 0. */
export async function smokeTest(platform: Platform, binary: string, expectedVersion: string, signal?: AbortSignal): Promise<void> {
  const [cmd, ...args] = runner(platform, binary, ['-v']);
  const v = await execa(cmd!, args, { reject: false, timeout: 30_000, stdin: 'ignore', cancelSignal: signal });
  if ((v as { code?: string }).code === 'ENOENT') {
    fail(platform, `cannot be run: ${cmd} not found`, 'install qemu-user-static (`apt-get install qemu-user-static`) or pass --no-emulation');
  }
  if (v.exitCode !== 0 || v.stdout.trim() !== `pause.c ${expectedVersion}`) {
    fail(platform, `-v printed "${v.stdout.trim()}" (exit ${v.exitCode}), expected "pause.c ${expectedVersion}"`);
  }
  const [rcmd, ...rargs] = runner(platform, binary);
  const proc = execa(rcmd!, rargs, { reject: false, timeout: 30_000, stdin: 'ignore', cancelSignal: signal });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  for (let i = 0; i < 200 && !stderr.includes('first process'); i++) await sleep(25);
  // The handlers are installed right after the warning.
  await sleep(150);
  proc.kill('SIGTERM');
  const r = await proc;
  if (r.exitCode !== 0 || !String(r.stderr).includes('Shutting down, got signal')) {
    fail(platform, `did not exit cleanly on SIGTERM (exit ${r.exitCode ?? r.signal})`);
  }
}
