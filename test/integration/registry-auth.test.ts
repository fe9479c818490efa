/**
 * Authentication and TLS against real registries: HTTPS with a test CA and htpasswd
 * users, and bearer tokens from a token server that distribution trusts.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError } from '../../src/errors.ts';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, makeCertificates, skopeo, startRegistry } from '../support/registry.ts';

const FAST_RETRY = { attempts: 3, baseDelayMs: 20, maxDelayMs: 80, maxRetryAfterMs: 5000 };
const USER = 'pusher';
const PASSWORD = 'Sup3r-Secret-Pass!';

function errorText(e: PauseBuildError): string {
  return `${e.message} ${e.hint ?? ''}`;
}

function assertNoSecret(text: string, ...secrets: string[]): void {
  for (const s of secrets) {
    assert.ok(!text.includes(s), `"${s}" leaked into: ${text}`);
    const b64 = Buffer.from(`${USER}:${s}`).toString('base64');
    assert.ok(!text.includes(b64), `base64 credentials leaked into: ${text}`);
  }
}

describe('HTTPS registry with htpasswd', () => {
  let reg: TestRegistry;
  let work: string;
  const built = makeIndex(['amd64', 'arm64'], 'tls');
  const client = (extra: RegistryClientOptions) => new RegistryClient({ retry: FAST_RETRY, requestTimeoutMs: 10_000, ...extra });

  before(async () => {
    reg = await startRegistry({ tls: true, htpasswd: { username: USER, password: PASSWORD } });
    work = await mkdtemp('/tmp/wt-registry-work-');
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pushes with the right credentials and the CA', async () => {
    const c = client({ ca: [reg.certificates!.caPem], caFile: reg.certificates!.caFile, credentials: { explicit: { username: USER, password: PASSWORD } } });
    try {
      const result = await publishIndex(c, { registry: reg.host, repository: 'pause' }, built, { tags: ['3.10'] });
      assert.equal(result.blobs.uploaded, 4);
    } finally {
      await c.close();
    }
    const raw = await skopeo(['inspect', '--raw', '--cert-dir', reg.certificates!.caDir, '--creds', `${USER}:${PASSWORD}`, `docker://${reg.host}/pause:3.10`]);
    assert.equal(raw.exitCode, 0, raw.stderr);
    assert.deepEqual(raw.stdout, Buffer.from(built.index.bytes));
  });

  it('reads credentials from the docker config', async () => {
    const dir = path.join(work, 'docker');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ auths: { [`https://${reg.host}`]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
    const c = client({ ca: [reg.certificates!.caPem], credentials: { dockerConfigDir: dir } });
    try {
      const result = await publishIndex(c, { registry: reg.host, repository: 'pause' }, built, { tags: ['3.10', 'from-config'] });
      assert.deepEqual(result.tags.map((t) => t.status), ['unchanged', 'created']);
    } finally {
      await c.close();
    }
  });

  it('refuses a wrong password in one line that holds no secret, also in debug lines', async () => {
    const wrong = 'Wrong-Pass-1234';
    const lines: string[] = [];
    const c = client({ ca: [reg.certificates!.caPem], credentials: { explicit: { username: USER, password: wrong } }, debug: (l) => lines.push(l) });
    try {
      await assert.rejects(publishIndex(c, { registry: reg.host, repository: 'pause' }, built, { tags: ['3.10'] }), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.equal(e.message, `push to ${reg.host}/pause: authentication failed (401)`);
        assert.equal(e.hint, `check --username/--password-stdin or docker login ${reg.host}`);
        assertNoSecret(errorText(e), wrong);
        return true;
      });
    } finally {
      await c.close();
    }
    assert.ok(lines.some((l) => l.includes('401')), 'the debug log shows the 401');
    assertNoSecret(lines.join('\n'), wrong);
  });

  it('is refused anonymously', async () => {
    const c = client({ ca: [reg.certificates!.caPem], credentials: { dockerConfigDir: path.join(work, 'no-config') } });
    try {
      await assert.rejects(c.headManifest({ registry: reg.host, repository: 'pause' }, '3.10'), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.equal(e.message, `read ${reg.host}/pause: authentication failed (401)`);
        assert.equal(e.hint, `no credentials for ${reg.host}: pass --username and --password-stdin, or docker login ${reg.host}`);
        return true;
      });
    } finally {
      await c.close();
    }
  });

  it('does not trust a certificate from an unknown CA', async () => {
    const c = client({ credentials: { explicit: { username: USER, password: PASSWORD } } });
    await assert.rejects(publishIndex(c, { registry: reg.host, repository: 'pause' }, built, { tags: ['3.10'] }), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.match(e.message, new RegExp(`^push to ${reg.host}/pause: TLS certificate of ${reg.host} is not trusted \\([^)]+\\)$`));
      assert.ok(!e.message.includes('attempts'), 'an untrusted certificate is not retried');
      assert.match(e.hint ?? '', /--ca-file/);
      assertNoSecret(errorText(e), PASSWORD);
      return true;
    });
    // Another CA in --ca-file does not help either, and the message says so.
    const otherDir = path.join(work, 'other-ca');
    await mkdir(otherDir, { recursive: true });
    const other = await makeCertificates(otherDir);
    const c2 = client({ ca: [other.caPem], caFile: other.caFile });
    try {
      await assert.rejects(c2.headManifest({ registry: reg.host, repository: 'pause' }, '3.10'), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.match(e.message, /TLS certificate of .* is not trusted/);
        assert.equal(e.hint, `${other.caFile} does not hold the CA that signed it`);
        return true;
      });
    } finally {
      await c2.close();
    }
  });

  it('says when an HTTPS registry is listed as insecure', async () => {
    const c = client({ insecure: [reg.host] });
    await assert.rejects(c.headManifest({ registry: reg.host, repository: 'pause' }, '3.10'), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.equal(e.message, `read ${reg.host}/pause: registry ${reg.host} serves HTTPS, not plain HTTP`);
      assert.equal(e.hint, `drop --insecure-registry ${reg.host}`);
      return true;
    });
  });
});

describe('registry with bearer tokens', () => {
  let reg: TestRegistry;
  let work: string;
  const IDENTITY = 'identity-token-for-tests';
  const client = (extra: RegistryClientOptions = {}) => new RegistryClient({ insecure: [`127.0.0.1:${reg.port}`], retry: FAST_RETRY, requestTimeoutMs: 10_000, ...extra });

  before(async () => {
    reg = await startRegistry({ token: { username: USER, password: PASSWORD, identityToken: IDENTITY } });
    work = await mkdtemp('/tmp/wt-registry-work-');
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pushes through the token flow, with one token for the whole push', async () => {
    const built = makeIndex(undefined, 'token');
    const lines: string[] = [];
    const c = client({ credentials: { explicit: { username: USER, password: PASSWORD } }, debug: (l) => lines.push(l) });
    const result = await publishIndex(c, { registry: reg.host, repository: 'team/pause' }, built, { tags: ['3.10'], perArchTags: true });
    assert.equal(result.blobs.uploaded, 10);
    const requests = reg.tokenServer!.requests;
    assert.equal(requests.length, 1, JSON.stringify(requests));
    assert.deepEqual(requests[0], { method: 'GET', service: reg.tokenServer!.service, scopes: ['repository:team/pause:pull,push'], user: USER, status: 200 });
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${reg.host}/team/pause:3.10`]);
    assert.equal(raw.exitCode, 0, raw.stderr);
    assert.deepEqual(raw.stdout, Buffer.from(built.index.bytes));
    assert.ok(lines.some((l) => l.includes('/token')), 'the debug log shows the token request');
    assertNoSecret(lines.join('\n'), PASSWORD);
    assert.ok(!lines.join('\n').includes('eyJ'), 'no token in the debug log');
  });

  it('asks for pull on the source repository when mounting', async () => {
    const built = makeIndex(['amd64'], 'token mount');
    const c = client({ credentials: { explicit: { username: USER, password: PASSWORD } } });
    await publishIndex(c, { registry: reg.host, repository: 'src' }, built, { tags: ['1'] });
    const result = await publishIndex(c, { registry: reg.host, repository: 'dst' }, built, { tags: ['1'], mountFrom: ['src'] });
    assert.equal(result.blobs.mounted, 2);
    assert.ok(reg.tokenServer!.requests.some((r) => r.scopes.includes('repository:dst:pull,push') && r.scopes.includes('repository:src:pull')));
  });

  it('trades an identity token from the docker config for an access token', async () => {
    const dir = path.join(work, 'docker');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { identitytoken: IDENTITY } } }));
    const before = reg.tokenServer!.requests.length;
    const result = await publishIndex(client({ credentials: { dockerConfigDir: dir } }), { registry: reg.host, repository: 'idtok' }, makeIndex(['arm'], 'idtok'), { tags: ['1'] });
    assert.equal(result.blobs.uploaded, 2);
    const used = reg.tokenServer!.requests.slice(before);
    assert.deepEqual(used.map((r) => [r.method, r.user, r.status]), [['POST', USER, 200]]);
  });

  it('reports a wrong password refused by the token service, without the password', async () => {
    const wrong = 'Not-The-Password-42';
    await assert.rejects(publishIndex(client({ credentials: { explicit: { username: USER, password: wrong } } }), { registry: reg.host, repository: 'x' }, makeIndex(['amd64']), { tags: ['1'] }), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.equal(e.message, `push to ${reg.host}/x: authentication failed (401 from token service ${new URL(reg.tokenServer!.realm).host})`);
      assertNoSecret(errorText(e), wrong);
      return true;
    });
  });

  it('reports an anonymous push as an authentication failure', async () => {
    await assert.rejects(
      publishIndex(client({ credentials: { dockerConfigDir: path.join(work, 'none') } }), { registry: reg.host, repository: 'x' }, makeIndex(['amd64']), { tags: ['1'] }),
      new RegExp(`^RegistryError: push to ${reg.host}/x: authentication failed \\(401\\)$`),
    );
  });
});
