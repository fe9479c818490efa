/**
 * Uploads: monolithic (POST, then PUT with ?digest=), chunked (PATCH with Content-Range,
 * following each Location, resumed from the registry's Range), and cross-repository mounts.
 */
import { shortDigest } from '../oci/blob.ts';
import type { Repository } from './reference.ts';
import { RegistryError, withRetries } from './retry.ts';
import type { BlobTransfer, BlobUpload, CallOptions, RegistryTransport, Session } from './transport.ts';

/** Chunks after a 413: below nginx's default 1 MiB limit on request bodies. */
const DEFAULT_CHUNK = 512 * 1024;
const MIN_CHUNK = 64 * 1024;

/** The end of an upload's `Range: 0-N` header, as the next offset (N + 1). */
function rangeEnd(header: string | null): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(header?.trim() ?? '');
  // distribution answers `0-0` for an empty upload too; chunks are never one byte.
  if (m?.[1] === '0') return 0;
  return m ? Number(m[1]) + 1 : undefined;
}

/** Reads a blob's content in order, one slice at a time, from bytes or a stream opened once. */
class ChunkReader {
  private stream: AsyncIterator<Uint8Array> | undefined;
  private pending: Uint8Array = new Uint8Array(0);
  private at = 0;
  constructor(private blob: BlobUpload) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.blob.bytes) return this.blob.bytes.subarray(offset, offset + length);
    if (!this.stream) {
      const opened = await this.blob.open?.();
      if (opened === undefined) throw new Error('upload without content');
      if (opened instanceof Uint8Array) {
        this.blob = { ...this.blob, bytes: opened };
        return opened.subarray(offset, offset + length);
      }
      this.stream = (opened as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    }
    if (offset < this.at) throw new Error(`chunk reader asked to go back from ${this.at} to ${offset}`);
    const out = new Uint8Array(length);
    let filled = 0;
    // Skip what the registry already holds, then fill the chunk.
    while (filled < length) {
      if (this.pending.byteLength === 0) {
        const r = await this.stream.next();
        if (r.done) break;
        this.pending = r.value;
      }
      const skip = Math.min(this.pending.byteLength, offset - this.at);
      if (skip > 0) {
        this.pending = this.pending.subarray(skip);
        this.at += skip;
        continue;
      }
      const take = Math.min(this.pending.byteLength, length - filled);
      out.set(this.pending.subarray(0, take), filled);
      this.pending = this.pending.subarray(take);
      filled += take;
      this.at += take;
    }
    if (filled < length) throw new Error(`blob content ended at ${this.at} bytes, before ${offset + length}`);
    return out;
  }

  async close(): Promise<void> {
    await this.stream?.return?.(undefined).catch(() => undefined);
  }
}
/** The slowest upload we wait for: a registry answers a PUT only once it has the whole body. */
/** PUT of the blob's bytes to an upload session opened by POST. */
async function finishUpload(t: RegistryTransport, session: Session, repo: Repository, location: string | null, blob: BlobUpload, action: string, signal: AbortSignal | undefined): Promise<void> {
  const { digest, size } = blob.descriptor;
  if (!location) throw new RegistryError(`${action}: registry ${session.registry} opened an upload without a Location`, { hint: 'the registry is not following the distribution spec' });
  const chunkSize = t.options.chunkSize ?? session.chunkSize;
  if (chunkSize !== undefined && size > 0) return uploadChunks(t, session, repo, location, blob, chunkSize, action, signal);
  const url = new URL(location, new URL(`v2/${repo.repository}/blobs/uploads/`, session.base));
  url.searchParams.set('digest', digest);
  const body = blob.bytes ?? (await blob.open?.());
  if (body === undefined) throw new Error(`upload of blob ${digest} without content`);
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
  // A stream has no length of its own; registries want one.
  if (body instanceof ReadableStream) headers['Content-Length'] = String(size);
  const res = await t.send({
    session, method: 'PUT', url, headers,
    body, bodySize: size, scopes: t.scopes(repo, 'push'), ok: [201, 204], what: `upload of blob ${shortDigest(digest)}`, action, signal, retry: false,
  });
  await res.arrayBuffer().catch(() => undefined);
  const stored = res.headers.get('docker-content-digest');
  if (stored && stored !== digest) {
    throw new RegistryError(`${action}: registry stored blob ${shortDigest(digest)} as ${stored}`, { hint: 'the upload was corrupted on the way; try again' });
  }
}

/**
 * Chunked upload as the distribution spec describes it: PATCH after PATCH with
 * Content-Range, each to the Location the last answer gave, then a PUT with ?digest=.
 * A chunk that breaks off is resumed from the Range the registry says it holds; one
 * refused as too large (413) is sent again in halves. At most one chunk is in memory.
 */
