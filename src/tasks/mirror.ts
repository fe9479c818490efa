/**
 * A mirror run as listr2 tasks, in two lists. The first only reads: it selects tags,
 * reads each source image and asks each destination what it holds (a dry run stops
 * there). The second writes: one task per copy (at most --jobs at once) with one per
 * destination, titled with the blobs and bytes moved. A failure stops only its own
 * destination; every failure is kept in the state for the command to report.
 */
import type { ListrTask } from 'listr2';
import { Limiter, Slots, settleAll } from '../concurrency.ts';
import { PauseBuildError } from '../errors.ts';
import { formatSize } from '../github.ts';
import { layoutTags } from '../oci/layout.ts';
import { shortDigest } from '../oci/blob.ts';
import {
  type CopyReport, type MirrorJob, type MirrorReport, type ParsedEntry, type SourceSpec,
  checkOverlaps, copyReport, copySummary, destinationReport, destinationSummary, errorLine, expandEntry, rewrittenLine, sourceName,
} from '../mirror.ts';
import type { RegistryClient } from '../registry/client.ts';
import { type DestinationPlan, type DestinationResult, type Engine, destinationName, planSummary } from '../registry/plan.ts';
import { type SourceImage, layoutSource, registrySource, resolveImage } from '../registry/sources.ts';
import { formatRepository } from '../registry/reference.ts';
import { write } from '../registry/write.ts';
import { type AttachResult, type Attached, attach, discoverInLayout, discoverInRegistry } from '../registry/referrers.ts';
import { listedTags } from '../registry/tags.ts';
import { type VerifyKey, checkSignatures } from '../attest/verify.ts';
import { Spool } from '../registry/spool.ts';
import { type OutputOptions, runTasks } from './run.ts';

export interface MirrorInput {
  readonly client: RegistryClient;
  /** The one engine of the run: what it has asked and written is shared by every copy. */
  readonly engine: Engine;
  readonly entries: readonly ParsedEntry[];
  /** Copies at once. */
  readonly jobs: number;
  readonly signal?: AbortSignal;
  /** Spool settings (tests). */
  readonly memoryLimit?: number;
  readonly tmpdir?: string;
  /** Carry referrers and cosign's legacy tags (default true). */
  readonly referrers?: boolean;
  /** A destination refusing an artifact fails instead of warning. */
  readonly requireReferrers?: boolean;
  /** Refuse a source whose index carries no valid signature by one of these. */
  readonly verifyKeys?: readonly VerifyKey[];
  /** The keys of mirror-file entries (verifyKeys), loaded, by absolute path. */
  readonly keyFiles?: ReadonlyMap<string, VerifyKey>;
}

export interface PlannedCopy {
  readonly job: MirrorJob;
  readonly spool: Spool;
  image?: SourceImage;
  /** Per destination, in the job's order. */
  plans: (DestinationPlan | undefined)[];
  results: (DestinationResult | { error: unknown } | undefined)[];
  error?: unknown;
  /** What is attached to the image and goes with it. */
  attached?: Attached[];
  /** Attached to the source index only, left behind because the index was rewritten. */
  leftBehind?: number;
  attachResults?: (AttachResult | undefined)[];
  warnings?: string[];
}

export interface MirrorState {
  copies: PlannedCopy[];
  failures: unknown[];
}

export function newMirrorState(): MirrorState {
  return { copies: [], failures: [] };
}


function imageTitle(image: SourceImage): string {
  const summary = copyReport(image, []);
  const rewritten = rewrittenLine(summary);
  return `${image.source.name} ${shortDigest(image.sourceDigest)}: ${copySummary(summary)}${rewritten ? `; ${rewritten}` : ''}`;
}

function planTitle(plan: DestinationPlan, digest: string): string {
  const report = destinationReport(plan.destination, digest, planSummary(plan));
  return `→ ${report.reference}: ${destinationSummary(report, true)}`;
}

function listTagsOf(client: RegistryClient, engine: Engine, signal: AbortSignal | undefined) {
  return async (source: SourceSpec): Promise<string[]> => {
    if (source.kind === 'layout') return layoutTags(source.dir);
    const repo = { registry: source.ref.registry, repository: source.ref.repository };
    const tags = await client.listTags(repo, { signal, action: `list tags of ${sourceName(source)}` });
    // The same list tells which fallback and legacy tags exist (referrers.ts).
    if (!engine.referrerMemo.tags.has(formatRepository(repo))) engine.referrerMemo.tags.set(formatRepository(repo), Promise.resolve(new Set(tags)));
    return tags;
  };
}

