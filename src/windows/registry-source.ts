/**
 * The one place Windows base images meet the registry client: a BaseSource over a
 * RegistryClient and a reference. Only manifests by reference and blobs by digest are
 * asked for, so the client behind it can change without touching the Windows code.
 */
import type { RegistryClient } from '../registry/client.ts';
import { type Reference, parseReference } from '../registry/reference.ts';
import { PauseBuildError } from '../errors.ts';
import type { BaseSource } from './base.ts';

export function registryBaseSource(client: RegistryClient, text: string, signal?: AbortSignal): { source: BaseSource; reference: string } {
  let ref: Reference;
  try {
    ref = parseReference(text);
  } catch (e) {
    throw new PauseBuildError(`--windows-base ${text}: ${(e as Error).message}`, { hint: 'write a reference such as mcr.microsoft.com/oss/v2/kubernetes/windows-pause-image-base:v0.4.1' });
  }
  const repo = { registry: ref.registry, repository: ref.repository };
  const call = { signal, action: `read the Windows base ${text} from` };
  const source: BaseSource = {
    name: text,
    location: repo,
    manifest: (reference) => client.getManifest(repo, reference, call),
    blob: (d) => client.readBlob(repo, d.digest, call),
    opener: (d) => () => client.readBlob(repo, d.digest, call),
  };
  return { source, reference: ref.digest ?? ref.tag ?? 'latest' };
}
