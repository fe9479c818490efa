/**
 * Pushes through a proxy that breaks things at random, with a seed: resets, 500/503,
 * 429 with Retry-After, bodies cut short, stalls past the client's timeout, requests
 * that reach the registry after the client gave up on them, on uploads
 * and reads alike (test/support/faults.ts). Whatever happens, a run ends either with
 * exactly the expected digest behind every tag or with one clear line, and never with
 * a tag that names missing content: after each run every tag is walked down to its
 * layers directly on the registry, past the proxy. Then the registry itself dies in
 * the middle of a push, comes back on the same storage, and the push is run again.
 * Mirrors go through the same faults on the mirror command's own path (runMirror).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PauseBuildError, formatError } from '../../src/errors.ts';
import type { BuiltIndex } from '../../src/oci/types.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { fetchImage } from '../../src/registry/pull.ts';
import { perArchTag, publishIndex } from '../../src/registry/publish.ts';
import type { Repository } from '../../src/registry/reference.ts';
import { Engine } from '../../src/registry/plan.ts';
import { parseEntry } from '../../src/mirror.ts';
import { runMirror } from '../../src/tasks/mirror.ts';
import { assertOneLineError } from '../support/assert.ts';
import { runCli } from '../support/cli.ts';
import { FAULT_KINDS, type FaultKind, type InjectedFault, startFaultProxy } from '../support/faults.ts';
import { FIVE_ARCHES, makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, skopeo, startRegistry } from '../support/registry.ts';
import { walkRepository } from '../support/walk.ts';

/** In-process runs: publishIndex with fixture images and short timings. */
const RUNS = 60;
const AT_ONCE = 10;
const REQUEST_TIMEOUT_MS = 200;
const STALL_MS = 500;
const RETRY = { attempts: 4, baseDelayMs: 5, maxDelayMs: 40, maxRetryAfterMs: 1500 };
/** Fault rates by seed: light ones mostly pass, heavy ones mostly fail. */
const RATES = [0.04, 0.12, 0.25, 0.45];

/** A one-line error of a push or read through the proxy: says what, where and what next; no raw Node error. */
const ONE_LINE = /^error: (push to|pull from) 127\.0\.0\.1:\d+\/[a-z0-9/]+: [^\n]+ — [^\n]+$/;
const RAW = /\b(terminated|fetch failed|TypeError|other side closed|socket hang up|undefined)\b/;

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** What each tag must hold when it exists. */
function expectedTags(built: BuiltIndex, tags: readonly string[], perArch: boolean): Map<string, string> {
  const want = new Map<string, string>();
  for (const tag of tags) {
    want.set(tag, built.index.descriptor.digest);
    if (perArch) for (const image of built.images) want.set(perArchTag(tag, image.arch), image.manifest.descriptor.digest);
  }
  return want;
}

/** Walks the repository on the registry itself; every tag present must be a wanted one holding its digest, complete. */
async function assertNoBrokenTag(reg: TestRegistry, repository: string, want: Map<string, string>): Promise<Set<string>> {
  const walked = await walkRepository(reg.host, repository);
  const fallback = /^sha256-[0-9a-f]{64}$/;
  // What the image tags reach: the subject of every referrers fallback index must be among it.
  const reached = new Set(walked.filter((t) => !fallback.test(t.tag)).flatMap((t) => [t.digest, ...t.digests]));
  for (const t of walked) {
    // A fallback index (attestations) is walked complete like any tag, and is about a manifest that is there.
    if (fallback.test(t.tag)) {
      assert.ok(reached.has(t.tag.replace('-', ':')), `${repository}: ${t.tag} names a subject no tag reaches`);
      continue;
    }
    assert.ok(want.has(t.tag), `${repository}: unexpected tag ${t.tag}`);
    assert.equal(t.digest, want.get(t.tag), `${repository}:${t.tag} holds other content`);
  }
  return new Set(walked.map((t) => t.tag));
}

function assertOneLine(e: unknown, where: string): string {
  assert.ok(e instanceof PauseBuildError, `${where}: not a PauseBuildError: ${e instanceof Error ? e.stack : String(e)}`);
  const line = formatError(e);
  assert.match(line, ONE_LINE, where);
  assert.doesNotMatch(line, RAW, where);
  return line;
}

