/**
 * The image stage as a listr2 task list: read the Dockerfile (before compiling, so a
 * mistake in it costs nothing), compile every arch (the bin stage), assemble each arch's
 * image from its binary, then the index, then write the OCI layout.
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ListrTask } from 'listr2';
import { PauseBuildError } from '../errors.ts';
import { loadContextFiles } from '../oci/context.ts';
import { type DockerfilePlan, parseDockerfile } from '../oci/dockerfile.ts';
import { LayerCompressor } from '../oci/compress.ts';
import { buildImageWith, layerTars } from '../oci/image.ts';
import { buildIndex } from '../oci/index.ts';
import { type LayoutWriteResult, checkLayoutTarget, layoutReference, writeLayout } from '../oci/layout.ts';
import type { Artifact } from '../oci/referrers.ts';
import type { BuiltImage, BuiltIndex } from '../oci/types.ts';
import { type Platform, inTableOrder, platformFor, platformString } from '../platforms.ts';
import { allCompileTasks, toolchainTasks } from './bin.ts';
import { type AttestOptions, type AttestState, attestTask, startComponents } from './attest.ts';
import { type BaseSource, type WindowsBase, readWindowsBases } from '../windows/base.ts';
import { windowsImageName, windowsImageOf, windowsImageTar } from '../oci/windows-image.ts';
import { layerOf } from '../oci/layer.ts';
import type { BuildOptions, BuildState } from './context.ts';

export interface ImageOptions extends BuildOptions, AttestOptions {
  readonly dockerfile: string;
  /** Where ADD and COPY sources are read from; by default the directory holding the bin dir. */
  readonly context: string;
  /** The OCI layout directory. */
  readonly output: string;
  readonly tag: string;
  /** SOURCE_DATE_EPOCH (see resolveSourceDateEpoch). */
  readonly epoch: number;
  /** org.opencontainers.image.source. */
  readonly sourceUrl: string;
  /** --build-arg values, besides the per-arch ones (platformBuildArgs). */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Dockerfile.windows: FROM ${BASE}, read when opts.windows is not empty. */
  readonly windowsDockerfile: string;
  /** --windows-base: the base index, one image per Windows version. */
  readonly windowsBase: string;
  /** --windows-os-version: keep only these versions (prefixes); empty for all. */
  readonly windowsOsVersions: readonly string[];
}

export interface ImageState extends BuildState, AttestState {
  readonly plans: Map<string, DockerfilePlan>;
  readonly images: Map<string, BuiltImage>;
  built?: BuiltIndex;
  layout?: LayoutWriteResult;
  readonly warnings: string[];
  /** The Dockerfile as read (it is part of what a publish record is keyed by). */
  dockerfileText?: string;
  compressor?: LayerCompressor;
  /** How Windows bases are read (a registry client behind it); set by the command. */
  baseSource?: (reference: string) => { source: BaseSource; reference: string };
  windowsPlan?: DockerfilePlan;
  windowsBases?: { source: BaseSource; bases: WindowsBase[] };
  readonly windowsImages?: BuiltImage[];
  /**
   * Called with each arch's image as soon as its binary has passed, while the other arches
   * still compile or run (a publish sends its blobs then). Only a head start, as
   * prefetchLayers: the assemble step builds every image again from the files as they are then.
   */
  onImage?: (image: BuiltImage) => void;
  /** Called with the attestations as soon as they are made. */
  onAttestations?: (artifacts: readonly Artifact[]) => void;
}

export function newImageState(): ImageState {
  return { binaries: new Map(), errors: [], plans: new Map(), images: new Map(), warnings: [], windowsImages: [] };
}

/** Where compressed layers are kept between runs: beside the compile cache, unless --no-cache. */
export function layerCacheDir(opts: Pick<BuildOptions, 'cacheDir'>): string | undefined {
  return opts.cacheDir === undefined ? undefined : path.join(opts.cacheDir, 'gzip');
}

function compressorOf(opts: ImageOptions, state: ImageState): LayerCompressor {
  state.compressor ??= new LayerCompressor({ cacheDir: layerCacheDir(opts) });
  return state.compressor;
}

/**
 * Starts compressing an arch's layers as soon as its binary exists, while the other arches
 * still compile or run. Only a head start: the assemble step reads the files again and
 * looks the result up by the tar's digest, so a file that changes in between costs time,
 * never correctness. Failures here are left for the assemble step to report.
 */
function prefetchLayers(opts: ImageOptions, state: ImageState, arch: string): void {
  const plan = state.plans.get(arch);
  if (!plan) return;
  const compressor = compressorOf(opts, state);
  loadContextFiles(plan, opts.context)
    .then((files) => {
      for (const tar of layerTars({ platform: platformFor(arch), plan, files, epoch: opts.epoch })) void compressor.compress(tar).catch(() => undefined);
    })
    .catch(() => undefined);
}

