/**
 * Small but valid image sets for registry tests: each arch gets a one-file tar.gz layer,
 * a config naming it, and a manifest; the index lists them with platforms. Digests are
 * real sha256 of the exact bytes, so registries and skopeo accept them. A `salt` makes
 * different content (and so different digests) from the same arches.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'fflate';
import { type Blob, type BuiltImage, type BuiltIndex, MEDIA_TYPES } from '../../src/oci/types.ts';
import { platformFor } from '../../src/platforms.ts';

export const FIVE_ARCHES = ['amd64', 'arm', 'arm64', 'ppc64le', 's390x'] as const;

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function blob(mediaType: string, bytes: Uint8Array, extra: Partial<Blob['descriptor']> = {}): Blob {
  return { descriptor: { mediaType, digest: sha256(bytes), size: bytes.byteLength, ...extra }, bytes };
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** A ustar archive holding one regular file. */
export function tarOf(name: string, content: Uint8Array): Uint8Array {
  const header = new Uint8Array(512);
  const put = (offset: number, text: string) => header.set(new TextEncoder().encode(text), offset);
  const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;
  put(0, name);
  put(100, octal(0o755, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(content.byteLength, 12));
  put(136, octal(0, 12));
  put(148, '        ');
  put(156, '0');
  put(257, 'ustar\u000000');
  let sum = 0;
  for (const b of header) sum += b;
  put(148, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padded = Math.ceil(content.byteLength / 512) * 512;
  const out = new Uint8Array(512 + padded + 1024);
  out.set(header, 0);
  out.set(content, 512);
  return out;
}

export function makeImage(arch: string, salt = ''): BuiltImage {
  const platform = platformFor(arch).oci;
  const tar = tarOf('pause', new TextEncoder().encode(`pause for ${arch}${salt ? ` (${salt})` : ''}\n`));
  const layer = blob(MEDIA_TYPES.layerGzip, gzipSync(tar, { mtime: 0, level: 9 }));
  const config = blob(MEDIA_TYPES.config, json({
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Entrypoint: ['/pause'], User: '65535:65535' },
    rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
  }));
  const manifest = blob(MEDIA_TYPES.manifest, json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: config.descriptor,
    layers: [layer.descriptor],
  }), { platform });
  return { arch, manifest, config, layers: [layer] };
}

/** An index of tiny images, one per arch (default: the five default arches). */
export function makeIndex(arches: readonly string[] = FIVE_ARCHES, salt = ''): BuiltIndex {
  const images = arches.map((a) => makeImage(a, salt));
  const index = blob(MEDIA_TYPES.index, json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: images.map((i) => ({ mediaType: i.manifest.descriptor.mediaType, digest: i.manifest.descriptor.digest, size: i.manifest.descriptor.size, platform: i.manifest.descriptor.platform })),
  }));
  return { index, images };
}
