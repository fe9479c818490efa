/**
 * A push as listr2 tasks: check the tags, then one task per image with one per blob
 * (titled with its size and what happened to it), then the index and its tags.
 * The steps are those of pushIndex (src/registry/push.ts), shown one by one.
 */
import type { ListrTask } from 'listr2';
import { shortDigest } from '../oci/blob.ts';
import type { BaseBlob, Blob as OciBlob, BuiltImage, BuiltIndex } from '../oci/types.ts';
import type { RegistryClient } from '../registry/client.ts';
import { IndexPush, type BlobStatus, type PushOptions, type PushResult } from '../registry/push.ts';
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


const BLOB_STATUS: Record<BlobStatus, string> = { uploaded: 'uploaded', skipped: 'already there', mounted: 'mounted' };

function blobTask(run: IndexPush, image: BuiltImage, blob: OciBlob | BaseBlob, kind: 'config' | 'layer'): ListrTask {
  const label = `${kind} ${shortDigest(blob.descriptor.digest)} ${formatBytes(blob.descriptor.size)}`;
  return {
    title: label,
    task: async (_ctx, task) => {
      const status = await run.pushBlob(image, blob, kind);
      task.title = `${label} ${BLOB_STATUS[status]}`;
    },
  };
}

function imageTask(run: IndexPush, image: BuiltImage): ListrTask {
  const size = image.layers.reduce((s, l) => s + l.descriptor.size, 0);
  const label = `${image.arch} ${shortDigest(image.manifest.descriptor.digest)} ${formatBytes(size)}`;
  return {
    title: label,
    task: async (_ctx, task) => {
      if (await run.imagePresent(image)) {
        run.recordImage(image, 'present');
        task.title = `${label} already there`;
        return;
      }
      return task.newListr(
        [
          blobTask(run, image, image.config, 'config'),
          ...image.layers.map((l) => blobTask(run, image, l, 'layer')),
          ...(image.baseBlobs ?? []).map((b) => blobTask(run, image, b, 'layer')),
          {
            title: `manifest ${shortDigest(image.manifest.descriptor.digest)} ${formatBytes(image.manifest.descriptor.size)}`,
            task: async () => {
              await run.putImageManifest(image);
            },
          },
        ],
        { concurrent: false, exitOnError: true },
      );
    },
  };
}

/** Tasks that push `built` to `target`; `state.result` holds the outcome when they end. */
export function pushTasks(input: PushTaskInput, state: PushState): ListrTask[] {
  const repo = formatRepository(input.target);
  let run: IndexPush | undefined;
  let unchanged = false;
  const current = () => run!;
  return [
    {
      title: `Checking tags on ${repo}`,
      task: async (_ctx, task) => {
        const built = typeof input.built === 'function' ? input.built() : input.built;
        run = new IndexPush(input.client, input.target, built, input.options);
        unchanged = await run.checkTags();
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
      task: (_ctx, task) => {
        const images = current().built.images;
        task.title = `Pushing ${images.length} image${images.length === 1 ? '' : 's'} to ${repo}`;
        return task.newListr(images.map((image) => imageTask(current(), image)), { concurrent: true, exitOnError: true });
      },
    },
    {
      title: 'Index and tags',
      skip: () => unchanged,
      task: async (_ctx, task) => {
        await current().finish();
        const result = current().result();
        state.result = result;
        const written = current().tagsToWrite().map((t) => t.tag);
        const b = result.blobs;
        task.title = `${result.reference}${written.length ? ` → ${written.join(', ')}` : ''} (uploaded ${b.uploaded}, ${formatBytes(b.uploadedBytes)}; mounted ${b.mounted}; already there ${b.skipped})`;
      },
    },
  ];
}
