import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { PauseBuildError } from '../src/errors.ts';
import {
  type PlanInput,
  type ReleasePlan,
  changelogSection,
  formatPlan,
  planRelease,
  prependChangelog,
  releaseDate,
  requireClean,
} from '../src/release.ts';
import { gatherPlan } from '../src/tasks/release.ts';
import { parseVersion } from '../src/version.ts';
import { resolveSourceDateEpoch } from '../src/project.ts';
import { runCli } from './support/cli.ts';
import { GIT_ENV, type TempRepo, tempRepo } from './support/git.ts';

const DATE_ENV = { SOURCE_DATE_EPOCH: '1735776000' }; // 2025-01-02
const ENV = { ...GIT_ENV, ...DATE_ENV };

function input(over: Partial<PlanInput> = {}): PlanInput {
  return {
    current: parseVersion('3.10'),
    request: { bump: 'minor' },
    gitTags: ['v3.9', 'v3.10', 'not-a-version'],
    subjects: ['Fix b', 'Add a'],
    previousTag: 'v3.10',
    date: '2025-01-02',
    changes: [],
    ...over,
  };
}

function refusal(message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PauseBuildError, String(e));
    assert.match(e.message, message);
    assert.ok(e.hint, 'has a hint');
    assert.doesNotMatch(`${e.message} ${e.hint}`, /\n/);
    return true;
  };
}

