/**
 * Bad input to every command, as a table: each case must exit non-zero with exactly one
 * `error:` line naming the problem and no stack trace, and leave nothing behind: no new
 * file in its directories beyond what it is allowed to leave (the binaries and layout of
 * a build that got that far), no temporary file in its own TMPDIR, no compile container,
 * no tag on any test registry, no change to the release repository.
 *
 * No command reads an existing OCI layout yet (readLayout has no caller); `image --output`
 * is the command that opens one (to add its tag), so the empty, corrupt and foreign layout
 * cases go through it.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { RegistryClient } from '../../src/registry/client.ts';
import { publishIndex } from '../../src/registry/publish.ts';
import { assertOneLineError } from '../support/assert.ts';
import { runCli } from '../support/cli.ts';
import { ensureBuilder } from '../support/engines.ts';
import { GIT_ENV } from '../support/git.ts';
import { makeIndex } from '../support/oci-fixture.ts';
import { type TestRegistry, freePort, startRegistry } from '../support/registry.ts';

const USER = { username: 'pusher', password: 'right-password-7f3a' };
const BUILD = ['--engine', 'host', '--arch', 'amd64', '--version', '3.10', '--revision', 'bad-input'];
/** What a build that got past compiling may leave in its directory: its outputs and its compile cache. */
const BUILT = [/^bin(\/pause-linux-amd64)?$/, /^\.cache(\/.*)?$/];
const BUILT_AND_LAID_OUT = [...BUILT, /^_output(\/oci(\/.*)?)?$/];

interface World {
  readonly work: string;
  readonly fixtures: string;
  readonly repo: string;
  readonly plain: TestRegistry;
  readonly secure: TestRegistry;
  /** A loopback port nobody listens on. */
  readonly closedPort: number;
  /** Digests of single-arch images and of an index on plain/staged. */
  readonly staged: { amd64: string; index: string };
}

interface Case {
  readonly name: string;
  readonly args: (w: World, dir: string) => string[];
  /** The one error line must match this. */
  readonly error: RegExp;
  readonly env?: (w: World, dir: string) => Record<string, string>;
  readonly input?: string;
  /** Prepares the case directory before the snapshot. */
  readonly setup?: (dir: string) => Promise<void>;
  /** New paths (relative to the case directory) the run may leave. */
  readonly leaves?: readonly RegExp[];
  /** Runs in the release repository instead of its own directory. */
  readonly inRepo?: boolean;
}

const publishTo = (host: string, repo = 'bad/pause') => ['publish', ...BUILD, '--registry', `${host}/${repo}`];
const insecure = (host: string) => ['--insecure-registry', host];

