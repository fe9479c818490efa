/** release --registry reads the real registry's tags: a version already pushed there is not released again. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { assertOneLineError } from '../support/assert.ts';
import { runCli } from '../support/cli.ts';
import { GIT_ENV, type TempRepo, tempRepo } from '../support/git.ts';
import { makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, startRegistry } from '../support/registry.ts';

let registry: TestRegistry;
let repo: TempRepo;

before(async () => {
  registry = await startRegistry();
  const client = new RegistryClient({ insecure: [registry.host] });
  await publishIndex(client, { registry: registry.host, repository: 'k8s/pause' }, makeIndex(['amd64']), { tags: ['3.11'] });
  repo = await tempRepo('release-registry');
  await repo.commit('Initial import', { VERSION: '3.10\n' });
  await repo.git('tag', '-a', 'v3.10', '-m', 'Release 3.10');
  await repo.commit('Change');
});

after(async () => {
  await registry?.stop();
  await repo?.remove();
});

describe('release --registry', () => {
  const cli = (...args: string[]) =>
    runCli(['release', '--registry', `${registry.host}/k8s/pause`, '--insecure-registry', registry.host, ...args], { cwd: repo.dir, env: { ...GIT_ENV, SOURCE_DATE_EPOCH: '1735776000' } });

  it('refuses a version the registry already holds, though git has no such tag', async () => {
    const r = await cli('--bump', 'minor', '--yes');
    assertOneLineError(r, new RegExp(`^error: 3\\.11 is already released \\(${registry.host.replace(/\./g, '\\.')}/k8s/pause:3\\.11\\)`));
    assert.equal(await repo.git('tag', '--list'), 'v3.10');
  });

  it('plans the next one with the registry image tags', async () => {
    const r = await cli('3.12');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${registry.host}/k8s/pause:3\\.12, ${registry.host}/k8s/pause:latest`));
  });
});
