/**
 * Gzip of layer tars, which is most of what assembling an image costs: done in worker
 * threads (so that it overlaps with compiling and running the other arches, and one
 * layer does not wait for another), remembered by the tar's digest for the rest of the
 * run, and kept on disk across runs. The bytes are always exactly what gzip() in tar.ts
 * gives for the tar: the same fflate build and level, and a cached entry is used only
 * after it has been decompressed back to the very tar.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { GZIP_LEVEL, gzip } from './tar.ts';

const require = createRequire(import.meta.url);

/** Where fflate's CommonJS build is (the workers load it), and its version (part of every cache key). */
function fflateBuild(): { main: string; version: string } {
  return { main: require.resolve('fflate'), version: fflateVersion() };
}

let version: string | undefined;

/** From fflate's package.json, which its exports name: a no-op publish asks this and loads nothing else of fflate. */
function fflateVersion(): string {
  version ??= (require('fflate/package.json') as { version?: string }).version ?? 'unknown';
  return version;
}

let build: { main: string; version: string } | undefined;

/** What, besides the tar, decides the gzip bytes: fflate's version and the level. */
export function layerFormat(): string {
  return `fflate ${fflateVersion()} level ${GZIP_LEVEL}`;
}

/** Runs in each worker: the same call as gzip() in tar.ts, on fflate's CommonJS build. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { gzipSync } = require(workerData.fflate);
parentPort.on('message', ({ id, tar }) => {
  const out = gzipSync(tar, { level: workerData.level, mtime: 0 });
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

interface Pending {
  resolve(bytes: Uint8Array): void;
  reject(err: unknown): void;
}

/** A worker that compresses one tar after another. It keeps the process alive only while it has work. */
class GzipWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  /** Set once the thread has failed or ended: it answers nothing more. */
  dead = false;

  constructor(fflate: string) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { fflate, level: GZIP_LEVEL } });
    this.worker.unref();
    this.worker.on('message', ({ id, out }: { id: number; out: Uint8Array }) => {
      this.pending.get(id)?.resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      this.pending.delete(id);
      if (this.pending.size === 0) this.worker.unref();
    });
    this.worker.on('error', (err) => {
      this.dead = true;
      this.failAll(err);
    });
    this.worker.on('exit', () => {
      this.dead = true;
      this.failAll(new Error('gzip worker exited'));
    });
  }

  get load(): number {
    return this.pending.size;
  }

  gzip(tar: Uint8Array): Promise<Uint8Array> {
    if (this.dead) return Promise.reject(new Error('gzip worker exited'));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, tar });
    });
  }

  private failAll(err: unknown): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}

export interface CompressorOptions {
  /** Directory of the on-disk cache; undefined keeps results for this run only. */
  readonly cacheDir?: string;
  /** Worker threads; 0 compresses on the main thread. Default: one per CPU but one (which runs everything else), 1 to 4. */
  readonly threads?: number;
  /** The fflate CommonJS build the workers load (default: the one this process resolves). */
  readonly fflate?: string;
}

export class LayerCompressor {
  private readonly memo = new Map<string, Promise<Uint8Array>>();
  private readonly workers: GzipWorker[] = [];
  private readonly threads: number;

  constructor(private readonly opts: CompressorOptions = {}) {
    this.threads = opts.threads ?? Math.max(1, Math.min(4, availableParallelism() - 1));
  }

  /** gzip(tar), from memory, the disk cache or a worker; started at most once per distinct tar. */
  compress(tar: Uint8Array): Promise<Uint8Array> {
    const digest = createHash('sha256').update(tar).digest('hex');
    let result = this.memo.get(digest);
    if (!result) {
      result = this.produce(tar, digest);
      this.memo.set(digest, result);
      // A failure is reported to whoever awaits it; a prefetch nobody awaits must not crash the run.
      result.catch(() => this.memo.delete(digest));
    }
    return result;
  }

  /** Stops the worker threads; later calls start new ones. */
  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private cacheFile(digest: string): string | undefined {
    if (this.opts.cacheDir === undefined) return undefined;
    const key = createHash('sha256').update(`pause-build gzip v1\0${layerFormat()}\0${digest}`).digest('hex');
    return path.join(this.opts.cacheDir, key.slice(0, 2), `${key}.gz`);
  }

  private async produce(tar: Uint8Array, digest: string): Promise<Uint8Array> {
    const file = this.cacheFile(digest);
    if (file !== undefined) {
      const cached = await readFile(file).catch(() => undefined);
      if (cached && unpacksTo(cached, digest)) return new Uint8Array(cached.buffer, cached.byteOffset, cached.byteLength);
    }
    const gzipped = await this.gzip(tar);
    if (file !== undefined) await store(file, gzipped);
    return gzipped;
  }

  private gzip(tar: Uint8Array): Promise<Uint8Array> {
    if (this.threads <= 0) return Promise.resolve(gzip(tar));
    // A thread that died answers nothing: left in the pool, a tar given to it would wait
    // forever, and with nothing else to do the process would end as if all went well.
    for (let i = this.workers.length - 1; i >= 0; i--) if (this.workers[i]!.dead) this.workers.splice(i, 1);
    if (this.workers.length < this.threads && this.workers.every((w) => w.load > 0)) {
      build ??= fflateBuild();
      this.workers.push(new GzipWorker(this.opts.fflate ?? build.main));
    }
    const idlest = this.workers.reduce((a, b) => (b.load < a.load ? b : a));
    // postMessage copies the tar: the caller keeps its own.
    return idlest.gzip(tar);
  }
}

/** A cached entry counts only if it decompresses to the tar it is filed under (zlib: any inflate gives the same bytes). */
function unpacksTo(gzipped: Uint8Array, digest: string): boolean {
  try {
    return createHash('sha256').update(gunzipSync(gzipped)).digest('hex') === digest;
  } catch {
    return false;
  }
}

/** A cache that cannot be written only costs compressing again next time. */
async function store(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch {
    await rm(tmp, { force: true });
  }
}
