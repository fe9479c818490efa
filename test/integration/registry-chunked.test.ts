/**
 * Uploads through a proxy that refuses request bodies over 1 MiB with 413 (nginx's
 * default client_max_body_size), in front of the real registry: publish and mirror of an
 * image with a 6 MiB layer go through in chunks (PATCH with Content-Range, then PUT), and
 * skopeo reads the result. With --chunk-size, chunks are used from the start, and a chunk
 * that fails midway is resumed from the Range the registry reports. A large blob going to
 * one destination streams through: its upload begins before its download ends.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BuiltIndex } from '../../src/oci/types.ts';
import { MEDIA_TYPES } from '../../src/oci/types.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { runCli } from '../support/cli.ts';
import http from 'node:http';
import { parseEntry } from '../../src/mirror.ts';
import { Engine } from '../../src/registry/plan.ts';
import { runMirror } from '../../src/tasks/mirror.ts';
import { type TestRegistry, freePort, skopeo, startProxy, startRegistry } from '../support/registry.ts';
import { walkRepository } from '../support/walk.ts';

const LIMIT = 1024 * 1024;
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blob = (mediaType: string, bytes: Uint8Array, extra = {}) => ({ descriptor: { mediaType, digest: sha256(bytes), size: bytes.byteLength, ...extra }, bytes });
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** One amd64 image with a 6 MiB layer, in an index. */
function bigImage(): BuiltIndex {
  const layer = blob(MEDIA_TYPES.layerGzip, randomBytes(6 * 1024 * 1024));
  const config = blob(MEDIA_TYPES.config, json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.descriptor.digest] } }));
  const platform = { os: 'linux', architecture: 'amd64' };
  const manifest = blob(MEDIA_TYPES.manifest, json({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: config.descriptor, layers: [layer.descriptor] }), { platform });
  const index = blob(MEDIA_TYPES.index, json({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [manifest.descriptor] }));
  return { index, images: [{ arch: 'amd64', manifest, config, layers: [layer] }] };
}

