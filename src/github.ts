/**
 * GitHub Actions: step outputs, the job summary, log groups, error annotations and
 * secret masking. Formatting is pure (tested without a runner); the effects at the
 * bottom go through @actions/core and do nothing unless GITHUB_ACTIONS=true (only then is
 * @actions/core loaded: it takes longer to load than most commands take to run).
 *
 * Workflow commands (::add-mask::, ::error::, ::group::) are written to stderr, which
 * the runner reads as it reads stdout: stdout carries only results (digests, --json),
 * so `x=$(pause-build … --json)` in a step still gets clean JSON and masks still apply.
 */
import { PauseBuildError } from './errors.ts';
import { importPackage } from './packages.ts';

type ActionsCore = typeof import('@actions/core');
let loaded: Promise<ActionsCore> | undefined;
let ready: ActionsCore | undefined;

/** @actions/core, loaded on first use. */
function actionsCore(): Promise<ActionsCore> {
  loaded ??= importPackage<ActionsCore>('@actions/core').then((core) => (ready = core));
  return loaded;
}

export type Env = Readonly<Record<string, string | undefined>>;

export function inActions(env: Env = process.env): boolean {
  return env.GITHUB_ACTIONS === 'true';
}

/** One row of the summary table: one arch of an image, or one binary. */
export interface PlatformRow {
  /** linux/arm/v7 */
  readonly platform: string;
  /** sha256:<hex> */
  readonly digest: string;
  /** bytes */
  readonly size: number;
}

/** What a command reports when it is done. Every field is optional: each is shown if present. */
export interface Report {
  /** Heading of the summary section, e.g. "pause 3.10 published". */
  readonly title: string;
  readonly version?: string;
  /** Repository without a tag, e.g. registry.k8s.io/pause. */
  readonly image?: string;
  /** The index (or single manifest) digest. */
  readonly digest?: string;
  /** Full references or bare tags. */
  readonly tags?: readonly string[];
  /** host/repo@sha256:… references, one per destination written. */
  readonly pinned?: readonly string[];
  /** An OCI layout reference, oci:DIR:TAG. */
  readonly layout?: string;
  readonly platforms?: readonly PlatformRow[];
  /** Extra key/value lines shown under the heading. */
  readonly facts?: readonly (readonly [string, string])[];
}

export const OUTPUT_NAMES = ['digest', 'tags', 'pinned', 'version', 'image', 'layout'] as const;

/** Step outputs: digest, tags and pinned (one per line, as docker/metadata-action does), version, image, layout. */
export function outputsOf(report: Report): Record<string, string> {
  const out: Record<string, string> = {};
  if (report.digest !== undefined) out.digest = report.digest;
  if (report.tags !== undefined) out.tags = report.tags.join('\n');
  if (report.pinned !== undefined) out.pinned = report.pinned.join('\n');
  if (report.version !== undefined) out.version = report.version;
  if (report.image !== undefined) out.image = report.image;
  if (report.layout !== undefined) out.layout = report.layout;
  return out;
}

