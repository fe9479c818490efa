/**
 * What a mirror run copies, and what it tells the operator afterwards.
 *
 * Requests (from the command line or a mirror file) become entries; an entry's source
 * is a registry reference or an OCI layout `oci:DIR:TAG`, its tags are taken as given or
 * selected from the source's tags by version ranges, and each selected tag becomes one
 * copy (source image → destinations). Everything here is checked before any registry is
 * asked anything. At the end each destination gets its pinned reference and the lines
 * containerd and the kubelet need to use it as the sandbox image.
 */
import path from 'node:path';
import { PauseBuildError } from './errors.ts';
import { layoutReference } from './oci/layout.ts';
import { parsePlatforms } from './oci/platform.ts';
import type { OciPlatform } from './oci/types.ts';
import type { Destination, DestinationResult, RegistryDestination } from './registry/plan.ts';
import { destinationName, isLayoutDestination } from './registry/plan.ts';
import type { SourceImage } from './registry/sources.ts';
import { type Reference, formatReference, formatRepository, parseReference, pinnedReference, validateTag } from './registry/reference.ts';
import { formatSize } from './github.ts';
import { type NodeSnippets, type Transport, nodeSnippets } from './sandbox-config.ts';
import { compareVersions, semverLib, sortTagsForDisplay, tryParseVersion } from './version.ts';

export type SourceSpec =
  | { readonly kind: 'registry'; readonly ref: Reference }
  | { readonly kind: 'layout'; readonly dir: string; readonly tag?: string };

/** A request as written: on the command line or as one entry of a mirror file. */
export interface MirrorEntry {
  /** Names the entry in errors (`mirror.yaml entry 2`); none on the command line. */
  readonly label?: string;
  readonly source: string;
  /** Tags to copy: exact names and/or version ranges. */
  readonly tags?: string | readonly string[];
  readonly platforms?: string | readonly string[];
  readonly destinations: readonly string[];
  /** Directory that a relative `oci:` path is relative to. Default: the current one. */
  readonly baseDir?: string;
  /** Public key files: the source index must carry a valid signature by one of them. */
  readonly verifyKeys?: readonly string[];
}

export type TagSelector = { readonly range: string } | { readonly tag: string };

/** An entry checked and parsed; its tags not yet selected. */
export interface ParsedEntry {
  readonly label?: string;
  readonly source: SourceSpec;
  readonly selectors?: readonly TagSelector[];
  readonly platforms?: readonly OciPlatform[];
  readonly destinations: readonly Destination[];
  /** Absolute paths of the entry's verify keys. */
  readonly verifyKeys?: readonly string[];
}

/** One source image to its destinations. */
export interface MirrorJob {
  readonly label?: string;
  readonly source: SourceSpec;
  readonly platforms?: readonly OciPlatform[];
  /** Tags resolved: the destination's own, else the source's, else none (by digest). */
  readonly destinations: readonly Destination[];
  readonly verifyKeys?: readonly string[];
}

const RANGE_HINT = 'e.g. ">=3.9", "3.x", ">=3.9 <4", or tags by name: 3.9,3.10,latest';

function within(label: string | undefined, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (label && e instanceof PauseBuildError) throw new PauseBuildError(`${label}: ${e.message}`, { hint: e.hint, cause: e });
    throw e;
  }
}

/** `oci:DIR[:TAG]` or a registry reference. */
export function parseSource(text: string, baseDir = process.cwd()): SourceSpec {
  const input = text.trim();
  if (!input.startsWith('oci:')) return { kind: 'registry', ref: parseReference(input) };
  const rest = input.slice('oci:'.length);
  const colon = rest.lastIndexOf(':');
  const hasTag = colon > 0 && colon > rest.lastIndexOf('/');
  const dir = hasTag ? rest.slice(0, colon) : rest;
  if (dir === '') throw new PauseBuildError(`invalid source "${input}": no directory after oci:`, { hint: 'write oci:DIR:TAG, e.g. oci:_output/oci:3.10' });
  const tag = hasTag ? rest.slice(colon + 1) : undefined;
  if (tag !== undefined) validateTag(tag);
  return { kind: 'layout', dir: path.resolve(baseDir, dir), ...(tag === undefined ? {} : { tag }) };
}