async function uploadChunks(t: RegistryTransport, session: Session, repo: Repository, location: string, blob: BlobUpload, chunkSize: number, action: string, signal: AbortSignal | undefined): Promise<void> {
  const { digest, size } = blob.descriptor;
  const base = new URL(`v2/${repo.repository}/blobs/uploads/`, session.base);
  let url = new URL(location, base);
  let source = new ChunkReader(blob);
  let offset = 0;
  let chunk = Math.max(MIN_CHUNK, chunkSize);
  let broken = 0;
  const what = `upload of blob ${shortDigest(digest)}`;
  try {
    // The chunk last sent, kept until the registry has it: a resume may need part of it again.
    let last: { offset: number; bytes: Uint8Array } | undefined;
    while (offset < size) {
      const again = last && offset >= last.offset && offset < last.offset + last.bytes.byteLength ? last.bytes.subarray(offset - last.offset) : undefined;
      const bytes = again ? again.subarray(0, Math.min(chunk, again.byteLength)) : await source.read(offset, Math.min(chunk, size - offset));
      last = { offset, bytes };
      try {
        const res = await t.send({
          session, method: 'PATCH', url, body: bytes,
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + bytes.byteLength - 1}` },
          scopes: t.scopes(repo, 'push'), ok: [202, 204], what, action, signal, retry: false,
        });
        await res.arrayBuffer().catch(() => undefined);
        const next = res.headers.get('location');
        if (next) url = new URL(next, url);
        offset = rangeEnd(res.headers.get('range')) ?? offset + bytes.byteLength;
      } catch (e) {
        if (e instanceof RegistryError && e.status === 413 && chunk > MIN_CHUNK) {
          chunk = Math.max(MIN_CHUNK, Math.floor(chunk / 2));
          session.chunkSize = chunk;
          continue;
        }
        if (!(e instanceof RegistryError) || !e.retryable || ++broken > t.policy.attempts) throw e;
        // Where the registry stands: resume from the end of what it holds.
        const status = await t.send({ session, method: 'GET', url, scopes: t.scopes(repo, 'push'), ok: [204], what, action, signal, retry: true });
        await status.arrayBuffer().catch(() => undefined);
        const held = rangeEnd(status.headers.get('range')) ?? 0;
        const next = status.headers.get('location');
        if (next) url = new URL(next, url);
        if (held < offset) {
          await source.close();
          source = new ChunkReader(blob);
        }
        offset = held;
        t.log?.(`resume ${what} at byte ${offset}`);
      }
    }
  } finally {
    await source.close();
  }
  url.searchParams.set('digest', digest);
  const res = await t.send({
    session, method: 'PUT', url, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': '0' }, body: new Uint8Array(0),
    scopes: t.scopes(repo, 'push'), ok: [201, 204], what, action, signal, retry: false,
  });
  await res.arrayBuffer().catch(() => undefined);
  const stored = res.headers.get('docker-content-digest');
  if (stored && stored !== digest) {
    throw new RegistryError(`${action}: registry stored blob ${shortDigest(digest)} as ${stored}`, { hint: 'the upload was corrupted on the way; try again' });
  }
}

/**
 * Upload (POST, then PUT with ?digest=, or chunks), retried as a whole: a failed PUT
 * leaves its upload session unusable, so a retry opens a new one. A whole body refused
 * as too large (413) is sent again in chunks, and so is every later blob to that registry.
 */
export async function uploadBlob(t: RegistryTransport, repo: Repository, blob: BlobUpload, opts: CallOptions = {}): Promise<void> {
  const session = t.session(repo.registry);
  const action = t.action(repo, opts, 'push to');
  await withRetries(t.policy, async () => {
    const start = await t.send({
      session, method: 'POST', url: t.repoUrl(repo, 'blobs/uploads/'), scopes: t.scopes(repo, 'push'), ok: [202],
      what: `upload of blob ${shortDigest(blob.descriptor.digest)}`, action, signal: opts.signal, retry: false,
    });
    await start.arrayBuffer().catch(() => undefined);
    try {
      await finishUpload(t, session, repo, start.headers.get('location'), blob, action, opts.signal);
    } catch (e) {
      if (!(e instanceof RegistryError) || e.status !== 413 || session.chunkSize !== undefined || t.options.chunkSize !== undefined) throw e;
      t.log?.(`${session.registry} refused a ${blob.descriptor.size} byte body (413): uploading in chunks`);
      session.chunkSize = DEFAULT_CHUNK;
      throw new RegistryError(e.message, { status: 413, retryable: true, hint: e.hint ?? '' });
    }
  }, { signal: opts.signal, onRetry: t.retryLogger() });
}

/**
 * Cross-repository mount from `from` (same registry); when the registry cannot mount
 * (202), the upload session it opened is used to upload the bytes instead (a lazy
 * blob is opened only then).
 */
export async function mountBlob(t: RegistryTransport, repo: Repository, blob: BlobUpload, from: string, opts: CallOptions = {}): Promise<BlobTransfer> {
  const session = t.session(repo.registry);
  const action = t.action(repo, opts, 'push to');
  const { digest } = blob.descriptor;
  return withRetries(t.policy, async () => {
    const url = t.repoUrl(repo, 'blobs/uploads/');
    url.searchParams.set('mount', digest);
    url.searchParams.set('from', from);
    const res = await t.send({
      session, method: 'POST', url, scopes: [...t.scopes(repo, 'push'), `repository:${from}:pull`], ok: [201, 202],
      what: `mount of blob ${shortDigest(digest)} from ${from}`, action, signal: opts.signal, retry: false,
    });
    await res.arrayBuffer().catch(() => undefined);
    if (res.status === 201) return 'mounted' as const;
    await finishUpload(t, session, repo, res.headers.get('location'), blob, action, opts.signal);
    return 'uploaded' as const;
  }, { signal: opts.signal, onRetry: t.retryLogger() });
}
