import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { codeCacheFile } from '../src/code-cache.ts';
import { REPO_ROOT } from './support/cli.ts';

const TSX = path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');

/** A bundle that uses what the real one does: require beside it, import() of a package (src/packages.ts), __filename. */
const BUNDLE = `#!/usr/bin/env node
const p = require('node:path');
globalThis[Symbol.for('pause-build.import')]('node:os').then((os) => process.stdout.write(JSON.stringify({ file: p.basename(__filename), arch: os.arch() === process.arch, args: process.argv.slice(1) }) + '\\n'));
`;

/** Runs `bundle` through runBundle in a process of its own (the cache is written as it exits). */
async function run(bundle: string, cache: string, env: Record<string, string> = {}) {
  const script = `import { runBundle } from ${JSON.stringify(path.join(REPO_ROOT, 'src', 'code-cache.ts'))}; process.stderr.write(runBundle(${JSON.stringify(bundle)}, ${JSON.stringify(cache)}) ? 'cached' : 'compiled');`;
  const r = await execa(process.execPath, ['--import', TSX, '--input-type=module', '-e', script, 'publish', '--x'], { env, reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  return { used: r.stderr === 'cached', out: JSON.parse(r.stdout) as { file: string; arch: boolean; args: string[] } };
}

describe('code cache', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp('/tmp/wt-code-cache-');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is made by the first run, used by the next, and only for the bundle it was made from', async () => {
    const bundle = path.join(dir, 'main.js');
    const cache = path.join(dir, 'cache', 'c.bin');
    await writeFile(bundle, BUNDLE);
    const first = await run(bundle, cache);
    assert.equal(first.used, false);
    assert.deepEqual(first.out, { file: 'main.js', arch: true, args: ['publish', '--x'] });
    const bytes = await readFile(cache);
    assert.deepEqual(bytes.subarray(0, 32), createHash('sha256').update(BUNDLE).digest());
    const second = await run(bundle, cache);
    assert.equal(second.used, true);
    assert.deepEqual(second.out, first.out);
    // Another bundle of the same length (V8 itself compares only the length): compiled, and the cache replaced.
    const other = BUNDLE.replace("'\\n'", "'\\r'");
    assert.equal(other.length, BUNDLE.length);
    await writeFile(bundle, other);
    assert.equal((await run(bundle, cache)).used, false);
    assert.deepEqual((await readFile(cache)).subarray(0, 32), createHash('sha256').update(other).digest());
    assert.equal((await run(bundle, cache)).used, true);
  });

  it('compiles without a cache that is torn or corrupt, and replaces it', async () => {
    const bundle = path.join(dir, 'torn.js');
    const cache = path.join(dir, 'torn.bin');
    await writeFile(bundle, BUNDLE);
    await run(bundle, cache);
    const good = await readFile(cache);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 1]! ^= 0xff;
    for (const bad of [good.subarray(0, good.length - 7), flipped, Buffer.alloc(0)]) {
      await writeFile(cache, bad);
      const r = await run(bundle, cache);
      assert.equal(r.used, false);
      assert.equal(r.out.file, 'torn.js');
      assert.deepEqual((await readFile(cache)).subarray(0, 32), good.subarray(0, 32));
      assert.equal((await run(bundle, cache)).used, true);
    }
  });

  it('lives in the user cache directory, one file per Node.js, command and install; none when disabled', () => {
    const env = { XDG_CACHE_HOME: '/home/u/.cache' };
    const bundle = '/opt/pause-build/dist/main.js';
    const file = codeCacheFile(bundle, env, ['publish', '--registry', 'r'])!;
    assert.match(file, new RegExp(`^/home/u/\\.cache/pause-build/code-cache/node-${process.version.replace(/\./g, '\\.')}-${process.arch}-publish-[0-9a-f]{12}\\.bin$`));
    assert.equal(codeCacheFile(bundle, env, ['--debug', 'publish']), file);
    assert.notEqual(codeCacheFile('/home/u/other/dist/main.js', env, ['publish']), file);
    assert.match(codeCacheFile(bundle, env, ['--debug', 'mirror'])!, /-mirror-[0-9a-f]{12}\.bin$/);
    for (const args of [['--tool-version'], ['../../etc'], ['publsh']]) assert.match(codeCacheFile(bundle, env, args)!, /-cli-[0-9a-f]{12}\.bin$/);
    assert.equal(codeCacheFile(bundle, { ...env, NODE_DISABLE_COMPILE_CACHE: '1' }, ['publish']), undefined);
    assert.equal(codeCacheFile(bundle, { XDG_CACHE_HOME: 'relative', HOME: '' }, ['publish'])?.startsWith('relative'), undefined);
  });
});
