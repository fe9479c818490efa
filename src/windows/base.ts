/**
 * The Windows base images, read through a narrow source (a manifest by reference, a blob
 * by descriptor) so that where they come from (a registry today) is one adapter: for each
 * os.version the base index lists, as upstream's Makefile reads them, the manifest and
 * the config the Windows image is built on. Everything read is checked: size caps, digests,
 * and that each entry is a Windows image with its os.version.
 */
import { PauseBuildError } from '../errors.ts';
import { sha256Digest, shortDigest } from '../oci/blob.ts';
import { MANIFEST_LIMIT, isForeignMediaType, parseManifest } from '../oci/manifest.ts';
import { formatPlatform } from '../oci/platform.ts';
import type { Descriptor } from '../oci/types.ts';
import type { WindowsPlatform } from '../platforms.ts';

/** Upstream's base (build/pause/Makefile, BASE.windows), pinned as upstream pins it. */
export const DEFAULT_WINDOWS_BASE = 'mcr.microsoft.com/oss/v2/kubernetes/windows-pause-image-base:v0.4.1@sha256:ba474944e82cac8913e0a402c7727c35d469977026b636bf460f0d52112c4e4f';

export interface FetchedManifest {
  readonly bytes: Uint8Array;
  readonly mediaType: string;
  readonly digest: string;
}

/** Where base images are read from: two reads, so the Windows code needs nothing else of a registry. */
export interface BaseSource {
  /** For messages: the reference as given. */
  readonly name: string;
  readonly location: { readonly registry: string; readonly repository: string };
  /** The reference the base was given by (tag or digest) or a digest inside it. */
  manifest(reference: string): Promise<FetchedManifest>;
  /** A small blob's bytes (a config), checked against its digest. */
  blob(descriptor: Descriptor): Promise<Uint8Array>;
  /** A way to open a (possibly large) blob, for copying it on. */
  opener(descriptor: Descriptor): () => Promise<Uint8Array | ReadableStream<Uint8Array>>;
}

export interface LayerDescriptorJson {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly [key: string]: unknown;
}

export interface WindowsBase {
  readonly osVersion: string;
  readonly manifest: FetchedManifest;
  /** The base manifest's layer descriptors, exactly as written there. */
  readonly layers: readonly LayerDescriptorJson[];
  readonly config: Record<string, unknown>;
}

/** A layer that registries do not hold: clients fetch it from its urls. */
export function isForeignLayer(layer: { mediaType: string }): boolean {
  return isForeignMediaType(layer.mediaType);
}

/** A config: JSON under the manifests' cap. */
function parseConfig(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length > MANIFEST_LIMIT) throw new PauseBuildError(`${what} is ${bytes.length} bytes, more than a base image document can be`);
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new PauseBuildError(`${what} is not valid JSON (${(e as Error).message})`);
  }
}

/** Through the one manifest model (size cap, descriptors, media types). */
function parse(m: FetchedManifest, where: string) {
  return parseManifest({ digest: m.digest, mediaType: m.mediaType.split(';')[0]!.trim(), size: m.bytes.byteLength, bytes: m.bytes }, where);
}

/** `10.0.20348` selects 10.0.20348.2700; a whole version only itself. */
export function osVersionMatches(filter: string, version: string): boolean {
  return version === filter || version.startsWith(`${filter}.`);
}

const HINT_NOT_WINDOWS = 'pass an index of windows/amd64 images, one per os.version (as mcr.microsoft.com publishes them), with --windows-base';

async function guarded<T>(name: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof PauseBuildError && e.message.startsWith(name)) throw e;
    const message = (e as Error).message;
    throw new PauseBuildError(`cannot read the Windows base ${name}: ${what}: ${message}`, {
      hint: e instanceof PauseBuildError && e.hint ? e.hint : 'check --windows-base and that its registry is reachable (--insecure-registry for plain HTTP)',
    });
  }
}

/**
 * Every Windows version of the base for `platform`, in os.version order, kept by `filters`
 * (all when none). Errors name the base and what to change.
 */
