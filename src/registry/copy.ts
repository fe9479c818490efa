/**
 * Copying an image with its digests, from a registry or an OCI layout to registries: the
 * index (or single manifest), every child manifest and every blob, manifests byte for
 * byte. Model: go-containerregistry's remote.Write and crane copy.
 *
 * Reading and writing are apart. `resolveImage` reads the source's manifests;
 * `CopySession.plan` asks each destination, with HEADs only, what it holds and what its
 * tag holds (another digest there stops the copy unless forced): that is all a dry run
 * does. `CopySession.copy` then writes in the order that keeps a destination consistent
 * at every moment: blobs, child manifests by digest, the root by digest, the tag last.
 *
 * A blob a destination lacks is mounted when its registry is known to hold it in another
 * repository (the source's, or one this session wrote to), else downloaded once per
 * image, checked against its digest before any upload, and uploaded to every
 * destination that needs it.
 */
import { stat } from 'node:fs/promises';
import { Limiter, settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { sha256Digest, shortDigest } from '../oci/blob.ts';
import { blobPath, layoutEntry, layoutReference, readLayoutBlob } from '../oci/layout.ts';
import { formatPlatform, platformMatches } from '../oci/platform.ts';
import { type Descriptor, MEDIA_TYPES, type OciPlatform } from '../oci/types.ts';
import { sortTagsForDisplay } from '../version.ts';
import type { RegistryClient } from './client.ts';
import type { TagStatus } from './push.ts';
import { type Reference, type Repository, formatReference, formatRepository, pinnedReference } from './reference.ts';
import { RegistryError } from './retry.ts';
import type { BlobContent, Spool } from './spool.ts';

/** A manifest or index exactly as stored. */
export interface ManifestDoc {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly bytes: Uint8Array;
}

/** Where an image is read from. */
export interface ImageSource {
  /** For messages and output: `host/repo:tag`, `host/repo@sha256:…`, `oci:DIR:TAG`. */
  readonly name: string;
  /** A registry source's repository: it holds every blob, so its registry can mount them. */
  readonly repository?: Repository;
  /** The tag destinations get when they name none. */
  readonly tag?: string;
  /** The image the reference names: an index or a single manifest. */
  root(signal?: AbortSignal): Promise<ManifestDoc>;
  /** A manifest by digest, checked against it. */
  manifest(descriptor: Descriptor, signal?: AbortSignal): Promise<ManifestDoc>;
  /** A blob's content; a stream is checked as it is read, a file by the spool. */
  blob(descriptor: Descriptor, signal?: AbortSignal): Promise<BlobContent>;
}

const INDEX_TYPES: readonly string[] = [MEDIA_TYPES.index, MEDIA_TYPES.dockerManifestList];
const IMAGE_TYPES: readonly string[] = [MEDIA_TYPES.manifest, MEDIA_TYPES.dockerManifest];
const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1\+(prettyjws|json)$/;


function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------
// Sources

/** A hint naming up to eight of the repository's tags, versions first; empty when they cannot be listed. */
async function tagsHint(list: () => Promise<string[]>): Promise<string> {
  const tags = await list().catch(() => undefined);
  if (tags === undefined) return '';
  if (tags.length === 0) return 'the repository has no tags; check its name';
  const sorted = sortTagsForDisplay(tags);
  return `its tags: ${sorted.slice(0, 8).join(', ')}${sorted.length > 8 ? ', …' : ''}`;
}

/** An image in a registry, by tag or digest (the digest wins when both are given). */
export function registrySource(client: RegistryClient, ref: Reference): ImageSource {
  const repo: Repository = { registry: ref.registry, repository: ref.repository };
  const name = formatReference(ref);
  const call = (signal?: AbortSignal) => ({ signal, action: `pull from ${formatRepository(repo)}` });
  const read = async (reference: string, fallbackType: string, signal?: AbortSignal): Promise<ManifestDoc> => {
    const m = await client.getManifest(repo, reference, call(signal));
    return { digest: m.digest, size: m.size, bytes: m.bytes, mediaType: mediaTypeOf(m.bytes) ?? (m.mediaType.split(';')[0]?.trim() || fallbackType) };
  };
  return {
    name,
    repository: repo,
    ...(ref.tag === undefined ? {} : { tag: ref.tag }),
    async root(signal) {
      const reference = ref.digest ?? ref.tag;
      if (reference === undefined) throw new PauseBuildError(`source ${name} names no tag or digest`, { hint: 'add :TAG or @sha256:…, or select tags with --tags' });
      try {
        return await read(reference, '', signal);
      } catch (e) {
        if (e instanceof RegistryError && e.status === 404) {
          const hint = await tagsHint(() => client.listTags(repo, call(signal)));
          throw new PauseBuildError(`source ${name} not found (404)`, { hint: hint || 'check the repository and tag' });
        }
        throw e;
      }
    },
    manifest: (d, signal) => read(d.digest, d.mediaType, signal),
    async blob(d, signal) {
      const { stream } = await client.getBlob(repo, d.digest, call(signal));
      return { stream };
    },
  };
}

/** An image in an OCI layout directory, by the tag its index.json gives it. */
export function layoutSource(dir: string, tag: string): ImageSource {
  const name = layoutReference(dir, tag);
  return {
    name,
    tag,
    async root() {
      const d = await layoutEntry(dir, tag);
      const blob = await readLayoutBlob(dir, d);
      return { digest: d.digest, size: d.size, bytes: blob.bytes, mediaType: mediaTypeOf(blob.bytes) ?? d.mediaType };
    },
    async manifest(d) {
      const blob = await readLayoutBlob(dir, d);
      return { digest: d.digest, size: d.size, bytes: blob.bytes, mediaType: mediaTypeOf(blob.bytes) ?? d.mediaType };
    },
    async blob(d) {
      const file = blobPath(dir, d.digest);
      const found = await stat(file).catch(() => undefined);
      if (!found?.isFile()) throw new PauseBuildError(`blob ${d.digest} is missing from ${dir}`, { hint: `restore ${dir} or build it again with pause-build image --output ${dir}` });
      return { file };
    },
  };
}

// ---------------------------------------------------------------------------------------
// Reading an image

function mediaTypeOf(bytes: Uint8Array): string | undefined {
  try {
    const body = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    return isRecord(body) && typeof body.mediaType === 'string' && body.mediaType ? body.mediaType : undefined;
  } catch {
    return undefined;
  }
}

function descriptorOf(value: unknown, where: string): Descriptor {
  if (!isRecord(value) || typeof value.mediaType !== 'string' || typeof value.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(value.digest)
    || typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw new PauseBuildError(`${where} has an invalid descriptor`, { hint: 'only sha256 content with a media type and size can be copied' });
  }
  const p = value.platform;
  const platform = isRecord(p) && typeof p.os === 'string' && typeof p.architecture === 'string'
    ? { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' && p.variant ? { variant: p.variant } : {}), ...(typeof p['os.version'] === 'string' && p['os.version'] ? { 'os.version': p['os.version'] } : {}) }
    : undefined;
  const urls = Array.isArray(value.urls) ? value.urls.filter((u) => typeof u === 'string') : [];
  return {
    mediaType: value.mediaType,
    digest: value.digest,
    size: value.size,
    ...(platform ? { platform } : {}),
    ...(urls.length ? { annotations: { urls: urls.join(' ') } } : {}),
  };
}

type Parsed = { kind: 'index'; body: Record<string, unknown>; children: Descriptor[] } | { kind: 'image'; blobs: Descriptor[] };

function parseManifest(doc: ManifestDoc, where: string): Parsed {
  if (SCHEMA1.test(doc.mediaType)) {
    throw new PauseBuildError(`${where} is a Docker schema 1 manifest`, { hint: 'schema 1 cannot be copied with its digest; convert the image to schema 2 or OCI first' });
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(doc.bytes).toString('utf8'));
  } catch {
    throw new PauseBuildError(`${where} (${shortDigest(doc.digest)}) is not JSON`, { hint: 'the source holds something other than an image manifest' });
  }
  if (!isRecord(body)) throw new PauseBuildError(`${where} (${shortDigest(doc.digest)}) is not a manifest`, { hint: 'the source holds something other than an image manifest' });
  if (INDEX_TYPES.includes(doc.mediaType) || (!IMAGE_TYPES.includes(doc.mediaType) && Array.isArray(body.manifests))) {
    if (!Array.isArray(body.manifests)) throw new PauseBuildError(`${where} (${shortDigest(doc.digest)}) is an index without manifests`, { hint: 'the source index is broken' });
    return { kind: 'index', body, children: body.manifests.map((m, i) => descriptorOf(m, `${where} entry ${i}`)) };
  }
  if (!isRecord(body.config) || !Array.isArray(body.layers)) {
    throw new PauseBuildError(`${where} (${shortDigest(doc.digest)}) is neither an image index nor an image manifest (${doc.mediaType || 'no media type'})`, { hint: 'only OCI and Docker v2 images can be copied' });
  }
  const layers = body.layers.map((l, i) => descriptorOf(l, `${where} layer ${i}`));
  return { kind: 'image', blobs: [descriptorOf(body.config, `${where} config`), ...layers] };
}

/** Layers a registry is not meant to store (Windows base layers): referenced by URL, left out as crane does. */
function isForeign(d: Descriptor): boolean {
  return /foreign|nondistributable/.test(d.mediaType) && d.annotations?.urls !== undefined;
}

/** A manifest to copy, and what it refers to. */
export interface CopiedManifest extends ManifestDoc {
  readonly kind: 'index' | 'image';
  /** Configs and layers (image manifests), foreign layers left out. */
  readonly blobs: readonly Descriptor[];
  /** `linux/arm/v7`, when the index entry says. */
  readonly platform?: string;
}

export interface SourceImage {
  readonly source: ImageSource;
  /** What the source holds; differs from `root.digest` when the index was rewritten to a subset. */
  readonly sourceDigest: string;
  /** What is written: the source's index or manifest, or the subset index. */
  readonly root: CopiedManifest;
  /** Manifests below the root, each before any index listing it. */
  readonly manifests: readonly CopiedManifest[];
  /** Every config and layer to copy, once each. */
  readonly blobs: readonly Descriptor[];
  /** Foreign layers left out. */
  readonly foreign: readonly Descriptor[];
  /** Platforms copied (from the index), in its order. */
  readonly platforms: readonly string[];
  readonly rewritten: boolean;
}

export interface ResolveOptions {
  /** Copy only index entries matching these. */
  readonly platforms?: readonly OciPlatform[];
  /** Holds a config read to learn a single image's platform, so it is not read twice. */
  readonly spool?: Spool;
  readonly signal?: AbortSignal;
}

/** The entries of an index a platform selection keeps; an error naming what exists when one matches nothing. */
export function selectEntries(children: readonly Descriptor[], wanted: readonly OciPlatform[], source: string): Descriptor[] {
  const available = [...new Set(children.flatMap((c) => (c.platform ? [formatPlatform(c.platform)] : [])))];
  for (const w of wanted) {
    if (!children.some((c) => c.platform && platformMatches(w, c.platform))) {
      throw new PauseBuildError(`platform ${formatPlatform(w)} is not in ${source}`, { hint: `available: ${available.join(', ') || 'none (the index names no platforms)'}` });
    }
  }
  return children.filter((c) => c.platform && wanted.some((w) => platformMatches(w, c.platform!)));
}

/** The index with only `kept` of its entries, every other field as it was. */
export function rewriteIndex(body: Record<string, unknown>, kept: readonly number[]): Uint8Array {
  const manifests = body.manifests as unknown[];
  return new TextEncoder().encode(JSON.stringify({ ...body, manifests: kept.map((i) => manifests[i]) }));
}

async function readAll(content: Uint8Array | ReadableStream<Uint8Array>): Promise<Uint8Array> {
  if (content instanceof Uint8Array) return content;
  const chunks: Uint8Array[] = [];
  for await (const chunk of content as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A single image's platform, from its config (kept in the spool for the copy). */
async function singlePlatform(source: ImageSource, config: Descriptor, spool: Spool, signal: AbortSignal | undefined): Promise<OciPlatform | undefined> {
  const spooled = await spool.get(config, () => source.blob(config, signal));
  try {
    const c = JSON.parse(Buffer.from(await readAll(await spooled.open())).toString('utf8')) as { os?: unknown; architecture?: unknown; variant?: unknown };
    if (typeof c.os !== 'string' || typeof c.architecture !== 'string') return undefined;
    return { os: c.os, architecture: c.architecture, ...(typeof c.variant === 'string' && c.variant ? { variant: c.variant } : {}) };
  } catch {
    return undefined;
  }
}

/** Reads the source's manifests and lists what a copy needs, optionally a platform subset. */
export async function resolveImage(source: ImageSource, opts: ResolveOptions = {}): Promise<SourceImage> {
  const top = await source.root(opts.signal);
  const parsed = parseManifest(top, source.name);
  const manifests: CopiedManifest[] = [];
  const blobs = new Map<string, Descriptor>();
  const foreign = new Map<string, Descriptor>();
  const seen = new Set<string>();
  const addBlobs = (list: readonly Descriptor[]) => {
    const kept: Descriptor[] = [];
    for (const b of list) {
      if (isForeign(b)) foreign.set(b.digest, b);
      else {
        blobs.set(b.digest, b);
        kept.push(b);
      }
    }
    return kept;
  };

  const visit = async (d: Descriptor, where: string, fetched?: ManifestDoc): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    const doc = fetched ?? (await source.manifest(d, opts.signal));
    const child = parseManifest(doc, where);
    const platform = d.platform ? formatPlatform(d.platform) : undefined;
    if (child.kind === 'index') {
      for (const [i, c] of child.children.entries()) await visit(c, `${where} entry ${i}`);
    }
    manifests.push({ ...doc, kind: child.kind, blobs: child.kind === 'image' ? addBlobs(child.blobs) : [], ...(platform ? { platform } : {}) });
  };

  if (parsed.kind === 'image') {
    let platforms: string[] = [];
    if (opts.platforms?.length) {
      if (!opts.spool) throw new Error('resolveImage: selecting the platform of a single image needs a spool');
      const p = await singlePlatform(source, parsed.blobs[0]!, opts.spool, opts.signal);
      if (p === undefined || !opts.platforms.some((w) => platformMatches(w, p))) {
        throw new PauseBuildError(`platform ${opts.platforms.map(formatPlatform).join(', ')} is not in ${source.name}`, {
          hint: `it is a single image${p ? ` for ${formatPlatform(p)}` : ''}, not a multi-platform index`,
        });
      }
      platforms = [formatPlatform(p)];
    }
    const root = { ...top, kind: 'image' as const, blobs: addBlobs(parsed.blobs) };
    return { source, sourceDigest: top.digest, root, manifests: [], blobs: [...blobs.values()], foreign: [...foreign.values()], platforms, rewritten: false };
  }

  let entries = parsed.children.map((d, i) => ({ d, i }));
  if (opts.platforms?.length) {
    const kept = new Set(selectEntries(parsed.children, opts.platforms, source.name));
    entries = entries.filter((e) => kept.has(e.d));
  }
  // Fetched side by side (an index has a handful of entries), then walked in order.
  const docs = await settleAll(entries.map(({ d }) => source.manifest(d, opts.signal)));
  for (const [k, { d, i }] of entries.entries()) await visit(d, `${source.name} entry ${i}`, docs[k]);
  const rewritten = entries.length !== parsed.children.length;
  let root: CopiedManifest = { ...top, kind: 'index', blobs: [] };
  if (rewritten) {
    const bytes = rewriteIndex(parsed.body, entries.map((e) => e.i));
    root = { digest: sha256Digest(bytes), mediaType: top.mediaType, size: bytes.byteLength, bytes, kind: 'index', blobs: [] };
  }
  const platforms = entries.flatMap(({ d }) => (d.platform ? [formatPlatform(d.platform)] : []));
  return { source, sourceDigest: top.digest, root, manifests, blobs: [...blobs.values()], foreign: [...foreign.values()], platforms, rewritten };
}

// ---------------------------------------------------------------------------------------
// Destinations

export interface Destination {
  readonly repository: Repository;
  /** Tag to write; none copies by digest only. */
  readonly tag?: string;
}

export type { TagStatus };
export type BlobAction = 'present' | 'mount' | 'upload';

export interface BlobPlan {
  readonly descriptor: Descriptor;
  readonly action: BlobAction;
  /** Repository on the same registry to mount from. */
  readonly from?: string;
}

export interface DestinationPlan {
  readonly destination: Destination;
  readonly tag?: { readonly status: TagStatus; readonly previous?: string };
  /** The destination holds the root already (and so everything below it). */
  readonly rootPresent: boolean;
  /** Child manifests the destination lacks, in write order. */
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
  /** Nothing was (or would be) written. */
  readonly unchanged: boolean;
}

export type CopyEvent = { readonly type: 'blob'; readonly descriptor: Descriptor; readonly status: 'uploaded' | 'mounted' | 'present' } | { readonly type: 'manifest'; readonly digest: string } | { readonly type: 'tag'; readonly tag: string };

/** `host/repo:tag`, or `host/repo@sha256:…` without a tag. */
export function destinationName(d: Destination, digest?: string): string {
  if (d.tag !== undefined) return `${formatRepository(d.repository)}:${d.tag}`;
  return digest ? pinnedReference(d.repository, digest) : formatRepository(d.repository);
}

function emptyCounts(): BlobCounts {
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
    unchanged: manifestsWritten === 0 && (plan.tag === undefined || plan.tag.status === 'unchanged'),
  };
}

export interface SessionOptions {
  readonly force?: boolean;
  readonly signal?: AbortSignal;
  /** Registry requests at once per image. Default 8. */
  readonly concurrency?: number;
}

/**
 * One mirror run: what each registry is known to hold, and transfers already under way,
 * so that images and destinations sharing content move it once.
 */
export class CopySession {
  /** `registry@digest` → repositories known to hold that blob. */
  private readonly holders = new Map<string, Set<string>>();
  /** `registry/repo@digest` → its transfer (blob) or PUT (manifest). */
  private readonly writes = new Map<string, Promise<unknown>>();
  /** `registry@digest` → the latest transfer of that blob to the registry: the next waits for it, then mounts. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly client: RegistryClient, private readonly opts: SessionOptions = {}) {}

  private call(dest: Repository) {
    return { signal: this.opts.signal, action: `mirror to ${formatRepository(dest)}`, access: 'push' as const };
  }

  private hold(repo: Repository, digest: string): void {
    const key = `${repo.registry}@${digest}`;
    const set = this.holders.get(key) ?? new Set<string>();
    set.add(repo.repository);
    this.holders.set(key, set);
  }

  private holderFor(dest: Repository, digest: string): string | undefined {
    for (const repo of this.holders.get(`${dest.registry}@${digest}`) ?? []) if (repo !== dest.repository) return repo;
    return undefined;
  }

  /**
   * What `dest` lacks of `image`, asked with HEADs only. A tag holding another digest
   * throws unless the session is forced.
   */
  async plan(image: SourceImage, dest: Destination): Promise<DestinationPlan> {
    const repo = dest.repository;
    const call = this.call(repo);
    const source = image.source.repository;
    if (source) for (const b of image.blobs) this.hold(source, b.digest);
    const limiter = new Limiter(this.opts.concurrency ?? 8);
    const root = image.root.digest;
    let tag: DestinationPlan['tag'];
    if (dest.tag !== undefined) {
      const held = (await this.client.headManifest(repo, dest.tag, call))?.digest;
      if (held === root) return { destination: dest, tag: { status: 'unchanged' }, rootPresent: true, manifests: [], presentManifests: image.manifests.length + 1, blobs: [] };
      if (held !== undefined && !this.opts.force) {
        throw new PauseBuildError(`${destinationName(dest)} already holds ${held}, not ${root}${image.rewritten ? ' (the rewritten index)' : ''}`, {
          hint: 'pass --force to overwrite it, or mirror to another tag',
        });
      }
      tag = held === undefined ? { status: 'created' } : { status: 'overwritten', previous: held };
    }
    if ((await this.client.headManifest(repo, root, call)) !== undefined) {
      return { destination: dest, ...(tag ? { tag } : {}), rootPresent: true, manifests: [], presentManifests: image.manifests.length + 1, blobs: [] };
    }
    const present = await settleAll(image.manifests.map((m) => limiter.run(async () => (await this.client.headManifest(repo, m.digest, call)) !== undefined)));
    const missing = image.manifests.filter((_, i) => !present[i]);
    const needed = new Map<string, Descriptor>();
    for (const m of missing) for (const b of m.blobs) needed.set(b.digest, b);
    for (const b of image.root.blobs) needed.set(b.digest, b);
    const blobs = await settleAll([...needed.values()].map((descriptor) => limiter.run(async (): Promise<BlobPlan> => {
      if ((await this.client.blobExists(repo, descriptor.digest, call)) !== undefined) {
        this.hold(repo, descriptor.digest);
        return { descriptor, action: 'present' };
      }
      const from = this.holderFor(repo, descriptor.digest);
      return from === undefined ? { descriptor, action: 'upload' } : { descriptor, action: 'mount', from };
    })));
    return { destination: dest, ...(tag ? { tag } : {}), rootPresent: false, manifests: missing, presentManifests: image.manifests.length - missing.length, blobs };
  }

  /** Writes what the plan says is missing: blobs, child manifests, the root, then the tag. */
  async copy(image: SourceImage, plan: DestinationPlan, spool: Spool, onEvent?: (e: CopyEvent) => void): Promise<DestinationResult> {
    if (plan.tag?.status === 'unchanged') return planSummary(plan);
    const dest = plan.destination;
    const repo = dest.repository;
    const counts = emptyCounts();
    const limiter = new Limiter(this.opts.concurrency ?? 8);
    const content = (d: Descriptor) => spool.get(d, () => image.source.blob(d, this.opts.signal));

    await settleAll(plan.blobs.map(async (b) => {
      let status: 'uploaded' | 'mounted' | 'present' = 'present';
      if (b.action !== 'present') status = await this.ensureBlob(repo, b.descriptor, content, limiter);
      counts[status]++;
      counts[`${status}Bytes`] += b.descriptor.size;
      onEvent?.({ type: 'blob', descriptor: b.descriptor, status });
    }));
    let written = 0;
    const put = async (m: ManifestDoc) => {
      await this.ensureManifest(repo, m);
      written++;
      onEvent?.({ type: 'manifest', digest: m.digest });
    };
    if (!plan.rootPresent) {
      // Image manifests side by side; a nested index after them, each after its own
      // children (the list is in that order); the root last.
      await settleAll(plan.manifests.filter((m) => m.kind === 'image').map((m) => limiter.run(() => put(m))));
      for (const m of plan.manifests.filter((x) => x.kind === 'index')) await put(m);
      await put(image.root);
    }
    if (dest.tag !== undefined) {
      await this.client.putManifest(repo, dest.tag, image.root.bytes, image.root.mediaType, this.call(repo));
      onEvent?.({ type: 'tag', tag: dest.tag });
    }
    return {
      destination: dest,
      manifestsWritten: written,
      manifestsPresent: plan.presentManifests,
      blobs: counts,
      ...(plan.tag ? { tag: plan.tag } : {}),
      unchanged: written === 0 && plan.tag === undefined,
    };
  }

  /** Once per repository and digest; what this call did ('present' when another did it). */
  private ensureBlob(repo: Repository, d: Descriptor, content: (d: Descriptor) => ReturnType<Spool['get']>, limiter: Limiter): Promise<'uploaded' | 'mounted' | 'present'> {
    const key = `${formatRepository(repo)}@${d.digest}`;
    const running = this.writes.get(key) as Promise<unknown> | undefined;
    if (running) return running.then(() => 'present' as const);
    const chainKey = `${repo.registry}@${d.digest}`;
    const before = this.chains.get(chainKey) ?? Promise.resolve();
    const op = before.catch(() => undefined).then(() => limiter.run(() => this.transferBlob(repo, d, content)));
    this.chains.set(chainKey, op);
    this.writes.set(key, op);
    return op;
  }

  private async transferBlob(repo: Repository, d: Descriptor, content: (d: Descriptor) => ReturnType<Spool['get']>): Promise<'uploaded' | 'mounted'> {
    const from = this.holderFor(repo, d.digest);
    // An upload needs the bytes after the registry opens the session: download them meanwhile.
    const early = from === undefined ? content(d) : undefined;
    early?.catch(() => undefined);
    const upload = { descriptor: d, open: async () => (await (early ?? content(d))).open() };
    let status: 'uploaded' | 'mounted' = 'uploaded';
    if (from !== undefined) status = await this.client.mountBlob(repo, upload, from, this.call(repo));
    else await this.client.uploadBlob(repo, upload, this.call(repo));
    this.hold(repo, d.digest);
    return status;
  }

  private ensureManifest(repo: Repository, m: ManifestDoc): Promise<unknown> {
    const key = `${formatRepository(repo)}@${m.digest}`;
    let op = this.writes.get(key);
    if (!op) {
      op = this.client.putManifest(repo, m.digest, m.bytes, m.mediaType, this.call(repo));
      this.writes.set(key, op);
    }
    return op;
  }
}