/** 687 KiB, 1.2 MiB: what people read; the exact byte count stays in the digest. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** The job summary section: heading, facts, tags, then one table row per arch. */
export function summaryMarkdown(report: Report): string {
  const lines = [`### ${report.title}`, ''];
  const facts: [string, string][] = [];
  if (report.version !== undefined) facts.push(['version', report.version]);
  if (report.image !== undefined) facts.push(['image', report.image]);
  if (report.digest !== undefined) facts.push(['digest', report.digest]);
  if (report.layout !== undefined) facts.push(['layout', report.layout]);
  facts.push(...(report.facts ?? []).map(([k, v]) => [k, v] as [string, string]));
  for (const [k, v] of facts) lines.push(`- **${k}**: \`${v}\``);
  if (report.tags && report.tags.length > 0) lines.push(`- **tags**: ${report.tags.map((t) => `\`${t}\``).join(', ')}`);
  if (report.pinned && report.pinned.length > 0) {
    lines.push('- **pinned**:');
    for (const p of report.pinned) lines.push(`  - \`${cell(p)}\``);
  }
  if (facts.length > 0 || report.tags?.length || report.pinned?.length) lines.push('');
  if (report.platforms && report.platforms.length > 0) {
    lines.push('| platform | digest | size |', '| --- | --- | ---: |');
    for (const p of report.platforms) lines.push(`| ${cell(p.platform)} | \`${cell(p.digest)}\` | ${formatSize(p.size)} |`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/** An error as an annotation: the one-line message (with its hint) and a title naming the command. */
export function annotationOf(err: unknown, command: string | undefined): { message: string; title: string } {
  const title = command ? `pause-build ${command}` : 'pause-build';
  if (err instanceof PauseBuildError) return { title, message: err.hint ? `${err.message} — ${err.hint}` : err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { title, message: message.split('\n')[0] ?? '' };
}

/** Environment variables whose values are secrets: *PASSWORD*, *TOKEN*, *SECRET*, *CREDENTIAL*. */
const SECRET_NAME = /(PASSWORD|PASSWD|TOKEN|SECRET|CREDENTIAL)/i;

/** Values to mask: every non-trivial value of an environment variable named like a secret. */
export function secretValues(env: Env): string[] {
  const values = new Set<string>();
  for (const [name, value] of Object.entries(env)) {
    // A short value (a flag like "true", a count) would be starred out all over the log.
    if (value && value.trim().length >= 6 && SECRET_NAME.test(name)) values.add(value);
  }
  return [...values];
}

// ---- effects: only in Actions ----

/** Runs `fn` with stdout writes sent to stderr: @actions/core writes its commands to stdout. */
function onStderr<T>(fn: () => T): T {
  const write = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  try {
    return fn();
  } finally {
    process.stdout.write = write;
  }
}

/**
 * Masks a secret in the Actions log. The registry's credential code calls this with a
 * password read from --password-stdin before anything can print it. Each line of a
 * multi-line secret is masked on its own, as the runner matches line by line.
 */
export async function maskSecret(value: string, env: Env = process.env): Promise<void> {
  if (!inActions(env) || !value) return;
  maskNow(await actionsCore(), value);
}

function maskNow(core: ActionsCore, value: string): void {
  onStderr(() => {
    for (const line of value.split(/\r?\n/)) if (line.trim()) core.setSecret(line);
  });
}

/**
 * Masks at once, before the caller goes on to use the secret. Valid after
 * maskEnvSecrets, which loads @actions/core in Actions.
 */
export function maskSecretSync(value: string, env: Env = process.env): void {
  if (!inActions(env) || !value) return;
  if (!ready) throw new Error('maskSecretSync before maskEnvSecrets');
  maskNow(ready, value);
}

/**
 * Masks every secret-looking environment variable; cli.ts calls this before printing
 * anything. In Actions it also loads @actions/core, so that secrets read later are masked
 * synchronously, before they are sent anywhere.
 */
export async function maskEnvSecrets(env: Env = process.env): Promise<void> {
  if (!inActions(env)) return;
  const core = await actionsCore();
  for (const value of secretValues(env)) maskNow(core, value);
}

/** Sets the step outputs and appends the summary section; a no-op outside Actions. */
export async function report(r: Report, env: Env = process.env): Promise<void> {
  if (!inActions(env)) return;
  const core = await actionsCore();
  // Without the files, @actions/core would fall back to deprecated stdout commands.
  if (env.GITHUB_OUTPUT) for (const [name, value] of Object.entries(outputsOf(r))) core.setOutput(name, value);
  if (env.GITHUB_STEP_SUMMARY) await core.summary.addRaw(summaryMarkdown(r)).write();
}

/** Turns an error into an `::error title=…::` annotation; the terminal line is printed as usual too. */
export async function annotateError(err: unknown, command: string | undefined, env: Env = process.env): Promise<void> {
  if (!inActions(env)) return;
  const core = await actionsCore();
  const { message, title } = annotationOf(err, command);
  onStderr(() => core.error(message, { title }));
}

/** Runs `fn` inside a collapsible log group in Actions; just runs it elsewhere. */
export async function group<T>(title: string, fn: () => Promise<T>, env: Env = process.env): Promise<T> {
  if (!inActions(env)) return fn();
  const core = await actionsCore();
  onStderr(() => core.startGroup(title));
  try {
    return await fn();
  } finally {
    onStderr(() => core.endGroup());
  }
}
