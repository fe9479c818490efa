/** release: plan (default) or carry out (--yes) a version bump, changelog, commit and tag. */
import type { Command } from 'commander';
import { report } from '../github.ts';
import { type ListRegistryTags, type ReleasePlan, formatPlan } from '../release.ts';
import { type ReleaseDeps, type ReleaseResult, checkCanRelease, gatherPlan, releaseTasks } from '../tasks/release.ts';
import { runTasks } from '../tasks/run.ts';
import { parseRepository } from '../registry/reference.ts';
import type { Runtime } from './common.ts';
import { type RegistryFlags, addRegistryOptions, registryClientFromFlags } from './registry-options.ts';

/** Tags of the repository through the registry client, with the command's registry options. */
function registryTagLister(flags: RegistryFlags, runtime: Runtime): ListRegistryTags {
  return async (repository, { signal }) => {
    const client = await registryClientFromFlags(flags, runtime);
    try {
      return await client.listTags(parseRepository(repository), { signal, action: `list tags of ${repository}` });
    } finally {
      await client.close();
    }
  };
}

interface ReleaseFlags extends RegistryFlags {
  bump?: string;
  preid?: string;
  registry?: string;
  pushTag?: string | boolean;
  yes?: boolean;
  json?: boolean;
  root?: string;
  quiet?: boolean;
}

export function registerReleaseCommands(cli: Command, runtime: Runtime, deps?: ReleaseDeps): void {
  addRegistryOptions(cli.command('release'))
    .description('plan a release (default) or, with --yes, write VERSION and CHANGELOG.md, commit "Release <version>" and tag v<version>')
    .argument('[version]', 'the version to release, e.g. 3.11 or 3.11.0-rc.0 (instead of --bump)')
    .option('--bump <kind>', 'next version from the current one: patch, minor, major or prerelease')
    .option('--preid <id>', 'prerelease identifier for --bump prerelease (default: rc)')
    .option('--registry <repo>', 'image repository HOST[:PORT]/REPO: also refuse versions already tagged there, and name the image tags')
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
        deps ?? { listRegistryTags: registryTagLister(flags, runtime) },
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
