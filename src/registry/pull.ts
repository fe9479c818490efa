/**
 * Reading a pushed image back as a BuiltImage: the manifest by digest (through the one
 * manifest model), its config, and its layers, each digest-checked by the client.
 * `index --from` joins such images.
 */
import { PauseBuildError } from '../errors.ts';
import { IMAGE_TYPES, parseManifest } from '../oci/manifest.ts';
import { parsePlatformField } from '../oci/manifest.ts';
import type { BuiltImage } from '../oci/types.ts';
import { PLATFORMS, archOfPlatform } from '../platforms.ts';
import type { CallOptions, RegistryClient } from './client.ts';
import { type Repository, formatRepository } from './reference.ts';

export async function fetchImage(client: RegistryClient, repo: Repository, digest: string, opts: CallOptions = {}): Promise<BuiltImage> {
  const where = `${formatRepository(repo)}@${digest}`;
  const manifest = await client.getManifest(repo, digest, opts);
  const parsed = parseManifest(manifest, where);
  if (parsed.kind !== 'image' || !IMAGE_TYPES.includes(parsed.mediaType)) {
    throw new PauseBuildError(`${where} is a ${parsed.mediaType}, not a single-platform image manifest`, {
      hint: 'give the per-arch digests printed by `pause-build publish --arch ARCH --by-digest`',
    });
  }
  const configBytes = await client.readBlob(repo, parsed.config.digest, { ...opts, size: parsed.config.size });
  let config: unknown;
  try {
    config = JSON.parse(Buffer.from(configBytes).toString('utf8'));
  } catch {
    throw new PauseBuildError(`the config of ${where} is not JSON`, { hint: 'the image is broken; publish it again' });
  }
  const platform = parsePlatformField(config);
  const arch = archOfPlatform(platform);
  if (!platform || !arch) {
    const c = (config ?? {}) as { os?: unknown; architecture?: unknown; variant?: unknown };
    throw new PauseBuildError(`${where} is for ${String(c.os)}/${String(c.architecture)}${typeof c.variant === 'string' ? `/${c.variant}` : ''}, which pause-build does not build`, {
      hint: `supported: ${PLATFORMS.map((p) => p.arch).join(', ')}`,
    });
  }
  const layers = await Promise.all(parsed.layers.map(async (l) => ({ descriptor: l, bytes: await client.readBlob(repo, l.digest, { ...opts, size: l.size }) })));
  return {
    arch,
    manifest: { descriptor: { mediaType: parsed.mediaType, digest: manifest.digest, size: manifest.size, platform }, bytes: manifest.bytes },
    config: { descriptor: parsed.config, bytes: configBytes },
    layers,
  };
}
