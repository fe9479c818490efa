/**
 * The mirror scenario: `pause-build mirror` against skopeo, copying from one loopback
 * registry to another — one multi-arch image, and twenty tags of one repository. Every
 * timed copy goes to a registry started for it alone, so no tool finds blobs (or, for
 * skopeo, blob locations it remembers) from an earlier copy.
 *
 * The twenty tags are twenty releases, 3.0 … 3.19, each published by pause-build with its
 * own version compiled in: twenty distinct indexes over a hundred distinct images.
 */
import path from 'node:path';
import type { Bench } from './bench.ts';
import { type Timed, timed } from './process.ts';
import { digestOf } from './registry-api.ts';

export const MANY_TAGS = Array.from({ length: 20 }, (_, i) => `3.${i}`);
/** The range that selects MANY_TAGS in `pause-build mirror --tags`. */
export const MANY_RANGE = '>=3.0.0 <4.0.0';

export type Cell = { readonly seconds: number[] } | { readonly error: string };

export interface MirrorMeasured {
  /** false when this build has no mirror command (then the ours* cells are absent). */
  readonly available: boolean;
  readonly oursOne?: Cell;
  readonly oursMany?: Cell;
  readonly skopeoOne: number[];
  readonly skopeoLoop: number[];
  readonly skopeoSync: number[];
}

/** True when `pause-build mirror` exists in this build: --help lists it among the commands. */
export async function mirrorAvailable(bench: Bench): Promise<boolean> {
  const r = await bench.pauseBuild(['--help']);
  const commands = r.stdout.split(/^Commands:$/m)[1] ?? '';
  return /^  mirror\b/m.test(commands);
}

function firstError(r: Timed): string {
  const lines = (r.stderr.trim() || r.stdout.trim()).split('\n').map((l) => l.trim()).filter(Boolean);
  return `exit ${r.exitCode}: ${lines.find((l) => /error/i.test(l)) ?? lines.at(-1) ?? 'no output'}`;
}

/** Digest of every tag, in MANY_TAGS order, or of the one tag. */
async function digests(repository: string, tags: readonly string[]): Promise<(string | undefined)[]> {
  return Promise.all(tags.map((t) => digestOf(repository, t)));
}

async function expectSame(what: string, src: string, dst: string, tags: readonly string[]): Promise<void> {
  const [a, b] = await Promise.all([digests(src, tags), digests(dst, tags)]);
  const wrong = tags.filter((_, i) => !a[i] || a[i] !== b[i]);
  if (wrong.length > 0) throw new Error(`${what}: ${dst} does not hold the source digests for ${wrong.join(', ')}`);
}

/** Whether every default arch has its cross compiler on this host. */
async function hostCompilers(): Promise<boolean> {
  const triples = ['x86_64-linux-gnu', 'arm-linux-gnueabihf', 'aarch64-linux-gnu', 'powerpc64le-linux-gnu', 's390x-linux-gnu'];
  const r = await timed('sh', ['-c', triples.map((t) => `command -v ${t}-gcc >/dev/null`).join(' && ')]);
  return r.exitCode === 0;
}

const SKOPEO_TLS = ['--src-tls-verify=false', '--dest-tls-verify=false'];

async function skopeoCopy(src: string, dst: string): Promise<Timed> {
  const r = await timed('skopeo', ['copy', '--all', '--preserve-digests', '-q', ...SKOPEO_TLS, `docker://${src}`, `docker://${dst}`]);
  if (r.exitCode !== 0) throw new Error(`skopeo copy ${src} ${dst}: ${firstError(r)}`);
  return r;
}

