/** image: compile, then assemble the multi-arch OCI image into a layout directory. */
import path from 'node:path';
import type { Command } from 'commander';
import { loadSigningKey } from '../attest/keys.ts';
import { PauseBuildError } from '../errors.ts';
import { report } from '../github.ts';
import { diffIdsOf, rfc3339 } from '../oci/image.ts';
import { checkLayoutTarget, layoutReference } from '../oci/layout.ts';
import { platformFor, platformString } from '../platforms.ts';
import { DEFAULT_SOURCE_URL, PACKAGE_ROOT, resolveSourceDateEpoch } from '../project.ts';
import { type ImageOptions, type ImageState, imageTasks, newImageState, platformBuildArgs } from '../tasks/image.ts';
import { runTasks } from '../tasks/run.ts';
import { type BuildFlags, type Runtime, addBuildOptions, collect, resolveBuild } from './common.ts';
import { formatPlatform } from '../oci/platform.ts';
import { DEFAULT_WINDOWS_BASE } from '../windows/base.ts';
import { registryBaseSource } from '../windows/registry-source.ts';
import { type RegistryFlags, addRegistryOptions, registryClientFromFlags } from './registry-options.ts';

export interface ImageFlags extends BuildFlags {
  dockerfile?: string;
  context?: string;
  output: string;
  tag?: string;
  buildArg?: string[];
  sourceUrl: string;
  json?: boolean;
  /** false with --no-attestations. */
  attestations?: boolean;
  signKey?: string
  windowsBase?: string;
  windowsOsVersion?: string[];
  windowsDockerfile?: string;
}

function parseBuildArgs(values: readonly string[] = []): Record<string, string> {
  const reserved = Object.keys(platformBuildArgs(platformFor('amd64')));
  const args: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    const name = eq < 0 ? value : value.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new PauseBuildError(`--build-arg ${value}: invalid name`, { hint: 'write --build-arg NAME=value' });
    if (reserved.includes(name)) throw new PauseBuildError(`--build-arg ${name} is set per arch by pause-build`, { hint: 'choose arches with --arch instead' });
    // As docker: NAME alone takes the value from the environment.
    const v = eq < 0 ? process.env[name] : value.slice(eq + 1);
    if (v !== undefined) args[name] = v;
  }
  return args;
}

export async function resolveImage(flags: ImageFlags, runtime: Runtime): Promise<{ opts: ImageOptions; epochFrom: string }> {
  // The commit time (git) is looked up while the build options are.
  const epochP = resolveSourceDateEpoch(path.resolve(flags.root ?? PACKAGE_ROOT));
  epochP.catch(() => undefined);
  const build = await resolveBuild(flags, runtime);
  const { epoch, from } = await epochP;
  const output = path.resolve(flags.output);
  const tag = flags.tag ?? build.version.tag;
  // A tag or an --output that writing the layout would refuse is refused before compiling,
  // and so is a signing key that cannot be opened.
  await checkLayoutTarget(output, tag);
  const signingKey = flags.signKey === undefined ? undefined : await loadSigningKey(path.resolve(flags.signKey), process.env.COSIGN_PASSWORD);
  return {
    opts: {
      ...build,
      dockerfile: path.resolve(flags.dockerfile ?? path.join(build.root, 'Dockerfile')),
      context: path.resolve(flags.context ?? path.dirname(build.binDir)),
      output,
      tag,
      epoch,
      sourceUrl: flags.sourceUrl,
      buildArgs: parseBuildArgs(flags.buildArg),
      attestations: flags.attestations !== false,
      ...(signingKey ? { signingKey } : {}),
      windowsDockerfile: path.resolve(flags.windowsDockerfile ?? path.join(build.root, 'Dockerfile.windows')),
      windowsBase: flags.windowsBase ?? DEFAULT_WINDOWS_BASE,
      windowsOsVersions: (flags.windowsOsVersion ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean),
    },
    epochFrom: from,
  };
}

