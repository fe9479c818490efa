/**
 * SLSA v1 provenance: an in-toto Statement v1 saying how the index or one platform image
 * was made: from which source, by which build definition, with which toolchain, in which
 * run. Pure: the caller gathers the facts (git, toolchain, the Actions environment).
 *
 * Nothing time-varying goes in outside Actions, so a rebuild of the same inputs states the
 * same bytes and a second publish finds its attestations already there.
 */
import { canonicalJson } from '../oci/blob.ts';

export const INTOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PREDICATE_TYPE = 'https://slsa.dev/provenance/v1';
export const INTOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
/** pause-build's build type: what externalParameters mean and how the image follows from them. */
export const BUILD_TYPE = 'urn:pause-build:buildType:image:v1';
/** runDetails.builder.id outside a CI run. */
export const LOCAL_BUILDER_ID = 'urn:pause-build:builder:local';

export interface Subject {
  readonly name: string;
  /** `sha256:<hex>` */
  readonly digest: string;
}

export interface ProvenanceInput {
  readonly subjects: readonly Subject[];
  readonly version: string;
  readonly arches: readonly string[];
  readonly sourceUrl: string;
  /** The full git commit of the source, when the build ran in a git work tree. */
  readonly commit: string | undefined;
  /** The revision string compiled in (git describe). */
  readonly revision: string;
  readonly dockerfile: { readonly path: string; readonly sha256: string };
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly epoch: number;
  readonly pauseSource: { readonly path: string; readonly sha256: string };
  /** The builder image (name, id, base), or the host toolchain's identity. */
  readonly toolchain: { readonly kind: string; readonly image?: string; readonly imageId?: string; readonly base?: string; readonly identity?: string };
  readonly toolVersion: string;
  /** The Actions run, from ciRun(process.env). */
  readonly ci?: CiRun;
}

export interface CiRun {
  readonly builderId: string;
  readonly invocationId: string;
  readonly workflow: string;
  readonly ref: string;
  readonly sha: string;
  readonly repository: string;
  readonly runId: string;
  readonly runAttempt: string;
}

/** The GitHub Actions run this process is in, from the variables the runner sets. */
export function ciRun(env: NodeJS.ProcessEnv): CiRun | undefined {
  if (env.GITHUB_ACTIONS !== 'true' || !env.GITHUB_REPOSITORY || !env.GITHUB_RUN_ID) return undefined;
  const server = env.GITHUB_SERVER_URL || 'https://github.com';
  const workflowRef = env.GITHUB_WORKFLOW_REF ?? '';
  return {
    builderId: workflowRef ? `${server}/${workflowRef}` : `${server}/${env.GITHUB_REPOSITORY}/actions`,
    invocationId: `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}/attempts/${env.GITHUB_RUN_ATTEMPT ?? '1'}`,
    workflow: workflowRef,
    ref: env.GITHUB_REF ?? '',
    sha: env.GITHUB_SHA ?? '',
    repository: `${server}/${env.GITHUB_REPOSITORY}`,
    runId: env.GITHUB_RUN_ID,
    runAttempt: env.GITHUB_RUN_ATTEMPT ?? '1',
  };
}

const hexOf = (digest: string) => digest.replace(/^sha256:/, '');

export function buildProvenance(input: ProvenanceInput): Record<string, unknown> {
  const tc = input.toolchain;
  const resolved: Record<string, unknown>[] = [];
  if (input.commit) resolved.push({ uri: `git+${input.sourceUrl}@${input.commit}`, digest: { gitCommit: input.commit } });
  resolved.push({ name: input.pauseSource.path, digest: { sha256: input.pauseSource.sha256 } });
  if (tc.image) {
    resolved.push({
      name: 'builder',
      uri: `oci://${tc.image}`,
      ...(tc.imageId ? { digest: { sha256: hexOf(tc.imageId) } } : {}),
      annotations: { engine: tc.kind, ...(tc.base ? { base: tc.base } : {}) },
    });
  } else if (tc.identity) {
    resolved.push({ name: 'host-toolchain', annotations: { identity: tc.identity } });
  }
  const ci = input.ci;
  return {
    _type: INTOTO_STATEMENT_TYPE,
    subject: input.subjects.map((s) => ({ name: s.name, digest: { sha256: hexOf(s.digest) } })),
    predicateType: SLSA_PREDICATE_TYPE,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          version: input.version,
          arches: [...input.arches],
          source: { repository: input.sourceUrl, revision: input.revision, ...(input.commit ? { commit: input.commit } : {}) },
          dockerfile: { path: input.dockerfile.path, digest: { sha256: input.dockerfile.sha256 } },
          ...(Object.keys(input.buildArgs).length > 0 ? { buildArgs: { ...input.buildArgs } } : {}),
          ...(ci ? { workflow: { repository: ci.repository, ref: ci.ref, path: ci.workflow } } : {}),
        },
        internalParameters: { sourceDateEpoch: input.epoch, engine: tc.kind },
        resolvedDependencies: resolved,
      },
      runDetails: {
        builder: { id: ci?.builderId ?? LOCAL_BUILDER_ID, version: { 'pause-build': input.toolVersion } },
        metadata: ci ? { invocationId: ci.invocationId } : {},
        ...(ci ? { byproducts: [{ name: 'github-run', annotations: { runId: ci.runId, runAttempt: ci.runAttempt, sha: ci.sha } }] } : {}),
      },
    },
  };
}

export function statementBytes(statement: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(statement));
}
