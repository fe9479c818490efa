/**
 * The engine's second half: writes what a plan says a destination lacks, in the order
 * that keeps it consistent at every moment: blobs, child manifests by digest, the root
 * by digest, then the tags (child tags, root tags last).
 *
 * A blob is mounted when its registry is known to hold it in another repository (the
 * source's, a --mount-from one, or one this run wrote to), else read once from the source
 * through the spool (checked against its digest and size before any upload completes)
 * and uploaded to every destination that needs it.
 */
import { createHash } from 'node:crypto';
import { Limiter, settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { shortDigest } from '../oci/blob.ts';
import type { Descriptor } from '../oci/types.ts';
import type { Engine, DestinationPlan, DestinationResult } from './plan.ts';
import { type LayoutDestination, emptyCounts, isLayoutDestination, planSummary } from './plan.ts';
import { lockLayout, tagLayout, writeLayoutBlob } from '../oci/layout.ts';
import { type Repository, formatRepository } from './reference.ts';
import type { ManifestDoc, SourceImage } from './sources.ts';
import { DEFAULT_MEMORY_LIMIT, type Spool, type SpooledBlob } from './spool.ts';

export type WriteEvent =
  | { readonly type: 'blob'; readonly descriptor: Descriptor; readonly status: 'uploaded' | 'mounted' | 'present' }
  | { readonly type: 'manifest'; readonly digest: string; readonly status: 'pushed' | 'present' }
  | { readonly type: 'tag'; readonly tag: string; readonly digest: string };

type Content = (d: Descriptor) => Promise<SpooledBlob>;

/** Blobs above this go straight from the source to a lone destination, not through the spool. */
export const STREAM_THROUGH_BYTES = DEFAULT_MEMORY_LIMIT;

export interface WriteOptions {
  /**
   * This destination is the only one the image goes to: a large blob is streamed from the
   * source into its upload (download and upload overlap), checked against its digest and
   * size as it passes, so the upload is never completed with other content.
   */
  readonly onlyDestination?: boolean;
  /**
   * Manifests wait for this (blobs do not): a referrer's blobs upload alongside its subject,
   * its manifest goes once the subject is written.
   */
  readonly manifestsAfter?: Promise<unknown>;
}

/** A stream that errors, before it ends, when its bytes are not the descriptor's. */
export function verifying(stream: ReadableStream<Uint8Array>, d: Descriptor, where: string): ReadableStream<Uint8Array> {
  const hash = createHash('sha256');
  let seen = 0;
  return stream.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > d.size) {
        controller.error(new PauseBuildError(`${where}: blob ${shortDigest(d.digest)} is larger than its declared ${d.size} bytes`, { hint: 'the source sent other content; nothing was written for it' }));
        return;
      }
      hash.update(chunk);
      controller.enqueue(chunk);
    },
    flush(controller) {
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== d.digest || seen !== d.size) {
        controller.error(new PauseBuildError(`${where}: blob ${shortDigest(d.digest)} is corrupt: its content hashes to ${shortDigest(got)} (${seen} bytes, expected ${d.size})`, { hint: 'the source changed or corrupted the content; nothing was written for it, try again or repair the source' }));
      }
    },
  }));
}

/** Writes what the plan says is missing: blobs, child manifests, the root, then the tags. */
export async function write(engine: Engine, image: SourceImage, plan: DestinationPlan, spool: Spool, onEvent?: (e: WriteEvent) => void, options: WriteOptions = {}): Promise<DestinationResult> {
  const summary = planSummary(plan);
  if (summary.unchanged) return summary;
  if (isLayoutDestination(plan.destination)) return writeToLayout(engine, image, plan, plan.destination, spool, onEvent);
  const repo = plan.destination.repository;
  const counts = emptyCounts();
  const limiter = new Limiter(engine.opts.concurrency ?? 8);
  const spooled: Content = (d) => spool.get(d, () => image.source.blob(d, engine.opts.signal));
  const content: Content = (d) => {
    if (!options.onlyDestination || d.size <= STREAM_THROUGH_BYTES) return spooled(d);
    // Each open reads the source again (a retried upload starts over), never a whole copy held.
    return Promise.resolve({
      descriptor: d,
      open: async () => {
        const c = await image.source.blob(d, engine.opts.signal);
        if ('stream' in c) return c.verified ? c.stream : verifying(c.stream, d, image.source.name);
        return (await spooled(d)).open();
      },
    });
  };

  await settleAll(plan.blobs.map(async (b) => {
    let status: 'uploaded' | 'mounted' | 'present' = 'present';
    if (b.action !== 'present') status = await ensureBlob(engine, repo, b.descriptor, b.from, content, limiter);
    counts[status]++;
    counts[`${status}Bytes`] += b.descriptor.size;
    onEvent?.({ type: 'blob', descriptor: b.descriptor, status });
  }));
  await options.manifestsAfter;
  let written = 0;
  const put = async (m: ManifestDoc) => {
    await ensureManifest(engine, repo, m);
    written++;
    onEvent?.({ type: 'manifest', digest: m.digest, status: 'pushed' });
  };
  if (!plan.rootPresent) {
    // Image manifests side by side; a nested index after them, each after its own
    // children (the list is in that order); the root last.
    await settleAll(plan.manifests.filter((m) => m.kind === 'image').map((m) => limiter.run(() => put(m))));
    for (const m of plan.manifests.filter((x) => x.kind === 'index')) await put(m);
    await put(image.root);
  }
  const docs = new Map<string, ManifestDoc>([[image.root.digest, image.root], ...image.manifests.map((m) => [m.digest, m] as const)]);
  for (const t of plan.tags) {
    if (t.status === 'unchanged') continue;
    const doc = docs.get(t.digest)!;
    await engine.client.putManifest(repo, t.tag, doc.bytes, doc.mediaType, engine.call(repo));
    onEvent?.({ type: 'tag', tag: t.tag, digest: t.digest });
  }
  return {
    destination: plan.destination,
    manifestsWritten: written,
    manifestsPresent: plan.presentManifests,
    blobs: counts,
    ...(plan.tag ? { tag: plan.tag } : {}),
    tags: plan.tags,
    unchanged: written === 0 && plan.tags.every((t) => t.status === 'unchanged'),
  };
}

