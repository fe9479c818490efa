/**
 * The one manifest model: the digest and tag grammar, descriptors, media types, and the
 * parse + validate every reader (registry, layout, built index) goes through. A manifest
 * is hostile input until its digest and shape say otherwise: its size is capped before it
 * is buffered (containers/image's limit), every descriptor is checked, and the result
 * keeps the exact bytes so that digests survive a copy.
 *
 * OCI 1.1 fields (`subject`, `artifactType`) are kept in the parsed form so that
 * referrers (signatures, SBOMs) can be carried as ordinary manifests.
 */
import { PauseBuildError } from '../errors.ts';
import { shortDigest } from './blob.ts';
import { type Descriptor, MEDIA_TYPES, type OciPlatform } from './types.ts';

export { MEDIA_TYPES };

/** containers/image's maxManifestBodySize: a manifest larger than this is refused unread. */
export const MANIFEST_LIMIT = 4 * 1024 * 1024;

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
/** The distribution spec's tag grammar; `oci:DIR:TAG` takes the same. */
export const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export const INDEX_TYPES: readonly string[] = [MEDIA_TYPES.index, MEDIA_TYPES.dockerManifestList];
export const IMAGE_TYPES: readonly string[] = [MEDIA_TYPES.manifest, MEDIA_TYPES.dockerManifest];
export const MANIFEST_TYPES: readonly string[] = [...INDEX_TYPES, ...IMAGE_TYPES];
const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1\+(prettyjws|json)$/;

/** Only sha256 digests in their canonical lower-case form; anything else is refused before it names a file. */
export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

export function isTag(value: unknown): value is string {
  return typeof value === 'string' && TAG_RE.test(value);
}

/** A manifest or index exactly as stored. */
export interface ManifestDoc {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly bytes: Uint8Array;
}

interface ParsedCommon {
  readonly mediaType: string;
  /** OCI 1.1: the manifest this one is about (a signature's image). */
  readonly subject?: Descriptor;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** The JSON object, fields as stored. */
  readonly body: Readonly<Record<string, unknown>>;
}

export interface ParsedIndex extends ParsedCommon {
  readonly kind: 'index';
  readonly manifests: readonly Descriptor[];
}

export interface ParsedImage extends ParsedCommon {
  readonly kind: 'image';
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

export type ParsedManifest = ParsedIndex | ParsedImage;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringRecord(value: unknown): Record<string, string> | undefined {
  if (!isRecord(value)) return undefined;
  const entries = Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string');
  return entries.length ? Object.fromEntries(entries) : undefined;
}

export function parsePlatformField(p: unknown): OciPlatform | undefined {
  if (!isRecord(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string') return undefined;
  return {
    os: p.os,
    architecture: p.architecture,
    ...(typeof p.variant === 'string' && p.variant ? { variant: p.variant } : {}),
    // Windows entries: one per Windows Server build, told apart only by this.
    ...(typeof p['os.version'] === 'string' && p['os.version'] ? { 'os.version': p['os.version'] } : {}),
  };
}

/** A descriptor checked field by field; `where` names it in the error. */
export function parseDescriptor(value: unknown, where: string, hint = 'only sha256 content with a media type and size can be read'): Descriptor {
  if (!isRecord(value) || typeof value.mediaType !== 'string' || !isDigest(value.digest)
    || typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw new PauseBuildError(`${where} has an invalid descriptor`, { hint });
  }
  const platform = parsePlatformField(value.platform);
  const annotations = stringRecord(value.annotations);
  const urls = Array.isArray(value.urls) ? value.urls.filter((u): u is string => typeof u === 'string') : [];
  return {
    mediaType: value.mediaType,
    digest: value.digest,
    size: value.size,
    ...(platform ? { platform } : {}),
    ...(annotations || urls.length ? { annotations: { ...annotations, ...(urls.length ? { urls: urls.join(' ') } : {}) } } : {}),
  };
}

/** The `mediaType` field of a JSON document, if it has one. */
export function declaredMediaType(bytes: Uint8Array): string | undefined {
  try {
    const body = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    return isRecord(body) && typeof body.mediaType === 'string' && body.mediaType ? body.mediaType : undefined;
  } catch {
    return undefined;
  }
}

/** Refuses a size above the cap, before anything is read. */
export function checkManifestSize(size: number, where: string): void {
  if (size > MANIFEST_LIMIT) {
    throw new PauseBuildError(`${where} is ${size} bytes, above the ${MANIFEST_LIMIT / 1024 / 1024} MiB limit for a manifest`, {
      hint: 'the source does not hold an image manifest there; check the reference',
    });
  }
}

/**
 * Parses and validates a manifest or index. `mediaType` is the one the document declares
 * or its transport said; the body decides when neither is known.
 */
export function parseManifest(doc: ManifestDoc, where: string): ParsedManifest {
  checkManifestSize(doc.bytes.byteLength, where);
  const mediaType = declaredMediaType(doc.bytes) ?? doc.mediaType;
  if (SCHEMA1.test(mediaType)) {
    throw new PauseBuildError(`${where} is a Docker schema 1 manifest`, { hint: 'schema 1 cannot be copied with its digest; convert the image to schema 2 or OCI first' });
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(doc.bytes).toString('utf8'));
  } catch {
    throw new PauseBuildError(`${where} (${shortDigest(doc.digest)}) is not JSON`, { hint: 'the source holds something other than an image manifest' });
  }
  if (!isRecord(body)) throw new PauseBuildError(`${where} (${shortDigest(doc.digest)}) is not a manifest`, { hint: 'the source holds something other than an image manifest' });
  const common = {
    mediaType,
    body,
    ...(body.subject !== undefined ? { subject: parseDescriptor(body.subject, `${where} subject`) } : {}),
    ...(typeof body.artifactType === 'string' ? { artifactType: body.artifactType } : {}),
    ...(stringRecord(body.annotations) ? { annotations: stringRecord(body.annotations)! } : {}),
  };
  if (INDEX_TYPES.includes(mediaType) || (!IMAGE_TYPES.includes(mediaType) && Array.isArray(body.manifests))) {
    if (!Array.isArray(body.manifests)) throw new PauseBuildError(`${where} (${shortDigest(doc.digest)}) is an index without manifests`, { hint: 'the source index is broken' });
    return { kind: 'index', ...common, manifests: body.manifests.map((m, i) => parseDescriptor(m, `${where} entry ${i}`)) };
  }
  if (!isRecord(body.config) || !Array.isArray(body.layers)) {
    throw new PauseBuildError(`${where} (${shortDigest(doc.digest)}) is neither an image index nor an image manifest (${mediaType || 'no media type'})`, { hint: 'only OCI and Docker v2 images can be copied' });
  }
  return {
    kind: 'image',
    ...common,
    config: parseDescriptor(body.config, `${where} config`),
    layers: body.layers.map((l, i) => parseDescriptor(l, `${where} layer ${i}`)),
  };
}

/** A media type of layers a registry is not meant to store (Docker's foreign, OCI's non-distributable). */
export function isForeignMediaType(mediaType: string): boolean {
  return /foreign|nondistributable/.test(mediaType);
}

/** Layers a registry is not meant to store (Windows base layers): referenced by URL, left out as crane does. */
export function isForeign(d: Descriptor): boolean {
  return isForeignMediaType(d.mediaType) && d.annotations?.urls !== undefined;
}
