import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { formatPlatform, parsePlatform, parsePlatforms, platformMatches } from '../src/oci/platform.ts';

describe('parsePlatform', () => {
  const valid: [string, string][] = [
    ['linux/amd64', 'linux/amd64'],
    ['linux/arm/v7', 'linux/arm/v7'],
    ['Linux/ARM64', 'linux/arm64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/armhf', 'linux/arm/v7'],
    ['windows/amd64', 'windows/amd64'],
    [' linux/s390x ', 'linux/s390x'],
  ];
  for (const [input, expected] of valid) {
    test(`${JSON.stringify(input)} → ${expected}`, () => {
      assert.equal(formatPlatform(parsePlatform(input)), expected);
    });
  }

  for (const input of ['linux', 'amd64', 'linux/', '/amd64', 'linux/arm/v7/x', 'linux amd64', 'linux/am d64', '']) {
    test(`refuses ${JSON.stringify(input)} in one line with the form`, () => {
      assert.throws(() => parsePlatform(input), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.equal(e.message, `invalid platform "${input.trim()}"`);
        assert.match(e.hint ?? '', /OS\/ARCH\[\/VARIANT\]/);
        return true;
      });
    });
  }

  test('lists: comma-separated and repeated, duplicates dropped, order kept', () => {
    assert.deepEqual(parsePlatforms(['linux/arm64,linux/amd64', 'linux/arm64', 'linux/arm/v7']).map(formatPlatform), ['linux/arm64', 'linux/amd64', 'linux/arm/v7']);
    assert.throws(() => parsePlatforms(' , '), /no platform given/);
  });
});

describe('platformMatches', () => {
  const entry = (os: string, architecture: string, variant?: string) => ({ os, architecture, ...(variant ? { variant } : {}) });
  const cases: [want: string, have: ReturnType<typeof entry>, matches: boolean][] = [
    ['linux/amd64', entry('linux', 'amd64'), true],
    ['linux/amd64', entry('linux', 'arm64', 'v8'), false],
    ['linux/amd64', entry('windows', 'amd64'), false],
    ['linux/arm64', entry('linux', 'arm64', 'v8'), true],
    ['linux/arm64/v8', entry('linux', 'arm64'), true],
    ['linux/arm64/v8', entry('linux', 'arm64', 'v8'), true],
    ['linux/arm', entry('linux', 'arm', 'v7'), true],
    ['linux/arm', entry('linux', 'arm', 'v6'), true],
    ['linux/arm/v7', entry('linux', 'arm', 'v7'), true],
    ['linux/arm/v7', entry('linux', 'arm', 'v6'), false],
    ['linux/amd64', entry('linux', 'x86_64'), true],
  ];
  for (const [want, have, matches] of cases) {
    test(`${want} ${matches ? 'selects' : 'does not select'} ${formatPlatform(have)}`, () => {
      assert.equal(platformMatches(parsePlatform(want), have), matches);
    });
  }
});