/** Keeps the failure for the command, and lets listr show it. */
function recording<T>(state: MirrorState, fn: () => Promise<T>): Promise<T> {
  return fn().catch((e: unknown) => {
    state.failures.push(e);
    throw e;
  });
}

/** The reading list: tags, sources, and what each destination lacks. */
export function planTasks(input: MirrorInput, state: MirrorState): ListrTask[] {
  const selecting = input.entries.some((e) => e.selectors);
  return [
    {
      title: selecting ? 'Selecting tags' : 'Reading the request',
      task: async (_ctx, task) => {
        const limiter = new Limiter(input.jobs);
        const list = listTagsOf(input.client, input.engine, input.signal);
        const expanded = await Promise.allSettled(input.entries.map((e) => limiter.run(() => expandEntry(e, list))));
        const jobs: MirrorJob[] = [];
        for (const r of expanded) {
          if (r.status === 'fulfilled') jobs.push(...r.value);
          else state.failures.push(r.reason);
        }
        if (state.failures.length) throw state.failures[0];
        checkOverlaps(jobs);
        state.copies = jobs.map((job) => ({
          job,
          spool: new Spool({ source: sourceName(job.source), ...(input.memoryLimit === undefined ? {} : { memoryLimit: input.memoryLimit }), ...(input.tmpdir ? { tmpdir: input.tmpdir } : {}) }),
          plans: job.destinations.map(() => undefined),
          results: job.destinations.map(() => undefined),
        }));
        const n = jobs.length;
        task.title = `${n} cop${n === 1 ? 'y' : 'ies'} to make: ${jobs.map((j) => sourceName(j.source)).join(', ')}`;
      },
    },
    {
      title: 'Reading sources and destinations',
      // Reads are small and the connections per registry are bounded (http.ts): more at once than copies.
      task: (_ctx, task) => task.newListr(state.copies.map((copy) => readTask(input, state, copy)), { concurrent: Math.max(input.jobs, READS_AT_ONCE), exitOnError: false }),
    },
  ];
}

function readTask(input: MirrorInput, state: MirrorState, copy: PlannedCopy): ListrTask {
  return {
    title: sourceName(copy.job.source),
    task: async (_ctx, task) => {
      const { job } = copy;
      const source = job.source.kind === 'registry' ? registrySource(input.client, job.source.ref, input.engine.sourceMemo) : layoutSource(job.source.dir, job.source.tag!);
      // The tag list the attachment lookups start from, read while the image is.
      if (job.source.kind === 'registry' && input.referrers !== false) listedTags(input.client, job.source.ref, input.engine.referrerMemo.tags, input.signal).catch(() => undefined);
      const image = await recording(state, () => resolveImage(source, { ...(job.platforms ? { platforms: job.platforms } : {}), spool: copy.spool, ...(input.signal ? { signal: input.signal } : {}) })).catch((e: unknown) => {
        copy.error = e;
        throw e;
      });
      copy.image = image;
      task.title = imageTitle(image);
      // What is attached and what each destination lacks are independent reads: asked side by side.
      const planned = Promise.allSettled(job.destinations.map((d) => input.engine.plan(image, d)));
      await recording(state, () => carried(input, copy, image)).catch(async (e: unknown) => {
        copy.error = e;
        await planned;
        throw e;
      });
      const settled = await planned;
      settled.forEach((s, i) => {
        if (s.status === 'fulfilled') {
          copy.plans[i] = s.value;
        } else {
          copy.results[i] = { error: s.reason };
          state.failures.push(s.reason);
        }
      });
      // Shown under the source: what each destination lacks, or why it could not be asked.
      return task.newListr(job.destinations.map((d, i) => ({
        title: copy.plans[i] ? planTitle(copy.plans[i]!, image.root.digest) : `→ ${destinationName(d)}`,
        task: async () => {
          const failed = copy.results[i];
          if (failed && 'error' in failed) throw failed.error;
        },
      })), { concurrent: true, exitOnError: false });
    },
  };
}

