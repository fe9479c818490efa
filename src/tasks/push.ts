/**
 * A push as listr2 tasks, a view of the engine's steps (src/registry/publish.ts): check
 * the tags and what the registry lacks, then write blobs, manifests, the index and tags,
 * the title counting blobs as they go.
 */
import type { ListrTask } from 'listr2';
import { shortDigest } from '../oci/blob.ts';
import type { BuiltIndex } from '../oci/types.ts';
import type { RegistryClient } from '../registry/client.ts';
import { Publish, type PushOptions, type PushResult } from '../registry/publish.ts';
import { type Repository, formatRepository } from '../registry/reference.ts';
import { formatSize } from '../github.ts';

export interface PushTaskInput {
  readonly client: RegistryClient;
  readonly target: Repository;
  /** The image set, or a function that gives it once an earlier task has built it. */
  readonly built: BuiltIndex | (() => BuiltIndex);
  readonly options: Omit<PushOptions, 'onProgress'>;
}

export interface PushState {
  result?: PushResult;
}

/** Sizes as the job summary shows them. */
export const formatBytes = formatSize;

/** Tasks that push `built` to `target`; `state.result` holds the outcome when they end. */
export function pushTasks(input: PushTaskInput, state: PushState): ListrTask[] {
  const repo = formatRepository(input.target);
  let run: Publish | undefined;
  let unchanged = false;
  let onBlob: (() => void) | undefined;
  const current = () => run!;
  return [
    {
      title: `Checking tags on ${repo}`,
      task: async (_ctx, task) => {
        const built = typeof input.built === 'function' ? input.built() : input.built;
        run = new Publish(input.client, input.target, built, { ...input.options, onProgress: (e) => (e.type === 'blob' ? onBlob?.() : undefined) });
        unchanged = await run.plan();
        const tags = run.result().tags;
        if (unchanged) {
          state.result = run.result();
          task.title = `${repo}: ${tags.map((t) => t.tag).join(', ')} already hold ${shortDigest(built.index.descriptor.digest)}; nothing to push`;
          return;
        }
        const changes = tags.filter((t) => t.status !== 'unchanged').map((t) => `${t.tag} ${t.status === 'created' ? 'new' : `moves from ${shortDigest(t.previous ?? '')}`}`);
        task.title = `${repo}: ${changes.length ? changes.join(', ') : 'no tags, by digest only'}`;
      },
    },
    {
      title: `Pushing images to ${repo}`,
      skip: () => unchanged,
      task: async (_ctx, task) => {
        const images = current().built.images;
        const label = `Pushing ${images.length} image${images.length === 1 ? '' : 's'} to ${repo}`;
        const total = current().blobsToWrite();
        let done = 0;
        task.title = `${label}: ${total} blob${total === 1 ? '' : 's'} to write`;
        onBlob = () => {
          done++;
          task.title = `${label}: ${done}/${total} blobs`;
        };
        await current().write();
        const result = current().result();
        state.result = result;
        const written = current().tagsToWrite().map((t) => t.tag);
        const b = result.blobs;
        task.title = `${result.reference}${written.length ? ` → ${written.join(', ')}` : ''} (uploaded ${b.uploaded}, ${formatBytes(b.uploadedBytes)}; mounted ${b.mounted}; already there ${b.skipped})`;
      },
    },
  ];
}
