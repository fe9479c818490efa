/**
 * Where the time of one run goes. pause-build's progress lines (CI renderer) mark the end of
 * each stage as they arrive on stderr; upstream-flow.sh prints its seconds per kind of step.
 */
import { median } from './stats.ts';
import type { Timed } from './process.ts';

/** Stages of `pause-build publish`, each ending at the first line matching its marker. */
export const PUBLISH_STAGES: readonly { readonly name: string; readonly end: RegExp | undefined }[] = [
  { name: 'start: node, options, git, Dockerfile', end: /✔ Reading / },
  { name: 'builder image check', end: /✔ Toolchain:/ },
  { name: 'compile, ELF check, run each binary', end: /✔ Compiling / },
  { name: 'assemble images (tar, gzip)', end: /✔ Assembling images/ },
  { name: 'index, OCI layout', end: /✔ Wrote / },
  { name: 'registry: record lookup or tags, blobs, manifests, index', end: undefined },
];

/**
 * Seconds per stage of one publish run; a stage whose marker is missing did not run and
 * counts 0 (a no-op publish whose record held stops after the toolchain and the registry
 * check). undefined if the run did not get as far as the toolchain.
 */
export function publishStages(run: Timed): number[] | undefined {
  const out: number[] = [];
  let last = 0;
  for (const [i, stage] of PUBLISH_STAGES.entries()) {
    const end = stage.end ? run.lines.find((l) => stage.end!.test(l.text))?.at : run.seconds;
    if (end === undefined && i < 2) return undefined;
    out.push(end === undefined ? 0 : end - last);
    last = end ?? last;
  }
  return out;
}

export const UPSTREAM_STEPS = ['compile', 'build', 'push', 'manifest'] as const;

/** Seconds per kind of step from upstream-flow.sh's `steps:` line. */
export function upstreamSteps(run: Timed): number[] | undefined {
  const line = run.stderr.split('\n').find((l) => l.startsWith('steps:'));
  if (!line) return undefined;
  const values = UPSTREAM_STEPS.map((s) => Number(new RegExp(`${s}=([\\d.]+)`).exec(line)?.[1]));
  return values.some(Number.isNaN) ? undefined : values;
}

/** Median of each column. */
export function medians(rows: readonly (readonly number[])[]): number[] | undefined {
  if (rows.length === 0) return undefined;
  return rows[0]!.map((_, c) => median(rows.map((r) => r[c]!)));
}
