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
import { Limiter, remember, settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { addLayoutEntries, layoutUntagged, readLayoutBlob, readLayoutManifest } from '../oci/layout.ts';
import { isDigest, parseManifest } from '../oci/manifest.ts';
import { fallbackTag } from '../oci/referrers.ts';
import type { Artifact } from '../oci/referrers.ts';
import type { BuiltIndex, Descriptor } from '../oci/types.ts';
import type { Manifest, ManifestInfo, RegistryClient } from './client.ts';
import { type Destination, type Engine, isLayoutDestination } from './plan.ts';
import { type Repository, formatRepository } from './reference.ts';
import { RegistryError } from './retry.ts';
import { type TagListMemo, listedTags } from './tags.ts';
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
      return { stream, verified: true };
    },
  };
}

/**
 * What one run has asked of source repositories about attachments, shared by every copy:
 * tags that share an image, and images that share a child, ask once.
 */
export interface ReferrerMemo {
  /** `host/repo@digest` → its referrers list. */
  readonly lists: Map<string, Promise<Record<string, unknown>[]>>;
  /** `host/repo:tag` → a legacy cosign tag's manifest, or undefined. */
  readonly legacy: Map<string, Promise<ManifestInfo | undefined>>;
  /**
   * Repositories whose registry answered whether it has the referrers API (per repository,
   * as a registry with the API may still answer 404 for a repository it does not know).
   */
  readonly api: Map<string, boolean>;
  /**
   * Repositories' tag lists (tags.ts), sources' and destinations': a fallback or legacy tag
   * that is not in the list is not asked for. One GET of the list stands for the dozens of
   * lookups an image's attachments would otherwise take.
   */
  readonly tags: TagListMemo;
}

export function newReferrerMemo(): ReferrerMemo {
  return { lists: new Map(), legacy: new Map(), api: new Map(), tags: new Map() };
}

/** The referrers of `digest` in a registry: through the API when it has one, else the fallback tag. */
export async function registryReferrers(client: RegistryClient, repo: Repository, digest: string, signal?: AbortSignal, memo: ReferrerMemo = newReferrerMemo(), listed?: ReadonlySet<string>): Promise<Record<string, unknown>[]> {
  const name = formatRepository(repo);
  return remember(memo.lists, `${name}@${digest}`, async () => {
    const call = { signal, action: `pull from ${name}` };
    const tag = fallbackTag(digest);
    const find = () => (listed && !listed.has(tag) ? Promise.resolve(undefined) : client.findManifest(repo, tag, call));
    const fallback = async (tagged: Promise<Manifest | undefined>) => {
      const m = await tagged;
      return m ? referrerEntries(m.bytes, `${name}:${tag}`) : [];
    };
    const api = memo.api.get(name);
    if (api === false) return fallback(find());
    // Until the registry has said whether it has the API, its fallback tag is asked alongside:
    // a registry without one (most) then costs one round trip, not two.
    const tagged = api === undefined ? find() : undefined;
    tagged?.catch(() => undefined);
    const list = await client.getReferrers(repo, digest, call).catch(async (e: unknown) => {
      await tagged?.catch(() => undefined);
      throw e;
    });
    memo.api.set(name, list !== undefined);
    if (list) {
      await tagged?.catch(() => undefined);
      return referrerEntries(list, `the referrers of ${digest} in ${name}`);
    }
    return fallback(tagged ?? find());
  });
}

/**
 * Everything attached to `roots` (the index and its children) in a registry, referrers of
 * referrers included, and with `legacy` cosign's .sig/.att/.sbom tags of every root.
 */
