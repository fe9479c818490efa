/**
 * npm run bench [-- --runs N] [--only release,noop,mirror] [--write]
 *
 * pause-build side by side with what it replaces, on this machine and with podman: a full
 * release against upstream's Makefile flow (bench/upstream-flow.sh) and against the bare
 * parallel compile in the builder, a no-op re-release, start-up against `node -e 0`, and
 * mirroring (the `pause-build mirror` CLI) against crane, oras and skopeo. Prints markdown
 * tables (medians over N runs, min–max, ratios of one run against the targets); --write also
 * puts them in bench/RESULTS.md. `--runs 1` is the quick mode: every row once.
 * It is a benchmark, not a test: it fails only when a side fails to do its job.
 *
 * Everything it starts is its own: registries on free loopback ports, files under
 * /tmp/wt-bench-*, podman images named localhost/pause-bench/…; all removed at the end.
 */
import { loadavg } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { resolveVersion } from '../src/project.ts';
import { unstableTool } from '../test/support/tools.ts';
import { Bench, CLI, ROOT } from './lib/bench.ts';
import { describeMachine } from './lib/machine.ts';
import { mirror } from './lib/mirror.ts';
import { startup } from './lib/startup.ts';
import { killAll, mustRun, timed } from './lib/process.ts';
import { fullRelease, noopRelease } from './lib/publish.ts';
import { type Results, renderResults, writeResultsFile } from './lib/report.ts';

const SCENARIOS = ['release', 'noop', 'mirror'] as const;
type Scenario = (typeof SCENARIOS)[number];

const USAGE = `usage: npm run bench [-- --runs N] [--only ${SCENARIOS.join(',')}] [--write]
  --runs N   repetitions of each measurement (default 5, or env PAUSE_BENCH_RUNS)
  --only …   run only these scenarios (comma-separated; default all)
  --write    also write the tables to bench/RESULTS.md (the Analysis section is kept)`;

function options() {
  const { values } = parseArgs({
    options: { runs: { type: 'string' }, only: { type: 'string' }, write: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const runs = Number(values.runs ?? process.env.PAUSE_BENCH_RUNS ?? 5);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs ${values.runs ?? process.env.PAUSE_BENCH_RUNS}: give a whole number ≥ 1`);
  const only = new Set((values.only ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean));
  for (const s of only) if (!SCENARIOS.includes(s as Scenario)) throw new Error(`--only ${s}: choose from ${SCENARIOS.join(', ')}`);
  return { runs, only: only as Set<Scenario>, write: values.write ?? false };
}

const started = performance.now();
/** Set on SIGINT/SIGTERM: failures after it are the interrupt's doing and not reported. */
let interrupted = false;

function log(line: string): void {
  process.stderr.write(`bench [${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);
}

async function requireTools(): Promise<void> {
  unstableTool('crane');
  unstableTool('oras');
  for (const tool of ['podman', 'skopeo', 'docker-registry', '/usr/bin/time']) {
    const r = await timed('sh', ['-c', `command -v ${tool}`]);
    if (r.exitCode !== 0) throw new Error(`${tool} is not installed: run bash build/setup.sh and bash build/test-tools.sh (as root)`);
  }
}

async function main(): Promise<number> {
  const opts = options();
  await requireTools();
  // The CLI as users run it (the package's bin), built from this checkout.
  log('bundling dist/ from src/');
  await mustRun('npm run build', process.execPath, [path.join(ROOT, 'scripts', 'bundle.mjs')], { cwd: ROOT });
  const tag = (await resolveVersion(ROOT)).tag;
  const bench = await Bench.create(tag);
  const stop = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping and cleaning up`);
    killAll();
    void bench.cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  let failures = 0;
  try {
    const before = loadavg()[0]!;
    const machine = await describeMachine();
    log('builder image (built now if missing; never timed)');
    const builder = (await mustRun('pause-build builder', process.execPath, [CLI, 'builder', '--engine', 'podman'], { cwd: ROOT, timeout: 900 })).stdout.trim();
    log('start-up');
    const started = await startup(opts.runs);

    const attempt = async <T>(name: Scenario, fn: () => Promise<T>): Promise<T | { error: string } | undefined> => {
      if (!opts.only.has(name)) return undefined;
      try {
        return await fn();
      } catch (e) {
        if (interrupted) throw e;
        failures++;
        log(`${name} failed: ${(e as Error).message}`);
        return { error: (e as Error).message };
      }
    };
    const release = await attempt('release', () => fullRelease(bench, builder, opts.runs, log));
    const noop = await attempt('noop', () => noopRelease(bench, builder, opts.runs, log));
    const mirrored = await attempt('mirror', () => mirror(bench, CLI, opts.runs, log));

    const results: Results = {
      runs: opts.runs,
      date: new Date(),
      machine,
      load: { before, after: loadavg()[0]! },
      tag,
      startup: started,
      release,
      noop,
      mirror: mirrored,
    };
    const text = renderResults(results);
    process.stdout.write(`${text}`);
    if (opts.write) {
      const file = path.join(ROOT, 'bench', 'RESULTS.md');
      await writeResultsFile(file, text);
      log(`wrote ${path.relative(process.cwd(), file) || file}`);
    }
  } finally {
    await bench.cleanup();
  }
  return failures > 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (e) {
  if (!interrupted) process.stderr.write(`bench: ${(e as Error).message}\n`);
  process.exitCode = interrupted ? 130 : 1;
}
