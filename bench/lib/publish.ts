/**
 * The release scenarios: a full release with the builder warm (fresh registry, fresh
 * revision, no compile cache, no podman images left from an earlier run), and a no-op
 * re-release of what is already published; plus the sizes of what each side pushed.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ARCHES, type Bench } from './bench.ts';
import { type Timed, timed } from './process.ts';
import { publishStages, upstreamSteps } from './profile.ts';
import { digestOf, platformSizes, type PlatformSize } from './registry-api.ts';

export interface Measured {
  readonly ours: number[];
  readonly baseline: number[];
  /** Per run: seconds per publish stage (PUBLISH_STAGES). */
  readonly stages: number[][];
  /** Per run: seconds per upstream step kind (UPSTREAM_STEPS). */
  readonly steps: number[][];
  /** The bare parallel compile of the five arches in one builder container (full release only). */
  readonly compile?: number[];
}

export interface NoopMeasured extends Measured {
  /** upstream-flow.sh --manifest-only: a re-run where make's stamp files skip all but push-manifest. */
  readonly stamps: number[];
  readonly sizes: SizeRow[];
}

export interface SizeRow {
  readonly arch: string;
  readonly ours: PlatformSize & { readonly binary: number };
  readonly baseline: PlatformSize & { readonly binary: number };
}

function fail(what: string, r: Timed): never {
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-8).join('\n');
  throw new Error(`${what} failed (exit ${r.exitCode}):\n${tail}`);
}

/** What pause-build publish prints when its record of these inputs held at the registry. */
const FAST_PATH = /published from these same inputs; nothing to build or push/;

function indexDigestFrom(stdout: string): string | undefined {
  return /^index\s+(sha256:[0-9a-f]{64})/m.exec(stdout)?.[1];
}

/** Checks that `repository:tag` holds `digest` (what the command said it published). */
async function expectTag(what: string, repository: string, tag: string, digest: string | undefined): Promise<void> {
  const held = await digestOf(repository, tag);
  if (!digest || held !== digest) throw new Error(`${what}: ${repository}:${tag} holds ${held ?? 'nothing'}, the command printed ${digest ?? 'no digest'}`);
}

interface Sides {
  ours(): Promise<void>;
  baseline(): Promise<void>;
}

/** Alternates which side goes first, so that neither always runs on a machine the other just warmed. */
async function bothSides(i: number, sides: Sides): Promise<void> {
  if (i % 2 === 0) {
    await sides.ours();
    await sides.baseline();
  } else {
    await sides.baseline();
    await sides.ours();
  }
}

function publishArgs(registry: string, revision: string, dir: string, extra: string[]): string[] {
  return [
    'publish', '--engine', 'podman', '--registry', `${registry}/pb/pause`, '--insecure-registry', registry,
    '--revision', revision, '--bin-dir', path.join(dir, 'bin'), '--output', path.join(dir, 'oci'), ...extra,
  ];
}

function upstreamArgs(bench: Bench, builder: string, registry: string, revision: string, work: string, name: string): string[] {
  return ['--work', work, '--builder', builder, '--registry', `${registry}/up`, '--name', name, '--tag', bench.tag, '--revision', revision, '--insecure'];
}

const TRIPLES: Record<(typeof ARCHES)[number], string> = {
  amd64: 'x86_64-linux-gnu', arm: 'arm-linux-gnueabihf', arm64: 'aarch64-linux-gnu', ppc64le: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu',
};

/**
 * The floor for a release that compiles in a container: one `podman run` of the builder that
 * starts the five compile + strip at once and waits for them; nothing else.
 */
async function bareCompile(bench: Bench, builder: string, work: string, revision: string): Promise<number> {
  const cflags = `-Os -Wall -Werror -static -DVERSION=v${bench.tag}-${revision}`;
  const script = ['cd /build && mkdir -p bin', ...ARCHES.map((a) => `(${TRIPLES[a]}-gcc ${cflags} -o bin/pause-linux-${a} pause.c && ${TRIPLES[a]}-strip bin/pause-linux-${a}) &`), 'for j in $(jobs -p); do wait "$j" || exit 1; done'].join('\n');
  const r = await timed('podman', ['run', '--rm', '--network', 'none', '--log-driver', 'none', '-v', `${work}:/build`, builder, '/bin/bash', '-c', script]);
  if (r.exitCode !== 0) fail('bare compile in the builder', r);
  for (const a of ARCHES) await stat(path.join(work, 'bin', `pause-linux-${a}`));
  return r.seconds;
}

