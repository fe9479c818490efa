/**
 * The kube-cross-like builder image: build/cross/Dockerfile built on a Debian base and
 * tagged by a hash of what defines it, so it is rebuilt only when that changes.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PauseBuildError } from '../errors.ts';
import { capture, loadExeca } from '../exec.ts';
import { type EngineName, imageExists } from './engine.ts';

export const DEFAULT_BASE = 'docker.io/library/debian:bookworm-slim';
/** What build/setup.sh makes with debootstrap where nothing can be pulled. */
export const LOCAL_BASE = 'localhost/debian:bookworm-slim';
export const BUILDER_REPO = 'localhost/pause-build/cross';

export interface BuilderSpec {
  readonly dockerfile: string;
  /** undefined: the local debootstrap base when the engine has it, else Debian's official image. */
  readonly base: string | undefined;
}

export function builderSpec(root: string, base = process.env.PAUSE_BUILD_BASE): BuilderSpec {
  return { dockerfile: path.join(root, 'build', 'cross', 'Dockerfile'), base: base || undefined };
}

export async function resolveBase(engine: EngineName, spec: BuilderSpec): Promise<string> {
  if (spec.base) return spec.base;
  return (await imageExists(engine, LOCAL_BASE)) ? LOCAL_BASE : DEFAULT_BASE;
}

/** localhost/pause-build/cross:<first 16 hex of sha256(Dockerfile, base)>. */
export async function builderImage(dockerfile: string, base: string): Promise<string> {
  let text: Buffer;
  try {
    text = await readFile(dockerfile);
  } catch {
    throw new PauseBuildError(`builder Dockerfile not found at ${dockerfile}`, { hint: 'run pause-build from the project root or pass --root' });
  }
  const hash = createHash('sha256').update(text).update('\0').update(base).digest('hex');
  return `${BUILDER_REPO}:${hash.slice(0, 16)}`;
}

/** The engine to ask for the builder first: usually it answers and has it, and one `image inspect` tells both. */
export function likelyEngine(engine: string | undefined): EngineName | undefined {
  return engine === undefined ? 'podman' : engine === 'podman' || engine === 'docker' ? engine : undefined;
}

/**
 * The builder image and its id from one `image inspect`, when the engine answers and has
 * it (built on the local base when no base is given, as resolveBase prefers). undefined
 * otherwise: then requireEngine and ensureBuilder find out what is missing, or build it.
 */
export function findBuilder(engine: EngineName, spec: BuilderSpec): Promise<{ image: string; id: string } | undefined> {
  const key = lookupKey(engine, spec);
  const early = earlyLookups.get(key);
  earlyLookups.delete(key);
  return early ?? lookUpBuilder(engine, spec);
}

/** Lookups started ahead of their findBuilder, each taken once (a later call asks again). */
const earlyLookups = new Map<string, Promise<{ image: string; id: string } | undefined>>();

function lookupKey(engine: EngineName, spec: BuilderSpec): string {
  return `${engine}\0${spec.dockerfile}\0${spec.base ?? ''}`;
}

/**
 * Starts the findBuilder of a command that will need it, while the command still reads its
 * options and asks git: the engine's answer then is there when the toolchain is chosen.
 */
export function findBuilderEarly(engine: EngineName, spec: BuilderSpec): void {
  earlyLookups.set(lookupKey(engine, spec), lookUpBuilder(engine, spec));
}

async function lookUpBuilder(engine: EngineName, spec: BuilderSpec): Promise<{ image: string; id: string } | undefined> {
  try {
    const image = await builderImage(spec.dockerfile, spec.base ?? LOCAL_BASE);
    const refs = spec.base ? [image] : [LOCAL_BASE, image];
    const r = await capture(engine, ['image', 'inspect', '--format', '{{.Id}}', ...refs], { timeout: 15_000 });
    const ids = r.stdout.trim().split('\n').filter(Boolean);
    return r.exitCode === 0 && ids.length === refs.length ? { image, id: ids.at(-1)! } : undefined;
  } catch {
    return undefined;
  }
}

export interface EnsureResult {
  readonly image: string;
  readonly built: boolean;
}

export async function ensureBuilder(
  engine: EngineName,
  spec: BuilderSpec,
  opts: { rebuild?: boolean; signal?: AbortSignal; onLine?: (line: string) => void } = {},
): Promise<EnsureResult> {
  const base = await resolveBase(engine, spec);
  const image = await builderImage(spec.dockerfile, base);
  if (!opts.rebuild && (await imageExists(engine, image))) return { image, built: false };
  const args = ['build', '--network', 'host', '--build-arg', `BASE=${base}`, '-t', image, '-f', spec.dockerfile, path.dirname(spec.dockerfile)];
  const { execa } = await loadExeca();
  const proc = execa(engine, args, { reject: false, all: true, stdin: 'ignore', cancelSignal: opts.signal, env: { DOCKER_BUILDKIT: '0' } });
  if (opts.onLine) proc.all?.on('data', (d: Buffer) => d.toString().split('\n').filter(Boolean).forEach((l) => opts.onLine?.(l)));
  const r = await proc;
  if (r.isCanceled) throw new PauseBuildError('builder image build interrupted');
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? '').trim().split('\n').slice(-3).join(' | ');
    throw new PauseBuildError(`building the builder image with ${engine} failed: ${tail}`, {
      hint: `check that the base image ${base} exists locally or can be pulled (set it with --base)`,
    });
  }
  return { image, built: true };
}
