/**
 * The Windows base images, read through a narrow source (a manifest by reference, a blob
 * by descriptor) so that where they come from (a registry today) is one adapter: for each
 * os.version the base index lists, as upstream's Makefile reads them, the manifest and
 * the config the Windows image is built on. Everything read is checked: size caps, digests,
 * and that each entry is a Windows image with its os.version.
 */
import { PauseBuildError } from '../errors.ts';
import { sha256Digest, shortDigest } from '../oci/blob.ts';
import { formatPlatform } from '../oci/platform.ts';
import { type Descriptor, MEDIA_TYPES } from '../oci/types.ts';
import type { WindowsPlatform } from '../platforms.ts';

/** Upstream's base (build/pause/Makefile, BASE.windows), pinned as upstream pins it. */
export const DEFAULT_WINDOWS_BASE = 'mcr.microsoft.com/oss/v2/kubernetes/windows-pause-image-base:v0.4.1@sha256:ba474944e82cac8913e0a402c7727c35d469977026b636bf460f0d52112c4e4f';

/** A manifest or config larger than this is not a base image. */
const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

export interface FetchedManifest {
  readonly bytes: Uint8Array;
  readonly mediaType: string;
  readonly digest: string;
}

/** Where base images are read from. */
export interface ImageSource {
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

const FOREIGN_TYPES = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

/** A layer that registries do not hold: clients fetch it from its urls. */
export function isForeignLayer(layer: { mediaType: string }): boolean {
  return FOREIGN_TYPES.has(layer.mediaType);
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length > MAX_DOCUMENT_BYTES) throw new PauseBuildError(`${what} is ${bytes.length} bytes, more than a base image document can be`);
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new PauseBuildError(`${what} is not valid JSON (${(e as Error).message})`);
  }
}

const INDEX_TYPES = new Set<string>([MEDIA_TYPES.index, MEDIA_TYPES.dockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MEDIA_TYPES.manifest, MEDIA_TYPES.dockerManifest]);

function mediaTypeOf(m: FetchedManifest, json: Record<string, unknown>): string {
  return typeof json.mediaType === 'string' ? json.mediaType : m.mediaType.split(';')[0]!.trim();
}

interface Entry {
  readonly digest: string;
  readonly platform: Record<string, unknown>;
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
export async function readWindowsBases(source: ImageSource, reference: string, platform: WindowsPlatform, filters: readonly string[] = []): Promise<WindowsBase[]> {
  const name = source.name;
  const top = await guarded(name, 'manifest', () => source.manifest(reference));
  const topJson = parseJson(top.bytes, `${name}: manifest`);
  const topType = mediaTypeOf(top, topJson);
  let entries: Entry[];
  if (INDEX_TYPES.has(topType)) {
    const manifests = Array.isArray(topJson.manifests) ? (topJson.manifests as Record<string, unknown>[]) : [];
    const all = manifests.map((m) => ({ digest: String(m.digest ?? ''), platform: (m.platform ?? {}) as Record<string, unknown> }));
    entries = all.filter((e) => e.platform.os === 'windows' && e.platform.architecture === platform.arch);
    if (entries.length === 0) {
      const listed = all.map((e) => formatPlatform({ os: String(e.platform.os ?? '?'), architecture: String(e.platform.architecture ?? '?') })).join(', ') || 'nothing';
      throw new PauseBuildError(`${name} is not a Windows base image: its index lists ${listed}, no windows/${platform.arch}`, { hint: HINT_NOT_WINDOWS });
    }
    for (const e of entries) {
      if (typeof e.platform['os.version'] !== 'string' || e.platform['os.version'] === '') {
        throw new PauseBuildError(`${name}: its windows/${platform.arch} entry ${shortDigest(e.digest)} has no os.version`, {
          hint: 'each Windows entry of the base index must give its Windows build in platform.os.version (e.g. 10.0.20348.2700)',
        });
      }
    }
  } else if (MANIFEST_TYPES.has(topType)) {
    entries = [{ digest: top.digest, platform: {} }];
  } else {
    throw new PauseBuildError(`${name} is neither an image index nor an image manifest (media type ${topType || 'none'})`, { hint: HINT_NOT_WINDOWS });
  }

  const bases: WindowsBase[] = [];
  for (const entry of entries) {
    const manifest = entry.digest === top.digest ? top : await guarded(name, `manifest ${shortDigest(entry.digest)}`, () => source.manifest(entry.digest));
    if (sha256Digest(manifest.bytes) !== entry.digest) throw new PauseBuildError(`${name}: manifest ${shortDigest(entry.digest)} does not match its digest`);
    const json = parseJson(manifest.bytes, `${name}: manifest ${shortDigest(entry.digest)}`);
    const type = mediaTypeOf(manifest, json);
    if (!MANIFEST_TYPES.has(type)) throw new PauseBuildError(`${name}: entry ${shortDigest(entry.digest)} is ${type || 'of no media type'}, not an image manifest`, { hint: HINT_NOT_WINDOWS });
    const configDesc = json.config as Descriptor | undefined;
    const layers = (Array.isArray(json.layers) ? json.layers : []) as LayerDescriptorJson[];
    if (!configDesc || typeof configDesc.digest !== 'string') throw new PauseBuildError(`${name}: manifest ${shortDigest(entry.digest)} has no config`);
    const configBytes = await guarded(name, `config ${shortDigest(configDesc.digest)}`, () => source.blob(configDesc));
    const config = parseJson(configBytes, `${name}: config ${shortDigest(configDesc.digest)}`);
    if (config.os !== 'windows' || (config.architecture !== undefined && config.architecture !== platform.arch)) {
      throw new PauseBuildError(`${name} is not a Windows base image: ${shortDigest(entry.digest)} is ${String(config.os)}/${String(config.architecture)}`, { hint: HINT_NOT_WINDOWS });
    }
    const osVersion = (entry.platform['os.version'] as string | undefined) ?? (typeof config['os.version'] === 'string' ? config['os.version'] : undefined);
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