async function write(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

const CASES: readonly Case[] = [
  // ---- builder
  { name: 'builder: unknown engine', args: () => ['builder', '--engine', 'foo'], error: /^error: option '--engine <engine>' argument 'foo' is invalid\. Allowed choices are podman, docker\.$/ },
  { name: 'builder: --root without build/cross/Dockerfile', args: (_w, dir) => ['builder', '--root', dir], error: /^error: builder Dockerfile not found at .*\/build\/cross\/Dockerfile — run pause-build from the project root or pass --root$/ },
  { name: 'builder: malformed --base reference', args: () => ['builder', '--base', 'Not A Ref!!'], error: /^error: building the builder image with podman failed: .*invalid reference format — check that the base image Not A Ref!! exists/ },
  // ---- bin
  { name: 'bin: unknown arch', args: () => ['bin', '--engine', 'host', '--version', '3.10', '--arch', 'amd64,mips'], error: /^error: unknown arch "mips" — supported: amd64, arm, arm64, ppc64le, s390x, riscv64, and windows\/amd64 \(or windows\)$/ },
  { name: 'bin: --arch naming no arch', args: () => ['bin', '--engine', 'host', '--version', '3.10', '--arch', ','], error: /^error: --arch "," names no arch — name one or more of amd64, .* or leave --arch out/ },
  { name: 'bin: unknown engine', args: () => ['bin', '--engine', 'lxc'], error: /^error: option '--engine <engine>' argument 'lxc' is invalid\. Allowed choices are podman, docker, host\.$/ },
  { name: 'bin: malformed version', args: () => ['bin', '--engine', 'host', '--version', '3.x'], error: /^error: invalid version "3\.x" — use MAJOR\.MINOR/ },
  { name: 'bin: prerelease without patch', args: () => ['bin', '--engine', 'host', '--version', '3.11-rc.1'], error: /^error: invalid version "3\.11-rc\.1"/ },
  { name: 'bin: VERSION file holds junk', args: (w) => ['bin', '--engine', 'host', '--root', path.join(w.fixtures, 'bad-version'), '--source', path.join(w.fixtures, 'broken.c')], error: /^error: VERSION file holds an invalid version "banana" — fix .*VERSION/ },
  { name: 'bin: missing --source', args: (_w, dir) => ['bin', ...BUILD, '--source', path.join(dir, 'nope.c')], error: /^error: source file .*\/nope\.c not found — pass --source FILE/ },
  {
    name: 'bin: compile error (host)',
    args: (w) => ['bin', ...BUILD, '--source', path.join(w.fixtures, 'broken.c'), '--no-cache'],
    error: /^error: compile for amd64 failed \(host\): .*unused variable/,
    leaves: [/^bin$/],
  },
  {
    name: 'bin: compile error (podman)',
    args: (w) => ['bin', '--engine', 'podman', '--arch', 'amd64,arm64', '--version', '3.10', '--revision', 'bad-input', '--source', path.join(w.fixtures, 'broken.c'), '--no-cache'],
    error: /^error: compile failed for amd64, arm64: compile for (amd64|arm64) failed \(podman\): .*unused variable/,
    leaves: [/^bin$/],
  },
  { name: 'bin: docker without a daemon', args: () => ['bin', ...BUILD.slice(2), '--engine', 'docker'], env: (_w, dir) => ({ DOCKER_HOST: `unix://${dir}/no-such.sock` }), error: /^error: docker is installed but not working: Cannot connect to the Docker daemon .*no-such\.sock.* — install it with `apt-get install docker\.io` and start dockerd/ },
  // ---- image
  { name: 'image: missing --dockerfile', args: (_w, dir) => ['image', ...BUILD, '--dockerfile', path.join(dir, 'Dockerfile.nope')], error: /^error: Dockerfile not found at .*Dockerfile\.nope — pass --dockerfile FILE$/ },
  { name: 'image: unsupported Dockerfile line', args: (w) => ['image', ...BUILD, '--dockerfile', path.join(w.fixtures, 'Dockerfile.run')], error: /Dockerfile\.run:4: RUN is not supported/ },
  {
    name: 'image: ADD of a file missing from the context',
    args: (w) => ['image', ...BUILD, '--dockerfile', path.join(w.fixtures, 'Dockerfile.missing')],
    error: /Dockerfile\.missing:3: ADD missing\.txt: not found in the build context/,
    leaves: BUILT,
  },
  { name: 'image: missing --context', args: (_w, dir) => ['image', ...BUILD, '--context', path.join(dir, 'no-context')], error: /^error: build context .*no-context does not exist/, leaves: BUILT },
  { name: 'image: reserved --build-arg', args: () => ['image', ...BUILD, '--build-arg', 'ARCH=s390x'], error: /^error: --build-arg ARCH is set per arch by pause-build — choose arches with --arch instead$/ },
  { name: 'image: malformed --tag', args: () => ['image', ...BUILD, '--tag', 'bad tag!'], error: /^error: invalid tag "bad tag!"/ },
  { name: 'image: malformed SOURCE_DATE_EPOCH', args: () => ['image', ...BUILD], env: () => ({ SOURCE_DATE_EPOCH: 'yesterday' }), error: /^error: SOURCE_DATE_EPOCH "yesterday" is not a whole number of seconds since 1970/ },
  {
    name: 'image: --output whose index.json is corrupt',
    setup: async (dir) => {
      await write(path.join(dir, 'out', 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      await write(path.join(dir, 'out', 'index.json'), '{"manifests": [');
    },
    args: () => ['image', ...BUILD, '--output', 'out'],
    error: /^error: index\.json in .*\/out is not valid JSON — remove .*\/out and build it again/,
    leaves: [],
  },
  {
    name: 'image: --output whose oci-layout marker is corrupt',
    setup: (dir) => write(path.join(dir, 'out', 'oci-layout'), 'not json'),
    args: () => ['image', ...BUILD, '--output', 'out'],
    error: /^error: oci-layout in .*\/out is not valid JSON/,
    leaves: [],
  },
  {
    name: 'image: --output holding something else',
    setup: (dir) => write(path.join(dir, 'out', 'notes.txt'), 'mine'),
    args: () => ['image', ...BUILD, '--output', 'out'],
    error: /^error: .*\/out is not empty and is not an OCI image layout — choose a new or empty --output directory$/,
    leaves: [],
  },
  // ---- publish and push
  { name: 'publish: no --registry', args: () => ['publish', ...BUILD], error: /^error: no registry given — pass --registry HOST\[:PORT\]\/REPO/ },
  { name: 'publish: repository with white space', args: () => ['publish', ...BUILD, '--registry', 'Bad Host//pause'], error: /^error: invalid image reference "Bad Host\/\/pause": it contains white space/ },
  { name: 'publish: upper-case repository', args: (w) => publishTo(w.plain.host, 'k8s/Pause'), error: /^error: invalid image reference ".*\/k8s\/Pause": repository names must be lower-case/ },
  { name: 'push: a tag in --registry', args: (w) => ['push', ...BUILD, '--registry', `${w.plain.host}/pause:3.10`], error: /^error: invalid image reference ".*\/pause:3\.10": expected a repository without tag or digest/ },
  { name: 'publish: --username without --password-stdin', args: (w) => [...publishTo(w.plain.host), '--username', 'someone'], error: /^error: --username needs --password-stdin/ },
  { name: 'publish: --by-digest with --tag', args: (w) => [...publishTo(w.plain.host), '--by-digest', '--tag', 'x'], error: /^error: --by-digest pushes no tags/ },
  { name: 'publish: --latest with a prerelease', args: (w) => ['publish', ...BUILD.slice(0, 4), '--version', '3.11.0-rc.1', '--registry', `${w.plain.host}/bad/pause`, '--latest'], error: /^error: --latest refused: 3\.11\.0-rc\.1 is a prerelease/ },
  { name: 'publish: malformed --tag', args: (w) => [...publishTo(w.plain.host), ...insecure(w.plain.host), '--tag', '-x'], error: /^error: invalid tag "-x"/ },
  { name: 'publish: missing --ca-file', args: (w, dir) => [...publishTo(w.secure.host), '--ca-file', path.join(dir, 'ca.pem')], error: /^error: cannot read --ca-file .*ca\.pem \(ENOENT\)/ },
  { name: 'publish: --ca-file that is not PEM', args: (w) => [...publishTo(w.secure.host), '--ca-file', path.join(w.fixtures, 'not-pem.txt')], error: /^error: --ca-file .*not-pem\.txt holds no PEM certificate/ },
  { name: 'publish: --insecure-registry with a scheme', args: (w) => [...publishTo(w.plain.host), '--insecure-registry', `http://${w.plain.host}`], error: /^error: --insecure-registry "http:\/\/127\.0\.0\.1:\d+" is not a host/ },
  { name: 'publish: malformed PAUSE_BUILD_REQUEST_TIMEOUT_MS', args: (w) => [...publishTo(w.plain.host), ...insecure(w.plain.host)], env: () => ({ PAUSE_BUILD_REQUEST_TIMEOUT_MS: '5s' }), error: /^error: PAUSE_BUILD_REQUEST_TIMEOUT_MS="5s" is not a number of milliseconds/ },
  {
    name: 'publish: wrong password (htpasswd)',
    args: (w) => [...publishTo(w.secure.host), '--ca-file', w.secure.certificates!.caFile, '--username', USER.username, '--password-stdin'],
    input: 'wrong-password-0c1d',
    error: /^error: push to 127\.0\.0\.1:\d+\/bad\/pause: authentication failed \(401\) — check --username\/--password-stdin/,
    leaves: BUILT_AND_LAID_OUT,
  },
  {
    name: 'publish: unknown CA',
    args: (w) => [...publishTo(w.secure.host), '--username', USER.username, '--password-stdin'],
    input: USER.password,
    error: /^error: push to 127\.0\.0\.1:\d+\/bad\/pause: TLS certificate of 127\.0\.0\.1:\d+ is not trusted .* — pass --ca-file/,
    leaves: BUILT_AND_LAID_OUT,
  },
  {
    name: 'publish: HTTPS spoken to a plain-HTTP registry',
    args: (w) => publishTo(w.plain.host),
    error: /^error: push to 127\.0\.0\.1:\d+\/bad\/pause: registry 127\.0\.0\.1:\d+ does not speak HTTPS — pass --insecure-registry/,
    leaves: BUILT_AND_LAID_OUT,
  },
  {
    name: 'publish: unreachable registry',
    args: (w) => [...publishTo(`127.0.0.1:${w.closedPort}`), ...insecure(`127.0.0.1:${w.closedPort}`)],
    env: () => ({ PAUSE_BUILD_RETRY_DELAY_MS: '1' }),
    error: /^error: push to 127\.0\.0\.1:\d+\/bad\/pause: registry 127\.0\.0\.1:\d+ unreachable \(connection refused\) \(5 attempts\)/,
    leaves: BUILT_AND_LAID_OUT,
  },
  // ---- index
  { name: 'index: no --from', args: (w) => ['index', '--version', '3.10', '--registry', `${w.plain.host}/staged`, ...insecure(w.plain.host)], error: /^error: no images to join — pass --from sha256:…/ },
  { name: 'index: malformed digest', args: (w) => ['index', '--version', '3.10', '--registry', `${w.plain.host}/staged`, '--from', 'sha256:abc'], error: /^error: --from sha256:abc is not a sha256 digest/ },
  { name: 'index: --latest with a prerelease', args: (w) => ['index', '--version', '3.11.0-rc.0', '--latest', '--registry', `${w.plain.host}/staged`, ...insecure(w.plain.host), '--from', w.staged.amd64], error: /^error: --latest refused: 3\.11\.0-rc\.0 is a prerelease/ },
  { name: 'index: malformed --tag', args: (w) => ['index', '--version', '3.10', '--tag', 'a/b', '--registry', `${w.plain.host}/staged`, ...insecure(w.plain.host), '--from', w.staged.amd64], error: /^error: invalid tag "a\/b"/ },
  { name: 'index: a digest the registry does not have', args: (w) => ['index', '--version', '3.10', '--registry', `${w.plain.host}/staged`, ...insecure(w.plain.host), '--from', `sha256:${'e'.repeat(64)}`], error: /^error: index from 127\.0\.0\.1:\d+\/staged: download of manifest sha256:e{64} failed: 404 Not Found/ },
  { name: 'index: --from an index, not an image', args: (w) => ['index', '--version', '3.10', '--registry', `${w.plain.host}/staged`, ...insecure(w.plain.host), '--from', w.staged.index], error: /^error: .*\/staged@sha256:[0-9a-f]{64} is a application\/vnd\.oci\.image\.index\.v1\+json, not a single-platform image manifest/ },
  { name: 'index: wrong password (htpasswd)', args: (w) => ['index', '--version', '3.10', '--registry', `${w.secure.host}/staged`, '--ca-file', w.secure.certificates!.caFile, '--username', USER.username, '--password-stdin', '--from', w.staged.amd64], input: 'nope-nope-nope', error: /^error: index from 127\.0\.0\.1:\d+\/staged: authentication failed \(401\)/ },
  // ---- release (in a repository released at 3.10)
  { name: 'release: --bump with a version', inRepo: true, args: () => ['release', '--bump', 'patch', '3.11'], error: /^error: --bump patch and the version 3\.11 were both given — give either --bump or a version, not both$/ },
  { name: 'release: unknown bump', inRepo: true, args: () => ['release', '--bump', 'sideways'], error: /^error: invalid bump "sideways" — use one of major, minor, patch, prerelease$/ },
  { name: 'release: a version lower than released', inRepo: true, args: () => ['release', '3.9'], error: /^error: 3\.9 is lower than the released 3\.10/ },
  { name: 'release: not in a git work tree', args: (_w, dir) => ['release', '3.11', '--root', dir], error: /^error: .* is not in a git work tree/ },
  { name: 'release: malformed --registry', inRepo: true, args: () => ['release', '3.11', '--registry', 'Registry Host/pause'], error: /^error: invalid image reference "Registry Host\/pause"/ },
  { name: 'release: wrong password (htpasswd)', inRepo: true, args: (w) => ['release', '3.11', '--registry', `${w.secure.host}/pause`, '--ca-file', w.secure.certificates!.caFile, '--username', USER.username, '--password-stdin'], input: 'not-it-at-all', error: /^error: list tags of 127\.0\.0\.1:\d+\/pause: authentication failed \(401\)/ },
  { name: 'release: unknown registry host', inRepo: true, args: () => ['release', '3.11', '--registry', 'no-such-host.invalid:5000/pause', '--insecure-registry', 'no-such-host.invalid:5000'], env: () => ({ PAUSE_BUILD_RETRY_DELAY_MS: '1' }), error: /^error: list tags of no-such-host\.invalid:5000\/pause: registry host no-such-host\.invalid:5000 not found — check the host name/ },
  // ---- clean
  { name: 'clean: --bin-dir is the current directory', args: () => ['clean', '--bin-dir', '.'], error: /^error: refusing to remove .*: it holds the current directory/ },
  { name: 'clean: --output-dir is the root', args: () => ['clean', '--output-dir', '/'], error: /^error: refusing to remove \/: it holds the current directory/ },
  // ---- no command
  { name: 'an unknown command', args: () => ['frobnicate'], error: /^error: unknown command 'frobnicate'$/ },
];

/** Every path under `dir`, relative, directories included; symlinks are listed, not followed. */
async function listing(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(path.join(dir, prefix), { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    out.push(rel);
    if (e.isDirectory()) out.push(...(await listing(dir, rel)));
  }
  return out.sort();
}

/** Tags stored by a test registry, read from its storage: `repo:tag`. */
async function storedTags(reg: TestRegistry): Promise<string[]> {
  const root = path.join(reg.dir, 'storage', 'docker', 'registry', 'v2', 'repositories');
  return (await listing(root)).map((p) => /^(.+)\/_manifests\/tags\/([^/]+)$/.exec(p)).filter((m) => m !== null).map((m) => `${m[1]}:${m[2]}`);
}

/** Compile containers whose mounts are under `dir` (other people's runs on this machine are not ours). */
async function containersUnder(dir: string): Promise<string[]> {
  const ids = (await execa('podman', ['ps', '-a', '--filter', 'label=io.pause-build.role', '--format', '{{.ID}}'])).stdout.split('\n').filter(Boolean);
  const ours: string[] = [];
  for (const id of ids) {
    const r = await execa('podman', ['inspect', '--format', '{{range .Mounts}}{{.Source}} {{end}}', id], { reject: false });
    if (r.stdout.split(' ').some((s) => s.startsWith(dir))) ours.push(id);
  }
  return ours;
}

async function inBatches<T>(items: readonly T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: size }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

describe('bad input to every command', () => {
  let world: World;

  before(async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'wt-faults-bad-input-'));
    const fixtures = path.join(work, 'fixtures');
    await write(path.join(fixtures, 'broken.c'), 'int main(void) { int unused; return 0; }\n');
    await write(path.join(fixtures, 'Dockerfile.run'), 'FROM scratch\nARG ARCH\nADD bin/pause-linux-${ARCH} /pause\nRUN echo hi\n');
    await write(path.join(fixtures, 'Dockerfile.from'), 'FROM debian:bookworm\nCOPY bin/pause-linux-amd64 /pause\n');
    await write(path.join(fixtures, 'Dockerfile.missing'), 'FROM scratch\nARG ARCH\nADD missing.txt /missing.txt\nADD bin/pause-linux-${ARCH} /pause\n');
    await write(path.join(fixtures, 'not-pem.txt'), 'hello\n');
    // No credentials: the machine's own docker login must not change what the cases see.
    await write(path.join(fixtures, 'docker', 'config.json'), '{}\n');
    await write(path.join(fixtures, 'bad-version', 'VERSION'), 'banana\n');
    const repo = path.join(work, 'repo');
    await write(path.join(repo, 'VERSION'), '3.10\n');
    const git = (...args: string[]) => execa('git', args, { cwd: repo, env: GIT_ENV, stdin: 'ignore' });
    await git('init', '-q', '-b', 'main');
    await git('add', '-A');
    await git('commit', '-q', '-m', 'Release 3.10');
    await git('tag', '-a', 'v3.10', '-m', 'v3.10');
    await ensureBuilder('podman');
    const plain = await startRegistry();
    const secure = await startRegistry({ tls: true, htpasswd: USER });
    // Images to join, and an index to refuse.
    const staged = makeIndex(['amd64', 'arm64'], 'staged');
    const client = new RegistryClient({ insecure: [plain.host] });
    await publishIndex(client, { registry: plain.host, repository: 'staged' }, staged, { tags: [] });
    await publishIndex(client, { registry: plain.host, repository: 'staged' }, staged, { tags: ['the-index'] });
    world = { work, fixtures, repo, plain, secure, closedPort: await freePort(), staged: { amd64: staged.images[0]!.manifest.descriptor.digest, index: staged.index.descriptor.digest } };
  });

  after(async () => {
    await world?.plain.stop();
    await world?.secure.stop();
    if (world) await rm(world.work, { recursive: true, force: true });
  });

  it(`${CASES.length} cases: one error line, exit non-zero, nothing left behind`, async (t) => {
    assert.ok(CASES.length >= 30);
    const commands = new Set(CASES.map((c) => c.args(world, '/x')[0]));
    for (const command of ['builder', 'bin', 'image', 'publish', 'push', 'index', 'release', 'clean']) assert.ok(commands.has(command), `no case for ${command}`);
    const tsxCache = path.join(os.tmpdir(), `tsx-${process.geteuid?.() ?? 0}`);
    await mkdir(tsxCache, { recursive: true });
    const failures: string[] = [];
    let n = 0;
    await inBatches(CASES, 3, async (c) => {
      const id = String(++n).padStart(2, '0');
      const dir = path.join(world.work, 'cases', id);
      const tmp = path.join(world.work, 'tmp', id);
      await mkdir(dir, { recursive: true });
      await mkdir(tmp, { recursive: true });
      // The test runs pause-build from source: tsx keeps its transform cache in TMPDIR; it is ours, not the run's.
      await symlink(tsxCache, path.join(tmp, path.basename(tsxCache)));
      await c.setup?.(dir);
      const cwd = c.inRepo ? world.repo : dir;
      const watched = c.inRepo ? [dir, tmp, world.fixtures, world.repo] : [dir, tmp, world.fixtures];
      const before = await Promise.all(watched.map((w) => listing(w)));
      const tagsBefore = [await storedTags(world.plain), await storedTags(world.secure)];
      const gitBefore = c.inRepo ? (await execa('git', ['for-each-ref', '--format=%(refname) %(objectname)'], { cwd: world.repo })).stdout : '';
      const started = Date.now();
      const r = await runCli(c.args(world, dir), {
        cwd,
        env: { TMPDIR: tmp, XDG_CACHE_HOME: path.join(dir, '.cache'), DOCKER_CONFIG: path.join(world.fixtures, 'docker'), ...c.env?.(world, dir) },
        ...(c.input === undefined ? {} : { input: c.input }),
        timeout: 120_000,
      });
      try {
        assertOneLineError(r, c.error);
        const after = await Promise.all(watched.map((w) => listing(w)));
        watched.forEach((w, i) => {
          const added = after[i]!.filter((p) => !before[i]!.includes(p));
          const allowed = w === dir ? (c.leaves ?? []) : [];
          const unexpected = added.filter((p) => !allowed.some((re) => re.test(p)));
          assert.deepEqual(unexpected, [], `left behind in ${w === tmp ? 'its TMPDIR' : w}: ${unexpected.join(', ')}`);
        });
        assert.deepEqual([await storedTags(world.plain), await storedTags(world.secure)], tagsBefore, 'a tag was written');
        if (c.inRepo) assert.equal((await execa('git', ['for-each-ref', '--format=%(refname) %(objectname)'], { cwd: world.repo })).stdout, gitBefore, 'git refs changed');
        // Its own directory only: cases run three at a time, and another case's compile may be running.
        assert.deepEqual(await containersUnder(dir), [], 'compile container left');
        t.diagnostic(`ok ${c.name} (${((Date.now() - started) / 1000).toFixed(1)} s): ${r.stderr.split('\n').find((l) => l.startsWith('error:'))}`);
      } catch (e) {
        failures.push(`${c.name}: ${(e as Error).message}\n  stderr: ${r.stderr.trim().split('\n').slice(-6).join('\n  ')}`);
      }
    });
    assert.deepEqual(failures, []);
    assert.deepEqual(await containersUnder(world.work), [], 'compile container left after all cases');
  });
});
