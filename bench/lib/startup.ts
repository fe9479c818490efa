/**
 * Start-up: `pause-build --tool-version` (the bundled dist/cli.js) against `node -e 0`, the
 * floor any Node.js CLI starts from. The two alternate, run after run, so that load on the
 * machine falls on both alike; the ratio is of the medians of the same run.
 */
import { CLI } from './bench.ts';
import { mustRun } from './process.ts';

export interface StartupMeasured {
  readonly ours: number[];
  readonly node: number[];
}

export async function startup(runs: number): Promise<StartupMeasured> {
  const m = { ours: [] as number[], node: [] as number[] };
  // Start-up is short: more samples than the other rows, for a steady median.
  const n = Math.max(10, runs * 4);
  for (let i = 0; i < n; i++) {
    m.node.push((await mustRun('node -e 0', process.execPath, ['-e', '0'])).seconds);
    m.ours.push((await mustRun('pause-build --tool-version', process.execPath, [CLI, '--tool-version'])).seconds);
  }
  return m;
}
