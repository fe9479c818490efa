/**
 * Compiles and strips one program for a set of arches, checks each ELF result, and only
 * then moves it into place: a failed or interrupted compile leaves no binary behind.
 * Arches that miss the compile cache are compiled in one toolchain batch (one builder
 * container for all of them); each arch still succeeds or fails on its own.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { type CompileCache, cacheKey, sourceInputs } from './cache.ts';
import { elfProblems, parseElf } from './elf.ts';
import { PauseBuildError } from './errors.ts';
import type { Platform } from './platforms.ts';
import type { Batch, Job, RunResult, Toolchain } from './toolchain/toolchain.ts';

/** Exactly upstream's flags; the version define is added per build. */
export const CFLAGS = ['-Os', '-Wall', '-Werror', '-static'] as const;

/** What decides the bytes of a binary, besides the arch. */
export interface ProgramSpec {
  /** Absolute path of the C file; its directory is what the compiler sees. */
  readonly source: string;
  /** Compiled in as -DVERSION=…, printed by `pause -v`. */
  readonly version: string;
  /** Output name prefix: `pause` gives bin/pause-linux-<arch>. */
  readonly program?: string;
  readonly toolchain: Toolchain;
}

export interface BatchCompileRequest extends ProgramSpec {
  readonly platforms: readonly Platform[];
  readonly binDir: string;
  readonly signal?: AbortSignal;
  /** Reuse and record results; undefined compiles every time. */
  readonly cache?: CompileCache;
  /**
   * A job for the compilers' container besides the compiles (one container start fewer):
   * `ran` gets its result, or undefined when there was no job or no batch ran (every arch
   * came from the cache, or the batch could not start).
   */
  readonly besides?: { readonly job: Promise<Job | undefined>; ran(result: Promise<RunResult | undefined>): void };
}

export interface CompileRequest extends Omit<BatchCompileRequest, 'platforms'> {
  readonly platform: Platform;
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

export function compileCommands(spec: Pick<ProgramSpec, 'source' | 'version' | 'program'>, platform: Platform, srcPath: string, outPath: string): string[][] {
  const { triple } = platform;
  const out = `${outPath}/${binaryName(spec.program ?? 'pause', platform)}`;
  return [
    [`${triple}-gcc`, ...CFLAGS, `-DVERSION=${spec.version}`, '-o', out, `${srcPath}/${path.basename(spec.source)}`],
    [`${triple}-strip`, out],
  ];
}

/**
 * The compile cache key of one arch's binary. Paths are fixed in the key: the bytes do
 * not depend on where the compiler ran. `sources` is sourceInputs(spec.source).
 */
export async function compileKey(spec: ProgramSpec, platform: Platform, sources: readonly [string, Buffer][]): Promise<string> {
  return cacheKey({ sources, commands: compileCommands(spec, platform, '/src', '/out'), toolchain: await spec.toolchain.identity(platform), arch: platform.arch });
}

/** The compiler's first complaint, for a one-line error; the full output goes to --debug. */
function firstCompilerError(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /\berror\b/i.test(l)) ?? lines[0] ?? 'no output';
}

interface Prepared {
  readonly dir: string;
  readonly key: string | undefined;
  readonly cached: boolean;
}

/**
 * Compiles every arch of `req.platforms`: one promise per arch, each settled on its own
 * (a cached arch does not wait for the compiler; a failed arch does not fail the others).
 * All work happens in one temporary directory in binDir, removed once every arch has
 * settled and the batch has ended.
 */
