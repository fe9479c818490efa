/**
 * Our pause image as the pod sandbox of containerd 1.6 and 2.1, driven through the CRI as
 * the kubelet drives it. Each containerd is configured with what `pause-build
 * sandbox-config` printed, pulls from a real registry by a name that is not loopback to
 * containerd (so only the printed hosts.toml makes plain HTTP or the private CA work), and
 * runs a pod whose containers leave orphans for the sandbox's PID 1 to reap. A sandbox
 * whose PID 1 does not reap is the control that keeps the zombies.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { parse as parseToml } from 'smol-toml';
import { loadContextFiles } from '../../src/oci/context.ts';
import { parseDockerfile } from '../../src/oci/dockerfile.ts';
import { buildImage } from '../../src/oci/image.ts';
import { buildIndex } from '../../src/oci/index.ts';
import { writeLayout } from '../../src/oci/layout.ts';
import { platformFor } from '../../src/platforms.ts';
import { parseReference } from '../../src/registry/reference.ts';
import { type SandboxConfig, type Transport, sandboxConfig as printConfig } from '../../src/sandbox-config.ts';
import { REPO_ROOT, runCli } from '../support/cli.ts';
import { type Containerd, type ContainerdVersion, type MountNamespace, containerdVersions, startContainerd, startMountNamespace } from '../support/containerd.ts';
import { type TestRegistry, startRegistry } from '../support/registry.ts';

/** Resolved to 127.0.0.1 only inside the test's mount namespace. */
const NAME = 'pause-mirror.test';
const TSX = path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');
const CLI = path.join(REPO_ROOT, 'src', 'cli.ts');
/** A PID 1 that never waits for its children: the negative control. */
const SLEEPER_C = '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n';
/**
 * A container's main process that runs /orphan three times and lives on: the orphans'
 * children outlive their parents while the container runs (when a container's main
 * process exits, the shim kills everything left in it).
 */
const SPAWN_C = `#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  for (int i = 0; i < 3; i++) {
    pid_t p = fork();
    if (p == 0) { execl("/orphan", "/orphan", "2", (char *)0); _exit(127); }
    waitpid(p, 0, 0);
  }
  for (;;) pause();
}
`;

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let dir: string;
let ns: MountNamespace;
let plain: TestRegistry;
let secure: TestRegistry;
let pauseBin: Buffer;
let sleeperBin: Buffer;
let pauseDigest: string;
const digests: Record<string, string> = {};
const cgroupParents: string[] = [];
const figures: string[] = [];

