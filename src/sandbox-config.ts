/**
 * The node configuration that makes a container runtime use an image as its pod sandbox
 * ("pause") image, and reach its registry over plain HTTP or with a private CA. Pure: text
 * in, text out; the command (src/commands/sandbox-config.ts) and mirror's report print it.
 *
 * Facts the text rests on:
 * - containerd 2.x (config `version = 3`) reads
 *   `[plugins.'io.containerd.cri.v1.images'.pinned_images] sandbox`; it ignores `sandbox_image`.
 * - containerd 1.6/1.7 read `sandbox_image` under `[plugins."io.containerd.grpc.v1.cri"]`
 *   only in a `version = 2` file; without that line they keep `registry.k8s.io/pause`.
 * - Both pull `repo:tag@sha256:…` by its digest, but containerd 2.x reports the sandbox
 *   image pinned (safe from kubelet's image GC) only when it is configured as
 *   `repo@sha256:…` (seen with 2.1 through the CRI). CRI-O (containers/image) refuses a
 *   reference with both a tag and a digest. So every runtime gets `repo@sha256:…`, the tag
 *   in a comment beside it.
 * - Off loopback, containerd speaks plain HTTP or trusts a private CA only through a
 *   `hosts.toml` under the CRI registry `config_path`; CRI-O through registries.conf and
 *   /etc/containers/certs.d.
 * - kubelet's `--pod-infra-container-image` was deprecated in 1.24 and removed in 1.35 (a
 *   1.35 kubelet refuses to start with it). Before that it keeps kubelet's image GC from
 *   removing the sandbox image on containerd 1.6, which does not report it pinned.
 */
import { PauseBuildError } from './errors.ts';
import { type Reference, apiHost, formatReference, formatRepository } from './registry/reference.ts';
import { semverLib } from './version.ts';

export const RUNTIMES = ['containerd', 'containerd1', 'crio'] as const;
export type SandboxRuntime = (typeof RUNTIMES)[number];

/** How the node reaches the image's registry: TLS with the system CAs, plain HTTP, or TLS with a private CA. */
export type Transport = { readonly kind: 'tls' } | { readonly kind: 'plain-http' } | { readonly kind: 'ca'; readonly caFile: string };

export const DEFAULT_HOSTS_DIR = '/etc/containerd/certs.d';
/** The first kubelet without --pod-infra-container-image. */
export const KUBELET_FLAG_REMOVED = '1.35.0';

export interface SandboxInput {
  readonly runtime: SandboxRuntime;
  readonly reference: Reference;
  readonly transport?: Transport;
  /** The nodes' kubelet version; the kubelet flag is printed only below 1.35. */
  readonly kubeletVersion?: string;
  /** containerd's registry `config_path` on the node. */
  readonly hostsDir?: string;
  /** CRI-O: the auth file (docker config.json form) on the node, when the registry needs credentials. */
  readonly authFile?: string;
}

/** A file to write (or, with copyFrom, to copy) on the node. */
export interface NodeFile {
  readonly path: string;
  readonly about: string;
  readonly content?: string;
  readonly copyFrom?: string;
}

export interface SandboxConfig {
  readonly runtime: SandboxRuntime;
  /** e.g. `containerd 2.x (config version 3)` */
  readonly label: string;
  readonly configVersion?: 2 | 3;
  /** The reference as the runtime is given it. */
  readonly reference: string;
  readonly files: readonly NodeFile[];
  readonly kubelet?: { readonly flag: string; readonly why: string };
  readonly notes: readonly string[];
  /** How to see what the running runtime took. */
  readonly check: string;
}

const LABELS: Record<SandboxRuntime, string> = {
  containerd: 'containerd 2.x (config version 3)',
  containerd1: 'containerd 1.6/1.7 (config version 2)',
  crio: 'CRI-O',
};

