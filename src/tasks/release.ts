/**
 * The effects of a release: reading what it needs from git (and a registry), then, with
 * --yes, writing VERSION and CHANGELOG.md, committing, tagging and pushing the tag.
 * Each step undoes what it did if a later one fails before the tag exists.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ListrTask } from 'listr2';
import { PauseBuildError } from '../errors.ts';
import { type Git, git as gitIn, workTreeRoot } from '../git.ts';
import { nearestVersionTag, resolveVersion } from '../project.ts';
import {
  type ListRegistryTags,
  type ReleasePlan,
  type ReleaseRequest,
  imageRepository,
  planRelease,
  prependChangelog,
  releaseDate,
  requestedVersion,
  requireClean,
} from '../release.ts';

export interface ReleaseInputs {
  /** A directory in the work tree to release (its top is used). */
  readonly dir: string;
  readonly request: ReleaseRequest;
  readonly registry?: string;
  readonly pushRemote?: string;
  readonly signal?: AbortSignal;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface ReleaseDeps {
  /** Only called with --registry. */
  readonly listRegistryTags: ListRegistryTags;
}

/** Reads everything the plan needs; changes nothing. */
export async function gatherPlan(inputs: ReleaseInputs, deps: ReleaseDeps): Promise<{ plan: ReleasePlan; git: Git }> {
  const root = await workTreeRoot(inputs.dir);
  const git = gitIn(root);
  const current = await resolveVersion(root);
  requestedVersion(current, inputs.request); // argument errors before any other look-up
  const [tags, changes, previous] = await Promise.all([git.tags(), git.status(), nearestVersionTag(root)]);
  const subjects = (await git.head()) ? await git.subjects(previous?.tag) : [];
  const registryTags = inputs.registry
    ? await deps.listRegistryTags(imageRepository(inputs.registry), { signal: inputs.signal })
    : undefined;
  const plan = planRelease({
    current,
    request: inputs.request,
    gitTags: tags,
    ...(inputs.registry ? { registry: inputs.registry, registryTags } : {}),
    ...(previous ? { previousTag: previous.tag } : {}),
    subjects,
    date: releaseDate(inputs.env),
    changes,
    ...(inputs.pushRemote ? { pushRemote: inputs.pushRemote } : {}),
  });
  return { plan, git };
}

export interface ReleaseResult {
  commit?: string;
  tagged?: boolean;
  pushed?: boolean;
}

/** The files a release writes, with what they held before (undefined: did not exist). */
interface Written {
  readonly file: string;
  readonly before: string | undefined;
}

/** Checks come first (clean tree, a commit to build on); nothing is written unless they pass. */
export async function checkCanRelease(plan: ReleasePlan, git: Git): Promise<void> {
  requireClean(plan);
  if (!(await git.head())) throw new PauseBuildError(`${git.root} has no commit yet`, { hint: 'commit the project first, then release' });
}

export function releaseTasks(plan: ReleasePlan, git: Git, result: ReleaseResult): ListrTask[] {
  const written: Written[] = [];
  const restore = async () => {
    for (const w of written.reverse()) {
      if (w.before === undefined) await rm(w.file, { force: true });
      else await writeFile(w.file, w.before);
    }
  };
  const files = ['VERSION', 'CHANGELOG.md'];
  const message = `${plan.commitMessage}\n\n${plan.changelog.split('\n').slice(2).join('\n').trim()}\n`;
  const tasks: ListrTask[] = [
    {
      title: `Writing VERSION (${plan.next}) and CHANGELOG.md`,
      task: async () => {
        const versionFile = path.join(git.root, 'VERSION');
        const changelogFile = path.join(git.root, 'CHANGELOG.md');
        const oldVersion = await readFile(versionFile, 'utf8').catch(() => undefined);
        const oldChangelog = await readFile(changelogFile, 'utf8').catch(() => undefined);
        written.push({ file: versionFile, before: oldVersion });
        await writeFile(versionFile, `${plan.next}\n`);
        written.push({ file: changelogFile, before: oldChangelog });
        await writeFile(changelogFile, prependChangelog(oldChangelog, plan.changelog));
      },
    },
    {
      title: `Committing "${plan.commitMessage}"`,
      task: async (_ctx, task) => {
        try {
          result.commit = await git.commit(plan.commitMessage, files);
        } catch (e) {
          await restore();
          await git.unstage(files);
          throw e;
        }
        task.title = `Committed ${result.commit.slice(0, 12)} "${plan.commitMessage}"`;
      },
    },
    {
      title: `Tagging ${plan.gitTag}`,
      task: async () => {
        try {
          await git.annotatedTag(plan.gitTag, message);
        } catch (e) {
          await git.dropLastCommit();
          result.commit = undefined;
          throw e;
        }
        result.tagged = true;
      },
    },
  ];
  if (plan.pushRemote) {
    const remote = plan.pushRemote;
    tasks.push({
      title: `Pushing ${plan.gitTag} to ${remote}`,
      task: async () => {
        await git.pushTag(remote, plan.gitTag);
        result.pushed = true;
      },
    });
  }
  return tasks;
}