/** A registry repository, optionally with a tag; never a digest (the digest is the source's). Or `oci:DIR[:TAG]`, an OCI layout. */
export function parseDestination(text: string, baseDir = process.cwd()): Destination {
  if (text.trim().startsWith('oci:')) {
    const spec = parseSource(text, baseDir);
    if (spec.kind !== 'layout') throw new Error('unreachable');
    return { kind: 'layout', dir: spec.dir, ...(spec.tag === undefined ? {} : { tag: spec.tag }) };
  }
  const ref = parseReference(text);
  if (ref.digest !== undefined) {
    throw new PauseBuildError(`destination "${text.trim()}" names a digest`, { hint: 'give HOST/REPO or HOST/REPO:TAG; digests are kept as the source has them' });
  }
  return { repository: { registry: ref.registry, repository: ref.repository }, ...(ref.tag === undefined ? {} : { tag: ref.tag }) };
}

/** How people and messages see a source. */
export function sourceName(spec: SourceSpec): string {
  if (spec.kind === 'registry') return formatReference(spec.ref);
  return spec.tag === undefined ? layoutReference(spec.dir, '').slice(0, -1) : layoutReference(spec.dir, spec.tag);
}

function sourceTag(spec: SourceSpec): string | undefined {
  return spec.kind === 'registry' ? spec.ref.tag : spec.tag;
}

function withTag(spec: SourceSpec, tag: string): SourceSpec {
  return spec.kind === 'registry' ? { kind: 'registry', ref: { ...spec.ref, tag } } : { ...spec, tag };
}

const RANGE_SYNTAX = /[<>=^~*|\s]|(?:^|\.)[xX](?:\.|$)/;

/**
 * `>=3.9,latest` → a range and a name. Items are comma-separated; an item with a range
 * operator (or an x wildcard) is a semver range over Kubernetes-style versions, any
 * other is a tag by name.
 */
export function parseTagSelectors(values: string | readonly string[]): TagSelector[] {
  const items = (typeof values === 'string' ? [values] : values).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  if (items.length === 0) throw new PauseBuildError('no tags given', { hint: RANGE_HINT });
  return items.map((item) => {
    if (!RANGE_SYNTAX.test(item)) return { tag: validateTag(item) };
    if (semverLib().validRange(item) === null) throw new PauseBuildError(`invalid version range "${item}"`, { hint: RANGE_HINT });
    return { range: item };
  });
}

/**
 * The tags of `available` the selectors pick: named tags (each must exist) and versions
 * within a range (each range must match one). Tags that are not versions (latest, sha-…)
 * only come by name; prereleases only when a range names one, as semver has it.
 * Versions come first, lowest first, then the other named tags.
 */
export function selectTags(available: readonly string[], selectors: readonly TagSelector[], source: string): string[] {
  const chosen = new Set<string>();
  const versions = available.flatMap((tag) => {
    const v = tryParseVersion(tag);
    return v ? [{ tag, v }] : [];
  });
  for (const s of selectors) {
    if ('tag' in s) {
      if (!available.includes(s.tag)) throw new PauseBuildError(`tag ${s.tag} is not in ${source}`, { hint: available.length ? `its tags: ${sortTagsForDisplay(available).slice(0, 12).join(', ')}` : 'the repository has no tags' });
      chosen.add(s.tag);
      continue;
    }
    const matching = versions.filter(({ v }) => semverLib().satisfies(v.semver, s.range));
    if (matching.length === 0) {
      const shown = sortTagsForDisplay(versions.map((x) => x.tag)).slice(0, 8);
      throw new PauseBuildError(`no tag of ${source} is in the range "${s.range}"`, { hint: shown.length ? `its versions: ${shown.join(', ')}` : 'it has no version tags' });
    }
    for (const m of matching) chosen.add(m.tag);
  }
  const picked = [...chosen];
  const asVersion = new Map(versions.map((x) => [x.tag, x.v]));
  const vs = picked.filter((t) => asVersion.has(t)).sort((a, b) => compareVersions(asVersion.get(a)!, asVersion.get(b)!));
  return [...vs, ...picked.filter((t) => !asVersion.has(t))];
}