/** The writing list: each copy to each destination that lacks something. */
export function copyTasks(input: MirrorInput, state: MirrorState): ListrTask[] {
  // Copies with nothing to write keep their plans as their results (see mirrorReport).
  const todo = state.copies.filter((c) => c.image && (c.plans.some((p) => p && !planSummary(p).unchanged) || (c.attached?.length && c.plans.some(Boolean))));
  return [
    {
      title: todo.length ? `Copying ${todo.length} image${todo.length === 1 ? '' : 's'}` : 'Every destination is up to date',
      task: (_ctx, task) => {
        // --jobs bounds the images in transfer; a copy of an image another copy is writing to
        // the same repository (twenty tags of one image) waits for it and writes its tag without
        // a slot, so that twenty tags are not written four at a time.
        const slots = new Slots(input.jobs);
        return task.newListr(todo.map((copy) => writeTask(input, state, copy, slots)), { concurrent: true, exitOnError: false });
      },
    },
  ];
}

/** Copies reading at once. */
const READS_AT_ONCE = 16;

function writeTask(input: MirrorInput, state: MirrorState, copy: PlannedCopy, slots: Slots): ListrTask {
  const image = copy.image!;
  let remaining = copy.job.destinations.length;
  // The spool (and its temp files) goes as soon as the image's last destination is done.
  const finished = async () => {
    if (--remaining === 0) await copy.spool.dispose();
  };
  const destinationTask = (i: number): ListrTask => {
    const d = copy.job.destinations[i]!;
    const plan = copy.plans[i]!;
    const label = `→ ${destinationName(d, image.root.digest)}`;
    return {
      title: label,
      task: (_ctx, task) => recording(state, () => slots.run(`${destinationName({ ...d, tag: undefined } as typeof d)}@${image.root.digest}`, async () => {
        if (planSummary(plan).unchanged) {
          task.title = `${label}: already there`;
          await attachTo(input, copy, i, task);
          return;
        }
        let done = 0;
        let moved = 0;
        let manifestsIn!: () => void;
        let manifestsFailed!: (e: unknown) => void;
        const subjects = new Promise<void>((resolve, reject) => {
          manifestsIn = resolve;
          manifestsFailed = reject;
        });
        const writing = write(input.engine, image, plan, copy.spool, (e) => {
          if (e.type === 'manifest' && e.digest === image.root.digest) manifestsIn();
          if (e.type !== 'blob') return;
          done++;
          if (e.status === 'uploaded') moved += e.descriptor.size;
          task.title = `${label}: ${done}/${plan.blobs.length} blobs, ${formatSize(moved)} uploaded`;
        }, { onlyDestination: copy.job.destinations.length === 1 }).then((result) => {
          manifestsIn();
          copy.results[i] = result;
          task.title = `${label}: ${destinationSummary(destinationReport(d, image.root.digest, result), false)}`;
        }, (e: unknown) => {
          manifestsFailed(e);
          copy.results[i] = { error: e };
          throw e;
        });
        subjects.catch(() => undefined);
        // What is attached goes alongside: its blobs now, its manifests once the image's are in,
        // the fallback tags once the image is written, tags and all.
        await settleAll([writing, attachTo(input, copy, i, task, writing, subjects)]);
      })).finally(finished),
    };
  };
  return {
    title: `${image.source.name} ${shortDigest(image.root.digest)}`,
    task: (_ctx, task) => task.newListr(copy.job.destinations.map((_, i) => destinationTask(i)), { concurrent: true, exitOnError: false }),
  };
}

/**
 * Finds what is attached to the image at its source (referrers of the index, unless it
 * was rewritten, and of each child, recursively; legacy cosign tags), and checks the
 * index's signatures when keys are given: a refusal stops this copy before anything is written.
 */
async function carried(input: MirrorInput, copy: PlannedCopy, image: SourceImage): Promise<void> {
  const keys = [...(input.verifyKeys ?? []), ...(copy.job.verifyKeys ?? []).map((f) => input.keyFiles?.get(f)).filter((k): k is VerifyKey => k !== undefined)];
  const wanted = input.referrers !== false || keys.length > 0;
  if (!wanted) return;
  const children = image.manifests.map((m) => m.digest);
  const roots = image.rewritten ? children : [image.root.digest, ...children];
  const src = copy.job.source;
  const discover = (r: readonly string[]) => (src.kind === 'registry'
    ? discoverInRegistry(input.client, { registry: src.ref.registry, repository: src.ref.repository }, r, { legacy: true, memo: input.engine.referrerMemo, ...(input.signal ? { signal: input.signal } : {}) })
    : discoverInLayout(src.dir, r));
  // The source index's own referrers: for its signatures, and, once rewritten, to count what stays behind.
  const onIndex = keys.length || image.rewritten ? await discover([image.sourceDigest]) : [];
  if (keys.length) await checkSignatures(image.source.name, image.sourceDigest, onIndex, keys, input.signal);
  if (input.referrers === false) return;
  copy.attached = await discover(roots);
  if (image.rewritten) copy.leftBehind = onIndex.filter((a) => a.subject === image.sourceDigest).length;
}

