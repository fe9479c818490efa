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
import type { Job } from './toolchain.ts';

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
 * arch table (checked here), never from input. One dpkg-query answers for every package:
 * each call reads the whole package database again.
 */
export function componentsScript(platforms: readonly Platform[]): string {
  const rows = platforms.map((p) => {
    const libc = libcPackage(p);
    const gccPkg = compilerPackage(p);
    for (const word of [p.arch, libc, gccPkg, p.triple]) if (!FIELD_RE.test(word)) throw new PauseBuildError(`unexpected name "${word}" in the arch table`);
    return { p, libc, gccPkg };
  });
  const packages = [...new Set(rows.flatMap((r) => [r.libc, r.gccPkg]))];
  return [
    `v="\n$(dpkg-query -W -f='\${Package}=\${Version}\\n' ${packages.join(' ')} 2>/dev/null)"`,
    // The version after "\n<package>=" up to the end of its line; nothing for a package not there.
    `ver() { r=\${v#*"\n$1="}; [ "$r" != "$v" ] && printf '%s' "\${r%%"\n"*}"; }`,
    ...rows.map(({ p, libc, gccPkg }) => `printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' ${p.arch} ${libc} "$(ver ${libc})" ${gccPkg} "$(ver ${gccPkg})" "$(${p.triple}-gcc -dumpfullversion 2>/dev/null)"`),
  ].join('\n');
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

/** A builder image's answer kept in `cache.dir` under its image id, if there is one. */
export async function keptComponents(image: string | undefined, platforms: readonly Platform[], cache: { readonly dir: string; readonly imageId: string } | undefined): Promise<Map<string, ToolchainComponents> | undefined> {
  if (!cache) return undefined;
  const kept = await readFile(componentsCacheFile(cache.dir, cache.imageId, platforms), 'utf8').catch(() => undefined);
  return kept === undefined ? undefined : parseComponents(kept, platforms, `the builder image ${image}`);
}

/** componentsScript's output from the builder image, read and kept under its image id. */
export async function keepComponents(output: string, image: string | undefined, platforms: readonly Platform[], cache: { readonly dir: string; readonly imageId: string } | undefined): Promise<Map<string, ToolchainComponents>> {
  const components = parseComponents(output, platforms, `the builder image ${image}`);
  if (cache) {
    const file = componentsCacheFile(cache.dir, cache.imageId, platforms);
    // Written aside and renamed: a reader never sees half of it.
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.${process.pid}.tmp`, output);
    await rename(`${file}.${process.pid}.tmp`, file);
  }
  return components;
}

/** componentsScript as a job of a builder container's batch: the compile's container can answer it too. */
export function componentsJob(platforms: readonly Platform[]): Job {
  return { label: 'toolchain-components', commands: [['/bin/sh', '-c', componentsScript(platforms)]] };
}

/** The error of a builder image that could not say its versions. */
export function componentsFailed(where: string, output: string, code?: unknown): PauseBuildError {
  return new PauseBuildError(`reading the toolchain versions in ${where} failed: ${(output.split('\n')[0] ?? '').trim() || code}`, {
    hint: 'run with --debug, or pass --no-attestations',
    details: output,
  });
}

/**
 * Runs the script in the builder image (a throwaway container with no network) or on the
 * host. A builder image's answer is kept in `cache.dir` under its image id: an image never
 * changes its packages, so one container run per image is enough.
 */
export async function readComponents(kind: ToolchainKind, image: string | undefined, platforms: readonly Platform[], cache?: { readonly dir: string; readonly imageId: string }): Promise<Map<string, ToolchainComponents>> {
  const script = componentsScript(platforms);
  if (kind === 'host') {
    const r = await capture('sh', ['-c', script], { timeout: 120_000 });
    if (r.exitCode !== 0) throw componentsFailed('the host toolchain', r.stderr, r.code || r.signal);
    return parseComponents(r.stdout, platforms, 'the host toolchain');
  }
  const kept = await keptComponents(image, platforms, cache);
  if (kept) return kept;
  const r = await capture(kind, ['run', '--rm', '--network', 'none', '--log-driver', 'none', '--entrypoint', '/bin/sh', image!, '-c', script], { timeout: 120_000 });
  if (r.exitCode !== 0) throw componentsFailed(`the builder image ${image}`, r.stderr, r.code || r.signal);
  return keepComponents(r.stdout, image, platforms, cache);
}
