/**
 * One arch's image from a Dockerfile plan and the files it adds: layers, the OCI image
 * config (platform, created, the Dockerfile's settings, diff_ids, one history entry per
 * instruction) and the manifest. Pure and deterministic: the same plan, files, platform
 * and epoch always give the same bytes, hence the same digests.
 */
import { PauseBuildError } from '../errors.ts';
import type { Platform } from '../platforms.ts';
import { descriptorJson, jsonBlob } from './blob.ts';
import type { DockerfilePlan } from './dockerfile.ts';
import { type Layer, type LayerFile, buildLayer, layerOf, layerTar } from './layer.ts';
import { type BuiltImage, MEDIA_TYPES, type OciPlatform } from './types.ts';

/** A file of the build context, as read by src/oci/context.ts. */
export interface ContextFile {
  readonly bytes: Uint8Array;
  /** Permission bits of the source file. */
  readonly mode: number;
}

export interface ImageInput {
  readonly platform: Platform;
  readonly plan: DockerfilePlan;
  /** Keyed by PlannedFile.source. */
  readonly files: ReadonlyMap<string, ContextFile>;
  /** SOURCE_DATE_EPOCH: the config's `created`, every history entry and every file's mtime. */
  readonly epoch: number;
}

/** RFC 3339 in UTC, whole seconds, as Go writes time.Time in JSON: 2024-05-01T12:00:00Z. */
export function rfc3339(epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new PauseBuildError(`invalid timestamp ${epoch}`);
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function ociPlatform(platform: Pick<Platform, 'oci'>): OciPlatform {
  const { os, architecture, variant } = platform.oci;
  return variant ? { architecture, os, variant } : { architecture, os };
}

/** Files keep an executable source's 0755, others get 0644, unless --chmod says otherwise. */
export function fileMode(planned: number | undefined, source: number): number {
  if (planned !== undefined) return planned;
  return (source & 0o111) !== 0 ? 0o755 : 0o644;
}

/** The files of each layer (one per ADD or COPY), read from input.files. */
function layerFiles(input: ImageInput): LayerFile[][] {
  const layers: LayerFile[][] = [];
  for (const step of input.plan.steps) {
    if (!step.layer) continue;
    layers.push(step.layer.files.map((f) => {
      const file = input.files.get(f.source);
      if (!file) throw new PauseBuildError(`${input.plan.file}:${step.line}: ${f.source} was not read from the build context`);
      return { dest: f.dest, content: file.bytes, mode: fileMode(f.mode, file.mode), uid: f.uid, gid: f.gid };
    }));
  }
  return layers;
}

/** The uncompressed tar of each layer, in order: what gets compressed. */
export function layerTars(input: ImageInput): Uint8Array[] {
  return layerFiles(input).map((files) => layerTar(files, input.epoch));
}

/**
 * The config holds only what the Dockerfile sets: unlike BuildKit and buildah, no default
 * PATH in Env and no WorkingDir "/" for a scratch image (nothing in it has a use for them).
 */
export function imageConfig(input: ImageInput, diffIds: readonly string[]): Record<string, unknown> {
  const created = rfc3339(input.epoch);
  return {
    ...ociPlatform(input.platform),
    created,
    config: input.plan.config,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: input.plan.steps.map((s) => ({ created, created_by: s.createdBy, ...(!s.layer && { empty_layer: true }) })),
  };
}

export function buildImage(input: ImageInput): BuiltImage {
  return imageOf(input, layerFiles(input).map((files) => buildLayer(files, input.epoch)));
}

/**
 * As buildImage, with the gzip of each layer tar from `compress` (which must give what
 * gzip() gives: a cache, a worker thread). The digests are the same either way.
 */
export async function buildImageWith(input: ImageInput, compress: (tar: Uint8Array) => Promise<Uint8Array>): Promise<BuiltImage> {
  const tars = layerTars(input);
  const gzipped = await Promise.all(tars.map(compress));
  return imageOf(input, tars.map((tar, i) => layerOf(tar, gzipped[i]!)));
}

function imageOf(input: ImageInput, layers: readonly Layer[]): BuiltImage {
  const config = jsonBlob(
    imageConfig(
      input,
      layers.map((l) => l.diffId),
    ),
    { mediaType: MEDIA_TYPES.config },
  );
  const manifest = jsonBlob(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: descriptorJson(config.descriptor),
      layers: layers.map((l) => descriptorJson(l.blob.descriptor)),
    },
    { mediaType: MEDIA_TYPES.manifest, platform: ociPlatform(input.platform) },
  );
  return { arch: input.platform.arch, manifest, config, layers: layers.map((l) => l.blob) };
}

/** The diff_ids a config lists (to show or compare), read back from its bytes. */
export function diffIdsOf(image: BuiltImage): string[] {
  const config = JSON.parse(Buffer.from(image.config.bytes).toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
  return config.rootfs?.diff_ids ?? [];
}
