/**
 * After a publish: the build's attestations (and signatures) attached to what was pushed,
 * as referrers through the engine (registry/referrers.ts). A registry that refuses them
 * gets a warning, or fails the run with --require-referrers.
 */
import type { ListrTask } from 'listr2';
import type { Artifact } from '../oci/referrers.ts';
import type { BuiltIndex } from '../oci/types.ts';
import type { RegistryClient } from '../registry/client.ts';
import { Engine } from '../registry/plan.ts';
import { type AttachResult, attach, builtAttachments } from '../registry/referrers.ts';
import { type Repository, formatRepository } from '../registry/reference.ts';
import { Spool } from '../registry/spool.ts';

export interface AttachInput {
  readonly client: RegistryClient;
  readonly target: Repository;
  readonly artifacts: () => readonly Artifact[] | undefined;
  /** Only artifacts whose subject was pushed (by digest: the images, not the index). */
  readonly built: () => BuiltIndex;
  readonly withIndex: boolean;
  readonly require?: boolean;
  readonly signal?: AbortSignal;
  /** The documents' blobs this run sent before (early-blobs.ts): not asked for again. */
  readonly sentEarly?: ReadonlyMap<string, unknown>;
}

export interface AttachState {
  result?: AttachResult;
  warnings: string[];
}

export function attachTask(input: AttachInput, state: AttachState): ListrTask {
  return {
    title: `Attaching attestations on ${formatRepository(input.target)}`,
    enabled: () => (input.artifacts()?.length ?? 0) > 0,
    task: async (_ctx, task) => {
      const built = input.built();
      const pushed = new Set([...(input.withIndex ? [built.index.descriptor.digest] : []), ...built.images.map((i) => i.manifest.descriptor.digest)]);
      const artifacts = input.artifacts()!.filter((a) => pushed.has(a.subject));
      const engine = new Engine(input.client, { verb: 'push to', ...(input.signal ? { signal: input.signal } : {}) });
      for (const digest of input.sentEarly?.keys() ?? []) engine.hold(input.target, digest);
      const spool = new Spool({ source: 'the attestations', memoryLimit: Number.POSITIVE_INFINITY });
      try {
        state.result = await attach(engine, spool, { repository: input.target }, builtAttachments(artifacts), { require: Boolean(input.require) });
      } finally {
        await spool.dispose();
      }
      state.warnings.push(...state.result.refused);
      const r = state.result;
      const via = r.api ? 'referrers API' : `fallback tags (${r.fallbackTags} written)`;
      task.title = `Attestations on ${formatRepository(input.target)}: ${r.written} new, ${r.present} already there, via ${via}${r.refused.length ? `, ${r.refused.length} refused` : ''}`;
    },
  };
}
