/** Blobs: whether a repository holds one (HEAD), and its bytes (GET), cut at the declared size and checked against the digest. */
import { createHash } from 'node:crypto';
import { shortDigest } from '../oci/blob.ts';
import type { Repository } from './reference.ts';
import { RegistryError, withRetries } from './retry.ts';
import type { CallOptions, RegistryTransport } from './transport.ts';

/** The blob's size when the repository has it, else undefined. */
export async function blobExists(t: RegistryTransport, repo: Repository, digest: string, opts: CallOptions = {}): Promise<number | undefined> {
  const session = t.session(repo.registry);
  const res = await t.send({
    session, method: 'HEAD', url: t.repoUrl(repo, `blobs/${digest}`), scopes: t.scopes(repo, opts.access), ok: [200, 404],
    what: `check of blob ${shortDigest(digest)}`, action: t.action(repo, opts, 'read'), signal: opts.signal, retry: true,
  });
  if (res.status === 404) return undefined;
  const length = Number(res.headers.get('content-length'));
  return Number.isFinite(length) ? length : 0;
}

/** The blob's bytes as a stream that fails at its end when they do not match the digest. */
export async function getBlob(t: RegistryTransport, repo: Repository, digest: string, opts: CallOptions = {}): Promise<{ size: number | undefined; stream: ReadableStream<Uint8Array> }> {
  return openBlob(t, repo, digest, opts, true);
}

async function openBlob(t: RegistryTransport, repo: Repository, digest: string, opts: CallOptions, retry: boolean): Promise<{ size: number | undefined; stream: ReadableStream<Uint8Array> }> {
  const session = t.session(repo.registry);
  const action = t.action(repo, opts, 'pull from');
  const res = await t.send({
    session, method: 'GET', url: t.repoUrl(repo, `blobs/${digest}`), scopes: t.scopes(repo, opts.access), ok: [200],
    what: `download of blob ${shortDigest(digest)}`, action, signal: opts.signal, retry,
    read: { maxBytes: opts.size ?? Number.MAX_SAFE_INTEGER, ...(opts.size === undefined ? {} : { sizeHint: opts.size, what: `its declared ${opts.size} bytes` }), hint: 'the registry or a proxy sent other content; nothing was written for it' },
  });
  const lengthHeader = res.headers.get('content-length');
  const size = lengthHeader === null ? undefined : Number(lengthHeader);
  const declared = opts.size;
  const tooLarge = (n: number) => new RegistryError(`${action}: blob ${shortDigest(digest)} is larger than its declared ${declared} bytes (${n} bytes or more)`, { hint: 'the registry or a proxy sent other content; nothing was written for it' });
  if (declared !== undefined && size !== undefined && size > declared) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(size);
  }
  const hash = createHash('sha256');
  let seen = 0;
  const verify = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (declared !== undefined && seen > declared) {
        controller.error(tooLarge(seen));
        return;
      }
      hash.update(chunk);
      controller.enqueue(chunk);
    },
    flush(controller) {
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) {
        controller.error(new RegistryError(`${action}: blob ${shortDigest(digest)} arrived as ${shortDigest(got)} (${seen} bytes)`, { hint: 'the registry or a proxy changed the content; try again' }));
      }
    },
  });
  const body = res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  return { size, stream: body.pipeThrough(verify) };
}

/** The whole blob, verified against its digest; a download that breaks off is started again. */
export async function readBlob(t: RegistryTransport, repo: Repository, digest: string, opts: CallOptions = {}): Promise<Uint8Array> {
  return withRetries(t.policy, async () => {
    const { stream } = await openBlob(t, repo, digest, opts, false);
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }, { signal: opts.signal, onRetry: t.retryLogger() });
}
