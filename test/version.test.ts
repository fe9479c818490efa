import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import {
  type Bump,
  bumpVersion,
  compareVersions,
  formatVersion,
  imageTags,
  isLatest,
  maxVersion,
  parseVersion,
  semverLib,
  tryParseVersion,
  versionString,
} from '../src/version.ts';

const v = parseVersion;

describe('parseVersion', () => {
  const valid: [input: string, tag: string, semver: string, prerelease: boolean][] = [
    ['3.10', '3.10', '3.10.0', false],
    ['3.10.1', '3.10.1', '3.10.1', false],
    ['3.11.0-rc.1', '3.11.0-rc.1', '3.11.0-rc.1', true],
    ['v3.10', '3.10', '3.10.0', false],
    ['v3.11.0-rc.0', '3.11.0-rc.0', '3.11.0-rc.0', true],
    ['3.10.0', '3.10.0', '3.10.0', false],
    ['0.1', '0.1', '0.1.0', false],
    [' 3.10\n', '3.10', '3.10.0', false],
    ['3.11.0-alpha.1.x-y', '3.11.0-alpha.1.x-y', '3.11.0-alpha.1.x-y', true],
  ];
  for (const [input, tag, semver, prerelease] of valid) {
    test(`accepts ${JSON.stringify(input)}`, () => {
      assert.deepEqual(parseVersion(input), { tag, semver, prerelease });
    });
  }

  test('accepts what semver accepts, and only that', () => {
    const semver = semverLib();
    const long = `3.10.0-${'a'.repeat(250)}`;
    for (const v of ['3.10.0', '3.10.0-rc.0', '3.10.0-rc.01', '3.10.0-01a', '3.10.0-0', '3.10.0-00', '9007199254740991.0.0', '9007199254740992.0.0', '0.9007199254740992.0', long, `${long}x`, '3.10.0-a.b-c.007x']) {
      assert.equal(tryParseVersion(v) !== undefined, semver.valid(v) !== null, v);
    }
  });

  const invalid = ['3', '3.x', '03.1', '3.010', '3.10.1.1', '', ' ', 'latest', 'v', 'vv3.10', '3.10-', '3.10.1-rc.01', '3.10+build.1', '3.11-rc.1', 'V3.10', '-3.10'];
  for (const input of invalid) {
    test(`refuses ${JSON.stringify(input)} with one line and a hint`, () => {
      assert.throws(() => parseVersion(input), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.match(e.message, /^invalid version "/);
        assert.ok(e.hint, 'has a hint');
        assert.doesNotMatch(`${e.message}${e.hint}`, /\n/);
        return true;
      });
      assert.equal(tryParseVersion(input), undefined);
    });
  }

  test('a prerelease without the patch number is told how to write it', () => {
    assert.throws(() => parseVersion('3.11-rc.1'), (e: PauseBuildError) => e.hint === 'write 3.11.0-rc.1');
  });
});

describe('compareVersions', () => {
  const ascending = ['3.9', '3.10', '3.10.1', '3.11.0-alpha.0', '3.11.0-rc.0', '3.11.0-rc.1', '3.11.0-rc.2', '3.11.0-rc.10', '3.11', '4.0'];
  for (let i = 0; i + 1 < ascending.length; i++) {
    const [a, b] = [ascending[i]!, ascending[i + 1]!];
    test(`${a} < ${b}`, () => {
      assert.equal(compareVersions(v(a), v(b)), -1);
      assert.equal(compareVersions(v(b), v(a)), 1);
    });
  }
  const equal: [string, string][] = [['3.10', '3.10.0'], ['v3.10', '3.10'], ['3.11.0-rc.1', 'v3.11.0-rc.1']];
  for (const [a, b] of equal) test(`${a} = ${b}`, () => assert.equal(compareVersions(v(a), v(b)), 0));

  test('sorting a shuffled list gives the ascending order', () => {
    const shuffled = [...ascending].reverse().sort((a, b) => (a.length - b.length) || a.localeCompare(b));
    assert.deepEqual(shuffled.map(v).sort(compareVersions).map((x) => x.tag), ascending);
  });

  test('maxVersion picks the greatest, undefined for none', () => {
    assert.equal(maxVersion(['3.10', '3.11.0-rc.1', '3.9', '3.10.1'].map(v))?.tag, '3.11.0-rc.1');
    assert.equal(maxVersion([]), undefined);
  });
});

