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

const FORM_HINT = 'write OS/ARCH[/VARIANT], e.g. linux/amd64, linux/arm64 or linux/arm/v7';

/** `linux/arm/v7` — the form docker, crane and skopeo print and accept. */
export function formatPlatform(p: OciPlatform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Parses `OS/ARCH[/VARIANT]`, lower-cased, architecture aliases resolved. */
export function parsePlatform(text: string): OciPlatform {
  const input = text.trim();
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

/** Whether the index entry `have` is one that the typed platform `want` selects. */
export function platformMatches(want: OciPlatform, have: OciPlatform): boolean {
  const architecture = ARCH_ALIASES[have.architecture] ?? have.architecture;
  if (want.os !== have.os || want.architecture !== architecture) return false;
  return want.variant === undefined || want.variant === variantOf({ ...have, architecture });
}
