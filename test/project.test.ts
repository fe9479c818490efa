import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { nearestVersionTag, resolveVersion } from '../src/project.ts';
import { type TempRepo, tempRepo } from './support/git.ts';

describe('resolveVersion', () => {
  let repo: TempRepo;
  before(async () => {
    repo = await tempRepo('project');
  });
  after(async () => {
    await repo.remove();
  });

  test('with no VERSION file and no tag: one-line error naming the three sources', async () => {
    await repo.commit('first');
    await assert.rejects(resolveVersion(repo.dir), (e: unknown) => e instanceof PauseBuildError && e.message === 'no version found' && /--version.*VERSION.*tag/.test(e.hint ?? ''));
  });

  test('falls back to the nearest tag that is a version, with or without v', async () => {
    await repo.git('tag', 'v3.9');
    await repo.commit('second');
    await repo.git('tag', '-a', '3.10', '-m', 'three ten');
    await repo.commit('third');
    // Nearer tags that are not versions are skipped, whatever they look like.
    await repo.git('tag', 'latest');
    await repo.git('tag', 'v3.x');
    await repo.git('tag', 'v3.11-rc.1');
    await repo.git('tag', '3.12-foo_bar');
    assert.equal((await resolveVersion(repo.dir)).tag, '3.10');
    assert.deepEqual(await nearestVersionTag(repo.dir), { tag: '3.10', version: { tag: '3.10', semver: '3.10.0', prerelease: false } });
    await repo.commit('fourth');
    await repo.git('tag', 'v3.11.0-rc.0');
    assert.equal((await resolveVersion(repo.dir)).tag, '3.11.0-rc.0');
  });

  test('a tag on a commit that is not an ancestor of HEAD is not "nearest"', async () => {
    const head = await repo.git('rev-parse', 'HEAD');
    await repo.git('checkout', '-q', '-b', 'side', 'HEAD~1');
    await repo.commit('side');
    await repo.git('tag', 'v9.0');
    await repo.git('checkout', '-q', 'main');
    assert.equal(await repo.git('rev-parse', 'HEAD'), head);
    assert.equal((await resolveVersion(repo.dir)).tag, '3.11.0-rc.0');
  });

  test('the VERSION file wins over tags, --version over both', async () => {
    await writeFile(path.join(repo.dir, 'VERSION'), '3.20\n');
    assert.equal((await resolveVersion(repo.dir)).tag, '3.20');
    assert.equal((await resolveVersion(repo.dir, 'v4.0')).tag, '4.0');
    await rm(path.join(repo.dir, 'VERSION'));
  });

  test('an invalid VERSION file is an error naming the file, not a fallback to tags', async () => {
    await writeFile(path.join(repo.dir, 'VERSION'), 'three\n');
    await assert.rejects(resolveVersion(repo.dir), (e: unknown) => e instanceof PauseBuildError && /VERSION file holds an invalid version "three"/.test(e.message) && e.hint!.includes(path.join(repo.dir, 'VERSION')));
    await rm(path.join(repo.dir, 'VERSION'));
  });

  test('outside a git repository with no VERSION: no version found', async () => {
    await assert.rejects(resolveVersion('/'), /no version found/);
  });
});