/** The CLI inside the mount namespace, so it reaches the registries by NAME as the nodes do. */
async function cliInNamespace(args: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa(ns.enter(REPO_ROOT)[0]!, [...ns.enter(REPO_ROOT).slice(1), process.execPath, '--import', TSX, CLI, ...args], { reject: false, env: { CI: 'true' } });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function sandboxConfig(args: readonly string[]): Promise<SandboxConfig> {
  const r = await runCli(['sandbox-config', ...args, '--json']);
  assert.equal(r.exitCode, 0, r.stderr);
  return JSON.parse(r.stdout) as SandboxConfig;
}

/** Writes the printed hosts.toml and copies the CA where the printed paths say. */
async function writeHostFiles(config: SandboxConfig): Promise<void> {
  for (const f of config.files.slice(1)) {
    await mkdir(path.dirname(f.path), { recursive: true });
    if (f.copyFrom) await copyFile(f.copyFrom, f.path);
    else await writeFile(f.path, f.content!);
  }
}

/** A small image of static binaries made by the project's own assembler, as an OCI layout. */
async function assemble(name: string, files: readonly (readonly [string, string])[], entrypoint: string): Promise<string> {
  const context = path.join(dir, `ctx-${name}`);
  await mkdir(context, { recursive: true });
  for (const [src, dest] of files) await copyFile(src, path.join(context, path.basename(dest)));
  const copies = files.map(([, dest]) => `COPY ${path.basename(dest)} ${dest}\n`).join('');
  const plan = parseDockerfile(`FROM scratch\n${copies}ENTRYPOINT ["${entrypoint}"]\n`, { file: `${name}.Dockerfile` });
  const image = buildImage({ platform: platformFor('amd64'), plan, files: await loadContextFiles(plan, context), epoch: 0 });
  const layout = path.join(dir, `oci-${name}`);
  await writeLayout(layout, buildIndex([image], { version: '1', revision: 'sandbox', source: 'https://example.invalid/sandbox', epoch: 0 }), '1');
  return layout;
}

interface RegistryMark {
  readonly registry: TestRegistry;
  readonly lines: number;
}

async function mark(registry: TestRegistry): Promise<RegistryMark> {
  return { registry, lines: (await readFile(registry.logPath, 'utf8')).split('\n').length - 1 };
}

/** Access-log lines of image reads since the mark. */
async function pullLines(m: RegistryMark): Promise<string[]> {
  const lines = (await readFile(m.registry.logPath, 'utf8')).split('\n').slice(m.lines);
  return lines.filter((l) => /"(GET|HEAD) \/v2\/[^ ]*(manifests|blobs)\//.test(l)).map((l) => l.replace(/^\S+ - - /, ''));
}

interface Events {
  /** The exit status of a task once it has exited (0 when containerd omits it). */
  exit(id: string, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** `ctr events` on the instance: task exits as containerd saw them. */
function watchEvents(c: Containerd): Events {
  const ctr = path.join(c.version.binDir, 'ctr');
  const child: ChildProcess = spawn(ctr, ['--address', c.socket, 'events'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exits = new Map<string, number>();
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      const m = /\/tasks\/exit (\{.*\})\s*$/.exec(line);
      if (!m) continue;
      const e = JSON.parse(m[1]!) as { container_id: string; id?: string; exit_status?: number };
      if (!e.id || e.id === e.container_id) exits.set(e.container_id, e.exit_status ?? 0);
    }
  });
  return {
    async exit(id, timeoutMs = 20_000) {
      for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(20)) if (exits.has(id)) return exits.get(id)!;
      throw new Error(`no exit event for ${id} within ${timeoutMs} ms`);
    },
    async stop() {
      if (child.exitCode === null) {
        const done = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await done;
      }
    },
  };
}

interface Proc {
  readonly pid: number;
  readonly ppid: number;
  readonly state: string;
}

async function proc(pid: number): Promise<Proc | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  if (!status) return undefined;
  const field = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1] ?? '';
  return { pid, ppid: Number(field('PPid')), state: field('State').charAt(0) };
}

async function childrenOf(pid: number): Promise<Proc[]> {
  const all = await Promise.all((await readdir('/proc')).filter((e) => /^\d+$/.test(e)).map((e) => proc(Number(e))));
  return all.filter((p): p is Proc => p !== undefined && p.ppid === pid);
}

async function taskPid(c: Containerd, id: string): Promise<number> {
  const line = (await c.ctr(['tasks', 'ls'])).split('\n').find((l) => l.startsWith(`${id} `));
  assert.ok(line, `no task ${id}`);
  return Number(line.trim().split(/\s+/)[1]);
}

/** The cgroup parent a pod config names. */
function parentOf(config: Record<string, unknown>): string {
  return (config.linux as { cgroup_parent: string }).cgroup_parent;
}

