/**
 * One Windows image per base version: the base manifest's layers as they are (foreign
 * ones with their urls), then one layer in the Windows layer format with every file the
 * Dockerfile adds, a config that extends the base's (os.version, diff_ids, history) with
 * the Dockerfile's settings, and a manifest of the base's media-type family (a Docker
 * base gets a Docker manifest, so that registries accept its foreign layers). Pure and
 * deterministic, like the Linux images.
 */
import { PauseBuildError } from '../errors.ts';
import type { WindowsPlatform } from '../platforms.ts';
import { type BaseSource, type WindowsBase, isForeignLayer } from '../windows/base.ts';
import { descriptorJson, jsonBlob } from './blob.ts';
import type { DockerfilePlan } from './dockerfile.ts';
import { type ContextFile, fileMode, rfc3339 } from './image.ts';
import { type Layer, type LayerFile, layerOf } from './layer.ts';
import { type BuiltImage, MEDIA_TYPES, type OciPlatform } from './types.ts';
import { windowsLayerTar } from './windows-layer.ts';

export interface WindowsImageInput {
  readonly platform: WindowsPlatform;
  readonly base: WindowsBase;
  readonly plan: DockerfilePlan;
  readonly files: ReadonlyMap<string, ContextFile>;
  readonly epoch: number;
}

/** `windows-amd64-10.0.20348.2700`: names the image in results and per-version tags. */
export function windowsImageName(platform: WindowsPlatform, osVersion: string): string {
  return `${platform.name}-${osVersion}`;
}

export function windowsPlatformOf(platform: WindowsPlatform, osVersion: string): OciPlatform {
  return { architecture: platform.oci.architecture, os: 'windows', 'os.version': osVersion };
}

/** Every file the Dockerfile adds, in one layer (the later of two same paths wins, as in Docker). */
export function windowsLayerFiles(input: Pick<WindowsImageInput, 'plan' | 'files'>): LayerFile[] {
  const byDest = new Map<string, LayerFile>();
  for (const step of input.plan.steps) {
    for (const f of step.layer?.files ?? []) {
      const file = input.files.get(f.source);
      if (!file) throw new PauseBuildError(`${input.plan.file}:${step.line}: ${f.source} was not read from the build context`);
      byDest.set(f.dest, { dest: f.dest, content: file.bytes, mode: fileMode(f.mode, file.mode), uid: f.uid, gid: f.gid });
    }
  }
  return [...byDest.values()];
}

export function windowsImageTar(input: Pick<WindowsImageInput, 'plan' | 'files' | 'epoch'>): Uint8Array | undefined {
  const files = windowsLayerFiles(input);
  return files.length === 0 ? undefined : windowsLayerTar(files, input.epoch);
}

function isDocker(base: WindowsBase): boolean {
  const json = JSON.parse(Buffer.from(base.manifest.bytes).toString('utf8')) as { mediaType?: string };
  return (json.mediaType ?? base.manifest.mediaType) === MEDIA_TYPES.dockerManifest;
}

export function windowsImageConfig(input: WindowsImageInput, diffId: string | undefined): Record<string, unknown> {
  const { base, plan } = input;
  const created = rfc3339(input.epoch);
  const baseSettings = { ...((base.config.config ?? {}) as Record<string, unknown>) };
  // As Docker: an ENTRYPOINT resets the CMD the base had.
  if (plan.config.Entrypoint && !plan.config.Cmd) delete baseSettings.Cmd;
  const env = plan.config.Env ? { Env: [...((baseSettings.Env as string[] | undefined) ?? []).filter((e) => !plan.config.Env!.some((n) => n.split('=')[0] === e.split('=')[0])), ...plan.config.Env] } : {};
  const labels = plan.config.Labels ? { Labels: { ...((baseSettings.Labels as Record<string, string> | undefined) ?? {}), ...plan.config.Labels } } : {};
  const rootfs = base.config.rootfs as { diff_ids: string[] };
  const baseHistory = (Array.isArray(base.config.history) ? base.config.history : []) as unknown[];
  let layerSeen = false;
  const history = plan.steps.map((s) => {
    // The Dockerfile's files make one layer: the first ADD or COPY holds it.
    const makesLayer = Boolean(s.layer) && !layerSeen && diffId !== undefined;
    if (s.layer) layerSeen = true;
    return { created, created_by: s.createdBy, ...(!makesLayer && { empty_layer: true }) };
  });
  return {
    architecture: input.platform.oci.architecture,
    os: 'windows',
    'os.version': base.osVersion,
    created,
    config: { ...baseSettings, ...plan.config, ...env, ...labels },
    rootfs: { type: 'layers', diff_ids: [...rootfs.diff_ids, ...(diffId ? [diffId] : [])] },
    history: [...baseHistory, ...history],
  };
}

export function buildWindowsImage(input: WindowsImageInput, gzipped?: (tar: Uint8Array) => Uint8Array, source?: Pick<BaseSource, 'location' | 'opener'>): BuiltImage {
  const tar = windowsImageTar(input);
  const layer: Layer | undefined = tar && gzipped ? layerOf(tar, gzipped(tar)) : undefined;
  if (tar && !layer) throw new PauseBuildError('a Windows layer needs its gzip');
  return windowsImageOf(input, layer, source);
}

export function windowsImageOf(input: WindowsImageInput, layer: Layer | undefined, source?: Pick<BaseSource, 'location' | 'opener'>): BuiltImage {
  const docker = isDocker(input.base);
  const platform = windowsPlatformOf(input.platform, input.base.osVersion);
  const config = jsonBlob(windowsImageConfig(input, layer?.diffId), { mediaType: docker ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.config });
  const ours = layer ? [{ ...layer.blob, descriptor: { ...layer.blob.descriptor, mediaType: docker ? MEDIA_TYPES.dockerLayerGzip : MEDIA_TYPES.layerGzip } }] : [];
  const mediaType = docker ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.manifest;
  const manifest = jsonBlob(
    {
      schemaVersion: 2,
      mediaType,
      config: descriptorJson(config.descriptor),
      layers: [...input.base.layers, ...ours.map((l) => descriptorJson(l.descriptor))],
    },
    { mediaType, platform },
  );
  const baseBlobs = source
    ? input.base.layers.filter((l) => !isForeignLayer(l)).map((l) => {
        const descriptor = { mediaType: l.mediaType, digest: l.digest, size: l.size };
        return { descriptor, from: source.location, open: source.opener(descriptor) };
      })
    : undefined;
  return { arch: windowsImageName(input.platform, input.base.osVersion), manifest, config, layers: ours, ...(baseBlobs && { baseBlobs }) };
}
