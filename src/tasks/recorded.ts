/**
 * The no-op publish as a task: after the Dockerfile and the toolchain are known and before
 * anything is compiled, hash every input of the publish, look up what the same inputs
 * published last time (src/publish-record.ts), and HEAD each recorded tag. When every tag
 * still holds its recorded digest the publish is done; otherwise the full pipeline runs.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ListrTask } from 'listr2';
import { sourceInputs } from '../cache.ts';
import { binaryName, compileKey } from '../compile.ts';
import { layerFormat } from '../oci/compress.ts';
import { packageVersion } from '../project.ts';
import { type PublishInputs, type PublishRecord, type PublishRecords, publishKey, toolFingerprint } from '../publish-record.ts';
import type { RegistryClient } from '../registry/client.ts';
import { perArchTag } from '../registry/publish.ts';
import { type Repository, formatRepository } from '../registry/reference.ts';
import type { ImageOptions, ImageState } from './image.ts';

/** Where publish records are kept: beside the compile cache. */
export function publishRecordDir(cacheDir: string): string {
  return path.join(cacheDir, 'publish');
}

export interface RecordedInput {
  readonly opts: ImageOptions;
  /** After prepareTasks: the Dockerfile and its plans, and the toolchain. */
  readonly state: ImageState;
  readonly records: PublishRecords;
  readonly client: RegistryClient;
  readonly target: Repository;
  readonly tags: readonly string[];
  readonly perArchTags: boolean;
}

export interface RecordedState {
  /** The key of this publish's inputs, to record its result under; unset if an input could not be read. */
  key?: string;
  /** Set when the registry holds what these inputs published last time: nothing is left to do. */
  unchanged?: PublishRecord;
}

/**
 * Every input of the publish: the binaries by their compile keys (not by the files in bin/,
 * which may be from another build), any other file the Dockerfile adds by its content.
 * undefined when such a file cannot be read (the full pipeline then says why).
 */
export async function publishInputs(input: Omit<RecordedInput, 'records' | 'client'>): Promise<PublishInputs | undefined> {
  const { opts, state } = input;
  const sources = await sourceInputs(opts.source);
  const binaries = await Promise.all(
    opts.platforms.map(async (p) => ({
      arch: p.arch,
      key: await compileKey({ source: opts.source, version: opts.versionString, toolchain: state.toolchain! }, p, sources),
    })),
  );
  const built = new Set(opts.platforms.map((p) => path.join(opts.binDir, binaryName('pause', p))));
  const contextFiles = new Map<string, { source: string; sha256: string; mode: number }>();
  for (const plan of state.plans.values()) {
    for (const step of plan.steps) {
      for (const { source } of step.layer?.files ?? []) {
        const file = path.resolve(opts.context, source);
        if (built.has(file) || contextFiles.has(source)) continue;
        try {
          const [bytes, info] = await Promise.all([readFile(file), stat(file)]);
          contextFiles.set(source, { source, sha256: createHash('sha256').update(bytes).digest('hex'), mode: info.mode & 0o7777 });
        } catch {
          return undefined;
        }
      }
    }
  }
  return {
    tool: await toolFingerprint(packageVersion(), layerFormat()),
    binaries,
    emulate: opts.emulate,
    dockerfile: state.dockerfileText ?? '',
    buildArgs: opts.buildArgs,
    contextFiles: [...contextFiles.values()].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0)),
    epoch: opts.epoch,
    version: opts.version.tag,
    revision: opts.revision,
    sourceUrl: opts.sourceUrl,
    tags: input.tags,
    perArchTags: input.perArchTags,
    target: formatRepository(input.target),
    ...(opts.attestations || opts.signingKey ? { attestations: { documents: opts.attestations, ...(opts.signingKey ? { signer: opts.signingKey.hint } : {}) } } : {}),
  };
}

/** The tags a publish writes, in the order it writes them (as planTags: per-arch tags first). */
function tagNames(input: Pick<RecordedInput, 'opts' | 'tags' | 'perArchTags'>): string[] {
  const unique = [...new Set(input.tags)];
  const perArch = input.perArchTags ? unique.flatMap((t) => input.opts.platforms.map((p) => perArchTag(t, p.arch))) : [];
  return [...perArch, ...unique];
}

function short(digest: string): string {
  return digest.slice(0, 19);
}

export function recordedPublishTask(input: RecordedInput, out: RecordedState): ListrTask {
  const repo = formatRepository(input.target);
  return {
    title: 'Looking for an earlier publish of the same inputs',
    task: async (_ctx, task) => {
      const inputs = await publishInputs(input);
      if (!inputs) {
        task.title = 'Not every file the Dockerfile adds could be read: building';
        return;
      }
      out.key = publishKey(inputs);
      const record = await input.records.read(out.key);
      const names = tagNames(input);
      if (!record || record.repository !== repo || record.tags.map((t) => t.tag).join('\n') !== names.join('\n')) {
        task.title = 'No earlier publish of these inputs recorded: building';
        return;
      }
      // The proof: what the registry holds now, not what the record says.
      const call = { signal: input.opts.signal, action: `push to ${repo}`, access: 'push' as const };
      const settled = await Promise.allSettled(record.tags.map((t) => input.client.headManifest(input.target, t.tag, call)));
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      const held = settled.map((s) => (s as PromiseFulfilledResult<{ digest: string } | undefined>).value?.digest);
      const moved = record.tags.findIndex((t, i) => held[i] !== t.digest);
      if (moved >= 0) {
        const now = held[moved];
        task.title = `${repo}: ${record.tags[moved]!.tag} ${now ? `now holds ${short(now)}` : 'is gone'} since these inputs were published: building`;
        return;
      }
      out.unchanged = record;
      task.title = `${repo}: ${names.join(', ')} already hold ${short(record.digest)}, published from these same inputs; nothing to build or push`;
    },
  };
}
