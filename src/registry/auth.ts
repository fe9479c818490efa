/**
 * How we prove who we are to a registry: the challenge (challenge.ts) decides. Basic sends
 * the credentials (credentials.ts); Bearer trades them (or nothing, anonymously) for a
 * token per scope, cached until it expires.
 */
import { PauseBuildError } from '../errors.ts';
import { type Challenge, parseWwwAuthenticate } from './challenge.ts';
import { type Credential } from './credentials.ts';
import type { HttpAnswer } from './http.ts';
import { registerSecret } from './redact.ts';

export * from './credentials.ts';
export * from './challenge.ts';

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
