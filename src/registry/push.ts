/**
 * Pushing a built index to one repository, in the order that keeps the registry
 * consistent at every moment: blobs, then each image's manifest by digest, then the
 * index by digest, and only then the tags. Tags are immutable unless forced: every
 * requested tag is checked before anything is written, a tag holding other content
 * stops the push, and a push whose tags already hold this content does nothing.
 */
import { Limiter, settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { formatPlatform } from '../oci/platform.ts';
import type { BaseBlob, Blob as OciBlob, BuiltImage, BuiltIndex } from '../oci/types.ts';
import type { RegistryClient } from './client.ts';
import { type Repository, formatRepository, pinnedReference, validateTag } from './reference.ts';

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
  /** Blob transfers at once. Default 4. */
  readonly concurrency?: number;
  /** false: push the images only, not the index that lists them (per-arch pushes by digest). */
  readonly withIndex?: boolean;
}

export type BlobStatus = 'uploaded' | 'skipped' | 'mounted';
export type TagStatus = 'created' | 'unchanged' | 'overwritten';

export interface TagPlan {
  readonly tag: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Uint8Array;
  /** Set for per-arch tags. */
  readonly arch?: string;
}

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
  | { readonly type: 'tags-checked'; readonly unchanged: boolean; readonly tags: readonly TagResult[] }
  | { readonly type: 'blob'; readonly arch: string; readonly kind: 'config' | 'layer'; readonly digest: string; readonly size: number; readonly status: BlobStatus }
  | { readonly type: 'manifest'; readonly arch: string; readonly digest: string; readonly status: 'pushed' | 'present' }
  | { readonly type: 'index'; readonly digest: string; readonly status: 'pushed' | 'present' }
  | { readonly type: 'tag'; readonly tag: string; readonly digest: string; readonly status: TagStatus };

/**
 * `3.10` → `3.10-linux-amd64`: the per-arch tag Kubernetes has always published; a Windows
 * image (named windows-amd64-<os.version>) gets `3.10-windows-amd64-<os.version>`.
 */
export function perArchTag(tag: string, arch: string): string {
  return arch.startsWith('windows-') ? `${tag}-${arch}` : `${tag}-linux-${arch}`;
}

function platformOf(image: BuiltImage): string {
  const p = image.manifest.descriptor.platform;
  return p ? formatPlatform(p) : `linux/${image.arch}`;
}

/** Every tag to write and the digest it must hold: per-arch tags first, index tags last. */
export function planTags(built: BuiltIndex, tags: readonly string[], perArchTags = false): TagPlan[] {
  const plan: TagPlan[] = [];
  const unique = [...new Set(tags)];
  if (perArchTags) {
    for (const tag of unique) {
      for (const image of built.images) {
        const name = perArchTag(tag, image.arch);
        validateTag(name);
        const { descriptor, bytes } = image.manifest;
        plan.push({ tag: name, digest: descriptor.digest, mediaType: descriptor.mediaType, bytes, arch: image.arch });
      }
    }
  }
  for (const tag of unique) {
    validateTag(tag);
    plan.push({ tag, digest: built.index.descriptor.digest, mediaType: built.index.descriptor.mediaType, bytes: built.index.bytes });
  }
  return plan;
}

/**
 * One push, step by step, for callers that show each step (src/tasks/push.ts);
 * `pushIndex` runs the same steps in one go.
 */
export class IndexPush {
  readonly plan: readonly TagPlan[];
  readonly action: string;
  private readonly limiter: Limiter;
  private readonly blobs = new Map<string, Promise<BlobStatus>>();
  private readonly counts: BlobCounts = { uploaded: 0, skipped: 0, mounted: 0, uploadedBytes: 0, skippedBytes: 0, mountedBytes: 0 };
  private readonly images = new Map<string, ImageResult>();
  private tagResults: TagResult[] = [];
  private toWrite: TagPlan[] = [];
  private checked = false;
  private unchanged = false;
  private indexPresence: Promise<boolean> | undefined;
  private indexStatus: 'pushed' | 'present' | undefined;