/** Once per repository and digest; what this call did ('present' when another did it). */
function ensureBlob(engine: Engine, repo: Repository, d: Descriptor, from: string | undefined, content: Content, limiter: Limiter): Promise<'uploaded' | 'mounted' | 'present'> {
  const key = `${formatRepository(repo)}@${d.digest}`;
  const running = engine.writes.get(key);
  if (running) return running.then(() => 'present' as const);
  const chainKey = `${repo.registry}@${d.digest}`;
  const before = engine.chains.get(chainKey) ?? Promise.resolve();
  const op = before.catch(() => undefined).then(() => limiter.run(() => transferBlob(engine, repo, d, from, content)));
  engine.chains.set(chainKey, op);
  engine.writes.set(key, op);
  return op;
}

async function transferBlob(engine: Engine, repo: Repository, d: Descriptor, planned: string | undefined, content: Content): Promise<'uploaded' | 'mounted'> {
  // A blob another destination of this run got meanwhile can be mounted from there.
  const from = planned ?? engine.holderFor(repo, d.digest);
  // An upload needs the bytes after the registry opens the session: read them meanwhile
  // (a streamed blob is only opened then).
  const early = from === undefined ? content(d) : undefined;
  early?.catch(() => undefined);
  const upload = { descriptor: d, open: async () => (await (early ?? content(d))).open() };
  let status: 'uploaded' | 'mounted' = 'uploaded';
  if (from !== undefined) status = await engine.client.mountBlob(repo, upload, from, engine.call(repo));
  else await engine.client.uploadBlob(repo, upload, engine.call(repo));
  engine.hold(repo, d.digest);
  return status;
}

function ensureManifest(engine: Engine, repo: Repository, m: ManifestDoc): Promise<unknown> {
  const key = `${formatRepository(repo)}@${m.digest}`;
  let op = engine.writes.get(key);
  if (!op) {
    op = engine.client.putManifest(repo, m.digest, m.bytes, m.mediaType, engine.call(repo)).then(() => engine.wroteManifest(repo, m.digest));
    engine.writes.set(key, op);
  }
  return op;
}

/**
 * The same order into a layout, under its lock: blobs and manifests as files (each
 * checked against its digest before it is renamed into place), then index.json once.
 */
async function writeToLayout(engine: Engine, image: SourceImage, plan: DestinationPlan, dest: LayoutDestination, spool: Spool, onEvent?: (e: WriteEvent) => void): Promise<DestinationResult> {
  const counts = emptyCounts();
  const limiter = new Limiter(engine.opts.concurrency ?? 8);
  const unlock = await lockLayout(dest.dir);
  try {
    await settleAll(plan.blobs.map((b) => limiter.run(async () => {
      let status: 'uploaded' | 'present' = 'present';
      if (b.action !== 'present') {
        const spooled = await spool.get(b.descriptor, () => image.source.blob(b.descriptor, engine.opts.signal));
        await writeLayoutBlob(dest.dir, b.descriptor, await spooled.open());
        status = 'uploaded';
      }
      counts[status]++;
      counts[`${status}Bytes`] += b.descriptor.size;
      onEvent?.({ type: 'blob', descriptor: b.descriptor, status });
    })));
    let written = 0;
    if (!plan.rootPresent) {
      for (const m of [...plan.manifests, image.root]) {
        await writeLayoutBlob(dest.dir, { mediaType: m.mediaType, digest: m.digest, size: m.size }, m.bytes);
        written++;
        onEvent?.({ type: 'manifest', digest: m.digest, status: 'pushed' });
      }
    }
    const docs = new Map<string, ManifestDoc>([[image.root.digest, image.root], ...image.manifests.map((m) => [m.digest, m] as const)]);
    const tags = plan.tags.filter((t) => t.status !== 'unchanged').map((t) => {
      const doc = docs.get(t.digest)!;
      return { tag: t.tag, descriptor: { mediaType: doc.mediaType, digest: doc.digest, size: doc.size } };
    });
    if (tags.length) await tagLayout(dest.dir, tags);
    for (const t of tags) onEvent?.({ type: 'tag', tag: t.tag, digest: t.descriptor.digest });
    return {
      destination: dest,
      manifestsWritten: written,
      manifestsPresent: plan.presentManifests,
      blobs: counts,
      ...(plan.tag ? { tag: plan.tag } : {}),
      tags: plan.tags,
      unchanged: written === 0 && tags.length === 0,
    };
  } finally {
    await unlock();
  }
}