export function compileAll(req: BatchCompileRequest): Map<string, Promise<CompileResult>> {
  const { toolchain, platforms } = req;
  const program = req.program ?? 'pause';
  const srcDir = path.dirname(req.source);
  const work = mkdir(req.binDir, { recursive: true }).then(() => mkdtemp(path.join(req.binDir, `.${program}-compile-`)));
  const sources = req.cache ? sourceInputs(req.source) : undefined;

  const prepare = async (platform: Platform): Promise<Prepared> => {
    const dir = path.join(await work, platform.arch);
    await mkdir(dir);
    const key = sources ? await compileKey(req, platform, await sources) : undefined;
    const cached = key !== undefined && (await req.cache!.restore(key, path.join(dir, binaryName(program, platform))));
    return { dir, key, cached };
  };
  const prepared = new Map(platforms.map((p) => [p.arch, prepare(p)]));

  const besides = req.besides ? req.besides.job.catch(() => undefined) : Promise.resolve(undefined);
  // One batch for every arch the cache did not have.
  const compiled = (async (): Promise<Batch | undefined> => {
    const ready = await Promise.allSettled(platforms.map((p) => prepared.get(p.arch)!));
    const misses = platforms.filter((_, i) => ready[i]!.status === 'fulfilled' && !(ready[i] as PromiseFulfilledResult<Prepared>).value.cached);
    if (misses.length === 0) return undefined;
    const outDir = await work;
    const outPath = toolchain.outPath(outDir);
    const extra = await besides;
    if (extra) await mkdir(path.join(outDir, extra.label));
    return toolchain.runAll({
      srcDir,
      outDir,
      jobs: [...misses.map((p) => ({ label: p.arch, commands: compileCommands(req, p, toolchain.srcPath(srcDir), `${outPath}/${p.arch}`) })), ...(extra ? [extra] : [])],
      signal: req.signal,
    });
  })();
  compiled.catch(() => undefined); // the arches that wait for it report its failure
  const besideResult = Promise.all([compiled, besides]).then(([batch, extra]) => (batch && extra ? batch.results.get(extra.label) : undefined), () => undefined);
  req.besides?.ran(besideResult);

  const finish = async (platform: Platform): Promise<CompileResult> => {
    const prep = await prepared.get(platform.arch)!;
    const name = binaryName(program, platform);
    const built = path.join(prep.dir, name);
    if (!prep.cached) checkRun(req, platform, await (await compiled)?.results.get(platform.arch));
    const bytes = await readFile(built);
    let problems: string[];
    try {
      problems = elfProblems(parseElf(bytes), platform);
    } catch (e) {
      problems = [(e as Error).message];
    }
    if (problems.length > 0) {
      throw new PauseBuildError(`${name} is not a valid ${platform.arch} binary: ${problems.join('; ')}`, {
        hint: prep.cached ? `remove the compile cache ${req.cache!.dir} and build again` : `check that ${platform.triple}-gcc targets ${platform.arch}`,
      });
    }
    if (prep.key !== undefined && !prep.cached) await req.cache!.store(prep.key, built);
    const final = path.join(req.binDir, name);
    await rename(built, final);
    return { platform, path: final, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), cached: prep.cached };
  };

  const results = new Map<string, Promise<CompileResult>>();
  for (const platform of platforms) {
    const result = finish(platform);
    result.catch(() => undefined); // each caller awaits its own; none is left unhandled
    results.set(platform.arch, result);
  }
  // Once every arch and the job besides have settled and the batch has ended (the container
  // is gone), the work directory goes. An arch does not wait for that: the process does, as it waits for the batch.
  const batchDone = compiled.then((b) => b?.done, () => undefined);
  void Promise.allSettled([...results.values(), batchDone, besideResult]).then(() => work.then((dir) => rm(dir, { recursive: true, force: true }), () => undefined));
  return results;
}

/** One arch alone. */
export function compile(req: CompileRequest): Promise<CompileResult> {
  const { platform, ...rest } = req;
  return compileAll({ ...rest, platforms: [platform] }).get(platform.arch)!;
}

function checkRun(req: BatchCompileRequest, platform: Platform, result: RunResult | undefined): void {
  if (result?.canceled || req.signal?.aborted) throw new PauseBuildError(`compile for ${platform.arch} interrupted`, { exitCode: 130 });
  if (!result?.ok) {
    const output = result?.output ?? '';
    throw new PauseBuildError(`compile for ${platform.arch} failed (${req.toolchain.kind}): ${firstCompilerError(output)}`, {
      hint: `fix ${path.basename(req.source)}; run with --debug for the full compiler output`,
      details: output,
    });
  }
}
