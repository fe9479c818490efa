/**
 * Compiles the Windows binaries: pause.exe (mingw-w64, upstream's flags, stripped) and
 * wincat.exe (Go, standard library only, reproducible: -trimpath, no build id, no VCS
 * stamp). Both are PE-checked before they are moved into place, so a failed compile
 * leaves nothing behind. They run in one toolchain job, in the builder container or on
 * the host, as the Linux binaries do.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { type CompileCache, cacheKey, sourceInputs } from './cache.ts';
import { CFLAGS } from './compile.ts';
import { PauseBuildError } from './errors.ts';
import { parsePe, peProblems } from './pe.ts';
import type { Platform, WindowsPlatform } from './platforms.ts';
import type { Toolchain } from './toolchain/toolchain.ts';

export interface WindowsCompileRequest {
  /** build/pause/windows/pause.c; its directory also holds wincat/. */
  readonly source: string;
  readonly version: string;
  readonly platform: WindowsPlatform;
  readonly toolchain: Toolchain;
  readonly binDir: string;
  readonly cache?: CompileCache;
  readonly signal?: AbortSignal;
}

export interface WindowsBinary {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly cached: boolean;
}

export interface WindowsBinaries {
  readonly platform: WindowsPlatform;
  readonly pause: WindowsBinary;
  readonly wincat: WindowsBinary;
}

export const WINCAT_DIR = 'wincat';

export function windowsBinaryNames(platform: WindowsPlatform): { pause: string; wincat: string } {
  return { pause: `pause-${platform.name}.exe`, wincat: `wincat-${platform.name}.exe` };
}

/**
 * The commands, with sources at `src` (the directory of pause.c) and output in `out`.
 * Go's caches go under `out` too: a read-only source mount and an unknown user in the
 * container have no other writable home.
 */
export function windowsCompileCommands(spec: Pick<WindowsCompileRequest, 'source' | 'version' | 'platform'>, src: string, out: string): string[][] {
  const names = windowsBinaryNames(spec.platform);
  const pause = `${out}/${names.pause}`;
  const go = `${out}/.go`;
  return [
    [`${spec.platform.triple}-gcc`, ...CFLAGS, `-DVERSION=${spec.version}`, '-o', pause, `${src}/${path.basename(spec.source)}`],
    // strip stamps the PE header with the current time unless SOURCE_DATE_EPOCH says otherwise.
    ['env', 'SOURCE_DATE_EPOCH=0', `${spec.platform.triple}-strip`, pause],
    [
      'env', '-C', `${src}/${WINCAT_DIR}`,
      `HOME=${go}`, `GOCACHE=${go}/cache`, `GOPATH=${go}/path`, 'GOFLAGS=', 'GOPROXY=off', 'GOTOOLCHAIN=local',
      'GOOS=windows', `GOARCH=${spec.platform.goarch}`, 'CGO_ENABLED=0',
      'go', 'build', '-trimpath', '-buildvcs=false', '-ldflags=-s -w -buildid=', '-o', `${out}/${names.wincat}`, '.',
    ],
  ];
}

/** Every file under wincat/ and pause.c (with its quoted headers): what decides the bytes. */
async function windowsSources(source: string): Promise<[string, Buffer][]> {
  const c = await sourceInputs(source);
  const dir = path.join(path.dirname(source), WINCAT_DIR);
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.go') || f === 'go.mod' || f === 'go.sum').sort();
  const go = await Promise.all(files.map(async (f) => [`${WINCAT_DIR}/${f}`, await readFile(path.join(dir, f))] as [string, Buffer]));
  return [...c, ...go];
}

/** The host toolchain's identity for Windows: the compilers' versions (the job runs both). */
function toolchainPlatform(platform: WindowsPlatform): Platform {
  // The toolchain identifies itself per Linux platform row; the mingw triple stands in.
  return { arch: platform.name, triple: platform.triple, oci: { os: 'linux', architecture: platform.arch }, elf: { machine: 0, class: 64, endian: 'little' }, qemu: '', debPackages: platform.debPackages, default: false };
}

