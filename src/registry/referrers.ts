/**
 * What is attached to an image travels with it: OCI 1.1 referrers (signatures, SBOMs,
 * provenance, whose `subject` is the image) and cosign's legacy tags `sha256-<hex>.sig`,
 * `.att` and `.sbom`. Found through the referrers API, else the fallback tag
 * `sha256-<hex>`, recursively (a signature of an attestation is a referrer of a referrer).
 *
 * Each referrer is an ordinary manifest to the engine: planned and written by digest like
 * any image. On a destination without the referrers API the fallback index is then merged
 * with what it already lists (another tool's entries survive) and written last, after the
 * manifests it names.
 */
import { Limiter, settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { addLayoutEntries, layoutUntagged, readLayoutBlob, readLayoutManifest } from '../oci/layout.ts';
import { isDigest, parseManifest } from '../oci/manifest.ts';
import { fallbackTag, mergeFallbackIndex } from '../oci/referrers.ts';
import type { Artifact } from '../oci/referrers.ts';
import type { BuiltIndex, Descriptor } from '../oci/types.ts';
import type { RegistryClient } from './client.ts';
import { type Destination, type Engine, isLayoutDestination } from './plan.ts';
import { type Repository, formatRepository } from './reference.ts';
import { RegistryError } from './retry.ts';
import { type ImageSource, type SourceImage, builtSource, resolveImage } from './sources.ts';
import type { Spool } from './spool.ts';
import { write } from './write.ts';

export const LEGACY_SUFFIXES = ['.sig', '.att', '.sbom'] as const;
/** A bound on what one image may carry: referrers beyond it are a hostile or broken source. */
export const MAX_REFERRERS = 1000;
/** Referrer lookups at once against one repository. */
const LOOKUPS_AT_ONCE = 8;

/** One attached manifest to carry. */
export interface Attached {
  /** The manifest it is attached to. */
  readonly subject: string;
  readonly digest: string;
  /** Its entry in a referrers list (descriptor with artifactType and annotations); none for a legacy tag. */
  readonly entry?: Record<string, unknown>;
  /** A legacy cosign tag, e.g. sha256-<hex>.sig. */
  readonly tag?: string;
  readonly artifactType?: string;
  /** Where it is read from. */
  readonly source: ImageSource;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The entries of a referrers list (API answer or fallback index), checked. */
export function referrerEntries(bytes: Uint8Array, where: string): Record<string, unknown>[] {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new PauseBuildError(`${where} is not valid JSON`, { hint: 'the referrers list is broken; pass --no-referrers to copy the image alone' });
  }
  if (!isRecord(body) || !Array.isArray(body.manifests)) throw new PauseBuildError(`${where} is not an image index`, { hint: 'pass --no-referrers to copy the image alone' });
  return body.manifests.filter((m): m is Record<string, unknown> => isRecord(m) && isDigest(m.digest) && typeof m.mediaType === 'string' && typeof m.size === 'number');
}

function descriptorOf(entry: Record<string, unknown>): Descriptor {
  return { mediaType: entry.mediaType as string, digest: entry.digest as string, size: entry.size as number };
}

/** A source that reads one manifest by digest from a registry, and its blobs. */
function registryDigestSource(client: RegistryClient, repo: Repository, d: Descriptor, tag: string | undefined, signal?: AbortSignal): ImageSource {
  const call = { signal, action: `pull from ${formatRepository(repo)}` };
  const read = async (ref: string) => {
    const m = await client.getManifest(repo, ref, call);
    return { digest: m.digest, size: m.size, bytes: m.bytes, mediaType: (JSON.parse(Buffer.from(m.bytes).toString('utf8')) as { mediaType?: string }).mediaType ?? d.mediaType };
  };
  return {
    name: `${formatRepository(repo)}@${d.digest}`,
    repository: repo,
    ...(tag ? { tag } : {}),
    root: () => read(d.digest),
    manifest: (x) => read(x.digest),
    async blob(x) {
      const { stream } = await client.getBlob(repo, x.digest, { ...call, size: x.size });
      return { stream };
    },
  };
}

async function optionalManifest(client: RegistryClient, repo: Repository, tag: string, signal?: AbortSignal, action = `pull from ${formatRepository(repo)}`) {
  const call = { signal, action };
  const head = await client.headManifest(repo, tag, call);
  if (!head) return undefined;
  return client.getManifest(repo, tag, call);
}

/** The referrers of `digest` in a registry: through the API when it has one, else the fallback tag. */
export async function registryReferrers(client: RegistryClient, repo: Repository, digest: string, signal?: AbortSignal): Promise<Record<string, unknown>[]> {
  const call = { signal, action: `pull from ${formatRepository(repo)}` };
  const api = await client.getReferrers(repo, digest, call);
  if (api) return referrerEntries(api, `the referrers of ${digest} in ${formatRepository(repo)}`);
  const tagged = await optionalManifest(client, repo, fallbackTag(digest), signal);
  return tagged ? referrerEntries(tagged.bytes, `${formatRepository(repo)}:${fallbackTag(digest)}`) : [];
}

/**
 * Everything attached to `roots` (the index and its children) in a registry, referrers of
 * referrers included, and with `legacy` cosign's .sig/.att/.sbom tags of every root.
 */
export async function discoverInRegistry(client: RegistryClient, repo: Repository, roots: readonly string[], opts: { legacy?: boolean; signal?: AbortSignal } = {}): Promise<Attached[]> {
  // Each level of the graph is asked side by side (a few at once): one round trip per level,
  // not per manifest, so a far registry costs about as much as a near one.
  const limiter = new Limiter(LOOKUPS_AT_ONCE);
  const found: Attached[] = [];
  const seen = new Set(roots);
  let frontier = [...roots];
  while (frontier.length > 0) {
    const lists = await settleAll(frontier.map((subject) => limiter.run(() => registryReferrers(client, repo, subject, opts.signal))));
    const next: string[] = [];
    frontier.forEach((subject, i) => {
      for (const entry of lists[i]!) {
        const digest = entry.digest as string;
        if (seen.has(digest)) continue;
        seen.add(digest);
        if (found.length >= MAX_REFERRERS) throw new PauseBuildError(`${formatRepository(repo)} lists more than ${MAX_REFERRERS} referrers for one image`, { hint: 'pass --no-referrers to copy the image alone' });
        found.push({ subject, digest, entry, ...(typeof entry.artifactType === 'string' ? { artifactType: entry.artifactType } : {}), source: registryDigestSource(client, repo, descriptorOf(entry), undefined, opts.signal) });
        next.push(digest);
      }
    });
    frontier = next;
  }
  if (opts.legacy) {
    const asks = roots.flatMap((subject) => LEGACY_SUFFIXES.map((suffix) => ({ subject, tag: `${fallbackTag(subject)}${suffix}` })));
    const heads = await settleAll(asks.map((a) => limiter.run(() => client.headManifest(repo, a.tag, { signal: opts.signal, action: `pull from ${formatRepository(repo)}` }))));
    asks.forEach(({ subject, tag }, i) => {
      const head = heads[i];
      if (head) found.push({ subject, digest: head.digest, tag, source: registryDigestSource(client, repo, { mediaType: head.mediaType, digest: head.digest, size: head.size }, tag, opts.signal) });
    });
  }
  return found;
}

/** The same in an OCI layout: its untagged index.json entries whose manifest has one of the subjects. */
export async function discoverInLayout(dir: string, roots: readonly string[]): Promise<Attached[]> {
  const untagged = await layoutUntagged(dir);
  const subjects = new Map<string, { descriptor: Descriptor; entry: Record<string, unknown>; subject: string }>();
  for (const u of untagged) {
    const doc = await readLayoutManifest(dir, u.descriptor).catch(() => undefined);
    if (!doc) continue;
    let subject: string | undefined;
    try {
      subject = parseManifest({ digest: u.descriptor.digest, mediaType: u.descriptor.mediaType, size: u.descriptor.size, bytes: doc.bytes }, `${dir} ${u.descriptor.digest}`).subject?.digest;
    } catch {
      subject = undefined;
    }
    if (subject) subjects.set(u.descriptor.digest, { ...u, subject });
  }
  const found: Attached[] = [];
  const wanted = new Set(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [digest, s] of subjects) {
      if (!wanted.has(s.subject) || wanted.has(digest)) continue;
      wanted.add(digest);
      grew = true;
      found.push({ subject: s.subject, digest, entry: s.entry, ...(typeof s.entry.artifactType === 'string' ? { artifactType: s.entry.artifactType } : {}), source: layoutDigestSource(dir, s.descriptor) });
    }
  }
  return found;
}

