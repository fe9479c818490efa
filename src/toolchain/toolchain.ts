/**
 * Where a compiler runs: in a throwaway builder container (podman | docker) or on the
 * host. Both see the sources at one path (read-only in a container) and write into one
 * output directory, so compile.ts does not care which it has.
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { PauseBuildError } from '../errors.ts';
import type { Platform } from '../platforms.ts';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type EngineName, type ToolchainKind, engineWorks, imageId, removeContainer, requireEngine } from './engine.ts';

export interface RunRequest {
  /** Commands run in order in outDir; a failure stops the sequence. */
  readonly commands: readonly (readonly string[])[];
  readonly srcDir: string;
  readonly outDir: string;
  readonly signal?: AbortSignal;
  /** Container name suffix, for people reading `podman ps`. */
  readonly label: string;
}

export interface RunResult {
  readonly ok: boolean;
  readonly output: string;
  readonly canceled: boolean;
}

export interface Toolchain {
  readonly kind: ToolchainKind;
  /** The paths the commands must use for sources and outputs. */
  readonly srcPath: (srcDir: string) => string;
  readonly outPath: (outDir: string) => string;
  run(req: RunRequest): Promise<RunResult>;
  /** What, besides the sources and flags, decides the bytes it produces for a platform. */
  identity(platform: Platform): Promise<string>;
}

export const CONTAINER_LABEL = 'io.pause-build.role=compile';

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function containerToolchain(engine: EngineName, image: string): Toolchain {
  let id: Promise<string> | undefined;
  return {
    kind: engine,
    // The image id covers the compilers and the static libcs inside it.
    identity: () => (id ??= imageId(engine, image).then((i) => `${engine}-image:${i}`)),
    srcPath: () => '/src',
    outPath: () => '/out',
    async run(req) {
      const name = `pause-build-${req.label}-${randomBytes(4).toString('hex')}`;
      const script = req.commands.map((c) => c.map(shellQuote).join(' ')).join(' && ');
      const uid = process.getuid?.() ?? 0;
      const gid = process.getgid?.() ?? 0;
      const args = [
        'run', '--rm', '--name', name, '--label', CONTAINER_LABEL, '--network', 'none',
        '--user', `${uid}:${gid}`,
        '-v', `${req.srcDir}:/src:ro`, '-v', `${req.outDir}:/out`, '-w', '/out',
        '--entrypoint', '/bin/sh', image, '-c', script,
      ];
      try {
        const r = await execa(engine, args, { reject: false, all: true, stdin: 'ignore', cancelSignal: req.signal, forceKillAfterDelay: 2000 });
        return { ok: r.exitCode === 0, output: String(r.all ?? ''), canceled: Boolean(r.isCanceled) };
      } finally {
        // `run --rm` only removes a container whose client saw it exit; after an interrupt
        // or a killed client, the container may still be there.
        if (req.signal?.aborted) await removeContainer(engine, name);
      }
    },
  };
}

export function hostToolchain(): Toolchain {
  const ids = new Map<string, Promise<string>>();
  return {
    kind: 'host',
    identity: (platform) => {
      if (!ids.has(platform.arch)) ids.set(platform.arch, hostIdentity(platform));
      return ids.get(platform.arch)!;
    },
    srcPath: (srcDir) => srcDir,
    outPath: (outDir) => outDir,
    async run(req) {
      const out: string[] = [];
      for (const [cmd, ...args] of req.commands) {
        const r = await execa(cmd!, args, { reject: false, all: true, cwd: req.outDir, stdin: 'ignore', cancelSignal: req.signal });
        out.push(String(r.all ?? ''));
        if (r.exitCode !== 0 || r.isCanceled) return { ok: false, output: out.join('\n'), canceled: Boolean(r.isCanceled) };
      }
      return { ok: true, output: out.join('\n'), canceled: false };
    },
  };
}

/** The compiler's and strip's versions and the static libc they link, which Debian packages separately. */
async function hostIdentity(platform: Platform): Promise<string> {
  const first = async (cmd: string, args: string[]) => (await execa(cmd, args, { stdin: 'ignore' })).stdout.split('\n')[0] ?? '';
  const gcc = await first(`${platform.triple}-gcc`, ['--version']);
  const strip = await first(`${platform.triple}-strip`, ['--version']);
  const libcPath = (await execa(`${platform.triple}-gcc`, ['-print-file-name=libc.a'], { stdin: 'ignore' })).stdout.trim();
  const libc = await readFile(libcPath).then((b) => createHash('sha256').update(b).digest('hex'), () => 'no-libc.a');
  return `host:${gcc}|${strip}|libc.a:${libc}`;
}

async function onPath(cmd: string): Promise<boolean> {
  const r = await execa('sh', ['-c', `command -v ${shellQuote(cmd)}`], { reject: false, stdin: 'ignore' });
  return r.exitCode === 0;
}

/** The host toolchain is usable for these platforms only if every gcc and strip is on PATH. */
export async function missingHostTools(platforms: readonly Platform[]): Promise<Platform[]> {
  const missing: Platform[] = [];
  for (const p of platforms) {
    const found = await Promise.all([onPath(`${p.triple}-gcc`), onPath(`${p.triple}-strip`)]);
    if (!found.every(Boolean)) missing.push(p);
  }
  return missing;
}

function hostInstallHint(platforms: readonly Platform[]): string {
  return `apt-get install ${[...new Set(platforms.flatMap((p) => p.debPackages))].join(' ')}`;
}

export async function requireHostTools(platforms: readonly Platform[]): Promise<void> {
  const missing = await missingHostTools(platforms);
  if (missing.length > 0) {
    throw new PauseBuildError(`no host cross compiler for ${missing.map((p) => p.arch).join(', ')} (${missing.map((p) => `${p.triple}-gcc`).join(', ')} not on PATH)`, {
      hint: `install it with \`${hostInstallHint(missing)}\` or use --engine podman|docker`,
    });
  }
}

/**
 * --engine as given, else the first that works: podman, docker, the host toolchain.
 * Checking that it works (not just that it exists) avoids picking a docker CLI with no daemon.
 */
export async function chooseToolchainKind(requested: string | undefined, platforms: readonly Platform[]): Promise<ToolchainKind> {
  if (requested !== undefined) {
    if (requested !== 'podman' && requested !== 'docker' && requested !== 'host') {
      throw new PauseBuildError(`unknown engine "${requested}"`, { hint: 'use --engine podman, docker or host' });
    }
    if (requested === 'host') await requireHostTools(platforms);
    else await requireEngine(requested);
    return requested;
  }
  for (const engine of ['podman', 'docker'] as const) {
    if (await engineWorks(engine).catch(() => false)) return engine;
  }
  if ((await missingHostTools(platforms)).length === 0) return 'host';
  throw new PauseBuildError('no container engine or cross toolchain found', {
    hint: `install podman (\`apt-get install podman runc\`) or docker, or the host compilers (\`${hostInstallHint(platforms)}\`)`,
  });
}
