/** What every command shares: the interrupt signal, --debug, and the build options. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { defaultCacheDir } from '../cache.ts';
import { PauseBuildError } from '../errors.ts';
import { type Command, Option } from 'commander';
import { selectPlatforms, selectWindows } from '../platforms.ts';
import { PACKAGE_ROOT, resolveRevision, resolveVersion } from '../project.ts';
import type { BuildOptions, BuildState } from '../tasks/context.ts';
import { builderSpec, findBuilderEarly, likelyEngine } from '../toolchain/builder.ts';
import { versionString } from '../version.ts';

export interface Runtime {
  /** Aborted on SIGINT/SIGTERM: every long step listens to it and cleans up. */
  readonly signal: AbortSignal;
  /** --debug: full tool output and stack traces. */
  debug(): boolean;
}

export interface BuildFlags {
  arch?: string[];
  engine?: string;
  base?: string;
  version?: string;
  revision?: string;
  source?: string;
  binDir: string;
  cache: boolean;
  emulation: boolean;
  cacheDir?: string;
  root?: string;
  quiet?: boolean;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function addBuildOptions(cmd: Command): Command {
  return cmd
    .option('--arch <arch>', 'arches to build, comma-separated or repeated; "all" adds opt-in arches, "windows" (windows/amd64) the Windows images (default: amd64,arm,arm64,ppc64le,s390x)', collect)
    .addOption(new Option('--engine <engine>', 'where the compiler runs (default: first working of podman, docker, host)').choices(['podman', 'docker', 'host']))
    .option('--base <image>', 'Debian bookworm base image for the builder (env PAUSE_BUILD_BASE)')
    .option('--version <version>', 'version to build (default: VERSION file, else nearest git tag)')
    .option('--revision <rev>', 'revision compiled into the version string (default: git describe)')
    .option('--source <file>', 'C source to compile (default: build/pause/pause.c)')
    .option('--bin-dir <dir>', 'where binaries are written', 'bin')
    .option('--cache-dir <dir>', 'cache of compiled binaries, compressed layers and publish records (default: $XDG_CACHE_HOME/pause-build/bin or ~/.cache/pause-build/bin)')
    .option('--no-cache', 'use no cache: always run the compiler, compress every layer, and publish through the whole pipeline')
    .option('--no-emulation', 'do not run the binaries (natively or under qemu-user) before accepting them')
    .option('--root <dir>', 'project root holding VERSION and build/ (default: the pause-build package)')
    .option('-q, --quiet', 'print only results');
}

export async function resolveBuild(flags: BuildFlags, runtime: Runtime): Promise<BuildOptions> {
  const root = path.resolve(flags.root ?? PACKAGE_ROOT);
  const source = path.resolve(flags.source ?? path.join(root, 'build', 'pause', 'pause.c'));
  if (!existsSync(source)) {
    throw new PauseBuildError(`source file ${source} not found`, { hint: 'pass --source FILE or --root of a pause-build checkout' });
  }
  const platforms = selectPlatforms(flags.arch);
  const windows = selectWindows(flags.arch);
  // The engine is asked for the builder while git is: the answer is there when the toolchain is chosen.
  const engine = likelyEngine(flags.engine);
  if (engine) findBuilderEarly(engine, builderSpec(root, flags.base));
  // Side by side (each may run git), reported in this order if both fail.
  const versionP = resolveVersion(root, flags.version);
  const revisionP = resolveRevision(root, flags.revision);
  revisionP.catch(() => undefined);
  const version = await versionP;
  const revision = await revisionP;
  return {
    root,
    platforms,
    windows,
    windowsSource: path.join(root, 'build', 'pause', 'windows', 'pause.c'),
    engine: flags.engine,
    base: flags.base,
    version,
    revision,
    versionString: versionString(version, revision),
    source,
    binDir: path.resolve(flags.binDir),
    cacheDir: flags.cache ? path.resolve(flags.cacheDir ?? defaultCacheDir()) : undefined,
    emulate: flags.emulation,
    signal: runtime.signal,
  };
}

export function newState(): BuildState {
  return { binaries: new Map(), errors: [] };
}
