/** The bench's output: markdown tables of what was measured, and bench/RESULTS.md. */
import { readFile, writeFile } from 'node:fs/promises';
import { type Machine, machineLines } from './machine.ts';
import { type Cell, MANY_RANGE, MANY_TAGS, type MirrorMeasured } from './mirror.ts';
import { PUBLISH_STAGES, UPSTREAM_STEPS, medians } from './profile.ts';
import type { Measured, NoopMeasured } from './publish.ts';
import { type Summary, formatBytes, formatRatio, formatSummary, markdownTable, median, speedup, summarize } from './stats.ts';

export const TARGETS = { release: 3, noop: 10, mirrorOne: 1, mirrorMany: 3 } as const;

export interface Results {
  readonly runs: number;
  readonly date: Date;
  readonly machine: Machine;
  readonly load: { readonly before: number; readonly after: number };
  readonly tag: string;
  readonly cliStart: number[];
  readonly release?: Measured | { readonly error: string };
  readonly noop?: NoopMeasured | { readonly error: string };
  readonly mirror?: MirrorMeasured | { readonly error: string };
}

const NOT_AVAILABLE = 'mirror: not available in this build';

function failed<T extends object>(x: T | { readonly error: string } | undefined): x is { readonly error: string } {
  return x !== undefined && 'error' in x;
}

function verdict(target: number, ratio: number | undefined, label: string): string {
  if (ratio === undefined) return `${label}: n/a`;
  return `${label}: ${ratio >= target ? 'met' : '**missed**'}`;
}

function cellSummary(cell: Cell | undefined): Summary | undefined {
  return cell && 'seconds' in cell ? summarize(cell.seconds) : undefined;
}

function cellText(cell: Cell | undefined, available: boolean): string {
  if (!available) return NOT_AVAILABLE;
  if (!cell) return '–';
  if ('error' in cell) return `failed (${cell.error.replace(/\|/g, '\\|').slice(0, 160)})`;
  return formatSummary(summarize(cell.seconds));
}

function mainTable(r: Results): string {
  const rows: string[][] = [];
  const row = (what: string, ours: string, baselineName: string, baseline: Summary | undefined, ratio: number | undefined, target: string) =>
    rows.push([what, ours, baselineName, formatSummary(baseline), formatRatio(ratio), target]);

  if (failed(r.release)) rows.push(['1. full release, builder warm', `failed: ${r.release.error.split('\n')[0]}`, '', '', '', '']);
  else if (r.release) {
    const ours = summarize(r.release.ours);
    const base = summarize(r.release.baseline);
    const ratio = speedup(ours, base);
    row('1. full release, builder warm', formatSummary(ours), 'upstream-flow.sh', base, ratio, verdict(TARGETS.release, ratio, `≥${TARGETS.release}×`));
  }
  if (failed(r.noop)) rows.push(['2. no-op re-release', `failed: ${r.noop.error.split('\n')[0]}`, '', '', '', '']);
  else if (r.noop) {
    const ours = summarize(r.noop.ours);
    const base = summarize(r.noop.baseline);
    const ratio = speedup(ours, base);
    row('2. no-op re-release', formatSummary(ours), 'upstream-flow.sh again (layer cache)', base, ratio, verdict(TARGETS.noop, ratio, `≥${TARGETS.noop}×`));
    const stamps = summarize(r.noop.stamps);
    row('2b. (for reference) re-run with make stamps', '″', 'upstream-flow.sh --manifest-only', stamps, speedup(ours, stamps), '–');
  }
  if (failed(r.mirror)) rows.push(['3. mirror', `failed: ${r.mirror.error.split('\n')[0]}`, '', '', '', '']);
  else if (r.mirror) {
    const m = r.mirror;
    const one = cellSummary(m.oursOne);
    const skOne = summarize(m.skopeoOne);
    const oneRatio = speedup(one, skOne);
    row('3a. mirror one image (5 platforms)', cellText(m.oursOne, m.available), 'skopeo copy --all', skOne, oneRatio, verdict(TARGETS.mirrorOne, oneRatio, 'no slower'));
    const many = cellSummary(m.oursMany);
    const loop = summarize(m.skopeoLoop);
    const sync = summarize(m.skopeoSync);
    // The target is measured against the faster of skopeo's two ways.
    const best = loop && sync ? (sync.median <= loop.median ? { s: sync, name: 'skopeo sync --all' } : { s: loop, name: 'skopeo copy --all ×20' }) : undefined;
    const other = best?.s === sync ? { s: loop, name: 'skopeo copy --all ×20' } : { s: sync, name: 'skopeo sync --all' };
    const manyRatio = speedup(many, best?.s);
    row('3b. mirror twenty tags', cellText(m.oursMany, m.available), `${best?.name ?? 'skopeo'} (faster skopeo)`, best?.s, manyRatio, verdict(TARGETS.mirrorMany, manyRatio, `≥${TARGETS.mirrorMany}×`));
    row('3c. (for reference) twenty tags', '″', other.name, other.s, speedup(many, other.s), '–');
  }
  return markdownTable(['measurement', 'pause-build', 'baseline', 'baseline time', 'speedup', 'target'], rows);
}

