/**
 * No secret in any output: every command that takes registry credentials (publish and
 * push, index, release --registry) against an htpasswd registry and a token registry,
 * with the password from --password-stdin, from config.json `auths`, and from a
 * credential helper on PATH (user and password, or an identity token), with and without
 * --debug, succeeding and failing on a wrong secret, in and out of GitHub Actions.
 * Neither a password, an identity token, a token the token service issued, nor the
 * base64 of user:password may appear in stdout, stderr, the step outputs or the job
 * summary; in Actions, each secret in use is masked (`::add-mask::`) before any request
 * is made, and those mask lines are the only place it appears.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { RegistryClient } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { assertOneLineError } from '../support/assert.ts';
import { runCli } from '../support/cli.ts';
import { GIT_ENV } from '../support/git.ts';
import { makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, startRegistry } from '../support/registry.ts';

const USER = 'releaser';
const PASSWORD = 'pw-3f9c1e7a-Correct-Horse';
const IDENTITY_TOKEN = 'idtok-8b41d2c9-refresh-Battery';
const WRONG_PASSWORD = 'pw-0d5e6f1b-Wrong-Staple';
const WRONG_IDENTITY_TOKEN = 'idtok-77aa19e3-wrong-Staple';

type RegistryKind = 'htpasswd' | 'token';
type Source = 'stdin' | 'auths' | 'helper';

/** What a command line needs to know to name its registry and its directories. */
interface ArgsContext {
  /** `host:port` of the registry under test. */
  readonly host: string;
  /** Run number, for repositories and tags of its own. */
  readonly id: string;
  /** A directory of the run's own. */
  readonly dir: string;
  /** --insecure-registry and the credential flags of this run. */
  readonly registryArgs: readonly string[];
  readonly world: { readonly work: string; readonly repo: string; readonly stagedDigests: readonly string[] };
}

/**
 * Every command that takes registry credentials, with its arguments. Several names share
 * a row when they are the same command (push is publish); runs take turns among them.
 */
const COMMANDS: readonly { readonly names: readonly string[]; readonly args: (c: ArgsContext) => string[] }[] = [
  {
    names: ['publish', 'push'],
    args: (c) => ['--engine', 'host', '--arch', 'amd64', '--version', '3.10', '--revision', 'secrets', '--cache-dir', path.join(c.world.work, 'cache'),
      '--bin-dir', path.join(c.dir, 'bin'), '--output', path.join(c.dir, 'oci'), '--registry', `${c.host}/pub/r${c.id}`, ...c.registryArgs],
  },
  {
    names: ['index'],
    args: (c) => ['--version', '3.10', '--revision', 'secrets', '--tag', `run-${c.id}`, '--registry', `${c.host}/staged`, ...c.registryArgs, '--from', ...c.world.stagedDigests],
  },
  {
    names: ['release'],
    args: (c) => ['3.11', '--root', c.world.repo, '--registry', `${c.host}/pause`, ...c.registryArgs],
  },
];

