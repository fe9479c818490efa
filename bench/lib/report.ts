/** The bench's output: markdown tables of what was measured, and bench/RESULTS.md. */
import { readFile, writeFile } from 'node:fs/promises';
import { type Machine, machineLines } from './machine.ts';
import { ALONE, BIG_LAYER, type Cell, MANY_RANGE, MANY_TAGS, type MirrorMeasured, ROWS, type Row, SHARED_TAGS, TOOLS, type Tool } from './mirror.ts';
import type { StartupMeasured } from './startup.ts';
import { PUBLISH_STAGES, UPSTREAM_STEPS, medians } from './profile.ts';
import type { Measured, NoopMeasured } from './publish.ts';
import { type Summary, formatBytes, formatRatio, formatSummary, markdownTable, median, speedup, summarize } from './stats.ts';

/** Speedups (baseline ÷ ours) to reach; for `compile` and `startup` the most ours may take, as a multiple of the baseline. */
export const TARGETS = { release: 3, compile: 1.5, noop: 20, startup: 1.5, mirror: 1 } as const;

export interface Results {
  readonly runs: number;
  readonly date: Date;
  readonly machine: Machine;
  readonly load: { readonly before: number; readonly after: number };
  readonly tag: string;
  readonly startup: StartupMeasured;
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
    const compile = summarize(r.release.compile ?? []);
    const over = ours && compile ? ours.median / compile.median : undefined;
    rows.push(['1b. full release against the bare compile', formatSummary(ours), 'five arches compiled in parallel in one builder container', formatSummary(compile),
      over === undefined ? '–' : `${over.toFixed(2)}× the baseline`, over === undefined ? 'n/a' : `≤${TARGETS.compile}×: ${over <= TARGETS.compile ? 'met' : '**missed**'}`]);
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
  const st = summarize(r.startup.ours);
  const node = summarize(r.startup.node);
  const stRatio = st && node ? st.median / node.median : undefined;
  rows.push(['4. start-up: `pause-build --tool-version`', formatSummary(st), '`node -e 0`', formatSummary(node), stRatio === undefined ? '–' : `${stRatio.toFixed(2)}× the baseline`,
    stRatio === undefined ? 'n/a' : `≤${TARGETS.startup}×: ${stRatio <= TARGETS.startup ? 'met' : '**missed**'}`]);
  return markdownTable(['measurement', 'pause-build', 'baseline', 'baseline time', 'speedup', 'target'], rows);
}

const ROW_NAMES: Record<Row, string> = {
  one: 'one image (5 platforms)',
  distinct: `${MANY_TAGS.length} tags, distinct content`,
  shared: `${SHARED_TAGS.length} tags, shared content`,
  big: `one ${BIG_LAYER / 1024 / 1024} MiB layer`,
};

function cellTime(c: Cell): string {
  return 'error' in c ? `failed (${c.error.replace(/\|/g, '\\|').slice(0, 120)})` : formatSummary(summarize(c.seconds));
}

function cellRss(c: Cell): string {
  return 'error' in c || c.rss.length === 0 ? '–' : `${(median(c.rss) / 1024 / 1024).toFixed(0)} MiB`;
}

function cellMedian(c: Cell | undefined): Summary | undefined {
  return c && !('error' in c) ? summarize(c.seconds) : undefined;
}

/** One row per copy job, one column per tool; the target is crane, the fastest peer. */
function mirrorTable(m: MirrorMeasured): string {
  const rows = ROWS.map((row) => {
    const ours = cellMedian(m[row]['pause-build']);
    const vsCrane = speedup(ours, cellMedian(m[row].crane));
    const vsSkopeo = speedup(ours, cellMedian(m[row].skopeo));
    const aloneVsCrane = speedup(cellMedian(m[row][ALONE]), cellMedian(m[row].crane));
    const times = TOOLS.map((t: Tool) => cellTime(m[row][t]) + (row === 'big' ? `, ${cellRss(m[row][t])}` : ''));
    return [ROW_NAMES[row], ...times, formatRatio(vsCrane), formatRatio(aloneVsCrane), formatRatio(vsSkopeo), verdict(TARGETS.mirror, vsCrane, 'no slower than crane')];
  });
  return markdownTable(['copy', ...TOOLS, 'speedup vs crane', 'alone vs crane', 'vs skopeo', 'target'], rows);
}

function mirrorCommands(m: MirrorMeasured): string[] {
  return ROWS.map((row) => `- ${ROW_NAMES[row]}: ${TOOLS.map((t) => `\`${m[row][t].how}\``).join(', ')}`);
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
      `\`pause-build --tool-version\` alone (node start and module loading): ${secs(median(r.startup.ours))} s.`, '');
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
    `Targets: full release ≥${TARGETS.release}× faster than the upstream-style flow and at most ${TARGETS.compile}× the bare parallel compile, no-op ≥${TARGETS.noop}×, start-up at most ${TARGETS.startup}× \`node -e 0\`, every mirror row no slower than crane. Ratios are of medians from this one run.`,
    '',
    'What each row runs:',
    '- 1: `pause-build publish --engine podman --no-cache` (compile five arches in the builder, strip, ELF check, run each binary natively or under qemu, assemble, push, index) and `bench/upstream-flow.sh` (per arch `podman run` gcc + strip, `podman build --build-arg ARCH`, `podman push`; then `podman manifest create`, `add` per arch, `push --all`), each to a fresh registry with a fresh revision, no podman images or layer cache left from the run before.',
    '- 1b: the same five compiles and strips as `pause-build publish` runs, started at once as five processes inside one `podman run` of the same builder image: the floor for a release that compiles in a container.',
    '- 2: the same commands again on the same commit and registry: pause-build with its caches warm and the tag already there (its publish record of these inputs holds at the registry, so it checks the tags and stops); the upstream-style flow as a release job re-runs it (compile again, `podman build` from its layer cache, push of blobs the registry has). 2b is what `make all-push` does in a workspace that still holds its stamp files: only push-manifest.',
    '- 4: `node dist/cli.js --tool-version` and `node -e 0` alternating, each run after run.',
    '',
  ];
  if (failed(r.mirror)) lines.push(`Mirror: failed: ${r.mirror.error.split('\n')[0]}`, '');
  else if (r.mirror) {
    lines.push(
      'Mirroring between loopback registries (median wall time (min–max); peak RSS for the big layer), each copy into a registry of its own, digests checked after every copy:',
      '',
      mirrorTable(r.mirror),
      '',
      'Commands:',
      ...mirrorCommands(r.mirror),
      `- the distinct tags are ${MANY_TAGS[0]} … ${MANY_TAGS.at(-1)}, twenty releases (pause-build selects them with \`--tags '${MANY_RANGE}'\`); the shared tags ${SHARED_TAGS[0]} … ${SHARED_TAGS.at(-1)} all point at the one image.`,
      '',
    );
  }
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