function layoutDigestSource(dir: string, d: Descriptor): ImageSource {
  const doc = async (x: Descriptor) => {
    const blob = await readLayoutManifest(dir, x);
    return { digest: x.digest, size: x.size, bytes: blob.bytes, mediaType: x.mediaType };
  };
  return {
    name: `oci:${dir}@${d.digest}`,
    root: () => doc(d),
    manifest: doc,
    async blob(x) {
      const blob = await readLayoutBlob(dir, x);
      return { stream: new ReadableStream<Uint8Array>({ start: (c) => { c.enqueue(blob.bytes); c.close(); } }) };
    },
  };
}

/** Artifacts made by this build, as things to attach. */
export function builtAttachments(artifacts: readonly Artifact[]): Attached[] {
  return artifacts.map((a) => {
    const [config, layer] = a.blobs;
    const built: BuiltIndex = { index: a.manifest, images: [{ arch: '', manifest: a.manifest, config: config!, layers: layer ? [layer] : [] }] };
    const { mediaType, digest, size } = a.manifest.descriptor;
    const annotations = (JSON.parse(Buffer.from(a.manifest.bytes).toString('utf8')) as { annotations?: Record<string, string> }).annotations;
    return {
      subject: a.subject,
      digest,
      entry: { mediaType, digest, size, artifactType: a.artifactType, ...(annotations ? { annotations } : {}) },
      artifactType: a.artifactType,
      source: builtSource(built, `artifact ${digest}`),
    };
  });
}

