/** The quick start's `npx pause-build`: the package's bin is built executable and runs. */
import assert from 'node:assert/strict';
import { access, constants, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { REPO_ROOT } from '../support/cli.ts';
import { nodeBinary } from '../support/tools.ts';

describe('package bin', () => {
  it('npm run build leaves one executable bundled file, the bin, that npx runs', async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    const bin = path.join(REPO_ROOT, pkg.bin['pause-build']!);
    await execa('npm', ['run', 'build'], { cwd: REPO_ROOT });
    await access(bin, constants.X_OK);
    // The CLI is one file; dist/package.json only marks it as CommonJS.
    assert.deepEqual((await readdir(path.dirname(bin))).sort(), [path.basename(bin), 'package.json']);
    assert.deepEqual(JSON.parse(await readFile(path.join(path.dirname(bin), 'package.json'), 'utf8')), { type: 'commonjs' });
    const text = await readFile(bin, 'utf8');
    assert.ok(text.startsWith('#!/usr/bin/env node\n'));
    // Nothing of src/ is loaded at run time: the command families are inside the bundle.
    assert.doesNotMatch(text, /require\(["'][^"']*\/src\//);
    assert.match(text, /registerMirrorCommands/);
    const r = await execa('npx', ['--no-install', 'pause-build', '--tool-version'], { cwd: REPO_ROOT, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  for (const major of [22, 24] as const) {
    it(`npx pause-build runs under Node.js ${major} (the bin's shebang takes node from PATH)`, async () => {
      const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
      const bin = path.dirname(nodeBinary(major));
      const env = { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
      const seen = await execa('node', ['-p', 'process.versions.node'], { env });
      assert.equal(seen.stdout.split('.')[0], String(major));
      const r = await execa('npx', ['--no-install', 'pause-build', '--tool-version'], { cwd: REPO_ROOT, env, reject: false });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.trim(), pkg.version);
      const help = await execa('npx', ['--no-install', 'pause-build', 'image', '--help'], { cwd: REPO_ROOT, env, reject: false });
      assert.equal(help.exitCode, 0, help.stderr);
      assert.match(help.stdout, /--engine/);
    });
  }
});
