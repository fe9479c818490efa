/** sandbox-config: the node configuration that makes a container runtime use REF as its sandbox image. */
import path from 'node:path';
import { type Command, Option } from 'commander';
import { PauseBuildError } from '../errors.ts';
import { isValidHost, parseReference } from '../registry/reference.ts';
import { DEFAULT_HOSTS_DIR, RUNTIMES, type SandboxRuntime, type Transport, formatSandboxConfig, parseKubeletVersion, sandboxConfig } from '../sandbox-config.ts';
import { readCaFile } from './ca-file.ts';
import type { Runtime } from './common.ts';

interface SandboxFlags {
  runtime: SandboxRuntime;
  insecureRegistry?: string;
  caFile?: string;
  kubeletVersion?: string;
  configPath: string;
  authFile?: string;
  json?: boolean;
}

const EXAMPLES = `
Examples:
  pause-build sandbox-config registry.corp.example/k8s/pause:3.10@sha256:…
  pause-build sandbox-config mirror.lan:5000/pause:3.10@sha256:… --runtime containerd1 --insecure-registry mirror.lan:5000 --kubelet-version 1.34
  pause-build sandbox-config registry.corp.example/pause@sha256:… --runtime crio --ca-file corp-ca.pem`;

/** The transport for REF's registry; a flag naming another registry is refused, not ignored. */
export async function resolveTransport(registry: string, flags: Pick<SandboxFlags, 'insecureRegistry' | 'caFile'>): Promise<Transport> {
  if (flags.insecureRegistry !== undefined && flags.caFile !== undefined) {
    throw new PauseBuildError('--insecure-registry and --ca-file contradict each other', { hint: 'plain HTTP has no certificate: give one of them' });
  }
  if (flags.insecureRegistry !== undefined) {
    const host = flags.insecureRegistry.trim();
    if (!isValidHost(host)) throw new PauseBuildError(`--insecure-registry "${host}" is not a host`, { hint: 'give host or host:port, e.g. --insecure-registry mirror.lan:5000' });
    if (host !== registry) throw new PauseBuildError(`--insecure-registry ${host} is not the registry of the image (${registry})`, { hint: `give --insecure-registry ${registry}, or leave it out` });
    return { kind: 'plain-http' };
  }
  if (flags.caFile !== undefined) {
    const file = path.resolve(flags.caFile);
    await readCaFile(file);
    return { kind: 'ca', caFile: file };
  }
  return { kind: 'tls' };
}

export function registerSandboxConfigCommands(cli: Command, _runtime: Runtime): void {
  cli
    .command('sandbox-config')
    .description('print the node configuration (containerd 2.x or 1.x, CRI-O, kubelet) that makes REF the pod sandbox image')
    .argument('<ref>', 'the sandbox image: HOST/REPO:TAG@sha256:… (pinned), HOST/REPO@sha256:… or HOST/REPO:TAG')
    .addOption(new Option('--runtime <runtime>', 'containerd (2.x, config version 3), containerd1 (1.6/1.7, config version 2) or crio').choices(RUNTIMES).default('containerd'))
    .option('--insecure-registry <host>', 'REF\'s registry speaks plain HTTP: add its hosts.toml (containerd) or registries.conf entry (CRI-O)')
    .option('--ca-file <file>', 'REF\'s registry has a certificate from this CA: add its hosts.toml with ca (containerd) or certs.d entry (CRI-O)')
    .option('--kubelet-version <version>', 'the nodes\' kubelet version: below 1.35 the --pod-infra-container-image flag is printed too')
    .option('--config-path <dir>', 'containerd\'s registry config_path on the node', DEFAULT_HOSTS_DIR)
    .option('--auth-file <file>', 'CRI-O: the auth file on the node for a registry that needs credentials (pause_image_auth_file)')
    .option('--json', 'print the configuration as JSON')
    .addHelpText('after', EXAMPLES)
    .action(async (ref: string, flags: SandboxFlags) => {
      const reference = parseReference(ref);
      const transport = await resolveTransport(reference.registry, flags);
      if (!path.isAbsolute(flags.configPath)) throw new PauseBuildError(`--config-path ${flags.configPath} is not an absolute path`, { hint: `give the directory on the node, e.g. --config-path ${DEFAULT_HOSTS_DIR}` });
      const kubeletVersion = flags.kubeletVersion === undefined ? undefined : parseKubeletVersion(flags.kubeletVersion);
      const config = sandboxConfig({
        runtime: flags.runtime,
        reference,
        transport,
        hostsDir: flags.configPath,
        ...(kubeletVersion === undefined ? {} : { kubeletVersion }),
        ...(flags.authFile === undefined ? {} : { authFile: flags.authFile }),
      });
      process.stdout.write(flags.json ? `${JSON.stringify(config, null, 2)}\n` : formatSandboxConfig(config));
    });
}
