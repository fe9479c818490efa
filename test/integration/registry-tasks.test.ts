/**
 * The push as listr2 tasks, with a client made from command-line flags, against an
 * HTTPS registry with htpasswd users.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { Listr } from 'listr2';
import { type RegistryFlags, addRegistryOptions, registryClientFromFlags } from '../../src/commands/registry-options.ts';
import { PauseBuildError } from '../../src/errors.ts';
import { type PushState, pushTasks } from '../../src/tasks/push.ts';
import { makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, skopeo, startRegistry } from '../support/registry.ts';

const USER = 'ci-bot';
const PASSWORD = 'tasks-Secret-99';

function parseFlags(args: string[]): RegistryFlags {
  const cmd = addRegistryOptions(new Command('x').exitOverride());
  cmd.parse(args, { from: 'user' });
  return cmd.opts<RegistryFlags>();
}

function titles(list: Listr): string[] {
  const out: string[] = [];
  const walk = (tasks: { title?: string; subtasks?: unknown[] }[], depth: number) => {
    for (const t of tasks) {
      out.push(`${'  '.repeat(depth)}${t.title ?? ''}`);
      walk((t.subtasks ?? []) as typeof tasks, depth + 1);
    }
  };
  walk(list.tasks as unknown as { title?: string; subtasks?: unknown[] }[], 0);
  return out;
}

describe('push tasks with a client from flags', () => {
  let reg: TestRegistry;

  before(async () => {
    reg = await startRegistry({ tls: true, htpasswd: { username: USER, password: PASSWORD } });
  });
  after(async () => {
    await reg?.stop();
  });

  async function client() {
    const flags = parseFlags(['--ca-file', reg.certificates!.caFile, '--username', USER, '--password-stdin', '--docker-config', '/nonexistent']);
    return registryClientFromFlags(flags, { debug: () => false }, { stdin: Readable.from([`${PASSWORD}\n`]) });
  }

  it('pushes in two tasks: the tag check, then the write titled with what moved', async () => {
    const built = makeIndex(['amd64', 'arm', 's390x'], 'tasks');
    const c = await client();
    const state: PushState = {};
    let lazyCalls = 0;
    const list = new Listr(pushTasks({ client: c, target: { registry: reg.host, repository: 'pause' }, built: () => (lazyCalls++, built), options: { tags: ['3.10'], perArchTags: true } }, state), { renderer: 'silent', exitOnError: true });
    await list.run();
    await c.close();
    assert.equal(lazyCalls, 1);
    assert.equal(state.result?.digest, built.index.descriptor.digest);
    assert.equal(state.result?.blobs.uploaded, 6);
    const shown = titles(list);
    assert.match(shown[0]!, new RegExp(`^${reg.host}/pause: 3\\.10-linux-amd64 new, 3\\.10-linux-arm new, 3\\.10-linux-s390x new, 3\\.10 new$`));
    assert.match(shown.at(-1)!, new RegExp(`^${reg.host}/pause@${built.index.descriptor.digest} → 3\\.10-linux-amd64, 3\\.10-linux-arm, 3\\.10-linux-s390x, 3\\.10 \\(uploaded 6, [\\d.]+ (B|KiB); mounted 0; already there 0\\)$`));
    const raw = await skopeo(['inspect', '--raw', '--cert-dir', reg.certificates!.caDir, '--creds', `${USER}:${PASSWORD}`, `docker://${reg.host}/pause:3.10`]);
    assert.deepEqual(raw.stdout, Buffer.from(built.index.bytes));

    // Again: only the check runs, and says there is nothing to push.
    const again: PushState = {};
    const c2 = await client();
    const second = new Listr(pushTasks({ client: c2, target: { registry: reg.host, repository: 'pause' }, built, options: { tags: ['3.10'] } }, again), { renderer: 'silent' });
    await second.run();
    await c2.close();
    assert.equal(again.result?.unchanged, true);
    assert.match(titles(second)[0]!, /: 3\.10 already hold sha256:[0-9a-f]{12}; nothing to push$/);
  });

  it('fails the task list with the one-line error of a refused tag', async () => {
    const c = await client();
    const list = new Listr(pushTasks({ client: c, target: { registry: reg.host, repository: 'pause' }, built: makeIndex(['amd64'], 'other'), options: { tags: ['3.10'] } }, {}), { renderer: 'silent', exitOnError: true });
    await assert.rejects(list.run(), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.match(e.message, /tag 3\.10 already holds sha256:[0-9a-f]{64} \(not sha256:[0-9a-f]{64}\)$/);
      return true;
    });
    await c.close();
  });
});
