/**
 * The mirror file (`--file mirror.yaml`, YAML or JSON): what to copy where, and how to
 * reach each registry. Never secrets: a password comes from an environment variable the
 * file names.
 *
 *   mirrors:                           # one or more entries
 *     - source: registry.k8s.io/pause  # registry repository or reference, or oci:DIR[:TAG]
 *       tags: ">=3.9"                  # optional: range(s) and/or names, string or list
 *       platforms: [linux/amd64]       # optional: copy only these (the index is rewritten)
 *       destinations:                  # one or more repositories (HOST/REPO[:TAG])
 *         - registry.example/k8s/pause
 *       verifyKeys: [release.pub]      # optional: the index must be signed by one of these
 *   registries:                        # optional, per host[:port]
 *     registry.example:
 *       username: robot                # or usernameEnv: NAME
 *       passwordEnv: REGISTRY_PASSWORD
 *       insecure: false                # plain HTTP, no TLS
 *
 * Every error names the file and the entry (`mirror.yaml entry 2 (registry.k8s.io/pause)`).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { PauseBuildError } from './errors.ts';
import { type ParsedEntry, parseEntry } from './mirror.ts';
import { isValidHost } from './registry/reference.ts';

export interface RegistrySettings {
  readonly insecure?: boolean;
  readonly credential?: { readonly username: string; readonly password: string };
  /** The environment variable the password came from, for messages. */
  readonly passwordEnv?: string;
}

export interface MirrorFile {
  readonly file: string;
  /** Checked entries, each labelled `FILE entry N (SOURCE)` for its errors. */
  readonly entries: readonly ParsedEntry[];
  /** By `host[:port]`. */
  readonly registries: Readonly<Record<string, RegistrySettings>>;
}

const ENTRY_KEYS = ['source', 'tags', 'platforms', 'destinations', 'verifyKeys'];
const REGISTRY_KEYS = ['username', 'usernameEnv', 'passwordEnv', 'insecure'];
const SECRET_KEYS = /^(password|pass|passwd|token|secret|auth|identitytoken|registrytoken)$/i;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SCHEMA_HINT = 'see docs/mirroring.md for the file format';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')) return value.map(String);
  return undefined;
}

function unknownKeys(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (SECRET_KEYS.test(key)) {
      throw new PauseBuildError(`${where}: "${key}" does not belong in a file`, { hint: 'never write secrets into the mirror file: name the environment variable that holds it with passwordEnv' });
    }
    if (!allowed.includes(key)) throw new PauseBuildError(`${where}: unknown key "${key}"`, { hint: `allowed: ${allowed.join(', ')}` });
  }
}

const require = createRequire(import.meta.url);

/** yaml is loaded only for a YAML mirror file: most runs name no file at all. */
function parseYaml(text: string, options: Yaml.ParseOptions & Yaml.DocumentOptions & Yaml.SchemaOptions & Yaml.ToJSOptions): unknown {
  return (require('yaml') as typeof Yaml).parse(text, options);
}