/** A TOML basic string: JSON's escapes are a subset of TOML's. */
function tomlString(value: string): string {
  return JSON.stringify(value);
}

function hostPath(dir: string, ...parts: string[]): string {
  return [dir.replace(/\/+$/, ''), ...parts].join('/');
}

/** `repo@sha256:…` when the digest is known, else `repo:tag`. */
export function digestReference(ref: Reference): string {
  return ref.digest ? `${formatRepository(ref)}@${ref.digest}` : formatReference(ref);
}

/** `key = "repo@sha256:…"`, with `# repo:tag` after it when the digest hides a tag people know it by. */
function referenceLine(key: string, ref: Reference): string {
  const line = `${key} = ${tomlString(digestReference(ref))}`;
  return ref.tag && ref.digest ? `${line}  # ${formatRepository(ref)}:${ref.tag}` : line;
}

/** Parses `1.34`, `v1.34.2` or `1.35.0-rc.1`; an error naming the flag otherwise. */
export function parseKubeletVersion(text: string): string {
  const semver = semverLib();
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?(-[0-9A-Za-z.-]+)?$/.exec(text.trim());
  const version = m ? `${m[1]}.${m[2]}.${m[3] ?? '0'}${m[4] ?? ''}` : undefined;
  if (!version || !semver.valid(version)) {
    throw new PauseBuildError(`--kubelet-version "${text}" is not a Kubernetes version`, { hint: 'give the nodes\' kubelet version, e.g. --kubelet-version 1.34 or v1.34.2' });
  }
  return version;
}

/** True when this kubelet still has --pod-infra-container-image (a 1.35 pre-release has not). */
export function kubeletTakesFlag(version: string): boolean {
  const semver = semverLib();
  const v = parseKubeletVersion(version);
  return semver.lt(`${semver.major(v)}.${semver.minor(v)}.0`, KUBELET_FLAG_REMOVED);
}

export function kubeletFlagFor(ref: Reference): string {
  return `--pod-infra-container-image=${digestReference(ref)}`;
}

function kubeletWhy(runtime: SandboxRuntime): string {
  const base = 'kubelet before 1.35 only (deprecated in 1.24, removed in 1.35: a 1.35 kubelet refuses to start with it)';
  return runtime === 'containerd1'
    ? `${base}; with containerd 1.6 it keeps kubelet's image GC from removing the sandbox image, which 1.6 does not report pinned`
    : `${base}; with containerd 1.6 it keeps kubelet's image GC from removing the sandbox image; ${runtime === 'crio' ? 'CRI-O' : 'containerd 2.x'} reports the image pinned itself, so the flag only has to agree with it`;
}

/** containerd's hosts.toml for the reference's registry, and the CA to copy next to it. */
function containerdHostFiles(ref: Reference, transport: Transport, hostsDir: string): NodeFile[] {
  if (transport.kind === 'tls') return [];
  const host = ref.registry;
  const server = `${transport.kind === 'plain-http' ? 'http' : 'https'}://${apiHost(host)}`;
  const ca = hostPath(hostsDir, host, 'ca.crt');
  const lines = [
    `server = ${tomlString(server)}`,
    '',
    `[host.${tomlString(server)}]`,
    '  capabilities = ["pull", "resolve"]',
    ...(transport.kind === 'ca' ? [`  ca = ${tomlString(ca)}`] : []),
  ];
  const files: NodeFile[] = [{
    path: hostPath(hostsDir, host, 'hosts.toml'),
    about: `how containerd reaches ${host}: ${transport.kind === 'plain-http' ? 'plain HTTP, no TLS' : 'TLS trusting the CA below'}`,
    content: `${lines.join('\n')}\n`,
  }];
  if (transport.kind === 'ca') files.push({ path: ca, about: `the CA that signed ${host}'s certificate`, copyFrom: transport.caFile });
  return files;
}

