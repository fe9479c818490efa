/** mirror: copy images, digests preserved, from a registry or OCI layout into other registries. */
import path from 'node:path';
import type { Command } from 'commander';
import { loadVerifyKey } from '../attest/keys.ts';
import { PauseBuildError } from '../errors.ts';
import { maskSecret, report } from '../github.ts';
import { type MirrorReport, type ParsedEntry, destinationSummary, formatReport, parseEntry, withNodeConfig } from '../mirror.ts';
import { type RegistrySettings, loadMirrorFile } from '../mirror-file.ts';
import type { Credential } from '../registry/auth.ts';
import { RegistryClient, type RegistryClientOptions } from '../registry/client.ts';
import { Engine, isLayoutDestination } from '../registry/plan.ts';
import type { Transport } from '../sandbox-config.ts';
import { runMirror } from '../tasks/mirror.ts';
import { collect, type Runtime } from './common.ts';
import { type RegistryFlags, type RegistryIo, addRegistryOptions, resolveRegistryOptions } from './registry-options.ts';

interface MirrorFlags extends RegistryFlags {
  file?: string;
  tags?: string;
  platform?: string[];
  force?: boolean;
  dryRun?: boolean;
  jobs: string;
  json?: boolean;
  quiet?: boolean;
  /** false with --no-referrers. */
  referrers?: boolean;
  requireReferrers?: boolean;
  verifyKey?: string[];
}

const MAX_JOBS = 32;

const EXAMPLES = `
--username/--password-stdin apply to the destination registries; sources are read with
docker login credentials (docker config, credential helpers) or anonymously. A mirror
file can name per-registry credentials as environment variables (docs/mirroring.md).

Examples:
  pause-build mirror registry.k8s.io/pause:3.10 registry.corp.example/k8s/pause
  pause-build mirror registry.k8s.io/pause --tags '>=3.9' mirror-a.example/pause mirror-b.example/pause
  pause-build mirror registry.k8s.io/pause:3.10 registry.corp.example/pause --platform linux/amd64,linux/arm64
  pause-build mirror oci:_output/oci:3.10 127.0.0.1:5000/pause --insecure-registry 127.0.0.1:5000
  pause-build mirror registry.k8s.io/pause:3.10 oci:pause-oci        # an OCI layout to carry across an air gap
  pause-build mirror --file mirror.yaml --dry-run`;

function parseJobs(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > MAX_JOBS) {
    throw new PauseBuildError(`--jobs ${value} is not a number from 1 to ${MAX_JOBS}`, { hint: 'give how many images to copy at once, e.g. --jobs 4' });
  }
  return n;
}

/** The request as checked entries, with the per-registry settings of a mirror file. */
async function gatherEntries(source: string | undefined, destinations: string[], flags: MirrorFlags): Promise<{ entries: ParsedEntry[]; registries: Record<string, RegistrySettings> }> {
  if (flags.file) {
    if (source !== undefined) throw new PauseBuildError('--file takes no SRC or DST arguments', { hint: 'put every source and destination into the file, or leave out --file' });
    if (flags.tags !== undefined || flags.platform) throw new PauseBuildError('--tags and --platform are set per entry with --file', { hint: 'write tags: and platforms: into the file\'s entries' });
    const loaded = await loadMirrorFile(path.resolve(flags.file));
    return { entries: [...loaded.entries], registries: { ...loaded.registries } };
  }
  if (source === undefined) throw new PauseBuildError('mirror needs a source and a destination, or --file', { hint: 'e.g. pause-build mirror registry.k8s.io/pause:3.10 registry.example/k8s/pause' });
  if (destinations.length === 0) throw new PauseBuildError(`no destination for ${source}`, { hint: 'name one or more destination repositories after the source' });
  const entry = parseEntry({ source, destinations, ...(flags.tags === undefined ? {} : { tags: flags.tags }), ...(flags.platform ? { platforms: flags.platform } : {}) });
  return { entries: [entry], registries: {} };
}

/**
 * Client options for a mirror: explicit --username credentials for the destination
 * registries only, a mirror file's per-registry credentials and plain-HTTP hosts on top.
 */
export function mirrorClientOptions(base: RegistryClientOptions, entries: readonly ParsedEntry[], registries: Readonly<Record<string, RegistrySettings>>): RegistryClientOptions {
  const { explicit, ...credentials } = base.credentials ?? {};
  const byRegistry: Record<string, Credential> = {};
  if (explicit) for (const e of entries) for (const d of e.destinations) if (!isLayoutDestination(d)) byRegistry[d.repository.registry] = explicit;
  for (const [host, settings] of Object.entries(registries)) {
    if (!settings.credential) continue;
    maskSecret(settings.credential.password);
    byRegistry[host] = settings.credential;
  }
  const insecure = [...new Set([...(base.insecure ?? []), ...Object.entries(registries).filter(([, s]) => s.insecure).map(([host]) => host)])];
  return { ...base, insecure, credentials: { ...credentials, byRegistry } };
}

