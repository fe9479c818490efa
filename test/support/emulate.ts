/** Runs a pause binary of any arch: natively for the host's arch, else under qemu-user-static. */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

export { runner } from '../../src/emulate.ts';

/** Host pids of the direct children of `pid` (for `unshare --fork`, the namespace's PID 1). */
export async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** State letter of a pid inside the PID namespace of `nsPid` (R, S, Z…), or undefined once it is gone. */
export async function stateInNamespace(nsPid: number, pid: number): Promise<string | undefined> {
  const r = await execa('nsenter', ['-t', String(nsPid), '-p', '-m', 'cat', `/proc/${pid}/stat`], { reject: false });
  if (r.exitCode !== 0) return undefined;
  // pid (comm) STATE …; comm may hold spaces, so read after the last ')'.
  return r.stdout.slice(r.stdout.lastIndexOf(')') + 2, r.stdout.lastIndexOf(')') + 3);
}