describe('formatVersion', () => {
  const table: [string, string][] = [['3.11.0', '3.11'], ['3.10.1', '3.10.1'], ['3.11.0-rc.0', '3.11.0-rc.0'], ['4.0.0', '4.0']];
  for (const [full, short] of table) test(`${full} → ${short}`, () => assert.equal(formatVersion(full), short));
  test('refuses a non-semver string', () => assert.throws(() => formatVersion('3.10'), PauseBuildError));
});

describe('bumpVersion', () => {
  const table: [from: string, bump: Bump, preid: string | undefined, to: string][] = [
    ['3.10', 'patch', undefined, '3.10.1'],
    ['3.10', 'minor', undefined, '3.11'],
    ['3.10', 'major', undefined, '4.0'],
    ['3.10.1', 'patch', undefined, '3.10.2'],
    ['3.10.1', 'minor', undefined, '3.11'],
    ['3.10', 'prerelease', undefined, '3.11.0-rc.0'],
    ['3.10', 'prerelease', 'rc', '3.11.0-rc.0'],
    ['3.10', 'prerelease', 'alpha', '3.11.0-alpha.0'],
    ['3.10.1', 'prerelease', 'rc', '3.11.0-rc.0'],
    ['3.11.0-rc.0', 'prerelease', 'rc', '3.11.0-rc.1'],
    ['3.11.0-rc.1', 'prerelease', 'rc', '3.11.0-rc.2'],
    ['3.11.0-alpha.3', 'prerelease', 'rc', '3.11.0-rc.0'],
    ['3.11.0-rc.1', 'patch', undefined, '3.11'],
    ['3.11.0-rc.1', 'minor', undefined, '3.11'],
    ['3.11.0-rc.1', 'major', undefined, '4.0'],
    ['v3.10', 'minor', undefined, '3.11'],
  ];
  for (const [from, bump, preid, to] of table) {
    test(`${from} + ${bump}${preid ? ` --preid ${preid}` : ''} = ${to}`, () => {
      const next = bumpVersion(v(from), bump, preid);
      assert.equal(next.tag, to);
      assert.equal(compareVersions(next, v(from)), 1);
    });
  }

  const refused: [from: string, bump: string, preid: string | undefined, message: RegExp][] = [
    ['3.11.0-rc.1', 'prerelease', 'alpha', /does not give a greater version \(3\.11\.0-alpha\.0\)/],
    ['3.10', 'prerelease', '1', /invalid prerelease id "1"/],
    ['3.10', 'prerelease', 'rc.1', /invalid prerelease id "rc\.1"/],
    ['3.10', 'premajor', undefined, /invalid bump "premajor"/],
    ['3.10', '', undefined, /invalid bump ""/],
  ];
  for (const [from, bump, preid, message] of refused) {
    test(`refuses ${from} + ${bump || '(empty)'}${preid ? ` --preid ${preid}` : ''}`, () => {
      assert.throws(() => bumpVersion(v(from), bump as Bump, preid), (e: unknown) => e instanceof PauseBuildError && message.test(e.message) && Boolean(e.hint));
    });
  }
});

describe('latest', () => {
  const released = ['3.9', '3.10', '3.11', '3.12.0-rc.0'].map(v);
  const table: [version: string, latest: boolean][] = [
    ['3.12', true],
    ['3.11.1', true],
    ['3.11', true],
    ['3.10.1', false],
    ['3.9', false],
    ['3.13.0-rc.1', false],
    ['3.12.0-rc.1', false],
  ];
  for (const [version, latest] of table) {
    test(`${version} ${latest ? 'is' : 'is not'} latest after ${released.map((r) => r.tag).join(', ')}`, () => {
      assert.equal(isLatest(v(version), released), latest);
      assert.deepEqual(imageTags(v(version), released), latest ? [v(version).tag, 'latest'] : [v(version).tag]);
    });
  }
  test('a prerelease is not latest even with nothing released', () => {
    assert.equal(isLatest(v('3.11.0-rc.1'), []), false);
    assert.equal(isLatest(v('3.11'), []), true);
  });
});

test('versionString is v<tag>-<revision>', () => {
  assert.equal(versionString(v('v3.10'), 'v3.10-3-gabc'), 'v3.10-v3.10-3-gabc');
});