describe('planRelease (pure)', () => {
  test('--bump minor from 3.10: 3.11, tag v3.11, latest, changelog from the subjects', () => {
    const plan = planRelease(input());
    assert.equal(plan.next, '3.11');
    assert.equal(plan.gitTag, 'v3.11');
    assert.equal(plan.commitMessage, 'Release 3.11');
    assert.deepEqual(plan.imageTags, ['3.11', 'latest']);
    assert.equal(plan.latest, true);
    assert.deepEqual(plan.images, []);
    assert.equal(plan.image, undefined);
    assert.deepEqual(plan.highestReleased, { version: '3.10', where: 'git tag v3.10' });
    assert.equal(plan.changelog, '## 3.11 - 2025-01-02\n\n- Fix b\n- Add a\n');
    assert.equal(plan.clean, true);
  });

  const table: [request: PlanInput['request'], next: string, latest: boolean][] = [
    [{ bump: 'patch' }, '3.10.1', true],
    [{ bump: 'major' }, '4.0', true],
    [{ bump: 'prerelease' }, '3.11.0-rc.0', false],
    [{ bump: 'prerelease', preid: 'beta' }, '3.11.0-beta.0', false],
    [{ version: '3.12' }, '3.12', true],
    [{ version: 'v3.11.0-rc.1' }, '3.11.0-rc.1', false],
  ];
  for (const [request, next, latest] of table) {
    test(`${JSON.stringify(request)} → ${next}${latest ? ' (latest)' : ''}`, () => {
      const plan = planRelease(input({ request }));
      assert.equal(plan.next, next);
      assert.equal(plan.gitTag, `v${next}`);
      assert.equal(plan.latest, latest);
      assert.equal(plan.imageTags.includes('latest'), latest);
    });
  }

  test('with a registry: image references, and its tags count as released', () => {
    const plan = planRelease(input({ registry: 'registry.example/k8s/pause', registryTags: ['3.10', 'latest', 'sha256-abc', '3.10-linux-amd64'] }));
    assert.equal(plan.image, 'registry.example/k8s/pause');
    assert.deepEqual(plan.images, ['registry.example/k8s/pause:3.11', 'registry.example/k8s/pause:latest']);
    assert.throws(
      () => planRelease(input({ registry: 'registry.example/pause', registryTags: ['3.11', '3.12'] })),
      refusal(/^3\.11 is lower than the released 3\.12 \(registry\.example\/pause:3\.12\)$/),
    );
    assert.throws(() => planRelease(input({ registry: 'registry.example/pause', registryTags: ['3.11'] })), refusal(/^3\.11 is already released \(registry\.example\/pause:3\.11\)$/));
  });

  test('a release below a greater prerelease elsewhere is still latest; a release below a greater release is refused', () => {
    const plan = planRelease(input({ gitTags: ['v3.10', 'v3.11.0-rc.0'], request: { version: '3.11' } }));
    assert.equal(plan.latest, true);
    assert.throws(() => planRelease(input({ gitTags: ['v3.10', 'v3.11.0-rc.0'], request: { version: '3.10.1' } })), refusal(/lower than the released 3\.11\.0-rc\.0 \(git tag v3\.11\.0-rc\.0\)/));
  });

  const refused: [string, Partial<PlanInput>, RegExp][] = [
    ['equal version', { request: { version: '3.10' } }, /^3\.10 is already released \(git tag v3\.10\)$/],
    ['equal version, other spelling', { request: { version: '3.10.0' } }, /^3\.10\.0 is already released/],
    ['equal to a tag without v', { gitTags: ['3.11'], request: { bump: 'minor' } }, /^3\.11 is already released \(git tag 3\.11\)$/],
    ['lower version', { request: { version: '3.9.1' } }, /^3\.9\.1 is lower than the released 3\.10 \(git tag v3\.10\)$/],
    ['invalid version', { request: { version: '3.x' } }, /^invalid version "3\.x"$/],
    ['invalid bump', { request: { bump: 'huge' } }, /^invalid bump "huge"$/],
    ['--bump with a version', { request: { bump: 'minor', version: '3.12' } }, /^--bump minor and the version 3\.12 were both given$/],
    ['--preid without --bump prerelease', { request: { bump: 'minor', preid: 'rc' } }, /^--preid is only for --bump prerelease$/],
    ['nothing requested', { request: {} }, /^no version to release$/],
    ['prerelease going back', { current: parseVersion('3.11.0-rc.1'), request: { bump: 'prerelease', preid: 'alpha' } }, /does not give a greater version/],
  ];
  for (const [name, over, message] of refused) {
    test(`refuses: ${name}`, () => assert.throws(() => planRelease(input(over)), refusal(message)));
  }

  test('requireClean names the first change and how many', () => {
    assert.doesNotThrow(() => requireClean(planRelease(input())));
    assert.throws(() => requireClean(planRelease(input({ changes: [' M src/a.ts', '?? new.txt'] }))), refusal(/^the work tree has 2 uncommitted changes \(src\/a\.ts, …\)$/));
  });

  test('formatPlan says what would happen, and that nothing changed', () => {
    const text = formatPlan(planRelease(input({ registry: 'r.example/pause', registryTags: [] })), false);
    assert.match(text, /^Release plan for 3\.11 \(nothing changed; run again with --yes to carry it out\)$/m);
    assert.match(text, /^ {2}git tag +v3\.11 \(annotated, on a new commit "Release 3\.11"\)$/m);
    assert.match(text, /^ {2}registry +r\.example\/pause:3\.11, r\.example\/pause:latest$/m);
    assert.match(text, /^ {2}latest +yes$/m);
    assert.match(text, /2 commits since v3\.10/);
  });
});