  constructor(
    private readonly client: RegistryClient,
    readonly target: Repository,
    readonly built: BuiltIndex,
    private readonly opts: PushOptions,
  ) {
    if (built.images.length === 0) throw new PauseBuildError('nothing to push: the index has no images', { hint: 'build at least one arch' });
    this.plan = planTags(built, opts.tags, opts.perArchTags);
    this.action = `push to ${formatRepository(target)}`;
    this.limiter = new Limiter(Math.max(1, opts.concurrency ?? 4));
  }

  private call(access: 'push' = 'push') {
    return { signal: this.opts.signal, action: this.action, access };
  }

  /**
   * HEADs every requested tag before anything is written. Throws when a tag holds other
   * content (unless forced); returns true when every tag already holds what it should.
   */
  async checkTags(): Promise<boolean> {
    const found = await settleAll(this.plan.map((p) => this.client.headManifest(this.target, p.tag, this.call())));
    const conflicts = this.plan.map((p, i) => ({ p, held: found[i]?.digest })).filter(({ p, held }) => held !== undefined && held !== p.digest);
    const first = conflicts[0];
    if (first && !this.opts.force) {
      const more = conflicts.length > 1 ? ` (and ${conflicts.length - 1} more tag${conflicts.length > 2 ? 's' : ''})` : '';
      throw new PauseBuildError(`${this.action}: tag ${first.p.tag} already holds ${first.held} (not ${first.p.digest})${more}`, {
        hint: 'pass --force to overwrite',
      });
    }
    this.tagResults = this.plan.map((p, i) => {
      const held = found[i]?.digest;
      if (held === p.digest) return { tag: p.tag, digest: p.digest, status: 'unchanged' as const };
      return held === undefined ? { tag: p.tag, digest: p.digest, status: 'created' as const } : { tag: p.tag, digest: p.digest, status: 'overwritten' as const, previous: held };
    });
    this.toWrite = this.plan.filter((_, i) => this.tagResults[i]!.status !== 'unchanged');
    this.unchanged = this.plan.length > 0 && this.toWrite.length === 0;
    this.checked = true;
    this.opts.onProgress?.({ type: 'tags-checked', unchanged: this.unchanged, tags: this.tagResults });
    if (this.unchanged) {
      // Nothing will be written: the images are there, since the tags point at them.
      for (const image of this.built.images) this.images.set(image.arch, this.imageResult(image, 'present'));
      this.indexStatus = 'present';
    }
    return this.unchanged;
  }

  /** Whether the registry already has the index (then it has every image and blob too). */
  indexPresent(): Promise<boolean> {
    this.indexPresence ??= this.client.headManifest(this.target, this.built.index.descriptor.digest, this.call()).then((m) => m !== undefined);
    return this.indexPresence;
  }

  /** Whether an image's manifest is already in the repository (its blobs then are as well). */
  async imagePresent(image: BuiltImage): Promise<boolean> {
    if (await this.indexPresent()) return true;
    return (await this.client.headManifest(this.target, image.manifest.descriptor.digest, this.call())) !== undefined;
  }

  private count(status: BlobStatus, size: number): void {
    this.counts[status]++;
    this.counts[`${status}Bytes`] += size;
  }

  /** One blob: skipped when present, else mounted from a sibling repository, else uploaded. */
  pushBlob(image: BuiltImage, blob: OciBlob | BaseBlob, kind: 'config' | 'layer'): Promise<BlobStatus> {
    const { digest, size } = blob.descriptor;
    let pending = this.blobs.get(digest);
    if (!pending) {
      pending = this.limiter.run(() => this.transferBlob(blob));
      this.blobs.set(digest, pending);
      pending.then((status) => {
        this.count(status, size);
        this.opts.onProgress?.({ type: 'blob', arch: image.arch, kind, digest, size, status });
      }, () => undefined);
    }
    return pending;
  }

  private async transferBlob(blob: OciBlob | BaseBlob): Promise<BlobStatus> {
    const { digest } = blob.descriptor;
    if ((await this.client.blobExists(this.target, digest, this.call())) !== undefined) return 'skipped';
    const base = (blob as Partial<BaseBlob>).from;
    const fromBase = base && base.registry === this.target.registry && base.repository !== this.target.repository ? [base.repository] : [];
    const sources = [...fromBase, ...(this.opts.mountFrom ?? [])].filter((r) => r !== this.target.repository);
    let from = sources[0];
    if (sources.length > 1) {
      // Mount from a repository that has it; asking each costs a HEAD, not an upload.
      from = undefined;
      for (const source of sources) {
        const has = await this.client.blobExists({ registry: this.target.registry, repository: source }, digest, { signal: this.opts.signal, action: this.action }).catch(() => undefined);
        if (has !== undefined) {
          from = source;
          break;
        }
      }
    }
    if (from !== undefined) return this.client.mountBlob(this.target, blob, from, this.call());
    await this.client.uploadBlob(this.target, blob, this.call());
    return 'uploaded';
  }