async function inBatches<T>(items: readonly T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: size }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

function tally(faults: readonly InjectedFault[]): string {
  const by = new Map<string, number>();
  for (const f of faults) by.set(f.kind, (by.get(f.kind) ?? 0) + 1);
  return [...by].sort().map(([k, n]) => `${k} ${n}`).join(', ');
}

describe('pushes through a seeded fault proxy', () => {
  let reg: TestRegistry;
  let work: string;
  const faults: InjectedFault[] = [];
  const outcomes = { pushed: 0, failed: 0, pushedDespiteFaults: 0, readBack: 0, readFailed: 0 };

  before(async () => {
    reg = await startRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'wt-faults-'));
  });
  after(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it(`${RUNS} seeded in-process pushes: the expected digest or one line, never a broken tag`, async (t) => {
    const seeds = Array.from({ length: RUNS }, (_, i) => i + 1);
    const skopeoChecked: string[] = [];
    await inBatches(seeds, AT_ONCE, async (seed) => {
      const rate = RATES[seed % RATES.length]!;
      const arches = seed % 3 === 0 ? ['amd64', 'arm', 'arm64'] : ['amd64', 'arm64'];
      const built = makeIndex(arches, `salt ${seed % 4}`);
      const perArch = seed % 2 === 0;
      const tags = seed % 5 === 0 ? ['1.0', 'latest'] : ['1.0'];
      const repository = `faults/s${seed}`;
      const proxy = await startFaultProxy(reg.host, { seed, rate, stallMs: STALL_MS });
      const client = new RegistryClient({ insecure: [proxy.host], retry: RETRY, requestTimeoutMs: REQUEST_TIMEOUT_MS });
      const target: Repository = { registry: proxy.host, repository };
      const where = `seed ${seed} (rate ${rate})`;
      let pushed = false;
      try {
        const result = await publishIndex(client, target, built, { tags, perArchTags: perArch });
        assert.equal(result.digest, built.index.descriptor.digest, where);
        pushed = true;
      } catch (e) {
        assertOneLine(e, where);
      }
      const duringPush = proxy.injected.length;
      // Reading back through the same faults: the same bytes, or one line.
      if (pushed) {
        try {
          const index = await client.getManifest(target, '1.0');
          assert.equal(index.digest, built.index.descriptor.digest, where);
          for (const image of built.images) {
            const got = await fetchImage(client, target, image.manifest.descriptor.digest);
            assert.deepEqual(Buffer.from(got.layers[0]!.bytes), Buffer.from(image.layers[0]!.bytes), where);
            assert.deepEqual(Buffer.from(got.config.bytes), Buffer.from(image.config.bytes), where);
          }
          outcomes.readBack++;
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
          assertOneLine(e, `${where}, reading back`);
          outcomes.readFailed++;
        }
      }
      await proxy.stop();
      faults.push(...proxy.injected);

      const want = expectedTags(built, tags, perArch);
      const present = await assertNoBrokenTag(reg, repository, want);
      if (pushed) {
        outcomes.pushed++;
        if (duringPush > 0) outcomes.pushedDespiteFaults++;
        assert.deepEqual([...present].sort(), [...want.keys()].sort(), `${where}: a pushed run has every tag`);
        if (seed % 10 === 0) {
          const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${repository}:1.0`]);
          assert.equal(raw.exitCode, 0, raw.stderr);
          assert.equal(sha256(raw.stdout), built.index.descriptor.digest);
          skopeoChecked.push(repository);
        }
      } else {
        outcomes.failed++;
      }
    });
    t.diagnostic(`${RUNS} runs: ${outcomes.pushed} pushed (${outcomes.pushedDespiteFaults} of them despite faults), ${outcomes.failed} ended with one error line`);
    t.diagnostic(`read back through the faults: ${outcomes.readBack} whole, ${outcomes.readFailed} one error line`);
    t.diagnostic(`${faults.length} faults injected: ${tally(faults)}; skopeo read ${skopeoChecked.length} repositories`);
    assert.equal(outcomes.pushed + outcomes.failed, RUNS);
    assert.ok(outcomes.pushed > 0, 'no run pushed: the faults leave nothing to compare');
    assert.ok(outcomes.failed > 0, 'no run failed: the faults do not bite');
    assert.ok(outcomes.pushedDespiteFaults > 0, 'no run got through its faults: retries are not exercised');
    for (const kind of FAULT_KINDS) assert.ok(faults.some((f) => f.kind === kind), `fault ${kind} never injected`);
    for (const method of ['GET', 'HEAD', 'POST', 'PUT']) assert.ok(faults.some((f) => f.method === method), `no fault on ${method}`);
    assert.ok(skopeoChecked.length > 0, 'skopeo checked nothing');
  });

  it('publish --engine host through the faults: the expected digest or one line, never a broken tag', async (t) => {
    const common = ['--engine', 'host', '--arch', 'amd64,arm64', '--version', '3.10', '--revision', 'faults', '--cache-dir', path.join(work, 'cache'), '--json', '-q'];
    const dirs = (name: string) => ['--bin-dir', path.join(work, name, 'bin'), '--output', path.join(work, name, 'oci')];
    // The digest to expect, from a publish without faults.
    const clean = await runCli(['publish', ...common, ...dirs('clean'), '--registry', `${reg.host}/cli/clean`, '--insecure-registry', reg.host]);
    assert.equal(clean.exitCode, 0, clean.stderr);
    const expected = (JSON.parse(clean.stdout) as { digest: string }).digest;
    const seeds = [101, 102, 103, 104];
    const ends: string[] = [];
    const cliFaults: InjectedFault[] = [];
    await inBatches(seeds, 2, async (seed) => {
      const rate = [0.1, 0.3, 0.6][seed % 3]!;
      const proxy = await startFaultProxy(reg.host, { seed, rate, stallMs: 900 });
      const repository = `cli/s${seed}`;
      const r = await runCli(['publish', ...common, ...dirs(`s${seed}`), '--registry', `${proxy.host}/${repository}`, '--insecure-registry', proxy.host], {
        env: { PAUSE_BUILD_REQUEST_TIMEOUT_MS: '400', PAUSE_BUILD_RETRY_DELAY_MS: '5' },
        timeout: 60_000,
      });
      await proxy.stop();
      cliFaults.push(...proxy.injected);
      const present = await assertNoBrokenTag(reg, repository, new Map([['3.10', expected]]));
      if (r.exitCode === 0) {
        assert.equal((JSON.parse(r.stdout) as { digest: string }).digest, expected, `seed ${seed}`);
        // The version tag, and the fallback tags of the attestations (index and two images).
        assert.deepEqual([...present].filter((tag) => !tag.startsWith('sha256-')), ['3.10']);
        assert.equal([...present].filter((tag) => tag.startsWith('sha256-')).length, 3);
        const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${repository}:3.10`]);
        assert.equal(raw.exitCode, 0, raw.stderr);
        assert.equal(sha256(raw.stdout), expected);
        ends.push(`seed ${seed}: pushed after ${proxy.injected.length} faults`);
      } else {
        assertOneLineError(r, /^error: push to 127\.0\.0\.1:\d+\/cli\/s\d+: [^\n]+ — /);
        assert.doesNotMatch(r.stderr, RAW);
        ends.push(`seed ${seed}: ${r.stderr.split('\n').find((l) => l.startsWith('error:'))}`);
      }
    });
    for (const line of ends) t.diagnostic(line);
    t.diagnostic(`${cliFaults.length} faults injected: ${tally(cliFaults)}`);
    assert.ok(cliFaults.length > 0, 'no fault reached the CLI runs');
  });
});

