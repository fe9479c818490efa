/**
 * Real container engines for the integration tests: podman as installed by
 * build/setup.sh, and a private dockerd on its own socket and data root (started
 * here when it is not already running, stopped when the test file ends).
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { runCli } from './cli.ts';

const RUN_DIR = '/run/pause-test';
const DOCKER_SOCKET = `unix://${RUN_DIR}/docker.sock`;
const DOCKER_DATA = '/var/lib/pause-build-test/docker';
export const LOCAL_BASE = 'localhost/debian:bookworm-slim';
const BASE_TAR = `${process.env.PAUSE_BUILD_CACHE ?? '/var/cache/pause-build'}/bookworm-minbase.tar`;

export interface Docker {
  /** Environment that points the docker CLI (and pause-build) at this daemon. */
  readonly env: { DOCKER_HOST: string };
  stop(): Promise<void>;
}

async function dockerAnswers(): Promise<boolean> {
  const r = await execa('docker', ['version', '--format', '{{.Server.Version}}'], { env: { DOCKER_HOST: DOCKER_SOCKET }, reject: false, timeout: 10_000 });
  return r.exitCode === 0;
}

export async function startDocker(): Promise<Docker> {
  const env = { DOCKER_HOST: DOCKER_SOCKET };
  if (await dockerAnswers()) return { env, stop: async () => {} };
  await mkdir(RUN_DIR, { recursive: true });
  await mkdir(DOCKER_DATA, { recursive: true });
  const pidfile = `${RUN_DIR}/docker.pid`;
  await rm(pidfile, { force: true });
  const daemon = execa('dockerd', [
    '--iptables=false', '--ip6tables=false', '--bridge=none',
    '--host', DOCKER_SOCKET, '--data-root', DOCKER_DATA, '--exec-root', `${RUN_DIR}/docker-exec`,
    '--pidfile', pidfile,
  ], { reject: false, stdio: 'ignore', detached: false });
  for (let i = 0; i < 100 && !(await dockerAnswers()); i++) {
    if (daemon.exitCode !== null && daemon.exitCode !== undefined) throw new Error(`dockerd exited with ${daemon.exitCode}`);
    await sleep(200);
  }
  if (!(await dockerAnswers())) {
    daemon.kill('SIGKILL');
    throw new Error('dockerd did not answer within 20 s');
  }
  return {
    env,
    async stop() {
      daemon.kill('SIGTERM');
      // The grace timer is cleared once dockerd is gone, so it does not hold the test process open.
      const grace = new AbortController();
      await Promise.race([daemon, sleep(15_000, undefined, { signal: grace.signal }).catch(() => undefined)]);
      grace.abort();
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    },
  };
}

/** The local Debian base (made by build/setup.sh) loaded into the engine, then the builder image built or reused. */
export async function ensureBuilder(engine: 'podman' | 'docker', env: Record<string, string> = {}): Promise<string> {
  const has = await execa(engine, ['image', 'inspect', LOCAL_BASE], { env, reject: false });
  if (has.exitCode !== 0) {
    if (!existsSync(BASE_TAR)) throw new Error(`${BASE_TAR} is missing: run build/setup.sh first`);
    await execa(engine, ['import', BASE_TAR, LOCAL_BASE], { env });
  }
  const r = await runCli(['builder', '--engine', engine, '--base', LOCAL_BASE], { env, timeout: 600_000 });
  if (r.exitCode !== 0) throw new Error(`builder image for ${engine} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** Containers pause-build started and left behind (there must be none). */
export async function leftoverContainers(engine: 'podman' | 'docker', env: Record<string, string> = {}): Promise<string[]> {
  const r = await execa(engine, ['ps', '-a', '--filter', 'label=io.pause-build.role', '--format', '{{.Names}}'], { env });
  return r.stdout.split('\n').filter(Boolean);
}


/** Both engines ready to compile: the private dockerd started, and the builder image in each. */
export async function startEngines(): Promise<Docker> {
  const docker = await startDocker();
  await ensureBuilder('podman');
  await ensureBuilder('docker', docker.env);
  return docker;
}
