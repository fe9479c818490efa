/**
 * Where the engine reads an image from, behind one interface: a built index (publish), a
 * registry reference, or an OCI layout. `resolveImage` walks a source's graph once (the
 * root, every child manifest, every config and layer) and gives the engine what to copy.
 *
 * A source hands out manifests by digest, checked through the one manifest model
 * (oci/manifest.ts), and blobs as content the spool checks against their descriptors.
 *
 * Extension point for content attached to an image (OCI 1.1 referrers: signatures, SBOMs,
 * provenance as manifests whose `subject` is the image, or the `sha256-<hex>` fallback tag
 * index): such manifests are ordinary manifests to the engine. A source that knows them
 * lists them with `referrers(subject)`; `resolveImage` does not follow them by itself, so a
 * caller adds them to the plan as further images (`plan(image, …)` once per referrer, the
 * subject first). Nothing here needs to change to carry them.
 */
import { Readable } from 'node:stream';
import { Limiter, remember, settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { sha256Digest } from '../oci/blob.ts';
import { layoutEntry, layoutReference, openLayoutBlob, readLayoutManifest } from '../oci/layout.ts';
import { type ManifestDoc, checkManifestSize, declaredMediaType as mediaTypeOf, isForeign, parseManifest } from '../oci/manifest.ts';
import { formatPlatform, platformMatches } from '../oci/platform.ts';
import type { BuiltIndex, BuiltImage, Descriptor, OciPlatform } from '../oci/types.ts';
import { sortTagsForDisplay } from '../version.ts';
import type { RegistryClient } from './client.ts';
import { type Reference, type Repository, formatReference, formatRepository } from './reference.ts';
import { RegistryError } from './retry.ts';
import type { BlobContent, Spool } from './spool.ts';

export type { ManifestDoc };

/** Child manifests read at once from one source. */
const MANIFEST_READS_AT_ONCE = 8;

/** Where an image is read from. */
export interface ImageSource {
  /** For messages and output: `host/repo:tag`, `host/repo@sha256:…`, `oci:DIR:TAG`, `built index`. */
  readonly name: string;
  /** A registry source's repository: it holds every blob, so its registry can mount them. */
  readonly repository?: Repository;
  /** The tag destinations get when they name none. */
  readonly tag?: string;
  /** The image the reference names: an index or a single manifest. */
  root(signal?: AbortSignal): Promise<ManifestDoc>;
  /** A manifest by digest, checked against it. */
  manifest(descriptor: Descriptor, signal?: AbortSignal): Promise<ManifestDoc>;
  /** A blob's content; a stream is checked by the spool as it is read. */
  blob(descriptor: Descriptor, signal?: AbortSignal): Promise<BlobContent>;
  /** Blobs that live in another repository (a Windows base's layers), so a destination on its registry mounts them. */
  readonly heldElsewhere?: ReadonlyMap<string, Repository>;
  /** Manifests whose `subject` is `digest` (OCI 1.1 referrers), when the source can list them. */
  referrers?(digest: string, signal?: AbortSignal): Promise<readonly Descriptor[]>;
}

/** What a run has fetched already, so that tags sharing content share the reads: `host/repo@digest` → manifest. */
export type SourceMemo = Map<string, Promise<ManifestDoc>>;

/** A hint naming up to eight of the repository's tags, versions first; empty when they cannot be listed. */
async function tagsHint(list: () => Promise<string[]>): Promise<string> {
  const tags = await list().catch(() => undefined);
  if (tags === undefined) return '';
  if (tags.length === 0) return 'the repository has no tags; check its name';
  const sorted = sortTagsForDisplay(tags);
  return `its tags: ${sorted.slice(0, 8).join(', ')}${sorted.length > 8 ? ', …' : ''}`;
}

/** An image in a registry, by tag or digest (the digest wins when both are given). */
export function registrySource(client: RegistryClient, ref: Reference, memo?: SourceMemo): ImageSource {
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
    manifest: (d, signal) => {
      checkManifestSize(d.size, `${name} manifest ${d.digest}`);
      const fetch = () => read(d.digest, d.mediaType, signal);
      return memo ? remember(memo, `${formatRepository(repo)}@${d.digest}`, fetch) : fetch();
    },
    async blob(d, signal) {
      const { stream } = await client.getBlob(repo, d.digest, { ...call(signal), size: d.size });
      return { stream, verified: true };
    },
  };
}