function podConfig(name: string): Record<string, unknown> {
  const parent = `/pause-build-sandbox-${process.pid}-${cgroupParents.length}`;
  cgroupParents.push(parent);
  return {
    metadata: { name, uid: randomUUID(), namespace: 'pause-build-test', attempt: 0 },
    log_directory: path.join(dir, 'pod-logs', name),
    // Host network and no hostname: a host-network pod may not set one.
    linux: { cgroup_parent: parent, security_context: { namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' } } },
  };
}

/** Cgroup directories left under a pod's parent, in every hierarchy. */
async function leftoverCgroups(parent: string): Promise<string[]> {
  const left: string[] = [];
  for (const hierarchy of await readdir('/sys/fs/cgroup')) {
    const entries = await readdir(path.join('/sys/fs/cgroup', hierarchy, parent), { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) left.push(path.join(hierarchy, parent, e.name));
  }
  return left;
}

interface Reaping {
  readonly orphans: number;
  readonly zombiesAfter1s: number;
  readonly reaped: number;
}

/**
 * A container in the pod runs build/pause/orphan.c three times: each forks a child and
 * exits, so the child is reparented to the sandbox's PID 1. One second after the last
 * child has exited, how many are zombies?
 */
async function leaveOrphans(c: Containerd, sandboxId: string, config: Record<string, unknown>, image: string, pid1: number): Promise<Reaping> {
  const { container_id: id } = await c.cri.call('CreateContainer', {
    pod_sandbox_id: sandboxId,
    config: {
      metadata: { name: 'orphans', attempt: 0 },
      image: { image },
      log_path: 'orphans.log',
      linux: { security_context: { namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' } } },
    },
    sandbox_config: config,
  });
  await c.cri.call('StartContainer', { container_id: id });
  let orphans: Proc[] = [];
  for (let i = 0; orphans.length < 3; i++) {
    assert.ok(i < 40, `expected the three orphans under PID 1 (${pid1}), found ${JSON.stringify(orphans)}`);
    await sleep(50);
    orphans = (await childrenOf(pid1)).filter((p) => p.state !== 'Z');
  }
  assert.equal(orphans.length, 3, JSON.stringify(orphans));
  for (let i = 0; (await Promise.all(orphans.map((o) => proc(o.pid)))).some((p) => p && p.state !== 'Z'); i++) {
    assert.ok(i < 100, 'the orphans did not exit');
    await sleep(50);
  }
  await sleep(1000);
  const after = await Promise.all(orphans.map((o) => proc(o.pid)));
  return {
    orphans: orphans.length,
    zombiesAfter1s: after.filter((p) => p?.state === 'Z' && p.ppid === pid1).length,
    reaped: after.filter((p) => p === undefined).length,
  };
}

/** No task, container, mount, cgroup or shim of the pod is left. */
async function assertNothingLeft(c: Containerd, sandboxId: string, mountsBefore: readonly string[], parent: string): Promise<void> {
  assert.equal((await c.ctr(['tasks', 'ls', '-q'])).trim(), '', 'tasks left');
  assert.equal((await c.ctr(['containers', 'ls', '-q'])).trim(), '', 'containers left');
  const mounts = (await ns.mounts()).map((l) => l.split(' ')[4]!).filter((m) => m.startsWith(c.dir));
  assert.deepEqual(mounts, [...mountsBefore], 'mounts left');
  assert.ok(!mounts.some((m) => m.includes(sandboxId)));
  assert.deepEqual(await leftoverCgroups(parent), [], 'cgroups left');
  for (let i = 0; (await c.shims()).length > 0; i++) {
    assert.ok(i < 100, `shims left: ${(await c.shims()).join(' ')}`);
    await sleep(50);
  }
}

async function podMounts(c: Containerd): Promise<string[]> {
  return (await ns.mounts()).map((l) => l.split(' ')[4]!).filter((m) => m.startsWith(c.dir));
}

before(async () => {
  dir = await mkdtemp('/tmp/sandbox-cri-');
  ns = await startMountNamespace(dir, [NAME]);
  [plain, secure] = await Promise.all([startRegistry({ dirPrefix: '/tmp/sandbox-registry-' }), startRegistry({ tls: true, names: [NAME], dirPrefix: '/tmp/sandbox-registry-' })]);
  const orphanBin = path.join(dir, 'orphan');
  const sleeper = path.join(dir, 'sleeper');
  const spawner = path.join(dir, 'spawn');
  await writeFile(`${sleeper}.c`, SLEEPER_C);
  await writeFile(`${spawner}.c`, SPAWN_C);
  await Promise.all([
    execa('gcc', ['-Os', '-Wall', '-Werror', '-static', '-o', spawner, `${spawner}.c`]),
    execa('gcc', ['-Os', '-Wall', '-Werror', '-static', '-o', orphanBin, path.join(REPO_ROOT, 'build', 'pause', 'orphan.c')]),
    execa('gcc', ['-Os', '-Wall', '-Werror', '-static', '-o', sleeper, `${sleeper}.c`]),
  ]);
  sleeperBin = await readFile(sleeper);
  // Our pause image, built and published by pause-build itself (amd64: what containerd runs here).
  const published = await runCli(['publish', '--arch', 'amd64', '--engine', 'host', '--version', '3.10', '--revision', 'sandbox', '-q', '--json',
    '--bin-dir', path.join(dir, 'bin'), '--output', path.join(dir, 'oci-pause'), '--cache-dir', path.join(dir, 'cache'),
    '--registry', `${plain.host}/sandbox/pause`, '--insecure-registry', plain.host]);
  assert.equal(published.exitCode, 0, published.stderr);
  pauseDigest = (JSON.parse(published.stdout) as { digest: string }).digest;
  pauseBin = await readFile(path.join(dir, 'bin', 'pause-linux-amd64'));
  // The helper images to both registries, and our image on to the TLS one, by mirror run
  // where the registries have their node names.
  const mirrorFile = path.join(dir, 'mirror.yaml');
  await writeFile(mirrorFile, JSON.stringify({
    mirrors: [
      { source: `oci:${await assemble('orphan', [[orphanBin, '/orphan'], [spawner, '/spawn']], '/spawn')}:1`, destinations: [`${NAME}:${plain.port}/sandbox/orphan`, `${NAME}:${secure.port}/sandbox/orphan`] },
      { source: `oci:${await assemble('sleeper', [[sleeper, '/pause']], '/pause')}:1`, destinations: [`${NAME}:${secure.port}/sandbox/sleeper`] },
      { source: `${NAME}:${plain.port}/sandbox/pause:3.10`, destinations: [`${NAME}:${secure.port}/sandbox/pause`] },
    ],
    registries: { [`${NAME}:${plain.port}`]: { insecure: true } },
  }));
  const mirrored = await cliInNamespace(['mirror', '--file', mirrorFile, '--ca-file', secure.certificates!.caFile, '--json']);
  assert.equal(mirrored.exitCode, 0, mirrored.stderr);
  const report = JSON.parse(mirrored.stdout) as { copies: { source: string; digest: string; destinations: Record<string, string>[] }[] };
  digests.orphan = report.copies[0]!.digest;
  digests.sleeper = report.copies[1]!.digest;
  assert.equal(report.copies[2]!.digest, pauseDigest);
  // What mirror printed for each destination is what sandbox-config prints for it.
  for (const c of report.copies) {
    for (const d of c.destinations) {
      const host = d.reference!.split('/')[0]!;
      const ref = d.reference!.includes('@') ? d.reference! : `${d.reference}@${c.digest}`;
      const transport: Transport = host.endsWith(`:${plain.port}`) ? { kind: 'plain-http' } : { kind: 'ca', caFile: secure.certificates!.caFile };
      const expect = (['containerd', 'containerd1'] as const).map((runtime) => printConfig({ runtime, reference: parseReference(ref), transport }));
      assert.equal(d.containerd, expect[0]!.files[0]!.content);
      assert.equal(d.containerd1, expect[1]!.files[0]!.content);
      assert.equal(d.hostsToml, expect[0]!.files[1]!.content);
    }
  }
});

after(async () => {
  await Promise.all([plain?.stop(), secure?.stop()]);
  await ns?.stop();
  // A failed test may leave pod processes: they are found by their cgroups and killed.
  for (const parent of cgroupParents) {
    for (const hierarchy of await readdir('/sys/fs/cgroup').catch(() => [])) {
      const base = path.join('/sys/fs/cgroup', hierarchy, parent);
      for (const leaf of await readdir(base, { withFileTypes: true }).catch(() => [])) {
        if (!leaf.isDirectory()) continue;
        const procs = await readFile(path.join(base, leaf.name, 'cgroup.procs'), 'utf8').catch(() => '');
        for (const pid of procs.split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch { /* gone */ }
        }
        await sleep(100);
        await rmdir(path.join(base, leaf.name)).catch(() => undefined);
      }
      await rmdir(base).catch(() => undefined);
    }
  }
  if (dir) await rm(dir, { recursive: true, force: true });
  if (figures.length) process.stdout.write(`# ${figures.join('\n# ')}\n`);
});

for (const version of containerdVersions()) {
  describe(`containerd ${version.name} (sandbox-config --runtime ${version.runtime})`, () => {
    it('config dump: the printed version line is what makes the setting count', async () => {
      const ref = `${NAME}:${plain.port}/sandbox/pause@${pauseDigest}`;
      const printed = (await sandboxConfig([`${NAME}:${plain.port}/sandbox/pause:3.10@${pauseDigest}`, '--runtime', version.runtime])).files[0]!.content!;
      const work = path.join(dir, `dump-${version.name}`);
      await mkdir(work, { recursive: true });
      const dump = async (text: string) => {
        const file = path.join(work, 'config.toml');
        await writeFile(file, `root = "${work}/root"\nstate = "${work}/state"\n${text}`);
        const out = (await execa(path.join(version.binDir, 'containerd'), ['--config', file, 'config', 'dump'])).stdout;
        const config = parseToml(out) as Record<string, any>;
        return version.runtime === 'containerd' ? config.plugins['io.containerd.cri.v1.images'].pinned_images.sandbox : config.plugins['io.containerd.grpc.v1.cri'].sandbox_image;
      };
      assert.equal(await dump(printed), ref);
      const withoutVersion = await dump(printed.replace(/^version = \d\n/, ''));
      const other = (await sandboxConfig([`${NAME}:${plain.port}/sandbox/pause:3.10@${pauseDigest}`, '--runtime', version.runtime === 'containerd' ? 'containerd1' : 'containerd'])).files[0]!.content!;
      const otherForm = await dump(other).catch((e: Error) => `refused: ${e.message.split('\n').pop()}`);
      figures.push(`containerd ${version.name}: without the version line: ${withoutVersion}; given the other version's form: ${otherForm}`);
      if (version.runtime === 'containerd1') {
        // Read as a version 1 file: the key is ignored and the default stays.
        assert.match(withoutVersion, /^registry\.k8s\.io\/pause:/);
        assert.notEqual(otherForm, ref);
      } else {
        // containerd 2.x converts a version 2 file on load.
        assert.equal(await dump(other), ref);
      }
      await rm(work, { recursive: true, force: true });
    });

    it('plain HTTP through the printed hosts.toml: our /pause is PID 1, reaps the orphans, stops, and leaves nothing', async () => {
      const work = path.join(dir, `containerd-${version.name}-plain`);
      const host = `${NAME}:${plain.port}`;
      const ref = `${host}/sandbox/pause@${pauseDigest}`;
      const printed = await sandboxConfig([`${host}/sandbox/pause:3.10@${pauseDigest}`, '--runtime', version.runtime, '--insecure-registry', host, '--config-path', path.join(work, 'certs.d'), '--kubelet-version', '1.34']);
      assert.equal(printed.reference, ref);
      assert.equal(printed.kubelet!.flag, `--pod-infra-container-image=${host}/sandbox/pause@${pauseDigest}`);
      figures.push(`containerd ${version.name}, plain HTTP: printed config.toml:\n${printed.files[0]!.content}hosts.toml:\n${printed.files[1]!.content}`);
      const c = await startContainerd(version, work, printed.files[0]!.content!, ns);
      const events = watchEvents(c);
      try {
        // The README's check: what `containerd config dump` says this instance runs with.
        const dumped = parseToml((await execa(path.join(version.binDir, 'containerd'), ['--config', c.config, 'config', 'dump'])).stdout) as Record<string, any>;
        const taken = version.runtime === 'containerd' ? dumped.plugins['io.containerd.cri.v1.images'].pinned_images.sandbox : dumped.plugins['io.containerd.grpc.v1.cri'].sandbox_image;
        assert.equal(taken, ref, 'containerd did not take the printed sandbox image');
        if (version.runtime === 'containerd1') {
          // What `crictl info` shows on 1.x.
          const status = await c.cri.call('Status', { verbose: true });
          assert.equal((JSON.parse(status.info.config) as { sandboxImage: string }).sandboxImage, ref);
        }
        // Without the hosts.toml containerd speaks HTTPS to this name, and fails.
        const orphanRef = `${host}/sandbox/orphan:1@${digests.orphan}`;
        const refused = await c.cri.call('PullImage', { image: { image: orphanRef } }).then(() => 'pulled', (e: Error) => e.message);
        figures.push(`containerd ${version.name}, plain HTTP, before the hosts.toml is written: ${refused}`);
        assert.match(refused, /server gave HTTP response to HTTPS client/);
        await writeHostFiles(printed);
        const { image_ref: orphanImage } = await c.cri.call('PullImage', { image: { image: orphanRef } });

        const mounts = await podMounts(c);
        const pulled = await mark(plain);
        const config = podConfig(`pause-${version.name.replace('.', '-')}`);
        const started = Date.now();
        const { pod_sandbox_id: id } = await c.cri.call('RunPodSandbox', { config });
        const runMs = Date.now() - started;
        const lines = await pullLines(pulled);
        figures.push(`containerd ${version.name}, plain HTTP: RunPodSandbox ${runMs} ms; registry log of the sandbox pull:\n${lines.join('\n')}`);
        assert.ok(lines.some((l) => l.includes(`GET /v2/sandbox/pause/manifests/sha256:`)), lines.join('\n'));
        assert.ok(lines.some((l) => /GET \/v2\/sandbox\/pause\/blobs\/sha256:/.test(l)), lines.join('\n'));
        assert.ok(lines.every((l) => new RegExp(`containerd/v?${version.name.replace('.', '\\.')}`).test(l)), 'a pull not made by this containerd');

        // Pinned (safe from kubelet's image GC) by the runtime itself only from containerd 1.7 on.
        const { image: sandboxImage } = await c.cri.call('ImageStatus', { image: { image: ref } });
        figures.push(`containerd ${version.name}: the sandbox image's CRI pinned flag: ${sandboxImage.pinned}`);
        assert.equal(sandboxImage.pinned, version.name !== '1.6');

        const pid1 = await taskPid(c, id);
        const status1 = await readFile(`/proc/${pid1}/status`, 'utf8');
        assert.match(status1, /^NSpid:\s+\d+\s+1$/m, 'the sandbox process is not PID 1 of the pod');
        assert.match(status1, /^Uid:\s+65535\s+65535\s/m);
        assert.equal((await readFile(`/proc/${pid1}/cmdline`, 'utf8')).split('\0')[0], '/pause');
        assert.equal(sha256(await readFile(`/proc/${pid1}/exe`)), sha256(pauseBin), '/pause is not bin/pause-linux-amd64');

        const reaping = await leaveOrphans(c, id, config, orphanImage, pid1);
        figures.push(`containerd ${version.name}: pause as PID 1: ${reaping.orphans} orphans reparented to it, ${reaping.zombiesAfter1s} zombies 1 s after they exited, ${reaping.reaped} reaped`);
        assert.deepEqual(reaping, { orphans: 3, zombiesAfter1s: 0, reaped: 3 });

        const stopping = Date.now();
        await c.cri.call('StopPodSandbox', { pod_sandbox_id: id });
        const stopMs = Date.now() - stopping;
        const exit = await events.exit(id);
        const { status: stopped } = await c.cri.call('PodSandboxStatus', { pod_sandbox_id: id });
        assert.equal(stopped.state, 'SANDBOX_NOTREADY');
        assert.equal(await proc(pid1), undefined, 'pause still runs after StopPodSandbox');
        await c.cri.call('RemovePodSandbox', { pod_sandbox_id: id });
        await assertNothingLeft(c, id, mounts, parentOf(config));

        // pause's own exit on SIGTERM, signalled directly (1.6 stops sandboxes with SIGKILL).
        const config2 = podConfig(`pause-term-${version.name.replace('.', '-')}`);
        const { pod_sandbox_id: id2 } = await c.cri.call('RunPodSandbox', { config: config2 });
        const pid2 = await taskPid(c, id2);
        const signalled = Date.now();
        process.kill(pid2, 'SIGTERM');
        const termExit = await events.exit(id2);
        const termMs = Date.now() - signalled;
        await c.cri.call('StopPodSandbox', { pod_sandbox_id: id2 });
        await c.cri.call('RemovePodSandbox', { pod_sandbox_id: id2 });
        await assertNothingLeft(c, id2, mounts, parentOf(config2));
        figures.push(`containerd ${version.name}: StopPodSandbox ${stopMs} ms, pause exit status ${exit}; direct SIGTERM: exit status ${termExit} after ${termMs} ms`);
        assert.equal(termExit, 0, 'pause did not exit 0 on SIGTERM');
        assert.ok([0, 137].includes(exit), `exit status ${exit}`);
      } finally {
        await events.stop();
        await c.stop();
      }
    });

    it('TLS with the private CA through the printed hosts.toml; a PID 1 that does not reap keeps the zombies', async () => {
      const work = path.join(dir, `containerd-${version.name}-tls`);
      const host = `${NAME}:${secure.port}`;
      const sleeperRef = `${host}/sandbox/sleeper:1@${digests.sleeper}`;
      const printed = await sandboxConfig([sleeperRef, '--runtime', version.runtime, '--ca-file', secure.certificates!.caFile, '--config-path', path.join(work, 'certs.d')]);
      assert.deepEqual(printed.files.map((f) => path.basename(f.path)), ['config.toml', 'hosts.toml', 'ca.crt']);
      figures.push(`containerd ${version.name}, TLS: printed config.toml:\n${printed.files[0]!.content}hosts.toml:\n${printed.files[1]!.content}`);
      const c = await startContainerd(version, work, printed.files[0]!.content!, ns);
      const events = watchEvents(c);
      try {
        const pauseRef = `${host}/sandbox/pause:3.10@${pauseDigest}`;
        // Without the hosts.toml and its CA, the certificate is not trusted.
        const refused = await c.cri.call('PullImage', { image: { image: pauseRef } }).then(() => 'pulled', (e: Error) => e.message);
        figures.push(`containerd ${version.name}, TLS, before the hosts.toml and CA are written: ${refused}`);
        assert.match(refused, /x509: certificate signed by unknown authority|tls: failed to verify certificate/);
        await writeHostFiles(printed);
        const pulled = await mark(secure);
        const { image_ref: pauseImage } = await c.cri.call('PullImage', { image: { image: pauseRef } });
        const lines = await pullLines(pulled);
        figures.push(`containerd ${version.name}, TLS: registry log of the pull of our image:\n${lines.join('\n')}`);
        assert.ok(lines.some((l) => l.includes(`GET /v2/sandbox/pause/manifests/sha256:`)), lines.join('\n'));
        assert.ok(lines.some((l) => /GET \/v2\/sandbox\/pause\/blobs\/sha256:/.test(l)), lines.join('\n'));
        const { image } = await c.cri.call('ImageStatus', { image: { image: pauseImage } });
        assert.ok(image.repo_digests.includes(`${host}/sandbox/pause@${pauseDigest}`), JSON.stringify(image.repo_digests));
        assert.equal(String(image.uid?.value ?? ''), '65535');

        const { image_ref: orphanImage } = await c.cri.call('PullImage', { image: { image: `${host}/sandbox/orphan:1@${digests.orphan}` } });
        const mounts = await podMounts(c);
        const config = podConfig(`sleeper-${version.name.replace('.', '-')}`);
        const { pod_sandbox_id: id } = await c.cri.call('RunPodSandbox', { config });
        const pid1 = await taskPid(c, id);
        assert.equal(sha256(await readFile(`/proc/${pid1}/exe`)), sha256(sleeperBin));
        const reaping = await leaveOrphans(c, id, config, orphanImage, pid1);
        figures.push(`containerd ${version.name}: control (PID 1 that does not wait): ${reaping.orphans} orphans, ${reaping.zombiesAfter1s} zombies 1 s after they exited`);
        assert.deepEqual(reaping, { orphans: 3, zombiesAfter1s: 3, reaped: 0 });
        await c.cri.call('StopPodSandbox', { pod_sandbox_id: id });
        assert.equal(await events.exit(id), 137, 'the control ignores SIGTERM as PID 1: only SIGKILL ends it');
        await c.cri.call('RemovePodSandbox', { pod_sandbox_id: id });
        await assertNothingLeft(c, id, mounts, parentOf(config));
      } finally {
        await events.stop();
        await c.stop();
      }
    });
  });
}