export interface AttachResult {
  /** Manifests written now. */
  readonly written: number;
  /** Already at the destination. */
  readonly present: number;
  /** Fallback tags written (merged). */
  readonly fallbackTags: number;
  /** Referrers API at the destination (undefined for a layout). */
  readonly api?: boolean;
  /** What the destination refused, one line each (warnings unless required). */
  readonly refused: readonly string[];
}

/** A registry answer that says it will not store such a manifest (as opposed to a network failure). */
function isRefusal(e: unknown): boolean {
  return e instanceof RegistryError && e.status !== undefined && [400, 403, 405, 415, 422].includes(e.status) || (e instanceof PauseBuildError && /already holds/.test(e.message));
}

/**
 * Writes `attached` to `dest` (each after its subject, which the caller wrote before), then
 * the merged fallback indexes where the registry has no referrers API. `require`: a refused
 * artifact is an error instead of a warning.
 */
export async function attach(engine: Engine, spool: Spool, dest: Destination, attached: readonly Attached[], opts: { require?: boolean; dryRun?: boolean } = {}): Promise<AttachResult> {
  let written = 0;
  let present = 0;
  const refused: string[] = [];
  const landed: Attached[] = [];
  const one = async (a: Attached) => {
    const target: Destination = isLayoutDestination(dest) ? { kind: 'layout', dir: dest.dir, ...(a.tag ? { tag: a.tag } : {}) } : { repository: dest.repository, ...(a.tag ? { tag: a.tag } : {}) };
    try {
      const image: SourceImage = await resolveImage(a.source, engine.opts.signal ? { signal: engine.opts.signal } : {});
      const plan = await engine.plan(image, target);
      if (plan.rootPresent && plan.tags.every((t) => t.status === 'unchanged')) present++;
      else {
        if (!opts.dryRun) await write(engine, image, plan, spool);
        written++;
      }
      landed.push(a);
    } catch (e) {
      if (!isRefusal(e) || opts.require) {
        if (isRefusal(e)) throw new PauseBuildError(`${destinationLabel(dest)} refused ${a.tag ?? `the ${a.artifactType ?? 'referrer'} ${a.digest}`}: ${(e as Error).message}`, { hint: 'use a registry that stores OCI 1.1 artifacts, or leave out --require-referrers', cause: e });
        throw e;
      }
      refused.push(`${destinationLabel(dest)} refused ${a.tag ?? `the ${a.artifactType ?? 'referrer'} ${a.digest.slice(0, 19)}…`}: ${(e as Error).message}`);
    }
  };
  // In waves, side by side within each: a referrer goes after the referrer it is about
  // (a signature of an attestation after the attestation).
  const limiter = new Limiter(LOOKUPS_AT_ONCE);
  const digests = new Set(attached.map((a) => a.digest));
  const done = new Set<string>();
  let left = [...attached];
  while (left.length > 0) {
    const wave = left.filter((a) => !digests.has(a.subject) || done.has(a.subject));
    if (wave.length === 0) throw new PauseBuildError('the referrers of the image refer to each other in a cycle', { hint: 'pass --no-referrers to copy the image alone' });
    await settleAll(wave.map((a) => limiter.run(() => one(a))));
    for (const a of wave) done.add(a.digest);
    left = left.filter((a) => !wave.includes(a));
  }
  // In the order found, whatever order the writes ended in: the same copy gives the same fallback index.
  const withEntries = attached.filter((a) => a.entry && landed.includes(a));
  if (isLayoutDestination(dest)) {
    if (!opts.dryRun && withEntries.length) await addLayoutEntries(dest.dir, withEntries.map((a) => a.entry!));
    return { written, present, fallbackTags: 0, refused };
  }
  const repo = dest.repository;
  const call = engine.call(repo);
  const subjects = [...new Set(withEntries.map((a) => a.subject))];
  let api: boolean | undefined;
  let fallbackTags = 0;
  if (subjects.length > 0) {
    api = (await engine.client.getReferrers(repo, subjects[0]!, call)) !== undefined;
    if (!api) {
      for (const subject of subjects) {
        const tag = fallbackTag(subject);
        const existing = await optionalManifest(engine.client, repo, tag, engine.opts.signal, call.action);
        const { index, changed } = mergeFallbackIndex(existing?.bytes, withEntries.filter((a) => a.subject === subject).map((a) => a.entry!));
        if (!changed) continue;
        fallbackTags++;
        if (!opts.dryRun) await engine.client.putManifest(repo, tag, index.bytes, index.descriptor.mediaType, call);
      }
    }
  }
  return { written, present, fallbackTags, ...(api === undefined ? {} : { api }), refused };
}

function destinationLabel(d: Destination): string {
  return isLayoutDestination(d) ? `oci:${d.dir}` : formatRepository(d.repository);
}
