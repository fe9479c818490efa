/**
 * The no-op publish: publishing inputs that were published before stops once the registry
 * shows every tag still holds the recorded digest, and prints (and reports to Actions)
 * exactly what the full pipeline prints. A record the registry no longer agrees with (a
 * tag moved or deleted) is never trusted: the full pipeline runs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { actionsStep } from '../support/actions.ts';
import { assertOneLineError } from '../support/assert.ts';
import { type CliResult, runCli } from '../support/cli.ts';
import { ensureBuilder } from '../support/engines.ts';
import { type TestRegistry, startRegistry } from '../support/registry.ts';

let dir: string;
let registry: TestRegistry;
let first: { digest: string; unchanged: boolean };

const FAST = /already hold sha256:[0-9a-f]{12}, published from these same inputs; nothing to build or push/;
const records = () => path.join(dir, 'cache', 'publish');

function args(extra: string[] = []): string[] {
  return [
    'publish', '--engine', 'podman', '--version', '3.10', '--revision', 'record',
    '--bin-dir', path.join(dir, 'bin'), '--output', path.join(dir, 'oci'), '--cache-dir', path.join(dir, 'cache'),
    '--registry', `${registry.host}/rec/pause`, '--insecure-registry', registry.host, '--per-arch-tags', ...extra,
  ];
}

async function ok(r: CliResult): Promise<CliResult> {
  assert.equal(r.exitCode, 0, r.stderr);
  return r;
}

/** What the tag holds now, by HEAD. */
async function held(tag: string): Promise<string | undefined> {
  const res = await fetch(`${registry.url}/v2/rec/pause/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' },
  });
  return res.ok ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** The slow path's answer for the same inputs: the record removed, the caches kept. */
async function withoutRecord(extra: string[] = [], env: Record<string, string> = {}): Promise<CliResult> {
  await rm(records(), { recursive: true, force: true });
  return ok(await runCli(args(extra), { env }));
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pause-record-'));
  await ensureBuilder('podman');
  registry = await startRegistry();
});

after(async () => {
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('publishing the same inputs again', () => {
  it('the first publish runs the pipeline and records what it pushed', async () => {
    const r = await ok(await runCli(args(['--json'])));
    first = JSON.parse(r.stdout);
    assert.equal(first.unchanged, false);
    assert.equal((await readdir(records())).filter((f) => f.endsWith('.json')).length, 1);
  });

  it('asks the registry and nothing else, and prints what the full pipeline prints', async () => {
    const before = (await registry.requests()).length;
    const fast = await ok(await runCli(args()));
    const fastJson = await ok(await runCli(args(['--json'])));
    assert.match(fast.stderr, FAST);
    assert.doesNotMatch(fast.stderr, /Compiling|Assembling|Pushing/);
    const requests = (await registry.requests()).slice(before);
    assert.ok(requests.length > 0, 'the registry was not asked');
    for (const r of requests) assert.ok(r.method === 'HEAD' || (r.method === 'GET' && r.url === '/v2/'), `unexpected ${r.method} ${r.url}`);
    // Six tags (3.10 and one per arch), each checked by the text run and by the JSON run.
    assert.equal(requests.filter((r) => r.method === 'HEAD').length, 12);

    const slow = await withoutRecord();
    assert.doesNotMatch(slow.stderr, FAST);
    assert.match(slow.stderr, /Compiling/);
    assert.equal(fast.stdout, slow.stdout);
    assert.match(fast.stdout, /^unchanged {2}every tag already held this digest/m);
    const slowJson = await withoutRecord(['--json']);
    assert.equal(fastJson.stdout, slowJson.stdout);
    assert.equal(JSON.parse(fastJson.stdout).digest, first.digest);
  });

  it('reports to GitHub Actions as the full pipeline does', async () => {
    const fastStep = await actionsStep();
    const slowStep = await actionsStep();
    try {
      const fast = await ok(await runCli(args(), { env: fastStep.env }));
      assert.match(fast.stderr, FAST);
      await withoutRecord([], slowStep.env);
      assert.deepEqual(await fastStep.outputs(), await slowStep.outputs());
      assert.equal((await fastStep.outputs()).digest, first.digest);
      assert.equal(await fastStep.summary(), await slowStep.summary());
    } finally {
      await fastStep.remove();
      await slowStep.remove();
    }
  });

  it('a tag moved since the record: the full pipeline runs, and refuses as it always did', async () => {
    const moved = JSON.parse((await ok(await runCli([...args(['--force', '--json']), '--revision', 'moved']))).stdout).digest;
    assert.notEqual(moved, first.digest);
    const r = await runCli(args());
    assertOneLineError(r, /tag 3\.10-linux-amd64 already holds sha256:[0-9a-f]{64} .*— pass --force to overwrite$/);
    assert.match(r.stderr, /now holds sha256:[0-9a-f]{12} since these inputs were published: building/);
    assert.match(r.stderr, /Compiling/);
    const forced = JSON.parse((await ok(await runCli(args(['--force', '--json'])))).stdout);
    assert.equal(forced.digest, first.digest);
    assert.equal(forced.unchanged, false);
    assert.equal(await held('3.10'), first.digest);
  });

  it('a tag deleted since the record: the full pipeline pushes it again', async () => {
    const del = await fetch(`${registry.url}/v2/rec/pause/manifests/${first.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202, await del.text());
    assert.equal(await held('3.10'), undefined, 'the tag is still there');
    const r = await ok(await runCli(args()));
    assert.match(r.stderr, /3\.10 is gone since these inputs were published: building/);
    assert.match(r.stderr, /Compiling/);
    assert.doesNotMatch(r.stdout, /^unchanged/m);
    assert.equal(await held('3.10'), first.digest);
    // And recorded again.
    assert.match((await ok(await runCli(args()))).stderr, FAST);
  });

  it('--no-cache does not look for a record', async () => {
    const r = await ok(await runCli(args(['--no-cache'])));
    assert.doesNotMatch(r.stderr, FAST);
    assert.match(r.stderr, /Compiling/);
    assert.match(r.stdout, /^unchanged/m);
  });
});