/** An image in an OCI layout directory, by the tag its index.json gives it. */
export function layoutSource(dir: string, tag: string): ImageSource {
  const name = layoutReference(dir, tag);
  const doc = async (d: Descriptor): Promise<ManifestDoc> => {
    const blob = await readLayoutManifest(dir, d);
    return { digest: d.digest, size: d.size, bytes: blob.bytes, mediaType: mediaTypeOf(blob.bytes) ?? d.mediaType };
  };
  return {
    name,
    tag,
    root: async () => doc(await layoutEntry(dir, tag)),
    manifest: doc,
    async blob(d) {
      // Opened once, as a regular file inside the layout; the spool checks size and digest as it reads.
      const { handle } = await openLayoutBlob(dir, d);
      if (d.size === 0) {
        await handle.close();
        return { stream: new ReadableStream<Uint8Array>({ start: (c) => c.close() }) };
      }
      return { stream: Readable.toWeb(handle.createReadStream({ start: 0, end: d.size - 1 })) as ReadableStream<Uint8Array> };
    },
  };
}

/**
 * A built index (publish): every manifest and blob in memory, checked against its digest
 * as the builder made it. `rootless` copies the images only (push by digest, no index).
 */
export function builtSource(built: BuiltIndex, name = 'the built index'): ImageSource {
  const blobs = new Map<string, Uint8Array>();
  for (const b of [built.index, ...built.images.flatMap((i) => [i.manifest, i.config, ...i.layers])]) blobs.set(b.descriptor.digest, b.bytes);
  const get = (d: Descriptor): Uint8Array => {
    const bytes = blobs.get(d.digest);
    if (!bytes) throw new Error(`${name} has no ${d.digest}`);
    return bytes;
  };
  // A base image's layers (Windows) are not held here: they are read from the base's
  // repository when a destination lacks them, and mounted from it on the same registry.
  const base = new Map(built.images.flatMap((i) => i.baseBlobs ?? []).map((b) => [b.descriptor.digest, b] as const));
  const bytesStream = (bytes: Uint8Array) => new ReadableStream<Uint8Array>({ start: (c) => { c.enqueue(bytes); c.close(); } });
  const { index } = built;
  return {
    name,
    ...(base.size ? { heldElsewhere: new Map([...base].map(([digest, b]) => [digest, b.from] as const)) } : {}),
    root: async () => ({ digest: index.descriptor.digest, mediaType: index.descriptor.mediaType, size: index.descriptor.size, bytes: index.bytes }),
    manifest: async (d) => ({ digest: d.digest, mediaType: d.mediaType, size: d.size, bytes: get(d) }),
    blob: async (d) => {
      const b = base.get(d.digest);
      if (!b) return { stream: bytesStream(get(d)) };
      const content = await b.open();
      return { stream: content instanceof Uint8Array ? bytesStream(content) : content };
    },
  };
}

/** One built image alone (push by digest): its manifest is the root. */
export function builtImageSource(image: BuiltImage): ImageSource {
  const built: BuiltIndex = { index: image.manifest, images: [image] };
  return builtSource(built, `the ${image.arch} image`);
}

// ---------------------------------------------------------------------------------------
// Reading an image

function parse(doc: ManifestDoc, where: string): { kind: 'index'; body: Record<string, unknown>; children: readonly Descriptor[] } | { kind: 'image'; blobs: Descriptor[] } {
  const m = parseManifest(doc, where);
  return m.kind === 'index' ? { kind: 'index', body: { ...m.body }, children: m.manifests } : { kind: 'image', blobs: [m.config, ...m.layers] };
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
  const parsed = parse(top, source.name);
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
    const child = parse(doc, where);
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
  // At most a few at once: an index may list thousands of entries.
  const limiter = new Limiter(MANIFEST_READS_AT_ONCE);
  const docs = await settleAll(entries.map(({ d }) => limiter.run(() => source.manifest(d, opts.signal))));
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

