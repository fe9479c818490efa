/**
 * A synthetic Windows base image pushed into a real registry, shaped like the ones
 * mcr.microsoft.com serves: a Docker manifest list with one windows/amd64 entry per
 * os.version, each image of Windows-format layers (Files/…, Hives/) plus one foreign
 * layer whose bytes are nowhere in the registry, only named by its urls.
 */
import { RegistryClient } from '../../src/registry/client.ts';
import { blobOf, canonicalJson, jsonBlob, sha256Digest } from '../../src/oci/blob.ts';
import { gzip, writeTar } from '../../src/oci/tar.ts';
import { MEDIA_TYPES } from '../../src/oci/types.ts';

export const WINDOWS_VERSIONS = ['10.0.17763.6893', '10.0.20348.3207', '10.0.26100.3194'] as const;
export const FOREIGN_MEDIA_TYPE = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

export interface SyntheticBase {
  readonly reference: string;
  readonly indexDigest: string;
  /** Per os.version: its manifest digest, and the digests of its layers. */
  readonly images: { osVersion: string; digest: string; foreign: string; layers: string[] }[];
}

function windowsTar(files: Record<string, string>): Uint8Array {
  const entries = [
    { path: 'Hives', type: 'dir' as const, mode: 0o755, uid: 0, gid: 0 },
    { path: 'Files', type: 'dir' as const, mode: 0o755, uid: 0, gid: 0 },
    ...Object.entries(files).map(([p, c]) => ({ path: `Files/${p}`, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, content: new TextEncoder().encode(c) })),
  ];
  return writeTar(entries, 1_700_000_000);
}

export interface BaseOptions {
  /** Leave os.version out of the index entries and configs. */
  readonly noOsVersion?: boolean;
  /** Make it a Linux image instead. */
  readonly linux?: boolean;
}

export async function pushSyntheticBase(host: string, repository: string, tag: string, opts: BaseOptions = {}): Promise<SyntheticBase> {
  const client = new RegistryClient({ insecure: [host] });
  const repo = { registry: host, repository };
  try {
    const images: SyntheticBase['images'] = [];
    const entries: Record<string, unknown>[] = [];
    for (const osVersion of WINDOWS_VERSIONS) {
      // The foreign layer: its bytes stay "at Microsoft"; only its descriptor is pushed.
      const foreignTar = windowsTar({ 'Windows/System32/ntdll.dll': `base ${osVersion}` });
      const foreignGz = gzip(foreignTar);
      const foreign = { mediaType: FOREIGN_MEDIA_TYPE, digest: sha256Digest(foreignGz), size: foreignGz.length, urls: [`https://mcr.microsoft.com/v2/windows/nanoserver/blobs/${sha256Digest(foreignGz)}`] };
      const updateTar = windowsTar({ 'Windows/System32/update.txt': `update for ${osVersion}`, 'License.txt': 'base' });
      const update = blobOf(gzip(updateTar), { mediaType: MEDIA_TYPES.dockerLayerGzip });
      const config = jsonBlob(
        {
          architecture: 'amd64',
          os: opts.linux ? 'linux' : 'windows',
          ...(!opts.noOsVersion && !opts.linux && { 'os.version': osVersion }),
          created: '2025-01-01T00:00:00Z',
          config: { Cmd: ['c:\\windows\\system32\\cmd.exe'], Env: ['PATH=C:\\Windows\\system32;C:\\Windows'], User: 'ContainerUser' },
          rootfs: { type: 'layers', diff_ids: [sha256Digest(foreignTar), sha256Digest(updateTar)] },
          history: [{ created: '2025-01-01T00:00:00Z', created_by: 'Apply image 10.0' }, { created: '2025-01-01T00:00:00Z', created_by: 'Install update' }],
        },
        { mediaType: MEDIA_TYPES.dockerConfig },
      );
      await client.uploadBlob(repo, update);
      await client.uploadBlob(repo, config);
      const manifest = new TextEncoder().encode(canonicalJson({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.dockerManifest,
        config: { mediaType: config.descriptor.mediaType, digest: config.descriptor.digest, size: config.descriptor.size },
        layers: [foreign, { mediaType: update.descriptor.mediaType, digest: update.descriptor.digest, size: update.descriptor.size }],
      }));
      const digest = await client.putManifest(repo, sha256Digest(manifest), manifest, MEDIA_TYPES.dockerManifest);
      images.push({ osVersion, digest, foreign: foreign.digest, layers: [foreign.digest, update.descriptor.digest] });
      entries.push({
        mediaType: MEDIA_TYPES.dockerManifest, digest, size: manifest.length,
        platform: { architecture: 'amd64', os: opts.linux ? 'linux' : 'windows', ...(!opts.noOsVersion && !opts.linux && { 'os.version': osVersion }) },
      });
      if (opts.linux) break;
    }
    const index = new TextEncoder().encode(canonicalJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifestList, manifests: entries }));
    const indexDigest = await client.putManifest(repo, tag, index, MEDIA_TYPES.dockerManifestList);
    return { reference: `${host}/${repository}:${tag}`, indexDigest, images };
  } finally {
    await client.close();
  }
}
