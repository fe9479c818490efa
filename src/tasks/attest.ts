/**
 * The attestation step of the image stage: gathers the facts only the build has (the
 * binaries' digests, pause.c's, the toolchain's libc and compiler, the builder image, the
 * commit, the Actions run) and makes the artifacts that go with the index.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ListrTask } from 'listr2';
import { type AttestationSet, type ImageFacts, buildAttestations } from '../attest/attestations.ts';
import type { SigningKey } from '../attest/keys.ts';
import { ciRun } from '../attest/provenance.ts';
import { git } from '../git.ts';
import { packageVersion } from '../project.ts';
import { platformString } from '../platforms.ts';
import { type ToolchainComponents, componentsFailed, componentsJob, keepComponents, keptComponents, readComponents } from '../toolchain/components.ts';
import type { Job, RunResult } from '../toolchain/toolchain.ts';
import { PauseBuildError } from '../errors.ts';
import type { BuildOptions, BuildState } from './context.ts';

export interface AttestOptions extends BuildOptions {
  readonly attestations: boolean;
  readonly signingKey?: SigningKey;
  readonly dockerfile: string;
  readonly epoch: number;
  readonly sourceUrl: string;
  readonly buildArgs: Readonly<Record<string, string>>;
}

export interface AttestState extends BuildState {
  components?: Promise<Map<string, ToolchainComponents>>;
  /** HEAD, for the provenance. */
  commit?: Promise<string | undefined>;
  attestations?: AttestationSet;
  dockerfileText?: string;
}

const digests = (bytes: Uint8Array) => ({ sha256: createHash('sha256').update(bytes).digest('hex'), sha1: createHash('sha1').update(bytes).digest('hex') });

/**
 * Starts reading the toolchain's versions as soon as the toolchain is known (while compiling).
 * A builder image's versions not kept yet are asked in the compilers' container, when one
 * runs, instead of a container of their own.
 */
export function startComponents(opts: AttestOptions, state: AttestState): void {
  // HEAD for the provenance, asked while compiling too.
  if ((opts.attestations || opts.signingKey) && !state.commit) {
    state.commit = gitCommit(opts.root);
    state.commit.catch(() => undefined);
  }
  if (!opts.attestations || state.components || !state.toolchain) return;
  const tc = state.toolchain;
  const dir = opts.cacheDir === undefined ? undefined : path.join(opts.cacheDir, 'components');
  const where = `the builder image ${state.builderImage}`;
  let offer: (job: Job | undefined) => void = () => undefined;
  let ran: Promise<RunResult | undefined> = Promise.resolve(undefined);
  if (tc.kind !== 'host' && opts.platforms.length > 0) {
    const job = new Promise<Job | undefined>((resolve) => (offer = resolve));
    ran = new Promise((resolve) => (state.besideCompile = { job, ran: resolve }));
  }
  state.components = (async () => {
    try {
      const cache = dir !== undefined && tc.imageId ? { dir, imageId: await tc.imageId() } : undefined;
      const kept = tc.kind === 'host' ? undefined : await keptComponents(state.builderImage, opts.platforms, cache);
      if (kept) return kept;
      offer(componentsJob(opts.platforms));
      const r = await ran;
      if (!r) return await readComponents(tc.kind, state.builderImage, opts.platforms, cache);
      if (r.canceled || opts.signal.aborted) throw new PauseBuildError('reading the toolchain versions interrupted', { exitCode: 130 });
      if (!r.ok) throw componentsFailed(where, r.output, 'exit status not 0');
      return await keepComponents(r.output, state.builderImage, opts.platforms, cache);
    } finally {
      offer(undefined); // the batch does not wait for a job that was never offered
    }
  })();
  state.components.catch(() => undefined); // awaited by the attestation task
}

async function gitCommit(root: string): Promise<string | undefined> {
  const head = await git(root).head();
  return head !== undefined && /^[0-9a-f]{40,64}$/.test(head) ? head : undefined;
}


export function attestTask(opts: AttestOptions, state: AttestState & { built?: import('../oci/types.ts').BuiltIndex }): ListrTask {
  return {
    title: 'Attestations',
    enabled: () => opts.attestations || opts.signingKey !== undefined,
    task: async (_ctx, task) => {
      startComponents(opts, state);
      const components = opts.attestations ? await state.components! : new Map<string, ToolchainComponents>();
      const sourceBytes = await readFile(opts.source);
      const images = new Map<string, ImageFacts>();
      for (const p of opts.attestations ? opts.platforms : []) {
        const bin = state.binaries.get(p.arch)!;
        const d = digests(await readFile(bin.path));
        images.set(p.arch, { arch: p.arch, platform: platformString(p), binarySha256: d.sha256, binarySha1: d.sha1, components: components.get(p.arch)! });
      }
      const tc = state.toolchain!;
      const toolchain = tc.kind === 'host'
        ? { kind: 'host', ...(opts.platforms[0] ? { identity: await tc.identity(opts.platforms[0]) } : {}) }
        : { kind: tc.kind, image: state.builderImage, imageId: tc.imageId ? (await tc.imageId()).replace(/^sha256:/, '') : undefined, base: opts.base };
      const src = digests(sourceBytes);
      const rel = (file: string) => {
        const r = path.relative(opts.root, file);
        return r.startsWith('..') || path.isAbsolute(r) ? path.basename(file) : r;
      };
      state.attestations = await buildAttestations({
        built: state.built!,
        images,
        source: { file: path.basename(opts.source), path: rel(opts.source), ...src },
        binaryPath: '/pause',
        key: opts.signingKey,
        documents: opts.attestations,
        provenance: {
          version: opts.version.tag,
          arches: opts.platforms.map((p) => p.arch),
          sourceUrl: opts.sourceUrl,
          commit: await (state.commit ?? gitCommit(opts.root)),
          revision: opts.revision,
          dockerfile: { path: rel(opts.dockerfile), sha256: createHash('sha256').update(state.dockerfileText ?? (await readFile(opts.dockerfile, 'utf8'))).digest('hex') },
          buildArgs: opts.buildArgs,
          epoch: opts.epoch,
          pauseSource: { path: rel(opts.source), sha256: src.sha256 },
          toolchain,
          toolVersion: packageVersion(),
          ci: ciRun(process.env),
        },
      });
      const n = state.attestations.artifacts.length;
      task.title = `Attestations: ${n} artifacts (SBOM and provenance${opts.signingKey ? ', signed' : ''})`;
    },
  };
}
