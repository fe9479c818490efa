import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { mirrorClientOptions } from '../src/commands/mirror.ts';
import { PauseBuildError } from '../src/errors.ts';
import {
  type MirrorReport, checkOverlaps, expandEntry, formatReport, parseDestination, parseEntry, parseSource,
  parseTagSelectors, selectTags, withNodeConfig,
} from '../src/mirror.ts';
import { nodeSnippets } from '../src/sandbox-config.ts';
import { parseReference } from '../src/registry/reference.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'b'.repeat(64)}`;

function assertError(fn: () => unknown, message: string | RegExp, hint?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PauseBuildError, String(e));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    if (hint) assert.match(e.hint ?? '', hint);
    assert.doesNotMatch(`${e.message} ${e.hint ?? ''}`, /\n/);
    return true;
  });
}

describe('sources and destinations', () => {
  test('registry references and OCI layouts', () => {
    assert.deepEqual(parseSource('registry.k8s.io/pause:3.10'), { kind: 'registry', ref: { registry: 'registry.k8s.io', repository: 'pause', tag: '3.10' } });
    assert.deepEqual(parseSource(`127.0.0.1:5000/pause@${DIGEST}`), { kind: 'registry', ref: { registry: '127.0.0.1:5000', repository: 'pause', digest: DIGEST } });
    assert.deepEqual(parseSource('oci:_output/oci:3.10', '/work'), { kind: 'layout', dir: '/work/_output/oci', tag: '3.10' });
    assert.deepEqual(parseSource('oci:/abs/dir', '/work'), { kind: 'layout', dir: '/abs/dir' });
    assert.deepEqual(parseSource('oci:out:latest', '/w'), { kind: 'layout', dir: '/w/out', tag: 'latest' });
    assertError(() => parseSource('oci:'), 'invalid source "oci:": no directory after oci:', /oci:DIR:TAG/);
    assertError(() => parseSource('oci:dir:-bad'), 'invalid tag "-bad"');
    assertError(() => parseSource('docker://registry.k8s.io/pause:3.10'), /invalid image reference .*leave out the URL scheme/);
  });

  test('destinations are repositories with an optional tag, never a digest', () => {
    assert.deepEqual(parseDestination('mirror.example/k8s/pause'), { repository: { registry: 'mirror.example', repository: 'k8s/pause' } });
    assert.deepEqual(parseDestination('mirror.example:5000/pause:3.10'), { repository: { registry: 'mirror.example:5000', repository: 'pause' }, tag: '3.10' });
    assertError(() => parseDestination(`mirror.example/pause@${DIGEST}`), `destination "mirror.example/pause@${DIGEST}" names a digest`, /digests are kept/);
    assertError(() => parseDestination('Mirror.example/Pause'), /repository names must be lower-case/);
  });
});

describe('tag selection', () => {
  test('ranges and names, comma-separated', () => {
    assert.deepEqual(parseTagSelectors('>=3.9,latest'), [{ range: '>=3.9' }, { tag: 'latest' }]);
    assert.deepEqual(parseTagSelectors(['3.x', '3.10', '>=3.9 <4']), [{ range: '3.x' }, { tag: '3.10' }, { range: '>=3.9 <4' }]);
    assertError(() => parseTagSelectors('>=three'), 'invalid version range ">=three"', />=3\.9/);
    assertError(() => parseTagSelectors(' , '), 'no tags given');
    assertError(() => parseTagSelectors('bad/tag'), 'invalid tag "bad/tag"');
  });

  const available = ['3.1', '3.9', '3.10', '3.10-linux-amd64', '3.11.0-rc.1', 'latest', '3.2', 'sha-abc', 'v3.8'];
  test('a range compares Kubernetes versions numerically (3.10 after 3.9) and leaves out non-versions', () => {
    assert.deepEqual(selectTags(available, parseTagSelectors('>=3.9'), 'r/pause'), ['3.9', '3.10']);
    assert.deepEqual(selectTags(available, parseTagSelectors('<3.9'), 'r/pause'), ['3.1', '3.2', 'v3.8']);
    assert.deepEqual(selectTags(available, parseTagSelectors('>=3.11.0-rc.0'), 'r/pause'), ['3.11.0-rc.1'], 'a prerelease comes when the range names one');
  });

  test('names come as given, after the versions; duplicates once', () => {
    assert.deepEqual(selectTags(available, parseTagSelectors('latest,>=3.10,3.10,sha-abc'), 'r/pause'), ['3.10', 'latest', 'sha-abc']);
  });

  test('a name that is not there, or a range that matches nothing, is an error naming the source', () => {
    assertError(() => selectTags(available, parseTagSelectors('3.99'), 'r/pause'), 'tag 3.99 is not in r/pause', /^its tags: 3\.11\.0-rc\.1, 3\.10, 3\.9, v3\.8, 3\.2, 3\.1, 3\.10-linux-amd64, latest, sha-abc$/);
    assertError(() => selectTags(available, parseTagSelectors('>=4'), 'r/pause'), 'no tag of r/pause is in the range ">=4"', /its versions: 3\.11\.0-rc\.1, 3\.10, 3\.9/);
    assertError(() => selectTags([], parseTagSelectors('>=4'), 'r/pause'), /no tag of r\/pause/, /no version tags/);
  });
});

