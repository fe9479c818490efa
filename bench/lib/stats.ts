/** Medians, spreads and ratios of repeated timings, and how they are written in the tables. */

export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(values: readonly number[]): Summary | undefined {
  if (values.length === 0) return undefined;
  return { n: values.length, median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

function secs(s: number): string {
  return s < 10 ? s.toFixed(2) : s.toFixed(1);
}

/** `2.31 s (2.20–2.52)`: median, then min–max. */
export function formatSummary(s: Summary | undefined): string {
  if (!s) return '–';
  return s.n === 1 ? `${secs(s.median)} s` : `${secs(s.median)} s (${secs(s.min)}–${secs(s.max)})`;
}

/** How many times faster `ours` is than `baseline`, from the medians. */
export function speedup(ours: Summary | undefined, baseline: Summary | undefined): number | undefined {
  if (!ours || !baseline || ours.median <= 0) return undefined;
  return baseline.median / ours.median;
}

export function formatRatio(r: number | undefined): string {
  if (r === undefined) return '–';
  // One decimal below 100: a 19.6× beside a 20× target must not read as 20×.
  return r >= 100 ? `${r.toFixed(0)}×` : `${r.toFixed(1)}×`;
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(3, ...all.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]) => `| ${r.map((cell, c) => (cell ?? '').padEnd(widths[c]!)).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}
