/**
 * Publish as options of the one engine (plan.ts, write.ts): a built index goes to one
 * repository with its tags (the version, latest, per-arch tags), or its images go by
 * digest alone (`--by-digest`), blobs mounted from `--mount-from` repositories. The tags
 * are checked before anything is written; a publish whose tags already hold this content
 * writes nothing.
 */
import { settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { formatPlatform } from '../oci/platform.ts';
import type { BuiltImage, BuiltIndex } from '../oci/types.ts';
import type { RegistryClient } from './client.ts';
import { type Destination, type DestinationPlan, Engine, type RegistryDestination, type TagRequest, type TagStatus } from './plan.ts';
import { type Repository, formatRepository, pinnedReference, validateTag } from './reference.ts';
import { type ImageSource, builtImageSource, builtSource, resolveImage } from './sources.ts';
import { Spool } from './spool.ts';
import { type WriteEvent, write } from './write.ts';

export interface PushOptions {
  /** Tags for the index, e.g. the version; may be empty (push by digest only). */
  readonly tags: readonly string[];
  /** Also tag each arch's manifest as `<tag>-linux-<arch>`. */
  readonly perArchTags?: boolean;
  /** Move tags that hold other content. */
  readonly force?: boolean;
  /** Repositories on the same registry that may hold the blobs already (mounted instead of uploaded). */
  readonly mountFrom?: readonly string[];
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: PushEvent) => void;
  /** Registry requests at once (the engine's default, 8, when not given). */
  readonly concurrency?: number;
  /** false: push the images only, not the index that lists them (per-arch pushes by digest). */
  readonly withIndex?: boolean;
  /**
   * Blobs this run sent to the target before the push (or found there then), read when the
   * push plans: they are not asked for again, and count as what happened to them.
   */
  readonly sentEarly?: ReadonlyMap<string, 'uploaded' | 'present'>;
}

export type BlobStatus = 'uploaded' | 'skipped' | 'mounted';
export type { TagStatus };

export interface TagResult {
  readonly tag: string;
  readonly digest: string;
  readonly status: TagStatus;
  /** What the tag held before, when it was overwritten. */
  readonly previous?: string;
}

export interface ImageResult {
  readonly arch: string;
  /** `linux/arm/v7` */
  readonly platform: string;
  readonly digest: string;
  /** Sum of the layers' (compressed) sizes, as registries show it. */
  readonly compressedSize: number;
  /** Manifest + config + layers. */
  readonly totalSize: number;
  /** `pushed`: its manifest was written now; `present`: the registry had it. */
  readonly status: 'pushed' | 'present';
}

export interface BlobCounts {
  uploaded: number;
  skipped: number;
  mounted: number;
  uploadedBytes: number;
  skippedBytes: number;
  mountedBytes: number;
}

export interface PushResult {
  /** `host/repo` */
  readonly repository: string;
  /** The index digest. */
  readonly digest: string;
  /** `host/repo@sha256:…` */
  readonly reference: string;
  /** True when every tag already held this content and nothing was written. */
  readonly unchanged: boolean;
  readonly tags: readonly TagResult[];
  readonly images: readonly ImageResult[];
  readonly blobs: Readonly<BlobCounts>;
}

export type PushEvent =
  | { readonly type: 'tags-checked'; readonly unchanged: boolean; readonly tags: readonly TagResult[]; /** Blobs the write will move. */ readonly blobs: number }
  | { readonly type: 'blob'; readonly arch: string; readonly kind: 'config' | 'layer'; readonly digest: string; readonly size: number; readonly status: BlobStatus }
  | { readonly type: 'manifest'; readonly arch: string; readonly digest: string; readonly status: 'pushed' | 'present' }
  | { readonly type: 'index'; readonly digest: string; readonly status: 'pushed' | 'present' }
  | { readonly type: 'tag'; readonly tag: string; readonly digest: string; readonly status: TagStatus };

/** `3.10` → `3.10-linux-amd64`: the per-arch tag Kubernetes has always published. */
export function perArchTag(tag: string, arch: string): string {
  return arch.startsWith('windows-') ? `${tag}-${arch}` : `${tag}-linux-${arch}`;
}

function platformOf(image: BuiltImage): string {
  const p = image.manifest.descriptor.platform;
  return p ? formatPlatform(p) : `linux/${image.arch}`;
}

/** The destination a publish writes: the index tags, and per-arch tags on each image's manifest. */
export function publishDestination(built: BuiltIndex, target: Repository, opts: Pick<PushOptions, 'tags' | 'perArchTags' | 'mountFrom'>): RegistryDestination {
  const unique = [...new Set(opts.tags)].map(validateTag);
  const perArch: TagRequest[] = opts.perArchTags
    ? unique.flatMap((tag) => built.images.map((image) => ({ tag: validateTag(perArchTag(tag, image.arch)), digest: image.manifest.descriptor.digest })))
    : [];
  const [first, ...rest] = unique;
  return {
    repository: target,
    ...(first === undefined ? {} : { tag: first }),
    moreTags: [...perArch, ...rest.map((tag) => ({ tag }))],
    ...(opts.mountFrom?.length ? { mountFrom: opts.mountFrom } : {}),
  };
}

/** One publish: the plan (tags checked, HEADs only), then, unless nothing is missing, the write. */
class Publish {
  readonly engine: Engine;
  readonly action: string;
  private readonly sources: { source: ImageSource; images: readonly BuiltImage[]; destination: Destination }[];
  private plans: { image: Awaited<ReturnType<typeof resolveImage>>; plan: DestinationPlan; images: readonly BuiltImage[] }[] = [];
  private readonly counts: BlobCounts = { uploaded: 0, skipped: 0, mounted: 0, uploadedBytes: 0, skippedBytes: 0, mountedBytes: 0 };
  private readonly written = new Set<string>();
  private unchanged = false;

