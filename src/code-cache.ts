/**
 * Runs the bundled CLI (dist/main.js) with V8's code cache: compiling the bundle and the
 * functions a run calls is a fifth of a short command's time, and Node.js 20 has no compile
 * cache of its own (module.enableCompileCache is 22.1+). The cache is what V8 gives after a
 * run (so it holds the functions that run compiled), kept in the user's cache directory
 * under the Node.js version, and used only for the very bundle it was made from:
 *
 *   sha256(bundle) (32 bytes) | crc32(data) (4 bytes, big-endian) | data
 *
 * V8 checks its own version and flags but, of the source, only the length: the hash here is
 * what ties a cache to its bundle. Anything that does not fit (another bundle, a torn or
 * corrupt file, a cache V8 rejects) is compiled as if there were no cache, and replaced
 * once the run ends. A cache that cannot be read or written only costs that compile.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { crc32 } from 'node:zlib';
import { COMMANDS } from './command-names.ts';
import { BUNDLE_SHA256, LENT_IMPORT } from './packages.ts';

const HEADER = 36;

/**
 * Where the cache goes: beside pause-build's other caches, one per Node.js, command (each
 * command calls functions of its own, and a cache holds those of the run that made it) and
 * place the bundle is installed at (two installs run one after the other would otherwise
 * each replace the other's cache; a rebuild in place replaces its own). None when there is
 * no home to put it in, or when NODE_DISABLE_COMPILE_CACHE is set, as for Node.js's own cache.
 */
export function codeCacheFile(bundle: string, env: NodeJS.ProcessEnv = process.env, args: readonly string[] = process.argv.slice(2)): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  const base = env.XDG_CACHE_HOME || (os.homedir() ? path.join(os.homedir(), '.cache') : '');
  if (!path.isAbsolute(base)) return undefined;
  const first = args.find((a) => !a.startsWith('-'));
  const command = first !== undefined && COMMANDS.has(first) ? first : 'cli';
  const place = createHash('sha256').update(path.resolve(bundle)).digest('hex').slice(0, 12);
  return path.join(base, 'pause-build', 'code-cache', `node-${process.version}-${process.arch}-${command}-${place}.bin`);
}

/** The cached data for `source` in `file`, if the file holds a whole cache of exactly this source. */
export function readCodeCache(file: string, sourceHash: Buffer): Buffer | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  if (bytes.length <= HEADER || !bytes.subarray(0, 32).equals(sourceHash)) return undefined;
  const data = bytes.subarray(HEADER);
  return crc32(data) === bytes.readUInt32BE(32) ? data : undefined;
}

/**
 * Writes the cache aside and renames it into place (a reader never sees half of one), in a
 * directory only the user can write to: one that belongs to someone else is left alone.
 */
export function writeCodeCache(file: string, sourceHash: Buffer, data: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const dir = path.dirname(file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const uid = process.getuid?.();
    if (uid !== undefined && statSync(dir).uid !== uid) return;
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(data));
    writeFileSync(tmp, Buffer.concat([sourceHash, crc, data]), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    rmSync(tmp, { force: true });
  }
}

/** Runs the CommonJS file `bundle` as Node.js would, compiled from the code cache when one fits; true when one did. */
export function runBundle(bundle: string, cacheFile = codeCacheFile(bundle)): boolean {
  const bytes = readFileSync(bundle);
  const hash = createHash('sha256').update(bytes).digest();
  const cached = cacheFile === undefined ? undefined : readCodeCache(cacheFile, hash);
  // As Node.js wraps a CommonJS module (a first line #! made a comment).
  const text = bytes.toString('utf8').replace(/^#!/, '//');
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) { ${text}\n});`, {
    filename: bundle,
    ...(cached ? { cachedData: cached } : {}),
  });
  if (cacheFile !== undefined && (!cached || script.cachedDataRejected)) {
    // After the run, so that the functions it compiled are in the cache too. Only then: a
    // cache of a million bytes takes V8 some 8 ms to make, more than a short command saves.
    process.once('exit', () => writeCodeCache(cacheFile, hash, script.createCachedData()));
  }
  // The bundle's import() of the packages outside it (src/packages.ts), resolved from here.
  (globalThis as { [LENT_IMPORT]?: (name: string) => Promise<unknown> })[LENT_IMPORT] = (name) => import(name);
  // The publish record's fingerprint of the bundle (src/publish-record.ts) need not read and hash it again.
  (globalThis as { [BUNDLE_SHA256]?: Buffer })[BUNDLE_SHA256] = hash;
  const module = { exports: {} };
  const run = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
  run.call(module.exports, module.exports, createRequire(bundle), module, bundle, path.dirname(bundle));
  return cached !== undefined && !script.cachedDataRejected;
}