function parseText(text: string, file: string): unknown {
  if (file.endsWith('.json')) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new PauseBuildError(`${file} is not valid JSON: ${(e as Error).message.split('\n')[0]}`, { hint: SCHEMA_HINT });
    }
  }
  try {
    return parseYaml(text, { prettyErrors: false });
  } catch (e) {
    throw new PauseBuildError(`${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, { hint: SCHEMA_HINT });
  }
}

function entryOf(raw: unknown, i: number, file: string, baseDir: string): ParsedEntry {
  const hasSource = isRecord(raw) && typeof raw.source === 'string' && raw.source.trim() !== '';
  const where = `${file} entry ${i + 1}${hasSource ? ` (${(raw as { source: string }).source.trim()})` : ''}`;
  if (!isRecord(raw)) throw new PauseBuildError(`${where} is not a mapping`, { hint: 'each entry has source, destinations, and optionally tags and platforms' });
  unknownKeys(raw, ENTRY_KEYS, where);
  if (!hasSource) throw new PauseBuildError(`${where}: "source" is missing or not a string`, { hint: 'e.g. source: registry.k8s.io/pause' });
  const destinations = stringList(raw.destinations);
  if (!destinations || destinations.length === 0) throw new PauseBuildError(`${where}: "destinations" must be a non-empty list of repositories`, { hint: 'e.g. destinations: [registry.example/k8s/pause]' });
  const tags = raw.tags === undefined ? undefined : stringList(raw.tags);
  if (raw.tags !== undefined && (!tags || tags.length === 0)) throw new PauseBuildError(`${where}: "tags" must be a string or a list of strings`, { hint: 'e.g. tags: ">=3.9" or tags: ["3.10", latest]' });
  const platforms = raw.platforms === undefined ? undefined : stringList(raw.platforms);
  if (raw.platforms !== undefined && (!platforms || platforms.length === 0)) throw new PauseBuildError(`${where}: "platforms" must be a string or a list of strings`, { hint: 'e.g. platforms: [linux/amd64, linux/arm64]' });
  const verifyKeys = raw.verifyKeys === undefined ? undefined : stringList(raw.verifyKeys);
  if (raw.verifyKeys !== undefined && (!verifyKeys || verifyKeys.length === 0)) throw new PauseBuildError(`${where}: "verifyKeys" must be a file or a list of files`, { hint: 'e.g. verifyKeys: [keys/release.pub]' });
  return parseEntry({
    ...(verifyKeys ? { verifyKeys } : {}),
    label: where,
    source: (raw.source as string).trim(),
    destinations,
    baseDir,
    ...(tags ? { tags } : {}),
    ...(platforms ? { platforms } : {}),
  });
}

function envValue(env: NodeJS.ProcessEnv, name: unknown, key: string, where: string): string {
  if (typeof name !== 'string' || !ENV_NAME_RE.test(name)) throw new PauseBuildError(`${where}: "${key}" must name an environment variable`, { hint: `e.g. ${key}: REGISTRY_PASSWORD` });
  const value = env[name];
  if (value === undefined || value === '') {
    throw new PauseBuildError(`${where}: environment variable ${name} (${key}) is not set or empty`, { hint: `set ${name}; in GitHub Actions pass it from a secret under env:` });
  }
  return value;
}

function registryOf(host: string, raw: unknown, file: string, env: NodeJS.ProcessEnv): RegistrySettings {
  const where = `${file} registries.${host}`;
  if (!isValidHost(host)) throw new PauseBuildError(`${file}: registries: "${host}" is not a host`, { hint: 'keys are host or host:port, e.g. registry.example or 127.0.0.1:5000' });
  if (!isRecord(raw)) throw new PauseBuildError(`${where} is not a mapping`, { hint: `allowed keys: ${REGISTRY_KEYS.join(', ')}` });
  unknownKeys(raw, REGISTRY_KEYS, where);
  if (raw.insecure !== undefined && typeof raw.insecure !== 'boolean') throw new PauseBuildError(`${where}: "insecure" must be true or false`, { hint: 'true speaks plain HTTP to this registry' });
  if (raw.username !== undefined && raw.usernameEnv !== undefined) throw new PauseBuildError(`${where}: give username or usernameEnv, not both`, { hint: SCHEMA_HINT });
  const hasUser = raw.username !== undefined || raw.usernameEnv !== undefined;
  if (hasUser !== (raw.passwordEnv !== undefined)) {
    throw new PauseBuildError(`${where}: ${hasUser ? 'a user name needs passwordEnv' : 'passwordEnv needs username or usernameEnv'}`, { hint: SCHEMA_HINT });
  }
  let credential: RegistrySettings['credential'];
  if (hasUser) {
    if (raw.username !== undefined && (typeof raw.username !== 'string' || raw.username === '')) throw new PauseBuildError(`${where}: "username" must be a non-empty string`, { hint: SCHEMA_HINT });
    const username = raw.username !== undefined ? (raw.username as string) : envValue(env, raw.usernameEnv, 'usernameEnv', where);
    credential = { username, password: envValue(env, raw.passwordEnv, 'passwordEnv', where) };
  }
  return {
    ...(raw.insecure === undefined ? {} : { insecure: raw.insecure }),
    ...(credential ? { credential, passwordEnv: raw.passwordEnv as string } : {}),
  };
}

/** Parses and checks a mirror file's text; `file` names it in errors and anchors relative oci: paths. */
export function parseMirrorFile(text: string, file: string, env: NodeJS.ProcessEnv = process.env): MirrorFile {
  const rel = path.relative(process.cwd(), file);
  const shown = rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
  const doc = parseText(text, shown);
  if (!isRecord(doc)) throw new PauseBuildError(`${shown} is not a mapping with "mirrors"`, { hint: SCHEMA_HINT });
  unknownKeys(doc, ['mirrors', 'registries'], shown);
  if (!Array.isArray(doc.mirrors) || doc.mirrors.length === 0) throw new PauseBuildError(`${shown}: "mirrors" must be a non-empty list`, { hint: SCHEMA_HINT });
  const baseDir = path.dirname(path.resolve(file));
  const entries = doc.mirrors.map((raw, i) => entryOf(raw, i, shown, baseDir));
  if (doc.registries !== undefined && !isRecord(doc.registries)) throw new PauseBuildError(`${shown}: "registries" must be a mapping of host to settings`, { hint: SCHEMA_HINT });
  const registries = Object.fromEntries(Object.entries(doc.registries ?? {}).map(([host, raw]) => [host, registryOf(host, raw, shown, env)]));
  return { file, entries, registries };
}

export async function loadMirrorFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<MirrorFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PauseBuildError(`cannot read mirror file ${file}${code ? ` (${code})` : ''}`, { hint: 'pass --file with a readable YAML or JSON file' });
  }
  return parseMirrorFile(text, file, env);
}
