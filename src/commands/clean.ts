/** clean: removes what the build writes (bin/ and _output/), as `make clean` did. */
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { PauseBuildError } from '../errors.ts';
import type { Runtime } from './common.ts';

/** Refuses a directory that holds the current one (or is the root): removing it would remove the project. */
export function checkRemovable(dir: string, cwd = process.cwd()): string {
  const abs = path.resolve(cwd, dir);
  const rel = path.relative(abs, cwd);
  if (abs === path.parse(abs).root || rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    throw new PauseBuildError(`refusing to remove ${abs}: it holds the current directory`, { hint: 'pass --bin-dir/--output-dir pointing at the build outputs only' });
  }
  return abs;
}

export function registerCleanCommands(cli: Command, _runtime: Runtime): void {
  cli
    .command('clean')
    .description('remove the build outputs: bin/ and _output/')
    .option('--bin-dir <dir>', 'binaries directory', 'bin')
    .option('--output-dir <dir>', 'image and layout directory', '_output')
    .action(async (flags: { binDir: string; outputDir: string }) => {
      const dirs = [flags.binDir, flags.outputDir].map((d) => checkRemovable(d));
      for (const dir of dirs) {
        const existed = await stat(dir).then(() => true, () => false);
        await rm(dir, { recursive: true, force: true });
        if (existed) process.stdout.write(`removed ${path.relative(process.cwd(), dir) || dir}\n`);
      }
    });
}
