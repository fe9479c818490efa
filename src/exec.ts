/**
 * Running commands. The quick look-ups every run makes (git, `podman image inspect`) go
 * through capture(), a thin layer over node:child_process; the rest (compilers,
 * containers, the runs of each binary, builder builds) use execa, loaded on first use
 * (loadExeca): loading it takes longer than a no-op publish spends on everything else.
 */
import { execFile } from 'node:child_process';

export interface Captured {
  /** undefined when the command did not start or was killed by a signal. */
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when the command could not be started, e.g. ENOENT. */
  readonly code?: string;
  readonly signal?: string;
}

export interface CaptureOptions {
  readonly cwd?: string;
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Killed (SIGTERM) after this many ms. */
  readonly timeout?: number;
}

/** Runs `cmd` with no input and returns its exit code and output (without the final newline). */
export function capture(cmd: string, args: readonly string[], opts: CaptureOptions = {}): Promise<Captured> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env ? { ...process.env, ...opts.env } : undefined, timeout: opts.timeout ?? 0, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: string | number; signal?: string }) | null;
        resolve({
          exitCode: !e ? 0 : typeof e.code === 'number' ? e.code : undefined,
          stdout: stdout.replace(/\r?\n$/, ''),
          stderr: stderr.replace(/\r?\n$/, ''),
          ...(typeof e?.code === 'string' ? { code: e.code } : {}),
          ...(e?.signal ? { signal: e.signal } : {}),
        });
      },
    );
    child.stdin?.end();
  });
}

let loaded: Promise<typeof import('execa')> | undefined;

/** The execa module, loaded on first use. */
export function loadExeca(): Promise<typeof import('execa')> {
  loaded ??= import('execa');
  return loaded;
}
