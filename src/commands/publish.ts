/**
 * push / publish: the whole pipeline (builder → bin → run each binary → image → layout →
 * registry), and index: joining per-arch images pushed by digest into one tagged index,
 * for release jobs that build one arch per runner.
 */
import type { Command } from 'commander';
import { PauseBuildError } from '../errors.ts';
import { report } from '../github.ts';
import { buildIndex } from '../oci/index.ts';
import type { BuiltIndex } from '../oci/types.ts';
import { inTableOrder, platformFor, platformString } from '../platforms.ts';
import { DEFAULT_SOURCE_URL, PACKAGE_ROOT, resolveRevision, resolveSourceDateEpoch, resolveVersion } from '../project.ts';
import type { RegistryClient } from '../registry/client.ts';
import { fetchImage } from '../registry/pull.ts';
import { type PublishRecord, PublishRecords } from '../publish-record.ts';
import type { PushResult } from '../registry/publish.ts';
import { type Repository, formatRepository, parseRepository, pinnedReference, validateTag } from '../registry/reference.ts';
import { buildTasks, newImageState, prepareTasks } from '../tasks/image.ts';
import { registryBaseSource } from '../windows/registry-source.ts';
import { type PushState, formatBytes, pushTasks } from '../tasks/push.ts';
import { type AttachState, attachTask } from '../tasks/attach.ts';
import { EarlyBlobs } from '../tasks/early-blobs.ts';
import { type RecordedState, publishRecordDir, recordedPublishTask } from '../tasks/recorded.ts';
import { runTasks } from '../tasks/run.ts';
import { type Runtime, collect } from './common.ts';
import { type ImageFlags, addImageOptions, resolveImage } from './image.ts';
import { type RegistryFlags, addRegistryOptions, registryClientFromFlags } from './registry-options.ts';
import path from 'node:path';

interface PublishFlags extends ImageFlags, RegistryFlags {
  registry?: string;
  latest?: boolean;
  perArchTags?: boolean;
  force?: boolean;
  mountFrom?: string[];
  byDigest?: boolean;
  requireReferrers?: boolean;
}

function targetOf(registry: string | undefined): Repository {
  if (!registry) {
    throw new PauseBuildError('no registry given', { hint: 'pass --registry HOST[:PORT]/REPO, e.g. --registry registry.example/k8s/pause' });
  }
  const repo = parseRepository(registry);
  return repo;
}

function addPublishOptions(cmd: Command): Command {
  return addRegistryOptions(addImageOptions(cmd))
    .option('--registry <repo>', 'repository to push to: HOST[:PORT]/REPO (e.g. registry.example/k8s/pause)')
    .option('--latest', 'also tag latest (refused for a prerelease)')
    .option('--per-arch-tags', 'also tag each arch as <tag>-linux-<arch>, like the upstream Makefile')
    .option('--force', 'move tags that already hold another digest')
    .option('--mount-from <repo>', 'repository on the same registry to mount existing blobs from; repeatable', collect)
    .option('--by-digest', 'push each arch image without any tag or index and print its digest (for `pause-build index`)')
    .option('--require-referrers', 'fail when the registry refuses an attestation or signature (default: warn)');
}

function tagsFor(flags: PublishFlags, versionTag: string, prerelease: boolean): string[] {
  const tag = validateTag(flags.tag ?? versionTag);
  if (flags.latest && prerelease) {
    throw new PauseBuildError(`--latest refused: ${versionTag} is a prerelease`, { hint: 'drop --latest; a prerelease is never latest' });
  }
  return flags.latest ? [tag, 'latest'] : [tag];
}

interface Outcome {
  readonly version: string;
  readonly repository: string;
  readonly digest: string;
  readonly reference: string;
  readonly tags: readonly string[];
  readonly unchanged: boolean;
  readonly images: readonly { arch: string; platform: string; digest: string; size: number }[];
  readonly blobs?: PushResult['blobs'];
}

