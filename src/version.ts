/**
 * Versions as Kubernetes writes them for pause (3.10, 3.10.1, 3.11.0-rc.1, with or
 * without a leading v), compared through semver. The tag keeps the form it was given.
 *
 * Bumps follow semver with Kubernetes' short form for a zero patch:
 *   3.10 + patch = 3.10.1, + minor = 3.11, + major = 4.0
 *   3.10 + prerelease = 3.11.0-rc.0 (a prerelease from a release starts the next minor
 *   at rc.0, as Kubernetes numbers its own release candidates), 3.11.0-rc.0 → 3.11.0-rc.1
 *   3.11.0-rc.1 + patch or minor = 3.11 (the release the candidate was for)
 * A prerelease is never `latest`.
 */
import { createRequire } from 'node:module';
import type * as Semver from 'semver';
import { PauseBuildError } from './errors.ts';

const require = createRequire(import.meta.url);
let loaded: typeof Semver | undefined;

/**
 * semver, loaded when a version is first parsed or compared: a plain mirror copy never
 * does, and loading it takes longer than a registry round trip.
 */
export function semverLib(): typeof Semver {
  loaded ??= require('semver') as typeof Semver;
  return loaded;
}

/**
 * What semver.valid() asks of a version VERSION_RE has matched (its grammar, less build
 * metadata): at most 256 characters, numbers no larger than 2^53 - 1, and no numeric
 * prerelease identifier with a leading zero. Checked here because loading semver (10 ms)
 * is a tenth of a no-op publish, and every command parses the version.
 */
function semverValid(full: string, m: RegExpExecArray): boolean {
  if (full.length > 256) return false;
  if ([m[1], m[2], m[3] ?? '0'].some((n) => !Number.isSafeInteger(Number(n)))) return false;
  return !(m[4] ?? '').split('.').some((id) => /^0\d+$/.test(id));
}

export interface Version {
  /** What goes in image tags and VERSION: the input without a leading `v`. */
  readonly tag: string;
  /** The full semver form used for comparison: 3.10 → 3.10.0. */
  readonly semver: string;
  readonly prerelease: boolean;
}

const VERSION_RE = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;
const FORM_HINT = 'use MAJOR.MINOR[.PATCH][-PRERELEASE], e.g. 3.10, 3.10.1 or 3.11.0-rc.1';

export function parseVersion(input: string): Version {
  const text = input.trim();
  const m = VERSION_RE.exec(text);
  const full = m ? `${m[1]}.${m[2]}.${m[3] ?? '0'}${m[4] ? `-${m[4]}` : ''}` : undefined;
  if (!m || !full || !semverValid(full, m)) {
    throw new PauseBuildError(`invalid version "${input.trim()}"`, { hint: FORM_HINT });
  }
  // 3.11-rc.1 and 3.11.0-rc.1 would be two git tags for one version: Kubernetes writes the patch.
  if (m[4] !== undefined && m[3] === undefined) {
    throw new PauseBuildError(`invalid version "${text}": a prerelease needs the patch number`, {
      hint: `write ${text.replace(/^v/, '').replace('-', '.0-')}`,
    });
  }
  return { tag: text.replace(/^v/, ''), semver: full, prerelease: m[4] !== undefined };
}

/** Like parseVersion, but undefined for tags that are not versions (latest, sha-…). */
export function tryParseVersion(input: string): Version | undefined {
  try {
    return parseVersion(input);
  } catch {
    return undefined;
  }
}

export function compareVersions(a: Version, b: Version): number {
  return semverLib().compare(a.semver, b.semver);
}

/** The greatest of `versions`, or undefined for none. */
export function maxVersion(versions: Iterable<Version>): Version | undefined {
  let max: Version | undefined;
  for (const v of versions) if (!max || compareVersions(v, max) > 0) max = v;
  return max;
}

/** Tags as people want to read them: versions first, greatest first, then the other tags by name. */
export function sortTagsForDisplay(tags: readonly string[]): string[] {
  const keyed = tags.map((tag) => ({ tag, v: tryParseVersion(tag) }));
  return keyed
    .sort((a, b) => (a.v && b.v ? compareVersions(b.v, a.v) : a.v ? -1 : b.v ? 1 : a.tag.localeCompare(b.tag)))
    .map((x) => x.tag);
}

/** Kubernetes drops a zero patch: 3.11.0 is published as 3.11. */
export function formatVersion(full: string): string {
  const v = semverLib().parse(full);
  if (!v) throw new PauseBuildError(`invalid version "${full}"`, { hint: FORM_HINT });
  if (v.patch === 0 && v.prerelease.length === 0) return `${v.major}.${v.minor}`;
  return v.version;
}

export const BUMPS = ['major', 'minor', 'patch', 'prerelease'] as const;
export type Bump = (typeof BUMPS)[number];

export function isBump(value: string): value is Bump {
  return (BUMPS as readonly string[]).includes(value);
}

/** A prerelease identifier: rc, alpha, beta… (a letter first, so 3.11.0-1.0 cannot happen). */
export function isValidPreid(preid: string): boolean {
  return /^[A-Za-z][0-9A-Za-z-]*$/.test(preid);
}

export function bumpVersion(current: Version, bump: Bump, preid = 'rc'): Version {
  if (!isBump(bump)) {
    throw new PauseBuildError(`invalid bump "${bump}"`, { hint: `use one of ${BUMPS.join(', ')}` });
  }
  if (!isValidPreid(preid)) {
    throw new PauseBuildError(`invalid prerelease id "${preid}"`, { hint: 'use letters, digits and -, starting with a letter (e.g. rc, alpha, beta)' });
  }
  const next =
    bump === 'prerelease'
      ? semverLib().inc(current.semver, current.prerelease ? 'prerelease' : 'preminor', preid)
      : semverLib().inc(current.semver, bump);
  const version = next ? parseVersion(formatVersion(next)) : undefined;
  if (!version || compareVersions(version, current) <= 0) {
    // e.g. 3.11.0-rc.1 with --preid alpha would go back to 3.11.0-alpha.0
    throw new PauseBuildError(`bumping ${current.tag} by ${bump}${bump === 'prerelease' ? ` (${preid})` : ''} does not give a greater version${version ? ` (${version.tag})` : ''}`, {
      hint: 'pick another --preid or give the version explicitly',
    });
  }
  return version;
}

/**
 * Whether `version` should also be tagged `latest`: a release (never a prerelease) that
 * is at least as great as every release in `released` (prereleases there do not count).
 */
export function isLatest(version: Version, released: Iterable<Version>): boolean {
  if (version.prerelease) return false;
  for (const r of released) if (!r.prerelease && compareVersions(r, version) > 0) return false;
  return true;
}

/** Image tags for a version: the version itself, and `latest` when isLatest says so. */
export function imageTags(version: Version, released: Iterable<Version>): string[] {
  return isLatest(version, released) ? [version.tag, 'latest'] : [version.tag];
}

/** The string compiled into the binary, as the upstream Makefile does: v<tag>-<rev>. */
export function versionString(version: Version, revision: string): string {
  return `v${version.tag}-${revision}`;
}