function containerdConfig(version: 2 | 3, ref: Reference, hostsDir: string | undefined): string {
  const lines = version === 3
    ? ['version = 3', '', "[plugins.'io.containerd.cri.v1.images'.pinned_images]", `  ${referenceLine('sandbox', ref)}`]
    : ['version = 2', '', '[plugins."io.containerd.grpc.v1.cri"]', `  ${referenceLine('sandbox_image', ref)}`];
  if (hostsDir !== undefined) {
    lines.push('', version === 3 ? "[plugins.'io.containerd.cri.v1.images'.registry]" : '[plugins."io.containerd.grpc.v1.cri".registry]', `  config_path = ${tomlString(hostsDir)}`);
  }
  return `${lines.join('\n')}\n`;
}

function crioFiles(ref: Reference, transport: Transport, authFile: string | undefined): NodeFile[] {
  const image = ['[crio.image]', referenceLine('pause_image', ref), ...(authFile ? [`pause_image_auth_file = ${tomlString(authFile)}`] : [])];
  const files: NodeFile[] = [{ path: '/etc/crio/crio.conf.d/10-pause-image.conf', about: 'CRI-O\'s sandbox image', content: `${image.join('\n')}\n` }];
  const slug = ref.registry.replace(/[^A-Za-z0-9.-]+/g, '-');
  if (transport.kind === 'plain-http') {
    files.push({
      path: `/etc/containers/registries.conf.d/50-${slug}.conf`,
      about: `${ref.registry} over plain HTTP`,
      content: ['[[registry]]', `location = ${tomlString(ref.registry)}`, 'insecure = true', ''].join('\n'),
    });
  } else if (transport.kind === 'ca') {
    files.push({ path: `/etc/containers/certs.d/${ref.registry}/ca.crt`, about: `the CA that signed ${ref.registry}'s certificate`, copyFrom: transport.caFile });
  }
  return files;
}

function kubeadmNote(ref: Reference): string {
  const slash = ref.repository.lastIndexOf('/');
  const imageRepository = slash === -1 ? ref.registry : `${ref.registry}/${ref.repository.slice(0, slash)}`;
  return `kubeadm checks the runtime's sandbox image against <imageRepository>/pause:<tag>, a tag: a pinned reference makes it warn "inconsistent" (harmless); set imageRepository: ${imageRepository} in its ClusterConfiguration so the names agree`;
}

