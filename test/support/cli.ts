/** Runs the pause-build CLI from source, as a user would run it, and returns what it printed. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Options, type ResultPromise, execa } from 'execa';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(REPO_ROOT, 'src', 'cli.ts');
const TSX = path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string | undefined>;
  readonly input?: string;
  readonly timeout?: number;
}

export function startCli(args: readonly string[], opts: CliOptions = {}): ResultPromise {
  const options: Options = {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { CI: 'true', ...opts.env },
    reject: false,
    timeout: opts.timeout ?? 300_000,
    ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }),
  };
  return execa(process.execPath, ['--import', TSX, CLI, ...args], options);
}

export async function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const r = await startCli(args, opts);
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
