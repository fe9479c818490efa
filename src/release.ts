/**
 * Release planning, pure: from the current version, what was released (git tags, and a
 * registry's tags when one is named) and the request (--bump or an explicit version) to
 * the plan that `release` prints and, with --yes, carries out (src/tasks/release.ts).
 */
import { PauseBuildError } from './errors.ts';
import { parseSourceDateEpoch } from './project.ts';
import { formatRepository, parseRepository } from './registry/reference.ts';
import {
  type Bump,
  type Version,
  BUMPS,
  bumpVersion,
  compareVersions,
  imageTags,
  isBump,
  isLatest,
  maxVersion,
  parseVersion,
  tryParseVersion,
} from './version.ts';

/** The image's name under a registry, as upstream's Makefile names it: $(REGISTRY)/pause. */
/**
 * Lists the tags of a repository (e.g. `registry.k8s.io/pause`) in a registry. Provided by
 * the registry client; see `registryTagLister` in src/commands/release.ts.
 */
export type ListRegistryTags = (repository: string, options: { signal?: AbortSignal }) => Promise<string[]>;

export interface ReleaseRequest {
  readonly bump?: string;
  readonly preid?: string;
  readonly version?: string;
}

/** A release's version: checked before anything is read from git or a registry. */
export function requestedVersion(current: Version, request: ReleaseRequest): { version: Version; how: string } {
  if (request.bump !== undefined && request.version !== undefined) {
    throw new PauseBuildError(`--bump ${request.bump} and the version ${request.version} were both given`, { hint: 'give either --bump or a version, not both' });
  }
  if (request.preid !== undefined && request.bump !== 'prerelease') {
    throw new PauseBuildError('--preid is only for --bump prerelease', { hint: 'add --bump prerelease, or write the prerelease version out (e.g. 3.11.0-rc.1)' });
  }
  if (request.version !== undefined) return { version: parseVersion(request.version), how: 'given' };
  if (request.bump === undefined) {
    throw new PauseBuildError('no version to release', { hint: `pass --bump ${BUMPS.join('|')} or a version, e.g. pause-build release 3.11` });
  }
  if (!isBump(request.bump)) {
    throw new PauseBuildError(`invalid bump "${request.bump}"`, { hint: `use one of ${BUMPS.join(', ')}` });
  }
  const bump: Bump = request.bump;
  const preid = request.preid ?? 'rc';
  return { version: bumpVersion(current, bump, preid), how: bump === 'prerelease' ? `prerelease bump (${preid})` : `${bump} bump` };
}

/** Released versions from a list of tags (git or registry); tags that are not versions are left out. */
export function releasedVersions(tags: readonly string[]): Version[] {
  return tags.map((t) => tryParseVersion(t)).filter((v): v is Version => v !== undefined);
}

export interface PlanInput {
  readonly current: Version;
  readonly request: ReleaseRequest;
  readonly gitTags: readonly string[];
  /** The registry's tags of <registry>/pause; only with `registry`. */
  readonly registryTags?: readonly string[];
  readonly registry?: string;
  /** The nearest version tag below HEAD: where the changelog starts. */
  readonly previousTag?: string;
  /** Subjects of the commits since previousTag, newest first. */
  readonly subjects: readonly string[];
  /** YYYY-MM-DD */
  readonly date: string;
  /** `git status --porcelain` lines. */
  readonly changes: readonly string[];
  /** --push-tag: the remote the tag goes to. */
  readonly pushRemote?: string;
}

export interface ReleasePlan {
  readonly current: string;
  readonly next: string;
  /** How next was chosen: "minor bump", "given"… */
  readonly how: string;
  readonly prerelease: boolean;
  readonly latest: boolean;
  readonly gitTag: string;
  readonly commitMessage: string;
  readonly imageTags: readonly string[];
  readonly registry?: string;
  /** <registry>/pause */
  readonly image?: string;
  /** Full references, one per image tag; empty without a registry. */
  readonly images: readonly string[];
  /** The greatest version released so far, and where it was seen. */
  readonly highestReleased?: { readonly version: string; readonly where: string };
  readonly previousTag?: string;
  readonly date: string;
  readonly changelog: string;
  readonly clean: boolean;
  readonly changes: readonly string[];
  readonly pushRemote?: string;
}

/** The repository as `publish --registry` takes it (HOST[:PORT]/REPO), checked and normalised. */
export function imageRepository(registry: string): string {
  return formatRepository(parseRepository(registry));
}

/** `## 3.11 - 2025-11-26` and one bullet per commit subject. */
export function changelogSection(version: string, date: string, subjects: readonly string[], previousTag?: string): string {
  const bullets = subjects.length > 0 ? subjects.map((s) => `- ${s}`) : [`- No changes since ${previousTag ?? 'the start'}.`];
  return `## ${version} - ${date}\n\n${bullets.join('\n')}\n`;
}

/**
 * CHANGELOG.md with `section` in front of the newest entry: after the file's title
 * (a `# ` heading and the text up to the first `## `), or at the top when there is none.
 */
