/**
 * Blobs sent to the publish's repository as soon as they exist (each image's config and
 * layers once its binary has passed its run, the attestations' documents once they are
 * made), while the rest of the build goes on. Only blobs: the push and the attachment still
 * write every manifest, the index and every tag after the whole build; their plans take
 * `outcomes` for these blobs instead of asking the registry again. A failure here is not reported: the push or the attachment sends the
 * blob again and says what went wrong. A failed build may leave blobs behind, never a tag.
 */
import { Limiter } from '../concurrency.ts';
import type { Blob } from '../oci/types.ts';
import type { RegistryClient } from '../registry/client.ts';
import { type Repository, formatRepository } from '../registry/reference.ts';

export class EarlyBlobs {
  private readonly sent = new Map<string, Promise<void>>();
  /** What became of each blob that got through: uploaded now, or already there. */
  readonly outcomes = new Map<string, 'uploaded' | 'present'>();
  private readonly limiter = new Limiter(4);

  constructor(
    private readonly client: RegistryClient,
    private readonly target: Repository,
    /** Whether the registry answered at all: if not, nothing is sent (and retried) early. */
    private readonly reachable: Promise<boolean>,
    private readonly signal?: AbortSignal,
  ) {}

  /** Starts sending each blob the registry does not hold yet; a digest is sent once. */
  send(blobs: readonly Blob[]): void {
    const call = { ...(this.signal ? { signal: this.signal } : {}), action: `push to ${formatRepository(this.target)}`, access: 'push' as const };
    for (const blob of blobs) {
      const { digest } = blob.descriptor;
      if (this.sent.has(digest) || this.signal?.aborted) continue;
      const sending = this.limiter.run(async () => {
        if (!(await this.reachable) || this.signal?.aborted) return;
        if ((await this.client.blobExists(this.target, digest, call)) !== undefined) {
          this.outcomes.set(digest, 'present');
          return;
        }
        await this.client.uploadBlob(this.target, { descriptor: blob.descriptor, bytes: blob.bytes }, call);
        this.outcomes.set(digest, 'uploaded');
      });
      this.sent.set(digest, sending.catch(() => undefined));
    }
  }

  /** Once every blob sent so far has arrived or failed. */
  async settled(): Promise<void> {
    await Promise.all(this.sent.values());
  }
}