/** A one-line error of a mirror through the proxy. */
const MIRROR_LINE = /^error: (mirror to|pull from|list tags of) 127\.0\.0\.1:\d+\/[a-z0-9/]+(:[\w.-]+)?: [^\n]+ — [^\n]+$/;
const MIRROR_RUNS = 50;

describe('mirrors through a seeded fault proxy', () => {
  let reg: TestRegistry;
  const faults: InjectedFault[] = [];
  const outcomes = { copied: 0, failed: 0, copiedDespiteFaults: 0 };

  before(async () => {
    reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
  });

  it(`${MIRROR_RUNS} seeded mirrors on the command's path (runMirror): the exact digest or one line, never a broken tag`, async (t) => {
    const seeds = Array.from({ length: MIRROR_RUNS }, (_, i) => 1000 + i);
    const sourceClient = new RegistryClient({ insecure: [reg.host] });
    const sources = new Map<number, BuiltIndex>();
    for (const salt of [0, 1, 2]) {
      const built = makeIndex(salt === 2 ? FIVE_ARCHES : ['amd64', 'arm64'], `mirror salt ${salt}`);
      sources.set(salt, built);
      await publishIndex(sourceClient, { registry: reg.host, repository: `msrc/${salt}` }, built, { tags: ['1.0'] });
    }
    await sourceClient.close();
    await inBatches(seeds, AT_ONCE, async (seed) => {
      const rate = RATES[seed % RATES.length]!;
      const salt = seed % 3;
      const built = sources.get(salt)!;
      const proxy = await startFaultProxy(reg.host, { seed, rate, stallMs: STALL_MS });
      const client = new RegistryClient({ insecure: [proxy.host], retry: RETRY, requestTimeoutMs: REQUEST_TIMEOUT_MS });
      const repository = `mdst/s${seed}`;
      const where = `mirror seed ${seed} (rate ${rate})`;
      const destinations = [`${proxy.host}/${repository}`, ...(seed % 4 === 0 ? [`${proxy.host}/${repository}-b`] : [])];
      const entries = [parseEntry({ source: `${proxy.host}/msrc/${salt}:1.0`, destinations })];
      let copied = false;
      try {
        const report = await runMirror({ client, engine: new Engine(client), entries, jobs: 2 }, { quiet: true }, false);
        assert.equal(report.copies[0]!.digest, built.index.descriptor.digest, where);
        for (const d of report.copies[0]!.destinations) assert.equal(d.pinned, `${d.repository}@${built.index.descriptor.digest}`, where);
        copied = true;
      } catch (e) {
        assert.ok(e instanceof PauseBuildError, `${where}: not a PauseBuildError: ${e instanceof Error ? e.stack : String(e)}`);
        const line = formatError(e);
        assert.match(line, MIRROR_LINE, where);
        assert.doesNotMatch(line, RAW, where);
      } finally {
        await client.close();
      }
      await proxy.stop();
      faults.push(...proxy.injected);
      const want = new Map([['1.0', built.index.descriptor.digest]]);
      for (const d of destinations) {
        const present = await assertNoBrokenTag(reg, d.slice(proxy.host.length + 1), want);
        if (copied) assert.deepEqual([...present], ['1.0'], `${where}: ${d} has its tag`);
      }
      if (copied) {
        outcomes.copied++;
        if (proxy.injected.length > 0) outcomes.copiedDespiteFaults++;
      } else {
        outcomes.failed++;
      }
    });
    t.diagnostic(`${MIRROR_RUNS} mirrors: ${outcomes.copied} copied (${outcomes.copiedDespiteFaults} despite faults), ${outcomes.failed} ended with one error line`);
    t.diagnostic(`${faults.length} faults injected: ${tally(faults)}`);
    assert.equal(outcomes.copied + outcomes.failed, MIRROR_RUNS);
    assert.ok(outcomes.copied > 0, 'no mirror got through');
    assert.ok(outcomes.failed > 0, 'no mirror failed: the faults do not bite');
    assert.ok(outcomes.copiedDespiteFaults > 0, 'no mirror got through its faults');
    for (const method of ['GET', 'HEAD', 'POST', 'PUT']) assert.ok(faults.some((f) => f.method === method), `no fault on ${method}`);
  });
});