async function attachTo(input: MirrorInput, copy: PlannedCopy, i: number, task: { title: string }, after?: Promise<unknown>, subjects?: Promise<unknown>): Promise<void> {
  if (!copy.attached?.length) return;
  const result = await attach(input.engine, copy.spool, copy.job.destinations[i]!, copy.attached, { require: Boolean(input.requireReferrers), ...(after ? { after } : {}), ...(subjects ? { subjects } : {}) }).catch((e: unknown) => {
    copy.results[i] = { error: e };
    throw e;
  });
  (copy.attachResults ??= [])[i] = result;
  (copy.warnings ??= []).push(...result.refused);
  task.title = `${task.title}; referrers ${result.written} new, ${result.present} there${result.refused.length ? `, ${result.refused.length} refused` : ''}`;
}

/** What is carried with a copy, for the report. */
function referrersReport(c: PlannedCopy): Record<string, unknown> {
  if (!c.attached && c.leftBehind === undefined) return {};
  const types: Record<string, number> = {};
  for (const a of c.attached ?? []) {
    const kind = a.tag ? `tag ${a.tag.slice(a.tag.lastIndexOf('.'))}` : a.artifactType ?? 'unknown';
    types[kind] = (types[kind] ?? 0) + 1;
  }
  return {
    referrers: {
      count: c.attached?.length ?? 0,
      types,
      ...(c.leftBehind ? { leftBehind: c.leftBehind, note: `the rewritten index has a new digest: ${c.leftBehind} signature${c.leftBehind === 1 ? '' : 's'} or attestation${c.leftBehind === 1 ? '' : 's'} of the source index cannot apply to it and were not copied` } : {}),
    },
  };
}

/** What happened (or, in a dry run, would), per copy and destination. */
export function mirrorReport(state: MirrorState, dryRun: boolean): MirrorReport {
  const copies: CopyReport[] = state.copies.map((c) => {
    if (!c.image) return { source: sourceName(c.job.source), destinations: [], ...(c.error ? { error: errorLine(c.error) } : {}) };
    const digest = c.image.root.digest;
    return { ...copyReport(c.image, c.job.destinations.map((d, i) => {
      const outcome = c.results[i] ?? (c.plans[i] ? planSummary(c.plans[i]!) : { error: new Error('not planned') });
      const a = c.attachResults?.[i];
      return { ...destinationReport(d, digest, outcome), ...(a ? { referrers: { written: a.written, present: a.present, fallbackTags: a.fallbackTags, ...(a.api === undefined ? {} : { api: a.api }), refused: a.refused } } : {}) };
    })), ...referrersReport(c) };
  });
  return { dryRun, copies };
}

/** The first failure, saying how many more there were; undefined when none. */
export function combinedFailure(state: MirrorState): unknown {
  const [first, ...rest] = state.failures;
  if (first === undefined) return undefined;
  if (rest.length === 0 || !(first instanceof PauseBuildError)) return first;
  return new PauseBuildError(`${first.message} (and ${rest.length} more failure${rest.length === 1 ? '' : 's'})`, { hint: first.hint, cause: first, exitCode: first.exitCode });
}

/** Removes every spool's temp files. */
export async function disposeSpools(state: MirrorState): Promise<void> {
  await settleAll(state.copies.map((c) => c.spool.dispose()));
}

/**
 * A whole mirror run, as the command runs it: the reading list (a dry run stops after it),
 * then the writing list; the report of what happened. Throws the first failure (saying how
 * many more there were) after the report is made, via `onReport`; spools are removed.
 */
export async function runMirror(input: MirrorInput, out: OutputOptions, dryRun: boolean, onReport?: (report: MirrorReport) => Promise<void>): Promise<MirrorReport> {
  const state = newMirrorState();
  try {
    await runTasks(planTasks(input, state), out).catch((e: unknown) => {
      if (!state.failures.includes(e)) state.failures.push(e);
    });
    const unplanned = combinedFailure(state);
    if (unplanned) throw unplanned;
    if (!dryRun) await runTasks(copyTasks(input, state), out);
    const result = mirrorReport(state, dryRun);
    await onReport?.(result);
    const failed = combinedFailure(state);
    if (failed) throw failed;
    return result;
  } finally {
    await disposeSpools(state);
  }
}
