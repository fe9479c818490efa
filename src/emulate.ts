/**
 * Runs a built pause before it is published: natively when the host has its arch,
 * else under qemu-user-static. A binary that cannot print its version or does not
 * shut down cleanly on SIGTERM is never packaged.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadExeca } from './exec.ts';
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

/** The state letter of a process (R, S, D, Z…), or undefined once it is gone. */
async function processState(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  const end = stat.lastIndexOf(')');
  return stat.slice(end + 2, end + 3);
}

/**
 * After its warning, pause installs its handlers and sleeps in pause(); natively or under
 * qemu, the process is then asleep (S). Waits for that, up to `limitMs`.
 */
async function untilAsleep(pid: number | undefined, limitMs: number): Promise<void> {
  if (pid === undefined) return;
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const state = await processState(pid);
    if (state === undefined || state === 'S') return;
    await sleep(2);
  }
}

interface SignalRun {
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/**
 * Starts pause, sends SIGTERM once it has printed its not-PID-1 warning and gone to sleep
 * (and `delay` ms more), and returns how it ended. A binary that exits by itself is not
 * signalled; one that neither warns nor exits within 5 s is signalled anyway.
 */
async function runAndSignal(platform: Platform, binary: string, delay: number, signal?: AbortSignal): Promise<SignalRun> {
  const [cmd, ...args] = runner(platform, binary);
  const { execa } = await loadExeca();
  const proc = execa(cmd!, args, { reject: false, timeout: 30_000, stdin: 'ignore', cancelSignal: signal });
  let stderr = '';
  const warned = new Promise<'warned'>((resolve) => {
    proc.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('first process')) resolve('warned');
    });
  });
  const giveUp = new AbortController();
  const first = await Promise.race([warned, proc.then(() => 'exited' as const), sleep(5000, 'late' as const, { signal: giveUp.signal }).catch(() => 'exited' as const)]);
  giveUp.abort();
  if (first !== 'exited') {
    await untilAsleep(proc.pid, 1000);
    if (delay > 0) await sleep(delay);
    proc.kill('SIGTERM');
  }
  const r = await proc;
  return { exitCode: r.exitCode, signal: r.signal, stderr: String(r.stderr), timedOut: Boolean(r.timedOut) };
}

/** How long to wait after the warning on a second try, when the first SIGTERM came too early. */
const RETRY_DELAY_MS = 300;

/**
 * `-v` prints the expected version string; SIGTERM ends it with exit 0. Both runs go side
 * by side. SIGTERM is sent as soon as pause sleeps after its warning (its handlers are in
 * place by then); should the signal still kill it (no handler yet, on a very busy
 * machine), it is run once more with a pause after the warning, so that a slow machine is
 * never reported as a broken binary.
 */
export async function smokeTest(platform: Platform, binary: string, expectedVersion: string, signal?: AbortSignal): Promise<void> {
  const [cmd, ...args] = runner(platform, binary, ['-v']);
  const { execa } = await loadExeca();
  const version = execa(cmd!, args, { reject: false, timeout: 30_000, stdin: 'ignore', cancelSignal: signal });
  const terminated = runAndSignal(platform, binary, 0, signal);
  const v = await version;
  let r = await terminated;
  if ((v as { code?: string }).code === 'ENOENT') {
    fail(platform, `cannot be run: ${cmd} not found`, 'install qemu-user-static (`apt-get install qemu-user-static`) or pass --no-emulation');
  }
  if (v.exitCode !== 0 || v.stdout.trim() !== `pause.c ${expectedVersion}`) {
    fail(platform, `-v printed "${v.stdout.trim()}" (exit ${v.exitCode}), expected "pause.c ${expectedVersion}"`);
  }
  if (r.signal === 'SIGTERM' && !r.timedOut && !signal?.aborted) r = await runAndSignal(platform, binary, RETRY_DELAY_MS, signal);
  if (r.exitCode !== 0 || !r.stderr.includes('Shutting down, got signal')) {
    fail(platform, `did not exit cleanly on SIGTERM (exit ${r.exitCode ?? r.signal})`);
  }
}
