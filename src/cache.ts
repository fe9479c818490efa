/**
 * The compile cache: a binary is stored under a hash of everything that determines its
 * bytes (source and local headers, flags, version string, toolchain identity, arch), so
 * an unchanged input never reaches the compiler twice.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export function defaultCacheDir(env = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'pause-build', 'bin');
}

const LOCAL_INCLUDE = /^\s*#\s*include\s+"([^"]+)"/gm;

/**
 * The source and the headers it includes with quotes, recursively, as [name, bytes]
 * pairs. System headers come from the toolchain and are covered by its identity.
 */
export async function sourceInputs(source: string): Promise<[string, Buffer][]> {
  const seen = new Map<string, Buffer>();
  const visit = async (file: string) => {
    if (seen.has(file)) return;
    // Only regular files: a FIFO or device would block or never end.
    if (!(await stat(file)).isFile()) return;
    const bytes = await readFile(file);
    seen.set(file, bytes);
    for (const m of bytes.toString('latin1').matchAll(LOCAL_INCLUDE)) {
      const header = path.resolve(path.dirname(file), m[1]!);
      // A missing header is the compiler's error to report, not the cache's.
      await visit(header).catch(() => undefined);
    }
  };
  await visit(source);
  const root = path.dirname(source);
  return [...seen].map(([file, bytes]) => [path.relative(root, file), bytes] as [string, Buffer]).sort(([a], [b]) => a.localeCompare(b));
}

export interface CacheKeyInput {
  readonly sources: readonly [string, Buffer][];
  readonly commands: readonly (readonly string[])[];
  readonly toolchain: string;
  readonly arch: string;
}

/** Length-prefixed fields, so that no two different inputs hash alike. */
export function cacheKey(input: CacheKeyInput): string {
  const h = createHash('sha256');
  const field = (s: string | Buffer) => {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    h.update(`${b.length}:`).update(b);
  };
  field('pause-build compile v1');
  field(input.arch);
  field(input.toolchain);
  for (const c of input.commands) field(c.join('\0'));
  for (const [name, bytes] of input.sources) {
    field(name);
    field(bytes);
  }
  return h.digest('hex');
}

export class CompileCache {
  constructor(readonly dir: string) {}

  private file(key: string): string {
    return path.join(this.dir, key.slice(0, 2), key);
  }

  /** Copies a cached binary to `dest`; false when there is none. */
  async restore(key: string, dest: string): Promise<boolean> {
    try {
      await copyFile(this.file(key), dest);
      return true;
    } catch {
      return false;
    }
  }

  /** Stores `file` under `key`; a cache that cannot be written only costs a recompile. */
  async store(key: string, file: string): Promise<void> {
    const target = this.file(key);
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(file, tmp);
      await rename(tmp, target);
    } catch {
      await rm(tmp, { force: true });
    }
  }
}
