/**
 * Platforms as people type them (`linux/arm64`, `linux/arm/v7`, `windows/amd64`) and as
 * image indexes list them, and which index entries a typed platform selects.
 *
 * Matching follows containerd's normalisation where it is unambiguous: `x86_64` is
 * `amd64`, `aarch64` is `arm64`, an arm64 entry without variant is `v8`. A platform typed
 * without a variant selects every variant of that architecture (`linux/arm` takes
 * arm/v6 and arm/v7 alike); with one, only that variant.
 */
import { PauseBuildError } from '../errors.ts';
import type { OciPlatform } from './types.ts';

const PART_RE = /^[a-z0-9][a-z0-9._-]*$/;
const ARCH_ALIASES: Readonly<Record<string, string>> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm' };
const ALIAS_VARIANTS: Readonly<Record<string, string>> = { armhf: 'v7', armel: 'v6' };
/** The variant an architecture has when an entry names none. */
const DEFAULT_VARIANTS: Readonly<Record<string, string>> = { arm64: 'v8' };

const FORM_HINT = 'write OS/ARCH[/VARIANT][:OS.VERSION], e.g. linux/amd64, linux/arm/v7 or windows/amd64:10.0.20348';
const OS_VERSION_RE = /^[0-9]+(?:\.[0-9]+)*$/;

/** `linux/arm/v7`, `windows/amd64:10.0.20348.2700` — the forms crane prints and accepts. */
export function formatPlatform(p: OciPlatform): string {
  const base = [p.os, p.architecture, p.variant].filter(Boolean).join('/');
  return p['os.version'] ? `${base}:${p['os.version']}` : base;
}

/** Parses `OS/ARCH[/VARIANT][:OS.VERSION]`, lower-cased, architecture aliases resolved. */
export function parsePlatform(text: string): OciPlatform {
  const input = text.trim();
  const colon = input.indexOf(':');
  if (colon >= 0) {
    const version = input.slice(colon + 1);
    const rest = parsePlatform(input.slice(0, colon));
    if (!OS_VERSION_RE.test(version)) throw new PauseBuildError(`invalid platform "${input}": "${version}" is not an os.version`, { hint: FORM_HINT });
    return { ...rest, 'os.version': version };
  }
  const parts = input.toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !PART_RE.test(p))) {
    throw new PauseBuildError(`invalid platform "${input}"`, { hint: FORM_HINT });
  }
  const [os = '', typed = '', given] = parts;
  const architecture = ARCH_ALIASES[typed] ?? typed;
  const variant = given ?? ALIAS_VARIANTS[typed];
  return { os, architecture, ...(variant === undefined ? {} : { variant }) };
}

/** Comma-separated and/or repeated values; duplicates dropped, order kept. */
export function parsePlatforms(values: string | readonly string[]): OciPlatform[] {
  const items = (typeof values === 'string' ? [values] : values).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  if (items.length === 0) throw new PauseBuildError('no platform given', { hint: FORM_HINT });
  const seen = new Set<string>();
  const out: OciPlatform[] = [];
  for (const item of items) {
    const p = parsePlatform(item);
    const key = formatPlatform(p);
    if (!seen.has(key)) out.push(p);
    seen.add(key);
  }
  return out;
}

function variantOf(p: OciPlatform): string | undefined {
  return p.variant ?? DEFAULT_VARIANTS[p.architecture];
}

/**
 * Whether the index entry `have` is one that the typed platform `want` selects. An
 * os.version typed selects the entries whose os.version it is or begins (10.0.20348 takes
 * 10.0.20348.2700); none typed, every version.
 */
export function platformMatches(want: OciPlatform, have: OciPlatform): boolean {
  const architecture = ARCH_ALIASES[have.architecture] ?? have.architecture;
  if (want.os !== have.os || want.architecture !== architecture) return false;
  const wanted = want['os.version'];
  if (wanted !== undefined) {
    const got = have['os.version'] ?? '';
    if (got !== wanted && !got.startsWith(`${wanted}.`)) return false;
  }
  return want.variant === undefined || want.variant === variantOf({ ...have, architecture });
}