  private imageResult(image: BuiltImage, status: 'pushed' | 'present'): ImageResult {
    const compressedSize = image.layers.reduce((sum, l) => sum + l.descriptor.size, 0);
    return {
      arch: image.arch,
      platform: platformOf(image),
      digest: image.manifest.descriptor.digest,
      compressedSize,
      totalSize: compressedSize + image.config.descriptor.size + image.manifest.descriptor.size,
      status,
    };
  }

  /** PUT of an image's manifest by digest, after its blobs. */
  async putImageManifest(image: BuiltImage): Promise<ImageResult> {
    const { descriptor, bytes } = image.manifest;
    await this.client.putManifest(this.target, descriptor.digest, bytes, descriptor.mediaType, this.call());
    return this.recordImage(image, 'pushed');
  }

  recordImage(image: BuiltImage, status: 'pushed' | 'present'): ImageResult {
    const result = this.imageResult(image, status);
    this.images.set(image.arch, result);
    this.opts.onProgress?.({ type: 'manifest', arch: image.arch, digest: result.digest, status });
    return result;
  }

  /** One image: its blobs side by side, then its manifest; nothing when the registry has it. */
  async pushImage(image: BuiltImage): Promise<ImageResult> {
    if (await this.imagePresent(image)) return this.recordImage(image, 'present');
    await settleAll([
      this.pushBlob(image, image.config, 'config'),
      ...image.layers.map((l) => this.pushBlob(image, l, 'layer')),
      // A base's layers (Windows): mounted from the base on the same registry, else copied.
      ...(image.baseBlobs ?? []).map((b) => this.pushBlob(image, b, 'layer')),
    ]);
    return this.putImageManifest(image);
  }

  /** The index by digest (unless present), then the tags that need writing, index tags last. */
  async finish(): Promise<void> {
    if (!this.checked) throw new Error('IndexPush.finish before checkTags');
    if (this.unchanged) return;
    const { descriptor, bytes } = this.built.index;
    if (this.opts.withIndex === false) {
      if (this.toWrite.length > 0) throw new Error('IndexPush: tags need the index');
      return;
    }
    if (await this.indexPresent()) {
      this.indexStatus = 'present';
    } else {
      await this.client.putManifest(this.target, descriptor.digest, bytes, descriptor.mediaType, this.call());
      this.indexStatus = 'pushed';
    }
    this.opts.onProgress?.({ type: 'index', digest: descriptor.digest, status: this.indexStatus });
    for (const p of this.toWrite) {
      await this.client.putManifest(this.target, p.tag, p.bytes, p.mediaType, this.call());
      const result = this.tagResults.find((t) => t.tag === p.tag)!;
      this.opts.onProgress?.({ type: 'tag', tag: p.tag, digest: p.digest, status: result.status });
    }
  }

  /** Tags that will be (or were) written. */
  tagsToWrite(): readonly TagPlan[] {
    return this.toWrite;
  }

  result(): PushResult {
    const digest = this.built.index.descriptor.digest;
    return {
      repository: formatRepository(this.target),
      digest,
      reference: pinnedReference(this.target, digest),
      unchanged: this.unchanged,
      tags: this.tagResults,
      images: this.built.images.map((image) => this.images.get(image.arch)).filter((r): r is ImageResult => r !== undefined),
      blobs: { ...this.counts },
    };
  }
}

/**
 * Pushes `built` to `target` and tags it (model: go-containerregistry's remote.WriteIndex).
 * Returns digests, sizes and what was uploaded, mounted or already there.
 */
export async function pushIndex(client: RegistryClient, target: Repository, built: BuiltIndex, opts: PushOptions): Promise<PushResult> {
  const run = new IndexPush(client, target, built, opts);
  if (await run.checkTags()) return run.result();
  await settleAll(built.images.map((image) => run.pushImage(image)));
  await run.finish();
  return run.result();
}
