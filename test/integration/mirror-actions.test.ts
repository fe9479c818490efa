/**
 * pause-build mirror in a simulated Actions step, for several tags and destinations: every
 * pinned reference becomes a step output and a summary line, and each one resolves, as read by
 * skopeo, to the digest the source tag holds.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { actionsStep } from '../support/actions.ts';
import { runCli } from '../support/cli.ts';
import { makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, skopeo, startRegistry } from '../support/registry.ts';

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('pause-build mirror in Actions', () => {
  let reg: TestRegistry;
  const older = makeIndex(['amd64', 'arm64'], 'actions-3.9');
  const newer = makeIndex(['amd64', 'arm64'], 'actions-3.10');

  before(async () => {
    reg = await startRegistry();
    const client = new RegistryClient({ insecure: [reg.host] });
    try {
      await publishIndex(client, { registry: reg.host, repository: 'src/pause' }, older, { tags: ['3.9'] });
      await publishIndex(client, { registry: reg.host, repository: 'src/pause' }, newer, { tags: ['3.10'] });
    } finally {
      await client.close();
    }
  });
  after(async () => {
    await reg?.stop();
  });

  it('sets every pinned reference as outputs (pinned, tags) and lists them in the summary', async () => {
    const step = await actionsStep();
    try {
      const r = await runCli(['mirror', `${reg.host}/src/pause`, '--tags', '>=3.9', `${reg.host}/a/pause`, `${reg.host}/b/pause`, '--insecure-registry', reg.host, '--json'], { env: step.env });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /^::/m, 'stdout stays plain JSON');
      JSON.parse(r.stdout);
      const expected = ['a', 'b'].flatMap((repo) => [older, newer].map((index) => `${reg.host}/${repo}/pause@${index.index.descriptor.digest}`)).sort();
      const outputs = await step.outputs();
      assert.deepEqual(outputs.pinned!.split('\n').sort(), expected);
      assert.deepEqual(outputs.tags!.split('\n').sort(), expected);
      assert.equal(outputs.digest, undefined, 'no single digest for several copies');

      const summary = await step.summary();
      assert.match(summary, /^### pause mirrored to 4 destinations$/m);
      for (const pinned of expected) assert.ok(summary.includes(`  - \`${pinned}\``), summary);
      for (const repo of ['a', 'b']) for (const tag of ['3.9', '3.10']) assert.ok(summary.includes(`- **${reg.host}/${repo}/pause:${tag}**: \``), summary);

      for (const pinned of expected) {
        const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${pinned}`]);
        assert.equal(raw.exitCode, 0, raw.stderr);
        assert.equal(sha256(raw.stdout), pinned.slice(pinned.indexOf('@') + 1));
      }
    } finally {
      await step.remove();
    }
  });
});