describe('changelog', () => {
  const section = changelogSection('3.11', '2025-01-02', ['Fix b', 'Add a']);
  test('section: heading and one bullet per subject', () => {
    assert.equal(section, '## 3.11 - 2025-01-02\n\n- Fix b\n- Add a\n');
    assert.equal(changelogSection('3.11', '2025-01-02', [], 'v3.10'), '## 3.11 - 2025-01-02\n\n- No changes since v3.10.\n');
  });
  const table: [name: string, before: string | undefined, after: string][] = [
    ['no file', undefined, `# Changelog\n\n${section}`],
    ['empty file', '\n', `# Changelog\n\n${section}`],
    ['title and older entries', '# Changelog\n\nAll notable changes.\n\n## 3.10 - 2024-05-01\n\n- Old\n', `# Changelog\n\nAll notable changes.\n\n${section}\n## 3.10 - 2024-05-01\n\n- Old\n`],
    ['title only', '# Changelog\n', `# Changelog\n\n${section}`],
    ['entries without a title', '## 3.10 - 2024-05-01\n\n- Old\n', `${section}\n## 3.10 - 2024-05-01\n\n- Old\n`],
  ];
  for (const [name, before, expected] of table) test(`prepend: ${name}`, () => assert.equal(prependChangelog(before, section), expected));

  test('releaseDate: SOURCE_DATE_EPOCH, else today (UTC)', () => {
    assert.equal(releaseDate(DATE_ENV), '2025-01-02');
    assert.equal(releaseDate({}, new Date('2024-12-31T23:59:59Z')), '2024-12-31');
    assert.throws(() => releaseDate({ SOURCE_DATE_EPOCH: 'yesterday' }), refusal(/SOURCE_DATE_EPOCH "yesterday" is not a whole number/));
  });

  // Images and release notes read the variable through one parser: the same inputs, the same answer.
  const epochs: [string, string | RegExp][] = [[' 1735776000 ', '2025-01-02'], ['0', '1970-01-01'], ['1.5', /not a whole number/], ['-1', /not a whole number/], ['99999999999999', /not a whole number/]];
  for (const [raw, expected] of epochs) {
    test(`releaseDate and images agree on SOURCE_DATE_EPOCH=${JSON.stringify(raw)}`, async () => {
      const repo = await mkdtemp(path.join(tmpdir(), 'epoch-'));
      try {
        if (typeof expected === 'string') {
          assert.equal(releaseDate({ SOURCE_DATE_EPOCH: raw }), expected);
          const { epoch } = await resolveSourceDateEpoch(repo, { SOURCE_DATE_EPOCH: raw });
          assert.equal(new Date(epoch * 1000).toISOString().slice(0, 10), expected);
        } else {
          assert.throws(() => releaseDate({ SOURCE_DATE_EPOCH: raw }), expected);
          await assert.rejects(resolveSourceDateEpoch(repo, { SOURCE_DATE_EPOCH: raw }), expected);
        }
      } finally {
        await rm(repo, { recursive: true, force: true });
      }
    });
  }
});

/** What must not move when a release is refused or only planned. */
async function snapshot(repo: TempRepo) {
  return {
    head: await repo.git('rev-parse', 'HEAD'),
    tags: await repo.git('tag', '--list'),
    status: await repo.git('status', '--porcelain'),
    version: await readFile(path.join(repo.dir, 'VERSION'), 'utf8'),
    changelog: await readFile(path.join(repo.dir, 'CHANGELOG.md'), 'utf8').catch(() => undefined),
  };
}

