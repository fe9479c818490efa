/**
 * Uploads from a stream, against a registry stand-in on loopback that takes its time:
 * a slow link must not turn a large blob into a timeout, while an answer that never
 * starts still does.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError } from '../../src/errors.ts';
import { RegistryClient } from '../../src/registry/client.ts';

describe('streamed blob upload', () => {
  let server: http.Server;
  let host: string;
  const received: { length: string | undefined; digest: string; bytes: number }[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/v2/') return void res.end('{}');
      if (req.method === 'POST' && req.url?.startsWith('/v2/slow/blobs/uploads/')) {
        res.writeHead(202, { Location: '/v2/slow/blobs/uploads/one' });
        return void res.end();
      }
      if (req.method === 'POST' && req.url?.startsWith('/v2/stuck/blobs/uploads/')) return; // never answers
      if (req.method === 'PUT' && req.url?.startsWith('/v2/slow/blobs/uploads/one')) {
        // Reads the body at about 2 MiB/s: a 1 MiB blob takes ~0.5 s.
        const hash = createHash('sha256');
        let bytes = 0;
        req.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          bytes += chunk.byteLength;
          req.pause();
          setTimeout(() => req.resume(), Math.ceil(chunk.byteLength / 2048));
        });
        req.on('end', () => {
          const digest = `sha256:${hash.digest('hex')}`;
          received.push({ length: req.headers['content-length'], digest, bytes });
          res.writeHead(201, { 'Docker-Content-Digest': digest });
          res.end();
        });
        return;
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const client = () => new RegistryClient({ insecure: [host], requestTimeoutMs: 150, retry: { attempts: 1 } });

  it('waits for a slow upload longer than the time an answer may take to start', async () => {
    const bytes = randomBytes(1024 * 1024);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    let opened = 0;
    const started = Date.now();
    await client().uploadBlob({ registry: host, repository: 'slow' }, {
      descriptor: { mediaType: 'application/octet-stream', digest, size: bytes.byteLength },
      open: async () => {
        opened++;
        return new ReadableStream({
          start(c) {
            for (let i = 0; i < bytes.byteLength; i += 64 * 1024) c.enqueue(bytes.subarray(i, i + 64 * 1024));
            c.close();
          },
        });
      },
    });
    assert.ok(Date.now() - started > 300, 'the upload took longer than the 150 ms allowed for an answer');
    assert.equal(opened, 1);
    assert.deepEqual(received, [{ length: String(bytes.byteLength), digest, bytes: bytes.byteLength }]);
  });

  it('still gives up on an answer that never starts', async () => {
    const bytes = Buffer.from('small');
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await assert.rejects(client().uploadBlob({ registry: host, repository: 'stuck' }, { descriptor: { mediaType: 'x', digest, size: 5 }, bytes }), (e: unknown) => {
      assert.ok(e instanceof PauseBuildError);
      assert.equal(e.message, `push to ${host}/stuck: registry ${host} did not answer in time (timed out)`);
      return true;
    });
  });
});
