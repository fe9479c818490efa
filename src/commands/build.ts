/** builder and bin: the compile half of the pipeline. */
import path from 'node:path';
import { type Command, Option } from 'commander';
import { report } from '../github.ts';
import { platformString } from '../platforms.ts';
import { PACKAGE_ROOT } from '../project.ts';
import { binTasks } from '../tasks/bin.ts';
import { runTasks } from '../tasks/run.ts';
import { builderSpec, ensureBuilder } from '../toolchain/builder.ts';
import { requireEngine } from '../toolchain/engine.ts';
import { type BuildFlags, type Runtime, addBuildOptions, newState, resolveBuild } from './common.ts';

export function registerBuildCommands(cli: Command, runtime: Runtime): void {
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
        signal: runtime.signal,
        onLine: runtime.debug() ? (l) => process.stderr.write(`${l}\n`) : undefined,
      });
      process.stdout.write(`${result.image}\n`);
      process.stderr.write(result.built ? `built ${result.image} with ${flags.engine}\n` : `${result.image} is up to date\n`);
    });

  addBuildOptions(cli.command('bin'))
    .description('cross-compile pause for each arch into bin/pause-linux-<arch>, stripped and ELF-verified')
    .action(async (flags: BuildFlags) => {
      const opts = await resolveBuild(flags, runtime);
      const state = newState();
      await runTasks(binTasks(opts, state), { quiet: flags.quiet, debug: runtime.debug() });
      for (const p of opts.platforms) {
        const b = state.binaries.get(p.arch)!;
        process.stdout.write(`${path.relative(process.cwd(), b.path) || b.path}\t${b.size}\tsha256:${b.sha256}\n`);
      }
      for (const w of state.windowsBinaries?.values() ?? []) {
        for (const b of [w.pause, w.wincat]) process.stdout.write(`${path.relative(process.cwd(), b.path) || b.path}\t${b.size}\tsha256:${b.sha256}\n`);
      }
      await report({
        title: `pause ${opts.version.tag} binaries (${opts.versionString})`,
        version: opts.version.tag,
        platforms: opts.platforms.map((p) => {
          const b = state.binaries.get(p.arch)!;
          return { platform: platformString(p), digest: `sha256:${b.sha256}`, size: b.size };
        }),
      });
    });
}
