/**
 * What a toolchain puts into a static binary, as its package manager names it: the C
 * library that is linked in and the compiler that built it. Read where the compiler runs
 * (the builder image, or the host), because that is the only place that knows; an SBOM
 * built from a table in this repository would say what we meant to install, not what was.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PauseBuildError } from '../errors.ts';
import { capture } from '../exec.ts';
import type { Platform } from '../platforms.ts';
import type { ToolchainKind } from './engine.ts';

export interface DebianPackage {
  readonly name: string;
  readonly version: string;
}

export interface ToolchainComponents {
  readonly arch: string;
  /** The static C library (libc6-dev or libc6-dev-<arch>-cross). */
  readonly libc: DebianPackage;
  /** The compiler driver's package (gcc, gcc-<triple>). */
  readonly compilerPackage: DebianPackage;
  /** `<triple>-gcc`. */
  readonly compiler: string;
  /** `<triple>-gcc -dumpfullversion`, e.g. 12.2.0. */
  readonly compilerVersion: string;
}

/** The libc6-dev package of a platform's row: Debian ships the static libc there. */
export function libcPackage(p: Pick<Platform, 'arch' | 'debPackages'>): string {
  const name = p.debPackages.find((d) => d.startsWith('libc6-dev'));
  if (!name) throw new PauseBuildError(`the ${p.arch} row of the arch table names no libc6-dev package`);
  return name;
}

function compilerPackage(p: Pick<Platform, 'debPackages'>): string {
  return p.debPackages.find((d) => d.startsWith('gcc')) ?? 'gcc';
}

const FIELD_RE = /^[\w.+:~-]+$/;

/**
 * One shell script that prints a tab-separated line per arch: arch, libc package, its
 * version, compiler package, its version, the compiler's own version. Names come from the
 * arch table (checked here), never from input.
 */
export function componentsScript(platforms: readonly Platform[]): string {
  return platforms
    .map((p) => {
      const libc = libcPackage(p);
      const gccPkg = compilerPackage(p);
      for (const word of [p.arch, libc, gccPkg, p.triple]) if (!FIELD_RE.test(word)) throw new PauseBuildError(`unexpected name "${word}" in the arch table`);
      const q = (pkg: string) => `$(dpkg-query -W -f='\${Version}' ${pkg} 2>/dev/null)`;
      return `printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' ${p.arch} ${libc} "${q(libc)}" ${gccPkg} "${q(gccPkg)}" "$(${p.triple}-gcc -dumpfullversion 2>/dev/null)"`;
    })
    .join('\n');
}

/** Parses componentsScript's output; a missing version is an error naming the package. */
export function parseComponents(output: string, platforms: readonly Platform[], where: string): Map<string, ToolchainComponents> {
  const rows = new Map<string, string[]>();
  for (const line of output.split('\n')) {
    const cells = line.split('\t');
    if (cells.length === 6) rows.set(cells[0]!, cells);
  }
  const out = new Map<string, ToolchainComponents>();
  for (const p of platforms) {
    const row = rows.get(p.arch);
    const [, libc, libcVersion, gccPkg, gccPkgVersion, gccVersion] = row ?? [];
    const missing = !row ? `versions for ${p.arch}` : !libcVersion ? `package ${libc}` : !gccPkgVersion ? `package ${gccPkg}` : !gccVersion ? `${p.triple}-gcc` : undefined;
    if (missing) {
      throw new PauseBuildError(`cannot read the version of ${missing} in ${where}`, {
        hint: `the SBOM needs it: install ${p.debPackages.join(' ')} there, or pass --no-attestations`,
      });
    }
    out.set(p.arch, {
      arch: p.arch,
      libc: { name: libc!, version: libcVersion! },
      compilerPackage: { name: gccPkg!, version: gccPkgVersion! },
      compiler: `${p.triple}-gcc`,
      compilerVersion: gccVersion!,
    });
  }
  return out;
}

/** Where a builder image's answer for these platforms is kept. */
export function componentsCacheFile(dir: string, imageId: string, platforms: readonly Platform[]): string {
  return path.join(dir, `${createHash('sha256').update(`${imageId}\n${componentsScript(platforms)}`).digest('hex')}.tsv`);
}

/**
 * Runs the script in the builder image (a throwaway container with no network) or on the
 * host. A builder image's answer is kept in `cache.dir` under its image id: an image never
 * changes its packages, so one container run per image is enough.
 */
export async function readComponents(kind: ToolchainKind, image: string | undefined, platforms: readonly Platform[], cache?: { readonly dir: string; readonly imageId: string }): Promise<Map<string, ToolchainComponents>> {
  const script = componentsScript(platforms);
  const where = kind === 'host' ? 'the host toolchain' : `the builder image ${image}`;
  const file = kind === 'host' || !cache ? undefined : componentsCacheFile(cache.dir, cache.imageId, platforms);
  const kept = file === undefined ? undefined : await readFile(file, 'utf8').catch(() => undefined);
  if (kept !== undefined) return parseComponents(kept, platforms, where);
  const args = kind === 'host' ? ['-c', script] : ['run', '--rm', '--network', 'none', '--log-driver', 'none', '--entrypoint', '/bin/sh', image!, '-c', script];
  const r = await capture(kind === 'host' ? 'sh' : kind, args, { timeout: 120_000 });
  if (r.exitCode !== 0) {
    throw new PauseBuildError(`reading the toolchain versions in ${where} failed: ${(r.stderr.split('\n')[0] ?? '').trim() || r.code || r.signal}`, {
      hint: 'run with --debug, or pass --no-attestations',
      details: r.stderr,
    });
  }
  const components = parseComponents(r.stdout, platforms, where);
  if (file !== undefined) {
    // Written aside and renamed: a reader never sees half of it.
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.${process.pid}.tmp`, r.stdout);
    await rename(`${file}.${process.pid}.tmp`, file);
  }
  return components;
}