export function prependChangelog(existing: string | undefined, section: string): string {
  if (existing === undefined || existing.trim() === '') return `# Changelog\n\n${section}`;
  const firstEntry = existing.search(/^## /m);
  if (/^# /.test(existing)) {
    if (firstEntry < 0) return `${existing.replace(/\s*$/, '')}\n\n${section}`;
    return `${existing.slice(0, firstEntry)}${section}\n${existing.slice(firstEntry)}`;
  }
  return `${section}\n${existing}`;
}

/** The day a release is dated: SOURCE_DATE_EPOCH when set (reproducible), else now; UTC. */
export function releaseDate(env: Readonly<Record<string, string | undefined>> = process.env, now = new Date()): string {
  const epoch = parseSourceDateEpoch(env.SOURCE_DATE_EPOCH);
  if (epoch !== undefined) return new Date(epoch * 1000).toISOString().slice(0, 10);
  return now.toISOString().slice(0, 10);
}

export function planRelease(input: PlanInput): ReleasePlan {
  const { version: next, how } = requestedVersion(input.current, input.request);
  const fromGit = releasedVersions(input.gitTags).map((version) => ({ version, where: `git tag ${gitTagOf(input.gitTags, version)}` }));
  const fromRegistry = input.registry
    ? releasedVersions(input.registryTags ?? []).map((version) => ({ version, where: `${imageRepository(input.registry!)}:${version.tag}` }))
    : [];
  const released = [...fromGit, ...fromRegistry];
  const highest = maxVersion(released.map((r) => r.version));
  const highestSeen = highest && released.find((r) => compareVersions(r.version, highest) === 0);
  if (highest && highestSeen && compareVersions(next, highest) <= 0) {
    const equal = compareVersions(next, highest) === 0;
    throw new PauseBuildError(`${next.tag} ${equal ? 'is already released' : `is lower than the released ${highest.tag}`} (${highestSeen.where})`, {
      hint: `release a version above ${highest.tag}, e.g. --bump patch (${bumpVersion(highest, 'patch').tag}) or --bump minor (${bumpVersion(highest, 'minor').tag})`,
    });
  }
  const versions = released.map((r) => r.version);
  const tags = imageTags(next, versions);
  const image = input.registry ? imageRepository(input.registry) : undefined;
  return {
    current: input.current.tag,
    next: next.tag,
    how,
    prerelease: next.prerelease,
    latest: isLatest(next, versions),
    gitTag: `v${next.tag}`,
    commitMessage: `Release ${next.tag}`,
    imageTags: tags,
    ...(input.registry ? { registry: input.registry } : {}),
    ...(image ? { image } : {}),
    images: image ? tags.map((t) => `${image}:${t}`) : [],
    ...(highest && highestSeen ? { highestReleased: { version: highest.tag, where: highestSeen.where } } : {}),
    ...(input.previousTag ? { previousTag: input.previousTag } : {}),
    date: input.date,
    changelog: changelogSection(next.tag, input.date, input.subjects, input.previousTag),
    clean: input.changes.length === 0,
    changes: input.changes,
    ...(input.pushRemote ? { pushRemote: input.pushRemote } : {}),
  };
}

/** The git tag that spelled `version` (v3.10 or 3.10). */
function gitTagOf(tags: readonly string[], version: Version): string {
  return tags.find((t) => tryParseVersion(t)?.semver === version.semver) ?? `v${version.tag}`;
}

/** Refuses to carry out a plan on a work tree with changes: they would be left out of, or mixed into, the release. */
export function requireClean(plan: ReleasePlan): void {
  if (plan.clean) return;
  const first = plan.changes[0]!.slice(3);
  throw new PauseBuildError(
    `the work tree has ${plan.changes.length} uncommitted change${plan.changes.length === 1 ? '' : 's'} (${first}${plan.changes.length > 1 ? ', …' : ''})`,
    { hint: 'commit or stash them, then run the release again' },
  );
}

/** The plan as people read it: one fact a line. */
export function formatPlan(plan: ReleasePlan, carriedOut: boolean): string {
  const rows: [string, string][] = [
    ['current version', plan.current],
    ['next version', `${plan.next} (${plan.how})`],
    ['highest released', plan.highestReleased ? `${plan.highestReleased.version} (${plan.highestReleased.where})` : 'none'],
    ['git tag', `${plan.gitTag} (annotated, on a new commit "${plan.commitMessage}")`],
    ['files', `VERSION → ${plan.next}; CHANGELOG.md gets "## ${plan.next} - ${plan.date}" (${changelogCount(plan)})`],
    ['image tags', plan.imageTags.join(', ')],
    ['registry', plan.image ? plan.images.join(', ') : 'none (pass --registry to check its tags and name the images)'],
    ['latest', plan.latest ? 'yes' : plan.prerelease ? 'no (a prerelease is never latest)' : 'no (a greater release exists)'],
    ['push tag', plan.pushRemote ? `to ${plan.pushRemote}` : carriedOut ? 'no' : 'no (pass --push-tag [remote])'],
  ];
  if (!carriedOut) {
    rows.push(['work tree', plan.clean ? 'clean' : `${plan.changes.length} uncommitted change(s): --yes will refuse until they are committed or stashed`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const head = carriedOut ? `Released ${plan.next}` : `Release plan for ${plan.next} (nothing changed; run again with --yes to carry it out)`;
  return `${head}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

function changelogCount(plan: ReleasePlan): string {
  const n = plan.changelog.split('\n').filter((l) => l.startsWith('- ')).length;
  const since = plan.previousTag ? ` since ${plan.previousTag}` : '';
  return /^- No changes since /m.test(plan.changelog) ? `no commits${since}` : `${n} commit${n === 1 ? '' : 's'}${since}`;
}