export async function readWindowsBases(source: BaseSource, reference: string, platform: WindowsPlatform, filters: readonly string[] = []): Promise<WindowsBase[]> {
  const name = source.name;
  const top = await guarded(name, 'manifest', () => source.manifest(reference));
  const topParsed = parse(top, `${name}: manifest`);
  let entries: readonly Descriptor[];
  if (topParsed.kind === 'index') {
    const all = topParsed.manifests;
    entries = all.filter((e) => e.platform?.os === 'windows' && e.platform.architecture === platform.arch);
    if (entries.length === 0) {
      const listed = all.map((e) => formatPlatform({ os: e.platform?.os ?? '?', architecture: e.platform?.architecture ?? '?' })).join(', ') || 'nothing';
      throw new PauseBuildError(`${name} is not a Windows base image: its index lists ${listed}, no windows/${platform.arch}`, { hint: HINT_NOT_WINDOWS });
    }
    for (const e of entries) {
      if (!e.platform?.['os.version']) {
        throw new PauseBuildError(`${name}: its windows/${platform.arch} entry ${shortDigest(e.digest)} has no os.version`, {
          hint: 'each Windows entry of the base index must give its Windows build in platform.os.version (e.g. 10.0.20348.2700)',
        });
      }
    }
  } else {
    entries = [{ mediaType: top.mediaType, digest: top.digest, size: top.bytes.byteLength }];
  }

  const bases: WindowsBase[] = [];
  for (const entry of entries) {
    const manifest = entry.digest === top.digest ? top : await guarded(name, `manifest ${shortDigest(entry.digest)}`, () => source.manifest(entry.digest));
    if (sha256Digest(manifest.bytes) !== entry.digest) throw new PauseBuildError(`${name}: manifest ${shortDigest(entry.digest)} does not match its digest`);
    const parsed = parse(manifest, `${name}: manifest ${shortDigest(entry.digest)}`);
    if (parsed.kind !== 'image') throw new PauseBuildError(`${name}: entry ${shortDigest(entry.digest)} is ${parsed.mediaType || 'of no media type'}, not an image manifest`, { hint: HINT_NOT_WINDOWS });
    const configDesc = parsed.config;
    // The base's layer descriptors stay exactly as written (a foreign layer's urls included).
    const layers = parsed.body.layers as LayerDescriptorJson[];
    const configBytes = await guarded(name, `config ${shortDigest(configDesc.digest)}`, () => source.blob(configDesc));
    const config = parseConfig(configBytes, `${name}: config ${shortDigest(configDesc.digest)}`);
    if (config.os !== 'windows' || (config.architecture !== undefined && config.architecture !== platform.arch)) {
      throw new PauseBuildError(`${name} is not a Windows base image: ${shortDigest(entry.digest)} is ${String(config.os)}/${String(config.architecture)}`, { hint: HINT_NOT_WINDOWS });
    }
    const osVersion = entry.platform?.['os.version'] ?? (typeof config['os.version'] === 'string' ? config['os.version'] : undefined);
    if (!osVersion) {
      throw new PauseBuildError(`${name}: its Windows image ${shortDigest(entry.digest)} has no os.version`, { hint: 'use a base whose config (or index entry) gives os.version, e.g. 10.0.20348.2700' });
    }
    const diffIds = ((config.rootfs as { diff_ids?: unknown[] } | undefined)?.diff_ids ?? []) as unknown[];
    if (diffIds.length !== layers.length) {
      throw new PauseBuildError(`${name}: manifest ${shortDigest(entry.digest)} lists ${layers.length} layers but its config ${diffIds.length} diff_ids`);
    }
    for (const l of layers) {
      if (isForeignLayer(l) && !(Array.isArray(l.urls) && l.urls.length > 0)) {
        throw new PauseBuildError(`${name}: foreign layer ${shortDigest(l.digest)} has no urls`, { hint: 'a non-distributable layer must say where it is downloaded from' });
      }
    }
    bases.push({ osVersion, manifest, layers, config });
  }
  const kept = filters.length === 0 ? bases : bases.filter((b) => filters.some((f) => osVersionMatches(f, b.osVersion)));
  if (kept.length === 0) {
    throw new PauseBuildError(`--windows-os-version ${filters.join(',')} matches none of ${name}'s versions (${bases.map((b) => b.osVersion).join(', ')})`, {
      hint: 'name one of those (or a prefix such as 10.0.20348), or leave --windows-os-version out for all',
    });
  }
  const seen = new Set<string>();
  for (const b of kept) {
    if (seen.has(b.osVersion)) throw new PauseBuildError(`${name} has two windows/${platform.arch} images for os.version ${b.osVersion}`);
    seen.add(b.osVersion);
  }
  return kept.sort((a, b) => compareVersions(a.osVersion, b.osVersion));
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0 && !Number.isNaN(d)) return d;
  }
  return a.localeCompare(b);
}
