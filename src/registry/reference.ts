/**
 * Image references as docker and crane read them: `[HOST[:PORT]/]REPO[:TAG][@sha256:…]`.
 * A first component is a host when it has a dot or a port, is `localhost`, or has an
 * upper-case letter; otherwise the reference is on Docker Hub, where one-component
 * names live under `library/`. Names and tags follow the distribution spec's grammar.
 */
import { DIGEST_RE, TAG_RE } from '../oci/manifest.ts';
import { PauseBuildError } from '../errors.ts';

/** The registry a reference names when it names none. */
export const DEFAULT_REGISTRY = 'docker.io';
/** Where Docker Hub's registry API actually answers. */
const DOCKER_HUB_API = 'registry-1.docker.io';

/** A repository on a registry: where blobs and manifests live. */
export interface Repository {
  /** `host[:port]` as it is written in references (`docker.io` for Docker Hub). */
  readonly registry: string;
  /** Path inside the registry, e.g. `library/busybox` or `pause`. */
  readonly repository: string;
}

/** A repository plus an optional tag and/or digest. */
export interface Reference extends Repository {
  readonly tag?: string;
  /** `sha256:<64 hex>` */
  readonly digest?: string;
}

const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST_RE = new RegExp(`^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`);
const MAX_NAME_LENGTH = 255;

const EXAMPLE = 'e.g. registry.k8s.io/pause:3.10 or 127.0.0.1:5000/pause';

function invalid(input: string, why: string): PauseBuildError {
  return new PauseBuildError(`invalid image reference "${input}": ${why}`, { hint: `use HOST[:PORT]/REPO[:TAG][@sha256:DIGEST], ${EXAMPLE}` });
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component !== component.toLowerCase();
}

/** True for `host[:port]` as references write it: DNS labels or a bracketed IPv6 address. */
export function isValidHost(host: string): boolean {
  return HOST_RE.test(host);
}

/** True for a valid tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`). */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** Throws a one-line error naming the tag when it cannot be a tag. */
export function validateTag(tag: string): string {
  if (!isValidTag(tag)) {
    throw new PauseBuildError(`invalid tag "${tag}"`, { hint: 'a tag is up to 128 letters, digits, _, . and -, not starting with . or -' });
  }
  return tag;
}

export function isValidDigest(digest: string): boolean {
  return DIGEST_RE.test(digest);
}

/** Splits host and repository path, applying Docker Hub's defaults. */
function splitName(input: string, name: string): Repository {
  if (name === '') throw invalid(input, 'the repository name is empty');
  const slash = name.indexOf('/');
  let registry = DEFAULT_REGISTRY;
  let repository = name;
  if (slash !== -1 && looksLikeHost(name.slice(0, slash))) {
    registry = name.slice(0, slash);
    repository = name.slice(slash + 1);
    if (!HOST_RE.test(registry)) throw invalid(input, `"${registry}" is not a valid registry host`);
    const port = /:(\d+)$/.exec(registry)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw invalid(input, `port ${port} is out of range`);
  }
  if (registry === 'index.docker.io') registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = `library/${repository}`;
  if (repository === '') throw invalid(input, 'the repository name is empty');
  for (const component of repository.split('/')) {
    if (component === '') throw invalid(input, 'the repository path has an empty component');
    if (component !== component.toLowerCase()) throw invalid(input, 'repository names must be lower-case');
    if (!COMPONENT_RE.test(component)) {
      throw invalid(input, `"${component}" is not a valid path component (lower-case letters and digits, separated by ., _, __ or -)`);
    }
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) throw invalid(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  return { registry, repository };
}

/** Parses `[HOST[:PORT]/]REPO[:TAG][@sha256:DIGEST]`. */
export function parseReference(input: string): Reference {
  const text = input.trim();
  if (text === '') throw invalid(input, 'it is empty');
  if (/\s/.test(text)) throw invalid(input, 'it contains white space');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw invalid(input, 'leave out the URL scheme');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isValidDigest(digest)) throw invalid(input, `"${digest}" is not a sha256 digest (sha256: and 64 lower-case hex digits)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw invalid(input, `"${tag}" is not a valid tag (up to 128 letters, digits, _, . and -, not starting with . or -)`);
  }
  const name = splitName(input, rest);
  return { ...name, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** Parses a repository without tag or digest, e.g. a push target. */
export function parseRepository(input: string): Repository {
  const ref = parseReference(input);
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw invalid(input, 'expected a repository without tag or digest');
  }
  return { registry: ref.registry, repository: ref.repository };
}

/** The host that serves the registry API for a reference's registry. */
export function apiHost(registry: string): string {
  return registry === DEFAULT_REGISTRY || registry === 'index.docker.io' ? DOCKER_HUB_API : registry;
}

/** True for 127.0.0.0/8, ::1 and localhost, with or without a port. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function formatRepository(repo: Repository): string {
  return `${repo.registry}/${repo.repository}`;
}

/** `host/repo[:tag][@digest]`, the fully qualified form. */
export function formatReference(ref: Reference): string {
  return `${formatRepository(ref)}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** `host/repo@sha256:…`: a reference that always means the same bytes. */
export function pinnedReference(repo: Repository, digest: string): string {
  if (!isValidDigest(digest)) throw new PauseBuildError(`invalid digest "${digest}"`, { hint: 'expected sha256: and 64 lower-case hex digits' });
  return `${formatRepository(repo)}@${digest}`;
}
