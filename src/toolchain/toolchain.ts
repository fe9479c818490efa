/**
 * Where a compiler runs: in a throwaway builder container (podman | docker) or on the
 * host. Both see the sources at one path (read-only in a container) and write into one
 * output directory, so compile.ts does not care which it has. A batch of jobs (one per
 * arch) runs in a single container: starting a container costs more than compiling.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { PauseBuildError } from '../errors.ts';
import { capture, loadExeca } from '../exec.ts';
import type { Platform } from '../platforms.ts';
import { type EngineName, type ToolchainKind, engineWorks, imageId, removeContainer, requireEngine } from './engine.ts';

export interface Job {
  /** Names the job's own directory under the batch's outDir (an arch), and its result. */
  readonly label: string;
  /** Commands run in order in the job's directory; a failure stops this job only. */
  readonly commands: readonly (readonly string[])[];
}

export interface BatchRequest {
  readonly srcDir: string;
  /** Holds one existing directory per job, named by its label; a job writes only there. */
  readonly outDir: string;
  readonly jobs: readonly Job[];
  readonly signal?: AbortSignal;
}

export interface RunResult {
  readonly ok: boolean;
  readonly output: string;
  readonly canceled: boolean;
}

/** A running batch. */
export interface Batch {
  /** Each job's result, as soon as that job is done (not when the whole batch is). */
  readonly results: ReadonlyMap<string, Promise<RunResult>>;
  /** Settles once everything the batch started has ended (the container is gone). */
  readonly done: Promise<void>;
}

export interface Toolchain {
  readonly kind: ToolchainKind;
  /** The paths the commands must use for sources and outputs. */
  readonly srcPath: (srcDir: string) => string;
  readonly outPath: (outDir: string) => string;
  /** Runs every job independently, side by side; one result per label, failed or not. */
  runAll(req: BatchRequest): Batch;
  /** What, besides the sources and flags, decides the bytes it produces for a platform. */
  identity(platform: Platform): Promise<string>;
  /** A builder container's image id (`sha256:…`), looked up once; none on the host. */
  readonly imageId?: () => Promise<string>;
}

export const CONTAINER_LABEL = 'io.pause-build.role=compile';

/**
 * Written by the container's script into each job's directory: its output, and its exit
 * status once it is done (renamed into place, so it is never seen half-written).
 */
const STATUS_FILE = '.status';
const LOG_FILE = '.log';
/** How often the job directories are looked at while the container runs. */
const POLL_MS = 20;

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * One shell script for a batch: each job in the background, in its own directory, its
 * output and exit status kept in files there, so one failing job hides nothing of another.
 */
export function batchScript(outPath: string, jobs: readonly Job[]): string {
  const lines = jobs.map((job) => {
    const dir = shellQuote(`${outPath}/${job.label}`);
    const commands = job.commands.map((c) => c.map(shellQuote).join(' ')).join(' && ');
    return `{ (cd ${dir} && ${commands}) >${dir}/${LOG_FILE} 2>&1; echo $? >${dir}/${STATUS_FILE}.tmp && mv ${dir}/${STATUS_FILE}.tmp ${dir}/${STATUS_FILE}; } &`;
  });
  return [...lines, 'wait'].join('\n');
}

/** A job's result from the files the script left, or undefined while it has no status. */
async function jobResult(dir: string): Promise<RunResult | undefined> {
  const status = await readFile(path.join(dir, STATUS_FILE), 'utf8').catch(() => undefined);
  if (status === undefined) return undefined;
  const log = await readFile(path.join(dir, LOG_FILE), 'utf8').catch(() => '');
  return { ok: status.trim() === '0', output: log, canceled: false };
}