/** Checks an entry without asking any registry; errors name the entry. */
export function parseEntry(entry: MirrorEntry): ParsedEntry {
  let parsed: ParsedEntry | undefined;
  within(entry.label, () => {
    const source = parseSource(entry.source, entry.baseDir);
    const selectors = entry.tags === undefined ? undefined : parseTagSelectors(entry.tags);
    const platforms = entry.platforms === undefined ? undefined : parsePlatforms(entry.platforms);
    if (entry.destinations.length === 0) throw new PauseBuildError('no destination given', { hint: 'name one or more destination repositories, e.g. registry.example/k8s/pause' });
    const destinations = entry.destinations.map((d) => parseDestination(d, entry.baseDir));
    const name = sourceName(source);
    if (selectors) {
      const hasTag = source.kind === 'registry' ? source.ref.tag !== undefined || source.ref.digest !== undefined : source.tag !== undefined;
      if (hasTag) throw new PauseBuildError(`source ${name} names a tag or digest, and tags are selected`, { hint: 'give the source repository without :TAG when selecting tags (oci:DIR for a layout)' });
      const tagged = destinations.find((d) => d.tag !== undefined);
      if (tagged) throw new PauseBuildError(`destination ${destinationName(tagged)} names a tag, and tags are selected`, { hint: 'give destination repositories without tags: each selected tag is copied under its own name' });
    } else if (source.kind === 'registry' ? source.ref.tag === undefined && source.ref.digest === undefined : source.tag === undefined) {
      throw new PauseBuildError(`source ${name} names no tag${source.kind === 'registry' ? ' or digest' : ''}`, {
        hint: source.kind === 'registry' ? 'add :TAG or @sha256:…, or select tags (--tags ">=3.9")' : 'write oci:DIR:TAG, or select tags (--tags ">=3.9")',
      });
    }
    parsed = {
      ...(entry.label ? { label: entry.label } : {}),
      source,
      ...(selectors ? { selectors } : {}),
      ...(platforms ? { platforms } : {}),
      destinations,
      ...(entry.verifyKeys?.length ? { verifyKeys: entry.verifyKeys.map((k) => path.resolve(entry.baseDir ?? process.cwd(), k)) } : {}),
    };
  });
  return parsed!;
}

/** An entry's copies: one per selected tag (listed by `listTags`), or the one it names. */
export async function expandEntry(entry: ParsedEntry, listTags: (source: SourceSpec) => Promise<string[]>): Promise<MirrorJob[]> {
  const base = { ...(entry.label ? { label: entry.label } : {}), ...(entry.platforms ? { platforms: entry.platforms } : {}), ...(entry.verifyKeys ? { verifyKeys: entry.verifyKeys } : {}) };
  if (!entry.selectors) {
    const tag = sourceTag(entry.source);
    const destinations = entry.destinations.map((d) => (d.tag !== undefined || tag === undefined ? d : { ...d, tag }));
    return [{ ...base, source: entry.source, destinations }];
  }
  const available = await listTags(entry.source);
  let tags: string[] = [];
  within(entry.label, () => {
    tags = selectTags(available, entry.selectors!, sourceName(entry.source));
  });
  return tags.map((tag) => ({ ...base, source: withTag(entry.source, tag), destinations: entry.destinations.map((d) => ({ ...d, tag })) }));
}