export async function discoverInRegistry(client: RegistryClient, repo: Repository, roots: readonly string[], opts: { legacy?: boolean; signal?: AbortSignal; memo?: ReferrerMemo } = {}): Promise<Attached[]> {
  // Each level of the graph is asked side by side (a few at once): one round trip per level,
  // not per manifest, so a far registry costs about as much as a near one. The legacy tags
  // depend on nothing found, so they are asked alongside the first level.
  const limiter = new Limiter(LOOKUPS_AT_ONCE);
  const memo = opts.memo ?? newReferrerMemo();
  const name = formatRepository(repo);
  const listed = await listedTags(client, repo, memo.tags, opts.signal);
  const asks = (opts.legacy ? roots.flatMap((subject) => LEGACY_SUFFIXES.map((suffix) => ({ subject, tag: `${fallbackTag(subject)}${suffix}` }))) : []).filter((a) => !listed || listed.has(a.tag));
  const heads = settleAll(asks.map((a) => remember(memo.legacy, `${name}:${a.tag}`, () => limiter.run(() => client.headManifest(repo, a.tag, { signal: opts.signal, action: `pull from ${name}` })))));
  heads.catch(() => undefined);
  const found: Attached[] = [];
  const seen = new Set(roots);
  let frontier = [...roots];
  try {
    while (frontier.length > 0) {
      const lists = await settleAll(frontier.map((subject) => limiter.run(() => registryReferrers(client, repo, subject, opts.signal, memo, listed))));
      const next: string[] = [];
      frontier.forEach((subject, i) => {
        for (const entry of lists[i]!) {
          const digest = entry.digest as string;
          if (seen.has(digest)) continue;
          seen.add(digest);
          if (found.length >= MAX_REFERRERS) throw new PauseBuildError(`${name} lists more than ${MAX_REFERRERS} referrers for one image`, { hint: 'pass --no-referrers to copy the image alone' });
          found.push({ subject, digest, entry, ...(typeof entry.artifactType === 'string' ? { artifactType: entry.artifactType } : {}), source: registryDigestSource(client, repo, descriptorOf(entry), undefined, opts.signal) });
          next.push(digest);
        }
      });
      frontier = next;
    }
  } catch (e) {
    await heads.catch(() => undefined);
    throw e;
  }
  const legacy = await heads;
  asks.forEach(({ subject, tag }, i) => {
    const head = legacy[i];
    if (head) found.push({ subject, digest: head.digest, tag, source: registryDigestSource(client, repo, { mediaType: head.mediaType, digest: head.digest, size: head.size }, tag, opts.signal) });
  });
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

/** The subject of a referrer was refused: the referrer is left out too. */
class SubjectRefused extends Error {}

/** A registry answer that says it will not store such a manifest (as opposed to a network failure). */
function isRefusal(e: unknown): boolean {
  return e instanceof RegistryError && e.status !== undefined && [400, 403, 405, 415, 422].includes(e.status) || (e instanceof PauseBuildError && /already holds/.test(e.message));
}

/**
 * Writes `attached` to `dest`, then the merged fallback indexes where the registry has no
 * referrers API. `after` is the write of their subjects' image, `subjects` the moment its
 * manifests are in: a referrer's blobs go alongside it, its manifest once its subject is
 * written (a signature of an attestation after the attestation), and the fallback tags once
 * everything they list and describe is there. `require`: a refused artifact is an error
 * instead of a warning.
 */
export async function attach(engine: Engine, spool: Spool, dest: Destination, attached: readonly Attached[], opts: { require?: boolean; dryRun?: boolean; after?: Promise<unknown>; subjects?: Promise<unknown> } = {}): Promise<AttachResult> {
  const after = opts.after ?? Promise.resolve();
  // The image's manifests are in (its tags may not be yet): what referrer manifests wait for.
  const manifestsIn = opts.subjects ?? after;
  let afterFailed: { error: unknown } | undefined;
  for (const p of [after, manifestsIn]) {
    p.catch((error: unknown) => {
      afterFailed = { error };
    });
  }
  // A layout is written under its lock, one write at a time.
  if (isLayoutDestination(dest)) await after;
  else {
    // Whether the destination has the referrers API, and the fallback tags it holds, are
    // asked while the image and its referrers are written; the merges wait for the writes.
    const repo = dest.repository;
    const early = [...new Set(attached.filter((a) => a.entry).map((a) => a.subject))];
    if (early.length && !opts.dryRun) {
      engine.hasReferrersApi(repo, early[0]!).then((api) => {
        if (!api) for (const subject of early) engine.prefetchFallbackTag(repo, fallbackTag(subject));
      }, () => undefined);
    }
  }
  let written = 0;
  let present = 0;
  const refused: string[] = [];
  const landed = new Set<Attached>();
  const limiter = new Limiter(LOOKUPS_AT_ONCE);
  /** Digest → its write, true when it landed. */
  const writes = new Map<string, Promise<boolean>>();
  const byDigest = new Map<string, Attached[]>();
  for (const a of attached) byDigest.set(a.digest, [...(byDigest.get(a.digest) ?? []), a]);
  const one = async (a: Attached): Promise<boolean> => {
    const target: Destination = isLayoutDestination(dest) ? { kind: 'layout', dir: dest.dir, ...(a.tag ? { tag: a.tag } : {}) } : { repository: dest.repository, ...(a.tag ? { tag: a.tag } : {}) };
    const what = a.tag ?? `the ${a.artifactType ?? 'referrer'} ${a.digest.slice(0, 19)}…`;
    // Its subject: another referrer (written by this call), else the image.
    const parent = writes.get(a.subject);
    const subject = parent ? parent.then((ok) => ok) : manifestsIn.then(() => true);
    try {
      const image: SourceImage = await limiter.run(() => resolveImage(a.source, engine.opts.signal ? { signal: engine.opts.signal } : {}));
      const plan = await limiter.run(() => engine.plan(image, target));
      if (plan.rootPresent && plan.tags.every((t) => t.status === 'unchanged')) present++;
      else {
        // A referrer whose subject was refused is left out with it.
        const gate = subject.then((ok) => {
          if (!ok) throw new SubjectRefused();
        });
        if (!opts.dryRun) await write(engine, image, plan, spool, undefined, { manifestsAfter: gate });
        written++;
      }
      landed.add(a);
      return true;
    } catch (e) {
      if (afterFailed && e === afterFailed.error) throw e;
      if (e instanceof SubjectRefused) {
        refused.push(`${destinationLabel(dest)}: ${what} not written, as what it is attached to was refused`);
        return false;
      }
      if (!isRefusal(e) || opts.require) {
        if (isRefusal(e)) throw new PauseBuildError(`${destinationLabel(dest)} refused ${a.tag ?? `the ${a.artifactType ?? 'referrer'} ${a.digest}`}: ${(e as Error).message}`, { hint: 'use a registry that stores OCI 1.1 artifacts, or leave out --require-referrers', cause: e });
        throw e;
      }
      refused.push(`${destinationLabel(dest)} refused ${what}: ${(e as Error).message}`);
      return false;
    }
  };
  // Each after what it is attached to, so that it finds that write to follow; the order is
  // settled before anything starts.
  const ordered = new Set<Attached>();
  const pending = [...attached];
  while (pending.length > 0) {
    const i = pending.findIndex((a) => (byDigest.get(a.subject) ?? []).every((x) => ordered.has(x)));
    if (i < 0) throw new PauseBuildError('the referrers of the image refer to each other in a cycle', { hint: 'pass --no-referrers to copy the image alone' });
    ordered.add(pending.splice(i, 1)[0]!);
  }
  for (const a of ordered) writes.set(a.digest, one(a));
  await settleAll([after, ...writes.values()]);
  // In the order found, whatever order the writes ended in: the same copy gives the same fallback index.
  const withEntries = attached.filter((a) => a.entry && landed.has(a));
  if (isLayoutDestination(dest)) {
    if (!opts.dryRun && withEntries.length) await addLayoutEntries(dest.dir, withEntries.map((a) => a.entry!));
    return { written, present, fallbackTags: 0, refused };
  }
  const repo = dest.repository;
  const subjects = [...new Set(withEntries.map((a) => a.subject))];
  if (subjects.length === 0) return { written, present, fallbackTags: 0, refused };
  const api = await engine.hasReferrersApi(repo, subjects[0]!);
  if (api) return { written, present, fallbackTags: 0, api, refused };
  const changed = await settleAll(subjects.map((subject) => engine.mergeFallbackTag(repo, fallbackTag(subject), withEntries.filter((a) => a.subject === subject).map((a) => a.entry!), Boolean(opts.dryRun))));
  return { written, present, fallbackTags: changed.filter(Boolean).length, api, refused };
}

function destinationLabel(d: Destination): string {
  return isLayoutDestination(d) ? `oci:${d.dir}` : formatRepository(d.repository);
}
