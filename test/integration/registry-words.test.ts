/**
 * What registries say, in clear words: a push the account may not make (insufficient_scope
 * from a real distribution registry behind a token server), a redirect from HTTPS down to
 * plain HTTP (refused unless the host is --insecure-registry), and presigned storage URLs
 * in --debug lines (their signatures masked).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError, formatError } from '../../src/errors.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, freePort, makeCertificates, startRegistry } from '../support/registry.ts';

const USER = 'reader';
const PASSWORD = 'Reader-Pass-77';
const SIGNATURE = 'c2lnbmF0dXJlLXRoYXQtbXVzdC1ub3QtbGVhaw';
const CREDENTIAL = 'AKIAEXAMPLEKEY/20261201/us-east-1/s3/aws4_request';

describe('clear words for what registries say', () => {
  let reg: TestRegistry;
  let work: string;

  before(async () => {
    reg = await startRegistry({ token: { username: USER, password: PASSWORD, pullOnly: true } });
    work = await mkdtemp(path.join(os.tmpdir(), 'engine-words-'));
  });
  after(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a push the account may not make says so, not "authentication failed"', async () => {
    const client = new RegistryClient({ insecure: [reg.host], credentials: { explicit: { username: USER, password: PASSWORD } } });
    try {
      await assert.rejects(publishIndex(client, { registry: reg.host, repository: 'team/pause' }, makeIndex(['amd64'], 'words'), { tags: ['1'] }), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.match(formatError(e), new RegExp(`^error: push to ${reg.host}/team/pause: the account may not push to this repository \\(401: UNAUTHORIZED: [^)]*\\) — ask for push rights on the repository, or push to one the account may write$`));
        return true;
      });
    } finally {
      await client.close();
    }
    const stored = await readdir(path.join(reg.dir, 'storage', 'docker', 'registry', 'v2', 'repositories', 'team', 'pause', '_manifests')).catch(() => []);
    assert.deepEqual(stored, [], 'no manifest or tag stored');
  });

  describe('an HTTPS registry that redirects blob downloads', () => {
    let server: https.Server;
    let host: string;
    let ca: string;
    let plainPort: number;

    before(async () => {
      const certs = await makeCertificates(work);
      ca = await readFile(certs.caFile, 'utf8');
      plainPort = await freePort();
      const port = await freePort();
      host = `127.0.0.1:${port}`;
      server = https.createServer({ cert: await readFile(certs.certFile), key: await readFile(certs.keyFile) }, (req, res) => {
        const url = req.url ?? '/';
        if (url === '/v2/') return res.writeHead(200).end('{}');
        if (url.includes('/blobs/sha256:00')) return res.writeHead(307, { Location: `http://127.0.0.1:${plainPort}/storage/blob` }).end();
        if (url.includes('/blobs/sha256:11')) return res.writeHead(307, { Location: `https://${host}/storage/blob?X-Amz-Credential=${encodeURIComponent(CREDENTIAL)}&X-Amz-Signature=${SIGNATURE}&X-Amz-Expires=300` }).end();
        if (url.startsWith('/storage/')) return res.writeHead(404).end();
        res.writeHead(404).end();
      });
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    });
    after(async () => {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    });

    it('a redirect from HTTPS to plain HTTP is refused, with the flag that allows it', async () => {
      const client = new RegistryClient({ ca: [ca], retry: { attempts: 1 } });
      try {
        await assert.rejects(client.readBlob({ registry: host, repository: 'pause' }, `sha256:${'0'.repeat(64)}`), (e: unknown) => {
          assert.ok(e instanceof PauseBuildError);
          assert.equal(formatError(e), `error: pull from ${host}/pause: ${host} redirected GET /v2/pause/blobs/sha256:000000000000 from HTTPS to plain HTTP (127.0.0.1:${plainPort}); refused — pass --insecure-registry 127.0.0.1:${plainPort} if that host is meant to be spoken to without TLS`);
          return true;
        });
      } finally {
        await client.close();
      }
    });

    it('--debug lines mask presigned URL signatures and credentials', async () => {
      const lines: string[] = [];
      const client = new RegistryClient({ ca: [ca], retry: { attempts: 1 }, debug: (l) => lines.push(l) });
      try {
        await assert.rejects(client.readBlob({ registry: host, repository: 'pause' }, `sha256:${'1'.repeat(64)}`), /404/);
      } finally {
        await client.close();
      }
      const text = lines.join('\n');
      assert.match(text, /X-Amz-Signature=\*\*\*/, text);
      assert.match(text, /X-Amz-Credential=\*\*\*/, text);
      assert.ok(!text.includes(SIGNATURE), text);
      assert.ok(!text.includes(encodeURIComponent(CREDENTIAL)), text);
      assert.match(text, /X-Amz-Expires=300/, 'other parameters stay readable');
    });
  });
});
