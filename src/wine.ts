/**
 * Runs the Windows binaries under wine64 before they are packaged, as the Linux ones run
 * natively or under qemu: pause.exe must print its version. Each run ends its
 * wineserver, so nothing is left running.
 */
import { mkdir } from 'node:fs/promises';
import { loadExeca } from './exec.ts';
import { PauseBuildError } from './errors.ts';

export const WINE64 = process.env.PAUSE_BUILD_WINE64 ?? '/usr/lib/wine/wine64';
const WINESERVER = process.env.PAUSE_BUILD_WINESERVER ?? '/usr/lib/wine/wineserver';

export interface WineRun {
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly missing: boolean;
}

export function wineEnv(prefix: string): Record<string, string> {
  // WINEDLLOVERRIDES keeps the first run from installing Mono and Gecko (no network here anyway).
  return { WINEPREFIX: prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=' };
}

/** Runs `exe args` in `prefix` (created on first use, ~20 s), then stops that prefix's wineserver. */
export async function runWine(prefix: string, exe: string, args: readonly string[], opts: { input?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<WineRun> {
  await mkdir(prefix, { recursive: true });
  const { execa } = await loadExeca();
  const env = { ...process.env, ...wineEnv(prefix) };
  try {
    const r = await execa(WINE64, [exe, ...args], { reject: false, env, timeout: opts.timeoutMs ?? 120_000, stripFinalNewline: false, cancelSignal: opts.signal, ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }) });
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr), missing: (r as { code?: string }).code === 'ENOENT' };
  } finally {
    await execa(WINESERVER, ['-k'], { reject: false, env, timeout: 10_000 });
  }
}

/** `pause.exe -v` prints `pause.c <version>`. */
export async function smokeTestWindows(prefix: string, pauseExe: string, expectedVersion: string, signal?: AbortSignal): Promise<string> {
  const r = await runWine(prefix, pauseExe, ['-v'], { signal });
  if (r.missing) throw new PauseBuildError(`pause.exe cannot be run: ${WINE64} not found`, { hint: 'install wine64 (`apt-get install wine64`) or pass --no-emulation' });
  const printed = r.stdout.trim();
  if (r.exitCode !== 0 || printed !== `pause.c ${expectedVersion}`) {
    throw new PauseBuildError(`pause.exe under wine printed "${printed}" (exit ${r.exitCode}), expected "pause.c ${expectedVersion}"`, { hint: 'run `pause-build bin --arch windows --no-cache --debug` and check the compiler and the source' });
  }
  return printed;
}
