import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PauseBuildError } from '../src/errors.ts';
import { annotationOf, formatSize, inActions, outputsOf, secretValues, summaryMarkdown } from '../src/github.ts';
import { type ActionsStep, actionsStep, parseOutputFile } from './support/actions.ts';
import { runCli } from './support/cli.ts';
import { GIT_ENV, tempRepo } from './support/git.ts';

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;

describe('formatting (pure)', () => {
  test('inActions only for GITHUB_ACTIONS=true', () => {
    assert.equal(inActions({ GITHUB_ACTIONS: 'true' }), true);
    assert.equal(inActions({ GITHUB_ACTIONS: 'false' }), false);
    assert.equal(inActions({ CI: 'true' }), false);
  });

  test('outputsOf names digest, tags (one per line), version, image — only those given', () => {
    assert.deepEqual(outputsOf({ title: 't', digest: D1, tags: ['r/pause:3.10', 'r/pause:latest'], version: '3.10', image: 'r/pause' }), {
      digest: D1,
      tags: 'r/pause:3.10\nr/pause:latest',
      version: '3.10',
      image: 'r/pause',
    });
    assert.deepEqual(outputsOf({ title: 't', version: '3.10' }), { version: '3.10' });
  });

  test('outputsOf: pinned references one per line, the layout reference', () => {
    assert.deepEqual(outputsOf({ title: 't', pinned: [`a/pause@${D1}`, `b/pause@${D2}`], layout: 'oci:/w/_output/oci:3.10' }), {
      pinned: `a/pause@${D1}\nb/pause@${D2}`,
      layout: 'oci:/w/_output/oci:3.10',
    });
  });

  test('summaryMarkdown lists the layout among the facts and each pinned reference', () => {
    const lines = summaryMarkdown({ title: 't', layout: 'oci:out:3.10', pinned: [`a/pause@${D1}`, `b/pause@${D2}`] }).split('\n');
    assert.ok(lines.includes('- **layout**: `oci:out:3.10`'), lines.join('\n'));
    const at = lines.indexOf('- **pinned**:');
    assert.ok(at > 0, lines.join('\n'));
    assert.deepEqual(lines.slice(at + 1, at + 3), [`  - \`a/pause@${D1}\``, `  - \`b/pause@${D2}\``]);
  });

  test('summaryMarkdown has a heading, facts and one table row per arch', () => {
    const md = summaryMarkdown({
      title: 'pause 3.10 published',
      version: '3.10',
      image: 'registry.example/pause',
      digest: D1,
      tags: ['registry.example/pause:3.10'],
      platforms: [
        { platform: 'linux/amd64', digest: D1, size: 1234 },
        { platform: 'linux/arm/v7', digest: D2, size: 3 * 1024 * 1024 },
      ],
    });
    const lines = md.split('\n');
    assert.equal(lines[0], '### pause 3.10 published');
    assert.ok(lines.includes('- **image**: `registry.example/pause`'));
    assert.ok(lines.includes('- **tags**: `registry.example/pause:3.10`'));
    const header = lines.indexOf('| platform | digest | size |');
    assert.ok(header > 0);
    assert.equal(lines[header + 1], '| --- | --- | ---: |');
    assert.equal(lines[header + 2], `| linux/amd64 | \`${D1}\` | 1.2 KiB |`);
    assert.equal(lines[header + 3], `| linux/arm/v7 | \`${D2}\` | 3.0 MiB |`);
  });

  test('summaryMarkdown escapes pipes so a cell cannot break the table', () => {
    const md = summaryMarkdown({ title: 't', platforms: [{ platform: 'a|b', digest: D1, size: 1 }] });
    assert.match(md, /\| a\\\|b \|/);
  });

  test('formatSize', () => {
    assert.deepEqual([0, 1023, 1024, 703_488, 1024 * 1024 * 1.5].map(formatSize), ['0 B', '1023 B', '1.0 KiB', '687.0 KiB', '1.5 MiB']);
  });

  test('annotationOf: one line with the hint, titled by the command', () => {
    assert.deepEqual(annotationOf(new PauseBuildError('dirty tree', { hint: 'commit first' }), 'release'), { title: 'pause-build release', message: 'dirty tree — commit first' });
    assert.deepEqual(annotationOf(new Error('boom\nat x'), undefined), { title: 'pause-build', message: 'boom' });
  });

  test('secretValues picks variables named like secrets, not short or unrelated ones', () => {
    const values = secretValues({
      REGISTRY_PASSWORD: 'hunter22',
      GITHUB_TOKEN: 'ghs_abc',
      MY_SECRET: 'shh-shh',
      registry_credentials: 'user:pw',
      SHORT_TOKEN: 'abcde',
      USE_TOKEN: 'true',
      EMPTY_PASSWORD: '',
      PATH: '/usr/bin',
      REGISTRY_USERNAME: 'bot',
    }).sort();
    assert.deepEqual(values, ['ghs_abc', 'hunter22', 'shh-shh', 'user:pw']);
  });
});

