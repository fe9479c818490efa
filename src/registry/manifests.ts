/** Manifests: HEAD (digest, type, size), GET (capped at 4 MiB, checked by digest), PUT (checked against the registry's digest). */
import { sha256Digest, shortDigest } from '../oci/blob.ts';
import { MANIFEST_LIMIT } from '../oci/manifest.ts';
import { MEDIA_TYPES } from '../oci/types.ts';
import type { Repository } from './reference.ts';
import { RegistryError } from './retry.ts';
import type { CallOptions, Manifest, ManifestInfo, RegistryTransport } from './transport.ts';

const MANIFEST_ACCEPT = [MEDIA_TYPES.index, MEDIA_TYPES.manifest, MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.dockerManifest].join(', ');

/** Digest, media type and size of a manifest by tag or digest; undefined when absent. */
export async function headManifest(t: RegistryTransport, repo: Repository, reference: string, opts: CallOptions = {}): Promise<ManifestInfo | undefined> {
  const session = t.session(repo.registry);
  const res = await t.send({
    session, method: 'HEAD', url: t.repoUrl(repo, `manifests/${reference}`), headers: { Accept: MANIFEST_ACCEPT }, scopes: t.scopes(repo, opts.access),
    ok: [200, 404], what: `check of manifest ${reference}`, action: t.action(repo, opts, 'read'), signal: opts.signal, retry: true,
  });
  if (res.status === 404) return undefined;
  const digest = res.headers.get('docker-content-digest');
  if (!digest) {
    // Not every registry says; the bytes do.
    const m = await getManifest(t, repo, reference, opts);
    return { digest: m.digest, mediaType: m.mediaType, size: m.size };
  }
  return { digest, mediaType: res.headers.get('content-type') ?? '', size: Number(res.headers.get('content-length') ?? 0) };
}

/** The manifest's exact bytes; by digest they are checked against it. */
export async function getManifest(t: RegistryTransport, repo: Repository, reference: string, opts: CallOptions = {}): Promise<Manifest> {
  return (await download(t, repo, reference, opts, false))!;
}

/** The same, or undefined when the repository has no such manifest: one GET where HEAD then GET would be two. */
export function findManifest(t: RegistryTransport, repo: Repository, reference: string, opts: CallOptions = {}): Promise<Manifest | undefined> {
  return download(t, repo, reference, opts, true);
}

async function download(t: RegistryTransport, repo: Repository, reference: string, opts: CallOptions, missingOk: boolean): Promise<Manifest | undefined> {
  const session = t.session(repo.registry);
  const action = t.action(repo, opts, 'pull from');
  const res = await t.send({
    session, method: 'GET', url: t.repoUrl(repo, `manifests/${reference}`), headers: { Accept: MANIFEST_ACCEPT }, scopes: t.scopes(repo, opts.access),
    ok: missingOk ? [200, 404] : [200], what: `download of manifest ${reference}`, action, signal: opts.signal, retry: true, buffer: true,
    read: { maxBytes: MANIFEST_LIMIT, what: 'the 4 MiB limit for a manifest', hint: 'the registry does not hold an image manifest there; check the reference' },
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (res.status === 404) return undefined;
  const digest = sha256Digest(bytes);
  if (reference.startsWith('sha256:') && digest !== reference) {
    throw new RegistryError(`${action}: manifest ${shortDigest(reference)} arrived as ${shortDigest(digest)}`, { hint: 'the registry or a proxy changed the content' });
  }
  return { digest, mediaType: res.headers.get('content-type') ?? '', size: bytes.byteLength, bytes };
}

/** Stores a manifest under a tag or its digest; returns its digest, checked against the registry's. */
export async function putManifest(t: RegistryTransport, repo: Repository, reference: string, bytes: Uint8Array, mediaType: string, opts: CallOptions = {}): Promise<string> {
  const session = t.session(repo.registry);
  const action = t.action(repo, opts, 'push to');
  const digest = sha256Digest(bytes);
  const res = await t.send({
    session, method: 'PUT', url: t.repoUrl(repo, `manifests/${reference}`), headers: { 'Content-Type': mediaType }, body: bytes,
    scopes: t.scopes(repo, 'push'), ok: [200, 201, 202, 204], what: `manifest PUT ${reference.startsWith('sha256:') ? shortDigest(reference) : reference}`, action, signal: opts.signal, retry: true,
  });
  await res.arrayBuffer().catch(() => undefined);
  const stored = res.headers.get('docker-content-digest');
  if (stored && stored !== digest) {
    throw new RegistryError(`${action}: registry stored manifest ${reference} as ${stored}, not ${digest}`, { hint: 'the registry rewrote the manifest; it cannot keep digests' });
  }
  return digest;
}


/**
 * The OCI 1.1 referrers list of a manifest (an image index of descriptors), or undefined
 * when the registry has no referrers API (404, 400 or 405: distribution 2.8, GHCR, Docker Hub).
 */
export async function getReferrers(t: RegistryTransport, repo: Repository, digest: string, opts: CallOptions = {}): Promise<Uint8Array | undefined> {
  const session = t.session(repo.registry);
  const res = await t.send({
    session, method: 'GET', url: t.repoUrl(repo, `referrers/${digest}`), headers: { Accept: MEDIA_TYPES.index }, scopes: t.scopes(repo, opts.access),
    ok: [200, 400, 404, 405], what: `referrers of ${shortDigest(digest)}`, action: t.action(repo, opts, 'read'), signal: opts.signal, retry: true, buffer: true,
    read: { maxBytes: MANIFEST_LIMIT, what: 'the 4 MiB limit for a referrers list', hint: 'the registry lists too many referrers' },
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (res.status !== 200) return undefined;
  // A registry that answers 200 with something else (an HTML page) has no referrers API either.
  return (res.headers.get('content-type') ?? '').includes(MEDIA_TYPES.index) ? bytes : undefined;
}
