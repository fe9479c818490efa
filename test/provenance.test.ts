import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUILD_TYPE, type ProvenanceInput, SLSA_PREDICATE_TYPE, buildProvenance, ciRun, statementBytes } from '../src/attest/provenance.ts';

const BASE: ProvenanceInput = {
  subjects: [{ name: 'pause', digest: `sha256:${'a'.repeat(64)}` }],
  version: '3.10',
  arches: ['amd64', 'arm64'],
  sourceUrl: 'https://github.com/kubernetes/kubernetes',
  commit: '0123456789abcdef0123456789abcdef01234567',
  revision: 'v3.10-0-g0123456',
  dockerfile: { path: 'Dockerfile', sha256: 'b'.repeat(64) },
  buildArgs: {},
  epoch: 1_700_000_000,
  pauseSource: { path: 'build/pause/pause.c', sha256: 'c'.repeat(64) },
  toolchain: { kind: 'podman', image: 'localhost/pause-build/cross:0123', imageId: 'd'.repeat(64), base: 'localhost/debian:bookworm-slim' },
  toolVersion: '0.1.0',
};

const ACTIONS = {
  GITHUB_ACTIONS: 'true',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REPOSITORY: 'example/pause',
  GITHUB_WORKFLOW_REF: 'example/pause/.github/workflows/release.yml@refs/tags/v3.10',
  GITHUB_REF: 'refs/tags/v3.10',
  GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
  GITHUB_RUN_ID: '42',
  GITHUB_RUN_ATTEMPT: '2',
};

const p = (input: ProvenanceInput): any => buildProvenance(input);

describe('SLSA provenance', () => {
  it('is an in-toto Statement v1 with pause-build\'s build type', () => {
    const s = p(BASE);
    assert.equal(s._type, 'https://in-toto.io/Statement/v1');
    assert.equal(s.predicateType, SLSA_PREDICATE_TYPE);
    assert.deepEqual(s.subject, [{ name: 'pause', digest: { sha256: 'a'.repeat(64) } }]);
    assert.equal(s.predicate.buildDefinition.buildType, BUILD_TYPE);
  });

  it('holds the external parameters and resolved dependencies', () => {
    const d = p(BASE).predicate.buildDefinition;
    assert.deepEqual(d.externalParameters.arches, ['amd64', 'arm64']);
    assert.equal(d.externalParameters.version, '3.10');
    assert.equal(d.externalParameters.source.commit, BASE.commit);
    assert.equal(d.externalParameters.dockerfile.digest.sha256, 'b'.repeat(64));
    assert.deepEqual(d.resolvedDependencies.map((r: any) => r.name ?? r.uri), [`git+${BASE.sourceUrl}@${BASE.commit}`, 'build/pause/pause.c', 'builder']);
    assert.equal(d.resolvedDependencies[2].digest.sha256, 'd'.repeat(64));
    assert.equal(d.resolvedDependencies[2].annotations.base, 'localhost/debian:bookworm-slim');
  });

  const runs: [string, NodeJS.ProcessEnv, string | undefined][] = [
    ['outside Actions', {}, undefined],
    ['Actions without a run id', { GITHUB_ACTIONS: 'true', GITHUB_REPOSITORY: 'example/pause' }, undefined],
    ['in Actions', ACTIONS, 'https://github.com/example/pause/actions/runs/42/attempts/2'],
  ];
  for (const [name, env, invocation] of runs) {
    it(`run details ${name}`, () => {
      const s = p({ ...BASE, ci: ciRun(env) });
      assert.equal(s.predicate.runDetails.metadata.invocationId, invocation);
      assert.equal(s.predicate.runDetails.builder.id, invocation ? 'https://github.com/example/pause/.github/workflows/release.yml@refs/tags/v3.10' : 'urn:pause-build:builder:local');
      assert.equal(s.predicate.runDetails.builder.version['pause-build'], '0.1.0');
    });
  }

  it('the same inputs give the same bytes; another commit does not', () => {
    assert.deepEqual(statementBytes(p(BASE)), statementBytes(p({ ...BASE })));
    assert.notDeepEqual(statementBytes(p(BASE)), statementBytes(p({ ...BASE, commit: 'f'.repeat(40) })));
  });

  it('a host toolchain is named by its identity, without a builder image', () => {
    const deps = p({ ...BASE, toolchain: { kind: 'host', identity: 'host:gcc 12' } }).predicate.buildDefinition.resolvedDependencies;
    assert.deepEqual(deps.at(-1), { name: 'host-toolchain', annotations: { identity: 'host:gcc 12' } });
  });
});
