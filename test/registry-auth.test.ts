import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { RegistryAuth, type TokenFetch, credentialsFor, mergeScopes, parseWwwAuthenticate, readDockerConfig } from '../src/registry/auth.ts';
import { redact } from '../src/registry/redact.ts';

describe('parseWwwAuthenticate', () => {
  const table: [string, { scheme: string; params: Record<string, string> }[]][] = [
    ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull,push' } }],
    ],
    [
      'Bearer realm="https://a/token", service="s", scope="repository:x:pull repository:y:pull", error="insufficient_scope"',
      [{ scheme: 'bearer', params: { realm: 'https://a/token', service: 's', scope: 'repository:x:pull repository:y:pull', error: 'insufficient_scope' } }],
    ],
    ['BEARER Realm=https://unquoted/token,Service=svc', [{ scheme: 'bearer', params: { realm: 'https://unquoted/token', service: 'svc' } }]],
    ['Basic realm="quote \\" and, comma"', [{ scheme: 'basic', params: { realm: 'quote " and, comma' } }]],
    [
      'Negotiate, Basic realm="b", Bearer realm="t",service="s"',
      [{ scheme: 'negotiate', params: {} }, { scheme: 'basic', params: { realm: 'b' } }, { scheme: 'bearer', params: { realm: 't', service: 's' } }],
    ],
    ['Bearer realm = "spaced" , service = "x"', [{ scheme: 'bearer', params: { realm: 'spaced', service: 'x' } }]],
    ['', []],
  ];
  for (const [header, want] of table) {
    it(`parses ${JSON.stringify(header)}`, () => {
      assert.deepEqual(parseWwwAuthenticate(header), want);
    });
  }
});

describe('mergeScopes', () => {
  it('merges actions per resource and sorts', () => {
    assert.deepEqual(mergeScopes(['repository:b:pull', 'repository:a:push', 'repository:a:pull', 'repository:a:pull,push']), ['repository:a:pull,push', 'repository:b:pull']);
  });
});

