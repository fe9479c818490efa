/**
 * Facts about the checkout being built: where its files are, which version it is,
 * and which revision — all from the command line, the VERSION file or git.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PauseBuildError } from './errors.ts';
import { capture } from './exec.ts';
import { type Version, parseVersion, tryParseVersion } from './version.ts';

/** The package's own root (pause.c, the builder Dockerfile, the image Dockerfile live here). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** org.opencontainers.image.source by default: where pause.c lives upstream. A constant, not a
 * git remote, so that clones at different URLs still build the same digest. */
export const DEFAULT_SOURCE_URL = 'https://github.com/kubernetes/kubernetes';

export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

async function git(root: string, args: string[]): Promise<string | undefined> {
  const r = await capture('git', args, { cwd: root });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/** --version, else the VERSION file, else the nearest git tag that is a version. */
export async function resolveVersion(root: string, flag?: string): Promise<Version> {
  if (flag !== undefined) return parseVersion(flag);
  const file = path.join(root, 'VERSION');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text !== undefined) {
    try {
      return parseVersion(text);
    } catch {
      throw new PauseBuildError(`VERSION file holds an invalid version "${text.trim()}"`, { hint: `fix ${file} (e.g. 3.10) or pass --version` });
    }
  }
  const fromTag = await nearestVersionTag(root);
  if (fromTag) return fromTag.version;
  throw new PauseBuildError('no version found', { hint: 'pass --version, write a VERSION file, or tag the commit (e.g. v3.10)' });
}

/**
 * The nearest tag reachable from HEAD that is a version (v3.10 or 3.10), as `git describe`
 * measures nearness. Tags that only look like versions (v3.x, 3.10-foo…) are skipped
 * and the next nearest is tried.
 */
export async function nearestVersionTag(root: string, rev = 'HEAD'): Promise<{ tag: string; version: Version } | undefined> {
  const skipped: string[] = [];
  for (let i = 0; i < 100; i++) {
    const tag = await git(root, [
      'describe', '--tags', '--abbrev=0', '--match=v[0-9]*', '--match=[0-9]*',
      ...skipped.map((t) => `--exclude=${t}`), rev,
    ]);
    if (!tag) return undefined;
    const version = tryParseVersion(tag);
    if (version) return { tag, version };
    skipped.push(tag);
  }
  return undefined;
}

/** As the upstream Makefile: `git describe --contains --always --match='v*'`. */
export async function resolveRevision(root: string, flag?: string): Promise<string> {
  const rev = flag ?? ((await git(root, ['describe', '--contains', '--always', '--match=v*'])) || 'unknown');
  if (!/^[\w.~^+-]+$/.test(rev)) {
    throw new PauseBuildError(`invalid revision "${rev}"`, { hint: 'use letters, digits and . ~ ^ + - _ only' });
  }
  return rev;
}

/** Where the image timestamps come from; `default` means neither was found. */
export interface SourceDate {
  readonly epoch: number;
  readonly from: 'SOURCE_DATE_EPOCH' | 'git' | 'default';
}

/** 9999-12-31T23:59:59Z: beyond it RFC 3339 needs more than four year digits. */
const MAX_EPOCH = 253402300799;

/**
 * The time written into images (config `created`, history, file mtimes, the index's
 * `created` annotation), per reproducible-builds.org: SOURCE_DATE_EPOCH when set, else the
 * commit time of HEAD, else 0 (1970-01-01, as ko and Bazel's rules_oci use) so that a
 * build from a tarball without git is still reproducible. Uncommitted changes do not
 * move the commit time; set SOURCE_DATE_EPOCH if that matters.
 */
/**
 * SOURCE_DATE_EPOCH as reproducible-builds.org defines it: undefined when unset or empty,
 * else whole seconds since 1970 (surrounding blanks ignored), or a one-line error. The one
 * parser: images and release notes read the variable alike.
 */
export function parseSourceDateEpoch(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const text = raw.trim();
  if (!/^\d+$/.test(text) || Number(text) > MAX_EPOCH) {
    throw new PauseBuildError(`SOURCE_DATE_EPOCH "${raw}" is not a whole number of seconds since 1970`, {
      hint: 'set it to e.g. $(git log -1 --format=%ct), or unset it to use the commit time',
    });
  }
  return Number(text);
}

export async function resolveSourceDateEpoch(root: string, env: NodeJS.ProcessEnv = process.env): Promise<SourceDate> {
  const given = parseSourceDateEpoch(env.SOURCE_DATE_EPOCH);
  if (given !== undefined) return { epoch: given, from: 'SOURCE_DATE_EPOCH' };
  const committed = await git(root, ['log', '-1', '--format=%ct']);
  if (committed && /^\d+$/.test(committed)) return { epoch: Number(committed), from: 'git' };
  return { epoch: 0, from: 'default' };
}
