/** The quick start's `npx pause-build`: the package's bin is built executable and runs. */
import assert from 'node:assert/strict';
import { access, constants, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { REPO_ROOT } from '../support/cli.ts';
import { nodeBinary } from '../support/tools.ts';

describe('package bin', () => {
  it('npm run build leaves the executable bin and the one bundled file it runs, and npx runs it', async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    const bin = path.join(REPO_ROOT, pkg.bin['pause-build']!);
    await execa('npm', ['run', 'build'], { cwd: REPO_ROOT });
    await access(bin, constants.X_OK);
    // The CLI is one file, main.js, that the bin runs; dist/package.json only marks them as CommonJS.
    assert.deepEqual((await readdir(path.dirname(bin))).sort(), [path.basename(bin), 'main.js', 'package.json'].sort());
    assert.deepEqual(JSON.parse(await readFile(path.join(path.dirname(bin), 'package.json'), 'utf8')), { type: 'commonjs' });
    assert.ok((await readFile(bin, 'utf8')).startsWith('#!/usr/bin/env node\n'));
    // Nothing of src/ is loaded at run time: the command families are inside the bundle.
    for (const file of [bin, path.join(path.dirname(bin), 'main.js')]) assert.doesNotMatch(await readFile(file, 'utf8'), /require\(["'][^"']*\/src\//);
    assert.match(await readFile(path.join(path.dirname(bin), 'main.js'), 'utf8'), /registerMirrorCommands/);
    const r = await execa('npx', ['--no-install', 'pause-build', '--tool-version'], { cwd: REPO_ROOT, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  it('the bin keeps a code cache per command in the user cache directory and runs from it, packages outside the bundle included', async () => {
    const cache = await mkdtemp('/tmp/wt-code-cache-');
    try {
      const bin = path.join(REPO_ROOT, 'dist', 'cli.js');
      await execa('npm', ['run', 'build'], { cwd: REPO_ROOT });
      // In Actions the secrets are masked first, through @actions/core (an ES module loaded by import()).
      const env = { XDG_CACHE_HOME: cache, GITHUB_ACTIONS: 'true', GITHUB_OUTPUT: '', GITHUB_STEP_SUMMARY: '' };
      for (const round of ['made', 'used']) {
        const r = await execa(process.execPath, [bin, 'image', '--help'], { env, reject: false });
        assert.equal(r.exitCode, 0, `${round}: ${r.stderr}`);
        assert.match(r.stdout, /--engine/);
        const files = await readdir(path.join(cache, 'pause-build', 'code-cache'));
        assert.equal(files.length, 1, files.join(' '));
        assert.match(files[0]!, new RegExp(`^node-${process.version.replace(/\./g, '\\.')}-${process.arch}-image-[0-9a-f]{12}\\.bin$`));
      }
      const off = await execa(process.execPath, [bin, 'clean', '--help'], { env: { ...env, NODE_DISABLE_COMPILE_CACHE: '1' }, reject: false });
      assert.equal(off.exitCode, 0, off.stderr);
      assert.equal((await readdir(path.join(cache, 'pause-build', 'code-cache'))).length, 1);
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
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