describe('docker config credentials', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp('/tmp/wt-registry-auth-');
    const bin = path.join(dir, 'bin');
    await mkdir(bin);
    const helper = path.join(bin, 'docker-credential-test');
    await writeFile(helper, `#!/bin/sh
read -r server
case "$server" in
  helped.example.com) echo '{"ServerURL":"helped.example.com","Username":"helper-user","Secret":"helper-pass-1"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"identity-token-xyz"}' ;;
  broken.example.com) echo "boom: the password is helper-pass-1" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`);
    await chmod(helper, 0o755);
    env = { PATH: `${bin}:${process.env.PATH}`, HOME: path.join(dir, 'home') };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function config(name: string, content: unknown): Promise<string> {
    const d = path.join(dir, name);
    await mkdir(d, { recursive: true });
    await writeFile(path.join(d, 'config.json'), typeof content === 'string' ? content : JSON.stringify(content));
    return d;
  }

  it('reads base64 auth, username/password and identitytoken from auths', async () => {
    const d = await config('auths', {
      auths: {
        'https://r1.example.com/v1/': { auth: Buffer.from('alice:pa:ss').toString('base64') },
        'r2.example.com:5000': { username: 'bob', password: 'bobpass' },
        'https://index.docker.io/v1/': { identitytoken: 'refresh-me-please' },
      },
    });
    assert.deepEqual(await credentialsFor('r1.example.com', { dockerConfigDir: d, env }), { username: 'alice', password: 'pa:ss' });
    assert.deepEqual(await credentialsFor('r2.example.com:5000', { dockerConfigDir: d, env }), { username: 'bob', password: 'bobpass' });
    assert.deepEqual(await credentialsFor('docker.io', { dockerConfigDir: d, env }), { identityToken: 'refresh-me-please' });
    assert.equal(await credentialsFor('r2.example.com', { dockerConfigDir: d, env }), undefined, 'a port is part of the key');
    assert.equal(await credentialsFor('other.example.com', { dockerConfigDir: d, env }), undefined);
    // Everything read is now a known secret.
    assert.equal(redact('pa:ss bobpass refresh-me-please'), '*** *** ***');
  });

  it('takes per-registry credentials before --username and the docker config, and only for their host', async () => {
    const d = await config('by-registry', { auths: { 'r.example.com': { username: 'config-user', password: 'config-pass' }, 'other.example.com': { username: 'o', password: 'other-pass' } } });
    const source = {
      dockerConfigDir: d,
      env,
      byRegistry: { 'r.example.com': { username: 'own-user', password: 'own-pass-123' } },
      explicit: { username: 'flag-user', password: 'flag-pass' },
    };
    assert.deepEqual(await credentialsFor('r.example.com', source), { username: 'own-user', password: 'own-pass-123' });
    assert.deepEqual(await credentialsFor('other.example.com', source), { username: 'flag-user', password: 'flag-pass' });
    const { explicit: _unused, ...withoutFlags } = source;
    assert.deepEqual(await credentialsFor('other.example.com', withoutFlags), { username: 'o', password: 'other-pass' });
    assert.equal(redact('own-pass-123'), '***');
  });

  it('finds config.json through $DOCKER_CONFIG, else ~/.docker', async () => {
    const d = await config('via-env', { auths: { 'r.example.com': { username: 'env-user', password: 'env-pass' } } });
    assert.deepEqual(await credentialsFor('r.example.com', { env: { ...env, DOCKER_CONFIG: d } }), { username: 'env-user', password: 'env-pass' });
    await config(path.join('home', '.docker'), { auths: { 'r.example.com': { username: 'home-user', password: 'home-pass' } } });
    assert.deepEqual(await credentialsFor('r.example.com', { env }), { username: 'home-user', password: 'home-pass' });
  });

  it('uses credHelpers for their host and credsStore for the rest, falling back to auths', async () => {
    const d = await config('helpers', {
      credsStore: 'test',
      credHelpers: { 'helped.example.com': 'test' },
      auths: { 'fallback.example.com': { username: 'fb', password: 'fb-pass' } },
    });
    assert.deepEqual(await credentialsFor('helped.example.com', { dockerConfigDir: d, env }), { username: 'helper-user', password: 'helper-pass-1' });
    assert.deepEqual(await credentialsFor('docker.io', { dockerConfigDir: d, env }), { identityToken: 'identity-token-xyz' });
    assert.deepEqual(await credentialsFor('fallback.example.com', { dockerConfigDir: d, env }), { username: 'fb', password: 'fb-pass' });
    assert.equal(await credentialsFor('nobody.example.com', { dockerConfigDir: d, env }), undefined);
  });

  it('reports a failing helper in one line without its secrets', async () => {
    const d = await config('broken', { credHelpers: { 'broken.example.com': 'test', 'missing.example.com': 'nosuchhelper' } });
    // The helper already gave this secret out once (previous test), so it is known.
    await assert.rejects(credentialsFor('broken.example.com', { dockerConfigDir: d, env }), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.match(e.message, /^credential helper docker-credential-test failed for broken\.example\.com: boom: the password is \*\*\*$/);
      return true;
    });
    await assert.rejects(credentialsFor('missing.example.com', { dockerConfigDir: d, env }), /credential helper docker-credential-nosuchhelper not found on PATH/);
  });

  it('prefers --username/--password-stdin over any config', async () => {
    const d = await config('explicit', { auths: { 'r.example.com': { username: 'cfg', password: 'cfg-pass' } } });
    const explicit = { username: 'cli', password: 'cli-pass-1' };
    assert.deepEqual(await credentialsFor('r.example.com', { dockerConfigDir: d, explicit, env }), explicit);
  });

  it('is anonymous without a config, and refuses a broken one without quoting it', async () => {
    assert.equal(await readDockerConfig(path.join(dir, 'none')), undefined);
    assert.equal(await credentialsFor('r.example.com', { dockerConfigDir: path.join(dir, 'none'), env }), undefined);
    const d = await config('bad', '{"auths": {"r": {"auth": "c2VjcmV0LXRleHQ="}} oops');
    await assert.rejects(credentialsFor('r.example.com', { dockerConfigDir: d, env }), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.match(e.message, /config\.json is not valid JSON$/);
      assert.ok(!e.message.includes('c2VjcmV0'));
      return true;
    });
  });
});

