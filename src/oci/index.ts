/**
 * The multi-arch image index: one manifest per platform in arch-table order (Windows
 * images, named by no arch row, after the Linux ones in the order given), with the
 * full platform (os, architecture, variant) and the OCI annotations that say which
 * version, revision and source it was built from, and when.
 */
import { PauseBuildError } from '../errors.ts';
import { descriptorJson, jsonBlob } from './blob.ts';
import { rfc3339 } from './image.ts';
import { type BuiltImage, type BuiltIndex, MEDIA_TYPES } from './types.ts';

export const ANNOTATIONS = {
  version: 'org.opencontainers.image.version',
  revision: 'org.opencontainers.image.revision',
  source: 'org.opencontainers.image.source',
  created: 'org.opencontainers.image.created',
} as const;

export interface IndexInfo {
  /** Version tag, e.g. 3.10. */
  readonly version: string;
  readonly revision: string;
  /** URL of the source repository. */
  readonly source: string;
  /** SOURCE_DATE_EPOCH. */
  readonly epoch: number;
}

export function buildIndex(images: readonly BuiltImage[], info: IndexInfo): BuiltIndex {
  if (images.length === 0) throw new PauseBuildError('an image index needs at least one image');
  // Listed as given: callers put them in arch-table order (platforms.ts inTableOrder).
  const ordered = [...images];
  const seen = new Set<string>();
  for (const image of ordered) {
    const platform = image.manifest.descriptor.platform;
    if (!platform) throw new PauseBuildError(`the ${image.arch} manifest has no platform`);
    const key = `${platform.os}/${platform.architecture}/${platform.variant ?? ''}${platform['os.version'] ? `:${platform['os.version']}` : ''}`;
    if (seen.has(key)) throw new PauseBuildError(`two images for platform ${key.replace(/\/$/, '').replace('/:', ':')}`);
    seen.add(key);
  }
  const index = jsonBlob(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: ordered.map((image) => descriptorJson(image.manifest.descriptor)),
      annotations: {
        [ANNOTATIONS.created]: rfc3339(info.epoch),
        [ANNOTATIONS.revision]: info.revision,
        [ANNOTATIONS.source]: info.source,
        [ANNOTATIONS.version]: info.version,
      },
    },
    { mediaType: MEDIA_TYPES.index },
  );
  return { index, images: ordered };
}