/** `knownId`: the image id when the caller has already looked it up. */
export function containerToolchain(engine: EngineName, image: string, knownId?: string): Toolchain {
  let id: Promise<string> | undefined = knownId === undefined ? undefined : Promise.resolve(knownId);
  return {
    kind: engine,
    // The image id covers the compilers and the static libcs inside it.
    identity: () => (id ??= imageId(engine, image)).then((i) => `${engine}-image:${i}`),
    imageId: () => (id ??= imageId(engine, image)),
    srcPath: () => '/src',
    outPath: () => '/out',
    runAll(req) {
      const name = `pause-build-compile-${randomBytes(4).toString('hex')}`;
      const uid = process.getuid?.() ?? 0;
      const gid = process.getgid?.() ?? 0;
      const args = [
        // No log driver: the output is read from the job files, and podman's log costs ~60 ms a run.
        'run', '--rm', '--name', name, '--label', CONTAINER_LABEL, '--network', 'none', '--log-driver', 'none',
        '--user', `${uid}:${gid}`,
        '-v', `${req.srcDir}:/src:ro`, '-v', `${req.outDir}:/out`, '-w', '/out',
        '--entrypoint', '/bin/sh', image, '-c', batchScript('/out', req.jobs),
      ];
      const container = (async () => {
        try {
          const { execa } = await loadExeca();
          const r = await execa(engine, args, { reject: false, all: true, stdin: 'ignore', cancelSignal: req.signal, forceKillAfterDelay: 2000 });
          return { output: String(r.all ?? ''), canceled: Boolean(r.isCanceled) || Boolean(req.signal?.aborted), what: `the ${engine} container (exit ${r.exitCode ?? r.signal})` };
        } finally {
          // `run --rm` only removes a container whose client saw it exit (after an interrupt
          // or a killed client it may still be there), and podman may finish removing it
          // after its client has returned: make sure it is gone before the batch is done.
          await removeContainer(engine, name);
        }
      })();
      let exited = false;
      const ended = container.finally(() => {
        exited = true;
      });
      ended.catch(() => undefined); // a failure reaches each job through `await container`
      const results = new Map<string, Promise<RunResult>>();
      for (const job of req.jobs) {
        const dir = path.join(req.outDir, job.label);
        results.set(job.label, (async (): Promise<RunResult> => {
          // Each job is taken as soon as its status is there: the others and the container's
          // removal need not be waited for.
          while (!exited && !req.signal?.aborted) {
            const done = await jobResult(dir);
            if (done) return done;
            await Promise.race([sleep(POLL_MS), ended.catch(() => undefined)]);
          }
          const end = await container;
          const done = end.canceled ? undefined : await jobResult(dir);
          if (done) return done;
          const log = await readFile(path.join(dir, LOG_FILE), 'utf8').catch(() => '');
          const output = [log, end.output].map((t) => t.trim()).filter(Boolean).join('\n') || `${end.what} ended before compiling ${job.label}`;
          return { ok: false, output, canceled: end.canceled };
        })());
      }
      return { results, done: container.then(() => undefined) };
    },
  };
}

export function hostToolchain(): Toolchain {
  const ids = new Map<string, Promise<string>>();
  const runJob = async (job: Job, cwd: string, signal: AbortSignal | undefined): Promise<RunResult> => {
    const { execa } = await loadExeca();
    const out: string[] = [];
    for (const [cmd, ...args] of job.commands) {
      const r = await execa(cmd!, args, { reject: false, all: true, cwd, stdin: 'ignore', cancelSignal: signal });
      out.push(String(r.all ?? ''));
      if (r.exitCode !== 0 || r.isCanceled) return { ok: false, output: out.join('\n'), canceled: Boolean(r.isCanceled) };
    }
    return { ok: true, output: out.join('\n'), canceled: false };
  };
  return {
    kind: 'host',
    identity: (platform) => {
      if (!ids.has(platform.arch)) ids.set(platform.arch, hostIdentity(platform));
      return ids.get(platform.arch)!;
    },
    srcPath: (srcDir) => srcDir,
    outPath: (outDir) => outDir,
    runAll(req) {
      const results = new Map(req.jobs.map((job) => [job.label, runJob(job, path.join(req.outDir, job.label), req.signal)]));
      return { results, done: Promise.allSettled(results.values()).then(() => undefined) };
    },
  };
}

/** The compiler's and strip's versions and the static libc they link, which Debian packages separately. */
async function hostIdentity(platform: Platform): Promise<string> {
  const run = async (cmd: string, args: string[]) => {
    const r = await capture(cmd, args);
    if (r.exitCode !== 0) throw new PauseBuildError(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim() || r.code || r.signal}`, { hint: `check the host toolchain for ${platform.arch}` });
    return r.stdout;
  };
  const first = async (cmd: string, args: string[]) => (await run(cmd, args)).split('\n')[0] ?? '';
  const gcc = await first(`${platform.triple}-gcc`, ['--version']);
  const strip = await first(`${platform.triple}-strip`, ['--version']);
  const libcPath = (await run(`${platform.triple}-gcc`, ['-print-file-name=libc.a'])).trim();
  const libc = await readFile(libcPath).then((b) => createHash('sha256').update(b).digest('hex'), () => 'no-libc.a');
  return `host:${gcc}|${strip}|libc.a:${libc}`;
}

async function onPath(cmd: string): Promise<boolean> {
  const r = await capture('sh', ['-c', `command -v ${shellQuote(cmd)}`]);
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