function reportToActions(r: MirrorReport): Promise<void> {
  const done = r.copies.flatMap((c) => c.destinations.filter((d) => !d.error));
  const single = r.copies.length === 1 ? r.copies[0] : undefined;
  return report({
    title: r.dryRun ? 'pause mirror plan (dry run, nothing written)' : `pause mirrored to ${done.length} destination${done.length === 1 ? '' : 's'}`,
    ...(single?.digest ? { image: single.source, digest: single.digest } : {}),
    tags: done.map((d) => d.pinned),
    pinned: [...new Set(done.map((d) => d.pinned))],
    facts: r.copies.flatMap((c) => c.destinations.map((d) => [d.reference, destinationSummary(d, r.dryRun)] as const)),
  });
}

export function registerMirrorCommands(cli: Command, runtime: Runtime, io: RegistryIo = {}): void {
  addRegistryOptions(cli.command('mirror'))
    .description('copy images with their digests from a registry or an OCI layout into other registries or OCI layouts (e.g. for air-gapped clusters)')
    .argument('[source]', 'HOST/REPO:TAG, HOST/REPO@sha256:…, or oci:DIR:TAG; a repository (or oci:DIR) with --tags')
    .argument('[destinations...]', 'HOST/REPO[:TAG] or oci:DIR[:TAG]; default tag: the source\'s (none for a digest: copied by digest only)')
    .option('--file <file>', 'mirror file (YAML or JSON) listing sources, tags, platforms and destinations')
    .option('--tags <selectors>', 'source tags to copy: version ranges and/or names, comma-separated, e.g. ">=3.9" or "3.10,latest"')
    .option('--platform <list>', 'copy only these platforms, e.g. linux/amd64,linux/arm/v7 (the index is rewritten, so its digest changes); repeatable', collect)
    .option('--force', 'overwrite destination tags that hold other content')
    .option('--dry-run', 'print what would be copied, and what destinations already hold; write nothing')
    .option('--jobs <n>', 'images copied at once', '4')
    .option('--json', 'print the result as JSON on stdout')
    .option('-q, --quiet', 'no progress lines')
    .option('--no-referrers', 'copy the images alone: no signatures, SBOMs, provenance or cosign .sig/.att/.sbom tags')
    .option('--require-referrers', 'fail when a destination refuses a referrer (default: warn)')
    .option('--verify-key <file>', 'refuse an image whose index has no valid signature by this key (cosign.pub); repeatable', collect)
    .addHelpText('after', EXAMPLES)
    .action(async (source: string | undefined, destinations: string[], flags: MirrorFlags) => {
      const jobs = parseJobs(flags.jobs);
      if (flags.referrers === false && flags.requireReferrers) throw new PauseBuildError('--no-referrers and --require-referrers contradict each other', { hint: 'keep one of them' });
      // Keys are read before anything else is: a bad key file costs nothing.
      const verifyKeys = await Promise.all((flags.verifyKey ?? []).map((f) => loadVerifyKey(path.resolve(f))));
      const { entries, registries } = await gatherEntries(source, destinations, flags);
      const options = mirrorClientOptions(await resolveRegistryOptions(flags, runtime, io), entries, registries);
      const client = new RegistryClient(options);
      const engine = new Engine(client, { force: Boolean(flags.force), signal: runtime.signal });
      const entryKeys = [...new Set(entries.flatMap((e) => e.verifyKeys ?? []))];
      const keyFiles = new Map(await Promise.all(entryKeys.map(async (f) => [f, await loadVerifyKey(f)] as const)));
      const input = { client, engine, entries, jobs, signal: runtime.signal, referrers: flags.referrers !== false, requireReferrers: Boolean(flags.requireReferrers), verifyKeys, keyFiles };
      const out = { quiet: flags.quiet, json: flags.json, debug: runtime.debug() };
      try {
        const caFile = flags.caFile === undefined ? undefined : path.resolve(flags.caFile);
        const transportFor = (host: string): Transport => (options.insecure?.includes(host) ? { kind: 'plain-http' } : caFile ? { kind: 'ca', caFile } : { kind: 'tls' });
        await runMirror(input, out, Boolean(flags.dryRun), async (copied) => {
          const result = withNodeConfig(copied, transportFor);
          process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result));
          if (!flags.quiet) for (const c of result.copies) for (const d of c.destinations) for (const w of d.referrers?.refused ?? []) process.stderr.write(`warning: ${w}\n`);
          await reportToActions(result);
        });
      } finally {
        await client.close();
      }
    });
}