describe('the registry dies in the middle of a push', () => {
  let reg: TestRegistry;
  const CRASH_AFTER = 4;

  before(async () => {
    reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
  });

  it('the push fails in one line; once the registry is back, pushing again completes without uploading the blobs that arrived', async (t) => {
    const built = makeIndex(FIVE_ARCHES, 'crash');
    const all = built.images.flatMap((i) => [i.config, ...i.layers]).map((b) => b.descriptor.digest);
    let uploads = 0;
    let crashed: Promise<void> | undefined;
    // The proxy only watches: when the registry has answered N blob uploads, it is killed.
    const proxy = await startFaultProxy(reg.host, {
      seed: 0,
      rate: 0,
      stallMs: 0,
      onForwarded: ({ method, url, status }) => {
        if (method === 'PUT' && url.includes('/blobs/uploads/') && status === 201 && ++uploads === CRASH_AFTER) crashed = reg.crash();
      },
    });
    const repository = 'crash/pause';
    const client = (host: string) => new RegistryClient({ insecure: [host], retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 40, maxRetryAfterMs: 1000 }, requestTimeoutMs: 2000 });
    try {
      await assert.rejects(publishIndex(client(proxy.host), { registry: proxy.host, repository }, built, { tags: ['3.10'] }), (e: unknown) => {
        assertOneLine(e, 'push while the registry dies');
        return true;
      });
    } finally {
      await proxy.stop();
    }
    assert.ok(crashed, 'the registry was not killed');
    await crashed;

    // What the registry acknowledged before it died, from its own log.
    const logged = await reg.requests();
    const uploadedDigest = (url: string) => decodeURIComponent(/[?&]digest=([^&]+)/.exec(url)?.[1] ?? '');
    const arrived = new Set(logged.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/') && r.status === 201).map((r) => uploadedDigest(r.url)));
    assert.ok(arrived.size >= CRASH_AFTER, `only ${arrived.size} blobs arrived`);
    assert.ok(arrived.size < all.length, 'every blob arrived before the crash: nothing left to test');
    const before = logged.length;

    await reg.restart();
    assert.deepEqual(await walkRepository(reg.host, repository), [], 'a tag was written before the index');
    const result = await publishIndex(client(reg.host), { registry: reg.host, repository }, built, { tags: ['3.10'] });
    assert.equal(result.digest, built.index.descriptor.digest);

    const during = (await reg.requests()).slice(before);
    const posts = during.filter((r) => r.method === 'POST' && r.url.includes('/blobs/uploads/'));
    const puts = during.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'));
    const reuploaded = puts.map((r) => uploadedDigest(r.url)).filter((d) => arrived.has(d));

    assert.deepEqual(reuploaded, [], 'blobs that had arrived were uploaded again');
    // An image whose manifest got in before the crash is there whole: its blobs are not even looked at.
    const present = built.images.filter((i) => result.images.find((r) => r.arch === i.arch)?.status === 'present');
    const ofPresent = new Set(present.flatMap((i) => [i.config, ...i.layers]).map((b) => b.descriptor.digest));
    t.diagnostic(`${arrived.size} of ${all.length} blobs arrived before the crash (${present.length} image manifest${present.length === 1 ? '' : 's'} too); the second push uploaded ${puts.length} (POST ${posts.length}), skipped ${result.blobs.skipped}`);
    for (const d of ofPresent) assert.ok(arrived.has(d), `image blob ${d} counted present without having arrived`);
    assert.equal(result.blobs.uploaded + result.blobs.skipped + ofPresent.size, all.length);
    assert.ok(result.blobs.skipped + ofPresent.size >= arrived.size);
    assert.equal(puts.length, result.blobs.uploaded);
    assert.equal(posts.length, result.blobs.uploaded);
    // A blob may have been stored as the registry died, before it could log it: then it is skipped too.
    const unlogged = all.filter((d) => !arrived.has(d) && !puts.some((r) => uploadedDigest(r.url) === d));
    assert.equal(unlogged.length, result.blobs.skipped + ofPresent.size - arrived.size);

    const walked = await walkRepository(reg.host, repository);
    assert.deepEqual(walked.map((w) => [w.tag, w.digest]), [['3.10', built.index.descriptor.digest]]);
    assert.equal(walked[0]!.digests.length, 1 + 5 * 3, 'index, five manifests, five configs, five layers');
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${repository}:3.10`]);
    assert.equal(raw.exitCode, 0, raw.stderr);
    assert.equal(sha256(raw.stdout), built.index.descriptor.digest);
  });
});