/** An accepted arch's image, for onImage; failures are left for the assemble step to report. */
function assembleEarly(opts: ImageOptions, state: ImageState, platform: Platform): void {
  const plan = state.plans.get(platform.arch);
  if (!plan || !state.onImage) return;
  const compressor = compressorOf(opts, state);
  loadContextFiles(plan, opts.context)
    .then((files) => buildImageWith({ platform, plan, files, epoch: opts.epoch }, (tar) => compressor.compress(tar)))
    .then((image) => state.onImage?.(image))
    .catch(() => undefined);
}

/**
 * Build args every arch gets: ARCH (what the top-level Dockerfile uses, as upstream's
 * Makefile passes it) and the TARGET* args BuildKit predefines.
 */
export function platformBuildArgs(p: Platform): Record<string, string> {
  return {
    ARCH: p.arch,
    TARGETOS: p.oci.os,
    TARGETARCH: p.oci.architecture,
    TARGETVARIANT: p.oci.variant ?? '',
    TARGETPLATFORM: platformString(p),
  };
}

function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function dockerfileTask(opts: ImageOptions, state: ImageState): ListrTask {
  return {
    title: `Reading ${shown(opts.dockerfile)}`,
    task: async () => {
      const text = await readFile(opts.dockerfile, 'utf8').catch(() => {
        throw new PauseBuildError(`Dockerfile not found at ${opts.dockerfile}`, { hint: 'pass --dockerfile FILE' });
      });
      state.dockerfileText = text;
      for (const platform of opts.platforms) {
        const plan = parseDockerfile(text, { file: shown(opts.dockerfile), buildArgs: { ...opts.buildArgs, ...platformBuildArgs(platform) } });
        state.plans.set(platform.arch, plan);
        for (const w of plan.warnings) if (!state.warnings.includes(w)) state.warnings.push(w);
      }
    },
  };
}

function assembleTasks(opts: ImageOptions, state: ImageState): ListrTask {
  return {
    title: 'Assembling images',
    task: (_ctx, parent) =>
      parent.newListr(
        opts.platforms.map((platform) => ({
          title: platformString(platform),
          task: async (_c, task) => {
            const plan = state.plans.get(platform.arch)!;
            const files = await loadContextFiles(plan, opts.context);
            const compressor = compressorOf(opts, state);
            const image = await buildImageWith({ platform, plan, files, epoch: opts.epoch }, (tar) => compressor.compress(tar));
            state.images.set(platform.arch, image);
            const layerBytes = image.layers.reduce((n, l) => n + l.descriptor.size, 0);
            task.title = `${platformString(platform)}: ${image.manifest.descriptor.digest.slice(0, 19)}… layer ${kib(layerBytes)}`;
          },
        })),
        // Side by side: the layers compress in worker threads. The images are listed in arch order regardless.
        { concurrent: true },
      ),
  };
}

/** The Windows Dockerfile and its bases, read before compiling: a wrong base costs nothing. */
function windowsPrepareTasks(opts: ImageOptions, state: ImageState): ListrTask[] {
  if (opts.windows.length === 0) return [];
  return [
    {
      title: `Reading ${shown(opts.windowsDockerfile)} and the Windows base ${opts.windowsBase}`,
      task: async (_ctx, task) => {
        const text = await readFile(opts.windowsDockerfile, 'utf8').catch(() => {
          throw new PauseBuildError(`Windows Dockerfile not found at ${opts.windowsDockerfile}`, { hint: 'add Dockerfile.windows to the project root, or leave windows out of --arch' });
        });
        const platform = opts.windows[0]!;
        const plan = parseDockerfile(text, {
          file: shown(opts.windowsDockerfile),
          allowBase: true,
          buildArgs: { ...opts.buildArgs, BASE: opts.windowsBase, ARCH: platform.arch, TARGETOS: 'windows', TARGETARCH: platform.oci.architecture, TARGETVARIANT: '', TARGETPLATFORM: `windows/${platform.oci.architecture}` },
        });
        if (plan.base === undefined) throw new PauseBuildError(`${shown(opts.windowsDockerfile)} is FROM scratch`, { hint: 'a Windows image stands on a base: write ARG BASE and FROM ${BASE}' });
        state.windowsPlan = plan;
        if (!state.baseSource) throw new PauseBuildError('no registry client to read the Windows base with (internal error)');
        const { source, reference } = state.baseSource(plan.base);
        const bases = await readWindowsBases(source, reference, platform, opts.windowsOsVersions);
        state.windowsBases = { source, bases };
        task.title = `Windows base ${plan.base}: ${bases.map((b) => b.osVersion).join(', ')}`;
      },
    },
  ];
}

