import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type CacheKeyInput, cacheKey, sourceInputs } from '../src/cache.ts';

const base: CacheKeyInput = {
  sources: [['pause.c', Buffer.from('int main(void){return 0;}')]],
  commands: [['x86_64-linux-gnu-gcc', '-Os', '-DVERSION=v3.10-abc', '-o', '/out/pause-linux-amd64', '/src/pause.c'], ['x86_64-linux-gnu-strip', '/out/pause-linux-amd64']],
  toolchain: 'podman-image:sha256:1111',
  arch: 'amd64',
};

describe('compile cache key', () => {
  it('is stable for the same input', () => {
    assert.equal(cacheKey(base), cacheKey({ ...base, sources: [['pause.c', Buffer.from('int main(void){return 0;}')]] }));
    assert.match(cacheKey(base), /^[0-9a-f]{64}$/);
  });

  const changes: [string, CacheKeyInput][] = [
    ['the source', { ...base, sources: [['pause.c', Buffer.from('int main(void){return 1;}')]] }],
    ['a local header', { ...base, sources: [...base.sources, ['x.h', Buffer.from('')]] }],
    ['the version string', { ...base, commands: [['x86_64-linux-gnu-gcc', '-Os', '-DVERSION=v3.10-abd', '-o', '/out/pause-linux-amd64', '/src/pause.c'], base.commands[1]!] }],
    ['the flags', { ...base, commands: [['x86_64-linux-gnu-gcc', '-O2', '-DVERSION=v3.10-abc', '-o', '/out/pause-linux-amd64', '/src/pause.c'], base.commands[1]!] }],
    ['the builder image', { ...base, toolchain: 'podman-image:sha256:2222' }],
    ['the arch', { ...base, arch: 'arm64' }],
    ['field boundaries', { ...base, sources: [['pause.c' + 'int', Buffer.from(' main(void){return 0;}')]] }],
  ];
  for (const [what, changed] of changes) {
    it(`changes with ${what}`, () => assert.notEqual(cacheKey(changed), cacheKey(base)));
  }

  it('follows quoted includes recursively and skips what is not a regular file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pause-cache-src-'));
    try {
      await writeFile(path.join(dir, 'pause.c'), '#include <stdio.h>\n#include "a.h"\n#include "missing.h"\n');
      await writeFile(path.join(dir, 'a.h'), '#include "b.h"\n#include "a.h"\n');
      await writeFile(path.join(dir, 'b.h'), 'int b;\n');
      const inputs = await sourceInputs(path.join(dir, 'pause.c'));
      assert.deepEqual(inputs.map(([n]) => n), ['a.h', 'b.h', 'pause.c']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
