/**
 * Where a copied blob waits between its download and its uploads: read once from the
 * source, checked against its digest and size, then opened as often as there are
 * destinations. Small blobs stay in memory; larger ones go to a temp file of their own,
 * removed when the spool is disposed (or at once when the download fails). A local file
 * (an OCI layout's blob) is checked in place and read from there.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PauseBuildError } from '../errors.ts';
import { shortDigest } from '../oci/blob.ts';
import type { Descriptor } from '../oci/types.ts';

/** Blobs up to this size are kept in memory. */
export const DEFAULT_MEMORY_LIMIT = 4 * 1024 * 1024;

/** Where a blob's content comes from: a stream to read once, or a file already on disk. */
export type BlobContent =
  /** `verified`: the stream itself fails, before its end, when its bytes are not the descriptor's (a registry download). */
  | { readonly stream: ReadableStream<Uint8Array>; readonly verified?: boolean }
  | { readonly file: string };

/** A blob ready to upload, as many times as needed. */
export interface SpooledBlob {
  readonly descriptor: Descriptor;
  /** A fresh reader each time: the bytes, or a stream over the file. */
  open(): Promise<Uint8Array | ReadableStream<Uint8Array>>;
}

export interface SpoolOptions {
  /** Parent of the spool's temp directory; default the OS temp dir. */
  readonly tmpdir?: string;
  readonly memoryLimit?: number;
  /** Names the source in errors: `pull from host/repo`, `oci:DIR:TAG`. */
  readonly source: string;
}


function fileReader(file: string): () => Promise<ReadableStream<Uint8Array>> {
  return async () => Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
}

export class Spool {
  private readonly entries = new Map<string, Promise<SpooledBlob>>();
  private dir: Promise<string> | undefined;
  private disposed = false;

  constructor(private readonly opts: SpoolOptions) {}

  /** The blob, fetched on the first call only; every caller shares that one download. */
  get(descriptor: Descriptor, fetch: () => Promise<BlobContent>): Promise<SpooledBlob> {
    let entry = this.entries.get(descriptor.digest);
    if (!entry) {
      entry = fetch().then((content) => this.take(descriptor, content));
      this.entries.set(descriptor.digest, entry);
      entry.catch(() => undefined);
    }
    return entry;
  }

  /** Removes every temp file; later gets fail. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.allSettled(this.entries.values());
    this.entries.clear();
    const dir = await this.dir?.catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  }

  private tempDir(): Promise<string> {
    this.dir ??= mkdtemp(path.join(this.opts.tmpdir ?? os.tmpdir(), 'pause-build-spool-'));
    return this.dir;
  }

  private mismatch(descriptor: Descriptor, got: string, size: number): PauseBuildError {
    return new PauseBuildError(`${this.opts.source}: blob ${shortDigest(descriptor.digest)} is corrupt: its content hashes to ${shortDigest(got)} (${size} bytes, expected ${descriptor.size})`, {
      hint: 'the source changed or corrupted the content; nothing was written for it, try again or repair the source',
    });
  }

  private async take(descriptor: Descriptor, content: BlobContent): Promise<SpooledBlob> {
    if (this.disposed) throw new Error('spool used after dispose');
    // A stream that checks itself is not hashed a second time; its size still is counted.
    const hash = 'verified' in content && content.verified ? undefined : createHash('sha256');
    let size = 0;
    const count = (chunk: Uint8Array) => {
      hash?.update(chunk);
      size += chunk.byteLength;
    };
    const check = () => {
      const got = hash ? `sha256:${hash.digest('hex')}` : descriptor.digest;
      if (got !== descriptor.digest || size !== descriptor.size) throw this.mismatch(descriptor, got, size);
    };

    if ('file' in content) {
      for await (const chunk of createReadStream(content.file)) count(chunk as Buffer);
      check();
      return { descriptor, open: fileReader(content.file) };
    }

    const reader = content.stream as unknown as AsyncIterable<Uint8Array>;
    if (descriptor.size <= (this.opts.memoryLimit ?? DEFAULT_MEMORY_LIMIT)) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of reader) {
        count(chunk);
        // A source that sends more than it declared is cut off, not buffered.
        if (size > descriptor.size) break;
        chunks.push(chunk);
      }
      check();
      const bytes = Buffer.concat(chunks);
      return { descriptor, open: async () => bytes };
    }

    const file = path.join(await this.tempDir(), descriptor.digest.replace(':', '-'));
    try {
      await pipeline(
        Readable.fromWeb(content.stream as import('node:stream/web').ReadableStream<Uint8Array>),
        async function* (source: AsyncIterable<Uint8Array>) {
          for await (const chunk of source) {
            count(chunk);
            yield chunk;
          }
        },
        createWriteStream(file),
      );
      check();
    } catch (e) {
      await rm(file, { force: true });
      throw e;
    }
    return { descriptor, open: fileReader(file) };
  }
}
