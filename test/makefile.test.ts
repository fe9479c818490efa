import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { REPO_ROOT } from './support/cli.ts';

/** The environment without REGISTRY, TAG, ARCH, PAUSE_BUILD or NPM from the machine running the tests. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !['REGISTRY', 'TAG', 'ARCH', 'PAUSE_BUILD', 'NPM', 'MAKEFLAGS'].includes(k)) env[k] = v;
  return env;
}

/** Runs make in the repository with pause-build (and npm) replaced by echo: prints the commands it would run. */
async function make(args: string[], env: Record<string, string> = {}): Promise<string[]> {
  const r = await execa('make', ['-s', '--no-print-directory', 'PAUSE_BUILD=echo pause-build', 'NPM=echo npm', ...args], {
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), ...env },
    extendEnv: false,
    reject: false,
  });
  assert.equal(r.exitCode, 0, `make ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

describe('Makefile: each target is one command', () => {
  const table: [args: string[], expected: string][] = [
    [[], 'pause-build image'],
    [['all'], 'pause-build image'],
    [['all-container'], 'pause-build image'],
    [['container'], 'pause-build image --arch amd64'],
    [['bin'], 'pause-build bin --arch amd64'],
    [['push', 'REGISTRY=registry.example/k8s'], 'pause-build push --arch amd64 --by-digest --registry registry.example/k8s/pause'],
    [['all-push', 'REGISTRY=registry.example/k8s'], 'pause-build push --registry registry.example/k8s/pause'],
    [['test'], 'npm test'],
    [['clean'], 'pause-build clean'],
    // ARCH picks the one arch of bin, container and push; all-* ignore it.
    [['bin', 'ARCH=arm64'], 'pause-build bin --arch arm64'],
    [['container', 'ARCH=s390x'], 'pause-build image --arch s390x'],
    [['push', 'ARCH=ppc64le', 'REGISTRY=r.example'], 'pause-build push --arch ppc64le --by-digest --registry r.example/pause'],
    [['all-container', 'ARCH=arm64'], 'pause-build image'],
    [['all-push', 'ARCH=arm64', 'REGISTRY=r.example'], 'pause-build push --registry r.example/pause'],
    // TAG becomes --version.
    [['bin', 'TAG=3.11'], 'pause-build bin --arch amd64 --version 3.11'],
    [['all', 'TAG=3.11.0-rc.0'], 'pause-build image --version 3.11.0-rc.0'],
    [['container', 'TAG=3.11', 'ARCH=arm'], 'pause-build image --arch arm --version 3.11'],
    [['push', 'TAG=3.11', 'ARCH=arm64', 'REGISTRY=r.example'], 'pause-build push --arch arm64 --by-digest --version 3.11 --registry r.example/pause'],
    [['all-push', 'TAG=3.11', 'REGISTRY=r.example'], 'pause-build push --version 3.11 --registry r.example/pause'],
  ];
  for (const [args, expected] of table) {
    test(`make ${args.join(' ') || '(default)'} → ${expected}`, async () => {
      assert.deepEqual(await make(args), [expected]);
    });
  }

  test('REGISTRY, TAG and ARCH are read from the environment too', async () => {
    assert.deepEqual(await make(['push'], { REGISTRY: 'env.example', TAG: '3.12', ARCH: 'arm' }), ['pause-build push --arch arm --by-digest --version 3.12 --registry env.example/pause']);
  });

  test('without REGISTRY, push ends with a bare --registry, so pause-build stops with "argument missing"', async () => {
    assert.deepEqual(await make(['push']), ['pause-build push --arch amd64 --by-digest --registry']);
  });

  test('every recipe is a single line (no logic in the Makefile)', async () => {
    const text = await readFile(path.join(REPO_ROOT, 'Makefile'), 'utf8');
    const recipes = text.split('\n').filter((l) => l.startsWith('\t'));
    const targets = [...text.matchAll(/^([a-z-]+):/gm)].map((m) => m[1]);
    assert.deepEqual(targets, ['all', 'all-container', 'container', 'bin', 'push', 'all-push', 'test', 'clean']);
    assert.equal(recipes.length, targets.length - 1, 'all has no recipe of its own');
    for (const r of recipes) assert.match(r, /^\t\$\((PAUSE_BUILD|NPM)\) [a-z]+/);
  });

  test('the default PAUSE_BUILD is npx pause-build', async () => {
    const r = await execa('make', ['-n', '--no-print-directory', 'clean'], { cwd: REPO_ROOT, env: cleanEnv(), extendEnv: false, reject: false });
    assert.equal(r.stdout.trim(), 'npx pause-build clean');
  });
});
