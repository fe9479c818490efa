#!/usr/bin/env node
/** Arguments → one task list. */
import path from 'node:path';
import { Command, Option } from 'commander';
import { PauseBuildError, formatError } from './errors.ts';
import { selectPlatforms } from './platforms.ts';
import { PACKAGE_ROOT, packageVersion, resolveRevision, resolveVersion } from './project.ts';
import { binTasks } from './tasks/bin.ts';
import type { BuildOptions, BuildState } from './tasks/context.ts';
import { runTasks } from './tasks/run.ts';
import { builderSpec, ensureBuilder } from './toolchain/builder.ts';
import { requireEngine } from './toolchain/engine.ts';
import { versionString } from './version.ts';

const interrupt = new AbortController();
let debug = false;

interface BuildFlags {
  arch?: string[];
  engine?: string;
  base?: string;
  version?: string;
  revision?: string;
  source?: string;
  binDir: string;
  root?: string;
  quiet?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function buildOptions(cmd: Command): Command {
  return cmd
    .option('--arch <arch>', 'arches to build, comma-separated or repeated; "all" adds opt-in arches (default: amd64,arm,arm64,ppc64le,s390x)', collect)
    .addOption(new Option('--engine <engine>', 'where the compiler runs (default: first working of podman, docker, host)').choices(['podman', 'docker', 'host']))
    .option('--base <image>', 'Debian bookworm base image for the builder (env PAUSE_BUILD_BASE)')
    .option('--version <version>', 'version to build (default: VERSION file, else nearest git tag)')
    .option('--revision <rev>', 'revision compiled into the version string (default: git describe)')
    .option('--source <file>', 'C source to compile', path.join(PACKAGE_ROOT, 'build', 'pause', 'pause.c'))
    .option('--bin-dir <dir>', 'where binaries are written', 'bin')
    .option('--root <dir>', 'project root holding VERSION and build/ (default: the pause-build package)')
    .option('-q, --quiet', 'print only results');
}

async function resolveBuild(flags: BuildFlags): Promise<BuildOptions> {
  const root = path.resolve(flags.root ?? PACKAGE_ROOT);
  const platforms = selectPlatforms(flags.arch);
  const version = await resolveVersion(root, flags.version);
  const revision = await resolveRevision(root, flags.revision);
  return {
    root,
    platforms,
    engine: flags.engine,
    base: flags.base,
    version,
    versionString: versionString(version, revision),
    source: path.resolve(flags.source ?? path.join(root, 'build', 'pause', 'pause.c')),
    binDir: path.resolve(flags.binDir),
    signal: interrupt.signal,
  };
}

function newState(): BuildState {
  return { binaries: new Map(), errors: [] };
}

export function program(): Command {
  const cli = new Command('pause-build')
    .description('Build, verify, publish and mirror the Kubernetes pause image')
    .version(packageVersion(), '-V, --tool-version', 'print the pause-build version')
    .option('--debug', 'full output from every step, and stack traces')
    .showHelpAfterError('(run pause-build --help for usage)')
    .hook('preAction', (cmd) => {
      debug = Boolean(cmd.opts().debug);
    });

  cli
    .command('builder')
    .description('build the kube-cross-like builder image (reused while build/cross/Dockerfile is unchanged)')
    .addOption(new Option('--engine <engine>', 'container engine').choices(['podman', 'docker']).default('podman'))
    .option('--base <image>', 'Debian bookworm base image (env PAUSE_BUILD_BASE)')
    .option('--rebuild', 'build even when the image exists')
    .option('--root <dir>', 'project root holding build/cross/Dockerfile')
    .action(async (flags: { engine: 'podman' | 'docker'; base?: string; rebuild?: boolean; root?: string }) => {
      await requireEngine(flags.engine);
      const spec = builderSpec(path.resolve(flags.root ?? PACKAGE_ROOT), flags.base);
      const result = await ensureBuilder(flags.engine, spec, {
        rebuild: flags.rebuild,
        signal: interrupt.signal,
        onLine: debug ? (l) => process.stderr.write(`${l}\n`) : undefined,
      });
      process.stdout.write(`${result.image}\n`);
      process.stderr.write(result.built ? `built ${result.image} with ${flags.engine}\n` : `${result.image} is up to date\n`);
    });

  buildOptions(cli.command('bin'))
    .description('cross-compile pause for each arch into bin/pause-linux-<arch>, stripped and ELF-verified')
    .action(async (flags: BuildFlags) => {
      const opts = await resolveBuild(flags);
      const state = newState();
      await runTasks(binTasks(opts, state), { quiet: flags.quiet, debug });
      for (const p of opts.platforms) {
        const b = state.binaries.get(p.arch)!;
        process.stdout.write(`${path.relative(process.cwd(), b.path) || b.path}\t${b.size}\tsha256:${b.sha256}\n`);
      }
    });

  return cli;
}

async function main(argv: string[]): Promise<number> {
  const stop = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write(`\n${signal}: stopping, cleaning up…\n`);
    interrupt.abort(new PauseBuildError(`interrupted by ${signal}`, { exitCode: 130 }));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (err) {
    if (interrupt.signal.aborted) {
      process.stderr.write('error: interrupted\n');
      return 130;
    }
    process.stderr.write(`${formatError(err)}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return err instanceof PauseBuildError ? err.exitCode : 1;
  }
}

process.exitCode = await main(process.argv);
