import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import {
  apiHost, formatReference, isLoopback, parseReference, parseRepository, pinnedReference, validateTag,
} from '../src/registry/reference.ts';

const D = `sha256:${'a1'.repeat(32)}`;

describe('parseReference', () => {
  const valid: [string, { registry: string; repository: string; tag?: string; digest?: string }][] = [
    ['busybox', { registry: 'docker.io', repository: 'library/busybox' }],
    ['busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
    ['docker.io/busybox', { registry: 'docker.io', repository: 'library/busybox' }],
    ['index.docker.io/library/busybox:latest', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['user/app', { registry: 'docker.io', repository: 'user/app' }],
    ['registry.k8s.io/pause:3.10', { registry: 'registry.k8s.io', repository: 'pause', tag: '3.10' }],
    ['127.0.0.1:5000/pause', { registry: '127.0.0.1:5000', repository: 'pause' }],
    ['localhost/pause:3.10', { registry: 'localhost', repository: 'pause', tag: '3.10' }],
    ['localhost:15000/a/b/c:v1.0-rc.1', { registry: 'localhost:15000', repository: 'a/b/c', tag: 'v1.0-rc.1' }],
    [`gcr.io/k8s/pause@${D}`, { registry: 'gcr.io', repository: 'k8s/pause', digest: D }],
    [`gcr.io/k8s/pause:3.10@${D}`, { registry: 'gcr.io', repository: 'k8s/pause', tag: '3.10', digest: D }],
    ['[::1]:5000/pause:x', { registry: '[::1]:5000', repository: 'pause', tag: 'x' }],
    ['my-registry.example.com/team__x/img.name_1:Tag_1', { registry: 'my-registry.example.com', repository: 'team__x/img.name_1', tag: 'Tag_1' }],
    ['a---b/c', { registry: 'docker.io', repository: 'a---b/c' }],
    // Upper case in the first component makes it a host, as docker reads it.
    ['Registry/pause', { registry: 'Registry', repository: 'pause' }],
    // Without a slash, "localhost:5000" is a repository with a tag.
    ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
  ];
  for (const [input, want] of valid) {
    it(`reads ${input}`, () => {
      assert.deepEqual(parseReference(input), want);
    });
  }

  const invalid: [string, RegExp][] = [
    ['', /it is empty/],
    ['   ', /it is empty/],
    ['https://registry.k8s.io/pause', /leave out the URL scheme/],
    ['registry.k8s.io/Pause', /lower-case/],
    ['registry.k8s.io/pa use', /white space/],
    ['registry.k8s.io/', /repository name is empty/],
    ['registry.k8s.io//pause', /empty component/],
    ['registry.k8s.io/-pause', /not a valid path component/],
    ['registry.k8s.io/pause.', /not a valid path component/],
    ['registry.k8s.io/pa..use', /not a valid path component/],
    ['registry.k8s.io/pause:', /not a valid tag/],
    ['registry.k8s.io/pause:.hidden', /not a valid tag/],
    [`registry.k8s.io/pause:${'x'.repeat(129)}`, /not a valid tag/],
    ['registry.k8s.io/pause@sha256:abc', /not a sha256 digest/],
    [`registry.k8s.io/pause@sha512:${'a'.repeat(128)}`, /not a sha256 digest/],
    [`registry.k8s.io/pause@sha256:${'A1'.repeat(32)}`, /not a sha256 digest/],
    ['bad_host.example.com:5000/pause', /not a valid registry host/],
    ['host.example.com:99999/pause', /port 99999 is out of range/],
    [`r.io/${'a'.repeat(260)}`, /longer than 255/],
  ];
  for (const [input, why] of invalid) {
    it(`refuses ${JSON.stringify(input)} with one line`, () => {
      assert.throws(() => parseReference(input), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.match(e.message, why);
        assert.match(e.message, /^invalid image reference/);
        assert.ok(!e.message.includes('\n'));
        assert.match(e.hint ?? '', /HOST\[:PORT\]\/REPO/);
        return true;
      });
    });
  }
});

describe('reference helpers', () => {
  it('parseRepository refuses tags and digests', () => {
    assert.deepEqual(parseRepository('127.0.0.1:5000/pause'), { registry: '127.0.0.1:5000', repository: 'pause' });
    assert.throws(() => parseRepository('127.0.0.1:5000/pause:3.10'), /without tag or digest/);
    assert.throws(() => parseRepository(`127.0.0.1:5000/pause@${D}`), /without tag or digest/);
  });

  it('sends Docker Hub API calls to registry-1.docker.io', () => {
    assert.equal(apiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(apiHost('index.docker.io'), 'registry-1.docker.io');
    assert.equal(apiHost('registry.k8s.io'), 'registry.k8s.io');
    assert.equal(apiHost('127.0.0.1:5000'), '127.0.0.1:5000');
  });

  it('formats full and pinned references', () => {
    assert.equal(formatReference(parseReference('busybox:1')), 'docker.io/library/busybox:1');
    assert.equal(formatReference(parseReference(`r.io/a:t@${D}`)), `r.io/a:t@${D}`);
    assert.equal(pinnedReference({ registry: '127.0.0.1:5000', repository: 'pause' }, D), `127.0.0.1:5000/pause@${D}`);
    assert.throws(() => pinnedReference({ registry: 'r.io', repository: 'a' }, 'sha256:12'), /invalid digest/);
  });

  it('validates tags, including per-arch tags', () => {
    assert.equal(validateTag('3.10-linux-amd64'), '3.10-linux-amd64');
    assert.throws(() => validateTag('3.10/amd64'), /invalid tag "3.10\/amd64"/);
    assert.throws(() => validateTag('-x'), /invalid tag/);
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1:5000', '127.1.2.3', 'localhost', 'localhost:80', '[::1]:5000']) assert.equal(isLoopback(h), true, h);
    for (const h of ['registry.k8s.io', '10.0.0.1:5000', 'localhost.example.com', '128.0.0.1']) assert.equal(isLoopback(h), false, h);
  });
});
