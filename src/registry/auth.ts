/**
 * Who we are to a registry, and how we prove it.
 *
 * Credentials come from --username/--password-stdin, else from the docker config
 * (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): a credential helper for
 * the host (`credHelpers`), the default store (`credsStore`), or the `auths` entry.
 * Proof follows the registry's `WWW-Authenticate` challenge: Basic sends the
 * credentials, Bearer trades them (or nothing, anonymously) for a token per scope.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PauseBuildError } from '../errors.ts';
import { loadExeca } from '../exec.ts';
import type { HttpAnswer } from './http.ts';
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

// ---------------------------------------------------------------------------------------
// WWW-Authenticate

export interface Challenge {
  /** Lower-case: `basic`, `bearer`, … */
  readonly scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a WWW-Authenticate value into its challenges (RFC 7235): several may be
 * given, separated by commas; parameters are `name=token` or `name="quoted, \"string\""`.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && /[\s]/.test(header[i]!)) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z/:]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string => {
    let out = '';
    i++; // opening quote
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      out += header[i];
      i++;
    }
    i++; // closing quote
    return out;
  };
  while (i < n) {
    skipSpace();
    while (i < n && header[i] === ',') {
      i++;
      skipSpace();
    }
    if (i >= n) break;
    const scheme = readToken();
    if (scheme === '') {
      i++; // junk character: skip it
      continue;
    }
    const current = { scheme: scheme.toLowerCase(), params: {} as Record<string, string> };
    challenges.push(current);
    // Parameters until the next thing that is a scheme (a token not followed by '=').
    for (;;) {
      skipSpace();
      while (i < n && header[i] === ',') {
        i++;
        skipSpace();
      }
      if (i >= n) break;
      const save = i;
      const name = readToken();
      skipSpace();
      if (name === '' || header[i] !== '=') {
        // token68 (e.g. `Negotiate abc==`) or the next challenge's scheme
        if (name !== '' && Object.keys(current.params).length === 0 && (i >= n || header[i] === ',')) {
          // token68 directly after the scheme: ignore it
          continue;
        }
        i = save;
        break;
      }
      i++; // '='
      skipSpace();
      const value = header[i] === '"' ? readQuoted() : readToken();
      current.params[name.toLowerCase()] = value;
    }
  }
  return challenges;
}

// ---------------------------------------------------------------------------------------
// Tokens

/** `repository:NAME:pull,push` → atoms `repository:NAME:pull`, `repository:NAME:push`. */
function scopeAtoms(scopes: readonly string[]): Set<string> {
  const atoms = new Set<string>();
  for (const scope of scopes) {
    const last = scope.lastIndexOf(':');
    if (last === -1) {
      atoms.add(scope);
      continue;
    }
    const resource = scope.slice(0, last);
    for (const action of scope.slice(last + 1).split(',')) if (action) atoms.add(`${resource}:${action}`);
  }
  return atoms;
}

/** Merges scopes on the same resource: `repository:a:pull` + `repository:a:push` → `repository:a:pull,push`. */
export function mergeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const atom of scopeAtoms(scopes)) {
    const last = atom.lastIndexOf(':');
    const resource = last === -1 ? atom : atom.slice(0, last);
    const action = last === -1 ? '' : atom.slice(last + 1);
    const set = byResource.get(resource) ?? new Set<string>();
    if (action) set.add(action);
    byResource.set(resource, set);
  }
  return [...byResource].map(([resource, actions]) => (actions.size ? `${resource}:${[...actions].sort().join(',')}` : resource)).sort();
}

interface CachedToken {
  readonly atoms: Set<string>;
  readonly header: string;
  readonly expiresAt: number;
}

/** Sends a request for the token endpoint through the client's transport (TLS, retries). */
export type TokenFetch = (url: URL, init: { method: string; headers: Record<string, string>; body?: string }) => Promise<HttpAnswer>;

export interface AuthContext {
  /** `host[:port]` of the registry, for messages. */
  readonly registry: string;
  /** What we were doing, for messages: `push to host/repo`. */
  readonly action: string;
}

/**
 * One registry's authentication state: the challenge it answered with, and the tokens
 * fetched so far, cached per scope set until they expire.
 */
export class RegistryAuth {
  private challenge: Challenge | undefined;
  private readonly tokens: CachedToken[] = [];
  private readonly pending = new Map<string, Promise<CachedToken>>();

  constructor(
    readonly registry: string,
    private readonly credential: Credential | undefined,
    private readonly fetchToken: TokenFetch,
    private readonly now: () => number = Date.now,
  ) {}

