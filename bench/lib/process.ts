/**
 * Running one command and timing it: wall time from spawn to exit, its output, and the
 * moment each stderr line arrived (for stage breakdowns of pause-build's progress lines).
 * Every child still running is killed by killAll() when the bench is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface Timed {
  readonly seconds: number;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stderr lines with the seconds since spawn at which each arrived. */
  readonly lines: readonly { readonly at: number; readonly text: string }[];
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the command after this many seconds (default 300). */
  readonly timeout?: number;
}

const running = new Set<ChildProcess>();

/** Environment for children: no GitHub Actions reporting (summaries, outputs) from runs being timed. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const key of Object.keys(env)) if (key === 'GITHUB_ACTIONS' || key.startsWith('GITHUB_') || key.startsWith('RUNNER_')) delete env[key];
  return env;
}

export function timed(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const lines: { at: number; text: string }[] = [];
    let partial = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      const at = (performance.now() - t0) / 1000;
      err.push(d);
      const parts = (partial + d.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) lines.push({ at, text });
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (opts.timeout ?? 300) * 1000);
    child.once('error', (e) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      const seconds = (performance.now() - t0) / 1000;
      clearTimeout(timer);
      running.delete(child);
      if (partial) lines.push({ at: seconds, text: partial });
      resolve({
        seconds,
        exitCode: code ?? (signal ? 128 : -1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        lines,
      });
    });
  });
}

/** As timed(), but a non-zero exit is an error that quotes the end of stderr. */
export async function mustRun(what: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Timed> {
  const r = await timed(cmd, args, opts);
  if (r.exitCode !== 0) {
    const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-6).join('\n');
    throw new Error(`${what} failed (exit ${r.exitCode}):\n${tail}`);
  }
  return r;
}

export function killAll(): void {
  for (const child of running) child.kill('SIGTERM');
}