function sizesTable(noop: NoopMeasured): string {
  const pair = (a: number, b: number) => `${formatBytes(a)} / ${formatBytes(b)} (${((a / b) * 100).toFixed(0)} %)`;
  const rows = noop.sizes.map((s) => [
    s.arch,
    pair(s.ours.binary, s.baseline.binary),
    pair(s.ours.compressed, s.baseline.compressed),
    pair(s.ours.uncompressed, s.baseline.uncompressed),
  ]);
  return markdownTable(['arch', 'binary: pause-build / upstream-style', 'layer gzip (pushed)', 'layer tar (uncompressed)'], rows);
}

function secs(n: number | undefined): string {
  return n === undefined ? '–' : n.toFixed(2);
}

function profileTables(r: Results): string[] {
  const out: string[] = [];
  const release = r.release && !failed(r.release) ? r.release : undefined;
  const noop = r.noop && !failed(r.noop) ? r.noop : undefined;
  const pbRelease = release ? medians(release.stages) : undefined;
  const pbNoop = noop ? medians(noop.stages) : undefined;
  if (pbRelease || pbNoop) {
    const rows = PUBLISH_STAGES.map((s, i) => [s.name, secs(pbRelease?.[i]), secs(pbNoop?.[i])]);
    rows.push(['total (median of runs)', secs(release ? median(release.ours) : undefined), secs(noop ? median(noop.ours) : undefined)]);
    out.push('Where `pause-build publish` spends its time (median seconds per stage, from its progress lines):', '',
      markdownTable(['stage', 'full release', 'no-op'], rows), '',
      `\`pause-build --tool-version\` alone (node start and module loading): ${secs(median(r.cliStart))} s.`, '');
  }
  const upRelease = release ? medians(release.steps) : undefined;
  const upNoop = noop ? medians(noop.steps) : undefined;
  if (upRelease || upNoop) {
    const names: Record<(typeof UPSTREAM_STEPS)[number], string> = {
      compile: 'compile + strip (5 × podman run)',
      build: 'image (5 × podman build)',
      push: 'push (5 × podman push)',
      manifest: 'list (manifest create, 5 × add, push)',
    };
    const rows = UPSTREAM_STEPS.map((s, i) => [names[s], secs(upRelease?.[i]), secs(upNoop?.[i])]);
    out.push('Where the upstream-style flow spends its time (median seconds):', '', markdownTable(['step', 'full release', 'again'], rows), '');
  }
  return out;
}

export function renderResults(r: Results): string {
  const lines = [
    `## pause-build bench: ${r.runs} run${r.runs === 1 ? '' : 's'} of each, wall time, median (min–max)`,
    '',
    `${r.date.toISOString().replace(/\.\d+Z$/, 'Z')}, pause ${r.tag}, podman engine on both sides.`,
    ...machineLines(r.machine),
    `- load average ${r.load.before.toFixed(2)} before, ${r.load.after.toFixed(2)} after (other jobs may share this machine)`,
    '',
    mainTable(r),
    '',
    `Targets: full release ≥${TARGETS.release}× faster than the upstream-style flow, no-op ≥${TARGETS.noop}×, mirror of one image no slower than skopeo, twenty tags ≥${TARGETS.mirrorMany}× faster.`,
    '',
    'What each row runs:',
    '- 1: `pause-build publish --engine podman --no-cache` (compile five arches in the builder, strip, ELF check, run each binary natively or under qemu, assemble, push, index) and `bench/upstream-flow.sh` (per arch `podman run` gcc + strip, `podman build --build-arg ARCH`, `podman push`; then `podman manifest create`, `add` per arch, `push --all`), each to a fresh registry with a fresh revision, no podman images or layer cache left from the run before.',
    '- 2: the same commands again on the same commit and registry: pause-build with its caches warm and the tag already there (its publish record of these inputs holds at the registry, so it checks the tags and stops); the upstream-style flow as a release job re-runs it (compile again, `podman build` from its layer cache, push of blobs the registry has). 2b is what `make all-push` does in a workspace that still holds its stamp files: only push-manifest.',
    `- 3: \`pause-build mirror SRC DST\` and \`skopeo copy --all --preserve-digests\` between two loopback registries, each copy to a registry of its own; twenty tags are ${MANY_TAGS[0]} … ${MANY_TAGS.at(-1)}, twenty releases with distinct content (pause-build with \`--tags '${MANY_RANGE}'\`; skopeo as twenty copies and as one \`sync --all\`). Digests are checked after every copy.`,
    '',
  ];
  if (r.noop && !failed(r.noop)) {
    lines.push('Sizes of what each side pushed in row 2 (read back from the registry; binary = the file in bin/):', '', sizesTable(r.noop), '');
  }
  lines.push(...profileTables(r));
  return `${lines.join('\n').trimEnd()}\n`;
}

const BEGIN = '<!-- bench:begin (written by `npm run bench -- --write`; edits here are replaced) -->';
const END = '<!-- bench:end -->';

/** Replaces the generated part of RESULTS.md and keeps what people wrote around it. */
export async function writeResultsFile(file: string, rendered: string): Promise<void> {
  const block = `${BEGIN}\n${rendered}${END}`;
  const old = await readFile(file, 'utf8').catch(() => undefined);
  const start = old?.indexOf(BEGIN) ?? -1;
  const end = old?.indexOf(END) ?? -1;
  const text = old !== undefined && start >= 0 && end > start
    ? `${old.slice(0, start)}${block}${old.slice(end + END.length)}`
    : `# Bench results\n\n${block}\n\n## Analysis\n\n_What the numbers mean, why a target is missed and what would close it._\n`;
  await writeFile(file, text);
}
