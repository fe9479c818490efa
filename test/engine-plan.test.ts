import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChunkSize } from '../src/commands/registry-options.ts';
import { parseDestination } from '../src/mirror.ts';
import { destinationName } from '../src/registry/plan.ts';
import { publishDestination } from '../src/registry/publish.ts';
import { makeIndex } from './support/oci-fixture.ts';

describe('publish as a destination of the engine', () => {
  const built = makeIndex(['amd64', 'arm64'], 'plan');
  const target = { registry: 'r.example', repository: 'k8s/pause' };
  const table: [string, Parameters<typeof publishDestination>[2], string | undefined, [string, string][]][] = [
    ['the version tag', { tags: ['3.10'] }, '3.10', []],
    ['version and latest', { tags: ['3.10', 'latest'] }, '3.10', [['latest', 'root']]],
    ['per-arch tags on each image, index tags after', { tags: ['3.10'], perArchTags: true }, '3.10', [['3.10-linux-amd64', 'amd64'], ['3.10-linux-arm64', 'arm64']]],
    ['a repeated tag once', { tags: ['3.10', '3.10'] }, '3.10', []],
    ['by digest: no tag', { tags: [] }, undefined, []],
  ];
  const digestOf = (what: string) => (what === 'root' ? undefined : built.images.find((i) => i.arch === what)!.manifest.descriptor.digest);
  for (const [name, opts, tag, more] of table) {
    it(name, () => {
      const d = publishDestination(built, target, opts);
      assert.equal(d.tag, tag);
      assert.deepEqual(d.moreTags?.map((t) => [t.tag, t.digest]), more.map(([t, w]) => [t, digestOf(w)]));
    });
  }
  it('refuses an invalid per-arch tag before anything runs', () => {
    assert.throws(() => publishDestination(built, target, { tags: ['x'.repeat(120)], perArchTags: true }), /invalid tag/);
  });
  it('mount-from is carried', () => {
    assert.deepEqual(publishDestination(built, target, { tags: ['1'], mountFrom: ['staging/pause'] }).mountFrom, ['staging/pause']);
  });
});

describe('destinations', () => {
  const table: [string, string][] = [
    ['r.example/k8s/pause', 'r.example/k8s/pause'],
    ['r.example/k8s/pause:3.10', 'r.example/k8s/pause:3.10'],
    ['oci:/srv/layout', 'oci:/srv/layout'],
    ['oci:/srv/layout:3.10', 'oci:/srv/layout:3.10'],
    ['oci:rel/dir:1', 'oci:/base/rel/dir:1'],
  ];
  for (const [input, name] of table) it(`${input} → ${name}`, () => assert.equal(destinationName(parseDestination(input, '/base')), name));
  it('refuses a digest', () => assert.throws(() => parseDestination(`r.example/p@sha256:${'a'.repeat(64)}`), /names a digest/));
});

describe('--chunk-size', () => {
  const table: [string, number | RegExp][] = [
    ['512k', 512 * 1024], ['4m', 4 * 1024 * 1024], ['1g', 1024 ** 3], ['65536', 65536], ['4MiB', 4 * 1024 * 1024],
    ['1k', /not a size from 64k to 1g/], ['2g', /not a size/], ['lots', /not a size/], ['-1m', /not a size/],
  ];
  for (const [text, want] of table) {
    it(text, () => (typeof want === 'number' ? assert.equal(parseChunkSize(text), want) : assert.throws(() => parseChunkSize(text), want)));
  }
});
