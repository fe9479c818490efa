/** Publish records: every input moves the key; only well-formed records are read back. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type PublishInputs, type PublishRecord, PublishRecords, publishKey, toolFingerprint } from '../src/publish-record.ts';

const D = (c: string) => `sha256:${c.repeat(64)}`;

const INPUTS: PublishInputs = {
  tool: 'tool',
  binaries: [{ arch: 'amd64', key: 'k1' }, { arch: 'arm', key: 'k2' }],
  emulate: true,
  dockerfile: 'FROM scratch\n',
  buildArgs: { A: '1' },
  contextFiles: [{ source: 'etc/x', sha256: 'ab', mode: 0o644 }],
  epoch: 1_700_000_000,
  version: '3.10',
  revision: 'v3.10-1-gabc',
  sourceUrl: 'https://github.com/kubernetes/kubernetes',
  tags: ['3.10'],
  perArchTags: false,
  target: 'registry.example/k8s/pause',
};

const RECORD: PublishRecord = {
  version: '3.10',
  repository: 'registry.example/k8s/pause',
  digest: D('a'),
  reference: `registry.example/k8s/pause@${D('a')}`,
  tags: [{ tag: '3.10', digest: D('a') }],
  images: [{ arch: 'amd64', platform: 'linux/amd64', digest: D('b'), size: 1234 }],
};

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pause-records-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('publishKey', () => {
  it('is the same for the same inputs, whatever the order of object keys', () => {
    const reordered = Object.fromEntries(Object.entries(INPUTS).reverse()) as unknown as PublishInputs;
    assert.equal(publishKey(reordered), publishKey(INPUTS));
    assert.match(publishKey(INPUTS), /^[0-9a-f]{64}$/);
  });

  const changes: [string, Partial<PublishInputs>][] = [
    ['tool', { tool: 'tool2' }],
    ['a compile key', { binaries: [{ arch: 'amd64', key: 'k1' }, { arch: 'arm', key: 'k3' }] }],
    ['the arches', { binaries: [{ arch: 'amd64', key: 'k1' }] }],
    ['the arch order', { binaries: [{ arch: 'arm', key: 'k2' }, { arch: 'amd64', key: 'k1' }] }],
    ['emulation', { emulate: false }],
    ['the Dockerfile', { dockerfile: 'FROM scratch\nUSER 1\n' }],
    ['a build arg', { buildArgs: { A: '2' } }],
    ['a context file', { contextFiles: [{ source: 'etc/x', sha256: 'cd', mode: 0o644 }] }],
    ['a context file mode', { contextFiles: [{ source: 'etc/x', sha256: 'ab', mode: 0o755 }] }],
    ['SOURCE_DATE_EPOCH', { epoch: 1_700_000_001 }],
    ['the version', { version: '3.11' }],
    ['the revision', { revision: 'v3.10-2-gdef' }],
    ['the source URL', { sourceUrl: 'https://example.org/pause' }],
    ['the tags', { tags: ['3.10', 'latest'] }],
    ['per-arch tags', { perArchTags: true }],
    ['the repository', { target: 'registry.example/other/pause' }],
  ];
  for (const [what, change] of changes) {
    it(`changes with ${what}`, () => assert.notEqual(publishKey({ ...INPUTS, ...change }), publishKey(INPUTS)));
  }
});

describe('PublishRecords', () => {
  it('reads back what it wrote', async () => {
    const records = new PublishRecords(path.join(dir, 'a'));
    assert.equal(await records.read('k'), undefined);
    await records.write('k', RECORD);
    assert.deepEqual(await records.read('k'), RECORD);
  });

  it('counts a malformed record as none', async () => {
    const records = new PublishRecords(dir);
    for (const bad of ['{', '{}', JSON.stringify({ ...RECORD, digest: 'sha256:nope' }), JSON.stringify({ ...RECORD, tags: [] }),
      JSON.stringify({ ...RECORD, tags: [{ tag: '3.10' }] }), JSON.stringify({ ...RECORD, images: [{ ...RECORD.images[0], size: '1' }] })]) {
      await writeFile(path.join(dir, 'bad.json'), bad);
      assert.equal(await records.read('bad'), undefined, bad);
    }
  });
});

describe('toolFingerprint', () => {
  it('is stable, and moves with the version and the layer format', async () => {
    const a = await toolFingerprint('1.0.0', 'fflate 0.8.3 level 9');
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.equal(await toolFingerprint('1.0.0', 'fflate 0.8.3 level 9'), a);
    assert.notEqual(await toolFingerprint('1.0.1', 'fflate 0.8.3 level 9'), a);
    assert.notEqual(await toolFingerprint('1.0.0', 'fflate 0.8.4 level 9'), a);
  });
});
