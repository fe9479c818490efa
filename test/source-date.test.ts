import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { resolveSourceDateEpoch } from '../src/project.ts';

describe('SOURCE_DATE_EPOCH', () => {
  let tmp: string;
  let repo: string;
  let plain: string;
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'wt-oci-epoch-'));
    repo = path.join(tmp, 'repo');
    plain = path.join(tmp, 'plain');
    await execa('mkdir', ['-p', repo, plain]);
    await execa('git', ['init', '-q', repo]);
    await execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'x'], {
      cwd: repo,
      env: { GIT_COMMITTER_DATE: '@1600000000 +0200', GIT_AUTHOR_DATE: '@1500000000 +0000' },
    });
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('takes the variable when set, over git', async () => {
    assert.deepEqual(await resolveSourceDateEpoch(repo, { SOURCE_DATE_EPOCH: '1700000000' }), { epoch: 1700000000, from: 'SOURCE_DATE_EPOCH' });
    assert.deepEqual(await resolveSourceDateEpoch(repo, { SOURCE_DATE_EPOCH: '0' }), { epoch: 0, from: 'SOURCE_DATE_EPOCH' });
  });

  it('else the commit time (not the author time) of HEAD', async () => {
    assert.deepEqual(await resolveSourceDateEpoch(repo, {}), { epoch: 1600000000, from: 'git' });
    assert.deepEqual(await resolveSourceDateEpoch(repo, { SOURCE_DATE_EPOCH: '' }), { epoch: 1600000000, from: 'git' });
  });

  it('else 0, said so', async () => {
    assert.deepEqual(await resolveSourceDateEpoch(plain, {}), { epoch: 0, from: 'default' });
  });

  for (const bad of ['abc', '-1', '1.5', '1e9', '0x10', '253402300800', '12 34']) {
    it(`refuses SOURCE_DATE_EPOCH=${bad}`, async () => {
      await assert.rejects(resolveSourceDateEpoch(repo, { SOURCE_DATE_EPOCH: bad }), (e: Error & { hint?: string }) => {
        assert.equal(e.message, `SOURCE_DATE_EPOCH "${bad}" is not a whole number of seconds since 1970`);
        assert.match(e.hint ?? '', /git log -1 --format=%ct/);
        return true;
      });
    });
  }
});