describe('in a simulated Actions step', () => {
  let step: ActionsStep;
  let work: string;
  before(async () => {
    step = await actionsStep({ REGISTRY_PASSWORD: 'hunter22-secret', PAUSE_BUILD_TOKEN: 'tok-9f8e7d' });
    work = await mkdtemp(path.join(tmpdir(), 'wt-release-ghbin-'));
  });
  after(async () => {
    await step.remove();
    await rm(work, { recursive: true, force: true });
  });

  test('bin masks secrets first, sets the version output and writes a summary row per arch', async () => {
    const r = await runCli(['bin', '--engine', 'host', '--arch', 'amd64', '--version', '3.10', '--bin-dir', path.join(work, 'bin')], { env: step.env });
    assert.equal(r.exitCode, 0, r.stderr);
    const stderrLines = r.stderr.split('\n');
    // The masks come before any other line (the machine's own secret-like variables may add
    // more), and the values never appear unmasked.
    const first = stderrLines.findIndex((l) => !l.startsWith('::add-mask::'));
    const masks = stderrLines.slice(0, first);
    assert.ok(masks.includes('::add-mask::hunter22-secret'), r.stderr);
    assert.ok(masks.includes('::add-mask::tok-9f8e7d'), r.stderr);
    for (const out of [r.stdout, stderrLines.slice(first).join('\n')]) {
      assert.doesNotMatch(out, /hunter22-secret|tok-9f8e7d|::add-mask::/);
    }
    // stdout stays results only: no workflow command leaks into it.
    assert.doesNotMatch(r.stdout, /^::/m);
    assert.match(r.stderr, /^::group::Compiling amd64/m);
    assert.match(r.stderr, /^::endgroup::$/m);

    assert.deepEqual(await step.outputs(), { version: '3.10' });
    const summary = await step.summary();
    const sha = /sha256:([0-9a-f]{64})/.exec(r.stdout)?.[1];
    assert.ok(sha, r.stdout);
    assert.match(summary, /^### pause 3\.10 binaries/m);
    assert.match(summary, /^\| platform \| digest \| size \|$/m);
    assert.match(summary, new RegExp(`^\\| linux/amd64 \\| \`sha256:${sha}\` \\| \\d+\\.\\d KiB \\|$`, 'm'));
  });

  test('image sets digest, version and layout, and writes a summary row per arch; --json stays clean', async () => {
    const out = path.join(work, 'oci');
    const r = await runCli(['image', '--engine', 'host', '--arch', 'amd64,arm64', '--version', '3.10', '--bin-dir', path.join(work, 'image', 'bin'), '--output', out, '--json'], { env: step.env });
    assert.equal(r.exitCode, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { index: { digest: string }; reference: string; images: { platform: string; manifest: string }[] };
    const outputs = await step.outputs();
    assert.equal(outputs.digest, result.index.digest);
    assert.match(outputs.digest!, /^sha256:[0-9a-f]{64}$/);
    assert.equal(outputs.version, '3.10');
    assert.equal(outputs.layout, `oci:${out}:3.10`);
    assert.equal(outputs.layout, result.reference);
    const summary = await step.summary();
    assert.match(summary, /^### pause 3\.10 image /m);
    assert.ok(summary.includes(`- **digest**: \`${result.index.digest}\``), summary);
    assert.ok(summary.includes(`- **layout**: \`oci:${out}:3.10\``), summary);
    assert.deepEqual(result.images.map((i) => i.platform), ['linux/amd64', 'linux/arm64/v8']);
    for (const image of result.images) {
      assert.match(summary, new RegExp(`^\\| ${image.platform} \\| \`${image.manifest}\` \\| \\d+\\.\\d KiB \\|$`, 'm'));
    }
  });

  test('an error becomes an ::error annotation titled by the command, and the terminal line stays', async () => {
    const r = await runCli(['bin', '--engine', 'host', '--arch', 'sparc', '--version', '3.10'], { env: step.env });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /^::error title=pause-build bin::unknown arch "sparc" — supported: amd64, /m);
    assert.match(r.stderr, /^error: unknown arch "sparc" — supported: /m);
    assert.equal(r.stdout, '');
  });

  test('release plan: outputs version and tags, a summary, and stdout that is still plain JSON', async () => {
    const repo = await tempRepo('ghrelease');
    try {
      await repo.commit('Initial import', { VERSION: '3.10\n' });
      await repo.git('tag', '-a', 'v3.10', '-m', 'Release 3.10');
      await repo.commit('Reap faster');
      const before = await step.outputs();
      const r = await runCli(['release', '--bump', 'minor', '--json'], { cwd: repo.dir, env: { ...step.env, ...GIT_ENV } });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { next: string }).next, '3.11');
      const outputs = await step.outputs();
      assert.deepEqual({ version: outputs.version, tags: outputs.tags }, { version: '3.11', tags: '3.11\nlatest' });
      assert.notDeepEqual(outputs, before);
      const summary = await step.summary();
      assert.match(summary, /^### pause 3\.11 release plan$/m);
      assert.match(summary, /^- \*\*git tag\*\*: `v3\.11`$/m);
      assert.match(summary, /^- \*\*tags\*\*: `3\.11`, `latest`$/m);
    } finally {
      await repo.remove();
    }
  });

  test('a release error in Actions is an annotation too', async () => {
    const r = await runCli(['release', '--bump', 'minor', '3.12'], { env: step.env });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /^::error title=pause-build release::--bump minor and the version 3\.12 were both given — give either --bump or a version, not both$/m);
  });

  test('outside Actions: no workflow commands, no files written', async () => {
    const quiet = await actionsStep({ GITHUB_ACTIONS: 'false', REGISTRY_PASSWORD: 'hunter22-secret' });
    try {
      const r = await runCli(['bin', '--engine', 'host', '--arch', 'sparc'], { env: quiet.env });
      assert.equal(r.exitCode, 1);
      assert.doesNotMatch(`${r.stdout}${r.stderr}`, /::(add-mask|error|group)/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.deepEqual(await quiet.outputs(), {});
      assert.equal(await quiet.summary(), '');
    } finally {
      await quiet.remove();
    }
  });
});

test('parseOutputFile reads both forms the runner accepts', () => {
  assert.deepEqual(parseOutputFile('a=1\nb<<EOF\nx\ny\nEOF\nc=d=e\n'), { a: '1', b: 'x\ny', c: 'd=e' });
  assert.throws(() => parseOutputFile('b<<EOF\nx\n'), /no closing EOF/);
});
