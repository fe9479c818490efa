import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { loadContextFiles } from '../src/oci/context.ts';
import { parseDockerfile } from '../src/oci/dockerfile.ts';
import { gzip } from '../src/oci/tar.ts';

describe('build context', () => {
  let tmp: string;
  let ctx: string;
  const plan = (body: string) => parseDockerfile(`FROM scratch\n${body}\n`, { file: 'Dockerfile' });

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'wt-oci-context-'));
    ctx = path.join(tmp, 'ctx');
    await mkdir(path.join(ctx, 'bin'), { recursive: true });
    await writeFile(path.join(ctx, 'bin', 'pause'), 'ELF');
    await chmod(path.join(ctx, 'bin', 'pause'), 0o750);
    await writeFile(path.join(ctx, 'notes'), 'text');
    await chmod(path.join(ctx, 'notes'), 0o640);
    await writeFile(path.join(ctx, 'data.gz'), gzip(new Uint8Array(10)));
    await writeFile(path.join(tmp, 'secret'), 'outside');
    await symlink(path.join(tmp, 'secret'), path.join(ctx, 'escape'));
    await symlink('bin/pause', path.join(ctx, 'inside'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('reads each source once with its bytes and permission bits, following links inside', async () => {
    const files = await loadContextFiles(plan('ADD bin/pause /pause\nCOPY notes inside /etc/\nCOPY bin/pause /again'), ctx);
    assert.deepEqual(
      [...files].map(([k, v]) => [k, Buffer.from(v.bytes).toString(), v.mode.toString(8)]),
      [
        ['bin/pause', 'ELF', '750'],
        ['notes', 'text', '640'],
        ['inside', 'ELF', '750'],
      ],
    );
  });

  const refusals: [string, string, RegExp, RegExp][] = [
    ['ADD bin/pause-linux-amd64 /pause', 'a missing binary', /^Dockerfile:2: ADD bin\/pause-linux-amd64: not found in the build context /, /run `pause-build bin` first/],
    ['COPY escape /x', 'a link out of the context', /^Dockerfile:2: COPY escape: links outside the build context /, /copy the file into the build context/],
    ['COPY bin /x', 'a directory', /^Dockerfile:2: COPY bin: not a regular file$/, /directories are not supported/],
    ['ADD data.gz /x', 'an archive given to ADD', /^Dockerfile:2: ADD data\.gz: is an archive, which ADD would unpack$/, /use COPY/],
  ];
  for (const [line, what, message, hint] of refusals) {
    it(`refuses ${what}`, async () => {
      await assert.rejects(loadContextFiles(plan(line), ctx), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.match(e.message, message);
        assert.match(e.hint ?? '', hint);
        return true;
      });
    });
  }

  it('takes an archive given to COPY as a file', async () => {
    const files = await loadContextFiles(plan('COPY data.gz /x'), ctx);
    assert.deepEqual([...files.keys()], ['data.gz']);
  });

  it('names a missing context', async () => {
    await assert.rejects(loadContextFiles(plan('COPY a /a'), path.join(tmp, 'nope')), /^PauseBuildError: build context .*nope does not exist$/);
  });
});
