/** The bin stage as a listr2 task list: pick a toolchain, ensure the builder, compile every arch at once. */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { ListrTask } from 'listr2';
import { CompileCache } from '../cache.ts';
import { type CompileResult, compileAll } from '../compile.ts';
import { compileWindows } from '../compile-windows.ts';
import { runner, smokeTest } from '../emulate.ts';
import { smokeTestWindows } from '../wine.ts';
import { PauseBuildError } from '../errors.ts';
import { builderSpec, ensureBuilder, findBuilder, likelyEngine } from '../toolchain/builder.ts';
import { chooseToolchainKind, containerToolchain, hostToolchain } from '../toolchain/toolchain.ts';
import type { BuildOptions, BuildState } from './context.ts';

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

export function toolchainTasks(opts: BuildOptions, state: BuildState): ListrTask[] {
  return [
    {
      title: 'Choosing a toolchain',
      task: async (_ctx, task) => {
        const likely = likelyEngine(opts.engine);
        const found = likely ? await findBuilder(likely, builderSpec(opts.root, opts.base)) : undefined;
        if (likely && found) {
          state.builderImage = found.image;
          state.toolchain = containerToolchain(likely, found.image, found.id);
          task.title = `Toolchain: ${likely}, ${found.image}`;
          return;
        }
        const kind = await chooseToolchainKind(opts.engine, opts.platforms);
        if (kind === 'host') {
          state.toolchain = hostToolchain();
          task.title = 'Toolchain: host cross compilers';
          return;
        }
        const spec = builderSpec(opts.root, opts.base);
        task.title = `Builder image (${kind})`;
        const { image, built } = await ensureBuilder(kind, spec, {
          signal: opts.signal,
          onLine: (line) => {
            task.output = line;
          },
        });
        state.builderImage = image;
        state.toolchain = containerToolchain(kind, image);
        task.title = `Toolchain: ${kind}, ${image}${built ? ' (built)' : ''}`;
      },
    },
  ];
}

export function compileTasks(opts: BuildOptions, state: BuildState): ListrTask {
  const cache = opts.cacheDir === undefined ? undefined : new CompileCache(opts.cacheDir);
  // One batch for all arches (one builder container), started by the first arch task.
  let batch: Map<string, Promise<CompileResult>> | undefined;
  const compiled = (arch: string) => {
    batch ??= compileAll({
      platforms: opts.platforms,
      source: opts.source,
      version: opts.versionString,
      binDir: opts.binDir,
      toolchain: state.toolchain!,
      signal: opts.signal,
      cache,
      ...(state.besideCompile ? { besides: state.besideCompile } : {}),
    });
    return batch.get(arch)!;
  };
  return {
    title: `Compiling ${opts.platforms.map((p) => p.arch).join(', ')} (${opts.versionString})`,
    task: (_ctx, parent) =>
      parent.newListr(
        opts.platforms.map((platform) => ({
          title: platform.arch,
          task: async (_c, task) => {
            const result = await compiled(platform.arch).catch((e: unknown) => {
              state.errors.push(e as Error);
              throw e;
            });
            state.onBinary?.(result);
            const where = `${platform.arch}: ${path.relative(process.cwd(), result.path) || result.path} ${kib(result.size)} ELF ok${result.cached ? ' (cached)' : ''}`;
            if (opts.emulate) {
              task.title = `${where}, running it`;
              await smokeTest(platform, result.path, opts.versionString, opts.signal).catch(async (e: unknown) => {
                // A binary that failed its run must not be picked up by a later step or a later make.
                await rm(result.path, { force: true });
                state.errors.push(e as Error);
                throw e;
              });
            }
            state.binaries.set(platform.arch, result);
            state.onAccepted?.(result);
            task.title = opts.emulate ? `${where}, runs (${runner(platform, result.path)[0]!.startsWith('qemu') ? 'qemu' : 'native'})` : where;
          },
        })),
        { concurrent: true, exitOnError: false },
      ),
  };
}

/** Where wine keeps its prefix between runs: beside the compile cache, else in the bin dir (removed after). */
function winePrefix(opts: BuildOptions): { prefix: string; temporary: boolean } {
  if (process.env.PAUSE_BUILD_WINEPREFIX) return { prefix: process.env.PAUSE_BUILD_WINEPREFIX, temporary: false };
  if (opts.cacheDir !== undefined) return { prefix: path.join(opts.cacheDir, 'wine'), temporary: false };
  return { prefix: path.join(opts.binDir, '.wine'), temporary: true };
}

/** pause.exe and wincat.exe for each Windows build, PE-checked, pause.exe run under wine. */
export function windowsCompileTasks(opts: BuildOptions, state: BuildState): ListrTask {
  const cache = opts.cacheDir === undefined ? undefined : new CompileCache(opts.cacheDir);
  return {
    title: `Compiling ${opts.windows.map((p) => p.name).join(', ')} (${opts.versionString})`,
    task: (_ctx, parent) =>
      parent.newListr(
        opts.windows.map((platform) => ({
          title: platform.name,
          task: async (_c, task) => {
            const built = await compileWindows({ source: opts.windowsSource, version: opts.versionString, platform, toolchain: state.toolchain!, binDir: opts.binDir, cache, signal: opts.signal });
            const where = `${platform.name}: pause.exe ${kib(built.pause.size)}, wincat.exe ${kib(built.wincat.size)} PE ok${built.pause.cached ? ' (cached)' : ''}`;
            if (opts.emulate) {
              task.title = `${where}, running pause.exe under wine`;
              const { prefix, temporary } = winePrefix(opts);
              try {
                await smokeTestWindows(prefix, built.pause.path, opts.versionString, opts.signal);
              } catch (e) {
                await rm(built.pause.path, { force: true });
                throw e;
              } finally {
                if (temporary) await rm(prefix, { recursive: true, force: true });
              }
            }
            (state.windowsBinaries ??= new Map()).set(platform.name, built);
            task.title = opts.emulate ? `${where}, runs (wine)` : where;
          },
        })),
      ),
  };
}

/**
 * Arches compile side by side and one failure does not stop the others (their
 * errors all show); this task then fails the run if any arch is missing.
 */
export function requireAllCompiled(opts: BuildOptions, state: BuildState): ListrTask {
  return {
    task: () => {
      const failed = opts.platforms.filter((p) => !state.binaries.has(p.arch));
      const first = state.errors[0];
      if (failed.length === 0) return;
      if (failed.length === 1 && first) throw first;
      throw new PauseBuildError(`compile failed for ${failed.map((p) => p.arch).join(', ')}${first ? `: ${first.message}` : ''}`, {
        hint: first instanceof PauseBuildError ? first.hint : undefined,
        exitCode: first instanceof PauseBuildError ? first.exitCode : 1,
        details: state.errors.map((e) => (e instanceof PauseBuildError && e.details) || e.message).join('\n'),
      });
    },
  };
}

/** The compile stage: Linux arches (if any), then Windows builds (if asked for). */
export function allCompileTasks(opts: BuildOptions, state: BuildState): ListrTask[] {
  return [
    ...(opts.platforms.length > 0 ? [compileTasks(opts, state), requireAllCompiled(opts, state)] : []),
    ...(opts.windows.length > 0 ? [windowsCompileTasks(opts, state)] : []),
  ];
}

export function binTasks(opts: BuildOptions, state: BuildState): ListrTask[] {
  return [...toolchainTasks(opts, state), ...allCompileTasks(opts, state)];
}
