/**
 * Reading a pushed image back as a BuiltImage: the manifest by digest, its config, and
 * its layers, each digest-checked by the client. `index --from` joins such images.
 */
import { PauseBuildError } from '../errors.ts';
import type { BuiltImage, Descriptor, OciPlatform } from '../oci/types.ts';
import { MEDIA_TYPES } from '../oci/types.ts';
import { PLATFORMS } from '../platforms.ts';
import type { CallOptions, RegistryClient } from './client.ts';
import { type Repository, formatRepository } from './reference.ts';

interface ManifestJson {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
}

interface ConfigJson {
  os?: string;
  architecture?: string;
  variant?: string;
}

/** The arch-table row whose OCI platform the config names. */
export function archOf(config: ConfigJson): string | undefined {
  return PLATFORMS.find((p) => p.oci.os === config.os && p.oci.architecture === config.architecture && (p.oci.variant ?? '') === (config.variant ?? p.oci.variant ?? ''))?.arch;
}

export async function fetchImage(client: RegistryClient, repo: Repository, digest: string, opts: CallOptions = {}): Promise<BuiltImage> {
  const where = `${formatRepository(repo)}@${digest}`;
  const manifest = await client.getManifest(repo, digest, opts);
  if (manifest.mediaType !== MEDIA_TYPES.manifest && manifest.mediaType !== MEDIA_TYPES.dockerManifest) {
    throw new PauseBuildError(`${where} is a ${manifest.mediaType}, not a single-platform image manifest`, {
      hint: 'give the per-arch digests printed by `pause-build publish --arch ARCH --by-digest`',
    });
  }
  const doc = JSON.parse(Buffer.from(manifest.bytes).toString('utf8')) as ManifestJson;
  if (!doc.config || !Array.isArray(doc.layers)) throw new PauseBuildError(`${where} is not a valid image manifest (no config or layers)`);
  const configBytes = await client.readBlob(repo, doc.config.digest, opts);
  const config = JSON.parse(Buffer.from(configBytes).toString('utf8')) as ConfigJson;
  const arch = archOf(config);
  if (!arch) {
    throw new PauseBuildError(`${where} is for ${config.os}/${config.architecture}${config.variant ? `/${config.variant}` : ''}, which pause-build does not build`, {
      hint: `supported: ${PLATFORMS.map((p) => p.arch).join(', ')}`,
    });
  }
  const platform: OciPlatform = { os: config.os!, architecture: config.architecture!, ...(config.variant ? { variant: config.variant } : {}) };
  const layers = await Promise.all(doc.layers.map(async (l) => ({ descriptor: l, bytes: await client.readBlob(repo, l.digest, opts) })));
  return {
    arch,
    manifest: { descriptor: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, platform }, bytes: manifest.bytes },
    config: { descriptor: doc.config, bytes: configBytes },
    layers,
  };
}