export async function fullRelease(bench: Bench, builder: string, runs: number, log: (s: string) => void): Promise<Measured> {
  const m = { ours: [] as number[], baseline: [] as number[], stages: [] as number[][], steps: [] as number[][], compile: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const reg = await bench.registry();
    // A revision of its own: new binaries, so nothing from an earlier run (layer cache, blobs) applies.
    const revision = `bench-${bench.id}-r${i}`;
    const dir = await bench.dir(`release-${i}`);
    const name = bench.podmanName(`release-${i}`);
    const removeImages = bench.defer(() => bench.removeImages(name));
    const work = await bench.workdir(`release-${i}/upstream`);
    let line = `release ${i + 1}/${runs}:`;
    await bothSides(i, {
      ours: async () => {
        const r = await bench.pauseBuild(publishArgs(reg.host, revision, path.join(dir, 'pb'), ['--no-cache']));
        if (r.exitCode !== 0) fail('pause-build publish', r);
        await expectTag('pause-build publish', `${reg.host}/pb/pause`, bench.tag, indexDigestFrom(r.stdout));
        m.ours.push(r.seconds);
        const stages = publishStages(r);
        if (stages) m.stages.push(stages);
        line += ` pause-build ${r.seconds.toFixed(2)} s`;
      },
      baseline: async () => {
        const r = await bench.upstreamFlow(upstreamArgs(bench, builder, reg.host, revision, work, name));
        if (r.exitCode !== 0) fail('upstream-flow.sh', r);
        await expectTag('upstream-flow.sh', `${reg.host}/up/pause`, bench.tag, r.stdout.trim());
        m.baseline.push(r.seconds);
        const steps = upstreamSteps(r);
        if (steps) m.steps.push(steps);
        line += ` upstream-style ${r.seconds.toFixed(2)} s`;
      },
    });
    const bare = await bareCompile(bench, builder, await bench.workdir(`release-${i}/compile`), revision);
    m.compile.push(bare);
    line += ` bare compile ${bare.toFixed(2)} s`;
    log(line);
    await removeImages();
    await reg.release();
  }
  return m;
}

async function binarySize(file: string): Promise<number> {
  return (await stat(file)).size;
}

async function sizes(registry: string, tag: string, ourBin: string, upstreamBin: string): Promise<SizeRow[]> {
  const ours = await platformSizes(`${registry}/pb/pause`, tag);
  const theirs = await platformSizes(`${registry}/up/pause`, tag);
  const rows: SizeRow[] = [];
  for (const arch of ARCHES) {
    const o = ours.find((s) => s.arch === arch);
    const t = theirs.find((s) => s.arch === arch);
    if (!o || !t) throw new Error(`sizes: no ${arch} image in ${o ? 'the upstream-style' : "pause-build's"} index`);
    rows.push({
      arch,
      ours: { ...o, binary: await binarySize(path.join(ourBin, `pause-linux-${arch}`)) },
      baseline: { ...t, binary: await binarySize(path.join(upstreamBin, `pause-linux-${arch}`)) },
    });
  }
  return rows;
}

export async function noopRelease(bench: Bench, builder: string, runs: number, log: (s: string) => void): Promise<NoopMeasured> {
  const reg = await bench.registry();
  const revision = `bench-${bench.id}-noop`;
  const dir = await bench.dir('noop');
  const cache = path.join(dir, 'cache');
  const name = bench.podmanName('noop');
  const removeImages = bench.defer(() => bench.removeImages(name));
  const work = await bench.workdir('noop/upstream');
  const ours = publishArgs(reg.host, revision, path.join(dir, 'pb'), ['--cache-dir', cache]);
  const theirs = upstreamArgs(bench, builder, reg.host, revision, work, name);

  // The release being repeated: both sides publish once, untimed.
  log('no-op: publishing once with each side (untimed)');
  const first = await bench.pauseBuild(ours);
  if (first.exitCode !== 0) fail('pause-build publish', first);
  const firstUp = await bench.upstreamFlow(theirs);
  if (firstUp.exitCode !== 0) fail('upstream-flow.sh', firstUp);
  const sizeRows = await sizes(reg.host, bench.tag, path.join(dir, 'pb', 'bin'), path.join(work, 'bin'));

  const m: NoopMeasured = { ours: [], baseline: [], stamps: [], stages: [], steps: [], sizes: sizeRows };
  let recordMissed = 0;
  for (let i = 0; i < runs; i++) {
    let line = `no-op ${i + 1}/${runs}:`;
    await bothSides(i, {
      ours: async () => {
        const r = await bench.pauseBuild(ours);
        if (r.exitCode !== 0) fail('pause-build publish (no-op)', r);
        if (!/^unchanged\s/m.test(r.stdout)) throw new Error(`pause-build publish (no-op) did not report "unchanged":\n${r.stdout}`);
        // Nothing may be compiled: the publish record held (nothing is built at all), or every arch came from the compile cache.
        if (/ELF ok(?! \(cached\))/.test(r.stderr)) throw new Error('pause-build publish (no-op) ran the compiler: neither the publish record nor the compile cache was used');
        if (!FAST_PATH.test(r.stderr)) recordMissed++;
        m.ours.push(r.seconds);
        const stages = publishStages(r);
        if (stages) m.stages.push(stages);
        line += ` pause-build ${r.seconds.toFixed(2)} s`;
      },
      baseline: async () => {
        const r = await bench.upstreamFlow(theirs);
        if (r.exitCode !== 0) fail('upstream-flow.sh (again)', r);
        m.baseline.push(r.seconds);
        const steps = upstreamSteps(r);
        if (steps) m.steps.push(steps);
        const s = await bench.upstreamFlow([...theirs, '--manifest-only']);
        if (s.exitCode !== 0) fail('upstream-flow.sh --manifest-only', s);
        m.stamps.push(s.seconds);
        line += ` upstream-style ${r.seconds.toFixed(2)} s (stamps: ${s.seconds.toFixed(2)} s)`;
      },
    });
    log(line);
  }
  if (recordMissed > 0) log(`no-op: ${recordMissed} of ${runs} runs did not use the publish record (they built from the compile cache)`);
  await removeImages();
  await reg.release();
  return m;
}