  get anonymous(): boolean {
    return !this.credential;
  }

  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  /** Remembers the registry's challenge (from GET /v2/ or a 401). Unknown schemes are ignored. */
  setChallenge(header: string | null): boolean {
    if (!header) return false;
    const usable = parseWwwAuthenticate(header).find((c) => c.scheme === 'bearer' || c.scheme === 'basic');
    if (!usable) return false;
    const changed = usable.scheme !== this.challenge?.scheme || usable.params.realm !== this.challenge?.params.realm;
    this.challenge = usable;
    return changed;
  }

  /** The Authorization header for a request needing `scopes`, fetching a token when needed. */
  async header(scopes: readonly string[], ctx: AuthContext): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      const { username, password } = this.credential ?? {};
      if (username === undefined || password === undefined) return undefined;
      return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
    if (this.credential?.registryToken) return `Bearer ${this.credential.registryToken}`;
    const wanted = scopeAtoms(scopes);
    const now = this.now();
    const cached = this.tokens.find((t) => t.expiresAt > now && [...wanted].every((a) => t.atoms.has(a)));
    if (cached) return cached.header;
    const merged = mergeScopes(scopes);
    const key = merged.join(' ');
    let promise = this.pending.get(key);
    if (!promise) {
      promise = this.requestToken(c, merged, ctx).finally(() => this.pending.delete(key));
      this.pending.set(key, promise);
    }
    return (await promise).header;
  }

  /**
   * After a 401: takes the new challenge and drops cached tokens that failed, widening the
   * scopes with any the challenge names. Returns the scopes to retry with, or undefined
   * when retrying cannot help.
   */
  retryAfter401(header: string | null, scopes: readonly string[], sentAuthorization: boolean): string[] | undefined {
    const changed = this.setChallenge(header);
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return !sentAuthorization && this.credential ? [...scopes] : undefined;
    const extra = c.params.scope ? c.params.scope.split(' ').filter(Boolean) : [];
    const wider = mergeScopes([...scopes, ...extra]);
    const wanted = scopeAtoms(wider);
    // A token that covered these scopes was refused: forget it so a new one is fetched.
    for (let k = this.tokens.length - 1; k >= 0; k--) if ([...wanted].every((a) => this.tokens[k]!.atoms.has(a))) this.tokens.splice(k, 1);
    if (!sentAuthorization || changed || extra.some((s) => !scopeAtoms(scopes).has(s))) return wider;
    return undefined;
  }

  private async requestToken(c: Challenge, scopes: string[], ctx: AuthContext): Promise<CachedToken> {
    const realm = c.params.realm;
    if (!realm) throw new PauseBuildError(`${ctx.action}: registry ${ctx.registry} asked for a bearer token but named no realm`, { hint: 'check the registry\'s auth configuration' });
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new PauseBuildError(`${ctx.action}: registry ${ctx.registry} named an invalid token realm "${realm}"`, { hint: 'check the registry\'s auth configuration' });
    }
    const service = c.params.service;
    const cred = this.credential;
    let res: HttpAnswer;
    if (cred?.identityToken) {
      // OAuth2 refresh-token grant, as docker does with an identity token.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'pause-build' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await this.fetchToken(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (cred?.username !== undefined && cred.password !== undefined) {
        headers.Authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
      }
      res = await this.fetchToken(url, { method: 'GET', headers });
    }
    const text = await res.text();
    if (res.status === 401 || res.status === 403) {
      throw new PauseBuildError(`${ctx.action}: authentication failed (${res.status} from token service ${url.host})`, {
        hint: this.credential ? `check --username/--password-stdin or docker login ${ctx.registry}` : `log in: docker login ${ctx.registry}, or pass --username and --password-stdin`,
      });
    }
    if (!res.ok) {
      throw new PauseBuildError(`${ctx.action}: token service ${url.host} answered ${res.status} ${res.statusText}`.trim(), { hint: 'try again later, or check the registry\'s auth service' });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; refresh_token?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new PauseBuildError(`${ctx.action}: token service ${url.host} answered something other than JSON`, { hint: 'check the registry\'s token realm' });
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw new PauseBuildError(`${ctx.action}: token service ${url.host} returned no token`, { hint: 'check the registry\'s auth service' });
    registerSecret(token);
    if (typeof body.refresh_token === 'string') registerSecret(body.refresh_token);
    // Spec: default 60 s; renew a little early.
    const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    const entry: CachedToken = { atoms: scopeAtoms(scopes), header: `Bearer ${token}`, expiresAt: this.now() + Math.max(1, seconds - 10) * 1000 };
    this.tokens.push(entry);
    return entry;
  }
}