describe('RegistryAuth', () => {
  const ctx = { registry: 'r.example.com', action: 'push to r.example.com/pause' };

  function tokenService(responses: ((url: URL, init: { method: string; headers: Record<string, string>; body?: string }) => Response)[]) {
    const calls: { url: URL; method: string; headers: Record<string, string>; body?: string }[] = [];
    const fetchToken: TokenFetch = async (url, init) => {
      calls.push({ url, ...init });
      const next = responses[Math.min(calls.length - 1, responses.length - 1)]!;
      return next(url, init);
    };
    return { calls, fetchToken };
  }
  const json = (body: unknown, status = 200) => () => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

  it('sends Basic credentials when the registry asks for Basic', async () => {
    const auth = new RegistryAuth('r', { username: 'u', password: 'p' }, async () => { throw new Error('no token fetch for basic'); });
    assert.equal(await auth.header(['repository:x:pull'], ctx), undefined, 'nothing before a challenge');
    auth.setChallenge('Basic realm="r"');
    assert.equal(await auth.header(['repository:x:pull'], ctx), `Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it('fetches a bearer token per scope set with service, scopes and Basic credentials, and caches it', async () => {
    const svc = tokenService([json({ token: 'tok-one-aaaa', expires_in: 300 }), json({ access_token: 'tok-two-bbbb' })]);
    const auth = new RegistryAuth('r', { username: 'u', password: 'p' }, svc.fetchToken);
    auth.setChallenge('Bearer realm="https://auth.example.com/token",service="reg"');
    assert.equal(await auth.header(['repository:x:pull,push'], ctx), 'Bearer tok-one-aaaa');
    // pull alone is covered by the pull,push token: no new fetch
    assert.equal(await auth.header(['repository:x:pull'], ctx), 'Bearer tok-one-aaaa');
    assert.equal(svc.calls.length, 1);
    const first = svc.calls[0]!;
    assert.equal(first.url.origin + first.url.pathname, 'https://auth.example.com/token');
    assert.equal(first.url.searchParams.get('service'), 'reg');
    assert.deepEqual(first.url.searchParams.getAll('scope'), ['repository:x:pull,push']);
    assert.equal(first.headers.Authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
    // another repository: another token (access_token accepted)
    assert.equal(await auth.header(['repository:y:pull'], ctx), 'Bearer tok-two-bbbb');
    assert.equal(svc.calls.length, 2);
    assert.equal(redact('x tok-two-bbbb'), 'x ***');
  });

  it('fetches anonymously without credentials, and once for concurrent callers', async () => {
    const svc = tokenService([json({ token: 'anon-token-1' })]);
    const auth = new RegistryAuth('r', undefined, svc.fetchToken);
    auth.setChallenge('Bearer realm="https://a/t"');
    const headers = await Promise.all([auth.header(['repository:x:pull'], ctx), auth.header(['repository:x:pull'], ctx)]);
    assert.deepEqual(headers, ['Bearer anon-token-1', 'Bearer anon-token-1']);
    assert.equal(svc.calls.length, 1);
    assert.equal(svc.calls[0]!.headers.Authorization, undefined);
  });

  it('uses the refresh-token grant for an identity token', async () => {
    const svc = tokenService([json({ access_token: 'from-refresh-1' })]);
    const auth = new RegistryAuth('r', { identityToken: 'idtok-secret' }, svc.fetchToken);
    auth.setChallenge('Bearer realm="https://a/t",service="s"');
    assert.equal(await auth.header(['repository:x:pull'], ctx), 'Bearer from-refresh-1');
    const call = svc.calls[0]!;
    assert.equal(call.method, 'POST');
    const form = new URLSearchParams(call.body);
    assert.equal(form.get('grant_type'), 'refresh_token');
    assert.equal(form.get('refresh_token'), 'idtok-secret');
    assert.equal(form.get('scope'), 'repository:x:pull');
    assert.equal(form.get('service'), 's');
  });

  it('widens scopes from an insufficient_scope challenge and refetches', async () => {
    const svc = tokenService([json({ token: 'narrow-token' }), json({ token: 'wide-token-1' })]);
    const auth = new RegistryAuth('r', { username: 'u', password: 'p' }, svc.fetchToken);
    auth.setChallenge('Bearer realm="https://a/t",service="s"');
    await auth.header(['repository:x:pull,push'], ctx);
    const wider = auth.retryAfter401('Bearer realm="https://a/t",service="s",scope="repository:y:pull",error="insufficient_scope"', ['repository:x:pull,push'], true);
    assert.deepEqual(wider, ['repository:x:pull,push', 'repository:y:pull']);
    assert.equal(await auth.header(wider!, ctx), 'Bearer wide-token-1');
    // Same challenge, same scopes, token already sent: retrying cannot help.
    assert.equal(auth.retryAfter401('Bearer realm="https://a/t",service="s"', ['repository:x:pull,push'], true), undefined);
  });

  it('turns a refused token request into a one-line 401 without the password', async () => {
    const svc = tokenService([json({ details: 'bad password hunter2-xyz' }, 401)]);
    const auth = new RegistryAuth('r.example.com', { username: 'u', password: 'hunter2-xyz' }, svc.fetchToken);
    auth.setChallenge('Bearer realm="https://auth.example.com/token"');
    await assert.rejects(auth.header(['repository:x:pull'], ctx), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.equal(e.message, 'push to r.example.com/pause: authentication failed (401 from token service auth.example.com)');
      assert.match(e.hint ?? '', /--username\/--password-stdin or docker login r\.example\.com/);
      assert.ok(!`${e.message}${e.hint}`.includes('hunter2'));
      return true;
    });
  });

  it('refuses a token answer without a token', async () => {
    const svc = tokenService([json({ nothing: true })]);
    const auth = new RegistryAuth('r', undefined, svc.fetchToken);
    auth.setChallenge('Bearer realm="https://a/t"');
    await assert.rejects(auth.header(['repository:x:pull'], ctx), /token service a returned no token/);
  });
});
