/**
 * `mirror` from a hostile registry: a proxy in front of the real registry answers some
 * reads as an attacker would (a manifest that never ends, one too large, a large blob that
 * never ends, a body dripped a byte at a time, a digest that does not match, invalid JSON,
 * a traversal-shaped digest). Each ends in one error line and a non-zero exit, in bounded
 * time and memory (peak RSS measured with /usr/bin/time), with nothing tagged at the real
 * destination. An index of 10,000 entries is copied whole over a bounded number of
 * connections.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { MEDIA_TYPES } from '../../src/oci/types.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { assertOneLineError } from '../support/assert.ts';
import { REPO_ROOT } from '../support/cli.ts';
import { makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, freePort, startRegistry } from '../support/registry.ts';
import { walkRepository } from '../support/walk.ts';

const sha256 = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const TSX = path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');
const CLI = path.join(REPO_ROOT, 'src', 'cli.ts');
/** Peak RSS a refused run may reach: Node with tsx is about 100 MB; unbounded reads reach gigabytes. */
const RSS_LIMIT_KB = 250 * 1024;

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/** Forwards to the registry except where a handler answers; counts connections open at once. */
async function hostileProxy(target: string, handlers: Handler[]): Promise<{ host: string; maxConnections: () => number; stop: () => Promise<void> }> {
  const [th = '127.0.0.1', tp = '80'] = target.split(':');
  let open = 0;
  let peak = 0;
  const server = http.createServer((req, res) => {
    for (const h of handlers) if (h(req, res)) return;
    const up = http.request({ host: th, port: Number(tp), method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (socket) => {
    peak = Math.max(peak, ++open);
    socket.on('close', () => open--);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    maxConnections: () => peak,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function manifestAt(url: string, name: string, req: http.IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && req.url === url.replace('NAME', name);
}

interface Timed { exitCode: number; stdout: string; stderr: string; rssKb: number; ms: number }

/** The CLI under /usr/bin/time: what it printed, and its peak RSS. */
async function mirrorTimed(args: string[], env: Record<string, string> = {}): Promise<Timed> {
  const started = Date.now();
  const r = await execa('/usr/bin/time', ['-f', 'RSS %M', process.execPath, '--import', TSX, CLI, 'mirror', ...args, '-q'], { reject: false, timeout: 120_000, env: { CI: 'true', ...env }, stdin: 'ignore' });
  const stderr = String(r.stderr);
  const rss = /^RSS (\d+)$/m.exec(stderr);
  assert.ok(rss, `no RSS line: ${stderr}`);
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: stderr.replace(/^RSS \d+\n?/m, ''), rssKb: Number(rss[1]), ms: Date.now() - started };
}

describe('mirror from a hostile registry', () => {
  let reg: TestRegistry;
  let proxy: Awaited<ReturnType<typeof hostileProxy>>;
  const built = makeIndex(['amd64'], 'hostile');
  const image = built.images[0]!;

  // A well-formed manifest naming an 8 MiB layer (above the spool's memory limit) that the proxy serves endlessly.
  const bigLayer = { mediaType: MEDIA_TYPES.layerGzip, digest: sha256('the big layer'), size: 8 * 1024 * 1024 };
  const bigManifest = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: image.config.descriptor, layers: [bigLayer] });
  const traversal = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [{ mediaType: MEDIA_TYPES.manifest, digest: 'sha256:../../../../etc/passwd', size: 10 }] });
  const dripped = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] }).padEnd(2000, ' ');

  before(async () => {
    reg = await startRegistry();
    await publishIndex(new RegistryClient({ insecure: [reg.host] }), { registry: reg.host, repository: 'src/pause' }, built, { tags: ['1'] });
    const M = '/v2/src/pause/manifests/NAME';
    const serve = (res: http.ServerResponse, body: string, type: string = MEDIA_TYPES.manifest, req?: http.IncomingMessage) => {
      res.writeHead(200, { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), 'Docker-Content-Digest': sha256(body) });
      res.end(req?.method === 'HEAD' ? undefined : body);
    };
    proxy = await hostileProxy(reg.host, [
      (req, res) => {
        if (!manifestAt(M, 'endless', req)) return false;
        res.writeHead(200, { 'Content-Type': MEDIA_TYPES.index });
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        const pump = () => {
          while (res.write(chunk)) { /* as fast as the client reads */ }
        };
        res.on('drain', pump);
        res.on('close', () => res.removeAllListeners('drain'));
        pump();
        return true;
      },
      (req, res) => {
        if (!manifestAt(M, 'oversized', req)) return false;
        res.writeHead(200, { 'Content-Type': MEDIA_TYPES.index, 'Content-Length': String(64 * 1024 * 1024) });
        res.write(Buffer.alloc(1024, 0x20));
        return true;
      },
      (req, res) => {
        if (!manifestAt(M, 'bigblob', req)) return false;
        serve(res, bigManifest, MEDIA_TYPES.manifest, req);
        return true;
      },
      (req, res) => {
        if (req.url !== `/v2/src/pause/blobs/${bigLayer.digest}`) return false;
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        const chunk = Buffer.alloc(1024 * 1024, 0x41);
        const pump = () => {
          while (res.write(chunk)) { /* endless */ }
        };
        res.on('drain', pump);
        pump();
        return true;
      },
      (req, res) => {
        if (!manifestAt(M, 'drip', req)) return false;
        if (req.method === 'HEAD') {
          serve(res, dripped, MEDIA_TYPES.index, req);
          return true;
        }
        res.writeHead(200, { 'Content-Type': MEDIA_TYPES.index, 'Content-Length': String(dripped.length) });
        let i = 0;
        const timer = setInterval(() => {
          if (i >= dripped.length) {
            clearInterval(timer);
            res.end();
            return;
          }
          res.write(dripped[i++]!);
        }, 200);
        res.on('close', () => clearInterval(timer));
        return true;
      },
      (req, res) => {
        if (!manifestAt(M, 'mismatch', req)) return false;
        // The tag names the real index; its child by digest arrives as other bytes.
        serve(res, Buffer.from(built.index.bytes).toString('utf8'), MEDIA_TYPES.index, req);
        return true;
      },
      (req, res) => {
        if (!manifestAt(M, image.manifest.descriptor.digest, req) || req.method !== 'GET') return false;
        serve(res, Buffer.from(image.manifest.bytes).toString('utf8').replace('"schemaVersion":2', '"schemaVersion": 2'), MEDIA_TYPES.manifest, req);
        return true;
      },
      (req, res) => {
        if (!manifestAt(M, 'badjson', req)) return false;
        serve(res, '{"schemaVersion": 2, "manifests": [', MEDIA_TYPES.index, req);
        return true;
      },
      (req, res) => {
        if (!manifestAt(M, 'traversal', req)) return false;
        serve(res, traversal, MEDIA_TYPES.index, req);
        return true;
      },
    ]);
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
  });

  const cases: [string, RegExp, Record<string, string>?][] = [
    ['endless', /^error: pull from 127\.0\.0\.1:\d+\/src\/pause: the answer to GET \/v2\/src\/pause\/manifests\/endless is \d+ bytes or more, above the 4 MiB limit for a manifest — /],
    ['oversized', /^error: pull from 127\.0\.0\.1:\d+\/src\/pause: the answer to GET \/v2\/src\/pause\/manifests\/oversized is 67108864 bytes or more, above the 4 MiB limit for a manifest — /],
    ['bigblob', /^error: mirror to 127\.0\.0\.1:\d+\/dst\/bigblob: .*blob sha256:[0-9a-f]{12} is larger than its declared 8388608 bytes|^error: pull from 127\.0\.0\.1:\d+\/src\/pause: the answer to GET \/v2\/src\/pause\/blobs\/sha256:[0-9a-f]{12} is \d+ bytes or more, above its declared 8388608 bytes — /],
    ['drip', /^error: pull from 127\.0\.0\.1:\d+\/src\/pause: the answer to GET \/v2\/src\/pause\/manifests\/drip broke off \(timed out\)/, { PAUSE_BUILD_REQUEST_TIMEOUT_MS: '1000', PAUSE_BUILD_RETRY_DELAY_MS: '5' }],
    ['mismatch', /^error: pull from 127\.0\.0\.1:\d+\/src\/pause: manifest sha256:[0-9a-f]{12} arrived as sha256:[0-9a-f]{12} — /],
    ['badjson', /^error: 127\.0\.0\.1:\d+\/src\/pause:badjson \(sha256:[0-9a-f]{12}\) is not JSON — /],
    ['traversal', /^error: 127\.0\.0\.1:\d+\/src\/pause:traversal entry 0 has an invalid descriptor — /],
  ];
  for (const [name, error, env] of cases) {
    it(`${name}: one line, non-zero exit, nothing tagged, bounded memory`, async (t) => {
      const r = await mirrorTimed([`${proxy.host}/src/pause:${name}`, `${reg.host}/dst/${name}`, '--insecure-registry', `${proxy.host},${reg.host}`], env);
      assertOneLineError(r, error);
      assert.ok(r.rssKb < RSS_LIMIT_KB, `peak RSS ${r.rssKb} KiB`);
      assert.deepEqual(await walkRepository(reg.host, `dst/${name}`), [], 'nothing tagged');
      t.diagnostic(`${name}: exit ${r.exitCode} after ${r.ms} ms, peak RSS ${Math.round(r.rssKb / 1024)} MiB: ${r.stderr.split('\n').find((l) => l.startsWith('error:'))}`);
    });
  }

  it('an index of 10,000 entries is copied whole over a bounded number of connections', async (t) => {
    const N = 10_000;
    // 500 distinct manifests, each listed 20 times (entries differ by annotation): the index
    // is as large as the case asks, and the registry's time goes to the copy, not to setup.
    const DISTINCT = 500;
    const client = new RegistryClient({ insecure: [reg.host] });
    const distinct = Array.from({ length: DISTINCT }, (_, i) => {
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: image.config.descriptor, layers: image.layers.map((l) => l.descriptor), annotations: { n: String(i) } }));
      return { descriptor: { mediaType: MEDIA_TYPES.manifest, digest: sha256(bytes), size: bytes.byteLength, platform: { os: 'linux', architecture: 'amd64' } }, bytes };
    });
    const entries = Array.from({ length: N }, (_, i) => ({ ...distinct[i % DISTINCT]!.descriptor, annotations: { entry: String(i) } }));
    const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: entries }));
    const big = { index: { descriptor: { mediaType: MEDIA_TYPES.index, digest: sha256(indexBytes), size: indexBytes.byteLength }, bytes: indexBytes }, images: distinct.map((m) => ({ arch: 'amd64', manifest: m, config: image.config, layers: image.layers })) };
    await publishIndex(client, { registry: reg.host, repository: 'src/many' }, big, { tags: ['1'], concurrency: 16 });
    await client.close();
    const before = proxy.maxConnections();
    const r = await mirrorTimed([`${proxy.host}/src/many:1`, `${reg.host}/dst/many`, '--insecure-registry', `${proxy.host},${reg.host}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    t.diagnostic(`10,000 entries: copied in ${r.ms} ms, peak RSS ${Math.round(r.rssKb / 1024)} MiB, at most ${proxy.maxConnections()} connections to the source at once`);
    assert.ok(proxy.maxConnections() <= Math.max(before, 16), `at most 16 connections to the source, saw ${proxy.maxConnections()}`);
    // What the registry itself stores: the index byte for byte, every distinct manifest, the config and the layer.
    const raw = await fetch(`http://${reg.host}/v2/dst/many/manifests/1`, { headers: { Accept: MEDIA_TYPES.index } });
    assert.equal(sha256(new Uint8Array(await raw.arrayBuffer())), big.index.descriptor.digest);
    const repoDir = path.join(reg.dir, 'storage', 'docker', 'registry', 'v2', 'repositories', 'dst', 'many');
    const revisions = new Set(await readdir(path.join(repoDir, '_manifests', 'revisions', 'sha256')));
    for (const m of [big.index, ...distinct]) assert.ok(revisions.has(m.descriptor.digest.slice(7)), `manifest ${m.descriptor.digest} stored`);
    const layers = new Set(await readdir(path.join(repoDir, '_layers', 'sha256')));
    for (const b of [image.config, ...image.layers]) assert.ok(layers.has(b.descriptor.digest.slice(7)), `blob ${b.descriptor.digest} linked`);
  });
});