describe('entries', () => {
  test('default destination tag: the source tag; none for a digest-only source', async () => {
    const byTag = parseEntry({ source: 'src.example/pause:3.10', destinations: ['a.example/pause', 'b.example/pause:stable'] });
    const [job] = await expandEntry(byTag, async () => assert.fail('no tag listing'));
    assert.deepEqual(job!.destinations.map((d) => d.tag), ['3.10', 'stable']);
    const byDigest = parseEntry({ source: `src.example/pause@${DIGEST}`, destinations: ['a.example/pause', 'b.example/pause:3.10'] });
    const [digestJob] = await expandEntry(byDigest, async () => assert.fail('no tag listing'));
    assert.deepEqual(digestJob!.destinations.map((d) => d.tag), [undefined, '3.10']);
  });

  test('selected tags make one copy each, to the same tag', async () => {
    const entry = parseEntry({ source: 'src.example/pause', tags: '>=3.9', platforms: 'linux/amd64', destinations: ['a.example/pause'] });
    const listed: string[] = [];
    const jobs = await expandEntry(entry, async (s) => {
      listed.push(s.kind);
      return ['3.8', '3.9', '3.10', 'latest'];
    });
    assert.deepEqual(listed, ['registry']);
    assert.deepEqual(jobs.map((j) => [j.source.kind === 'registry' && j.source.ref.tag, j.destinations[0]!.tag, j.platforms?.length]), [['3.9', '3.9', 1], ['3.10', '3.10', 1]]);
  });

  test('errors name the entry', async () => {
    const label = 'mirror.yaml entry 2 (src.example/pause)';
    assertError(() => parseEntry({ label, source: 'src.example/pause', destinations: ['a.example/pause'] }), `${label}: source src.example/pause names no tag or digest`, /--tags/);
    assertError(() => parseEntry({ label, source: 'src.example/pause:3.10', tags: '>=3.9', destinations: ['a.example/pause'] }), `${label}: source src.example/pause:3.10 names a tag or digest, and tags are selected`);
    assertError(() => parseEntry({ label, source: 'src.example/pause', tags: '>=3.9', destinations: ['a.example/pause:x'] }), `${label}: destination a.example/pause:x names a tag, and tags are selected`);
    assertError(() => parseEntry({ label, source: 'src.example/pause:1', destinations: [] }), `${label}: no destination given`);
    assertError(() => parseEntry({ label, source: 'src.example/pause:1', platforms: 'linux', destinations: ['a.example/p'] }), `${label}: invalid platform "linux"`);
    assertError(() => parseEntry({ source: 'oci:out', destinations: ['a.example/p'] }), 'source oci:out names no tag', /oci:DIR:TAG/);
    const entry = parseEntry({ label, source: 'src.example/pause', tags: '>=4', destinations: ['a.example/pause'] });
    await assert.rejects(expandEntry(entry, async () => ['3.10']), (e: unknown) => e instanceof PauseBuildError && e.message === `${label}: no tag of src.example/pause is in the range ">=4"`);
  });

  test('two sources writing one destination tag are refused', async () => {
    const a = await expandEntry(parseEntry({ source: 'one.example/pause:3.10', destinations: ['m.example/pause'] }), async () => []);
    const b = await expandEntry(parseEntry({ source: 'two.example/pause:3.10', destinations: ['m.example/pause'] }), async () => []);
    const same = await expandEntry(parseEntry({ source: 'one.example/pause:3.10', destinations: ['m.example/pause'] }), async () => []);
    assertError(() => checkOverlaps([...a, ...b]), 'm.example/pause:3.10 would be written from two sources: one.example/pause:3.10 and two.example/pause:3.10');
    checkOverlaps([...a, ...same]);
  });
});

