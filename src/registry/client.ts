/**
 * The registry client the engine and the commands use: the verbs of the distribution API
 * over one transport. Each resource has its own file (blobs.ts, uploads.ts, manifests.ts,
 * tags.ts); the exchange, sessions, tokens and retries are in transport.ts, the words for
 * failures in status.ts.
 */
import * as blobs from './blobs.ts';
import * as manifests from './manifests.ts';
import type { Repository } from './reference.ts';
import * as tags from './tags.ts';
import { type BlobTransfer, type BlobUpload, type CallOptions, type Manifest, type ManifestInfo, RegistryTransport, type RegistryClientOptions } from './transport.ts';
import * as uploads from './uploads.ts';

export type { BlobTransfer, BlobUpload, CallOptions, Manifest, ManifestInfo, RegistryClientOptions };

export class RegistryClient {
  private readonly t: RegistryTransport;

  constructor(options: RegistryClientOptions = {}) {
    this.t = new RegistryTransport(options);
  }

  /** Closes pooled connections (idle ones do not keep the process alive). */
  close(): Promise<void> {
    return this.t.close();
  }

  isInsecure(registry: string): boolean {
    return this.t.isInsecure(registry);
  }

  /** Checks that the registry answers and speaks the v2 API. */
  pingRegistry(registry: string, opts: CallOptions = {}): Promise<void> {
    return this.t.pingRegistry(registry, opts);
  }

  blobExists(repo: Repository, digest: string, opts: CallOptions = {}) {
    return blobs.blobExists(this.t, repo, digest, opts);
  }

  getBlob(repo: Repository, digest: string, opts: CallOptions = {}) {
    return blobs.getBlob(this.t, repo, digest, opts);
  }

  readBlob(repo: Repository, digest: string, opts: CallOptions = {}) {
    return blobs.readBlob(this.t, repo, digest, opts);
  }

  uploadBlob(repo: Repository, blob: BlobUpload, opts: CallOptions = {}) {
    return uploads.uploadBlob(this.t, repo, blob, opts);
  }

  mountBlob(repo: Repository, blob: BlobUpload, from: string, opts: CallOptions = {}) {
    return uploads.mountBlob(this.t, repo, blob, from, opts);
  }

  headManifest(repo: Repository, reference: string, opts: CallOptions = {}) {
    return manifests.headManifest(this.t, repo, reference, opts);
  }

  getManifest(repo: Repository, reference: string, opts: CallOptions = {}) {
    return manifests.getManifest(this.t, repo, reference, opts);
  }

  /** A manifest, or undefined when the repository has none under that reference. */
  findManifest(repo: Repository, reference: string, opts: CallOptions = {}) {
    return manifests.findManifest(this.t, repo, reference, opts);
  }

  putManifest(repo: Repository, reference: string, bytes: Uint8Array, mediaType: string, opts: CallOptions = {}) {
    return manifests.putManifest(this.t, repo, reference, bytes, mediaType, opts);
  }

  /** The OCI 1.1 referrers list of a manifest, or undefined when the registry has no referrers API. */
  getReferrers(repo: Repository, digest: string, opts: CallOptions = {}) {
    return manifests.getReferrers(this.t, repo, digest, opts);
  }

  listTags(repo: Repository, opts: CallOptions & { readonly pageSize?: number } = {}) {
    return tags.listTags(this.t, repo, opts);
  }

  /** The tags when the whole list fits in `maxPages` pages, else undefined. */
  listTagsWithin(repo: Repository, maxPages: number, opts: CallOptions & { readonly pageSize?: number } = {}) {
    return tags.listTagsWithin(this.t, repo, maxPages, opts);
  }
}