function print(outcome: Outcome, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
    return;
  }
  const rows = [['PLATFORM', 'DIGEST', 'SIZE (compressed)'], ...outcome.images.map((i) => [i.platform, i.digest, formatBytes(i.size)])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const table = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n');
  const lines = [
    `index      ${outcome.digest}`,
    `pinned     ${outcome.reference}`,
    ...(outcome.tags.length ? [`tags       ${outcome.tags.map((t) => `${outcome.repository}:${t}`).join(' ')}`] : []),
    ...(outcome.unchanged ? ['unchanged  every tag already held this digest: nothing was uploaded'] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n\n${table}\n`);
}

async function reportToActions(title: string, outcome: Outcome): Promise<void> {
  await report({
    title,
    version: outcome.version,
    image: outcome.repository,
    digest: outcome.digest,
    tags: outcome.tags.map((t) => `${outcome.repository}:${t}`),
    platforms: outcome.images.map((i) => ({ platform: i.platform, digest: i.digest, size: i.size })),
  });
}

function outcomeOf(version: string, result: PushResult): Outcome {
  return {
    version,
    repository: result.repository,
    digest: result.digest,
    reference: result.reference,
    tags: result.tags.map((t) => t.tag),
    unchanged: result.unchanged,
    images: result.images.map((i) => ({ arch: i.arch, platform: i.platform, digest: i.digest, size: i.compressedSize })),
    blobs: result.blobs,
  };
}

/** What a publish whose tags already held its result prints: as the full pipeline would. */
function unchangedOutcome(record: PublishRecord): Outcome {
  return {
    version: record.version,
    repository: record.repository,
    digest: record.digest,
    reference: record.reference,
    tags: record.tags.map((t) => t.tag),
    unchanged: true,
    images: record.images,
    blobs: { uploaded: 0, skipped: 0, mounted: 0, uploadedBytes: 0, skippedBytes: 0, mountedBytes: 0 },
  };
}

function recordOf(outcome: Outcome, result: PushResult): PublishRecord {
  return {
    version: outcome.version,
    repository: outcome.repository,
    digest: outcome.digest,
    reference: outcome.reference,
    tags: result.tags.map((t) => ({ tag: t.tag, digest: t.digest })),
    images: outcome.images,
  };
}

async function withClient<T>(flags: RegistryFlags, runtime: Runtime, fn: (client: RegistryClient) => Promise<T>): Promise<T> {
  const client = await registryClientFromFlags(flags, runtime);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

async function publish(flags: PublishFlags, runtime: Runtime): Promise<void> {
  const target = targetOf(flags.registry);
  const { opts } = await resolveImage(flags, runtime);
  const tags = flags.byDigest ? [] : tagsFor(flags, opts.version.tag, opts.version.prerelease);
  if (flags.byDigest && (flags.latest || flags.perArchTags || flags.tag)) {
    throw new PauseBuildError('--by-digest pushes no tags', { hint: 'drop --tag, --latest and --per-arch-tags; tag with `pause-build index`' });
  }
  await withClient(flags, runtime, async (client) => {
    // Reach the registry (GET /v2/ only) while git, the engine and the compilers run: the
    // first blob, tag check or push then starts at once. A failure here is only tried again
    // when the push needs the registry.
    const reachable = client.pingRegistry(target.registry, { signal: runtime.signal, action: `push to ${formatRepository(target)}` }).then(() => true, () => false);
    const image = newImageState();
    image.baseSource = (ref) => registryBaseSource(client, ref, runtime.signal);
    const pushState: PushState = {};
    const built = (): BuiltIndex => image.built!;
    const output = { quiet: flags.quiet, json: flags.json, debug: runtime.debug() };
    // A publish of inputs published before (same binaries, Dockerfile, tags, repository…) is
    // over once the registry shows every tag still holds what was recorded.
    // Windows images depend on what the base tag holds now: no record stands in for reading it.
    const records = !flags.byDigest && opts.cacheDir !== undefined && opts.windows.length === 0 ? new PublishRecords(publishRecordDir(opts.cacheDir)) : undefined;
    const recorded: RecordedState = {};
    const attached: AttachState = { warnings: [] };
    // Blobs go up while the rest is built; with --mount-from the push mounts them instead.
    // The images' are awaited before the push, the documents' before the attachment.
    // Nothing is sent early to a registry that did not answer: the push says why, once.
    const early = flags.mountFrom?.length ? undefined : { images: new EarlyBlobs(client, target, reachable, runtime.signal), documents: new EarlyBlobs(client, target, reachable, runtime.signal) };
    if (early) {
      image.onImage = (img) => early.images.send([img.config, ...img.layers]);
      image.onAttestations = (artifacts) => {
        // Only what the attachment writes: the documents of what is pushed.
        const pushed = new Set([...(flags.byDigest ? [] : [built().index.descriptor.digest]), ...built().images.map((i) => i.manifest.descriptor.digest)]);
        early.documents.send(artifacts.filter((a) => pushed.has(a.subject)).flatMap((a) => a.blobs));
      };
    }
    try {
      await runTasks(
        [...prepareTasks(opts, image), ...(records ? [recordedPublishTask({ opts, state: image, records, client, target, tags, perArchTags: Boolean(flags.perArchTags) }, recorded)] : [])],
        output,
      );
      if (recorded.unchanged) {
        const outcome = unchangedOutcome(recorded.unchanged);
        print(outcome, flags.json);
        await reportToActions(`pause ${outcome.version} published`, outcome);
        return;
      }
      await runTasks(
        [
          ...buildTasks(opts, image),
          // The plans then find the blobs sent early, not a transfer half done.
          { task: () => early?.images.settled() },
          ...pushTasks(
            {
              client,
              target,
              built,
              options: { tags, perArchTags: flags.perArchTags, force: flags.force, mountFrom: flags.mountFrom, signal: runtime.signal, withIndex: !flags.byDigest, ...(early ? { sentEarly: early.images.outcomes } : {}) },
            },
            pushState,
          ),
          { task: () => early?.documents.settled() },
          attachTask({ client, target, built, artifacts: () => image.attestations?.artifacts, withIndex: !flags.byDigest, require: flags.requireReferrers, signal: runtime.signal, ...(early ? { sentEarly: early.documents.outcomes } : {}) }, attached),
        ],
        output,
      );
      if (!flags.quiet) for (const w of attached.warnings) process.stderr.write(`warning: ${w}\n`);
      const result = pushState.result!;
      const outcome = outcomeOf(opts.version.tag, result);
      if (flags.byDigest) {
        // One line per arch: what `pause-build index --from` takes.
        if (flags.json) process.stdout.write(`${JSON.stringify({ version: outcome.version, repository: outcome.repository, images: outcome.images }, null, 2)}\n`);
        else for (const i of outcome.images) process.stdout.write(`${i.digest}\t${i.platform}\n`);
        const only = outcome.images.length === 1 ? outcome.images[0]! : undefined;
        await reportToActions(`pause ${outcome.version} ${only ? only.platform : ''} pushed by digest`, {
          ...outcome,
          digest: only ? only.digest : outcome.digest,
          reference: only ? pinnedReference(target, only.digest) : outcome.reference,
        });
        return;
      }
      if (records && recorded.key !== undefined) await records.write(recorded.key, recordOf(outcome, result));
      print(outcome, flags.json);
      await reportToActions(`pause ${outcome.version} published`, outcome);
    } finally {
      // No request of this publish outlives it, however it ended.
      await Promise.all([early?.images.settled(), early?.documents.settled()]);
    }
  });
}

interface IndexFlags extends RegistryFlags {
  from?: string[];
  registry?: string;
  tag?: string;
  latest?: boolean;
  force?: boolean;
  version?: string;
  revision?: string;
  root?: string;
  sourceUrl: string;
  json?: boolean;
  quiet?: boolean;
}

async function joinIndex(flags: IndexFlags, runtime: Runtime): Promise<void> {
  const target = targetOf(flags.registry);
  const digests = (flags.from ?? []).flatMap((d) => d.split(/[\s,]+/)).filter(Boolean);
  if (digests.length === 0) throw new PauseBuildError('no images to join', { hint: 'pass --from sha256:… once per arch (the digests `publish --by-digest` printed)' });
  for (const d of digests) {
    if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new PauseBuildError(`--from ${d} is not a sha256 digest`, { hint: 'give digests as sha256:<64 hex>' });
  }
  const root = path.resolve(flags.root ?? PACKAGE_ROOT);
  const version = await resolveVersion(root, flags.version);
  const revision = await resolveRevision(root, flags.revision);
  const { epoch } = await resolveSourceDateEpoch(root);
  const tags = tagsFor({ ...flags, tag: flags.tag } as PublishFlags, version.tag, version.prerelease);
  await withClient(flags, runtime, async (client) => {
    let built: BuiltIndex | undefined;
    const pushState: PushState = {};
    await runTasks(
      [
        {
          title: `Reading ${digests.length} image${digests.length === 1 ? '' : 's'} from ${formatRepository(target)}`,
          task: async (_ctx, task) => {
            const images = await Promise.all(digests.map((d) => fetchImage(client, target, d, { signal: runtime.signal, action: `index from ${formatRepository(target)}`, access: 'push' })));
            // The same annotations as a one-shot publish of this commit, so the digests agree.
            built = buildIndex(inTableOrder(images), { version: version.tag, revision, source: flags.sourceUrl, epoch });
            task.title = `Index ${built.index.descriptor.digest} (${built.images.map((i) => platformString(platformFor(i.arch))).join(', ')})`;
          },
        },
        ...pushTasks({ client, target, built: () => built!, options: { tags, force: flags.force, signal: runtime.signal } }, pushState),
      ],
      { quiet: flags.quiet, json: flags.json, debug: runtime.debug() },
    );
    const outcome = outcomeOf(version.tag, pushState.result!);
    print(outcome, flags.json);
    await reportToActions(`pause ${outcome.version} published`, outcome);
  });
}

export function registerPublishCommands(cli: Command, runtime: Runtime): void {
  addPublishOptions(cli.command('publish'))
    .description('the whole pipeline: builder, compile, verify and run each arch, assemble, push to --registry (the index last, then tags)')
    .action((flags: PublishFlags) => publish(flags, runtime));

  addPublishOptions(cli.command('push'))
    .description('same as publish (the name upstream Makefile users know from `make all-push`)')
    .action((flags: PublishFlags) => publish(flags, runtime));

  addRegistryOptions(cli.command('index'))
    .description('join per-arch images pushed with `publish --by-digest` into one index, push it and tag it')
    .option('--from <digest...>', 'per-arch manifest digests (as `publish --by-digest` prints them); repeatable, or several after one --from')
    .option('--registry <repo>', 'repository holding the images: HOST[:PORT]/REPO')
    .option('--tag <tag>', 'tag for the index (default: the version)')
    .option('--latest', 'also tag latest (refused for a prerelease)')
    .option('--force', 'move tags that already hold another digest')
    .option('--version <version>', 'version (default: VERSION file, else nearest git tag)')
    .option('--revision <rev>', 'revision annotation (default: git describe)')
    .option('--root <dir>', 'project root holding VERSION')
    .option('--source-url <url>', 'org.opencontainers.image.source annotation', DEFAULT_SOURCE_URL)
    .option('--json', 'print the result as JSON on stdout')
    .option('-q, --quiet', 'print only results')
    .action((flags: IndexFlags) => joinIndex(flags, runtime));
}
