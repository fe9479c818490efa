import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import type { Descriptor } from '../src/oci/types.ts';
import { Spool } from '../src/registry/spool.ts';

function descriptorOf(bytes: Uint8Array): Descriptor {
  return { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.byteLength };
}

function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      c.close();
    },
  });
}

async function readAll(content: Uint8Array | ReadableStream<Uint8Array>): Promise<Buffer> {
  if (content instanceof Uint8Array) return Buffer.from(content);
  const chunks: Uint8Array[] = [];
  for await (const chunk of content as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('Spool', () => {
  let dir: string;
  const data = Buffer.from('a blob of some size '.repeat(100));
  const desc = descriptorOf(data);
  before(async () => {
    dir = await mkdtemp('/tmp/wt-mirror-spool-');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps a small blob in memory, fetched once however many ask', async () => {
    const spool = new Spool({ source: 'test', tmpdir: dir });
    let fetches = 0;
    const fetch = async () => {
      fetches++;
      return { stream: streamOf(data.subarray(0, 10), data.subarray(10)) };
    };
    const [a, b] = await Promise.all([spool.get(desc, fetch), spool.get(desc, fetch)]);
    assert.equal(fetches, 1);
    assert.deepEqual(await readAll(await a.open()), data);
    assert.deepEqual(await readAll(await b.open()), data);
    assert.deepEqual(await readdir(dir), [], 'no temp file for a small blob');
    await spool.dispose();
  });

  it('spools a larger blob to a temp file, readable again and again, removed on dispose', async () => {
    const spool = new Spool({ source: 'test', tmpdir: dir, memoryLimit: 100 });
    const blob = await spool.get(desc, async () => ({ stream: streamOf(data) }));
    const first = await blob.open();
    assert.ok(first instanceof ReadableStream, 'a stream over the file');
    assert.deepEqual(await readAll(first), data);
    assert.deepEqual(await readAll(await blob.open()), data);
    const [spoolDir] = await readdir(dir);
    assert.deepEqual(await readdir(path.join(dir, spoolDir!)), [desc.digest.replace(':', '-')]);
    await spool.dispose();
    assert.deepEqual(await readdir(dir), []);
  });

  for (const memoryLimit of [1 << 20, 100]) {
    it(`refuses content that does not match the digest (${memoryLimit === 100 ? 'temp file' : 'memory'}), leaving no file`, async () => {
      const spool = new Spool({ source: 'pull from r.example/pause', tmpdir: dir, memoryLimit });
      const corrupt = Buffer.from(data);
      corrupt[5] = 0x21;
      await assert.rejects(spool.get(desc, async () => ({ stream: streamOf(corrupt) })), (e: unknown) => {
        assert.ok(e instanceof PauseBuildError);
        assert.equal(e.message, `pull from r.example/pause: blob ${desc.digest.slice(0, 19)} is corrupt: its content hashes to ${descriptorOf(corrupt).digest.slice(0, 19)} (${data.length} bytes, expected ${data.length})`);
        assert.match(e.hint ?? '', /nothing was written/);
        return true;
      });
      const left = await readdir(dir);
      for (const d of left) assert.deepEqual(await readdir(path.join(dir, d)), [], 'the partial file is gone');
      await spool.dispose();
      assert.deepEqual(await readdir(dir), []);
    });
  }

  it('refuses content longer than its descriptor says', async () => {
    const spool = new Spool({ source: 'test', tmpdir: dir });
    await assert.rejects(spool.get(desc, async () => ({ stream: streamOf(data, Buffer.from('more')) })), /is corrupt: .*expected 2000\)/);
    await spool.dispose();
  });

  it('checks a local file in place and reads from it', async () => {
    const file = path.join(dir, 'local-blob');
    await writeFile(file, data);
    const spool = new Spool({ source: 'oci:x:1', tmpdir: dir });
    const blob = await spool.get(desc, async () => ({ file }));
    assert.deepEqual(await readAll(await blob.open()), data);
    await writeFile(file, 'changed');
    const other = new Spool({ source: 'oci:x:1', tmpdir: dir });
    await assert.rejects(other.get(desc, async () => ({ file })), /oci:x:1: blob sha256:.* is corrupt: its content hashes to sha256:.* \(7 bytes, expected 2000\)/);
    await Promise.all([spool.dispose(), other.dispose()]);
    await rm(file);
  });
});