  constructor(client: RegistryClient, readonly target: Repository, readonly built: BuiltIndex, private readonly opts: PushOptions) {
    if (built.images.length === 0) throw new PauseBuildError('nothing to push: the index has no images', { hint: 'build at least one arch' });
    this.action = `push to ${formatRepository(target)}`;
    this.engine = new Engine(client, { force: Boolean(opts.force), ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.concurrency ? { concurrency: opts.concurrency } : {}), verb: 'push to' });
    if (opts.withIndex === false) {
      if (opts.tags.length) throw new Error('Publish: tags need the index');
      const destination: Destination = { repository: target, ...(opts.mountFrom?.length ? { mountFrom: opts.mountFrom } : {}) };
      this.sources = built.images.map((image) => ({ source: builtImageSource(image), images: [image], destination }));
    } else {
      this.sources = [{ source: builtSource(built), images: built.images, destination: publishDestination(built, target, opts) }];
    }
  }

  /** Checks every tag and asks what the registry lacks. True when every tag already holds what it should. */
  async plan(): Promise<boolean> {
    for (const digest of this.opts.sentEarly?.keys() ?? []) this.engine.hold(this.target, digest);
    this.plans = await settleAll(this.sources.map(async ({ source, images, destination }) => {
      const image = await resolveImage(source, { ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
      return { image, plan: await this.engine.plan(image, destination), images };
    }));
    const tags = this.plans.flatMap((p) => p.plan.tags);
    this.unchanged = tags.length > 0 && tags.every((t) => t.status === 'unchanged');
    this.opts.onProgress?.({ type: 'tags-checked', unchanged: this.unchanged, tags: this.tagResults(), blobs: this.blobsToWrite() });
    return this.unchanged;
  }

  /** Blobs to move, over every image. */
  blobsToWrite(): number {
    return this.plans.reduce((n, p) => n + p.plan.blobs.filter((b) => b.action !== 'present').length, 0);
  }

  /** Writes the plan: blobs, image manifests, the index, then the tags. */
  async write(): Promise<void> {
    if (this.unchanged) return;
    const kinds = new Map<string, { arch: string; kind: 'config' | 'layer' }>();
    for (const image of this.built.images) {
      kinds.set(image.config.descriptor.digest, { arch: image.arch, kind: 'config' });
      for (const l of image.layers) kinds.set(l.descriptor.digest, { arch: image.arch, kind: 'layer' });
    }
    const arches = new Map(this.built.images.map((i) => [i.manifest.descriptor.digest, i.arch]));
    const spool = new Spool({ source: 'the built index', memoryLimit: Number.POSITIVE_INFINITY });
    try {
      await settleAll(this.plans.map(({ image, plan }) => write(this.engine, image, plan, spool, (e: WriteEvent) => {
        if (e.type === 'blob') {
          const early = e.status === 'present' && this.opts.sentEarly?.get(e.descriptor.digest) === 'uploaded';
          const status: BlobStatus = early ? 'uploaded' : e.status === 'present' ? 'skipped' : e.status;
          this.counts[status]++;
          this.counts[`${status}Bytes`] += e.descriptor.size;
          const k = kinds.get(e.descriptor.digest) ?? { arch: '', kind: 'layer' as const };
          this.opts.onProgress?.({ type: 'blob', arch: k.arch, kind: k.kind, digest: e.descriptor.digest, size: e.descriptor.size, status });
        } else if (e.type === 'manifest') {
          this.written.add(e.digest);
          const arch = arches.get(e.digest);
          if (arch !== undefined) this.opts.onProgress?.({ type: 'manifest', arch, digest: e.digest, status: 'pushed' });
          else this.opts.onProgress?.({ type: 'index', digest: e.digest, status: 'pushed' });
        } else {
          const t = this.tagResults().find((r) => r.tag === e.tag)!;
          this.opts.onProgress?.({ type: 'tag', tag: e.tag, digest: e.digest, status: t.status });
        }
      })));
    } finally {
      await spool.dispose();
    }
  }

  /** Tags that will be (or were) written. */
  tagsToWrite(): readonly TagResult[] {
    return this.tagResults().filter((t) => t.status !== 'unchanged');
  }

  private tagResults(): TagResult[] {
    return this.plans.flatMap((p) => p.plan.tags.map((t) => ({ tag: t.tag, digest: t.digest, status: t.status, ...(t.previous ? { previous: t.previous } : {}) })));
  }

  result(): PushResult {
    const digest = this.built.index.descriptor.digest;
    const images = this.built.images.map((image): ImageResult => {
      const compressedSize = image.layers.reduce((sum, l) => sum + l.descriptor.size, 0);
      return {
        arch: image.arch,
        platform: platformOf(image),
        digest: image.manifest.descriptor.digest,
        compressedSize,
        totalSize: compressedSize + image.config.descriptor.size + image.manifest.descriptor.size,
        status: this.written.has(image.manifest.descriptor.digest) ? 'pushed' : 'present',
      };
    });
    // Root tags last, as they were written.
    const tags = this.tagResults();
    return {
      repository: formatRepository(this.target),
      digest,
      reference: pinnedReference(this.target, digest),
      unchanged: this.unchanged,
      tags,
      images,
      blobs: { ...this.counts },
    };
  }
}

/**
 * Pushes `built` to `target` and tags it: what `publish`, `push` and `index` run (through
 * src/tasks/push.ts, which shows the same steps as tasks).
 */
export async function publishIndex(client: RegistryClient, target: Repository, built: BuiltIndex, opts: PushOptions): Promise<PushResult> {
  const run = new Publish(client, target, built, opts);
  if (!(await run.plan())) await run.write();
  return run.result();
}
