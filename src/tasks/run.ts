/** Runs a task list with the renderer that suits where the output goes. */
import { Listr, ListrLogger, type ListrTask, ProcessOutput } from 'listr2';
import { group, inActions } from '../github.ts';

export interface OutputOptions {
  readonly quiet?: boolean;
  readonly debug?: boolean;
  readonly json?: boolean;
}

type Renderer = 'default' | 'simple' | 'verbose' | 'silent';

/** Rich on a terminal; plain lines in CI, in pipes and under --debug; nothing with --quiet or --json. */
export function chooseRenderer(out: OutputOptions, env = process.env, tty = Boolean(process.stderr.isTTY)): Renderer {
  if (out.quiet || out.json) return 'silent';
  if (out.debug) return 'verbose';
  if (!tty || env.CI === 'true' || env.GITHUB_ACTIONS === 'true') return 'simple';
  return 'default';
}

export async function runTasks(tasks: ListrTask[], out: OutputOptions): Promise<void> {
  if (!inActions()) {
    await listOf(tasks, out).run();
    return;
  }
  // In Actions each top-level task is a stage with its own collapsible log group;
  // they run one after another as a single list would, sharing one context.
  const ctx = {};
  for (const task of tasks) {
    const list = listOf([task], out, ctx);
    await (typeof task.title === 'string' ? group(task.title, () => list.run()) : list.run());
  }
}

function listOf(tasks: ListrTask[], out: OutputOptions, ctx?: object): Listr {
  // Progress goes to stderr so that stdout carries only results (digests, --json).
  const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  return new Listr(tasks, {
    ...(ctx === undefined ? {} : { ctx }),
    renderer: chooseRenderer(out),
    fallbackRenderer: 'simple',
    exitOnError: true,
    registerSignalListeners: false,
    rendererOptions: { logger, collapseErrors: false } as object,
    fallbackRendererOptions: { logger } as object,
  });
}
