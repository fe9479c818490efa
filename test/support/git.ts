/** Throwaway git repositories under /tmp for tests that tag, commit and release. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

/** A fixed identity and dates, so that tests do not depend on the machine's git config. */
export const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Test Maintainer',
  GIT_AUTHOR_EMAIL: 'maintainer@example.test',
  GIT_COMMITTER_NAME: 'Test Maintainer',
  GIT_COMMITTER_EMAIL: 'maintainer@example.test',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
} as const;

export interface TempRepo {
  readonly dir: string;
  git(...args: string[]): Promise<string>;
  /** Writes a file and commits it with `subject`. */
  commit(subject: string, files?: Record<string, string>): Promise<void>;
  remove(): Promise<void>;
}

export async function tempRepo(prefix = 'repo'): Promise<TempRepo> {
  const dir = await mkdtemp(path.join(tmpdir(), `wt-release-${prefix}-`));
  const git = async (...args: string[]) => (await execa('git', args, { cwd: dir, env: GIT_ENV, stdin: 'ignore' })).stdout.trim();
  await git('init', '-q', '-b', 'main');
  let n = 0;
  return {
    dir,
    git,
    async commit(subject, files = { [`file-${++n}.txt`]: `${subject}\n` }) {
      for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
      await git('add', '-A');
      await git('commit', '-q', '-m', subject);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
