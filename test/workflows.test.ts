import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { parse } from 'yaml';
import { parseMirrorFile } from '../src/mirror-file.ts';
import { DEFAULT_ARCHES } from '../src/platforms.ts';
import { REPO_ROOT } from './support/cli.ts';

const WORKFLOWS = path.join(REPO_ROOT, '.github', 'workflows');
const VALIDATOR = path.join(REPO_ROOT, 'node_modules', '@action-validator', 'cli', 'cli.mjs');

interface Step { name?: string; uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string>; id?: string }
interface Job {
  'runs-on': string;
  'timeout-minutes'?: number;
  needs?: string | string[];
  permissions?: Record<string, string>;
  container?: { image: string; options?: string };
  strategy?: { matrix: Record<string, unknown> };
  env?: Record<string, string>;
  steps: Step[];
}
interface Workflow { name: string; on: Record<string, unknown>; permissions?: Record<string, string>; jobs: Record<string, Job> }

async function load(file: string): Promise<{ text: string; wf: Workflow }> {
  const text = await readFile(path.join(WORKFLOWS, file), 'utf8');
  return { text, wf: parse(text) as Workflow };
}

async function validate(file: string) {
  // The validator is a devDependency: its absence is a failure, never a skip.
  assert.ok(existsSync(VALIDATOR), `@action-validator/cli is missing (${VALIDATOR}): run npm ci`);
  return execa(process.execPath, [VALIDATOR, file], { reject: false });
}

const runs = (job: Job) => job.steps.map((s) => s.run ?? '').join('\n');