/** Two copies writing one destination tag would race: refused before anything runs. */
export function checkOverlaps(jobs: readonly MirrorJob[]): void {
  const writers = new Map<string, MirrorJob>();
  for (const job of jobs) {
    for (const d of job.destinations) {
      if (d.tag === undefined) continue;
      const key = destinationName(d);
      const other = writers.get(key);
      if (other && sourceName(other.source) !== sourceName(job.source)) {
        throw new PauseBuildError(`${key} would be written from two sources: ${sourceName(other.source)} and ${sourceName(job.source)}`, {
          hint: 'give each destination tag one source',
        });
      }
      writers.set(key, job);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Output

export interface DestinationReport {
  /** `host/repo:tag`, or the pinned reference when copied by digest only. */
  readonly reference: string;
  readonly repository: string;
  readonly tag?: string;
  /** `host/repo@sha256:…` */
  readonly pinned: string;
  /** Something was (or, in a dry run, would be) written. */
  readonly changed: boolean;
  readonly tagStatus?: 'created' | 'unchanged' | 'overwritten';
  readonly previousDigest?: string;
  readonly manifests?: { readonly written: number; readonly present: number };
  readonly blobs?: DestinationResult['blobs'];
  /** Node configuration for this destination as the sandbox image (src/sandbox-config.ts); none for an OCI layout. */
  readonly containerd?: NodeSnippets['containerd'];
  readonly containerd1?: NodeSnippets['containerd1'];
  readonly crio?: NodeSnippets['crio'];
  readonly kubelet?: NodeSnippets['kubelet'];
  readonly hostsToml?: string;
  readonly registriesConf?: string;
  readonly error?: string;
  /** Referrers and legacy signature tags written with the image. */
  readonly referrers?: { readonly written: number; readonly present: number; readonly fallbackTags: number; readonly api?: boolean; readonly refused: readonly string[] };
}

export interface CopyReport {
  readonly source: string;
  readonly sourceDigest?: string;
  /** What the destinations hold: the source digest, or the rewritten index's. */
  readonly digest?: string;
  readonly rewritten?: boolean;
  readonly platforms?: readonly string[];
  readonly manifests?: number;
  readonly blobs?: number;
  readonly bytes?: number;
  /** Foreign (non-distributable) layers left out. */
  readonly foreignLayers?: number;
  readonly destinations: readonly DestinationReport[];
  readonly error?: string;
  /** What is attached to the image and carried with it (signatures, SBOMs, provenance, legacy tags). */
  readonly referrers?: { readonly count: number; readonly types: Readonly<Record<string, number>>; readonly leftBehind?: number; readonly note?: string };
}

export interface MirrorReport {
  readonly dryRun: boolean;
  readonly copies: readonly CopyReport[];
}

/** The destination as the nodes name it: `host/repo:tag@sha256:…`, or `host/repo@sha256:…` without a tag. */
function nodeReference(d: RegistryDestination, digest: string): Reference {
  return { ...d.repository, ...(d.tag === undefined ? {} : { tag: d.tag }), digest };
}

/** The node snippets again, for the transport (plain HTTP, private CA) each destination host was reached with. */
export function withNodeConfig(report: MirrorReport, transportFor: (host: string) => Transport): MirrorReport {
  return {
    ...report,
    copies: report.copies.map((c) => ({
      ...c,
      destinations: c.destinations.map((d) => {
        // A layout is not something a node pulls from.
        if (d.containerd === undefined) return d;
        const ref = parseReference(d.reference);
        const { hostsToml: _h, registriesConf: _r, ...rest } = d;
        return { ...rest, ...nodeSnippets({ ...ref, digest: ref.digest ?? c.digest! }, transportFor(ref.registry)) };
      }),
    })),
  };
}

/** An error as one line: its message and hint, as the terminal shows it without `error:`. */
export function errorLine(e: unknown): string {
  if (e instanceof PauseBuildError) return e.hint ? `${e.message} — ${e.hint}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

export function destinationReport(d: Destination, digest: string, outcome: DestinationResult | { error: unknown }): DestinationReport {
  const layout = isLayoutDestination(d);
  const pinned = layout ? destinationName({ ...d, tag: undefined } as Destination, digest) : pinnedReference(d.repository, digest);
  const reference = d.tag === undefined ? pinned : destinationName(d);
  const base = {
    reference,
    repository: layout ? `oci:${d.dir}` : formatRepository(d.repository),
    ...(d.tag === undefined ? {} : { tag: d.tag }),
    pinned,
    ...(layout ? {} : nodeSnippets(nodeReference(d, digest))),
  };
  if ('error' in outcome) return { ...base, changed: false, error: errorLine(outcome.error) };
  return {
    ...base,
    changed: !outcome.unchanged,
    ...(outcome.tag ? { tagStatus: outcome.tag.status } : {}),
    ...(outcome.tag?.previous ? { previousDigest: outcome.tag.previous } : {}),
    manifests: { written: outcome.manifestsWritten, present: outcome.manifestsPresent },
    blobs: outcome.blobs,
  };
}

export function copyReport(image: SourceImage, destinations: readonly DestinationReport[]): CopyReport {
  return {
    source: image.source.name,
    sourceDigest: image.sourceDigest,
    digest: image.root.digest,
    rewritten: image.rewritten,
    platforms: image.platforms,
    manifests: image.manifests.length + 1,
    blobs: image.blobs.length,
    bytes: image.blobs.reduce((n, b) => n + b.size, 0),
    foreignLayers: image.foreign.length,
    destinations,
  };
}

/** `index rewritten: sha256:… (source sha256:…)` when a platform subset made a new index. */
export function rewrittenLine(image: Pick<CopyReport, 'rewritten' | 'digest' | 'sourceDigest'>): string | undefined {
  return image.rewritten ? `index rewritten: ${image.digest} (source ${image.sourceDigest})` : undefined;
}

/** `5 platforms, 6 manifests, 10 blobs (1.5 KiB)`, and foreign layers left out if any. */
export function copySummary(c: CopyReport): string {
  const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
  const parts = [c.platforms?.length ? n(c.platforms.length, 'platform') : 'single image', n(c.manifests ?? 0, 'manifest'), `${n(c.blobs ?? 0, 'blob')} (${formatSize(c.bytes ?? 0)})`];
  if (c.foreignLayers) parts.push(`${n(c.foreignLayers, 'foreign layer')} left out`);
  return parts.join(', ');
}

/** One line of what happened (or would happen) at a destination. */
export function destinationSummary(d: DestinationReport, dryRun: boolean): string {
  if (d.error) return `failed: ${d.error}`;
  const tag = d.tag === undefined ? 'no tag (by digest)' : d.tagStatus === 'created' ? `tag ${d.tag} new` : d.tagStatus === 'overwritten' ? `tag ${d.tag} moved from ${d.previousDigest}` : `tag ${d.tag} unchanged`;
  if (!d.changed) return `already there; ${tag}`;
  const b = d.blobs!;
  const m = d.manifests!;
  if (dryRun) {
    return `would write ${m.written} manifest${m.written === 1 ? '' : 's'} (${m.present} present); upload ${b.uploaded} blob${b.uploaded === 1 ? '' : 's'} (${formatSize(b.uploadedBytes)}), mount ${b.mounted} (${formatSize(b.mountedBytes)}), ${b.present} present (${formatSize(b.presentBytes)}); ${tag}`;
  }
  return `wrote ${m.written} manifest${m.written === 1 ? '' : 's'}; uploaded ${b.uploaded} blob${b.uploaded === 1 ? '' : 's'} (${formatSize(b.uploadedBytes)}), mounted ${b.mounted}, ${b.present} present; ${tag}`;
}

/** The node configuration of one destination, each snippet under a line naming its runtime and config version. */
export function nodeConfigLines(d: DestinationReport): string[] {
  if (d.containerd === undefined || d.containerd1 === undefined || d.crio === undefined || d.kubelet === undefined) return [];
  const block = (title: string, text: string) => [`      ${title}:`, ...text.trimEnd().split('\n').map((l) => (l ? `        ${l}` : ''))];
  return [
    ...block('containerd 2.x, config version 3 (/etc/containerd/config.toml)', d.containerd),
    ...block('containerd 1.6/1.7, config version 2 (/etc/containerd/config.toml; without version = 2 it keeps registry.k8s.io/pause)', d.containerd1),
    ...(d.hostsToml ? block('containerd, both versions: hosts.toml in config_path/HOST/ (copy the CA to the ca path it names)', d.hostsToml) : []),
    ...block('CRI-O (/etc/crio/crio.conf.d/10-pause-image.conf)', d.crio),
    ...(d.registriesConf ? block('CRI-O registries.conf (/etc/containers/registries.conf.d/)', d.registriesConf) : []),
    ...block('kubelet before 1.35 only (removed in 1.35); with containerd 1.6 it keeps image GC from removing the sandbox image', d.kubelet),
  ];
}

/** The text printed on stdout at the end of a run. */
export function formatReport(report: MirrorReport): string {
  const lines: string[] = [];
  if (report.dryRun) lines.push('dry run: nothing was written', '');
  for (const c of report.copies) {
    if (c.error) {
      lines.push(`${c.source}: failed: ${c.error}`, '');
      continue;
    }
    lines.push(`${c.source}  ${c.sourceDigest}  ${copySummary(c)}`);
    const rewritten = rewrittenLine(c);
    if (rewritten) lines.push(`  ${rewritten}`);
    if (c.referrers) {
      const kinds = Object.entries(c.referrers.types).map(([t, n]) => `${n} ${t}`).join(', ');
      lines.push(`  ${report.dryRun ? 'would carry' : 'carries'} ${c.referrers.count} referrer${c.referrers.count === 1 ? '' : 's'}${kinds ? ` (${kinds})` : ''}`);
      if (c.referrers.note) lines.push(`  note: ${c.referrers.note}`);
    }
    for (const d of c.destinations) {
      lines.push(`  → ${d.reference}  ${destinationSummary(d, report.dryRun)}`);
      if (d.error || report.dryRun) continue;
      lines.push(`      ${d.pinned}`, ...nodeConfigLines(d));
    }
    lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
