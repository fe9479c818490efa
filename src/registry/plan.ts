/**
 * The engine's first half: what each destination lacks of an image, asked with HEADs only
 * (a dry run stops here). Tags are immutable unless forced: every tag a destination is to
 * get is checked before anything is written, and one holding other content stops the run.
 *
 * One `Engine` lives for one run and remembers what it has asked and written, so that a
 * manifest or blob digest is fetched at most once per source repository and checked at
 * most once per destination repository: tags and images sharing content share the work.
 * Models: go-containerregistry's remote.Write, oras-go's Copy.
 *
 * Carrying content attached to an image (OCI 1.1 referrers: a signature, SBOM or
 * provenance manifest whose `subject` is the image) needs nothing new here: resolve the
 * referrer as an image of its own (sources.ts, `ImageSource.referrers`), plan it to the same
 * destination without a tag after its subject's plan, and write it after the subject; its
 * blobs and manifests share this run's memory of what each destination holds. A registry
 * without the referrers API gets the `sha256-<hex>` fallback index as one more image whose
 * destination `tag` is that name. The subject must be written first, so that a referrer
 * never names missing content.
 */
import { Limiter, remember, settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { checkLayoutDestination, layoutHasBlob, layoutTagDigest } from '../oci/layout.ts';
import { mergeFallbackIndex } from '../oci/referrers.ts';
import { listedTags } from './tags.ts';
import type { Descriptor } from '../oci/types.ts';
import type { RegistryClient } from './client.ts';
import { type Repository, formatRepository, pinnedReference } from './reference.ts';
import type { CopiedManifest, SourceImage, SourceMemo } from './sources.ts';
import type { ReferrerMemo } from './referrers.ts';

export type TagStatus = 'created' | 'unchanged' | 'overwritten';

/** A further tag for a destination: on the root, or on a child manifest (per-arch tags). */
export interface TagRequest {
  readonly tag: string;
  /** The manifest the tag must name; default the root. */
  readonly digest?: string;
}

/** A repository of a registry. */
export interface RegistryDestination {
  readonly kind?: 'registry';
  readonly repository: Repository;
  /** Tag for the root; none copies by digest only. */
  readonly tag?: string;
  /** More tags, written after `tag`'s manifest is in place: child tags first, root tags last. */
  readonly moreTags?: readonly TagRequest[];
  /** Repositories on the same registry to mount missing blobs from (--mount-from). */
  readonly mountFrom?: readonly string[];
}

/** An OCI layout directory (`oci:DIR[:TAG]`): the connected side of an air-gap transfer. */
export interface LayoutDestination {
  readonly kind: 'layout';
  /** Absolute. */
  readonly dir: string;
  readonly tag?: string;
  readonly moreTags?: readonly TagRequest[];
}

export type Destination = RegistryDestination | LayoutDestination;

export function isLayoutDestination(d: Destination): d is LayoutDestination {
  return d.kind === 'layout';
}

export type BlobAction = 'present' | 'mount' | 'upload';

export interface BlobPlan {
  readonly descriptor: Descriptor;
  readonly action: BlobAction;
  /** Repository on the same registry to mount from. */
  readonly from?: string;
}

export interface TagPlan {
  readonly tag: string;
  readonly digest: string;
  readonly status: TagStatus;
  /** What the tag held before, when it is overwritten. */
  readonly previous?: string;
}

export interface DestinationPlan {
  readonly destination: Destination;
  /** The status of `destination.tag`, when it has one. */
  readonly tag?: { readonly status: TagStatus; readonly previous?: string };
  /** Every tag, in write order (child tags, then root tags). */
  readonly tags: readonly TagPlan[];
  /** The destination holds the root already (and so everything below it). */
  readonly rootPresent: boolean;
  /** Child manifests the destination lacks, in write order (children before their index). */
  readonly manifests: readonly CopiedManifest[];
  readonly presentManifests: number;
  readonly blobs: readonly BlobPlan[];
}

export interface BlobCounts {
  uploaded: number;
  mounted: number;
  present: number;
  uploadedBytes: number;
  mountedBytes: number;
  presentBytes: number;
}

export interface DestinationResult {
  readonly destination: Destination;
  /** Written now (or, in a dry run, to write): child manifests and the root. */
  readonly manifestsWritten: number;
  readonly manifestsPresent: number;
  readonly blobs: Readonly<BlobCounts>;
  readonly tag?: { readonly status: TagStatus; readonly previous?: string };
  readonly tags: readonly TagPlan[];
  /** Nothing was (or would be) written. */
  readonly unchanged: boolean;
}

export interface EngineOptions {
  readonly force?: boolean;
  readonly signal?: AbortSignal;
  /** Registry requests at once per destination. Default 8. */
  readonly concurrency?: number;
  /** What the run does to a repository, for messages: `push to host/repo`. Default `mirror to`. */
  readonly verb?: string;
}

/** `host/repo:tag`, or `host/repo@sha256:…` without a tag. */
export function destinationName(d: Destination, digest?: string): string {
  if (isLayoutDestination(d)) return `oci:${d.dir}${d.tag !== undefined ? `:${d.tag}` : digest ? `@${digest}` : ''}`;
  if (d.tag !== undefined) return `${formatRepository(d.repository)}:${d.tag}`;
  return digest ? pinnedReference(d.repository, digest) : formatRepository(d.repository);
}

export function emptyCounts(): BlobCounts {
  return { uploaded: 0, mounted: 0, present: 0, uploadedBytes: 0, mountedBytes: 0, presentBytes: 0 };
}

/** What a plan amounts to, as a result that has not happened yet (dry run). */
export function planSummary(plan: DestinationPlan): DestinationResult {
  const blobs = emptyCounts();
  for (const b of plan.blobs) {
    const key = b.action === 'upload' ? 'uploaded' : b.action === 'mount' ? 'mounted' : 'present';
    blobs[key]++;
    blobs[`${key}Bytes`] += b.descriptor.size;
  }
  const manifestsWritten = plan.rootPresent ? 0 : plan.manifests.length + 1;
  return {
    destination: plan.destination,
    manifestsWritten,
    manifestsPresent: plan.presentManifests,
    blobs,
    ...(plan.tag ? { tag: plan.tag } : {}),
    tags: plan.tags,
    unchanged: manifestsWritten === 0 && plan.tags.every((t) => t.status === 'unchanged'),
  };
}

/** One run of the engine: plan (this file), then write (write.ts). */
export class Engine {
  /** Manifests read from sources, shared by every image of the run. */
  readonly sourceMemo: SourceMemo = new Map();
  /** What sources were asked about attachments (referrers.ts). */
  readonly referrerMemo: ReferrerMemo = { lists: new Map(), legacy: new Map(), api: new Map(), tags: new Map() };
  /** `host/repo@digest` → whether the repository holds that manifest / blob. */
  private readonly manifestHeads = new Map<string, Promise<boolean>>();
  private readonly blobHeads = new Map<string, Promise<boolean>>();
  /** `registry@digest` → repositories known to hold that blob. */
  private readonly holders = new Map<string, Set<string>>();
  /** `registry/repo@digest` → its transfer (blob) or PUT (manifest). */
  readonly writes = new Map<string, Promise<unknown>>();
  /** `registry@digest` → the latest transfer of that blob to the registry: the next waits for it, then mounts. */
  readonly chains = new Map<string, Promise<unknown>>();

  /** `host/repo` → whether its registry has the referrers API. */
  private readonly referrerApis = new Map<string, Promise<boolean>>();
  /** `host/repo:tag` → the fallback index this run last left there (undefined: none). */
  private readonly fallbackTags = new Map<string, Promise<{ readonly bytes: Uint8Array | undefined } | 'unknown'>>();

  constructor(readonly client: RegistryClient, readonly opts: EngineOptions = {}) {}

  action(repo: Repository): string {
    return `${this.opts.verb ?? 'mirror to'} ${formatRepository(repo)}`;
  }

  call(repo: Repository) {
    return { signal: this.opts.signal, action: this.action(repo), access: 'push' as const };
  }

  hold(repo: Repository, digest: string): void {
    const key = `${repo.registry}@${digest}`;
    const set = this.holders.get(key) ?? new Set<string>();
    set.add(repo.repository);
    this.holders.set(key, set);
    this.blobHeads.set(`${formatRepository(repo)}@${digest}`, Promise.resolve(true));
  }

  holderFor(dest: Repository, digest: string): string | undefined {
    for (const repo of this.holders.get(`${dest.registry}@${digest}`) ?? []) if (repo !== dest.repository) return repo;
    return undefined;
  }

  /** Whether `repo` holds the manifest; asked once per run. */
  hasManifest(repo: Repository, digest: string): Promise<boolean> {
    return remember(this.manifestHeads, `${formatRepository(repo)}@${digest}`, async () => (await this.client.headManifest(repo, digest, this.call(repo))) !== undefined);
  }

  /** Records a manifest written to `repo`. */
  wroteManifest(repo: Repository, digest: string): void {
    this.manifestHeads.set(`${formatRepository(repo)}@${digest}`, Promise.resolve(true));
  }

  /** Whether the registry serves `repo` the referrers API; asked once per repository and run. */
  hasReferrersApi(repo: Repository, digest: string): Promise<boolean> {
    return remember(this.referrerApis, formatRepository(repo), async () => (await this.client.getReferrers(repo, digest, this.call(repo))) !== undefined);
  }

  /**
   * Adds `entries` to the fallback index under `tag`, keeping what it lists: read once per run,
   * then from what this run wrote there, one merge after another (two images sharing a child
   * would otherwise each drop the other's entries). Whether it changed.
   */
  mergeFallbackTag(repo: Repository, tag: string, entries: readonly Record<string, unknown>[], dryRun = false): Promise<boolean> {
    const key = `${formatRepository(repo)}:${tag}`;
    const last = this.fallbackTags.get(key) ?? this.heldFallbackTag(repo, tag);
    const before = last.then((held) => (held === 'unknown' ? this.readFallbackTag(repo, tag) : held.bytes));
    const merged = before.then(async (existing) => {
      const { index, changed } = mergeFallbackIndex(existing, entries);
      if (changed && !dryRun) await this.client.putManifest(repo, tag, index.bytes, index.descriptor.mediaType, this.call(repo));
      return { bytes: changed && !dryRun ? index.bytes : existing, changed };
    });
    // A failed merge leaves the tag as the registry has it: the next one reads it again.
    this.fallbackTags.set(key, merged.then((m) => ({ bytes: m.bytes }), () => 'unknown' as const));
    return merged.then((m) => m.changed);
  }

  /** Reads a fallback tag ahead of its merge (while what it will list is still being written). */
  prefetchFallbackTag(repo: Repository, tag: string): void {
    const key = `${formatRepository(repo)}:${tag}`;
    if (!this.fallbackTags.has(key)) this.fallbackTags.set(key, this.heldFallbackTag(repo, tag));
  }

  /** What the registry holds under a fallback tag, as the merges keep it ('unknown' when it could not be read). */
  private heldFallbackTag(repo: Repository, tag: string): Promise<{ readonly bytes: Uint8Array | undefined } | 'unknown'> {
    return this.readFallbackTag(repo, tag).then((bytes) => ({ bytes }), () => 'unknown' as const);
  }

  /** A fallback tag's index; one that the repository's tag list (tags.ts) lacks is not asked for. */
  private async readFallbackTag(repo: Repository, tag: string): Promise<Uint8Array | undefined> {
    const listed = await listedTags(this.client, repo, this.referrerMemo.tags, this.opts.signal);
    if (listed && !listed.has(tag)) return undefined;
    return (await this.client.findManifest(repo, tag, { signal: this.opts.signal, action: this.action(repo) }))?.bytes;
  }

  /** Whether `repo` holds the blob; asked once per run. */
  hasBlob(repo: Repository, digest: string): Promise<boolean> {
    return remember(this.blobHeads, `${formatRepository(repo)}@${digest}`, async () => (await this.client.blobExists(repo, digest, this.call(repo))) !== undefined);
  }

  /** Every tag the destination gets, and the digest each must hold. */
  private tagRequests(image: SourceImage, dest: Destination): { tag: string; digest: string }[] {
    const root = image.root.digest;
    const all = [...(dest.tag === undefined ? [] : [{ tag: dest.tag }]), ...(dest.moreTags ?? [])].map((t) => ({ tag: t.tag, digest: t.digest ?? root }));
    const known = new Set([root, ...image.manifests.map((m) => m.digest)]);
    for (const t of all) if (!known.has(t.digest)) throw new Error(`tag ${t.tag} names ${t.digest}, which the image does not hold`);
    const seen = new Set<string>();
    const unique = all.filter((t) => !seen.has(t.tag) && seen.add(t.tag));
    // Child tags first: the root's tags are the last thing written.
    return [...unique.filter((t) => t.digest !== root), ...unique.filter((t) => t.digest === root)];
  }

  /**
   * What `dest` lacks of `image`, asked with HEADs only. A tag holding another digest
   * throws (naming how many more do) unless the run is forced.
   */
  async plan(image: SourceImage, dest: Destination): Promise<DestinationPlan> {
    if (isLayoutDestination(dest)) return this.planLayout(image, dest);
    const repo = dest.repository;
    const call = this.call(repo);
    const source = image.source.repository;
    if (source && source.registry === repo.registry) for (const b of image.blobs) this.hold(source, b.digest);
    for (const [digest, holder] of image.source.heldElsewhere ?? []) if (holder.registry === repo.registry) this.hold(holder, digest);
    const limiter = new Limiter(this.opts.concurrency ?? 8);
    const root = image.root.digest;
    const requests = this.tagRequests(image, dest);
    const held = await settleAll(requests.map((t) => limiter.run(async () => (await this.client.headManifest(repo, t.tag, call))?.digest)));
    const conflicts = requests.map((t, i) => ({ t, held: held[i] })).filter(({ t, held: h }) => h !== undefined && h !== t.digest);
    const first = conflicts[0];
    if (first && !this.opts.force) {
      const more = conflicts.length > 1 ? ` (and ${conflicts.length - 1} more tag${conflicts.length > 2 ? 's' : ''})` : '';
      throw new PauseBuildError(`${this.action(repo)}: tag ${first.t.tag} already holds ${first.held} (not ${first.t.digest}${image.rewritten && first.t.digest === root ? ', the rewritten index' : ''})${more}`, {
        hint: 'pass --force to overwrite',
      });
    }
    const tags: TagPlan[] = requests.map((t, i) => {
      const h = held[i];
      if (h === t.digest) return { tag: t.tag, digest: t.digest, status: 'unchanged' };
      return h === undefined ? { tag: t.tag, digest: t.digest, status: 'created' } : { tag: t.tag, digest: t.digest, status: 'overwritten', previous: h };
    });
    for (const t of tags) if (t.status === 'unchanged') this.wroteManifest(repo, t.digest);
    const primary = dest.tag === undefined ? undefined : tags.find((t) => t.tag === dest.tag);
    const tag = primary ? { status: primary.status, ...(primary.previous ? { previous: primary.previous } : {}) } : undefined;
    const base = { destination: dest, ...(tag ? { tag } : {}), tags };
    const all = image.manifests.length + 1;
    // The root and its children in one round: a tag already on the root answered for it
    // (a re-run asks nothing more), and a destination holding the root costs only these HEADs.
    const rootHead = this.hasManifest(repo, root);
    const known = tags.some((t) => t.digest === root && t.status === 'unchanged');
    const childHeads = settleAll(known ? [] : image.manifests.map((m) => limiter.run(() => this.hasManifest(repo, m.digest))));
    const [rootPresent, present] = await settleAll<boolean | boolean[]>([rootHead, childHeads]) as [boolean, boolean[]];
    if (rootPresent) return { ...base, rootPresent: true, manifests: [], presentManifests: all, blobs: [] };
    const missing = image.manifests.filter((_, i) => !present[i]);
    const needed = new Map<string, Descriptor>();
    for (const m of missing) for (const b of m.blobs) needed.set(b.digest, b);
    for (const b of image.root.blobs) needed.set(b.digest, b);
    const blobs = await settleAll([...needed.values()].map((descriptor) => limiter.run(async (): Promise<BlobPlan> => {
      if (await this.hasBlob(repo, descriptor.digest)) {
        this.hold(repo, descriptor.digest);
        return { descriptor, action: 'present' };
      }
      const from = (await this.mountSource(repo, descriptor.digest, dest.mountFrom)) ?? this.holderFor(repo, descriptor.digest);
      return from === undefined ? { descriptor, action: 'upload' } : { descriptor, action: 'mount', from };
    })));
    return { ...base, rootPresent: false, manifests: missing, presentManifests: image.manifests.length - missing.length, blobs };
  }

  /** The same questions of a layout: its index.json for the tags, its blob files for the rest. */
  private async planLayout(image: SourceImage, dest: LayoutDestination): Promise<DestinationPlan> {
    await checkLayoutDestination(dest.dir);
    const requests = this.tagRequests(image, dest);
    const held = await settleAll(requests.map((t) => layoutTagDigest(dest.dir, t.tag).catch(() => undefined)));
    const conflicts = requests.map((t, i) => ({ t, held: held[i] })).filter(({ t, held: h }) => h !== undefined && h !== t.digest);
    const first = conflicts[0];
    if (first && !this.opts.force) {
      const more = conflicts.length > 1 ? ` (and ${conflicts.length - 1} more tag${conflicts.length > 2 ? 's' : ''})` : '';
      throw new PauseBuildError(`${this.opts.verb ?? 'mirror to'} oci:${dest.dir}: tag ${first.t.tag} already holds ${first.held} (not ${first.t.digest})${more}`, { hint: 'pass --force to overwrite' });
    }
    const tags: TagPlan[] = requests.map((t, i) => {
      const h = held[i];
      if (h === t.digest) return { tag: t.tag, digest: t.digest, status: 'unchanged' };
      return h === undefined ? { tag: t.tag, digest: t.digest, status: 'created' } : { tag: t.tag, digest: t.digest, status: 'overwritten', previous: h };
    });
    const primary = dest.tag === undefined ? undefined : tags.find((t) => t.tag === dest.tag);
    const tag = primary ? { status: primary.status, ...(primary.previous ? { previous: primary.previous } : {}) } : undefined;
    const base = { destination: dest, ...(tag ? { tag } : {}), tags };
    const rootDescriptor = { mediaType: image.root.mediaType, digest: image.root.digest, size: image.root.size };
    if (await layoutHasBlob(dest.dir, rootDescriptor)) return { ...base, rootPresent: true, manifests: [], presentManifests: image.manifests.length + 1, blobs: [] };
    const present = await settleAll(image.manifests.map((m) => layoutHasBlob(dest.dir, { mediaType: m.mediaType, digest: m.digest, size: m.size })));
    const missing = image.manifests.filter((_, i) => !present[i]);
    const needed = new Map<string, Descriptor>();
    for (const m of missing) for (const b of m.blobs) needed.set(b.digest, b);
    for (const b of image.root.blobs) needed.set(b.digest, b);
    const blobs = await settleAll([...needed.values()].map(async (descriptor): Promise<BlobPlan> => ({ descriptor, action: (await layoutHasBlob(dest.dir, descriptor)) ? 'present' : 'upload' })));
    return { ...base, rootPresent: false, manifests: missing, presentManifests: image.manifests.length - missing.length, blobs };
  }

  /** A --mount-from repository that holds the blob: one named alone is trusted, of several the first that has it. */
  private async mountSource(repo: Repository, digest: string, mountFrom: readonly string[] | undefined): Promise<string | undefined> {
    const candidates = (mountFrom ?? []).filter((r) => r !== repo.repository);
    if (candidates.length <= 1) return candidates[0];
    for (const candidate of candidates) {
      const has = await this.hasBlob({ registry: repo.registry, repository: candidate }, digest).catch(() => false);
      if (has) return candidate;
    }
    return undefined;
  }
}