export function imageSummary(opts: ImageOptions, state: ImageState) {
  const built = state.built!;
  return {
    index: built.index.descriptor,
    reference: layoutReference(opts.output, opts.tag),
    layout: opts.output,
    tag: opts.tag,
    created: rfc3339(opts.epoch),
    images: built.images.map((image) => {
      const diffIds = diffIdsOf(image);
      return {
        arch: image.arch,
        platform: image.manifest.descriptor.platform ? formatPlatform(image.manifest.descriptor.platform) : platformString(platformFor(image.arch)),
        ...(image.manifest.descriptor.platform?.['os.version'] && { osVersion: image.manifest.descriptor.platform['os.version'] }),
        manifest: image.manifest.descriptor.digest,
        config: image.config.descriptor.digest,
        layers: image.layers.map((l, i) => ({ digest: l.descriptor.digest, size: l.descriptor.size, diffId: diffIds[i] })),
        ...(state.attestations ? { sbom: state.attestations.packages.get(image.arch) } : {}),
      };
    }),
    ...(state.attestations ? { referrers: state.attestations.artifacts.map((a) => ({ digest: a.manifest.descriptor.digest, artifactType: a.artifactType, subject: a.subject })) } : {}),
  };
}

function table(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n');
}

/** Options of every command that assembles the image (image, push, publish). */
export function addImageOptions(cmd: Command): Command {
  return addBuildOptions(cmd)
    .option('--dockerfile <file>', 'Dockerfile to assemble (default: Dockerfile in the project root)')
    .option('--context <dir>', 'build context that ADD/COPY sources are read from (default: the directory holding --bin-dir)')
    .option('--output <dir>', 'OCI layout directory to write', '_output/oci')
    .option('--tag <tag>', 'tag in the layout (default: the version, e.g. 3.10)')
    .option('--build-arg <name=value>', 'Dockerfile build argument, repeatable (ARCH and TARGET* are set per arch)', collect)
    .option('--source-url <url>', 'org.opencontainers.image.source annotation', DEFAULT_SOURCE_URL)
    .option('--json', 'print the result as JSON on stdout')
    .option('--no-attestations', 'attach no SBOM and no provenance to the images')
    .option('--sign-key <file>', 'sign the index and the attestations with this key (cosign.key, password in COSIGN_PASSWORD, or PEM PKCS#8 EC P-256)')
    .option('--windows-base <ref>', `Windows base index, one image per os.version (default: ${DEFAULT_WINDOWS_BASE})`)
    .option('--windows-os-version <version>', 'keep only these Windows versions of the base (e.g. 10.0.20348), comma-separated or repeated', collect)
    .option('--windows-dockerfile <file>', 'Windows Dockerfile (default: Dockerfile.windows in the project root)');
}

export function registerImageCommands(cli: Command, runtime: Runtime): void {
  // The registry options are for reading a Windows base (--arch windows).
  addRegistryOptions(addImageOptions(cli.command('image')))
    .description('compile, then assemble the multi-arch OCI image (deterministic) into an OCI layout')
    .action(async (flags: ImageFlags & RegistryFlags) => {
      const { opts, epochFrom } = await resolveImage(flags, runtime);
      const state = newImageState();
      const client = opts.windows.length > 0 ? await registryClientFromFlags(flags, runtime) : undefined;
      if (client) state.baseSource = (ref) => registryBaseSource(client, ref, runtime.signal);
      try {
        await runTasks(imageTasks(opts, state), { quiet: flags.quiet, json: flags.json, debug: runtime.debug() });
      } finally {
        await client?.close();
      }
      if (!flags.quiet) {
        for (const w of state.warnings) process.stderr.write(`warning: ${w}\n`);
        if (epochFrom === 'default') process.stderr.write(`warning: no SOURCE_DATE_EPOCH and no git commit in ${opts.root}: images are dated ${rfc3339(0)}\n`);
      }
      const summary = imageSummary(opts, state);
      await report({
        title: `pause ${opts.version.tag} image (${opts.versionString})`,
        version: opts.version.tag,
        digest: summary.index.digest,
        layout: summary.reference,
        platforms: summary.images.map((i) => ({ platform: i.platform, digest: i.manifest, size: i.layers.reduce((n, l) => n + l.size, 0) })),
      });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      const rows = [['PLATFORM', 'MANIFEST', 'LAYER (gzip)']];
      for (const image of summary.images) {
        const size = image.layers.reduce((n, l) => n + l.size, 0);
        rows.push([image.platform, image.manifest, `${size} B`]);
      }
      process.stdout.write(`index   ${summary.index.digest}\nlayout  ${summary.reference}\n\n${table(rows)}\n`);
      if (summary.referrers) process.stdout.write(`\n${summary.referrers.length} attestation artifacts (SBOM, provenance${opts.signingKey ? ', signatures' : ''}) in the layout\n`);
    });
}
