/**
 * Who we are to a registry: --username/--password-stdin, else the docker config
 * (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): a credential helper for the
 * host (`credHelpers`), the default store (`credsStore`), or the `auths` entry. Every secret
 * read is registered for redaction the moment it is read.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PauseBuildError } from '../errors.ts';
import { loadExeca } from '../exec.ts';
import { DEFAULT_REGISTRY } from './reference.ts';
import { redact, registerBasicCredentials, registerSecret } from './redact.ts';

/** What a registry accepts as proof; any field may be absent (anonymous). */
export interface Credential {
  readonly username?: string;
  readonly password?: string;
  /** OAuth2 refresh token (docker config `identitytoken`, or a helper's `<token>` user). */
  readonly identityToken?: string;
  /** A bearer token to send as is (docker config `registrytoken`). */
  readonly registryToken?: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export interface CredentialSource {
  /** Credentials for particular registries (`host[:port]`), before anything else. */
  readonly byRegistry?: Readonly<Record<string, Credential>>;
  /** --username with --password-stdin: used for every registry, before any config. */
  readonly explicit?: { readonly username: string; readonly password: string };
  /** Directory holding config.json; default $DOCKER_CONFIG, else ~/.docker. */
  readonly dockerConfigDir?: string;
  /** Environment for DOCKER_CONFIG, HOME and PATH (credential helpers). */
  readonly env?: NodeJS.ProcessEnv;
}

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

export function dockerConfigDir(source: CredentialSource = {}): string {
  const env = source.env ?? process.env;
  return source.dockerConfigDir ?? env.DOCKER_CONFIG ?? path.join(env.HOME ?? os.homedir(), '.docker');
}

/** Reads config.json; undefined when there is none. */
export async function readDockerConfig(dir: string): Promise<DockerConfigFile | undefined> {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PauseBuildError(`cannot read docker config ${file}: ${(e as Error).message}`, { hint: 'fix its permissions or pass --docker-config DIR' });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as DockerConfigFile;
  } catch {
    // The parser's message may quote the file, and the file holds secrets: say no more than this.
    throw new PauseBuildError(`docker config ${file} is not valid JSON`, { hint: 'fix or remove it, or pass --docker-config DIR' });
  }
}

/** `https://host:5000/v1/` → `host:5000`; Docker Hub aliases → docker.io. */
function normalizeKey(key: string): string {
  const host = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0] ?? '';
  return DOCKER_HUB_ALIASES.has(host) ? DEFAULT_REGISTRY : host;
}

function isHub(registry: string): boolean {
  return normalizeKey(registry) === DEFAULT_REGISTRY;
}

function fromEntry(entry: AuthEntry, file: string, key: string): Credential | undefined {
  const cred: { username?: string; password?: string; identityToken?: string; registryToken?: string } = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) {
      registerSecret(entry.auth);
      throw new PauseBuildError(`docker config ${file}: the "auth" of ${key} is not base64 of user:password`, { hint: 'log in again with docker login' });
    }
    cred.username = decoded.slice(0, colon);
    cred.password = decoded.slice(colon + 1);
  }
  if (entry.username) cred.username = entry.username;
  if (entry.password) cred.password = entry.password;
  if (entry.identitytoken) cred.identityToken = entry.identitytoken;
  if (entry.registrytoken) cred.registryToken = entry.registrytoken;
  registerCredential(cred);
  return Object.keys(cred).length > 0 ? cred : undefined;
}

export function registerCredential(cred: Credential): void {
  if (cred.username !== undefined && cred.password !== undefined) registerBasicCredentials(cred.username, cred.password);
  registerSecret(cred.password);
  registerSecret(cred.identityToken);
  registerSecret(cred.registryToken);
}

/**
 * Runs `docker-credential-<helper> get` with the server on stdin. Undefined when the
 * helper knows no credentials for it.
 */
export async function runCredentialHelper(helper: string, server: string, env: NodeJS.ProcessEnv = process.env): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`;
  const { execa } = await loadExeca();
  const r = await execa(program, ['get'], { input: server, env, extendEnv: false, reject: false, timeout: 30_000 });
  if (r.failed && (r as { code?: string }).code === 'ENOENT') {
    throw new PauseBuildError(`credential helper ${program} not found on PATH`, { hint: `install it, or remove "${helper}" from credsStore/credHelpers in the docker config` });
  }
  const out = String(r.stdout).trim();
  if (r.exitCode !== 0) {
    const said = `${out}\n${String(r.stderr)}`.trim();
    if (/credentials not found/i.test(said)) return undefined;
    const first = redact(said.split('\n')[0] ?? '').slice(0, 200);
    throw new PauseBuildError(`credential helper ${program} failed for ${server}${first ? `: ${first}` : ` (exit ${r.exitCode})`}`, {
      hint: 'check the helper, or log in again with docker login',
    });
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(out) as typeof parsed;
  } catch {
    throw new PauseBuildError(`credential helper ${program} printed something other than JSON for ${server}`, { hint: 'check the helper' });
  }
  const username = typeof parsed.Username === 'string' ? parsed.Username : '';
  const secret = typeof parsed.Secret === 'string' ? parsed.Secret : '';
  if (!secret) return undefined;
  const cred: Credential = username === '<token>' ? { identityToken: secret } : { username, password: secret };
  registerCredential(cred);
  return cred;
}

/** Credentials for one registry (`host[:port]`), or undefined for anonymous access. */
export async function credentialsFor(registry: string, source: CredentialSource = {}): Promise<Credential | undefined> {
  const wanted = normalizeKey(registry);
  const own = Object.entries(source.byRegistry ?? {}).find(([key]) => normalizeKey(key) === wanted)?.[1];
  if (own) {
    registerCredential(own);
    return own;
  }
  if (source.explicit) {
    registerCredential(source.explicit);
    return source.explicit;
  }
  const dir = dockerConfigDir(source);
  const config = await readDockerConfig(dir);
  if (!config) return undefined;
  const file = path.join(dir, 'config.json');
  const env = source.env ?? process.env;
  const server = isHub(registry) ? DOCKER_HUB_KEY : registry;

  const helper = Object.entries(config.credHelpers ?? {}).find(([key]) => normalizeKey(key) === wanted)?.[1];
  if (helper) return runCredentialHelper(helper, server, env);

  const entry = Object.entries(config.auths ?? {}).find(([key]) => normalizeKey(key) === wanted);
  if (config.credsStore) {
    const stored = await runCredentialHelper(config.credsStore, server, env);
    if (stored) return stored;
  }
  return entry ? fromEntry(entry[1], file, entry[0]) : undefined;
}

