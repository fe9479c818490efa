import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { DEFAULT_ARCHES, PLATFORMS, platformFor, platformString, selectPlatforms, selectWindows } from '../src/platforms.ts';

describe('arch table', () => {
  it('builds the five upstream arches by default, riscv64 only on request', () => {
    assert.deepEqual(DEFAULT_ARCHES, ['amd64', 'arm', 'arm64', 'ppc64le', 's390x']);
    assert.equal(platformFor('riscv64').default, false);
  });

  const platforms: [string, string, string][] = [
    ['amd64', 'linux/amd64', 'x86_64-linux-gnu'],
    ['arm', 'linux/arm/v7', 'arm-linux-gnueabihf'],
    ['arm64', 'linux/arm64/v8', 'aarch64-linux-gnu'],
    ['ppc64le', 'linux/ppc64le', 'powerpc64le-linux-gnu'],
    ['s390x', 'linux/s390x', 's390x-linux-gnu'],
    ['riscv64', 'linux/riscv64', 'riscv64-linux-gnu'],
  ];
  for (const [arch, platform, triple] of platforms) {
    it(`${arch} is ${platform} built by ${triple}-gcc`, () => {
      const p = platformFor(arch);
      assert.equal(platformString(p), platform);
      assert.equal(p.triple, triple);
      assert.ok(p.debPackages.some((pkg) => pkg.startsWith('gcc')));
    });
  }

  it('names are unique', () => {
    assert.equal(new Set(PLATFORMS.map((p) => p.arch)).size, PLATFORMS.length);
  });
});

describe('--arch selection', () => {
  const cases: [string[] | undefined, string[]][] = [
    [undefined, ['amd64', 'arm', 'arm64', 'ppc64le', 's390x']],
    [['arm64'], ['arm64']],
    [['s390x,amd64'], ['amd64', 's390x']],
    [['arm', 'amd64', 'arm'], ['amd64', 'arm']],
    [['all'], ['amd64', 'arm', 'arm64', 'ppc64le', 's390x', 'riscv64']],
    [['riscv64'], ['riscv64']],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} → ${expected.join(',')}`, () => {
      assert.deepEqual(selectPlatforms(input).map((p) => p.arch), expected);
    });
  }

  // Linux arches, then Windows builds: Windows only when named.
  const windowsCases: [string[] | undefined, string[], string[]][] = [
    [undefined, ['amd64', 'arm', 'arm64', 'ppc64le', 's390x'], []],
    [['all'], ['amd64', 'arm', 'arm64', 'ppc64le', 's390x', 'riscv64'], []],
    [['windows/amd64'], [], ['windows-amd64']],
    [['Windows'], [], ['windows-amd64']],
    [['all,windows'], ['amd64', 'arm', 'arm64', 'ppc64le', 's390x', 'riscv64'], ['windows-amd64']],
    [['amd64', 'windows/amd64'], ['amd64'], ['windows-amd64']],
  ];
  for (const [input, linux, windows] of windowsCases) {
    it(`${JSON.stringify(input)} → linux ${linux.join(',') || 'none'}, windows ${windows.join(',') || 'none'}`, () => {
      assert.deepEqual(selectPlatforms(input).map((p) => p.arch), linux);
      assert.deepEqual(selectWindows(input).map((p) => p.name), windows);
    });
  }

  it('windows/arm64 is not a Windows build here', () => {
    assert.throws(() => selectPlatforms(['windows/arm64']), /unknown arch "windows\/arm64"/);
  });

  for (const empty of [[''], [','], [' , ']]) {
    it(`${JSON.stringify(empty)} names no arch: refused rather than read as every arch`, () => {
      assert.throws(() => selectPlatforms(empty), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.match(e.message, /^--arch ".*" names no arch$/);
        assert.match(e.hint ?? '', /leave --arch out for amd64,arm,arm64,ppc64le,s390x/);
        return true;
      });
    });
  }

  it('an unknown arch names itself and lists the supported ones', () => {
    assert.throws(() => selectPlatforms(['amd64,mips']), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.match(e.message, /unknown arch "mips"/);
      assert.equal(e.hint, 'supported: amd64, arm, arm64, ppc64le, s390x, riscv64, and windows/amd64 (or windows)');
      return true;
    });
  });
});