function windowsAssembleTask(opts: ImageOptions, state: ImageState): ListrTask[] {
  if (opts.windows.length === 0) return [];
  return [
    {
      title: 'Assembling Windows images',
      task: async (_ctx, task) => {
        const plan = state.windowsPlan!;
        const { source, bases } = state.windowsBases!;
        const files = await loadContextFiles(plan, opts.context);
        const tar = windowsImageTar({ plan, files, epoch: opts.epoch });
        const layer = tar ? layerOf(tar, await compressorOf(opts, state).compress(tar)) : undefined;
        for (const platform of opts.windows) {
          for (const base of bases) state.windowsImages!.push(windowsImageOf({ platform, base, plan, files, epoch: opts.epoch }, layer, source));
        }
        task.title = `Windows images: ${bases.map((b) => windowsImageName(opts.windows[0]!, b.osVersion)).join(', ')}`;
      },
    },
  ];
}

async function writeBaseBlobs(dir: string, tag: string, images: readonly BuiltImage[]): Promise<void> {
  const { canonicalJson, sha256Digest } = await import('../oci/blob.ts');
  await checkLayoutTarget(dir, tag);
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  // The marker first: a directory of blobs without it would not be taken for a layout.
  const marker = path.join(dir, 'oci-layout');
  if (!(await stat(marker).then(() => true, () => false))) await writeFile(marker, canonicalJson({ imageLayoutVersion: '1.0.0' }));
  const done = new Set<string>();
  for (const b of images.flatMap((i) => i.baseBlobs ?? [])) {
    const { digest } = b.descriptor;
    const file = path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
    if (done.has(digest) || (await stat(file).then(() => true, () => false))) continue;
    done.add(digest);
    const opened = await b.open();
    const bytes = opened instanceof Uint8Array ? opened : new Uint8Array(await new Response(opened).arrayBuffer());
    if (sha256Digest(bytes) !== digest) throw new PauseBuildError(`base layer ${digest} does not match its digest`, { hint: 'the base registry sent other bytes; try again' });
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.tmp`, bytes);
    await rename(`${file}.tmp`, file);
  }
}

/** What comes before compiling: the Dockerfile (a mistake in it costs nothing), the toolchain. */
export function prepareTasks(opts: ImageOptions, state: ImageState): ListrTask[] {
  return [...(opts.platforms.length > 0 ? [dockerfileTask(opts, state)] : []), ...windowsPrepareTasks(opts, state), ...toolchainTasks(opts, state)];
}

/** The rest of the image stage, after prepareTasks: compile, assemble, index, layout. */
export function buildTasks(opts: ImageOptions, state: ImageState): ListrTask[] {
  state.onBinary = (result) => prefetchLayers(opts, state, result.platform.arch);
  state.onAccepted = (result) => assembleEarly(opts, state, result.platform);
  return [
    { task: () => startComponents(opts, state) },
    ...allCompileTasks(opts, state),
    ...(opts.platforms.length > 0 ? [assembleTasks(opts, state)] : []),
    ...windowsAssembleTask(opts, state),
    {
      title: 'Index',
      task: async (_ctx, task) => {
        await state.compressor?.close();
        state.built = buildIndex(
          [...inTableOrder(opts.platforms.map((p) => state.images.get(p.arch)!)), ...(state.windowsImages ?? [])],
          { version: opts.version.tag, revision: opts.revision, source: opts.sourceUrl, epoch: opts.epoch },
        );
        task.title = `Index ${state.built.index.descriptor.digest}`;
      },
    },
    attestTask(opts, state),
    {
      enabled: () => state.attestations !== undefined && state.onAttestations !== undefined,
      task: () => state.onAttestations?.(state.attestations!.artifacts),
    },
    {
      title: `Writing ${layoutReference(opts.output, opts.tag)}`,
      task: async (_ctx, task) => {
        // The base's own layers (foreign ones stay at their urls) go in first, so that once
        // index.json names the Windows images every blob they need is there.
        if (state.windowsImages?.length) await writeBaseBlobs(opts.output, opts.tag, state.windowsImages);
        state.layout = await writeLayout(opts.output, state.built!, opts.tag, state.attestations?.artifacts);
        task.title = `Wrote ${layoutReference(opts.output, opts.tag)} (${state.layout.written} blobs new, ${state.layout.reused} already there)`;
      },
    },
  ];
}

/** The whole image stage. */
export function imageTasks(opts: ImageOptions, state: ImageState): ListrTask[] {
  return [...prepareTasks(opts, state), ...buildTasks(opts, state)];
}
