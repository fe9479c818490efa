/**
 * Compiles and strips one program for one arch, checks the ELF result, and only then
 * moves it into place: a failed or interrupted compile leaves no binary behind.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { type CompileCache, cacheKey, sourceInputs } from './cache.ts';
import { elfProblems, parseElf } from './elf.ts';
import { PauseBuildError } from './errors.ts';
import type { Platform } from './platforms.ts';
import type { Toolchain } from './toolchain/toolchain.ts';

/** Exactly upstream's flags; the version define is added per build. */
export const CFLAGS = ['-Os', '-Wall', '-Werror', '-static'] as const;

export interface CompileRequest {
  readonly platform: Platform;
  /** Absolute path of the C file; its directory is what the compiler sees. */
  readonly source: string;
  /** Compiled in as -DVERSION=…, printed by `pause -v`. */
  readonly version: string;
  readonly binDir: string;
  /** Output name prefix: `pause` gives bin/pause-linux-<arch>. */
  readonly program?: string;
  readonly toolchain: Toolchain;
  readonly signal?: AbortSignal;
  /** Reuse and record results; undefined compiles every time. */
  readonly cache?: CompileCache;
}

export interface CompileResult {
  readonly platform: Platform;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** Taken from the compile cache: the compiler did not run. */
  readonly cached: boolean;
}

export function binaryName(program: string, platform: Platform): string {
  return `${program}-linux-${platform.arch}`;
}

export function compileCommands(req: CompileRequest, srcPath: string, outPath: string): string[][] {
  const { triple } = req.platform;
  const out = `${outPath}/${binaryName(req.program ?? 'pause', req.platform)}`;
  return [
    [`${triple}-gcc`, ...CFLAGS, `-DVERSION=${req.version}`, '-o', out, `${srcPath}/${path.basename(req.source)}`],
    [`${triple}-strip`, out],
  ];
}

/** The compiler's first complaint, for a one-line error; the full output goes to --debug. */
function firstCompilerError(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /\berror\b/i.test(l)) ?? lines[0] ?? 'no output';
}

export async function compile(req: CompileRequest): Promise<CompileResult> {
  const { platform, toolchain } = req;
  const name = binaryName(req.program ?? 'pause', platform);
  await mkdir(req.binDir, { recursive: true });
  const work = await mkdtemp(path.join(req.binDir, `.${name}-`));
  const built = path.join(work, name);
  try {
    // Paths are fixed in the key: the bytes do not depend on where the compiler ran.
    const key = req.cache
      ? cacheKey({ sources: await sourceInputs(req.source), commands: compileCommands(req, '/src', '/out'), toolchain: await toolchain.identity(platform), arch: platform.arch })
      : undefined;
    const cached = key !== undefined && (await req.cache!.restore(key, built));
    if (!cached) await runCompiler(req, work);
    const bytes = await readFile(built);
    let problems: string[];
    try {
      problems = elfProblems(parseElf(bytes), platform);
    } catch (e) {
      problems = [(e as Error).message];
    }
    if (problems.length > 0) {
      throw new PauseBuildError(`${name} is not a valid ${platform.arch} binary: ${problems.join('; ')}`, {
        hint: cached ? `remove the compile cache ${req.cache!.dir} and build again` : `check that ${platform.triple}-gcc targets ${platform.arch}`,
      });
    }
    if (key !== undefined && !cached) await req.cache!.store(key, built);
    const final = path.join(req.binDir, name);
    await rename(built, final);
    return { platform, path: final, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), cached };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function runCompiler(req: CompileRequest, work: string): Promise<void> {
  const { platform, toolchain } = req;
  const srcDir = path.dirname(req.source);
  const result = await toolchain.run({
    commands: compileCommands(req, toolchain.srcPath(srcDir), toolchain.outPath(work)),
    srcDir,
    outDir: work,
    signal: req.signal,
    label: platform.arch,
  });
  if (result.canceled || req.signal?.aborted) throw new PauseBuildError(`compile for ${platform.arch} interrupted`, { exitCode: 130 });
  if (!result.ok) {
    throw new PauseBuildError(`compile for ${platform.arch} failed (${toolchain.kind}): ${firstCompilerError(result.output)}`, {
      hint: `fix ${path.basename(req.source)}; run with --debug for the full compiler output`,
      details: result.output,
    });
  }
}
