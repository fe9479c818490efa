/** release: plan (default) or carry out (--yes) a version bump, changelog, commit and tag. */
import type { Command } from 'commander';
import { PauseBuildError } from '../errors.ts';
import { report } from '../github.ts';
import { type ListRegistryTags, type ReleasePlan, formatPlan } from '../release.ts';
import { type ReleaseDeps, type ReleaseResult, checkCanRelease, gatherPlan, releaseTasks } from '../tasks/release.ts';
import { runTasks } from '../tasks/run.ts';
import type { Runtime } from './common.ts';

/**
 * SEAM(registry): lists the tags of `<registry>/pause` for `release --registry`, so that a
 * version already pushed (but not tagged in git) is not released again. To be wired to
 * the registry client in src/registry/ (its tag listing, with its credential handling).
 * Until then `release --registry` stops with this error and changes nothing.
 */
export const registryTagLister: ListRegistryTags = async (repository) => {
  throw new PauseBuildError(`cannot list the tags of ${repository}: the registry client is not wired into release yet`, {
    hint: 'run without --registry (git tags are still checked)',
  });
};

interface ReleaseFlags {
  bump?: string;
  preid?: string;
  registry?: string;
  pushTag?: string | boolean;
  yes?: boolean;
  json?: boolean;
  root?: string;
  quiet?: boolean;
}

export function registerReleaseCommands(cli: Command, runtime: Runtime, deps: ReleaseDeps = { listRegistryTags: registryTagLister }): void {
  cli
    .command('release')
    .description('plan a release (default) or, with --yes, write VERSION and CHANGELOG.md, commit "Release <version>" and tag v<version>')
    .argument('[version]', 'the version to release, e.g. 3.11 or 3.11.0-rc.0 (instead of --bump)')
    .option('--bump <kind>', 'next version from the current one: patch, minor, major or prerelease')
    .option('--preid <id>', 'prerelease identifier for --bump prerelease (default: rc)')
    .option('--registry <registry>', 'also refuse versions already in <registry>/pause, and name the image tags')
    .option('--push-tag [remote]', 'push the new tag (default remote: origin; write the version before it)')
    .option('-y, --yes', 'carry the plan out (without it, nothing is changed)')
    .option('--json', 'print the plan (and the result) as JSON')
    .option('--root <dir>', 'a directory of the git work tree to release (default: the current directory)')
    .option('-q, --quiet', 'no progress lines')
    .action(async (version: string | undefined, flags: ReleaseFlags) => {
      const pushRemote = flags.pushTag === true ? 'origin' : flags.pushTag || undefined;
      const { plan, git } = await gatherPlan(
        {
          dir: flags.root ?? process.cwd(),
          request: { bump: flags.bump, preid: flags.preid, version },
          ...(flags.registry ? { registry: flags.registry } : {}),
          ...(pushRemote ? { pushRemote } : {}),
          signal: runtime.signal,
        },
        deps,
      );
      const result: ReleaseResult = {};
      if (flags.yes) {
        await checkCanRelease(plan, git);
        await runTasks(releaseTasks(plan, git, result), { quiet: flags.quiet, json: flags.json, debug: runtime.debug() });
      }
      const done = Boolean(flags.yes);
      process.stdout.write(flags.json ? `${JSON.stringify({ ...plan, dryRun: !done, ...result }, null, 2)}\n` : formatPlan(plan, done));
      if (!flags.json && result.commit) process.stdout.write(`  commit            ${result.commit}\n`);
      await reportRelease(plan, done, result);
    });
}

function reportRelease(plan: ReleasePlan, done: boolean, result: ReleaseResult): Promise<void> {
  return report({
    title: done ? `pause ${plan.next} released (${plan.gitTag})` : `pause ${plan.next} release plan`,
    version: plan.next,
    tags: plan.image ? plan.images : plan.imageTags,
    ...(plan.image ? { image: plan.image } : {}),
    facts: [
      ['git tag', plan.gitTag],
      ['latest', plan.latest ? 'yes' : 'no'],
      ...(result.commit ? [['commit', result.commit] as const] : []),
      ...(result.pushed ? [['pushed to', plan.pushRemote ?? ''] as const] : []),
    ],
  });
}