export function sandboxConfig(input: SandboxInput): SandboxConfig {
  const { runtime, reference: ref } = input;
  const transport = input.transport ?? { kind: 'tls' };
  const hostsDir = input.hostsDir ?? DEFAULT_HOSTS_DIR;
  if (input.authFile && runtime !== 'crio') {
    throw new PauseBuildError('--auth-file is for --runtime crio (pause_image_auth_file)', { hint: 'containerd pulls its sandbox image without credentials: make the repository readable anonymously, or leave out --auth-file' });
  }
  if (!ref.tag && !ref.digest) {
    throw new PauseBuildError(`${formatReference(ref)} has no tag or digest`, { hint: 'give REPO:TAG, REPO@sha256:… or REPO:TAG@sha256:… (pause-build mirror prints it)' });
  }
  const notes: string[] = [];
  let files: NodeFile[];
  const reference = digestReference(ref);
  let configVersion: 2 | 3 | undefined;
  let check: string;
  if (runtime === 'crio') {
    files = crioFiles(ref, transport, input.authFile);
    if (!input.authFile) notes.push('if the registry needs credentials, add pause_image_auth_file (--auth-file PATH, a docker config.json on the node)');
    check = 'crio config | grep pause_image; crictl info';
  } else {
    configVersion = runtime === 'containerd' ? 3 : 2;
    const hostFiles = containerdHostFiles(ref, transport, hostsDir);
    files = [
      {
        path: '/etc/containerd/config.toml',
        about: `config version ${configVersion}: merge into the file (the version line is its first), then restart containerd`,
        content: containerdConfig(configVersion, ref, hostFiles.length ? hostsDir : undefined),
      },
      ...hostFiles,
    ];
    if (runtime === 'containerd1') notes.push('without the line version = 2, containerd 1.x ignores sandbox_image and keeps registry.k8s.io/pause');
    else notes.push('containerd 2.x ignores sandbox_image: it reads pinned_images.sandbox (a version 2 file is converted on load); it reports the image pinned, safe from kubelet\'s image GC, only in the repo@sha256: form');
    check = runtime === 'containerd'
      ? `containerd config dump | grep -A1 pinned_images; after the first pod, crictl inspecti ${reference} says "pinned": true`
      : 'containerd config dump | grep sandbox_image; crictl info | grep sandboxImage';
  }
  if (!ref.digest) notes.push('not pinned: give REF with @sha256:… so every node runs the same bytes');
  else if (ref.tag) notes.push(`the digest form for every runtime: containerd 2.x pins only that form, CRI-O refuses a tag with a digest; the tag ${ref.tag} is in the comment`);
  notes.push(kubeadmNote(ref));
  let kubelet: SandboxConfig['kubelet'];
  if (input.kubeletVersion !== undefined) {
    if (kubeletTakesFlag(input.kubeletVersion)) kubelet = { flag: kubeletFlagFor(ref), why: kubeletWhy(runtime) };
    else notes.push(`kubelet ${input.kubeletVersion} has no --pod-infra-container-image (removed in 1.35): the runtime's setting alone decides`);
  }
  return { runtime, label: LABELS[runtime], ...(configVersion ? { configVersion } : {}), reference, files, ...(kubelet ? { kubelet } : {}), notes, check };
}

/** The text the command prints: each file under a comment naming it, then the kubelet flag and notes. */
export function formatSandboxConfig(c: SandboxConfig): string {
  const out: string[] = [`# ${c.label}: sandbox image ${c.reference}`];
  for (const f of c.files) {
    out.push('', `# ${f.path}: ${f.about}`);
    if (f.copyFrom !== undefined) out.push(`#   copy ${f.copyFrom} there`);
    else out.push(f.content!.trimEnd());
  }
  if (c.kubelet) out.push('', `# ${c.kubelet.why}`, c.kubelet.flag);
  out.push('', ...c.notes.map((n) => `# note: ${n}`), `# check: ${c.check}`);
  return `${out.join('\n')}\n`;
}

/** What mirror prints for one destination, each as a field of its --json. */
export interface NodeSnippets {
  /** containerd 2.x, config version 3. */
  readonly containerd: string;
  /** containerd 1.6/1.7, config version 2. */
  readonly containerd1: string;
  readonly crio: string;
  /** kubelet before 1.35 only. */
  readonly kubelet: string;
  /** containerd's hosts.toml for a plain-HTTP or private-CA registry. */
  readonly hostsToml?: string;
  /** CRI-O's registries.conf entry for a plain-HTTP registry. */
  readonly registriesConf?: string;
}

export function nodeSnippets(ref: Reference, transport: Transport = { kind: 'tls' }): NodeSnippets {
  const file = (runtime: SandboxRuntime, pathEnd: string) => sandboxConfig({ runtime, reference: ref, transport }).files.find((f) => f.path.endsWith(pathEnd))?.content;
  const hostsToml = file('containerd', '/hosts.toml');
  const registriesConf = sandboxConfig({ runtime: 'crio', reference: ref, transport }).files.find((f) => f.path.includes('/registries.conf.d/'))?.content;
  return {
    containerd: file('containerd', 'config.toml')!,
    containerd1: file('containerd1', 'config.toml')!,
    crio: file('crio', '10-pause-image.conf')!,
    kubelet: kubeletFlagFor(ref),
    ...(hostsToml ? { hostsToml } : {}),
    ...(registriesConf ? { registriesConf } : {}),
  };
}