interface Run {
  /** Row of COMMANDS. */
  readonly row: number;
  readonly command: string;
  readonly registry: RegistryKind;
  readonly source: Source;
  readonly ok: boolean;
  readonly debug: boolean;
  readonly actions: boolean;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** The secret a run hands over: for the token registry, config and helpers carry an identity token. */
function secretOf(run: Run): string {
  if (run.registry === 'token' && run.source !== 'stdin') return run.ok ? IDENTITY_TOKEN : WRONG_IDENTITY_TOKEN;
  return run.ok ? PASSWORD : WRONG_PASSWORD;
}

/** Every run: each command × registry × source × outcome; --debug and Actions take turns so that each pairing occurs. */
function plan(): Run[] {
  const runs: Run[] = [];
  let i = 0;
  for (const [row, { names }] of COMMANDS.entries()) {
    for (const registry of ['htpasswd', 'token'] as const) {
      for (const source of ['stdin', 'auths', 'helper'] as const) {
        for (const ok of [true, false]) {
          const k = i++;
          runs.push({ row, command: names[Math.floor(k / 2) % names.length]!, registry, source, ok, debug: (Math.floor(k / 2) + k) % 2 === 0, actions: (Math.floor(k / 4) + k) % 2 === 0 });
        }
      }
    }
  }
  return runs;
}

async function inBatches<T>(items: readonly T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: size }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

describe('secrets never reach the output', () => {
  let work: string;
  let repo: string;
  const regs = {} as Record<RegistryKind, TestRegistry>;
  const staged = makeIndex(['amd64', 'arm64'], 'secrets');

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'wt-faults-secrets-'));
    regs.htpasswd = await startRegistry({ htpasswd: { username: USER, password: PASSWORD } });
    regs.token = await startRegistry({ token: { username: USER, password: PASSWORD, identityToken: IDENTITY_TOKEN } });
    // Per-arch images for `index --from`, pushed by digest as a release job would.
    for (const reg of Object.values(regs)) {
      const client = new RegistryClient({ insecure: [reg.host], credentials: { explicit: { username: USER, password: PASSWORD } } });
      await publishIndex(client, { registry: reg.host, repository: 'staged' }, staged, { tags: [], withIndex: false });
    }
    repo = path.join(work, 'repo');
    await mkdir(repo);
    await writeFile(path.join(repo, 'VERSION'), '3.10\n');
    const git = (...args: string[]) => execa('git', args, { cwd: repo, env: GIT_ENV, stdin: 'ignore' });
    await git('init', '-q', '-b', 'main');
    await git('add', '-A');
    await git('commit', '-q', '-m', 'Release 3.10');
    await git('tag', '-a', 'v3.10', '-m', 'v3.10');
  });

  after(async () => {
    await regs.htpasswd?.stop();
    await regs.token?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('publish, push, index and release: no password, token or base64 credentials in stdout, stderr, outputs or summary', async (t) => {
    const runs = plan();
    const covered = (pred: (r: Run) => boolean) => runs.some(pred);
    for (const [row, { names }] of COMMANDS.entries()) {
      for (const name of names) assert.ok(covered((r) => r.command === name), `${name} is not run`);
      const of = (r: Run) => r.row === row;
      for (const ok of [true, false]) for (const debug of [true, false]) for (const actions of [true, false]) {
        assert.ok(covered((r) => of(r) && r.ok === ok && r.debug === debug && r.actions === actions), `${names[0]} ok=${ok} debug=${debug} actions=${actions} not covered`);
      }
      for (const registry of ['htpasswd', 'token'] as const) for (const source of ['stdin', 'auths', 'helper'] as const) {
        assert.ok(covered((r) => of(r) && r.registry === registry && r.source === source && r.actions), `${names[0]} ${registry} ${source} never in Actions`);
      }
    }
    const failures: string[] = [];
    let n = 0;
    await inBatches(runs, 3, async (run) => {
      const id = String(++n).padStart(2, '0');
      const dir = path.join(work, `run-${id}`);
      await mkdir(dir);
      const reg = regs[run.registry];
      const secret = secretOf(run);
      const name = `${id} ${run.command} ${run.registry} ${run.source} ${run.ok ? 'ok' : 'wrong'}${run.debug ? ' --debug' : ''}${run.actions ? ' in Actions' : ''}`;

      // Where the credentials come from.
      const dockerConfig = path.join(dir, 'docker');
      const helpers = path.join(dir, 'helpers');
      await mkdir(dockerConfig);
      await mkdir(helpers);
      let config: object = {};
      if (run.source === 'auths') {
        config = { auths: { [reg.host]: run.registry === 'token' ? { identitytoken: secret } : { auth: b64(`${USER}:${secret}`) } } };
      } else if (run.source === 'helper') {
        config = { credHelpers: { [reg.host]: 'wtfaults' } };
        const answer = JSON.stringify({ ServerURL: reg.host, Username: run.registry === 'token' ? '<token>' : USER, Secret: secret });
        const helper = path.join(helpers, 'docker-credential-wtfaults');
        await writeFile(helper, `#!/bin/sh\n[ "$1" = get ] || exit 1\ncat >/dev/null\nprintf '%s\\n' '${answer}'\n`);
        await chmod(helper, 0o755);
      }
      await writeFile(path.join(dockerConfig, 'config.json'), JSON.stringify(config));
      const credentials = [...(run.source === 'stdin' ? ['--username', USER, '--password-stdin'] : []), '--docker-config', dockerConfig];

      const registryArgs = ['--insecure-registry', reg.host, ...credentials];
      const args = [run.command, ...COMMANDS[run.row]!.args({ host: reg.host, id, dir, registryArgs, world: { work, repo, stagedDigests: staged.images.map((i) => i.manifest.descriptor.digest) } })];

      const outputFile = path.join(dir, 'github-output');
      const summaryFile = path.join(dir, 'github-summary');
      await writeFile(outputFile, '');
      await writeFile(summaryFile, '');
      const env: Record<string, string> = {
        PATH: `${helpers}:${process.env.PATH ?? ''}`,
        PAUSE_BUILD_RETRY_DELAY_MS: '5',
        ...(run.actions ? { GITHUB_ACTIONS: 'true', GITHUB_OUTPUT: outputFile, GITHUB_STEP_SUMMARY: summaryFile } : { GITHUB_ACTIONS: 'false' }),
      };
      const r = await runCli([...(run.debug ? ['--debug'] : []), ...args], {
        env,
        ...(run.source === 'stdin' ? { input: `${secret}\n` } : {}),
        timeout: 120_000,
      });
      try {
        if (run.ok) {
          assert.equal(r.exitCode, 0, r.stderr);
        } else {
          const who = run.registry === 'token' ? /authentication failed \(401 from token service 127\.0\.0\.1:\d+\)/ : /authentication failed \(401\)/;
          if (run.debug) {
            // --debug adds the stack trace; still one error line.
            assert.notEqual(r.exitCode, 0);
            const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
            assert.equal(errors.length, 1, r.stderr);
            assert.match(errors[0]!, who);
          } else {
            assertOneLineError(r, who);
          }
        }
        const issued = reg.tokenServer?.issued ?? [];
        if (run.registry === 'token') assert.ok(run.ok ? issued.length > 0 : true, 'the token service issued nothing');
        const secrets = [secret, b64(`${USER}:${secret}`), PASSWORD, IDENTITY_TOKEN, WRONG_PASSWORD, WRONG_IDENTITY_TOKEN, b64(`${USER}:${PASSWORD}`), b64(`${USER}:${WRONG_PASSWORD}`), ...issued];
        const masks = r.stderr.split('\n').filter((l) => l.startsWith('::add-mask::'));
        const outputs: [string, string][] = [
          ['stdout', r.stdout],
          ['stderr', r.stderr.split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n')],
          ['GITHUB_OUTPUT', await readFile(outputFile, 'utf8')],
          ['GITHUB_STEP_SUMMARY', await readFile(summaryFile, 'utf8')],
        ];
        for (const [where, text] of outputs) {
          for (const s of secrets) assert.ok(!text.includes(s), `${where} holds a secret (${s.slice(0, 6)}…):\n${text}`);
        }
        if (run.actions) {
          assert.ok((await readFile(summaryFile, 'utf8')).length > 0 || !run.ok, 'Actions summary not written');
          const lines = r.stderr.split('\n');
          const maskAt = lines.indexOf(`::add-mask::${secret}`);
          assert.ok(maskAt >= 0, `the secret in use is not masked; masks: ${masks.length}`);
          if (run.registry === 'htpasswd' || run.source === 'stdin') assert.ok(masks.includes(`::add-mask::${b64(`${USER}:${secret}`)}`), 'user:password in base64 is not masked');
          // Before any request: --debug shows each one as `[registry] → METHOD URL`.
          const firstRequest = lines.findIndex((l) => l.startsWith('[registry] →'));
          if (run.debug) assert.ok(firstRequest > maskAt, `masked at line ${maskAt}, first request at ${firstRequest}`);
          const errorAt = lines.findIndex((l) => l.startsWith('error:'));
          if (!run.ok) assert.ok(errorAt > maskAt, 'masked only after the error');
          // Tokens the service issued are secrets too.
          for (const token of issued.filter((tk) => r.stderr.includes(tk))) assert.ok(masks.includes(`::add-mask::${token}`), 'an issued token appears unmasked');
        } else {
          assert.deepEqual(masks, [], 'workflow commands outside Actions');
        }
        t.diagnostic(`ok ${name}`);
      } catch (e) {
        failures.push(`${name}: ${(e as Error).message.slice(0, 600)}\n  stderr: ${r.stderr.trim().split('\n').slice(-5).join('\n  ')}`);
      }
    });
    assert.deepEqual(failures, []);
  });
});