describe('output', () => {
  const report: MirrorReport = {
    dryRun: false,
    copies: [{
      source: 'src.example/pause:3.10',
      sourceDigest: OTHER,
      digest: DIGEST,
      rewritten: true,
      platforms: ['linux/amd64', 'linux/arm64'],
      manifests: 3,
      blobs: 4,
      bytes: 2048,
      foreignLayers: 0,
      destinations: [{
        reference: 'm.example/k8s/pause:3.10',
        repository: 'm.example/k8s/pause',
        tag: '3.10',
        pinned: `m.example/k8s/pause@${DIGEST}`,
        changed: true,
        tagStatus: 'created',
        manifests: { written: 3, present: 0 },
        blobs: { uploaded: 4, mounted: 0, present: 0, uploadedBytes: 2048, mountedBytes: 0, presentBytes: 0 },
        ...nodeSnippets(parseReference(`m.example/k8s/pause:3.10@${DIGEST}`)),
      }],
    }],
  };

  test('says the index was rewritten, and gives the pinned reference and the containerd and kubelet lines', () => {
    const text = formatReport(report);
    assert.equal(text, [
      `src.example/pause:3.10  ${OTHER}  2 platforms, 3 manifests, 4 blobs (2.0 KiB)`,
      `  index rewritten: ${DIGEST} (source ${OTHER})`,
      '  → m.example/k8s/pause:3.10  wrote 3 manifests; uploaded 4 blobs (2.0 KiB), mounted 0, 0 present; tag 3.10 new',
      `      m.example/k8s/pause@${DIGEST}`,
      '      containerd 2.x, config version 3 (/etc/containerd/config.toml):',
      '        version = 3',
      '',
      "        [plugins.'io.containerd.cri.v1.images'.pinned_images]",
      `          sandbox = "m.example/k8s/pause@${DIGEST}"  # m.example/k8s/pause:3.10`,
      '      containerd 1.6/1.7, config version 2 (/etc/containerd/config.toml; without version = 2 it keeps registry.k8s.io/pause):',
      '        version = 2',
      '',
      '        [plugins."io.containerd.grpc.v1.cri"]',
      `          sandbox_image = "m.example/k8s/pause@${DIGEST}"  # m.example/k8s/pause:3.10`,
      '      CRI-O (/etc/crio/crio.conf.d/10-pause-image.conf):',
      '        [crio.image]',
      `        pause_image = "m.example/k8s/pause@${DIGEST}"  # m.example/k8s/pause:3.10`,
      '      kubelet before 1.35 only (removed in 1.35); with containerd 1.6 it keeps image GC from removing the sandbox image:',
      `        --pod-infra-container-image=m.example/k8s/pause@${DIGEST}`,
      '',
    ].join('\n'));
  });

  test('a plain-HTTP destination gets hosts.toml and registries.conf; one with a private CA, hosts.toml with ca', () => {
    const plain = withNodeConfig(report, () => ({ kind: 'plain-http' })).copies[0]!.destinations[0]!;
    assert.equal(plain.hostsToml, 'server = "http://m.example"\n\n[host."http://m.example"]\n  capabilities = ["pull", "resolve"]\n');
    assert.equal(plain.registriesConf, '[[registry]]\nlocation = "m.example"\ninsecure = true\n');
    assert.match(plain.containerd ?? '', /config_path = "\/etc\/containerd\/certs\.d"/);
    assert.match(formatReport({ ...report, copies: [{ ...report.copies[0]!, destinations: [plain] }] }), /hosts\.toml in config_path\/HOST\/[^\n]*\n {8}server = "http:\/\/m\.example"\n/);
    const ca = withNodeConfig(report, (host) => (host === 'm.example' ? { kind: 'ca', caFile: '/c.pem' } : { kind: 'tls' })).copies[0]!.destinations[0]!;
    assert.match(ca.hostsToml!, /^ {2}ca = "\/etc\/containerd\/certs\.d\/m\.example\/ca\.crt"$/m);
    assert.equal(ca.registriesConf, undefined);
    const tls = withNodeConfig(report, () => ({ kind: 'tls' })).copies[0]!.destinations[0]!;
    assert.deepEqual(tls, report.copies[0]!.destinations[0]);
  });

  test('a dry run says so and what it would do, without lines to paste', () => {
    const text = formatReport({ ...report, dryRun: true });
    assert.match(text, /^dry run: nothing was written\n/);
    assert.match(text, /would write 3 manifests \(0 present\); upload 4 blobs \(2\.0 KiB\), mount 0 \(0 B\), 0 present \(0 B\); tag 3\.10 new/);
    assert.doesNotMatch(text, /sandbox_image/);
  });
});

describe('client options for a mirror', () => {
  const entries = [parseEntry({ source: 'src.example/pause:3.10', destinations: ['dst.example/pause', 'other.example:5000/pause'] })];
  test('--username goes to the destination registries only; file credentials and insecure hosts per registry', () => {
    const explicit = { username: 'u', password: 'flag-secret' };
    const opts = mirrorClientOptions({ insecure: ['a:1'], credentials: { explicit, dockerConfigDir: '/d' } }, entries, {
      'other.example:5000': { credential: { username: 'robot', password: 'env-secret' }, insecure: true },
    });
    assert.deepEqual(opts.insecure, ['a:1', 'other.example:5000']);
    assert.deepEqual(opts.credentials, { dockerConfigDir: '/d', byRegistry: { 'dst.example': explicit, 'other.example:5000': { username: 'robot', password: 'env-secret' } } });
    assert.equal('explicit' in (opts.credentials ?? {}), false, 'the source registry is not given the destination credentials');
  });

  test('a relative oci: path in an entry is relative to its base directory', () => {
    const e = parseEntry({ source: 'oci:layout:3.10', destinations: ['d.example/p'], baseDir: '/srv/mirror' });
    assert.deepEqual(e.source, { kind: 'layout', dir: path.join('/srv/mirror', 'layout'), tag: '3.10' });
  });
});