describe('pause-build release in a git repository', () => {
  let repo: TempRepo;
  let remote: string;
  before(async () => {
    repo = await tempRepo('release');
    await repo.commit('Initial import', { 'VERSION': '3.10\n', 'pause.c': 'int main(void) { return 0; }\n' });
    await repo.git('tag', '-a', 'v3.10', '-m', 'Release 3.10');
    await repo.commit('Reap zombies faster', { 'pause.c': '/* faster */\n' });
    await repo.commit('Document signals', { 'README': 'signals\n' });
    remote = await mkdtemp(path.join(tmpdir(), 'wt-release-remote-'));
    await execa('git', ['init', '-q', '--bare', remote]);
    await repo.git('remote', 'add', 'origin', remote);
  });
  after(async () => {
    await repo.remove();
    await rm(remote, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCli(['release', ...args], { cwd: repo.dir, env: ENV });

  test('the default only prints the plan: same HEAD, no new tag, clean tree', async () => {
    const before = await snapshot(repo);
    const r = await cli('--bump', 'minor');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^Release plan for 3\.11 /);
    assert.match(r.stdout, /^ {2}current version +3\.10$/m);
    assert.match(r.stdout, /^ {2}next version +3\.11 \(minor bump\)$/m);
    assert.match(r.stdout, /^ {2}image tags +3\.11, latest$/m);
    assert.match(r.stdout, /2 commits since v3\.10/);
    assert.deepEqual(await snapshot(repo), before);
    assert.equal(before.status, '');
  });

  test('--json prints the plan as JSON, from a subdirectory too', async () => {
    await repo.commit('Add docs', { 'docs-placeholder': 'x\n' });
    const r = await runCli(['release', '--bump', 'prerelease', '--json', '--root', path.join(repo.dir, '.git', '..')], { cwd: tmpdir(), env: ENV });
    assert.equal(r.exitCode, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as ReleasePlan & { dryRun: boolean };
    assert.equal(plan.dryRun, true);
    assert.equal(plan.next, '3.11.0-rc.0');
    assert.equal(plan.latest, false);
    assert.deepEqual(plan.imageTags, ['3.11.0-rc.0']);
    assert.equal(plan.changelog, '## 3.11.0-rc.0 - 2025-01-02\n\n- Add docs\n- Document signals\n- Reap zombies faster\n');
  });

  test('refusals are one line each and change nothing', async () => {
    const before = await snapshot(repo);
    const cases: [string[], RegExp][] = [
      [['3.10', '--yes'], /^error: 3\.10 is already released \(git tag v3\.10\) — /],
      [['3.9.9', '--yes'], /^error: 3\.9\.9 is lower than the released 3\.10 \(git tag v3\.10\) — /],
      [['3.x', '--yes'], /^error: invalid version "3\.x" — /],
      [['--bump', 'sideways', '--yes'], /^error: invalid bump "sideways" — /],
      [['--bump', 'minor', '3.12', '--yes'], /^error: --bump minor and the version 3\.12 were both given — /],
      [['--registry', '127.0.0.1:9/pause', '--insecure-registry', '127.0.0.1:9', '--bump', 'minor', '--yes'], /^error: .*127\.0\.0\.1:9.* unreachable/],
      [['--registry', 'Not A Repo', '--bump', 'minor'], /^error: .*Not A Repo/],
    ];
    // Refusals change nothing, so they can run side by side.
    const results = await Promise.all(cases.map(([args]) => cli(...args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = results[i]!;
      assert.equal(r.exitCode, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
    assert.deepEqual(await snapshot(repo), before);
  });

  test('a dirty tree is refused with --yes, and nothing is changed', async () => {
    await writeFile(path.join(repo.dir, 'pause.c'), '/* local edit */\n');
    const before = await snapshot(repo);
    const plan = await cli('--bump', 'minor');
    assert.equal(plan.exitCode, 0, plan.stderr);
    assert.match(plan.stdout, /work tree +1 uncommitted change\(s\): --yes will refuse/);
    const r = await cli('--bump', 'minor', '--yes');
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /^error: the work tree has 1 uncommitted change \(pause\.c\) — commit or stash them, then run the release again$/m);
    assert.deepEqual(await snapshot(repo), before);
    assert.equal(await readFile(path.join(repo.dir, 'pause.c'), 'utf8'), '/* local edit */\n');
    await repo.git('checkout', '--', 'pause.c');
    // An untracked file counts too.
    await writeFile(path.join(repo.dir, 'notes.txt'), 'x\n');
    const untracked = await cli('--bump', 'minor', '--yes');
    assert.match(untracked.stderr, /uncommitted change \(notes\.txt\)/);
    await rm(path.join(repo.dir, 'notes.txt'));
  });

  test('a failing commit puts VERSION and CHANGELOG.md back', async () => {
    const hook = path.join(repo.dir, '.git', 'hooks', 'pre-commit');
    await writeFile(hook, '#!/bin/sh\necho "hook says no" >&2\nexit 1\n');
    await chmod(hook, 0o755);
    const before = await snapshot(repo);
    const r = await cli('--bump', 'minor', '--yes');
    await rm(hook);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /^error: git commit failed in .*: hook says no — /m);
    assert.deepEqual(await snapshot(repo), before);
  });

  test('--yes --bump minor commits "Release 3.11" and makes the annotated tag v3.11', async () => {
    const parent = await repo.git('rev-parse', 'HEAD');
    const r = await cli('--yes', '--bump', 'minor');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^Released 3\.11$/m);

    const head = await repo.git('rev-parse', 'HEAD');
    assert.notEqual(head, parent);
    assert.equal(await repo.git('rev-parse', 'HEAD~1'), parent);
    assert.equal(await repo.git('log', '-1', '--format=%s'), 'Release 3.11');
    assert.equal(await repo.git('show', '--format=', '--name-only', 'HEAD'), 'CHANGELOG.md\nVERSION');
    assert.match(r.stdout, new RegExp(`commit +${head}`));

    assert.equal(await repo.git('cat-file', '-t', 'v3.11'), 'tag', 'annotated, not lightweight');
    assert.equal(await repo.git('rev-parse', 'v3.11^{commit}'), head);
    assert.match(await repo.git('tag', '-l', '--format=%(contents)', 'v3.11'), /^Release 3\.11\n\n- Add docs\n- Document signals\n- Reap zombies faster/);

    assert.equal(await readFile(path.join(repo.dir, 'VERSION'), 'utf8'), '3.11\n');
    assert.equal(
      await readFile(path.join(repo.dir, 'CHANGELOG.md'), 'utf8'),
      '# Changelog\n\n## 3.11 - 2025-01-02\n\n- Add docs\n- Document signals\n- Reap zombies faster\n',
    );
    assert.equal(await repo.git('status', '--porcelain'), '');
    assert.equal((await execa('git', ['ls-remote', '--tags', remote])).stdout, '', 'not pushed without --push-tag');
  });

  test('after 3.11: equal refused, the next changelog starts at v3.11, --push-tag pushes the tag', async () => {
    const equal = await cli('3.11', '--yes');
    assert.equal(equal.exitCode, 1);
    assert.match(equal.stderr, /^error: 3\.11 is already released \(git tag v3\.11\)/);

    await repo.commit('Fix a typo', { 'README': 'signals, fixed\n' });
    const r = await cli('--yes', '--bump', 'patch', '--push-tag');
    assert.equal(r.exitCode, 0, r.stderr);
    const changelog = await readFile(path.join(repo.dir, 'CHANGELOG.md'), 'utf8');
    assert.match(changelog, /^# Changelog\n\n## 3\.11\.1 - 2025-01-02\n\n- Fix a typo\n\n## 3\.11 - 2025-01-02\n/);
    const remoteTags = (await execa('git', ['ls-remote', '--tags', remote])).stdout;
    assert.match(remoteTags, /\trefs\/tags\/v3\.11\.1$/m);
    assert.doesNotMatch(remoteTags, /refs\/tags\/v3\.11$/m, 'only the new tag is pushed');
  });

  test('registry tags are checked (in process, with a stand-in lister)', async () => {
    const listed: string[] = [];
    const listRegistryTags = async (repository: string) => {
      listed.push(repository);
      return ['3.12', 'latest'];
    };
    await assert.rejects(
      gatherPlan({ dir: repo.dir, request: { bump: 'minor' }, registry: 'registry.example/k8s/pause', env: DATE_ENV }, { listRegistryTags }),
      refusal(/^3\.12 is already released \(registry\.example\/k8s\/pause:3\.12\)$/),
    );
    assert.deepEqual(listed, ['registry.example/k8s/pause']);
    const { plan } = await gatherPlan({ dir: repo.dir, request: { version: '3.13' }, registry: 'registry.example/k8s/pause', env: DATE_ENV }, { listRegistryTags });
    assert.deepEqual(plan.images, ['registry.example/k8s/pause:3.13', 'registry.example/k8s/pause:latest']);
    // Without --registry the lister is not asked.
    await gatherPlan({ dir: repo.dir, request: { bump: 'minor' }, env: DATE_ENV }, { listRegistryTags });
    assert.equal(listed.length, 2);
  });

  test('outside a git work tree: one line naming the directory', async () => {
    const r = await runCli(['release', '--bump', 'minor'], { cwd: tmpdir(), env: ENV });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, new RegExp(`^error: ${tmpdir()} is not in a git work tree — `));
  });
});
