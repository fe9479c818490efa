/**
 * OCI 1.1 artifacts that refer to an image: a manifest with a `subject` (the image or
 * index it is about) and an `artifactType`, its config the empty descriptor, its one layer
 * the document. And the referrers fallback: on a registry without the referrers API, an
 * index under the tag `sha256-<hex>` lists what refers to `sha256:<hex>`. That index is
 * shared with every other tool (cosign writes there too), so it is only ever merged.
 */
import { PauseBuildError } from '../errors.ts';
import { blobOf, descriptorJson, jsonBlob } from './blob.ts';
import { isDigest } from './manifest.ts';
import { type Blob, type Descriptor, MEDIA_TYPES } from './types.ts';

export const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
export const EMPTY_CONFIG: Blob = blobOf(new TextEncoder().encode('{}'), { mediaType: EMPTY_MEDIA_TYPE });

/** An artifact manifest and the blobs it names (config, then the layer). */
export interface Artifact {
  readonly manifest: Blob;
  readonly blobs: readonly Blob[];
  readonly artifactType: string;
  /** The digest of the manifest it refers to. */
  readonly subject: string;
}

export interface ArtifactSpec {
  readonly subject: Descriptor;
  readonly artifactType: string;
  /** The document, with its media type. */
  readonly layer: Blob;
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * cosign 3 also writes the artifact type into the config descriptor; bundles are written
   * as cosign writes them, so that the two tools produce the same artifact for the same bundle.
   */
  readonly artifactTypeInConfig?: boolean;
}

function subjectJson(d: Descriptor): Record<string, unknown> {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

export function buildArtifact(spec: ArtifactSpec): Artifact {
  const config = { ...descriptorJson(EMPTY_CONFIG.descriptor), ...(spec.artifactTypeInConfig ? { artifactType: spec.artifactType } : {}) };
  const manifest = jsonBlob(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      artifactType: spec.artifactType,
      config,
      layers: [descriptorJson(spec.layer.descriptor)],
      subject: subjectJson(spec.subject),
      ...(spec.annotations && Object.keys(spec.annotations).length > 0 ? { annotations: spec.annotations } : {}),
    },
    { mediaType: MEDIA_TYPES.manifest },
  );
  return { manifest, blobs: [EMPTY_CONFIG, spec.layer], artifactType: spec.artifactType, subject: spec.subject.digest };
}

/** `sha256-<hex>`: the referrers fallback tag of a digest. */
export function fallbackTag(digest: string): string {
  if (!isDigest(digest)) throw new PauseBuildError(`invalid digest "${digest}"`);
  return digest.replace(':', '-');
}

/** The entry of a referrer in a referrers list: its descriptor, artifactType and annotations. */
export function referrerDescriptor(artifact: Pick<Artifact, 'manifest' | 'artifactType'>, annotations?: Readonly<Record<string, string>>): Record<string, unknown> {
  const { mediaType, digest, size } = artifact.manifest.descriptor;
  return { mediaType, digest, size, artifactType: artifact.artifactType, ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The fallback index after adding `entries` to `existing` (its bytes, or undefined when the
 * tag does not exist): every entry already there is kept as it was, in its order, and an
 * entry whose digest is already listed is not added again. `changed` is false when nothing
 * was added, so the tag need not be written.
 */
export function mergeFallbackIndex(existing: Uint8Array | undefined, entries: readonly Record<string, unknown>[]): { index: Blob; changed: boolean } {
  let top: Record<string, unknown> = { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] };
  if (existing !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(existing).toString('utf8'));
    } catch {
      parsed = undefined;
    }
    if (!isRecord(parsed) || !Array.isArray(parsed.manifests)) {
      throw new PauseBuildError('the referrers fallback tag holds something that is not an image index', { hint: 'inspect the sha256-<hex> tag; pause-build will not overwrite it' });
    }
    top = parsed;
  }
  const manifests = [...(top.manifests as unknown[])];
  const listed = new Set(manifests.flatMap((m) => (isRecord(m) && typeof m.digest === 'string' ? [m.digest] : [])));
  let changed = existing === undefined && entries.length > 0;
  for (const e of entries) {
    if (listed.has(e.digest as string)) continue;
    listed.add(e.digest as string);
    manifests.push(e);
    changed = true;
  }
  const index = { ...top, schemaVersion: 2, mediaType: (top.mediaType as string | undefined) ?? MEDIA_TYPES.index, manifests };
  // An unchanged index keeps its exact bytes (and digest): other tools' formatting is theirs.
  if (!changed && existing !== undefined) return { index: blobOf(existing, { mediaType: MEDIA_TYPES.index }), changed: false };
  return { index: jsonBlob(index, { mediaType: MEDIA_TYPES.index }), changed };
}