describe('workflows', () => {
  for (const file of ['ci.yml', 'release.yml', 'mirror.yml']) {
    test(`${file} passes the workflow schema`, async () => {
      // The schema in @action-validator 0.6.0 predates the `attestations` permission (which
      // actions/attest-* need): it is checked on a copy without those lines, and those
      // lines are the only ones taken out.
      const text = await readFile(path.join(WORKFLOWS, file), 'utf8');
      const kept = text.split('\n').filter((l) => !/^\s+attestations: write$/.test(l));
      const dir = await mkdtemp(path.join(tmpdir(), 'wt-schema-'));
      try {
        const copy = path.join(dir, file);
        await writeFile(copy, kept.join('\n'));
        const r = await validate(copy);
        assert.equal(r.exitCode, 0, `${r.stdout}${r.stderr}`);
        const unknown = await execa(process.execPath, [VALIDATOR, path.join(WORKFLOWS, file)], { reject: false });
        if (unknown.exitCode !== 0) assert.match(`${unknown.stdout}${unknown.stderr}`, /Additional property 'attestations' is not allowed/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    test(`${file}: pinned actions, timeouts, read-only token, run scripts pass shellcheck`, async () => {
      const { text, wf } = await load(file);
      assert.doesNotMatch(text, /pull_request_target/);
      for (const [name, job] of Object.entries(wf.jobs)) {
        assert.ok(job['timeout-minutes'], `${file}: job ${name} has a timeout`);
        // Node.js 24, the current LTS; 20 and 22 are covered by .ci/run.
        const setupNode = job.steps.filter((s) => s.uses?.startsWith('actions/setup-node@'));
        assert.equal(setupNode.length, 1, `${file}: job ${name} sets up Node.js once`);
        assert.equal(String(setupNode[0]!.with?.['node-version']), '24', `${file}: job ${name}`);
        for (const step of job.steps) if (step.uses) assert.match(step.uses, /^[\w-]+\/[\w-]+@(v\d+|[0-9a-f]{40})$/, `${file}: ${step.uses}`);
        const perms = { ...wf.permissions, ...job.permissions };
        // Read-only, except that a job that attests (and only such a job) may get an OIDC token and write attestations.
        const attests = job.steps.some((s) => s.uses?.startsWith('actions/attest-'));
        const allowed = attests ? ['contents: read', 'id-token: write', 'attestations: write'] : ['contents: read'];
        for (const [scope, level] of Object.entries(perms)) assert.ok(allowed.includes(`${scope}: ${level}`), `${file}: job ${name}: ${scope}: ${level}`);
        for (const step of job.steps) {
          if (!step.run) continue;
          // Secrets reach scripts through env only, never pasted into the script text.
          assert.doesNotMatch(step.run, /\$\{\{\s*secrets\./, `${file}: ${step.name ?? step.run}`);
          const script = step.run.replace(/\$\{\{[^}]*\}\}/g, 'EXPR');
          const sc = await execa('shellcheck', ['-s', 'bash', '-'], { input: script, reject: false });
          assert.equal(sc.exitCode, 0, `${file}: ${step.name ?? step.run}\n${sc.stdout}`);
        }
      }
    });
  }

  test('the validator rejects a broken workflow (it really validates)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'wt-release-wf-'));
    try {
      const bad = path.join(dir, 'bad.yml');
      await writeFile(bad, 'on: pushh\njobs:\n  a:\n    runs-onn: ubuntu-24.04\n    steps: []\n');
      const r = await validate(bad);
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /runs-onn/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('ci.yml: pull requests and pushes run bash .ci/run in debian:12', async () => {
    const { wf } = await load('ci.yml');
    assert.ok('pull_request' in wf.on && 'push' in wf.on);
    const jobs = Object.values(wf.jobs);
    assert.equal(jobs.length, 1);
    const job = jobs[0]!;
    assert.equal(job.container?.image, 'debian:12');
    assert.match(job.container?.options ?? '', /--privileged/, 'podman and dockerd run inside');
    assert.ok(job.steps.some((s) => s.run?.trim() === 'bash .ci/run'));
    const checkout = job.steps.findIndex((s) => s.uses?.startsWith('actions/checkout@'));
    const git = job.steps.findIndex((s) => /apt-get install .*\bgit\b/.test(s.run ?? ''));
    assert.ok(git >= 0 && git < checkout, 'git is installed before the checkout, so that tags come along');
    assert.equal(job.steps[checkout]!.with?.['fetch-depth'], 0);
  });

  test('release.yml: on v* tags, one publish job per default arch, then one index job', async () => {
    const { wf } = await load('release.yml');
    assert.deepEqual(Object.keys(wf.on), ['push']);
    assert.deepEqual((wf.on.push as { tags: string[] }).tags, ['v*']);
    assert.deepEqual(wf.permissions, {});

    const publish = wf.jobs.publish!;
    assert.deepEqual(publish.strategy?.matrix.arch, [...DEFAULT_ARCHES]);
    assert.deepEqual(DEFAULT_ARCHES, ['amd64', 'arm', 'arm64', 'ppc64le', 's390x']);
    assert.match(runs(publish), /npx pause-build publish --arch "\$\{\{ matrix\.arch \}\}" --by-digest/);
    const upload = publish.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    assert.equal(upload?.with?.name, 'digest-${{ matrix.arch }}');

    const index = wf.jobs.index!;
    assert.equal(index.needs, 'publish');
    const download = index.steps.find((s) => s.uses?.startsWith('actions/download-artifact@'));
    assert.equal(download?.with?.pattern, 'digest-*');
    assert.match(runs(index), /npx pause-build index --from "\$\{digests\[@\]\}" --tag "\$\{GITHUB_REF_NAME#v\}"/);

    for (const job of [publish, index]) {
      assert.equal(job.env?.REGISTRY, '${{ vars.REGISTRY }}');
      assert.equal(job.env?.REGISTRY_USERNAME, '${{ secrets.REGISTRY_USERNAME }}');
      assert.equal(job.env?.REGISTRY_PASSWORD, '${{ secrets.REGISTRY_PASSWORD }}');
      assert.match(runs(job), /printf '%s' "\$REGISTRY_PASSWORD" \|\s+npx pause-build \w+ /, 'the password goes to stdin');
      assert.match(runs(job), /--registry "\$REGISTRY\/pause" --username "\$REGISTRY_USERNAME" --password-stdin/);
      assert.doesNotMatch(runs(job), /--password[ =]/);
      for (const s of job.steps.filter((x) => x.uses?.startsWith('actions/checkout@'))) assert.equal(s.with?.['persist-credentials'], false);
    }
  });

  test('release.yml: keyless attestations of each image (SBOM) and the index (provenance), pushed to the registry, with only the permissions they need', async () => {
    const { wf } = await load('release.yml');
    const attestPermissions = { contents: 'read', 'id-token': 'write', attestations: 'write' };
    const cases: [string, string, string, string][] = [
      ['publish', 'actions/attest-sbom@', '${{ steps.publish.outputs.digest }}', 'publish'],
      ['index', 'actions/attest-build-provenance@', '${{ steps.index.outputs.digest }}', 'index'],
    ];
    for (const [name, action, digest, producer] of cases) {
      const job = wf.jobs[name]!;
      assert.deepEqual(job.permissions, attestPermissions, `${name}: permissions`);
      const at = job.steps.findIndex((s) => s.uses?.startsWith(action));
      assert.ok(at >= 0, `${name} uses ${action}`);
      const step = job.steps[at]!;
      assert.equal(step.with?.['push-to-registry'], true);
      assert.equal(step.with?.['subject-digest'], digest);
      assert.equal(step.with?.['subject-name'], '${{ vars.REGISTRY }}/pause');
      // After the step whose digest it attests, and after the registry login.
      assert.ok(job.steps.findIndex((s) => s.id === producer) < at);
      const login = job.steps.findIndex((s) => s.run === 'bash build/registry-login.sh');
      assert.ok(login >= 0 && login < at, `${name}: login before attesting`);
    }
    assert.equal(wf.jobs.publish!.steps.find((s) => s.uses?.startsWith('actions/attest-sbom@'))!.with?.['sbom-path'], '${{ steps.sbom.outputs.path }}');
    // Nothing else may ask for an OIDC token or write attestations.
    assert.deepEqual(wf.permissions, {});
  });

  test('build/registry-login.sh writes docker config auth without printing the password', async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'wt-login-'));
    try {
      const r = await execa('bash', [path.join(REPO_ROOT, 'build', 'registry-login.sh')], { env: { HOME: home, REGISTRY: 'registry.example:5000/k8s', REGISTRY_USERNAME: 'bot', REGISTRY_PASSWORD: 'S3cret-pass' }, reject: false });
      assert.equal(r.exitCode, 0, String(r.stderr));
      assert.ok(!String(r.stdout).includes('S3cret') && !String(r.stderr).includes('S3cret'));
      const config = JSON.parse(await readFile(path.join(home, '.docker', 'config.json'), 'utf8'));
      assert.equal(Buffer.from(config.auths['registry.example:5000'].auth, 'base64').toString(), 'bot:S3cret-pass');
      const missing = await execa('bash', [path.join(REPO_ROOT, 'build', 'registry-login.sh')], { env: { HOME: home, REGISTRY: 'r.example' }, reject: false });
      assert.notEqual(missing.exitCode, 0);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  test('mirror.yml: scheduled and by hand, runs pause-build mirror --file mirror.yaml', async () => {
    const { wf } = await load('mirror.yml');
    assert.deepEqual(Object.keys(wf.on).sort(), ['schedule', 'workflow_dispatch']);
    const [cron] = wf.on.schedule as { cron: string }[];
    assert.match(cron!.cron, /^(\S+ ){4}\S+$/);
    const job = Object.values(wf.jobs)[0]!;
    assert.match(runs(job), /^npx pause-build mirror --file mirror\.yaml$/m);
    // mirror.yaml is valid, and needs no variable the job does not set.
    const env = Object.fromEntries(Object.keys(job.env ?? {}).map((k) => [k, 'set-by-the-workflow']));
    assert.deepEqual(Object.keys(env).sort(), ['REGISTRY_PASSWORD', 'REGISTRY_USERNAME']);
    const text = await readFile(path.join(REPO_ROOT, 'mirror.yaml'), 'utf8');
    const file = parseMirrorFile(text, path.join(REPO_ROOT, 'mirror.yaml'), env);
    assert.ok(file.entries.length > 0);
    for (const entry of file.entries) {
      for (const d of entry.destinations) {
        assert.ok('repository' in d, 'the workflow mirrors to registries');
        const settings = file.registries[d.repository.registry];
        assert.equal(settings?.passwordEnv, 'REGISTRY_PASSWORD', `credentials for ${d.repository.registry}`);
        assert.equal(settings?.credential?.username, 'set-by-the-workflow');
      }
    }
    assert.throws(() => parseMirrorFile(text, 'mirror.yaml', {}), /REGISTRY_(USERNAME|PASSWORD)/);
  });
});