export async function mirror(bench: Bench, runs: number, log: (s: string) => void): Promise<MirrorMeasured> {
  const available = await mirrorAvailable(bench);
  if (!available) log('mirror: not available in this build; timing skopeo only');
  const src = await bench.registry();
  const one = `${src.host}/one/pause`;
  const many = `${src.host}/many/pause`;
  const dir = await bench.dir('mirror');
  const cache = path.join(dir, 'cache');

  // Sources, untimed: one release, and twenty (two at a time; only their content matters, so
  // the host's cross compilers are used when there, as they are quicker than containers).
  const engine = (await hostCompilers()) ? 'host' : 'podman';
  log(`mirror: publishing the source images (untimed, --engine ${engine})`);
  const publish = async (repository: string, version: string | undefined, revision: string) => {
    const out = path.join(dir, `${version ?? 'one'}`);
    const args = ['publish', '-q', '--engine', engine, '--no-emulation', '--cache-dir', cache, '--registry', repository, '--insecure-registry', src.host,
      '--revision', revision, '--bin-dir', path.join(out, 'bin'), '--output', path.join(out, 'oci'), ...(version ? ['--version', version] : [])];
    const r = await bench.pauseBuild(args);
    if (r.exitCode !== 0) throw new Error(`publishing the mirror source ${repository}${version ? `:${version}` : ''}: ${firstError(r)}`);
  };
  await publish(one, undefined, `bench-${bench.id}-one`);
  const queue = [...MANY_TAGS];
  await Promise.all([0, 1].map(async () => {
    for (let v = queue.shift(); v !== undefined; v = queue.shift()) await publish(many, v, `bench-${bench.id}-many`);
  }));

  const m = { available, skopeoOne: [] as number[], skopeoLoop: [] as number[], skopeoSync: [] as number[] };
  const oursOne: number[] = [];
  const oursMany: number[] = [];
  let oneError: string | undefined;
  let manyError: string | undefined;
  const insecure = (dst: string) => ['--insecure-registry', src.host, '--insecure-registry', dst];

  for (let i = 0; i < runs; i++) {
    const parts: string[] = [];
    /** Runs `fn` against a registry of its own, stopped afterwards. */
    const fresh = async (fn: (dst: string) => Promise<void>) => {
      const dst = await bench.registry();
      try {
        await fn(dst.host);
      } finally {
        await dst.release();
      }
    };
    const jobs: (() => Promise<void>)[] = [
      () => fresh(async (dst) => {
        const r = await skopeoCopy(`${one}:${bench.tag}`, `${dst}/one/pause:${bench.tag}`);
        await expectSame('skopeo copy', one, `${dst}/one/pause`, [bench.tag]);
        m.skopeoOne.push(r.seconds);
        parts.push(`skopeo one ${r.seconds.toFixed(2)} s`);
      }),
      () => fresh(async (dst) => {
        let seconds = 0;
        for (const tag of MANY_TAGS) seconds += (await skopeoCopy(`${many}:${tag}`, `${dst}/many/pause:${tag}`)).seconds;
        await expectSame('skopeo copy (20 tags)', many, `${dst}/many/pause`, MANY_TAGS);
        m.skopeoLoop.push(seconds);
        parts.push(`skopeo copy ×20 ${seconds.toFixed(2)} s`);
      }),
      () => fresh(async (dst) => {
        const r = await timed('skopeo', ['sync', '--all', '--preserve-digests', ...SKOPEO_TLS, '--src', 'docker', '--dest', 'docker', many, `${dst}/synced`]);
        if (r.exitCode !== 0) throw new Error(`skopeo sync: ${firstError(r)}`);
        await expectSame('skopeo sync', many, `${dst}/synced/pause`, MANY_TAGS);
        m.skopeoSync.push(r.seconds);
        parts.push(`skopeo sync ${r.seconds.toFixed(2)} s`);
      }),
    ];
    if (available) {
      jobs.push(
        () => fresh(async (dst) => {
          if (oneError) return;
          const r = await bench.pauseBuild(['mirror', `${one}:${bench.tag}`, `${dst}/one/pause:${bench.tag}`, ...insecure(dst)]);
          if (r.exitCode !== 0) {
            oneError = firstError(r);
            return;
          }
          oneError = await expectSame('pause-build mirror', one, `${dst}/one/pause`, [bench.tag]).then(() => undefined, (e: Error) => e.message);
          if (oneError) return;
          oursOne.push(r.seconds);
          parts.push(`pause-build one ${r.seconds.toFixed(2)} s`);
        }),
        () => fresh(async (dst) => {
          if (manyError) return;
          const r = await bench.pauseBuild(['mirror', many, `${dst}/many/pause`, '--tags', MANY_RANGE, ...insecure(dst)]);
          if (r.exitCode !== 0) {
            manyError = firstError(r);
            return;
          }
          manyError = await expectSame('pause-build mirror --tags', many, `${dst}/many/pause`, MANY_TAGS).then(() => undefined, (e: Error) => e.message);
          if (manyError) return;
          oursMany.push(r.seconds);
          parts.push(`pause-build ×20 ${r.seconds.toFixed(2)} s`);
        }),
      );
    }
    // A different order each run, so that no tool is always first or last.
    for (let j = 0; j < jobs.length; j++) await jobs[(i + j) % jobs.length]!();
    log(`mirror ${i + 1}/${runs}: ${parts.join(', ')}`);
  }
  await src.release();
  return {
    ...m,
    ...(available ? { oursOne: oneError ? { error: oneError } : { seconds: oursOne }, oursMany: manyError ? { error: manyError } : { seconds: oursMany } } : {}),
  };
}
