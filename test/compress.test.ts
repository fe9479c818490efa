/** Layer compression off the main thread and from the cache: always the bytes gzip() gives. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LayerCompressor } from '../src/oci/compress.ts';
import { gzip } from '../src/oci/tar.ts';

let dir: string;

/** Compressible but not trivial: a few hundred KiB, like a pause layer. */
function sample(seed: number, size = 300_000): Uint8Array {
  const words = Array.from({ length: 64 }, (_, i) => createHash('sha256').update(`${seed}:${i}`).digest('hex').slice(0, 3 + (i % 9)));
  const text = Array.from({ length: size / 6 }, (_, i) => words[(i * 7 + seed) % words.length]).join(' ');
  const bytes = new TextEncoder().encode(text).slice(0, size);
  bytes.set(randomBytes(2048), 1000); // some incompressible bytes too
  return bytes;
}

async function cacheFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await readdir(root).catch(() => [] as string[])) {
    for (const f of await readdir(path.join(root, sub))) out.push(path.join(root, sub, f));
  }
  return out;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pause-compress-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('LayerCompressor', () => {
  it('gives gzip() bytes from worker threads, for several tars at once', async () => {
    const tars = [1, 2, 3].map((s) => sample(s));
    const compressor = new LayerCompressor({ threads: 2 });
    try {
      const out = await Promise.all(tars.map((t) => compressor.compress(t)));
      tars.forEach((t, i) => assert.deepEqual(Buffer.from(out[i]!), Buffer.from(gzip(t)), `tar ${i} differs`));
    } finally {
      await compressor.close();
    }
  });

  it('a worker thread that dies fails its tars and is not given more: nothing waits forever', { timeout: 30_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pause-gzip-broken-'));
    const broken = path.join(dir, 'fflate.cjs');
    await writeFile(broken, "throw new Error('no deflate here');\n");
    const compressor = new LayerCompressor({ threads: 1, fflate: broken });
    try {
      await assert.rejects(compressor.compress(sample(7)), /no deflate here|gzip worker exited/);
      // Another tar goes to a new thread, which fails as well: a rejection, never a wait.
      await assert.rejects(compressor.compress(sample(8)), /no deflate here|gzip worker exited/);
    } finally {
      await compressor.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('on the main thread too (threads: 0)', async () => {
    const tar = sample(4);
    assert.deepEqual(Buffer.from(await new LayerCompressor({ threads: 0 }).compress(tar)), Buffer.from(gzip(tar)));
  });

  it('compresses a tar once per run', async () => {
    const compressor = new LayerCompressor({ threads: 0 });
    const tar = sample(5);
    const [a, b] = [compressor.compress(tar), compressor.compress(Uint8Array.from(tar))];
    assert.equal(a, b, 'the same tar was compressed twice');
  });

  it('keeps results on disk for the next run, and uses an entry only if it unpacks to the tar', async () => {
    const cacheDir = path.join(dir, 'cache');
    const tar = sample(6);
    const expected = Buffer.from(gzip(tar));
    await new LayerCompressor({ cacheDir, threads: 0 }).compress(tar);
    const [file] = await cacheFiles(cacheDir);
    assert.ok(file, 'nothing cached');
    assert.deepEqual(await readFile(file), expected);

    // A later run reads it back.
    assert.deepEqual(Buffer.from(await new LayerCompressor({ cacheDir, threads: 0 }).compress(tar)), expected);

    // A damaged or foreign entry is not trusted: compressed again, and the entry repaired.
    for (const bad of [Buffer.from('not gzip'), Buffer.from(gzip(sample(7)))]) {
      await writeFile(file, bad);
      assert.deepEqual(Buffer.from(await new LayerCompressor({ cacheDir, threads: 0 }).compress(tar)), expected);
      assert.deepEqual(await readFile(file), expected);
    }
  });
});
