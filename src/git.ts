/** The git commands a release needs, run in one work tree. Every failure is a one-line PauseBuildError. */
import { capture } from './exec.ts';
import { PauseBuildError } from './errors.ts';

export interface Git {
  readonly root: string;
  /** `git status --porcelain`: one line per change, untracked files included; empty when clean. */
  status(): Promise<string[]>;
  /** Every tag in the repository. */
  tags(): Promise<string[]>;
  /** Subjects of the commits in `since..HEAD` (all of HEAD's history without `since`), newest first, merges left out. */
  subjects(since?: string): Promise<string[]>;
  head(): Promise<string | undefined>;
  commit(message: string, files: readonly string[]): Promise<string>;
  /** Puts the index entries of `files` back to HEAD's (undoes `git add`). */
  unstage(files: readonly string[]): Promise<void>;
  annotatedTag(name: string, message: string): Promise<void>;
  pushTag(remote: string, name: string): Promise<void>;
  /** Undoes the last commit, keeping nothing of it (the tree was clean before it). */
  dropLastCommit(): Promise<void>;
  deleteTag(name: string): Promise<void>;
}

async function run(root: string, args: string[], what: string, hint?: string): Promise<string> {
  const r = await capture('git', args, { cwd: root });
  if (r.exitCode !== 0) {
    const why = String(r.stderr).split('\n').find((l) => l.trim()) ?? `exit code ${r.exitCode}`;
    throw new PauseBuildError(`${what} failed in ${root}: ${why.replace(/^(fatal|error): /, '')}`, { hint });
  }
  return String(r.stdout);
}

const lines = (text: string) => text.split('\n').filter((l) => l.length > 0);

/** The top of the work tree that holds `dir`. */
export async function workTreeRoot(dir: string): Promise<string> {
  const r = await capture('git', ['rev-parse', '--show-toplevel'], { cwd: dir });
  if (r.exitCode !== 0 || !r.stdout) {
    throw new PauseBuildError(`${dir} is not in a git work tree`, { hint: 'run pause-build release in a clone of the project, or pass --root' });
  }
  return String(r.stdout).trim();
}

export function git(root: string): Git {
  return {
    root,
    status: async () => lines(await run(root, ['status', '--porcelain'], 'git status')),
    tags: async () => lines(await run(root, ['tag', '--list'], 'git tag --list')),
    subjects: async (since) =>
      lines(await run(root, ['log', '--no-merges', '--format=%s', since ? `${since}..HEAD` : 'HEAD', '--'], 'git log')),
    head: async () => {
      const r = await capture('git', ['rev-parse', '--verify', '-q', 'HEAD'], { cwd: root });
      return r.exitCode === 0 ? String(r.stdout).trim() : undefined;
    },
    commit: async (message, files) => {
      await run(root, ['add', '--', ...files], 'git add');
      await run(root, ['commit', '-q', '-m', message, '--', ...files], 'git commit', 'check `git config user.name` and `user.email`, then run the release again');
      return (await run(root, ['rev-parse', 'HEAD'], 'git rev-parse')).trim();
    },
    unstage: async (files) => {
      await run(root, ['reset', '-q', '--', ...files], 'git reset');
    },
    annotatedTag: async (name, message) => {
      await run(root, ['tag', '-a', name, '-m', message], `git tag ${name}`);
    },
    pushTag: async (remote, name) => {
      await run(root, ['push', '-q', remote, `refs/tags/${name}:refs/tags/${name}`], `git push ${remote} ${name}`, `the tag is made; push it yourself with: git push ${remote} ${name}`);
    },
    dropLastCommit: async () => {
      await run(root, ['reset', '-q', '--hard', 'HEAD~1'], 'git reset');
    },
    deleteTag: async (name) => {
      await run(root, ['tag', '-d', name], `git tag -d ${name}`);
    },
  };
}