export async function windowsCompileKey(req: WindowsCompileRequest, sources: readonly [string, Buffer][]): Promise<string> {
  const identity = await req.toolchain.identity(toolchainPlatform(req.platform));
  const go = req.toolchain.kind === 'host' ? await goVersion() : '';
  return cacheKey({ sources, commands: windowsCompileCommands(req, '/src', '/out'), toolchain: `${identity}|${go}`, arch: req.platform.name });
}

async function goVersion(): Promise<string> {
  const { capture } = await import('./exec.ts');
  const r = await capture('go', ['version']);
  return r.exitCode === 0 ? r.stdout.trim() : 'no-go';
}

function firstError(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /\berror\b/i.test(l)) ?? lines.find((l) => /\.go:\d+/.test(l)) ?? lines[0] ?? 'no output';
}

function check(bytes: Uint8Array, name: string, hint: string): void {
  let problems: string[];
  try {
    problems = peProblems(parsePe(bytes));
  } catch (e) {
    problems = [(e as Error).message];
  }
  if (problems.length > 0) throw new PauseBuildError(`${name} is not a valid Windows amd64 console binary: ${problems.join('; ')}`, { hint });
}

function binary(file: string, bytes: Uint8Array, cached: boolean): WindowsBinary {
  return { path: file, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), cached };
}

export async function compileWindows(req: WindowsCompileRequest): Promise<WindowsBinaries> {
  const { toolchain, platform } = req;
  const names = windowsBinaryNames(platform);
  await mkdir(req.binDir, { recursive: true });
  const work = await mkdtemp(path.join(req.binDir, `.windows-compile-`));
  try {
    const dir = path.join(work, platform.name);
    await mkdir(dir);
    const key = req.cache ? await windowsCompileKey(req, await windowsSources(req.source)) : undefined;
    // One cache entry per binary, both under the one key of the job.
    const cached = key !== undefined && (await req.cache!.restore(`${key}-pause`, path.join(dir, names.pause))) && (await req.cache!.restore(`${key}-wincat`, path.join(dir, names.wincat)));
    if (!cached) {
      const srcDir = path.dirname(req.source);
      const batch = toolchain.runAll({
        srcDir,
        outDir: work,
        jobs: [{ label: platform.name, commands: windowsCompileCommands(req, toolchain.srcPath(srcDir), `${toolchain.outPath(work)}/${platform.name}`) }],
        signal: req.signal,
      });
      const result = await batch.results.get(platform.name)!;
      await batch.done;
      if (result.canceled || req.signal?.aborted) throw new PauseBuildError(`compile for ${platform.name} interrupted`, { exitCode: 130 });
      if (!result.ok) {
        throw new PauseBuildError(`compile for ${platform.name} failed (${toolchain.kind}): ${firstError(result.output)}`, {
          hint: `fix ${path.basename(req.source)} or ${WINCAT_DIR}/; run with --debug for the full compiler output`,
          details: result.output,
        });
      }
    }
    const hint = cached ? `remove the compile cache ${req.cache!.dir} and build again` : `check that ${platform.triple}-gcc and go (GOOS=windows) target ${platform.arch}`;
    const out: Record<'pause' | 'wincat', WindowsBinary> = {} as never;
    for (const which of ['pause', 'wincat'] as const) {
      const built = path.join(dir, names[which]);
      const bytes = await readFile(built);
      check(bytes, names[which], hint);
      if (key !== undefined && !cached) await req.cache!.store(`${key}-${which}`, built);
      out[which] = binary(path.join(req.binDir, names[which]), bytes, cached);
    }
    for (const which of ['pause', 'wincat'] as const) await rename(path.join(dir, names[which]), out[which].path);
    return { platform, pause: out.pause, wincat: out.wincat };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
