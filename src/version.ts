/**
 * Versions as Kubernetes writes them for pause (3.10, 3.10.1, 3.11.0-rc.1, with or
 * without a leading v), compared through semver. The tag keeps the form it was given.
 */
import semver from 'semver';
import { PauseBuildError } from './errors.ts';

export interface Version {
  /** What goes in image tags and VERSION: the input without a leading `v`. */
  readonly tag: string;
  /** The full semver form used for comparison: 3.10 → 3.10.0. */
  readonly semver: string;
  readonly prerelease: boolean;
}

const VERSION_RE = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

export function parseVersion(input: string): Version {
  const text = input.trim();
  const m = VERSION_RE.exec(text);
  const full = m ? `${m[1]}.${m[2]}.${m[3] ?? '0'}${m[4] ? `-${m[4]}` : ''}` : undefined;
  if (!m || !full || !semver.valid(full)) {
    throw new PauseBuildError(`invalid version "${input}"`, {
      hint: 'use MAJOR.MINOR[.PATCH][-PRERELEASE], e.g. 3.10, 3.10.1 or 3.11.0-rc.1',
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
  return semver.compare(a.semver, b.semver);
}

/** Kubernetes drops a zero patch: 3.11.0 is published as 3.11. */
export function formatVersion(full: string): string {
  const v = semver.parse(full);
  if (!v) throw new PauseBuildError(`invalid version "${full}"`);
  if (v.patch === 0 && v.prerelease.length === 0) return `${v.major}.${v.minor}`;
  return v.version;
}

export type Bump = 'major' | 'minor' | 'patch' | 'prerelease';

export function bumpVersion(current: Version, bump: Bump, preid = 'rc'): Version {
  let next: string | null;
  if (bump === 'prerelease') {
    // From a release, a prerelease starts the next minor (3.10 → 3.11.0-rc.0), as Kubernetes does.
    next = current.prerelease ? semver.inc(current.semver, 'prerelease', preid) : semver.inc(current.semver, 'preminor', preid);
  } else {
    next = semver.inc(current.semver, bump);
  }
  if (!next) throw new PauseBuildError(`cannot bump ${current.tag} by ${bump}`);
  return parseVersion(formatVersion(next));
}

/** The string compiled into the binary, as the upstream Makefile does: v<tag>-<rev>. */
export function versionString(version: Version, revision: string): string {
  return `v${version.tag}-${revision}`;
}

export function isValidPreid(preid: string): boolean {
  return /^[0-9A-Za-z-]+$/.test(preid);
}