describe('uploads through a proxy that limits request bodies to 1 MiB', () => {
  let reg: TestRegistry;
  let work: string;
  const built = bigImage();
  const layer = built.images[0]!.layers[0]!;
  const tooLarge = ({ headers }: { headers: Record<string, string | string[] | undefined> }) => (Number(headers['content-length'] ?? 0) > LIMIT ? { status: 413, body: '<html>413 Request Entity Too Large</html>' } : undefined);

  before(async () => {
    reg = await startRegistry();
    work = await mkdtemp('/tmp/engine-chunked-');
  });
  after(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function readBack(repository: string, tag: string): Promise<void> {
    const oci = path.join(work, `read-${repository.replace(/\//g, '-')}`);
    const r = await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${reg.host}/${repository}:${tag}`, `oci:${oci}:${tag}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const stored = await readFile(path.join(oci, 'blobs', 'sha256', layer.descriptor.digest.slice(7)));
    assert.equal(sha256(stored), layer.descriptor.digest);
    assert.equal(stored.byteLength, layer.descriptor.size);
  }

  it('publish: a 413 on the whole layer turns into chunks, and skopeo reads the image', async () => {
    const proxy = await startProxy(reg.host, tooLarge);
    try {
      const result = await publishIndex(new RegistryClient({ insecure: [proxy.host], retry: { baseDelayMs: 5, maxDelayMs: 20 } }), { registry: proxy.host, repository: 'chunked/publish' }, built, { tags: ['1'] });
      assert.equal(result.digest, built.index.descriptor.digest);
      assert.equal(proxy.requests.filter((r) => r.status === 413).length, 1, 'one whole-body PUT refused');
      assert.ok(proxy.count('PATCH', /\/blobs\/uploads\//) >= 12, 'the layer went in chunks of at most 512 KiB');
    } finally {
      await proxy.stop();
    }
    await readBack('chunked/publish', '1');
  });

  it('mirror: the same through the CLI, and skopeo reads the copy', async () => {
    const proxy = await startProxy(reg.host, tooLarge);
    try {
      const r = await runCli(['mirror', `${reg.host}/chunked/publish:1`, `${proxy.host}/chunked/mirror`, '--insecure-registry', `${reg.host},${proxy.host}`, '-q']);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.ok(proxy.count('PATCH', /\/blobs\/uploads\//) >= 12);
    } finally {
      await proxy.stop();
    }
    assert.deepEqual((await walkRepository(reg.host, 'chunked/mirror')).map((w) => [w.tag, w.digest]), [['1', built.index.descriptor.digest]]);
    await readBack('chunked/mirror', '1');
  });

  it('one destination: a large blob streams through (its upload starts before its download ends), digest checked', async () => {
    // The source's answer for the big layer holds back its last bytes until the
    // destination has begun receiving that layer: a copy that downloaded it whole first
    // would wait forever (and time out).
    let uploadStarted!: () => void;
    const started = new Promise<void>((resolve) => (uploadStarted = resolve));
    let heldBack = false;
    const [th, tp] = reg.host.split(':');
    const server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      if (/^\/v2\/chunked\/streamed\/blobs\/uploads\//.test(url) && (req.method === 'PUT' || req.method === 'PATCH') && Number(req.headers['content-length'] ?? 0) > 1024 * 1024) uploadStarted();
      const up = http.request({ host: th, port: Number(tp), method: req.method, path: url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        if (req.method === 'GET' && url === `/v2/chunked/publish/blobs/${layer.descriptor.digest}`) {
          let sent = 0;
          r.on('data', (chunk: Buffer) => {
            sent += chunk.byteLength;
            res.write(chunk);
            if (sent > 2 * 1024 * 1024 && !heldBack) {
              heldBack = true;
              r.pause();
              void started.then(() => r.resume());
            }
          });
          r.on('end', () => res.end());
          return;
        }
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    // Two ports, so that source and destination are two registries to the client (no mount).
    const [port, destPort] = [await freePort(), await freePort()];
    const second = http.createServer((req, res) => server.emit('request', req, res));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => second.listen(destPort, '127.0.0.1', resolve));
    const host = `127.0.0.1:${port}`;
    const dest = `127.0.0.1:${destPort}`;
    const client = new RegistryClient({ insecure: [host, dest], requestTimeoutMs: 10_000 });
    try {
      const entries = [parseEntry({ source: `${host}/chunked/publish:1`, destinations: [`${dest}/chunked/streamed`] })];
      const report = await runMirror({ client, engine: new Engine(client), entries, jobs: 1, tmpdir: work }, { quiet: true }, false);
      assert.equal(report.copies[0]!.digest, built.index.descriptor.digest);
      assert.ok(heldBack, 'the download was held back until the upload began');
    } finally {
      await client.close();
      for (const srv of [server, second]) {
        srv.closeAllConnections();
        await new Promise<void>((resolve) => srv.close(() => resolve()));
      }
    }
    await readBack('chunked/streamed', '1');
  });

  it('--chunk-size: chunks from the start, and a failed chunk is resumed from the registry\'s Range', async () => {
    let patches = 0;
    let failedAt = -1;
    const proxy = await startProxy(reg.host, (req) => {
      if (req.method === 'PATCH' && ++patches === 5) {
        failedAt = patches;
        return 503;
      }
      return tooLarge(req);
    });
    try {
      const r = await runCli(['mirror', `${reg.host}/chunked/publish:1`, `${proxy.host}/chunked/resumed`, '--insecure-registry', `${reg.host},${proxy.host}`, '--chunk-size', '256k', '-q'], { env: { PAUSE_BUILD_RETRY_DELAY_MS: '5' } });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(failedAt, 5);
      assert.equal(proxy.requests.filter((q) => q.status === 413).length, 0, 'no whole body was tried');
      const statusChecks = proxy.requests.filter((q) => q.method === 'GET' && /\/blobs\/uploads\//.test(q.url));
      assert.equal(statusChecks.length, 1, 'one upload status GET to learn the Range');
      // 6 MiB in 256 KiB chunks, plus the one sent again; the small config in one.
      assert.equal(proxy.count('PATCH', /\/blobs\/uploads\//), 24 + 1 + 1);
    } finally {
      await proxy.stop();
    }
    await readBack('chunked/resumed', '1');
  });
});
