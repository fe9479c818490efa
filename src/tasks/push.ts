/**
 * A push as listr2 tasks, a view of the engine's steps (src/registry/publish.ts): check
 * the tags and what the registry lacks, then write blobs, manifests, the index and tags,
 * the title counting blobs as they go.
 */
import type { ListrTask } from 'listr2';
import { shortDigest } from '../oci/blob.ts';
import type { BuiltIndex } from '../oci/types.ts';
import type { RegistryClient } from '../registry/client.ts';
import { type PushOptions, type PushResult, type TagResult, publishIndex } from '../registry/publish.ts';
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

/**
 * Tasks that push `built` to `target`; `state.result` holds the outcome when they end.
 * Both tasks watch one `publishIndex` call: the first ends when its tags are checked,
 * the second when it is done.
 */
export function pushTasks(input: PushTaskInput, state: PushState): ListrTask[] {
  const repo = formatRepository(input.target);
  let running: Promise<PushResult> | undefined;
  let built: BuiltIndex | undefined;
  let unchanged = false;
  let blobs = 0;
  let onBlob: (() => void) | undefined;
  return [
    {
      title: `Checking tags on ${repo}`,
      task: async (_ctx, task) => {
        built = typeof input.built === 'function' ? input.built() : input.built;
        const checked = new Promise<{ unchanged: boolean; tags: readonly TagResult[] }>((resolve) => {
          running = publishIndex(input.client, input.target, built!, {
            ...input.options,
            onProgress: (e) => {
              if (e.type === 'tags-checked') {
                blobs = e.blobs;
                resolve(e);
              } else if (e.type === 'blob') onBlob?.();
            },
          });
        });
        running!.catch(() => undefined);
        const { unchanged: nothing, tags } = await Promise.race([checked, running!.then(() => checked)]);
        unchanged = nothing;
        if (unchanged) {
          state.result = await running!;
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
        const images = built!.images;
        const label = `Pushing ${images.length} image${images.length === 1 ? '' : 's'} to ${repo}`;
        let done = 0;
        task.title = `${label}: ${blobs} blob${blobs === 1 ? '' : 's'} to write`;
        onBlob = () => {
          done++;
          task.title = `${label}: ${done}/${blobs} blobs`;
        };
        const result = await running!;
        state.result = result;
        const written = result.tags.filter((t) => t.status !== 'unchanged').map((t) => t.tag);
        const b = result.blobs;
        task.title = `${result.reference}${written.length ? ` → ${written.join(', ')}` : ''} (uploaded ${b.uploaded}, ${formatBytes(b.uploadedBytes)}; mounted ${b.mounted}; already there ${b.skipped})`;
      },
    },
  ];
}
