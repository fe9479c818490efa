import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { builderImage } from '../src/toolchain/builder.ts';

describe('builder image tag', () => {
  it('follows the Dockerfile and the base, nothing else', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pause-builder-tag-'));
    try {
      const file = path.join(dir, 'Dockerfile');
      await writeFile(file, 'FROM ${BASE}\nRUN true\n');
      const a = await builderImage(file, 'localhost/debian:bookworm-slim');
      assert.match(a, /^localhost\/pause-build\/cross:[0-9a-f]{16}$/);
      assert.equal(await builderImage(file, 'localhost/debian:bookworm-slim'), a);
      assert.notEqual(await builderImage(file, 'docker.io/library/debian:bookworm-slim'), a);
      await writeFile(file, 'FROM ${BASE}\nRUN false\n');
      assert.notEqual(await builderImage(file, 'localhost/debian:bookworm-slim'), a);
      await assert.rejects(builderImage(path.join(dir, 'missing'), 'x'), PauseBuildError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
